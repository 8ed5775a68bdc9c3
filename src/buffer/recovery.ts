/**
 * Opening the buffer (invariant 4 of disk-buffer.ts): every segment is read and every
 * record checked, damage is skipped or cut off, and what was lost is counted in lines, logged with
 * its file and offset and kept in losses.json until an operator acknowledges it. The writer and the
 * reader (disk-buffer.ts) start from what this returns.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Ledger } from './ledger.js';
import { HEADER, scanSegment, type DamagedRegion } from './record.js';
import type { DropReason } from '../core/reasons.js';

export interface Position {
  segment: number;
  offset: number;
}

export interface Segment {
  id: number;
  path: string;
  /** Bytes known to hold valid, committed records. */
  size: number;
  records: number;
  lines: number;
  firstAppendedAt?: number;
  /** Damaged stretches between intact records (start -> end): skipped on read. */
  corrupt?: Map<number, number>;
}

/** Damage found on open: kept (losses.json) and shown until an operator acknowledges it. */
export interface BufferLoss {
  at: number;
  file: string;
  offset: number;
  bytes: number;
  kind: 'corrupt_region' | 'corrupt_tail' | 'truncated_segment' | 'segment_missing';
  /** Lines lost: exact when `exact`, else the best estimate, at least `atLeast`, at most `atMost`. */
  lines: number;
  atLeast: number;
  atMost: number;
  exact: boolean;
}


/** What recovery found, in all, since the buffer was opened (the status shows it). */
export interface Recovered {
  tornBytes: number;
  corruptRegions: number;
  corruptSegments: number;
  missingSegments: number;
  linesLost: number;
  linesLostAtLeast: number;
  linesLostAtMost: number;
  exact: boolean;
}

export function noneRecovered(): Recovered {
  return { tornBytes: 0, corruptRegions: 0, corruptSegments: 0, missingSegments: 0, linesLost: 0, linesLostAtLeast: 0, linesLostAtMost: 0, exact: true };
}

/** What recovery works with, and where it reports: the buffer's folder, state files, log and counters. */
export interface Recovery {
  dir: string;
  ledger: Ledger;
  log?: Logger;
  recovered: Recovered;
  drop(reason: DropReason, lines: number): void;
  recordError(err: Error): void;
}

export function segmentPath(dir: string, id: number): string {
  return join(dir, `${String(id).padStart(20, '0')}.seg`);
}

/**
 * Invariant 4: check every record, skip or cut what is damaged, count and log what was lost.
 * `min` is the slowest consumer's cursor: damage before it was delivered and is no loss.
 */
