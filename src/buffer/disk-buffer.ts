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
 *  4. On open, every record is checked. A corrupt record whose successor is intact is skipped
 *     (one record lost); otherwise the segment is cut at the first bad record (a torn tail after a
 *     crash: that record was never acknowledged). A missing segment is detected from
 *     `segments.json`, which records each closed segment's line count. Every loss is counted.
 *  5. Memory is bounded: records are read in chunks of at most `maxBytes` per `read()` and
 *     pending appends are bounded by the sources' own flow control.
 */
import { closeSync, existsSync, fdatasync, write, readFileSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync, ftruncateSync } from 'node:fs';
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
  /** Offsets of records that failed their checksum but whose successor is intact: skipped on read. */
  corrupt?: Set<number>;
}

interface PendingAppend {
  lines: string[];
  /** UTF-8 bytes of the lines with their separators, plus a record header (the room it reserves). */
  bytes: number;
  at: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Appends that arrive while a commit is on its way are written as few records as these allow:
 * one record per MQTT message cost a header, a checksum, a copy and, on the read side, a slice
 * each (a tenth of the gateway's CPU at 40,000 messages/s). Small enough that a sink's batch
 * stays close to its batchSize (reads take whole records).
 */
const GROUP_LINES = 1000;
const GROUP_BYTES = 1024 * 1024;

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
  private recovered = { tornBytes: 0, corruptRecords: 0, corruptSegments: 0, missingSegments: 0, linesLost: 0 };
  /** Per consumer: lines inside its cursor's segment before the cursor (kept so depth is exact and cheap). */
  private linesBefore = new Map<string, { segment: number; offset: number; lines: number }>();
  /** Line counts of closed segments (persisted in segments.json) so a missing one can be counted. */
  private manifest = new Map<number, number>();
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

  /** Lines the slowest consumer has not had accepted yet, bytes on disk, and the oldest append time. */
  depth(): { lines: number; bytes: number; oldestAppendedAt?: number } {
    let bytes = 0;
    for (const s of this.segments) bytes += s.size;
    let lines = 0;
    let slowest: string | undefined;
    for (const name of this.consumers) {
      const n = this.unreadLines(name);
      if (n >= lines) {
        lines = n;
        slowest = name;
      }
    }
    const c = slowest ? this.cursorOf(slowest) : undefined;
    return { lines, bytes, oldestAppendedAt: lines > 0 && c ? this.appendedAtOf(c) : undefined };
  }

  /** Append time of the first unread record at or after `pos` (one header read). */
  private appendedAtOf(pos: Position): number | undefined {
    for (const seg of this.segments) {
      if (seg.id < pos.segment) continue;
      const off = seg.id === pos.segment ? pos.offset : 0;
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

  /** Exact number of committed lines after `consumer`'s cursor. */
  unreadLines(consumer: string): number {
    const c = this.cursorOf(consumer);
    let n = 0;
    for (const s of this.segments) {
      if (s.id > c.segment) n += s.lines;
      else if (s.id === c.segment) n += s.lines - this.linesBeforeCursor(consumer, s);
    }
    return Math.max(0, n);
  }

  private linesBeforeCursor(consumer: string, seg: Segment): number {
    const c = this.cursorOf(consumer);
    let lb = this.linesBefore.get(consumer);
    if (!lb || lb.segment !== c.segment || lb.offset !== c.offset) {
      lb = { segment: c.segment, offset: c.offset, lines: countLines(seg, c.offset) };
      this.linesBefore.set(consumer, lb);
    }
    return lb.lines;
  }

  protected override details(): Record<string, unknown> {
    const d = this.depth();
    return {
      dir: this.config.dir,
      segments: this.segments.length,
      bytesOnDisk: d.bytes,
      maxBytes: this.config.maxBytes,
      linesQueued: d.lines,
      oldestAppendedAt: d.oldestAppendedAt,
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
    let bytes = HEADER - 1;
    for (const l of lines) bytes += Buffer.byteLength(l, 'utf8') + 1;
    if (bytes - HEADER > MAX_RECORD) return Promise.reject(new PlantgateError('PG_ERR_RECORD_TOO_LARGE', `record of ${bytes - HEADER} bytes exceeds ${MAX_RECORD}`));
    return this.admit(lines, bytes);
  }

  private async admit(lines: string[], bytes: number): Promise<void> {
    while (this.totalBytes() + this.pendingBytes + bytes > this.config.maxBytes) {
      if (this.stopped) throw new PlantgateError('PG_ERR_BUFFER_STOPPED', 'buffer stopped while waiting for room', true);
      if (this.config.whenFull === 'drop_newest') {
        this.drop('buffer_full_drop_newest', lines.length);
        throw new BufferFullError(`buffer full (${this.config.maxBytes} bytes): ${lines.length} new line(s) dropped`);
      }
      if (this.config.whenFull === 'drop_oldest' && this.dropOldestSegment()) continue;
      // block: sources wait here, which stops them reading, so brokers hold the messages.
      if (this.state === 'running') this.setState('degraded');
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    if (this.state === 'degraded') this.setState('running');
    this.pendingBytes += bytes;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ lines, bytes, at: Date.now(), resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        if (this.config.commitDelay > 0) setTimeout(() => void this.flushLoop(), this.config.commitDelay);
        else setImmediate(() => void this.flushLoop());
      }
    });
  }

  /** The records for a group of appends: as few as GROUP_LINES / GROUP_BYTES allow, in order. */
  private static records(batch: PendingAppend[]): { buf: Buffer; records: number; lines: number; firstAt: number } {
    const out: Buffer[] = [];
    let lines = 0;
    let group: string[] = [];
    let groupBytes = 0;
    let groupAt = 0;
    const close = () => {
      const payload = Buffer.from(group.join('\n'), 'utf8');
      const header = Buffer.allocUnsafe(HEADER);
      header.writeUInt32LE(payload.length, 0);
      header.writeUInt32LE(group.length, 8);
      header.writeDoubleLE(groupAt, 12);
      header.writeUInt32LE(crc32(payload, crc32(header.subarray(8, HEADER))), 4);
      out.push(header, payload);
      group = [];
      groupBytes = 0;
    };
    for (const p of batch) {
      if (group.length > 0 && (group.length + p.lines.length > GROUP_LINES || groupBytes + p.bytes > GROUP_BYTES)) close();
      if (group.length === 0) groupAt = p.at;
      for (const l of p.lines) group.push(l);
      groupBytes += p.bytes;
      lines += p.lines.length;
    }
    if (group.length) close();
    return { buf: Buffer.concat(out), records: out.length / 2, lines, firstAt: batch[0]!.at };
  }

  /** Group commit: everything that arrived while the disk was busy goes in the next write+sync. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0);
        let reserved = 0;
        for (const p of batch) reserved += p.bytes;
        try {
          const active = this.active;
          if (!active) throw new PlantgateError('PG_ERR_BUFFER_STOPPED', 'buffer is not open', true);
          const { buf, records, lines, firstAt } = DiskBuffer.records(batch);
          // Write and fdatasync in libuv's thread pool: while the disk works, the event loop goes
          // on parsing and encoding what arrives, and that becomes the next group. (Synchronous
          // I/O here held the loop for the whole commit: a third of its time under load.)
          await writeAll(active.fd, buf, active.seg.size);
          if (this.config.fsync) await fdatasyncAsync(active.fd);
          const seg = active.seg;
          if (seg.firstAppendedAt === undefined) seg.firstAppendedAt = firstAt;
          seg.size += buf.length;
          seg.records += records;
          seg.lines += lines;
          this.counters.received += lines;
          this.lastValueAt = Date.now();
          this.pendingBytes -= reserved;
          for (const p of batch) p.resolve();
          if (seg.size >= this.config.segmentBytes) this.roll();
        } catch (err) {
          this.pendingBytes -= reserved;
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
        if (seg.corrupt?.has(pos.offset + off)) {
          if (off + HEADER + len > bytesRead) break;
          off += HEADER + len; // counted when found at start
          continue;
        }
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
    const prev = this.cursorOf(consumer);
    const lb = this.linesBefore.get(consumer);
    if (lb && lb.segment === prev.segment && lb.offset === prev.offset && end.segment === prev.segment) {
      this.linesBefore.set(consumer, { ...end, lines: lb.lines + lines });
    } else {
      this.linesBefore.delete(consumer); // recomputed from the segment on next use
    }
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
    if (this.manifest.delete(seg.id)) this.saveManifest();
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
    this.manifest.set(this.active.seg.id, this.active.seg.lines);
    this.saveManifest();
    this.newSegment(this.active.seg.id + 1);
  }

  private saveManifest(): void {
    atomicWrite(join(this.config.dir, 'segments.json'), JSON.stringify(Object.fromEntries(this.manifest)));
  }

  /** Invariant 4: check every record, skip or cut what is corrupt, count what was lost. */
  private recover(): void {
    const ids = readdirSync(this.config.dir)
      .filter((f) => /^\d{20}\.seg$/.test(f))
      .map((f) => Number(f.slice(0, 20)))
      .sort((a, b) => a - b);
    this.manifest = this.loadManifest();
    this.segments = [];
    const present = new Set(ids);
    const known = new Set(this.manifest.keys());
    // Segments listed as closed but gone: their lines are lost. Segments that were fully consumed
    // are removed from the manifest when deleted, so anything left here was not yet written.
    for (const [id, lines] of this.manifest) {
      if (present.has(id)) continue;
      this.recovered.missingSegments++;
      this.recovered.linesLost += lines;
      this.drop('segment_missing', lines);
      this.recordError(new Error(`buffer segment ${id} is missing; its ${lines} line(s) are lost`));
      this.manifest.delete(id);
    }
    for (let i = 1; i < ids.length; i++) {
      for (let gap = ids[i - 1]! + 1; gap < ids[i]!; gap++) {
        if (known.has(gap)) continue;
        // a gap the manifest does not know (manifest lost as well): count the segment, lines unknown
        this.recovered.missingSegments++;
        this.drop('segment_missing', 0);
        this.recordError(new Error(`buffer segment ${gap} is missing; its line count is unknown`));
      }
    }
    for (const id of ids) {
      const path = this.segPath(id);
      const seg = scanSegment(id, path);
      const fileSize = statSync(path).size;
      if (seg.corrupt?.size) {
        this.recovered.corruptRecords += seg.corrupt.size;
        this.drop('corrupt_record', seg.corrupt.size);
        this.recordError(new Error(`buffer segment ${id}: ${seg.corrupt.size} record(s) failed their checksum and are skipped`));
      }
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
    this.saveManifest();
  }

  private loadManifest(): Map<number, number> {
    const file = join(this.config.dir, 'segments.json');
    if (!existsSync(file)) return new Map();
    try {
      return new Map(Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>).map(([k, v]) => [Number(k), Number(v)]));
    } catch (err) {
      this.recordError(new Error(`segments.json unreadable (${(err as Error).message}); missing segments cannot be counted exactly`));
      return new Map();
    }
  }

  private cursorFile(): string {
    return join(this.config.dir, 'cursors.json');
  }

  private loadCursors(): void {
    const file = this.cursorFile();
    if (!existsSync(file)) return;
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Position>;
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
    atomicWrite(this.cursorFile(), JSON.stringify(Object.fromEntries(this.cursors)));
  }
}

/** Write-then-rename, so a crash leaves the old or the new file, never half of one. */
function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, text);
  closeSync(fd);
  renameSync(tmp, file);
}

