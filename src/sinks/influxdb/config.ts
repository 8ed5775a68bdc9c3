import { z } from 'zod';
import { byteSize, componentName, duration, int } from '../../core/config-types.js';
import { secretFromFile } from '../../security/secrets.js';
import { readableFile, tlsClientSchema } from '../../security/tls.js';

const common = {
  name: componentName.optional().describe('The sink\'s name in the status, and the key of its place in the buffer (default `influx-v1` or `influx-v2`).'),
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).describe('InfluxDB\'s base URL.').meta({ examples: ['http://127.0.0.1:8086'] }),
  batchSize: int().pipe(z.number().int().min(1).max(1_000_000)).default(5000).describe('Lines per write request.'),
  flushInterval: duration.default(1000).describe('Longest a line waits for its batch to fill.'),
  gzipThreshold: byteSize.or(z.literal(0)).default(1024).describe('Gzip request bodies larger than this (0 disables gzip).'),
  timeout: duration.default(10_000).describe('Longest a write request may take.'),
  retryMin: duration.default(500).describe('Retry backoff bounds; retries never give up (the buffer\'s size limit is the bound).'),
  retryMax: duration.default(30_000).describe('Retry backoff\'s upper bound.'),
  tls: tlsClientSchema.optional().describe('CA, client certificate and key for https:// (a plant CA, or InfluxDB behind mTLS).'),
};

export const influxV1Schema = z.strictObject({
  ...common,
  api: z.literal('v1').describe('`v1`: `/write` (InfluxDB 1.x); `v2`: `/api/v2/write` (InfluxDB 2, 3, Cloud; VictoriaMetrics).'),
  database: z.string().min(1).describe('The database; created on the first write if missing.').meta({ examples: ['factory'] }),
  retentionPolicy: z.string().min(1).optional().describe('Retention policy to write into (default: the database\'s).'),
  username: z.string().optional().describe('User for basic authentication.'),
  password: z.string().optional().describe('Its password (or passwordFile).'),
  passwordFile: readableFile.optional().describe('File holding the password; instead of `password`.'),
});

export const influxV2Schema = z.strictObject({
  ...common,
  api: z.literal('v2'),
  org: z.string().min(1).describe('The organisation.').meta({ examples: ['plant'] }),
  bucket: z.string().min(1).describe('The bucket.').meta({ examples: ['factory'] }),
  token: z.string().min(1).optional().describe('API token (or tokenFile).'),
  tokenFile: readableFile.optional().describe('File holding the token (Docker / systemd credentials); instead of `token`.'),
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

