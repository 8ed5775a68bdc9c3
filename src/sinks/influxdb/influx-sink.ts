/**
 * InfluxDB sink: reads batches from the durable buffer, writes them with the v1 `/write` or the v2
 * `/api/v2/write` protocol, and acknowledges them to the buffer only once InfluxDB accepted them
 * (docs/delivery.md, rules 2 and 4). The HTTP layer is @influxdata/influxdb-client's
 * transport, so both protocols share its gzip, timeouts and HttpError.
 *
 * Error sorting, never looping on a poisoned batch:
 *  - network errors, timeouts, 429 and 5xx: retry the same batch with exponential backoff and
 *    jitter, honouring Retry-After, without giving up (the buffer's size limit is the bound);
 *    state `retrying` until a write is accepted again;
 *  - 400 naming a field type conflict: the conflict is remembered, and every line that sends that
 *    field with the refused type loses it before it is sent (in this batch and in all later
 *    ones): the field goes to dead letters, the line's other fields are written. One bad field
 *    costs one extra request, not a bisection of every batch, and not the rest of its point;
 *  - other 400s (bad lines) and 413 (too large): split the batch in halves until the bad lines
 *    are alone, write the good ones, move each bad line to dead letters with InfluxDB's reason;
 *  - 401, 403, missing database or bucket: pause (state `paused`, alert on the status page),
 *    keep the data, probe again at the slowest backoff. A missing v1 database is created first
 *    (CREATE DATABASE, which needs admin rights where auth is on); only when that fails, paused.
 * Every change of state is logged with its PG_ERR code, once, and so is the recovery. A probe of
 * `/ping` at start shows an unreachable InfluxDB before the first point arrives.
 * Batches are written in buffer order and a batch is retried before the next is read, so writes
 * of one series stay in order.
 */
import type { Logger } from 'pino';
import { lineFields, parseTypeConflicts, withoutFields, type FieldType } from '../../lineprotocol/fields.js';
import { safeUrl } from '../../security/secrets.js';
import { clientTlsOptions } from '../../security/tls.js';
import { backoff, sleep } from '../../core/retry.js';
import { HttpError, InfluxDB } from '@influxdata/influxdb-client';
import { BaseComponent } from '../../core/component.js';
import { SinkWriteError } from '../../core/errors.js';
import type { BufferBatch, DiskBuffer } from '../../buffer/disk-buffer.js';
import type { Reject } from '../../deadletters/dead-letters.js';
import type { InfluxConfig } from './config.js';

type Transport = InfluxDB['transport'];

/** A field InfluxDB holds with another type than some lines send, and how many lines were refused for it. */
interface RefusedField {
  measurement: string;
  field: string;
  existing: FieldType;
  lines: number;
}

export class InfluxSink extends BaseComponent {
  readonly kind = 'sink' as const;
  readonly type: string;
  private transport!: Transport;
  private loop?: Promise<void>;
  private running = false;
  private abort = new AbortController();
  /** Aborted to cut short a wait for a fuller batch (stop, or drain before stop). */
  private wake = new AbortController();
  private draining = false;
  private writes = 0;
  private retries = 0;
  private lastLatencyMs = 0;
  private alert?: string;
  private backoffUntil = 0;
  /** Every request sent, accepted or not. */
  private requests = 0;
  /** Since when writes have failed (undefined while they are accepted). */
  private failingSince?: number;
  /** Fields InfluxDB holds with another type, by `measurement\0field`: lines sending them otherwise are refused before sending. */
  private readonly refusedFields = new Map<string, RefusedField>();
  private readonly log?: Logger;

  constructor(
    name: string,
    private readonly config: InfluxConfig,
    private readonly buffer: DiskBuffer,
    private readonly reject: Reject,
    log?: Logger,
  ) {
    super(name);
    this.type = `influxdb-${config.api}`;
    this.log = log?.child({ component: name });
  }

  protected async doStart(): Promise<void> {
    this.transport = new InfluxDB({
      url: this.config.url,
      token: this.config.api === 'v2' ? this.config.token : undefined,
      timeout: this.config.timeout,
      transportOptions: clientTlsOptions(this.config.tls),
    }).transport;
    this.running = true;
    this.draining = false;
    this.abort = new AbortController();
    this.wake = new AbortController();
    this.loop = this.run();
    void this.probe();
  }

