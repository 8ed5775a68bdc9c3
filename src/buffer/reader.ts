/**
 * The buffer's read side: batches of whole records after a cursor, across segments, skipping the
 * stretches recovery marked damaged (recovery.ts), and the append time of the first unread
 * record. It reads files only; which segments exist and where each consumer's cursor is belong to
 * DiskBuffer (invariants 2 and 3), which passes them in.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { HEADER } from './record.js';
import type { Position, Segment } from './recovery.js';

export interface BufferBatch {
  /** Line-protocol lines, newline-joined. */
  body: string;
  lines: number;
  /** Position after the last record of the batch: pass it to ack(). */
  end: Position;
  /** Append time of the first record in the batch. */
  firstAppendedAt: number;
}

/** Read handles of the segment files, opened once each and closed when the segment goes. */
export class SegmentFiles {
  private readonly handles = new Map<number, FileHandle>();

  async handle(seg: Segment): Promise<FileHandle> {
    let h = this.handles.get(seg.id);
    if (!h) {
      h = await open(seg.path, 'r');
      this.handles.set(seg.id, h);
    }
    return h;
  }

  /** The segment is deleted: its handle goes (in the background: nothing waits on it). */
  forget(id: number): void {
    const h = this.handles.get(id);
    if (!h) return;
    void h.close().catch(() => undefined);
    this.handles.delete(id);
  }

  async closeAll(): Promise<void> {
    for (const h of this.handles.values()) await h.close().catch(() => undefined);
    this.handles.clear();
  }
}

/**
 * Up to maxLines lines (whole records, at most about maxBytes: invariant 5) after `from`; null
 * when there is nothing after it. A single record larger than maxBytes is read whole.
 */
export async function readBatch(segments: readonly Segment[], from: Position, maxLines: number, maxBytes: number, files: SegmentFiles): Promise<BufferBatch | null> {
  let pos = from;
  const parts: string[] = [];
  let lines = 0;
  let bytes = 0;
  let firstAppendedAt = 0;
  for (;;) {
    const seg = segments.find((s) => s.id === pos.segment) ?? segments.find((s) => s.id > pos.segment);
    if (!seg) break;
    if (seg.id !== pos.segment) pos = { segment: seg.id, offset: 0 };
    if (pos.offset >= seg.size) {
      const next = segments.find((s) => s.id > seg.id);
      if (!next) break;
      pos = { segment: next.id, offset: 0 };
      continue;
    }
    const want = Math.min(seg.size - pos.offset, Math.max(maxBytes - bytes, HEADER));
    const fh = await files.handle(seg);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, pos.offset);
    let off = 0;
    while (off + HEADER <= bytesRead && lines < maxLines) {
      const skipTo = seg.corrupt?.get(pos.offset + off);
      if (skipTo !== undefined) {
        off = skipTo - pos.offset; // damaged: counted when found at start
        continue;
      }
      const len = buf.readUInt32LE(off);
      if (off + HEADER + len > bytesRead) {
        if (off === 0 && parts.length === 0) return readOneLarge(seg, pos, fh, len);
        break;
      }
      const n = buf.readUInt32LE(off + 8);
      if (!firstAppendedAt) firstAppendedAt = buf.readDoubleLE(off + 12);
      parts.push(buf.toString('utf8', off + HEADER, off + HEADER + len));
      lines += n;
      off += HEADER + len;
    }
    bytes += off;
    pos = { segment: seg.id, offset: pos.offset + off };
    if (lines >= maxLines || bytes >= maxBytes || off === 0) break;
  }
  if (lines === 0) return null;
  return { body: parts.join('\n'), lines, end: pos, firstAppendedAt };
}

async function readOneLarge(seg: Segment, pos: Position, fh: FileHandle, len: number): Promise<BufferBatch> {
  const buf = Buffer.allocUnsafe(HEADER + len);
  await fh.read(buf, 0, buf.length, pos.offset);
  return {
    body: buf.toString('utf8', HEADER),
    lines: buf.readUInt32LE(8),
    end: { segment: seg.id, offset: pos.offset + buf.length },
    firstAppendedAt: buf.readDoubleLE(12),
  };
}

/** Append time of the first record at or after `pos` (one header read), for the buffer's age. */
export function appendedAtOf(segments: readonly Segment[], pos: Position): number | undefined {
  for (const seg of segments) {
    if (seg.id < pos.segment) continue;
    let off = seg.id === pos.segment ? pos.offset : 0;
    off = seg.corrupt?.get(off) ?? off;
    if (off >= seg.size) continue;
    if (off === 0) return seg.firstAppendedAt;
    const h = Buffer.alloc(HEADER);
    const fd = openSync(seg.path, 'r');
    try {
      readSync(fd, h, 0, HEADER, off);
    } finally {
      closeSync(fd);
    }
    return h.readDoubleLE(12);
  }
  return undefined;
}
