/**
 * Issue 4, done-when (docs/delivery.md rules 1, 2, 3, 5):
 *  - kill test: 200,000 numbered QoS 1 messages through mosquitto to a gateway with a persistent
 *    session; the gateway is SIGKILLed at random moments 20+ times and restarted; every message
 *    ends up in influxd (count and set checked), duplicates reported;
 *  - outage test: influxd stopped during a steady stream and started again; nothing lost, the
 *    backlog drains, peak RSS reported;
 *  - full buffer: with a tiny limit and InfluxDB away, `block` makes publishers wait and nothing
 *    is lost once room is made.
 * Figures go to test-output/durability.json and the console.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../tools/servers/process.js';
import { testGateway } from './helpers/gateway.js';
import { gatewayProcess } from '../tools/servers/gateway-process.js';
import { eventually, influxd, type InfluxdHandle, useInfluxd, mosquitto, rows, tempDir } from './helpers/servers.js';

const BASE = Date.UTC(2026, 2, 1);
const figures: Record<string, unknown> = {};

afterAll(() => {
  mkdirSync('test-output', { recursive: true });
  writeFileSync('test-output/durability.json', JSON.stringify(figures, null, 2));
  console.log('durability figures', JSON.stringify(figures));
});

async function count(db: Awaited<ReturnType<typeof influxd>>, measurement: string, database: string): Promise<number> {
  return (rows(await db.query(`SELECT count(n) FROM "${measurement}"`, database))[0]?.count as number) ?? 0;
}

/** InfluxDB's own count of points it accepted over HTTP since it started. */
async function pointsWritten(url: string): Promise<number> {
  const r = await fetch(`${url}/query?${new URLSearchParams({ q: 'SHOW STATS' })}`);
  const j = (await r.json()) as { results: { series: { name: string; columns: string[]; values: number[][] }[] }[] };
  const httpd = j.results[0]!.series.find((s) => s.name === 'httpd')!;
  return httpd.values[0]![httpd.columns.indexOf('pointsWrittenOK')]!;
}

