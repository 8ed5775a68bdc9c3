import { z } from 'zod';
import { duration } from '../../core/config-types.js';

export const guardSchema = z.strictObject({
  maxFuture: duration.default(3_600_000).describe('Points stamped further ahead of the gateway clock than this are refused (clock faults).'),
  maxAge: duration.default(0).describe('Points older than this are refused; 0 accepts any age (backfills from store-and-forward).'),
});
export type GuardConfig = z.output<typeof guardSchema>;
