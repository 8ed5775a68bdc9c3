/**
 * The durable buffer between processors and sinks (docs/spec/delivery.md, DESIGN §3).
 *
 * Layout: `dir/NNNNNNNNNNNNNNNNNNNN.seg` append-only segment files and `dir/cursors.json`, the
 * position up to which each sink has had its writes accepted.
 *
 * Record: [u32 payloadLength][u32 crc32][u32 lineCount][f64 appendedAtMs][payload: lines, '\n'-joined]
 * The CRC covers lineCount, appendedAt and the payload.
 *
 * Invariants, which every change here must keep:
 *  1. `append()` resolves only after the record is written and (with fsync on) fdatasync'd.
 *     Sources acknowledge their input only after that promise resolves.
 *  2. A segment file is deleted only when every consumer's cursor is past it (or, with
 *     whenFull=drop_oldest, when it is dropped on purpose and its records counted as dropped).
 *  3. A cursor moves only on `ack()`, i.e. after the sink's write was accepted. A crash between
 *     the write and the cursor update replays the batch: at least once, never less.
 *  4. On open, every record is checked; a torn or corrupt tail of the last segment is cut off,
 *     a corrupt record inside an older segment ends that segment early. Both are counted.
 *  5. Memory is bounded: records are read in chunks of at most `maxBytes` per `read()` and
 *     pending appends are bounded by the sources' own flow control.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync, ftruncateSync, fdatasyncSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { BaseComponent } from '../core/component.js';
import { PlantgateError } from '../core/errors.js';
import type { BufferConfig } from './config.js';

const HEADER = 20;
const MAX_RECORD = 256 * 1024 * 1024;

export interface Position {
  segment: number;
  offset: number;
}

export interface BufferBatch {
  /** Line-protocol lines, newline-joined. */
  body: string;
  lines: number;
  /** Position after the last record of the batch: pass it to ack(). */
  end: Position;
  /** Append time of the first record in the batch. */
  firstAppendedAt: number;
}

interface Segment {
  id: number;
  path: string;
  /** Bytes known to hold valid, committed records. */
  size: number;
  records: number;
  lines: number;
  firstAppendedAt?: number;
}

interface PendingAppend {
  record: Buffer;
  lines: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class BufferFullError extends PlantgateError {
  constructor(message: string) {
    super('PG_ERR_BUFFER_FULL', message, true);
  }
}

export class DiskBuffer extends BaseComponent {
  readonly kind = 'buffer' as const;
  readonly type = 'disk';
  private segments: Segment[] = [];
  private active?: { seg: Segment; fd: number };
  private cursors = new Map<string, Position>();
  private pending: PendingAppend[] = [];
  private pendingBytes = 0;
  private flushing = false;
  private waiters: { atLeast: number; done: () => void }[] = [];
  private roomWaiters: (() => void)[] = [];
  private readHandles = new Map<number, FileHandle>();
  private recovered = { tornBytes: 0, corruptSegments: 0, missingSegments: 0 };
  private stopped = false;

  constructor(name: string, private readonly config: BufferConfig, private readonly consumers: string[]) {
    super(name);
  }

  protected async doStart(): Promise<void> {
    this.stopped = false;
    mkdirSync(this.config.dir, { recursive: true });
    this.recover();
    this.loadCursors();
    this.openActive();
  }

  protected async doStop(): Promise<void> {
    this.stopped = true;
    while (this.flushing || this.pending.length) await new Promise((r) => setTimeout(r, 5));
    for (const h of this.readHandles.values()) await h.close().catch(() => undefined);
    this.readHandles.clear();
    if (this.active) {
      closeSync(this.active.fd);
      this.active = undefined;
    }
    this.wake();
    for (const w of this.roomWaiters.splice(0)) w();
  }

  /** Number of lines not yet accepted by the slowest consumer, and bytes on disk. */
  depth(): { lines: number; bytes: number; oldestAppendedAt?: number } {
    let lines = 0;
    let bytes = 0;
    const min = this.minCursor();
    for (const s of this.segments) {
      bytes += s.size;
      if (!min || s.id >= min.segment) lines += s.lines;
    }
    // lines already consumed inside the slowest consumer's current segment are not subtracted:
    // a per-record index would cost memory; the figure is an upper bound, as the status says.
    const first = this.segments.find((s) => !min || s.id >= min.segment);
    return { lines, bytes, oldestAppendedAt: lines > 0 ? first?.firstAppendedAt : undefined };
  }

  protected override details(): Record<string, unknown> {
    const d = this.depth();
    return {
      dir: this.config.dir,
      segments: this.segments.length,
      bytesOnDisk: d.bytes,
      maxBytes: this.config.maxBytes,
      linesQueued: d.lines,
      oldestAgeMs: d.oldestAppendedAt ? Date.now() - d.oldestAppendedAt : 0,
      whenFull: this.config.whenFull,
      recovered: { ...this.recovered },
      cursors: Object.fromEntries(this.cursors),
    };
  }