  /**
   * Until the first write, GET /ping shows whether InfluxDB can be reached at all (retried with
   * backoff while it cannot); from the first write on, the writes themselves tell.
   */
  private async probe(): Promise<void> {
    for (let attempt = 0; this.running && this.requests === 0; attempt++) {
      try {
        await this.transport.request('/ping', '', { method: 'GET', signal: this.abort.signal });
        if (this.requests === 0) this.succeeded();
        return;
      } catch (raw) {
        const err = classify(raw);
        // an HTTP answer, even an error, means the server is there; the writes will sort the rest
        if (err.status !== undefined || !this.running) return;
        if (this.requests === 0) this.failed(err);
      }
      await sleep(backoff(attempt, this.config.retryMin, this.config.retryMax), this.abort.signal);
    }
  }

  /** A write (or the probe) failed: state retrying or paused, logged on each change of state. */
  private failed(err: SinkWriteError, paused = false): void {
    this.recordError(err);
    const state = paused ? 'paused' : 'retrying';
    this.failingSince ??= Date.now();
    if (this.state === state) return;
    this.setState(state);
    const fields = { code: err.code, status: err.status, url: safeUrl(this.config.url) };
    if (paused) this.log?.error(fields, `InfluxDB sink paused: ${err.message}; the data stays in the buffer and the write is tried again every ${this.config.retryMax} ms`);
    else this.log?.warn(fields, `InfluxDB write failed, retrying with backoff: ${err.message}`);
  }

  private succeeded(): void {
    if (this.state === 'running' && this.failingSince === undefined) return;
    const since = this.failingSince;
    this.failingSince = undefined;
    this.alert = undefined;
    this.setState('running');
    if (since !== undefined) this.log?.info({ code: 'PG_ERR_INFLUX_RECOVERED', outageMs: Date.now() - since, retries: this.retries }, 'InfluxDB accepts writes again');
  }

