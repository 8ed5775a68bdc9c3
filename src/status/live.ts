/**
 * The live feed behind the dashboard: samples the gateway once per `intervalMs` (not per message,
 * so its cost does not grow with the message rate), derives per-component rates from counter
 * differences, keeps a short history for the charts, and pushes each sample to every connected
 * server-sent-events client. A client that accepts gzip gets the stream compressed, flushed after
 * every event: consecutive samples are alike, so a tab costs a tenth of the bytes (measured in
 * tests/dashboard.test.ts with 1,000 devices connected).
 */
import { ofKind } from './details.js';
import type { ServerResponse } from 'node:http';
import { constants, createGzip } from 'node:zlib';
import type { ComponentStatus } from '../core/component.js';

export interface Sample {
  at: number;
  /** values/s per component (received for sources, written for sinks) */
  rates: Record<string, number>;
  /** values/s received by all sources */
  ingestRate: number;
  /** lines waiting in the buffer */
  bufferLines: number;
}

export class LiveFeed {
  private timer?: NodeJS.Timeout;
  private prev?: { at: number; counts: Record<string, number> };
  private readonly history: Sample[] = [];
  private readonly clients = new Set<{ write(s: string): void; end(): void }>();
  private last?: Sample;

  constructor(
    private readonly snapshot: () => { components: ComponentStatus[] } & Record<string, unknown>,
    private readonly intervalMs = 1000,
    private readonly keep = 180,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  latest(): Sample | undefined {
    return this.last;
  }

  series(): Sample[] {
    return [...this.history];
  }

  /** Adds an SSE client: it gets the history once, then every sample. */
  subscribe(res: ServerResponse, acceptEncoding = ''): void {
    const gzip = /\bgzip\b/.test(acceptEncoding);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-content-type-options': 'nosniff', ...(gzip ? { 'content-encoding': 'gzip', vary: 'accept-encoding' } : {}) });
    let out: { write(s: string): void; end(): void } = res;
    if (gzip) {
      const z = createGzip({ flush: constants.Z_SYNC_FLUSH });
      z.pipe(res);
      out = { write: (s) => void z.write(s), end: () => z.end() };
    }
    out.write(`retry: 2000\n\n`);
    out.write(`event: history\ndata: ${JSON.stringify(this.history)}\n\n`);
    this.push(out);
    this.clients.add(out);
    res.on('close', () => {
      this.clients.delete(out);
      if (gzip) out.end();
    });
  }

  private push(res: { write(s: string): void }): void {
    if (!this.last) return;
    res.write(`event: status\ndata: ${stringify({ ...this.snapshot(), rates: this.last.rates, sample: this.last })}\n\n`);
  }

  private sample(): void {
    const snap = this.snapshot();
    const at = Date.now();
    const counts: Record<string, number> = {};
    for (const c of snap.components) counts[c.name] = c.kind === 'sink' || c.kind === 'buffer' ? c.counters.written : c.counters.received;
    const rates: Record<string, number> = {};
    let ingestRate = 0;
    for (const c of snap.components) {
      const before = this.prev?.counts[c.name];
      const r = before === undefined || !this.prev ? 0 : Math.max(0, ((counts[c.name]! - before) * 1000) / (at - this.prev.at));
      rates[c.name] = Math.round(r * 10) / 10;
      if (c.kind === 'source' && !c.derived) ingestRate += r;
    }
    const buffer = ofKind(snap.components, 'buffer')[0];
    this.prev = { at, counts };
    this.last = { at, rates, ingestRate: Math.round(ingestRate * 10) / 10, bufferLines: buffer?.details.linesQueued ?? 0 };
    this.history.push(this.last);
    if (this.history.length > this.keep) this.history.shift();
    if (this.clients.size) {
      // the snapshot was taken before this sample: send this sample's rates with it
      const msg = `event: status\ndata: ${stringify({ ...snap, rates: this.last.rates, sample: this.last })}\n\n`;
      for (const c of this.clients) c.write(msg);
    }
  }
}

function stringify(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}