  /** Appends lines durably. Resolves once they are on disk; rejects with BufferFullError for drop_newest. */
  append(lines: string[]): Promise<void> {
    if (this.stopped || !this.active) return Promise.reject(new PlantgateError('PG_ERR_BUFFER_STOPPED', 'buffer is not running', true));
    if (lines.length === 0) return Promise.resolve();
    const payload = Buffer.from(lines.join('\n'), 'utf8');
    if (payload.length > MAX_RECORD) return Promise.reject(new PlantgateError('PG_ERR_RECORD_TOO_LARGE', `record of ${payload.length} bytes exceeds ${MAX_RECORD}`));
    const record = Buffer.allocUnsafe(HEADER + payload.length);
    record.writeUInt32LE(payload.length, 0);
    record.writeUInt32LE(lines.length, 8);
    record.writeDoubleLE(Date.now(), 12);
    payload.copy(record, HEADER);
    record.writeUInt32LE(crc32(payload, crc32(record.subarray(8, HEADER))), 4);
    return this.admit(record, lines.length);
  }

  private async admit(record: Buffer, lines: number): Promise<void> {
    while (this.totalBytes() + this.pendingBytes + record.length > this.config.maxBytes) {
      if (this.stopped) throw new PlantgateError('PG_ERR_BUFFER_STOPPED', 'buffer stopped while waiting for room', true);
      if (this.config.whenFull === 'drop_newest') {
        this.drop('buffer_full_drop_newest', lines);
        throw new BufferFullError(`buffer full (${this.config.maxBytes} bytes): ${lines} new line(s) dropped`);
      }
      if (this.config.whenFull === 'drop_oldest' && this.dropOldestSegment()) continue;
      // block: sources wait here, which stops them reading, so brokers hold the messages.
      if (this.state === 'running') this.setState('degraded');
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    if (this.state === 'degraded') this.setState('running');
    this.pendingBytes += record.length;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ record, lines, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        if (this.config.commitDelay > 0) setTimeout(() => void this.flushLoop(), this.config.commitDelay);
        else setImmediate(() => void this.flushLoop());
      }
    });
  }

  /** Group commit: everything that arrived while the disk was busy goes in the next write+sync. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0);
        let bytes = 0;
        let lines = 0;
        for (const p of batch) {
          bytes += p.record.length;
          lines += p.lines;
        }
        try {
          const active = this.active;
          if (!active) throw new PlantgateError('PG_ERR_BUFFER_STOPPED', 'buffer is not open', true);
          const buf = batch.length === 1 ? batch[0]!.record : Buffer.concat(batch.map((p) => p.record), bytes);
          // Synchronous I/O on purpose: one write + one fdatasync per group, no thread-pool hop;
          // the event loop pause is the commit latency every waiting source needs anyway.
          writeAll(active.fd, buf, active.seg.size);
          if (this.config.fsync) fdatasyncSync(active.fd);
          const seg = active.seg;
          if (seg.firstAppendedAt === undefined) seg.firstAppendedAt = batch[0]!.record.readDoubleLE(12);
          seg.size += bytes;
          seg.records += batch.length;
          seg.lines += lines;
          this.counters.received += lines;
          this.lastValueAt = Date.now();
          this.pendingBytes -= bytes;
          for (const p of batch) p.resolve();
          if (seg.size >= this.config.segmentBytes) this.roll();
        } catch (err) {
          this.pendingBytes -= bytes;
          this.recordError(err);
          for (const p of batch) p.reject(err);
        }
        this.wake();
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Reads up to maxLines lines (whole records) after the consumer's cursor; null when caught up. */
  async read(consumer: string, maxLines: number, maxBytes = 16 * 1024 * 1024): Promise<BufferBatch | null> {
    let pos = this.cursorOf(consumer);
    const parts: string[] = [];
    let lines = 0;
    let bytes = 0;
    let firstAppendedAt = 0;
    for (;;) {
      const seg = this.segments.find((s) => s.id === pos.segment) ?? this.segments.find((s) => s.id > pos.segment);
      if (!seg) break;
      if (seg.id !== pos.segment) pos = { segment: seg.id, offset: 0 };
      if (pos.offset >= seg.size) {
        const next = this.segments.find((s) => s.id > seg.id);
        if (!next) break;
        pos = { segment: next.id, offset: 0 };
        continue;
      }
      const want = Math.min(seg.size - pos.offset, Math.max(maxBytes - bytes, HEADER));
      const fh = await this.readHandle(seg);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, pos.offset);
      let off = 0;
      while (off + HEADER <= bytesRead && lines < maxLines) {
        const len = buf.readUInt32LE(off);
        if (off + HEADER + len > bytesRead) {
          if (off === 0 && parts.length === 0) {
            // a record larger than maxBytes: read it whole
            return this.readOneLarge(seg, pos, fh, len);
          }
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

  private async readOneLarge(seg: Segment, pos: Position, fh: FileHandle, len: number): Promise<BufferBatch> {
    const buf = Buffer.allocUnsafe(HEADER + len);
    await fh.read(buf, 0, buf.length, pos.offset);
    return {
      body: buf.toString('utf8', HEADER),
      lines: buf.readUInt32LE(8),
      end: { segment: seg.id, offset: pos.offset + buf.length },
      firstAppendedAt: buf.readDoubleLE(12),
    };
  }

  /** Whether every committed record has been acknowledged by `consumer`. */
  caughtUp(consumer: string): boolean {
    const c = this.cursorOf(consumer);
    const last = this.segments[this.segments.length - 1];
    return !last || this.pending.length === 0 && (c.segment > last.id || (c.segment === last.id && c.offset >= last.size));
  }

  /** Lines committed since start; grows monotonically. */
  committedLines(): number {
    return this.counters.received;
  }

  /** Resolves when committedLines() reaches `atLeast` (default: any new commit), after timeoutMs, on stop or on `signal`. */
  waitForData(timeoutMs: number, atLeast = this.counters.received + 1, signal?: AbortSignal): Promise<void> {
    if (this.stopped || signal?.aborted || this.counters.received >= atLeast) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = { atLeast, done };
      const t = setTimeout(done, timeoutMs);
      const self = this;
      signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        self.waiters = self.waiters.filter((w) => w !== waiter);
        resolve();
      }
      this.waiters.push(waiter);
    });
  }

  /** Marks everything up to `end` as accepted downstream for this consumer. */
  ack(consumer: string, end: Position, lines: number): void {
    this.cursors.set(consumer, end);
    this.counters.written += lines;
    this.saveCursors();
    this.collect();
  }

  private cursorOf(consumer: string): Position {
    let c = this.cursors.get(consumer);
    if (!c) {
      c = { segment: this.segments[0]?.id ?? 1, offset: 0 };
      this.cursors.set(consumer, c);
    }
    return c;
  }

  private minCursor(): Position | undefined {
    let min: Position | undefined;
    for (const name of this.consumers) {
      const c = this.cursorOf(name);
      if (!min || c.segment < min.segment || (c.segment === min.segment && c.offset < min.offset)) min = c;
    }
    return min;
  }

  /** Deletes segments every consumer has passed (invariant 2). */
  private collect(): void {
    const min = this.minCursor();
    if (!min) return;
    let freed = false;
    while (this.segments.length > 1) {
      const first = this.segments[0]!;
      const done = first.id < min.segment || (first.id === min.segment && min.offset >= first.size && first !== this.active?.seg);
      if (!done || first === this.active?.seg) break;
      this.removeSegment(first);
      freed = true;
    }
    if (freed) for (const w of this.roomWaiters.splice(0)) w();
  }

  private dropOldestSegment(): boolean {
    if (this.segments.length < 2) {
      if (!this.active || this.active.seg.size === 0) return false;
      this.roll();
    }
    const first = this.segments[0]!;
    if (first === this.active?.seg) return false;
    const min = this.minCursor();
    // Lines not yet written by the slowest consumer are lost: count them as dropped with the reason.
    const unwritten = min && min.segment <= first.id ? first.lines : 0;
    if (unwritten) this.drop('buffer_full_drop_oldest', unwritten);
    this.removeSegment(first);
    const next = this.segments[0]!;
    for (const [name, c] of this.cursors) if (c.segment <= first.id) this.cursors.set(name, { segment: next.id, offset: 0 });
    this.saveCursors();
    return true;
  }

  private removeSegment(seg: Segment): void {
    const h = this.readHandles.get(seg.id);
    if (h) {
      void h.close().catch(() => undefined);
      this.readHandles.delete(seg.id);
    }
    try {
      unlinkSync(seg.path);
    } catch (err) {
      this.recordError(err);
    }
    this.segments = this.segments.filter((s) => s !== seg);
  }

  private async readHandle(seg: Segment): Promise<FileHandle> {
    let h = this.readHandles.get(seg.id);
    if (!h) {
      h = await open(seg.path, 'r');
      this.readHandles.set(seg.id, h);
    }
    return h;
  }

  private totalBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  private wake(): void {
    const n = this.counters.received;
    for (const w of [...this.waiters]) if (this.stopped || n >= w.atLeast) w.done();
  }

  private segPath(id: number): string {
    return join(this.config.dir, `${String(id).padStart(20, '0')}.seg`);
  }

  private openActive(): void {
    const last = this.segments[this.segments.length - 1];
    if (last && last.size < this.config.segmentBytes) {
      this.active = { seg: last, fd: openSync(last.path, 'r+') };
      return;
    }
    this.newSegment((last?.id ?? 0) + 1);
  }

  private newSegment(id: number): void {
    const seg: Segment = { id, path: this.segPath(id), size: 0, records: 0, lines: 0 };
    const fd = openSync(seg.path, 'w+');
    fsyncDir(this.config.dir);
    this.segments.push(seg);
    this.active = { seg, fd };
  }

  private roll(): void {
    if (!this.active) return;
    closeSync(this.active.fd);
    this.newSegment(this.active.seg.id + 1);
  }

  /** Invariant 4: check every record, cut a torn tail, count what was lost. */
  private recover(): void {
    const ids = readdirSync(this.config.dir)
      .filter((f) => /^\d{20}\.seg$/.test(f))
      .map((f) => Number(f.slice(0, 20)))
      .sort((a, b) => a - b);
    this.segments = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (i > 0 && id !== ids[i - 1]! + 1) {
        this.recovered.missingSegments += id - ids[i - 1]! - 1;
        this.drop('segment_missing', 0);
        this.recordError(new Error(`buffer segments ${ids[i - 1]! + 1}..${id - 1} are missing; their records are lost`));
      }
      const path = this.segPath(id);
      const seg = scanSegment(id, path);
      const fileSize = statSync(path).size;
      if (seg.size < fileSize) {
        const lost = fileSize - seg.size;
        this.recovered.tornBytes += lost;
        this.recovered.corruptSegments++;
        this.drop('corrupt_record', 1);
        this.recordError(new Error(`buffer segment ${id}: ${lost} byte(s) after offset ${seg.size} are torn or corrupt and were cut off`));
        const fd = openSync(path, 'r+');
        ftruncateSync(fd, seg.size);
        fsyncSync(fd);
        closeSync(fd);
      }
      this.segments.push(seg);
    }
  }

  private cursorFile(): string {
    return join(this.config.dir, 'cursors.json');
  }

  private loadCursors(): void {
    const file = this.cursorFile();
    if (!existsSync(file)) return;
    try {
      const data = JSON.parse(readText(file)) as Record<string, Position>;
      for (const [name, pos] of Object.entries(data)) {
        if (Number.isInteger(pos?.segment) && Number.isInteger(pos?.offset)) this.cursors.set(name, pos);
      }
    } catch (err) {
      // A torn cursor file only means replaying from the oldest segment: at least once still holds.
      this.recordError(new Error(`cursors.json unreadable (${(err as Error).message}); replaying from the oldest segment`));
    }
    // A cursor past a truncated tail points at bytes that no longer exist: clamp it.
    for (const [name, pos] of this.cursors) {
      const seg = this.segments.find((s) => s.id === pos.segment);
      if (seg && pos.offset > seg.size) this.cursors.set(name, { segment: seg.id, offset: seg.size });
    }
  }

  private saveCursors(): void {
    const file = this.cursorFile();
    const tmp = `${file}.tmp`;
    const fd = openSync(tmp, 'w');
    writeSync(fd, JSON.stringify(Object.fromEntries(this.cursors)));
    closeSync(fd);
    renameSync(tmp, file);
  }
}

