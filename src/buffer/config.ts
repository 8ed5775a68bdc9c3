import { z } from 'zod';
import { bool, byteSize, duration } from '../core/config-types.js';

export const bufferSchema = z
  .strictObject({
    /** Folder of the segment files and consumer cursors. */
    dir: z.string().min(1).default('./data/buffer'),
    /** Upper bound of the buffer on disk. */
    maxBytes: byteSize.default(1024 ** 3),
    /** Segment size; a segment is deleted once every sink has written all of it. */
    segmentBytes: byteSize.optional(),
    /** What to do when maxBytes is reached: push back on sources (default) or drop, counted. */
    whenFull: z.enum(['block', 'drop_oldest', 'drop_newest']).default('block'),
    /** fdatasync every group commit. Turning it off trades crash safety for speed. */
    fsync: bool().default(true),
    /** How long a commit may wait to gather more records (0: commit as soon as the disk is free). */
    commitDelay: duration.default(0),
  })
  .transform((c) => ({ ...c, segmentBytes: c.segmentBytes ?? Math.max(64 * 1024, Math.min(16 * 1024 ** 2, Math.floor(c.maxBytes / 8))) }))
  .superRefine((c, ctx) => {
    if (c.segmentBytes * 2 > c.maxBytes) {
      ctx.addIssue({ code: 'custom', path: ['segmentBytes'], message: `must be at most half of maxBytes (${c.maxBytes}) so a full buffer can free space` });
    }
  });
export type BufferConfig = z.output<typeof bufferSchema>;
