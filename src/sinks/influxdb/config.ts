import { z } from 'zod';
import { bool, byteSize, componentName, duration, int } from '../../core/config-types.js';
import { secretFromFile } from '../../security/secrets.js';
import { readableFile, tlsClientSchema } from '../../security/tls.js';

const common = {
  name: componentName.optional(),
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  /** Lines per write request. */
  batchSize: int().pipe(z.number().int().min(1).max(1_000_000)).default(5000),
  /** Longest a line waits for its batch to fill. */
  flushInterval: duration.default(1000),
  /** Gzip request bodies larger than this (0 disables gzip). */
  gzipThreshold: byteSize.or(z.literal(0)).default(1024),
  timeout: duration.default(10_000),
  /** Retry backoff bounds; retries never give up (the buffer's size limit is the bound). */
  retryMin: duration.default(500),
  retryMax: duration.default(30_000),
  /** CA, client certificate and key for https:// (a plant CA, or InfluxDB behind mTLS). */
  tls: tlsClientSchema.optional(),
};

export const influxV1Schema = z.strictObject({
  ...common,
  api: z.literal('v1'),
  database: z.string().min(1),
  retentionPolicy: z.string().min(1).optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  /** File holding the password; instead of `password`. */
  passwordFile: readableFile.optional(),
});

export const influxV2Schema = z.strictObject({
  ...common,
  api: z.literal('v2'),
  org: z.string().min(1),
  bucket: z.string().min(1),
  token: z.string().min(1).optional(),
  /** File holding the token (Docker / systemd credentials); instead of `token`. */
  tokenFile: readableFile.optional(),
});

/** `api` defaults to v1, the protocol of the influxd most plants run. */
export const influxSchema = z.preprocess(
  (v) => (v && typeof v === 'object' && !Array.isArray(v) && !('api' in v) ? { ...v, api: 'v1' } : v),
  z
    .discriminatedUnion('api', [influxV1Schema, influxV2Schema], {
      error: (iss) => (iss.code === 'invalid_union' ? 'expected api: v1 (with database) or api: v2 (with org, bucket, token)' : undefined),
    })
    .transform((c, ctx) => {
      if (c.api === 'v1') return secretFromFile(c, 'password', ctx);
      const rest = secretFromFile(c, 'token', ctx);
      if (!rest.token && !c.tokenFile) ctx.addIssue({ code: 'custom', path: ['token'], message: 'api v2 needs a token (or tokenFile)' });
      return { ...rest, token: rest.token ?? '' };
    }),
);
export type InfluxConfig = z.output<typeof influxSchema>;

