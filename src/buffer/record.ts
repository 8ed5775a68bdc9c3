/**
 * The buffer's record format and how a segment is checked on open.
 *
 * Record: [u32 payloadLength][u32 crc32][u32 lineCount][f64 appendedAtMs][payload: lines, '\n'-joined]
 * The CRC covers lineCount, appendedAt and the payload, so a flipped bit anywhere but in the
 * length field fails the checksum; a flipped length field makes the record's end unknown, so the
 * scan searches forward for the next record that checks out (resynchronisation) instead of
 * giving up on the rest of the segment.
 *
 * What a damaged stretch held is known exactly only from outside (the manifest's line count of a
 * closed segment). Inside it, `estimate` counts its newlines after the first header (a record of
 * n lines has n - 1) plus one, and `atMost` is the most lines the bytes could hold: the shortest line protocol line is
 * `m f=1`, 5 bytes and a separator.
 */
import { crc32 } from 'node:zlib';

export const HEADER = 20;
export const MAX_RECORD = 256 * 1024 * 1024;
const SHORTEST_LINE = 6;
/** Append times outside these are not a record header (resynchronisation candidates). */
const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST_AHEAD = 10 * 365 * 86_400_000;

export interface RecordInfo {
  len: number;
  lines: number;
  appendedAt: number;
}

/** A stretch of a segment that did not check out, and what it may have held. */
export interface DamagedRegion {
  start: number;
  end: number;
  estimate: number;
  atMost: number;
}

export interface SegmentScan {
  /** End of the last intact record: the bytes after it are cut off. */
  size: number;
  records: number;
  lines: number;
  firstAppendedAt?: number;
  /** Damaged stretches between intact records, skipped on read (start -> end). */
  regions: DamagedRegion[];
  /** Bytes after the last intact record: `torn` when it is the unfinished write of a crash. */
  tail?: DamagedRegion & { torn: boolean };
}

/** Header and payload of one record. */
export function encodeRecord(lines: string[], appendedAt: number): [Buffer, Buffer] {
  const payload = Buffer.from(lines.join('\n'), 'utf8');
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(lines.length, 8);
  header.writeDoubleLE(appendedAt, 12);
  header.writeUInt32LE(crc32(payload, crc32(header.subarray(8, HEADER))), 4);
  return [header, payload];
}

/** The record at `off` if it is whole and its checksum holds. */
export function checkRecord(buf: Buffer, off: number, end = buf.length): RecordInfo | undefined {
  if (off + HEADER > end) return undefined;
  const len = buf.readUInt32LE(off);
  if (len > MAX_RECORD || off + HEADER + len > end) return undefined;
  if (crc32(buf.subarray(off + HEADER, off + HEADER + len), crc32(buf.subarray(off + 8, off + HEADER))) !== buf.readUInt32LE(off + 4)) return undefined;
  return { len, lines: buf.readUInt32LE(off + 8), appendedAt: buf.readDoubleLE(off + 12) };
}

/** Where the next intact record starts at or after `from`, or -1. Cheap plausibility tests first, the checksum last. */
export function findNextRecord(buf: Buffer, from: number, now = Date.now()): number {
  for (let p = from; p + HEADER <= buf.length; p++) {
    const len = buf.readUInt32LE(p);
    if (len > MAX_RECORD || p + HEADER + len > buf.length) continue;
    const lines = buf.readUInt32LE(p + 8);
    if (lines === 0 || lines > len + 1) continue;
    const at = buf.readDoubleLE(p + 12);
    if (!(at >= EARLIEST && at <= now + LATEST_AHEAD)) continue;
    if (checkRecord(buf, p)) return p;
  }
  return -1;
}

/** Lines that `bytes` of damaged records could have held at the most. */
export function linesAtMost(bytes: number): number {
  return Math.max(1, Math.floor((bytes + 1) / SHORTEST_LINE));
}

function region(buf: Buffer, start: number, end: number): DamagedRegion {
  // a stretch starts at a record's header, whose checksum and time bytes may hold a 0x0A: count from its payload
  let newlines = 0;
  for (let i = buf.indexOf(10, Math.min(start + HEADER, end)); i !== -1 && i < end; i = buf.indexOf(10, i + 1)) newlines++;
  const atMost = linesAtMost(end - start);
  return { start, end, estimate: Math.min(atMost, newlines + 1), atMost };
}

/** Checks every record of a segment's bytes (the buffer's invariant 4). */
export function scanSegment(buf: Buffer): SegmentScan {
  const scan: SegmentScan = { size: 0, records: 0, lines: 0, regions: [] };
  let off = 0;
  while (off + HEADER <= buf.length) {
    const rec = checkRecord(buf, off);
    if (rec) {
      scan.firstAppendedAt ??= rec.appendedAt;
      scan.records++;
      scan.lines += rec.lines;
      off += HEADER + rec.len;
      continue;
    }
    const next = findNextRecord(buf, off + 1);
    if (next === -1) break;
    scan.regions.push(region(buf, off, next));
    off = next;
  }
  scan.size = off;
  if (off < buf.length) {
    // A crash mid-commit leaves a record whose announced length runs past the end of the file,
    // or blocks that were never written (zeros): an append not yet acknowledged. Anything else
    // there is damage to records that were.
    const len = off + 4 <= buf.length ? buf.readUInt32LE(off) : 0;
    const torn = off + HEADER > buf.length || off + HEADER + len > buf.length || buf.subarray(off).every((b) => b === 0);
    scan.tail = { ...region(buf, off, buf.length), torn };
  }
  return scan;
}
