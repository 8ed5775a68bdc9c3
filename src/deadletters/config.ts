import { z } from 'zod';
import { byteSize } from '../core/config-types.js';

export const deadLettersSchema = z.strictObject({
  /** JSON Lines file of rejected payloads and lines; default: `deadletters.jsonl` beside buffer.dir. */
  file: z.string().min(1).optional(),
  /** When the file grows past this it is rotated to `<file>.1` (one old generation kept). */
  maxBytes: byteSize.default(64 * 1024 * 1024),
  /** How many of the latest dead letters the status API keeps in memory. */
  keepLatest: z.number().int().min(0).max(1000).default(50),
});
export type DeadLettersConfig = z.output<typeof deadLettersSchema>;
