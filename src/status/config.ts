import { z } from 'zod';
import { listenAddress } from '../core/config-types.js';
import { isPasswordHash, PASSWORD_HASH_HINT } from '../security/passwords.js';
import { secretFromFile } from '../security/secrets.js';
import { readableFile, tlsServerSchema } from '../security/tls.js';

export const httpAuthSchema = z
  .strictObject({
    /** Bearer token for scripts (`Authorization: Bearer ...`); at least 16 characters. */
    token: z.string().min(16, 'a token of at least 16 characters').optional(),
    tokenFile: readableFile.optional(),
    /** Users for browsers (HTTP basic authentication); hashes from `plantgate hash-password`. */
    users: z.array(z.strictObject({ username: z.string().min(1).regex(/^[^:]+$/, 'no colon in a username'), passwordHash: z.string().refine(isPasswordHash, PASSWORD_HASH_HINT) })).default([]),
    /** `open`: anyone who reaches the port may read status and dashboard; `authenticated`: reading needs credentials too (health probes excepted). */
    readAccess: z.enum(['open', 'authenticated']).default('open'),
  })
  .transform((a, ctx) => {
    const rest = secretFromFile(a, 'token', ctx);
    if (!rest.token && rest.users.length === 0) ctx.addIssue({ code: 'custom', path: ['token'], message: 'give a token (or tokenFile), users, or both' });
    return rest;
  });
export type HttpAuthConfig = z.output<typeof httpAuthSchema>;

export const httpSchema = z.strictObject({
  /** Status API and dashboard. Loopback by default: see the README before exposing it. */
  listen: listenAddress.default({ host: '127.0.0.1', port: 8080 }),
  /** HTTPS with this certificate and key. */
  tls: tlsServerSchema.optional(),
  /** Credentials for admin actions (and for reading, with readAccess: authenticated). Without it, admin actions are refused. */
  auth: httpAuthSchema.optional(),
});
export type HttpConfig = z.output<typeof httpSchema>;