export function recoverSegments(rc: Recovery, min: Position | undefined): { segments: Segment[]; manifest: Map<number, number>; losses: BufferLoss[] } {
const { dir, ledger, log, recovered } = rc;
  const ids = readdirSync(dir)
    .filter((f) => /^\d{20}\.seg$/.test(f))
    .map((f) => Number(f.slice(0, 20)))
    .sort((a, b) => a - b);
  const manifest = loadManifest(rc);
  const losses = loadLosses(ledger);
  const segments: Segment[] = [];
  const present = new Set(ids);
  const known = new Set(manifest.keys());
  // What every consumer had written already is not lost, whatever happened to it since.
  const delivered = (segment: number, end: number) => !!min && (segment < min.segment || (segment === min.segment && end <= min.offset));
  const found: BufferLoss[] = [];
  // every finding is counted, logged and kept here, whatever found it
  const report = (loss: Omit<BufferLoss, 'at'>, message: string) => {
    const missing = loss.kind === 'segment_missing';
    const code = missing ? 'PG_ERR_BUFFER_SEGMENT_MISSING' : 'PG_ERR_BUFFER_CORRUPT';
    if (missing) recovered.missingSegments++;
    recovered.linesLost += loss.lines;
    recovered.linesLostAtLeast += loss.atLeast;
    recovered.linesLostAtMost += loss.atMost;
    if (!loss.exact) recovered.exact = false;
    rc.drop(missing ? 'segment_missing' : 'corrupt_record', loss.lines);
    rc.recordError(new Error(message));
    log?.error({ code, file: loss.file, offset: loss.offset, bytes: loss.bytes, lines: loss.lines, linesAtMost: loss.atMost, exact: loss.exact }, message);
    if (loss.lines > 0 || loss.atMost > 0) found.push({ at: Date.now(), ...loss });
  };
  // Segments listed as closed but gone: their lines are lost. Segments that were fully consumed
  // are removed from the manifest when deleted, so anything left here was not yet written.
  for (const [id, lines] of manifest) {
    if (present.has(id)) continue;
    manifest.delete(id);
    if (delivered(id, Infinity)) continue; // deleted after delivery, before the manifest could say so
    report(
      { file: segmentPath(dir, id), offset: 0, bytes: 0, kind: 'segment_missing', lines, atLeast: lines, atMost: lines, exact: true },
      `buffer segment ${id} is missing; its ${lines} line(s) are lost`,
    );
  }
  for (let i = 1; i < ids.length; i++) {
    for (let gap = ids[i - 1]! + 1; gap < ids[i]!; gap++) {
      if (known.has(gap) || delivered(gap, Infinity)) continue;
      // a gap the manifest does not know (manifest lost as well): count the segment, lines unknown
      report({ file: segmentPath(dir, gap), offset: 0, bytes: 0, kind: 'segment_missing', lines: 0, atLeast: 0, atMost: 0, exact: false }, `buffer segment ${gap} is missing; its line count is unknown`);
    }
  }
  for (const id of ids) {
    const path = segmentPath(dir, id);
    const bytes = readFileSync(path);
    const scan = scanSegment(bytes);
    const seg: Segment = { id, path, size: scan.size, records: scan.records, lines: scan.lines, firstAppendedAt: scan.firstAppendedAt };
    if (scan.regions.length) seg.corrupt = new Map(scan.regions.map((r) => [r.start, r.end]));
    const closedLines = manifest.get(id);
    // Damage after the slowest cursor is what was lost; a closed segment's manifest count makes it exact.
    const damage: (DamagedRegion & { kind: BufferLoss['kind'] })[] = scan.regions.map((r) => ({ ...r, kind: 'corrupt_region' as const }));
    if (scan.tail && (!scan.tail.torn || closedLines !== undefined)) damage.push({ ...scan.tail, kind: closedLines !== undefined ? 'truncated_segment' : 'corrupt_tail' });
    const lost = damage.filter((r) => !delivered(id, r.end));
    if (closedLines !== undefined && damage.length && lost.length === damage.length) {
      // every damaged stretch is undelivered: the manifest gives their lines exactly
      const lines = Math.max(0, closedLines - scan.lines);
      const share = (r: DamagedRegion) => Math.round((lines * r.estimate) / damage.reduce((n, x) => n + x.estimate, 0));
      for (const r of lost) lose(rc, report, id, r, share(r), true);
    } else {
      for (const r of lost) lose(rc, report, id, r, r.estimate, false);
    }
    if (scan.tail) {
      recovered.tornBytes += scan.tail.end - scan.tail.start;
      if (scan.tail.torn && closedLines === undefined) {
        const msg = `buffer segment ${id}: ${scan.tail.end - scan.tail.start} byte(s) after offset ${scan.size} are an unfinished write (never acknowledged) and were cut off`;
        rc.recordError(new Error(msg));
        log?.warn({ code: 'PG_ERR_BUFFER_TORN_TAIL', file: path, offset: scan.size, bytes: scan.tail.end - scan.tail.start }, msg);
      }
      const fd = openSync(path, 'r+');
      ftruncateSync(fd, scan.size);
      fsyncSync(fd);
      closeSync(fd);
    }
    segments.push(seg);
  }
  if (found.length) {
    losses.push(...found);
    ledger.save('losses', () => JSON.stringify(losses));
  }
  ledger.save('manifest', () => JSON.stringify(Object.fromEntries(manifest)));
  return { segments, manifest, losses };
}

/** Reports one damaged stretch as lost: `lines` exactly, or as the estimate of `r`. */
function lose(rc: Recovery, report: (l: Omit<BufferLoss, 'at'>, m: string) => void, id: number, r: DamagedRegion & { kind: BufferLoss['kind'] }, lines: number, exact: boolean): void {
  const recovered = rc.recovered;
  const atLeast = exact ? lines : 1;
  const atMost = exact ? lines : r.atMost;
  recovered.corruptRegions++;
  if (r.kind !== 'corrupt_region') recovered.corruptSegments++;
  const what = r.kind === 'truncated_segment' ? 'the closed segment ends early' : r.kind === 'corrupt_tail' ? 'the records at its end are damaged' : 'damaged records';
  report(
    { file: segmentPath(rc.dir, id), offset: r.start, bytes: r.end - r.start, kind: r.kind, lines, atLeast, atMost, exact },
    `buffer segment ${id}: ${what}, ${r.end - r.start} byte(s) at offset ${r.start}: ${exact ? `${lines}` : `about ${lines} (at most ${atMost})`} line(s) lost`,
  );
}