  /** Stops after the write in flight; what is not written stays in the buffer for the next start. */
  protected async doStop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.wake.abort();
    await this.loop;
  }

  /** Write what is buffered now, without waiting for fuller batches (graceful shutdown). */
  drain(): void {
    this.draining = true;
    this.wake.abort();
  }

  override details() {
    return {
      url: safeUrl(this.config.url),
      target: this.config.api === 'v1' ? this.config.database : `${this.config.org}/${this.config.bucket}`,
      writes: this.writes,
      requests: this.requests,
      retries: this.retries,
      failingSince: this.failingSince,
      refusedFields: this.refusedFields.size ? [...this.refusedFields.values()].slice(0, 20) : undefined,
      lastLatencyMs: this.lastLatencyMs,
      alert: this.alert,
      retryingUntil: this.backoffUntil > Date.now() ? this.backoffUntil : undefined,
    };
  }

  /** Waits for new data in the buffer, or until stop() is called. */
  private waitForData(ms: number, atLeast?: number): Promise<void> {
    if (this.draining) return sleep(Math.min(ms, 20), this.abort.signal);
    return this.buffer.waitForData(ms, atLeast, this.wake.signal);
  }

  private async run(): Promise<void> {
    const { batchSize, flushInterval } = this.config;
    // a batch read while it was not full yet, grown by what comes next instead of read again
    let held: BufferBatch | undefined;
    while (this.running) {
      const batch = held ? await this.buffer.readMore(held, batchSize) : await this.buffer.read(this.name, batchSize);
      held = undefined;
      if (!batch) {
        await this.waitForData(flushInterval);
        continue;
      }
      // Wait for a fuller batch unless the oldest line has waited flushInterval already;
      // wake when enough new lines are committed to fill it, not on every commit.
      const remaining = flushInterval - (Date.now() - batch.firstAppendedAt);
      if (batch.lines < batchSize && remaining > 0 && !this.draining) {
        await this.waitForData(remaining, this.buffer.committedLines() + batchSize - batch.lines);
        held = batch;
        continue;
      }
      this.counters.received += batch.lines;
      const sent = await this.writeBatch(batch.body, batch.lines);
      if (!sent) return; // stopped mid-retry: the batch stays in the buffer
      this.buffer.ack(this.name, batch.end, batch.lines);
    }
  }

  /**
   * The buffer's bytes go out as read: lines are split apart only where they must be looked at
   * one by one (fields InfluxDB refused before, or a 400 / 413 that splits the batch).
   */
  private writeBatch(body: string, lines: number): Promise<boolean> {
    if (this.refusedFields.size) return this.writeLines(body.split('\n'));
    return this.writeBody(body, lines, () => body.split('\n'));
  }

  /** Writes lines, retrying until accepted; false only when stopped first. */
  private writeLines(all: string[]): Promise<boolean> {
    const lines = this.refusedFields.size ? this.withoutRefusedFields(all) : all;
    if (lines.length === 0) return Promise.resolve(true);
    return this.writeBody(lines.join('\n'), lines.length, () => lines);
  }

  /** Writes `body` (`count` lines), retrying until accepted; a 400 or 413 splits it (`lines()`). False only when stopped first. */
  private async writeBody(body: string, count: number, lines: () => string[]): Promise<boolean> {
    let attempt = 0;
    while (this.running) {
      try {
        await this.write(body);
        this.counters.written += count;
        this.lastValueAt = Date.now();
        this.succeeded();
        return true;
      } catch (raw) {
        const err = classify(raw);
        if (!err.retryable && (err.status === 400 || err.status === 413)) {
          this.recordError(err);
          // a 400 is InfluxDB answering: the connection and the credentials are fine
          if (this.state === 'retrying') this.succeeded();
          if (err.status === 400 && this.learnTypeConflicts(err.message)) return this.writeLines(lines());
          return this.splitAndDeliver(lines(), err);
        }
        if (err.code === 'PG_ERR_INFLUX_DB_MISSING' && this.config.api === 'v1' && (await this.createDatabase())) continue;
        let delay: number;
        if (err.retryable) {
          this.failed(err);
          delay = err.retryAfterMs ?? backoff(attempt++, this.config.retryMin, this.config.retryMax);
        } else {
          // auth or missing target: nothing we can fix; keep the data and probe slowly
          this.alert = err.message;
          this.failed(err, true);
          delay = this.config.retryMax;
        }
        this.retries++;
        this.backoffUntil = Date.now() + delay;
        await sleep(delay, this.abort.signal);
      }
    }
    return false;
  }

  /** Remembers the field type conflicts a 400 names; true when one was new (the batch is then filtered and sent again). */
  private learnTypeConflicts(message: string): boolean {
    let learned = false;
    for (const c of parseTypeConflicts(message)) {
      const key = `${c.measurement}\0${c.field}`;
      if (this.refusedFields.has(key)) continue;
      this.refusedFields.set(key, { ...c, lines: 0 });
      learned = true;
      this.log?.warn({ code: 'PG_ERR_INFLUX_REJECTED', measurement: c.measurement, field: c.field, existing: c.existing }, `InfluxDB holds field "${c.field}" of "${c.measurement}" as ${c.existing}: lines sending it as another type go to dead letters before they are sent`);
    }
    return learned;
  }

  /**
   * A line that sends a field InfluxDB holds with another type loses that field, and only that
   * field: the rest of the point is written, the refused field goes to dead letters with the whole
   * line. A line with nothing else left is dead-lettered whole.
   */
  private withoutRefusedFields(lines: string[]): string[] {
    const keep: string[] = [];
    for (const line of lines) {
      const lf = lineFields(line);
      const refused: { r: RefusedField; type: FieldType }[] = [];
      for (const [field, t] of lf?.fields ?? []) {
        const r = this.refusedFields.get(`${lf!.measurement}\0${field}`);
        if (r && r.existing !== t) refused.push({ r, type: t });
      }
      if (!refused.length) {
        keep.push(line);
        continue;
      }
      const rest = withoutFields(line, lf!, new Set(refused.map((x) => x.r.field)));
      if (rest) keep.push(rest);
      for (const x of refused) x.r.lines++;
      this.drop('influx_400');
      const what = refused.map((x) => `field "${x.r.field}" of measurement "${x.r.measurement}" is ${x.type} here, InfluxDB holds it as ${x.r.existing}`).join('; ');
      this.reject({ source: this.name, reason: 'influx_400', message: `field type conflict: ${what} (refused before sending; ${rest ? 'the line\'s other fields were written' : 'the line had no other field'})`, line });
    }
    return keep;
  }

  private async splitAndDeliver(lines: string[], err: SinkWriteError): Promise<boolean> {
    if (lines.length === 1) {
      const reason = err.status === 413 ? 'influx_413' : 'influx_400';
      this.drop(reason);
      this.reject({ source: this.name, reason, message: err.message, line: lines[0] });
      return true;
    }
    const mid = lines.length >>> 1;
    return (await this.writeLines(lines.slice(0, mid))) && (await this.writeLines(lines.slice(mid)));
  }

  private async write(body: string): Promise<void> {
    const c = this.config;
    let path: string;
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    if (c.api === 'v1') {
      const q = new URLSearchParams({ db: c.database, precision: 'ms' });
      if (c.retentionPolicy) q.set('rp', c.retentionPolicy);
      Object.assign(headers, this.basicAuth());
      path = `/write?${q}`;
    } else {
      path = `/api/v2/write?${new URLSearchParams({ org: c.org, bucket: c.bucket, precision: 'ms' })}`;
    }
    // A signal per request: the transport adds an abort listener per call and never removes it.
    const ac = new AbortController();
    const onStop = () => ac.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    const t0 = performance.now();
    this.requests++;
    try {
      await this.transport.request(path, body, {
        method: 'POST',
        headers,
        gzipThreshold: c.gzipThreshold > 0 ? c.gzipThreshold : undefined,
        signal: ac.signal,
      });
    } finally {
      this.abort.signal.removeEventListener('abort', onStop);
    }
    this.lastLatencyMs = Math.round(performance.now() - t0);
    this.writes++;
  }

  /** v1 user/password as a Basic authorization header (v2 tokens are set on the transport). */
  private basicAuth(): Record<string, string> {
    const c = this.config;
    if (c.api !== 'v1' || c.username === undefined) return {};
    return { authorization: `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}` };
  }

  private async createDatabase(): Promise<boolean> {
    if (this.config.api !== 'v1') return false;
    const c = this.config;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...this.basicAuth() };
    try {
      await this.transport.request('/query', `q=${encodeURIComponent(`CREATE DATABASE "${c.database.replace(/"/g, '\\"')}"`)}`, { method: 'POST', headers });
      return true;
    } catch (err) {
      this.recordError(classify(err));
      return false;
    }
  }
}