async function writeAll(fd: number, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await writeAsync(fd, buf, off, buf.length - off, position + off);
}

function writeAsync(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
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

/** Records of a segment that read back intact (see invariant 4). */
export function scanSegment(id: number, path: string): Segment {
  const seg: Segment = { id, path, size: 0, records: 0, lines: 0 };
  const fd = openSync(path, 'r');
  try {
    const fileSize = statSync(path).size;
    let off = 0;
    while (off + HEADER <= fileSize) {
      const rec = readRecord(fd, off, fileSize);
      if (rec === 'bad') {
        const len = readHeaderLength(fd, off);
        const next = off + HEADER + len;
        // only the checksum failed and the next record is intact: skip just this one
        if (len <= MAX_RECORD && next + HEADER <= fileSize && readRecord(fd, next, fileSize) !== 'bad') {
          (seg.corrupt ??= new Set()).add(off);
          off = next;
          continue;
        }
        break;
      }
      if (seg.firstAppendedAt === undefined) seg.firstAppendedAt = rec.appendedAt;
      seg.records++;
      seg.lines += rec.lines;
      off += HEADER + rec.len;
    }
    seg.size = off;
    return seg;
  } finally {
    closeSync(fd);
  }
}

function readHeaderLength(fd: number, off: number): number {
  const h = Buffer.alloc(4);
  readSync(fd, h, 0, 4, off);
  return h.readUInt32LE(0);
}

function readRecord(fd: number, off: number, fileSize: number): 'bad' | { len: number; lines: number; appendedAt: number } {
  const header = Buffer.alloc(HEADER);
  if (readSync(fd, header, 0, HEADER, off) < HEADER) return 'bad';
  const len = header.readUInt32LE(0);
  if (len > MAX_RECORD || off + HEADER + len > fileSize) return 'bad';
  const payload = Buffer.allocUnsafe(len);
  readSync(fd, payload, 0, len, off + HEADER);
  if (crc32(payload, crc32(header.subarray(8, HEADER))) !== header.readUInt32LE(4)) return 'bad';
  return { len, lines: header.readUInt32LE(8), appendedAt: header.readDoubleLE(12) };
}

/** Lines in the records of `seg` that start before `offset` (headers only, skipping corrupt ones). */
function countLines(seg: Segment, offset: number): number {
  if (offset === 0) return 0;
  const fd = openSync(seg.path, 'r');
  try {
    const h = Buffer.alloc(HEADER);
    let off = 0;
    let n = 0;
    while (off < offset && readSync(fd, h, 0, HEADER, off) === HEADER) {
      if (!seg.corrupt?.has(off)) n += h.readUInt32LE(8);
      off += HEADER + h.readUInt32LE(0);
    }
    return n;
  } finally {
    closeSync(fd);
  }
}
