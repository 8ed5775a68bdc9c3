import { z } from 'zod';
import { bool, byteSize, duration } from '../core/config-types.js';

export const bufferSchema = z
  .strictObject({
    dir: z.string().min(1).default('./data/buffer').describe('Folder of the segment files and consumer cursors.'),
    maxBytes: byteSize.default(1024 ** 3).describe('Upper bound of the buffer on disk.'),
    segmentBytes: byteSize.optional().describe('Segment size; a segment is deleted once every sink has written all of it.'),
    whenFull: z.enum(['block', 'drop_oldest', 'drop_newest']).default('block').describe('What to do when maxBytes is reached: push back on sources (default) or drop, counted.'),
    fsync: bool().default(true).describe('fdatasync every group commit. Turning it off trades crash safety for speed.'),
    commitDelay: duration.default(0).describe('How long a commit may wait to gather more records (0: commit as soon as the disk is free).'),
  })
  .transform((c) => ({ ...c, segmentBytes: c.segmentBytes ?? Math.max(64 * 1024, Math.min(16 * 1024 ** 2, Math.floor(c.maxBytes / 8))) }))
  .superRefine((c, ctx) => {
    if (c.segmentBytes * 2 > c.maxBytes) {
      ctx.addIssue({ code: 'custom', path: ['segmentBytes'], message: `must be at most half of maxBytes (${c.maxBytes}) so a full buffer can free space` });
    }
  });
export type BufferConfig = z.output<typeof bufferSchema>;
