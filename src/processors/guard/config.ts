import { z } from 'zod';
import { duration } from '../../core/config-types.js';

export const guardSchema = z.strictObject({
  /** Points stamped further ahead of the gateway clock than this are refused (clock faults). */
  maxFuture: duration.default(3_600_000),
  /** Points older than this are refused; 0 accepts any age (backfills from store-and-forward). */
  maxAge: duration.default(0),
});
export type GuardConfig = z.output<typeof guardSchema>;
