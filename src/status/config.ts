import { z } from 'zod';
import { listenAddress } from '../core/config-types.js';
import { isPasswordHash, PASSWORD_HASH_HINT } from '../security/passwords.js';
import { secretFromFile } from '../security/secrets.js';
import { readableFile, tlsServerSchema } from '../security/tls.js';

export const httpAuthSchema = z
  .strictObject({
    token: z.string().min(16, 'a token of at least 16 characters').optional().describe('Bearer token for scripts (`Authorization: Bearer ...`); at least 16 characters.'),
    tokenFile: readableFile.optional().describe('File holding the token (Docker / systemd credentials); instead of `token`.'),
    users: z.array(z.strictObject({ username: z.string().min(1).regex(/^[^:]+$/, 'no colon in a username').describe('User name for HTTP basic authentication.'), passwordHash: z.string().refine(isPasswordHash, PASSWORD_HASH_HINT).describe('From `plantgate hash-password`.') })).default([]).describe('Users for browsers (HTTP basic authentication); hashes from `plantgate hash-password`.').meta({ examples: [[{ username: 'operator', passwordHash: 'scrypt$15$8$1$ZXhhbXBsZS1zYWx0LTEyMw==$n0tArEaLhAsHjUsTtHeFoRmAtOfOnE+eXaMpLeS0000=' }]] }),
    readAccess: z.enum(['open', 'authenticated']).default('open').describe('`open`: anyone who reaches the port may read status and dashboard; `authenticated`: reading needs credentials too (health probes excepted).'),
  })
  .transform((a, ctx) => {
    const rest = secretFromFile(a, 'token', ctx);
    if (!rest.token && rest.users.length === 0) ctx.addIssue({ code: 'custom', path: ['token'], message: 'give a token (or tokenFile), users, or both' });
    return rest;
  });
export type HttpAuthConfig = z.output<typeof httpAuthSchema>;

export const httpSchema = z.strictObject({
  listen: listenAddress.prefault('127.0.0.1:8080').describe('Status API and dashboard. Loopback by default: see the README before exposing it.'),
  tls: tlsServerSchema.optional().describe('HTTPS with this certificate and key.'),
  auth: httpAuthSchema.optional().describe('Credentials for admin actions (and for reading, with readAccess: authenticated). Without it, admin actions are refused.'),
});
export type HttpConfig = z.output<typeof httpSchema>;