/** Sorts a transport error into retryable / permanent with a stable code. */
export function classify(err: unknown): SinkWriteError {
  if (err instanceof SinkWriteError) return err;
  if (err instanceof HttpError) {
    const s = err.statusCode;
    const reason = influxReason(err);
    const retryAfterMs = parseRetryAfter(err.headers?.['retry-after']);
    if (s === 429 || s >= 500) return new SinkWriteError('PG_ERR_INFLUX_UNAVAILABLE', `InfluxDB answered ${s}: ${reason}`, true, s, retryAfterMs, { cause: err });
    if (s === 401 || s === 403) return new SinkWriteError('PG_ERR_INFLUX_AUTH', `InfluxDB refused the credentials (${s}): ${reason}`, false, s, undefined, { cause: err });
    if (s === 404) return new SinkWriteError('PG_ERR_INFLUX_DB_MISSING', `InfluxDB database or bucket not found (404): ${reason}`, false, s, undefined, { cause: err });
    return new SinkWriteError('PG_ERR_INFLUX_REJECTED', `InfluxDB rejected the write (${s}): ${reason}`, false, s, undefined, { cause: err });
  }
  const e = err as { code?: string; message?: string; name?: string };
  return new SinkWriteError('PG_ERR_INFLUX_NETWORK', `InfluxDB unreachable: ${e?.code ?? e?.name ?? ''} ${e?.message ?? String(err)}`.trim(), true, undefined, undefined, { cause: err });
}

function influxReason(err: HttpError): string {
  const j = err.json as { error?: string; message?: string } | undefined;
  return j?.error ?? j?.message ?? err.body ?? err.statusMessage ?? '';
}

function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

