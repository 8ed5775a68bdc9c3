/**
 * The durable buffer between processors and sinks (docs/delivery.md, rules 1, 2, 3 and 5).
 *
 * Layout: `dir/NNNNNNNNNNNNNNNNNNNN.seg` append-only segment files of records (record.ts) and the
 * ledger's small files (ledger.ts): `cursors.json`, the position up to which each sink has had
 * its writes accepted, `segments.json`, the line count of each closed segment, and `losses.json`,
 * damage found on open until an operator acknowledges it.
 *
 * Files: record.ts (the record format and the scan that finds damage), ledger.ts (the state files),
 * recovery.ts (opening: invariant 4), writer.ts (records of a group of appends, the file writes and
 * syncs), reader.ts (batches after a cursor, read handles), and this one: the state both sides
 * share (the segment list, the active segment, the cursors) and every decision on it, which is
 * where the invariants below live: group commit, roll, full disk, acknowledgement, deletion. That
 * state stays in one class so each invariant is kept in one place; that is why this file is
 * longer than ~400 lines.
 *
 * Invariants, which every change here must keep:
 *  1. `append()` resolves only after the record is written and (with fsync on) fdatasync'd.
 *     Sources acknowledge their input only after that promise resolves.
 *  2. A segment file is deleted only when every consumer's cursor is past it (or, with
 *     whenFull=drop_oldest, when it is dropped on purpose and its records counted as dropped).
 *  3. A cursor moves only on `ack()`, i.e. after the sink's write was accepted. A crash between
 *     the write and the cursor update replays the batch: at least once, never less.
 *  4. On open, every record is checked. A damaged stretch is skipped up to the next record that
 *     checks out (even after a broken length field); what is left after the last intact record is
 *     cut off (a torn tail after a crash: that append was never acknowledged). A missing segment
 *     is detected from `segments.json`. Every loss is counted in lines, exactly where the manifest
 *     knows the segment's line count and otherwise as an estimate with an upper bound; each
 *     finding is logged with its file and offset and kept in `losses.json` until acknowledged.
 *     Damage before every consumer's cursor was delivered already and is not a loss.
 *  5. Memory is bounded: records are read in chunks of at most `maxBytes` per `read()` and
 *     pending appends are bounded by the sources' own flow control.
 *  6. A disk that refuses writes (no space, I/O error) never fails an append and never stops the
 *     process: the commit is retried with backoff, appends wait (so sources hold back their
 *     acknowledgements), the state is `disk_error`, and the ledger's writes never throw.
 */
import { closeSync, mkdirSync, openSync, statfsSync, unlinkSync } from 'node:fs';
import type { Logger } from 'pino';
import { BaseComponent } from '../core/component.js';
import { PlantgateError } from '../core/errors.js';
import { backoff } from '../core/retry.js';
import type { BufferConfig } from './config.js';
import { isDiskError, isNoSpace, Ledger } from './ledger.js';
import { appendedAtOf, type BufferBatch, readBatch, SegmentFiles } from './reader.js';
import { HEADER, MAX_RECORD } from './record.js';
import { type BufferLoss, clampCursors, countLines, loadCursors, noneRecovered, type Position, type Recovery, recoverSegments, type Segment, segmentPath } from './recovery.js';
import { fdatasyncAsync, fsyncDir, ftruncateAsync, type PendingAppend, recordsOf, writeAll } from './writer.js';

export type { BufferBatch } from './reader.js';
export type { BufferLoss, Position } from './recovery.js';