function loadManifest(r: Recovery): Map<number, number> {
  const text = r.ledger.read('manifest');
  if (text === undefined) return new Map();
  try {
    return new Map(Object.entries(JSON.parse(text) as Record<string, number>).map(([k, v]) => [Number(k), Number(v)]));
  } catch (err) {
    r.recordError(new Error(`segments.json unreadable (${(err as Error).message}); missing segments cannot be counted exactly`));
    r.log?.error({ code: 'PG_ERR_BUFFER_CORRUPT', file: r.ledger.path('manifest') }, 'segments.json is unreadable: missing segments cannot be counted exactly');
    r.recovered.exact = false;
    return new Map();
  }
}

function loadLosses(ledger: Ledger): BufferLoss[] {
  try {
    const v = JSON.parse(ledger.read('losses') ?? '[]') as unknown;
    return Array.isArray(v) ? (v as BufferLoss[]) : [];
  } catch {
    return [];
  }
}

/** The consumers' cursors as saved (a missing or torn file: none, so they replay from the oldest segment). */
export function loadCursors(r: Recovery): Map<string, Position> {
  const cursors = new Map<string, Position>();
  const text = r.ledger.read('cursors');
  if (text === undefined) {
    if (readdirSync(r.dir).some((f) => f.endsWith('.seg') && statSync(join(r.dir, f)).size > 0)) {
      r.log?.warn({ code: 'PG_ERR_BUFFER_CORRUPT', file: r.ledger.path('cursors') }, 'cursors.json is missing beside buffer segments: replaying from the oldest segment (duplicates are overwritten in InfluxDB, nothing is lost)');
    }
    return cursors;
  }
  try {
    const data = JSON.parse(text) as Record<string, Position>;
    for (const [name, pos] of Object.entries(data)) {
      if (Number.isInteger(pos?.segment) && Number.isInteger(pos?.offset)) cursors.set(name, pos);
    }
  } catch (err) {
    // A torn cursor file only means replaying from the oldest segment: at least once still holds.
    r.recordError(new Error(`cursors.json unreadable (${(err as Error).message}); replaying from the oldest segment`));
    r.log?.warn({ code: 'PG_ERR_BUFFER_CORRUPT', file: r.ledger.path('cursors') }, 'cursors.json is unreadable: replaying from the oldest segment (duplicates are overwritten in InfluxDB, nothing is lost)');
  }
  return cursors;
}

/** A cursor past a truncated tail points at bytes that no longer exist: clamp it. */
export function clampCursors(cursors: Map<string, Position>, segments: Segment[]): void {
  for (const [name, pos] of cursors) {
    const seg = segments.find((s) => s.id === pos.segment);
    if (seg && pos.offset > seg.size) cursors.set(name, { segment: seg.id, offset: seg.size });
    // a cursor inside a damaged stretch goes to its end (the next intact record)
    for (const [start, end] of seg?.corrupt ?? []) if (start < pos.offset && pos.offset < end) cursors.set(name, { segment: seg!.id, offset: end });
  }
}

/** Lines in the records of `seg` that start before `offset` (headers only, skipping damaged stretches). */
export function countLines(seg: Segment, offset: number): number {
  if (offset === 0) return 0;
  const fd = openSync(seg.path, 'r');
  try {
    const h = Buffer.alloc(HEADER);
    let off = 0;
    let n = 0;
    while (off < offset) {
      const skipTo = seg.corrupt?.get(off);
      if (skipTo !== undefined) {
        off = skipTo;
        continue;
      }
      if (readSync(fd, h, 0, HEADER, off) !== HEADER) break;
      n += h.readUInt32LE(8);
      off += HEADER + h.readUInt32LE(0);
    }
    return n;
  } finally {
    closeSync(fd);
  }
}
