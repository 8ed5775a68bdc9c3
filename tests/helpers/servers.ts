/**
 * Real servers for integration tests, each on free loopback ports with a throwaway folder:
 * influxd (InfluxDB 1.x), mosquitto (external MQTT broker), victoria-metrics (a real server for the
 * InfluxDB v2 write protocol). A missing binary fails with a message that says how to install it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInfluxd, type Influxd } from '../../tools/servers/influxd.js';
import { findBinary, freePort, launch, waitFor } from '../../tools/servers/process.js';
import { startMosquitto } from '../../tools/servers/mosquitto.js';
import { afterAll, beforeAll } from 'vitest';

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `plantgate-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

function need(bin: string, pkg: string): string {
  const p = findBinary(bin);
  if (!p) throw new Error(`${bin} is not installed; integration tests need it: apt-get install ${pkg} (.ci/run does this)`);
  return p;
}

export async function influxd(opts: { port?: number } = {}): Promise<Influxd & { query(q: string, db?: string): Promise<InfluxSeries[]>; queryText(q: string, db?: string): Promise<Record<string, string>[]>; remove(): void; restart(): Promise<void> }> {
  need('influxd', 'influxdb');
  const dir = tempDir('influxd');
  let s = await startInfluxd({ dataDir: dir.path, port: opts.port });
  return {
    ...s,
    async stop() {
      await s.stop();
    },
    /** Starts it again on the same port and data after stop(). */
    async restart() {
      s = await startInfluxd({ dataDir: dir.path, port: s.port });
    },
    remove: dir.remove,
    /** Rows as exact text (CSV), for 64-bit integers JSON would round. */
    async queryText(q: string, db = 'factory'): Promise<Record<string, string>[]> {
      const r = await fetch(`${s.url}/query?${new URLSearchParams({ db, q, epoch: 'ms' })}`, { headers: { Accept: 'application/csv' } });
      const [head, ...lines] = (await r.text()).trim().split('\n');
      if (!head) return [];
      const cols = head.split(',');
      // CSV quoting is enough for our values (no commas in the compared strings)
      return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v.replace(/^"|"$/g, '')])));
    },
    async query(q: string, db = 'factory') {
      const r = await fetch(`${s.url}/query?${new URLSearchParams({ db, q, epoch: 'ms' })}`);
      const j = (await r.json()) as { results: { series?: InfluxSeries[]; error?: string }[] };
      if (j.results[0]?.error) throw new Error(j.results[0].error);
      return j.results[0]?.series ?? [];
    },
  };
}

export type InfluxdHandle = Awaited<ReturnType<typeof influxd>>;

/** One influxd for a describe block: started before its tests, stopped and removed after. */
export function useInfluxd(set: (db: InfluxdHandle) => void): void {
  let db: InfluxdHandle | undefined;
  beforeAll(async () => {
    db = await influxd();
    set(db);
  });
  afterAll(async () => {
    await db?.stop();
    db?.remove();
  });
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** Rows of a series as objects keyed by column. */
export function rows(s: InfluxSeries[]): Record<string, unknown>[] {
  return s.flatMap((x) => x.values.map((v) => ({ ...x.tags, ...Object.fromEntries(x.columns.map((c, i) => [c, v[i]])) })));
}

/** `tls`: an MQTT over TLS listener that requires client certificates signed by `ca` (CN = username). */
export async function mosquitto(opts: { tls?: { ca: string; cert: string; key: string } } = {}): Promise<{ url: string; port: number; stop(): Promise<void>; restart(): Promise<void>; remove(): void }> {
  need('mosquitto', 'mosquitto');
  const dir = tempDir('mosquitto');
  const m = await startMosquitto({ dir: dir.path, tls: opts.tls });
  return { url: m.url, port: m.port, stop: m.stop, restart: m.restart, remove: dir.remove };
}

export async function victoriaMetrics(): Promise<{ url: string; stop(): Promise<void>; remove(): void; exportSeries(match: string): Promise<VmSeries[]> }> {
  const bin = need('victoria-metrics', 'victoria-metrics');
  const dir = tempDir('vm');
  const port = await freePort();
  const m = launch(bin, [
    `-httpListenAddr=127.0.0.1:${port}`,
    `-storageDataPath=${dir.path}`,
    '-retentionPeriod=100y',
    '-loggerLevel=ERROR',
    '-search.disableCache',
    '-search.latencyOffset=0s',
    '-selfScrapeInterval=0',
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`victoria-metrics on ${url}`, async () => (await fetch(`${url}/health`)).ok, 30_000, m);
  return {
    url,
    stop: () => m.stop(),
    remove: dir.remove,
    async exportSeries(match: string) {
      await fetch(`${url}/internal/force_flush`).catch(() => undefined);
      const r = await fetch(`${url}/api/v1/export?${new URLSearchParams({ 'match[]': match, start: '0' })}`);
      const text = await r.text();
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as VmSeries);
    },
  };
}

export interface VmSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

export async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn().catch(() => undefined as T);
    if (last !== undefined && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms; last value ${JSON.stringify(last)?.slice(0, 500)}`);
}

