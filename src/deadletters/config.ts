import { z } from 'zod';
import { byteSize } from '../core/config-types.js';

export const deadLettersSchema = z.strictObject({
  file: z.string().min(1).optional().describe('JSON Lines file of rejected payloads and lines; default: `deadletters.jsonl` beside buffer.dir.'),
  maxBytes: byteSize.default(64 * 1024 * 1024).describe('When the file grows past this it is rotated to `<file>.1` (one old generation kept).'),
  keepLatest: z.number().int().min(0).max(1000).default(50).describe('How many of the latest dead letters the status API keeps in memory.'),
});
export type DeadLettersConfig = z.output<typeof deadLettersSchema>;