const NO_LINES: string[] = [];

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
  /**
   * The commit the appends in `pending` wait for, one for the whole group: they are written and
   * synced together and succeed or fail together. (One promise with its resolve and reject per
   * append was a tenth of what the MQTT path allocated per message.)
   */
  private commit?: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void };
  private pendingBytes = 0;
  private flushing = false;
  private waiters: { atLeast: number; done: () => void }[] = [];
  private roomWaiters: (() => void)[] = [];
  private readonly files = new SegmentFiles();
  private recovered = noneRecovered();
  /** Damage found on open and not yet acknowledged by an operator (persisted in losses.json). */
  private losses: BufferLoss[] = [];
  /** Per consumer: lines inside its cursor's segment before the cursor (kept so depth is exact and cheap). */
  private linesBefore = new Map<string, { segment: number; offset: number; lines: number }>();
  /** Line counts of closed segments (persisted in segments.json) so a missing one can be counted. */
  private manifest = new Map<number, number>();
  private stopped = false;
  private ledger!: Ledger;
  /** Set while commits fail for a reason of the disk's (invariant 6). */
  private diskError?: { code: string; message: string; since: number; retries: number; noSpace: boolean };
  private ledgerProblem?: { file: string; code: string; message: string; since: number };
  /** Wakes a commit that waits for the disk, early, when space was freed. */
  private diskWaiter?: () => void;
  private log?: Logger;

  constructor(name: string, private readonly config: BufferConfig, private readonly consumers: string[], log?: Logger) {
    super(name);
    this.log = log?.child({ component: name });
  }

  protected async doStart(): Promise<void> {
    this.stopped = false;
    mkdirSync(this.config.dir, { recursive: true });
    this.ledger = new Ledger(this.config.dir, (p) => this.onLedgerProblem(p));
    const r: Recovery = { dir: this.config.dir, ledger: this.ledger, log: this.log, recovered: this.recovered, drop: (reason, n) => this.drop(reason, n), recordError: (err) => this.recordError(err) };
    for (const [name, pos] of loadCursors(r)) this.cursors.set(name, pos);
    // the slowest cursor decides what was delivered (consumers without a cursor start at segment 1)
    this.segments = [];
    ({ segments: this.segments, manifest: this.manifest, losses: this.losses } = recoverSegments(r, this.minCursor()));
    clampCursors(this.cursors, this.segments);
    this.openActive();
    this.ledger.ensureReserve();
    this.checkFreeSpace();
  }

  protected async doStop(): Promise<void> {
    this.stopped = true;
    this.diskWaiter?.();
    while (this.flushing || this.pending.length) await new Promise((r) => setTimeout(r, 5));
    await this.files.closeAll();
    if (this.active) {
      closeSync(this.active.fd);
      this.active = undefined;
    }
    this.ledger.close();
    this.wake();
    for (const w of this.roomWaiters.splice(0)) w();
  }

  /** Space the filesystem has left for the buffer, or undefined where it cannot tell. */
  private freeBytes(): number | undefined {
    try {
      const s = statfsSync(this.config.dir);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }

  /** maxBytes beyond what the disk can hold means the disk fills first: say so at start. */
  private checkFreeSpace(): void {
    const free = this.freeBytes();
    if (free === undefined) return;
    const room = free + this.totalBytes();
    if (this.config.maxBytes > room) {
      this.log?.warn(
        { code: 'PG_ERR_BUFFER_OVER_FREE_SPACE', dir: this.config.dir, maxBytes: this.config.maxBytes, freeBytes: free },
        `buffer.maxBytes (${this.config.maxBytes} bytes) is more than the disk has room for (${room} bytes): the disk will fill before the buffer does; intake then waits for space (state disk_error)`,
      );
    }
  }

  private onLedgerProblem(p: Ledger['problem']): void {
    this.ledgerProblem = p;
    if (p) {
      this.recordError(new Error(`cannot write ${p.file}: ${p.code}`));
      this.log?.error({ code: 'PG_ERR_BUFFER_LEDGER_WRITE', file: p.file, errno: p.code }, `buffer cannot write ${p.file} (${p.message}); retrying, nothing is lost (a restart would replay from the last saved cursor)`);
    } else {
      this.log?.info({ code: 'PG_ERR_BUFFER_LEDGER_WRITE' }, 'buffer state files written again');
    }
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
    return { lines, bytes, oldestAppendedAt: lines > 0 && c ? appendedAtOf(this.segments, c) : undefined };
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

  override details() {
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
      freeBytes: this.freeBytes(),
      diskError: this.diskError ? { ...this.diskError } : undefined,
      ledgerError: this.ledgerProblem ? { ...this.ledgerProblem } : undefined,
      recovered: { ...this.recovered },
      losses: this.losses.length ? { lines: this.losses.reduce((n, l) => n + l.lines, 0), exact: this.losses.every((l) => l.exact), findings: this.losses.slice(-20) } : undefined,
      cursors: Object.fromEntries(this.cursors),
    };
  }

  /** Damage found on open that an operator has not acknowledged yet. */
  unacknowledgedLosses(): BufferLoss[] {
    return [...this.losses];
  }

  /** The operator has seen the losses: they leave the status (and losses.json). Returns how many. */
  acknowledgeLosses(): number {
    const n = this.losses.length;
    this.losses = [];
    this.ledger.save('losses', () => '[]');
    if (n) this.log?.info({ findings: n }, 'buffer losses acknowledged by an operator');
    return n;
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

  private admit(lines: string[], bytes: number): Promise<void> {
    if (this.state === 'full' || this.totalBytes() + this.pendingBytes + bytes > this.config.maxBytes) return this.admitWhenRoom(lines, bytes);
    return this.enqueue(lines, bytes);
  }

  /** The buffer is full: what `whenFull` says, and with `block`, wait for room. */
  private async admitWhenRoom(lines: string[], bytes: number): Promise<void> {
    while (this.totalBytes() + this.pendingBytes + bytes > this.config.maxBytes) {
      if (this.stopped) throw new PlantgateError('PG_ERR_BUFFER_STOPPED', 'buffer stopped while waiting for room', true);
      if (this.config.whenFull === 'drop_newest') {
        this.drop('buffer_full_drop_newest', lines.length);
        throw new BufferFullError(`buffer full (${this.config.maxBytes} bytes): ${lines.length} new line(s) dropped`);
      }
      if (this.config.whenFull === 'drop_oldest' && this.dropOldestSegment()) continue;
      // block: sources wait here, which stops them reading, so brokers hold the messages.
      if (this.state === 'running') {
        this.setState('full');
        this.log?.warn({ code: 'PG_ERR_BUFFER_FULL', maxBytes: this.config.maxBytes }, `buffer full (${this.config.maxBytes} bytes): intake is held back until a sink frees space`);
      }
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    if (this.state === 'full') {
      this.setState('running');
      this.log?.info({ code: 'PG_ERR_BUFFER_FULL' }, 'buffer has room again: intake resumes');
    }
    return this.enqueue(lines, bytes);
  }

  private enqueue(lines: string[], bytes: number): Promise<void> {
    this.pendingBytes += bytes;
    this.pending.push({ lines, bytes, at: Date.now() });
    if (!this.commit) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((a, b) => {
        resolve = a;
        reject = b;
      });
      this.commit = { promise, resolve, reject };
    }
    if (!this.flushing) {
      this.flushing = true;
      if (this.config.commitDelay > 0) setTimeout(() => void this.flushLoop(), this.config.commitDelay);
      else setImmediate(() => void this.flushLoop());
    }
    return this.commit.promise;
  }

  /** Group commit: everything that arrived while the disk was busy goes in the next write+sync. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0);
        const commit = this.commit!;
        this.commit = undefined;
        let reserved = 0;
        for (const p of batch) reserved += p.bytes;
        const { buf, records, lines, firstAt } = recordsOf(batch);
        // the record bytes are all that the write (and any retry of it) needs: the lines can go
        for (const p of batch) p.lines = NO_LINES;
        for (let attempt = 0; ; attempt++) {
          const active = this.active;
          try {
            if (!active) throw new PlantgateError('PG_ERR_BUFFER_STOPPED', 'buffer is not open', true);
            // in libuv's thread pool, so the loop goes on taking the next group (writer.ts)
            await writeAll(active.fd, buf, active.seg.size);
            if (this.config.fsync) await fdatasyncAsync(active.fd);
          } catch (err) {
            if (isDiskError(err) && active && !this.stopped) {
              // invariant 6: keep the batch, give back what the half-written commit took, wait, write it again
              await ftruncateAsync(active.fd, active.seg.size).catch(() => undefined);
              this.diskFailed(err);
              await this.waitForDisk(backoff(attempt, 250, 5000));
              continue;
            }
            this.pendingBytes -= reserved;
            this.recordError(err);
            commit.reject(err);
            break;
          }
          if (this.diskError) this.diskRecovered();
          const seg = active.seg;
          if (seg.firstAppendedAt === undefined) seg.firstAppendedAt = firstAt;
          seg.size += buf.length;
          seg.records += records;
          seg.lines += lines;
          this.counters.received += lines;
          this.lastValueAt = Date.now();
          this.pendingBytes -= reserved;
          commit.resolve();
          if (seg.size >= this.config.segmentBytes) this.roll();
          break;
        }
        this.wake();
      }
    } finally {
      this.flushing = false;
    }
  }

  private diskFailed(err: NodeJS.ErrnoException): void {
    const code = err.code ?? 'EIO';
    if (!this.diskError) {
      this.diskError = { code, message: err.message, since: Date.now(), retries: 0, noSpace: isNoSpace(err) };
      this.recordError(err);
      this.setState('disk_error');
      const what = this.diskError.noSpace ? 'the disk is full' : `the disk refuses writes (${code})`;
      this.log?.error(
        { code: this.diskError.noSpace ? 'PG_ERR_BUFFER_DISK_FULL' : 'PG_ERR_BUFFER_DISK_ERROR', errno: code, dir: this.config.dir, freeBytes: this.freeBytes() },
        `buffer cannot commit: ${what}; intake waits (no acknowledgement is sent) and the write is retried`,
      );
    }
    this.diskError.retries++;
  }

  private diskRecovered(): void {
    const e = this.diskError!;
    this.diskError = undefined;
    this.setState('running');
    this.log?.info({ code: e.noSpace ? 'PG_ERR_BUFFER_DISK_FULL' : 'PG_ERR_BUFFER_DISK_ERROR', retries: e.retries, outageMs: Date.now() - e.since }, 'buffer commits again: the disk accepted the write');
  }

  /** Resolves after `ms`, or sooner when a segment was deleted or the buffer stops. */
  private waitForDisk(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(t);
        if (self.diskWaiter === done) self.diskWaiter = undefined;
        resolve();
      }
      this.diskWaiter = done;
    });
  }

  /** Reads up to maxLines lines (whole records) after the consumer's cursor; null when caught up. */
  read(consumer: string, maxLines: number, maxBytes = 16 * 1024 * 1024): Promise<BufferBatch | null> {
    return readBatch(this.segments, this.cursorOf(consumer), maxLines, maxBytes, this.files);
  }

  /**
   * `batch` grown by what was committed after it, up to maxLines in all (whole records), so a
   * sink waiting for a fuller batch reads each record once; `batch` itself when nothing new.
   * Nothing moves: the batch is acknowledged with ack() as any other.
   */
  async readMore(batch: BufferBatch, maxLines: number, maxBytes = 16 * 1024 * 1024): Promise<BufferBatch> {
    if (batch.lines >= maxLines) return batch;
    const more = await readBatch(this.segments, batch.end, maxLines - batch.lines, Math.max(maxBytes - Buffer.byteLength(batch.body), HEADER), this.files);
    if (!more) return batch;
    return { body: `${batch.body}\n${more.body}`, lines: batch.lines + more.lines, end: more.end, firstAppendedAt: batch.firstAppendedAt };
  }

  /** Whether every committed record has been acknowledged by `consumer`. */
  caughtUp(consumer: string): boolean {
    const c = this.cursorOf(consumer);
    const last = this.segments[this.segments.length - 1];
    return !last || this.pending.length === 0 && (c.segment > last.id || (c.segment === last.id && c.offset >= last.size));
  }

  /** Bytes of appends waiting for their commit (held in memory until then). */
  pendingAppendBytes(): number {
    return this.pendingBytes;
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
    if (!freed) return;
    // space was given back: state files that could not be written go first, then the reserve
    if (this.ledger.flush()) this.ledger.ensureReserve();
    this.diskWaiter?.();
    for (const w of this.roomWaiters.splice(0)) w();
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
    this.files.forget(seg.id);
    try {
      unlinkSync(seg.path);
    } catch (err) {
      this.recordError(err);
    }
    this.segments = this.segments.filter((s) => s !== seg);
    if (this.manifest.delete(seg.id)) this.saveManifest();
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
    return segmentPath(this.config.dir, id);
  }

  private openActive(): void {
    const last = this.segments[this.segments.length - 1];
    if (last && (last.size < this.config.segmentBytes || !this.newSegment(last.id + 1))) {
      // a full disk may refuse a new file: the last segment then takes more than segmentBytes
      this.active = { seg: last, fd: openSync(last.path, 'r+') };
      return;
    }
    if (!last && !this.newSegment(1)) throw new PlantgateError('PG_ERR_BUFFER_DISK_FULL', `cannot create a buffer segment in ${this.config.dir}`);
  }

  /** Opens segment `id` as the active one; false (the active one unchanged) when the disk refuses. */
  private newSegment(id: number): boolean {
    const seg: Segment = { id, path: this.segPath(id), size: 0, records: 0, lines: 0 };
    let fd: number;
    try {
      fd = openSync(seg.path, 'w+');
    } catch (err) {
      if (!isDiskError(err)) throw err;
      this.diskFailed(err);
      return false;
    }
    fsyncDir(this.config.dir);
    this.segments.push(seg);
    this.active = { seg, fd };
    return true;
  }

  /** Closes the active segment and starts the next; on a full disk the active one goes on growing. */
  private roll(): void {
    const old = this.active;
    if (!old || !this.newSegment(old.seg.id + 1)) return;
    closeSync(old.fd);
    this.manifest.set(old.seg.id, old.seg.lines);
    this.saveManifest();
  }

  private saveManifest(): void {
    this.ledger.save('manifest', () => JSON.stringify(Object.fromEntries(this.manifest)));
  }

  private saveCursors(): void {
    this.ledger.save('cursors', () => JSON.stringify(Object.fromEntries(this.cursors)));
  }
}