describe('durable delivery', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));

  it('loses nothing when the gateway is killed with SIGKILL 20+ times while 200,000 QoS 1 messages flow through mosquitto', async () => {
    const TOTAL = 200_000;
    const KILLS = 22;
    const broker = await mosquitto();
    const dir = tempDir('kill');
    const gw = await gatewayProcess(dir.path, (http) => `
http: { listen: 127.0.0.1:${http} }
influx: { url: ${db.url}, database: kill, flushInterval: 100ms, retryMin: 100ms, retryMax: 1s }
mqtt:
  clients:
    - { url: ${broker.url}, clientId: kill-test, clean: false, subscriptions: [{ topic: "kill/#", qos: 1 }] }
  routes:
    - { topic: "kill/{stream}", measurement: kill, fields: { n: { type: integer } } }
buffer: { dir: ${dir.path}/buffer }
deadLetters: { file: ${dir.path}/dead.jsonl }
log: { level: warn }
`);
    const writtenBefore = await pointsWritten(db.url);
    try {
      await gw.start();
      // the publisher: numbered messages, each its own timestamp, 10 streams
      const pub = await mqtt.connectAsync(broker.url, { clientId: 'kill-publisher' });
      let published = 0;
      const publishing = (async () => {
        const WINDOW = 200;
        for (let n = 0; n < TOTAL; n += WINDOW) {
          await Promise.all(
            Array.from({ length: Math.min(WINDOW, TOTAL - n) }, (_, k) => pub.publishAsync(`kill/s${(n + k) % 10}`, `{"ts":${BASE + n + k},"n":${n + k}}`, { qos: 1 })),
          );
          published = n + WINDOW;
        }
        await pub.endAsync();
      })();

      let kills = 0;
      const t0 = Date.now();
      for (; kills < KILLS; kills++) {
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 2200));
        await gw.kill('SIGKILL');
        await gw.start();
      }
      await publishing;
      figures.killTest = { messages: TOTAL, kills, publishedAfterKillsStarted: published, killPhaseMs: Date.now() - t0 };
      const stored = await eventually('all 200,000 stored', () => count(db, 'kill', 'kill'), (n) => n === TOTAL, 240_000);
      expect(stored).toBe(TOTAL);

      // the set: every n exactly once, at its own timestamp
      const r = await fetch(`${db.url}/query?${new URLSearchParams({ db: 'kill', q: 'SELECT n FROM "kill"', epoch: 'ms' })}`);
      const values = ((await r.json()) as { results: { series: { values: [number, number][] }[] }[] }).results[0]!.series[0]!.values;
      const seen = new Uint8Array(TOTAL);
      for (const [t, n] of values) {
        expect(t - BASE).toBe(n);
        seen[n] = 1;
      }
      expect(seen.reduce((a, b) => a + b, 0)).toBe(TOTAL);

      const written = (await pointsWritten(db.url)) - writtenBefore;
      (figures.killTest as Record<string, unknown>).pointsWrittenToInflux = written;
      (figures.killTest as Record<string, unknown>).duplicates = written - TOTAL;
      expect(written).toBeGreaterThanOrEqual(TOTAL);
      expect(kills).toBeGreaterThanOrEqual(20);
    } finally {
      await gw.kill('SIGTERM');
      await broker.stop();
      broker.remove();
      dir.remove();
    }
  }, 420_000);

  it('loses nothing while influxd is down for a while under a steady stream, and the backlog drains with memory bounded', async () => {
    const port = await freePort();
    const outageDb = await influxd({ port });
    const dir = tempDir('outage');
    const mqttPort = await freePort();
    const gw = await gatewayProcess(dir.path, (http) => `
http: { listen: 127.0.0.1:${http} }
influx: { url: ${outageDb.url}, database: outage, flushInterval: 100ms, retryMin: 100ms, retryMax: 1s }
mqtt:
  broker: { listen: 127.0.0.1:${mqttPort}, allowAnonymous: true }
  routes:
    - { topic: "plant/{device}/telemetry", measurement: outage, fields: { n: { type: integer }, temp: temp } }
buffer: { dir: ${dir.path}/buffer }
log: { level: warn }
`);
    try {
      await gw.start();
      const DEVICES = 20;
      const RATE = 50; // per device per second: 1,000 msg/s in all
      const SECONDS = 24;
      let peakRss = 0;
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, gw.rss())), 100);
      const clients = await Promise.all(Array.from({ length: DEVICES }, (_, d) => mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `dev-${d}` })));
      const sends: Promise<unknown>[] = [];
      const start = Date.now();
      let sent = 0;
      const timer = setInterval(() => {
        const due = Math.min(DEVICES * RATE * SECONDS, Math.floor(((Date.now() - start) / 1000) * DEVICES * RATE));
        for (; sent < due; sent++) {
          const d = sent % DEVICES;
          sends.push(clients[d]!.publishAsync(`plant/dev-${d}/telemetry`, `{"ts":${BASE + sent},"n":${sent},"temp":${20 + (sent % 7)}}`, { qos: 1 }));
        }
      }, 20);
      await new Promise((r) => setTimeout(r, 4000));
      const rssBeforeOutage = gw.rss();
      await outageDb.stop();
      const outageStart = Date.now();
      await new Promise((r) => setTimeout(r, 12_000));
      const backlog = ((await (await fetch(`${gw.httpUrl}/api/status`)).json()) as { components: { kind: string; details: { linesQueued: number } }[] }).components.find((c) => c.kind === 'buffer')!.details.linesQueued;
      await outageDb.restart();
      const outageMs = Date.now() - outageStart;
      const drainStart = Date.now();
      await eventually('publisher done', async () => sent, (n) => n === DEVICES * RATE * SECONDS, 60_000);
      clearInterval(timer);
      await Promise.all(sends);
      await eventually('all stored', () => count(outageDb, 'outage', 'outage'), (n) => n === DEVICES * RATE * SECONDS, 120_000);
      const drainMs = Date.now() - drainStart;
      clearInterval(sampler);
      await Promise.all(clients.map((c) => c.endAsync()));
      figures.outageTest = {
        messages: DEVICES * RATE * SECONDS,
        ingestRatePerSecond: DEVICES * RATE,
        outageMs,
        backlogAtRestartLines: backlog,
        drainMsAfterRestart: drainMs,
        rssBeforeOutageMiB: +(rssBeforeOutage / 2 ** 20).toFixed(1),
        peakRssMiB: +(peakRss / 2 ** 20).toFixed(1),
      };
      expect(backlog).toBeGreaterThan(5000);
      // bounded: the backlog lives on disk, not in memory
      expect(peakRss).toBeLessThan(rssBeforeOutage + 100 * 2 ** 20);
    } finally {
      await gw.kill('SIGTERM');
      await outageDb.stop();
      outageDb.remove();
      dir.remove();
    }
  }, 240_000);

  it('with a tiny buffer and InfluxDB away, block makes publishers wait and nothing is lost once room is made', async () => {
    const port = await freePort();
    const gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: "http://127.0.0.1:${port}", database: full, flushInterval: 50ms, retryMin: 100ms, retryMax: 500ms }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes:
    - { topic: "plant/{device}/telemetry", measurement: full, fields: { n: { type: integer } } }
buffer: { dir: "\${DATA}/buffer", maxBytes: 64KiB, segmentBytes: 8KiB, whenFull: block }
`);
    let fullDb: Awaited<ReturnType<typeof influxd>> | undefined;
    try {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'full-dev' });
      const TOTAL = 3000; // about 3x what fits in 64 KiB
      let acked = 0;
      const sends = Array.from({ length: TOTAL }, (_, n) => client.publishAsync('plant/d1/telemetry', `{"ts":${BASE + n},"n":${n}}`, { qos: 1 }).then(() => acked++));
      await new Promise((r) => setTimeout(r, 2000));
      const buffer = gw.pipeline.status().components.find((c) => c.kind === 'buffer')!;
      expect(buffer.state).toBe('full'); // holding the publisher back
      expect(acked).toBeLessThan(TOTAL);
      expect(buffer.details!.bytesOnDisk as number).toBeLessThanOrEqual(64 * 1024);
      figures.fullBuffer = { messages: TOTAL, ackedWhileFull: acked, bytesOnDiskWhileFull: buffer.details!.bytesOnDisk };
      fullDb = await influxd({ port });
      await Promise.all(sends);
      expect(acked).toBe(TOTAL);
      await eventually('all stored', () => count(fullDb!, 'full', 'full'), (n) => n === TOTAL, 60_000);
      expect(Object.keys(buffer.counters.dropped)).toEqual([]);
      await client.endAsync();
    } finally {
      await gw.cleanup();
      await fullDb?.stop();
      fullDb?.remove();
    }
  });
});