function writeAll(fd: number, buf: Buffer, position: number): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, position + off);
}

function readText(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const buf = Buffer.alloc(size);
    readSync(fd, buf, 0, size, 0);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    // some filesystems refuse fsync on directories; the segment data itself is still synced
  }
}

/** Valid prefix of a segment: stops at the first record that is short or fails its checksum. */
export function scanSegment(id: number, path: string): Segment {
  const seg: Segment = { id, path, size: 0, records: 0, lines: 0 };
  const fd = openSync(path, 'r');
  try {
    const fileSize = statSync(path).size;
    const header = Buffer.alloc(HEADER);
    let off = 0;
    while (off + HEADER <= fileSize) {
      readSync(fd, header, 0, HEADER, off);
      const len = header.readUInt32LE(0);
      if (len > MAX_RECORD || off + HEADER + len > fileSize) break;
      const payload = Buffer.allocUnsafe(len);
      readSync(fd, payload, 0, len, off + HEADER);
      if (crc32(payload, crc32(header.subarray(8, HEADER))) !== header.readUInt32LE(4)) break;
      if (seg.firstAppendedAt === undefined) seg.firstAppendedAt = header.readDoubleLE(12);
      seg.records++;
      seg.lines += header.readUInt32LE(8);
      off += HEADER + len;
    }
    seg.size = off;
    return seg;
  } finally {
    closeSync(fd);
  }
}
