/**
 * docs/delivery.md rule 4 against a real influxd behind a fault-injecting proxy: 429 and 503 are
 * retried honouring Retry-After, dropped connections are retried with backoff, 401 pauses the sink
 * with an alert and keeps the data; nothing is lost and nothing is dead-lettered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Point } from '../src/core/point.js';
import { freePort } from '../tools/servers/process.js';
import { FaultProxy } from './helpers/fault-proxy.js';
import { logCapture } from './helpers/logs.js';
import { testGateway } from './helpers/gateway.js';
import { eventually, influxd, rows } from './helpers/servers.js';

const T0 = Date.UTC(2026, 3, 1);
const pts = (from: number, n: number): Point[] =>
  Array.from({ length: n }, (_, i) => ({ measurement: 'm', tags: { s: 'a' }, fields: { n: BigInt(from + i) }, time: T0 + from + i, receivedAt: 0, quality: 'good', source: 'test' }));

describe('InfluxDB sink error sorting', () => {
  let db: Awaited<ReturnType<typeof influxd>>;
  let proxy: FaultProxy;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  const { logs, stream } = logCapture();
  beforeAll(async () => {
    db = await influxd();
    proxy = new FaultProxy(db.url);
    await proxy.start();
    gw = await testGateway(
      `
http: { listen: 127.0.0.1:0 }
influx: { url: ${proxy.url}, database: errs, flushInterval: 50ms, retryMin: 50ms, retryMax: 2s }
buffer: { dir: "\${DATA}/buffer" }
`,
      {},
      { logTo: stream },
    );
    // create the database through one clean write
    await gw.pipeline.ingest(pts(0, 1), 'test');
    await eventually('first write', async () => rows(await db.query('SELECT count(n) FROM m', 'errs'))[0]?.count, (n) => n === 1);
  });
  afterAll(async () => {
    await gw?.cleanup();
    await proxy?.stop();
    await db?.stop();
    db?.remove();
  });

  const sink = () => gw.pipeline.status().components.find((c) => c.kind === 'sink')!;
  const stored = async () => rows(await db.query('SELECT count(n) FROM m', 'errs'))[0]?.count as number;

  it('retries 429 and 503 after the Retry-After the server asked for', async () => {
    proxy.inject({ status: 429, retryAfterSeconds: 1 });
    proxy.inject({ status: 503, retryAfterSeconds: 1 });
    const from = proxy.arrivals.length;
    await gw.pipeline.ingest(pts(1, 100), 'test');
    await eventually('stored after retries', stored, (n) => n === 101);
    const a = proxy.arrivals.slice(from).filter((x) => x.path.startsWith('/write'));
    expect(a.slice(0, 3).map((x) => x.faulted)).toEqual([true, true, false]);
    expect(a[1]!.at - a[0]!.at).toBeGreaterThanOrEqual(950);
    expect(a[2]!.at - a[1]!.at).toBeGreaterThanOrEqual(950);
    expect(sink().details!.retries as number).toBeGreaterThanOrEqual(2);
  });

  it('retries dropped connections with backoff', async () => {
    proxy.inject({ drop: true }, 3);
    await gw.pipeline.ingest(pts(101, 100), 'test');
    await eventually('stored after reconnects', stored, (n) => n === 201);
    expect(sink().lastError?.message).toMatch(/unreachable/);
  });

  it('a stretch of 500s shows as retrying, not running: /readyz 503, one log line with the code, recovery logged', async () => {
    proxy.always({ status: 500, body: JSON.stringify({ error: 'engine on fire' }) });
    const from = logs.length;
    await gw.pipeline.ingest(pts(301, 50), 'test');
    await eventually('sink retrying', async () => sink().state, (s) => s === 'retrying');
    const ready = await fetch(`http://127.0.0.1:${gw.http.port}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toMatch(/retrying: InfluxDB answered 500: engine on fire/);
    await new Promise((r) => setTimeout(r, 1500)); // several retries
    const failures = logs.slice(from).filter((l) => l.code === 'PG_ERR_INFLUX_UNAVAILABLE');
    expect(failures.length, 'logged once per change of state, not per retry').toBe(1);
    expect(failures[0]!.component).toBe(sink().name);
    proxy.always(undefined);
    await eventually('stored after the 500s', stored, (n) => n === 251, 30_000);
    expect(sink().state).toBe('running');
    expect(logs.slice(from).some((l) => l.code === 'PG_ERR_INFLUX_RECOVERED' && typeof l.outageMs === 'number')).toBe(true);
    expect((await fetch(`http://127.0.0.1:${gw.http.port}/readyz`)).status).toBe(200);
  });

  it('a field type conflict of one device in 40 is learned from the first 400, not bisected in every batch', async () => {
    // `n` is an integer field of m; device "odd" sends it as a float in every 40th line
    const backlog: Point[] = Array.from({ length: 20_000 }, (_, i) => ({
      measurement: 'm', tags: { s: `dev${i % 40}` }, fields: { n: i % 40 === 7 ? i + 0.5 : BigInt(i) }, time: T0 + 100_000 + i, receivedAt: 0, quality: 'good', source: 'test',
    }));
    proxy.always({ status: 503 }); // let the backlog build up in the buffer first
    for (let i = 0; i < backlog.length; i += 1000) await gw.pipeline.ingest(backlog.slice(i, i + 1000), 'test');
    const before = proxy.arrivals.length;
    const dlBefore = gw.pipeline.status().deadLetters.byReason.influx_400 ?? 0;
    proxy.always(undefined);
    await eventually('backlog stored', async () => rows(await db.query(`SELECT count(n) FROM m WHERE time >= ${(T0 + 100_000) * 1e6}`, 'errs'))[0]?.count, (n) => n === 19_500, 60_000);
    await eventually('bad lines dead-lettered', async () => (gw.pipeline.status().deadLetters.byReason.influx_400 ?? 0) - dlBefore, (n) => n === 500);
    const writes = proxy.arrivals.slice(before).filter((a) => a.path.startsWith('/write')).length;
    const batches = Math.ceil(20_000 / 5000);
    // one request per batch, plus one for the batch whose 400 taught the conflict (bisecting took ~100 per batch)
    expect(writes).toBeLessThanOrEqual(batches + 3);
    expect((sink().details!.refusedFields as { field: string; existing: string }[])[0]).toMatchObject({ field: 'n', existing: 'integer' });
    // the dead letters are logged, once a minute per reason, not 500 times
    expect(logs.filter((l) => l.code === 'PG_ERR_REJECTED' && l.reason === 'influx_400')).toHaveLength(1);
  });

  it('pauses on 401 with an alert, keeps the data, and resumes when credentials work again', async () => {
    proxy.always({ status: 401, body: JSON.stringify({ error: 'authorization failed' }) });
    const before = await stored();
    await gw.pipeline.ingest(pts(50_000, 100), 'test');
    await eventually('sink paused with an alert', async () => sink(), (s) => s.state === 'paused' && /authorization failed/.test(String(s.details!.alert)));
    expect(await stored()).toBe(before);
    const buffer = gw.pipeline.status().components.find((c) => c.kind === 'buffer')!;
    expect(buffer.details!.linesQueued).toBe(100);
    proxy.always(undefined);
    await eventually('stored after the pause', stored, (n) => n === before + 100, 30_000);
    await eventually('sink running again', async () => sink().state, (s) => s === 'running');
    expect(gw.pipeline.status().deadLetters.total).toBe(500); // the conflicting lines above, nothing else
  });
});

describe('InfluxDB unreachable from the start', () => {
  it('shows before any data: state retrying, logged with its code, /readyz 503', async () => {
    const { logs, stream } = logCapture();
    const port = await freePort();
    const gw = await testGateway(
      `
http: { listen: 127.0.0.1:0 }
influx: { url: "http://127.0.0.1:${port}", database: none, retryMin: 50ms, retryMax: 1s }
buffer: { dir: "\${DATA}/buffer" }
`,
      {},
      { logTo: stream },
    );
    try {
      await eventually('sink retrying', async () => gw.pipeline.status().components.find((c) => c.kind === 'sink')!.state, (s) => s === 'retrying', 10_000);
      expect(logs.some((l) => l.code === 'PG_ERR_INFLUX_NETWORK' && /ECONNREFUSED/.test(String(l.msg)))).toBe(true);
      expect((await fetch(`http://127.0.0.1:${gw.http.port}/readyz`)).status).toBe(503);
    } finally {
      await gw.cleanup();
    }
  });
});

describe('graceful shutdown', () => {
  it('stops intake, then flushes what is buffered before stopping the sink', async () => {
    const db = await influxd();
    try {
      const gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: shut, batchSize: 100000, flushInterval: 1h }
buffer: { dir: "\${DATA}/buffer" }
`);
      await gw.pipeline.ingest(pts(0, 5000), 'test');
      // flushInterval 1h: nothing would be written for an hour; stop() must flush it
      await gw.cleanup();
      expect(rows(await db.query('SELECT count(n) FROM m', 'shut'))[0]?.count).toBe(5000);
    } finally {
      await db.stop();
      db.remove();
    }
  });
});
