/**
 * docs/delivery.md rule 4 against a real influxd behind a fault-injecting proxy: 429 and 503 are
 * retried honouring Retry-After, dropped connections are retried with backoff, 401 pauses the sink
 * with an alert and keeps the data; nothing is lost and nothing is dead-lettered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Point } from '../src/core/point.js';
import { FaultProxy } from './helpers/fault-proxy.js';
import { testGateway } from './helpers/gateway.js';
import { eventually, influxd, rows } from './helpers/servers.js';

const T0 = Date.UTC(2026, 3, 1);
const pts = (from: number, n: number): Point[] =>
  Array.from({ length: n }, (_, i) => ({ measurement: 'm', tags: { s: 'a' }, fields: { n: BigInt(from + i) }, time: T0 + from + i, receivedAt: 0, quality: 'good', source: 'test' }));

describe('InfluxDB sink error sorting', () => {
  let db: Awaited<ReturnType<typeof influxd>>;
  let proxy: FaultProxy;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  beforeAll(async () => {
    db = await influxd();
    proxy = new FaultProxy(db.url);
    await proxy.start();
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${proxy.url}, database: errs, flushInterval: 50ms, retryMin: 50ms, retryMax: 2s }
buffer: { dir: "\${DATA}/buffer" }
`);
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

  it('pauses on 401 with an alert, keeps the data, and resumes when credentials work again', async () => {
    proxy.always({ status: 401, body: JSON.stringify({ error: 'authorization failed' }) });
    await gw.pipeline.ingest(pts(201, 100), 'test');
    await eventually('sink degraded with an alert', async () => sink(), (s) => s.state === 'degraded' && /authorization failed/.test(String(s.details!.alert)));
    expect(await stored()).toBe(201);
    const buffer = gw.pipeline.status().components.find((c) => c.kind === 'buffer')!;
    expect(buffer.details!.linesQueued).toBe(100);
    proxy.always(undefined);
    await eventually('stored after the pause', stored, (n) => n === 301, 30_000);
    await eventually('sink running again', async () => sink().state, (s) => s === 'running');
    expect(gw.pipeline.status().deadLetters.total).toBe(0);
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
