/**
 * A full disk under a running gateway (docs/delivery.md rule 3): the buffer on a 20 MiB tmpfs the
 * test mounts, `maxBytes` left at 1 GiB, InfluxDB down. Devices keep publishing QoS 1. Wanted: no
 * crash and no reconnect storm (PUBACKs are held, connections stay), `/readyz` 503 with the reason
 * while the disk is full, and once InfluxDB is back every acknowledged message is stored, the
 * space freed by the sink's own progress, with nobody stepping in.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testGateway } from './helpers/gateway.js';
import { eventually, influxd, type InfluxdHandle, rows, tempDir } from './helpers/servers.js';
import { mountTmpfs } from './helpers/tmpfs.js';

describe('a full disk under a running gateway', () => {
  let db: InfluxdHandle;
  let fs: ReturnType<typeof mountTmpfs>;
  const other = tempDir('diskfull');
  let gw: Awaited<ReturnType<typeof testGateway>>;
  beforeAll(async () => {
    db = await influxd();
    await db.stop(); // down from the start; restarted on the same port below
    fs = mountTmpfs(20 * 1024 * 1024);
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: diskfull, flushInterval: 100ms, retryMin: 100ms, retryMax: 1s }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes: [{ topic: "plant/{device}", measurement: full }]
buffer: { dir: "${fs.path}/buffer", segmentBytes: 1MiB }
deadLetters: { file: "${other.path}/deadletters.jsonl" }
`);
  });
  afterAll(async () => {
    await gw?.cleanup();
    fs?.remove();
    other.remove();
    await db?.stop();
    db?.remove();
  });

  it('holds PUBACKs while the disk is full, says so, and delivers every acknowledged message once InfluxDB is back', async () => {
    const acked = new Map<string, number>();
    let closes = 0;
    let running = true;
    const pad = 'x'.repeat(2000);
    const t0 = Date.now() - 3_600_000;
    const devices = await Promise.all(
      Array.from({ length: 10 }, async (_, d) => {
        const id = `dev${d}`;
        const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: id, keepalive: 10, reconnectPeriod: 500 });
        c.on('close', () => closes++);
        acked.set(id, 0);
        const loop = (async () => {
          for (let n = 0; running; n++) {
            await c.publishAsync(`plant/${id}`, JSON.stringify({ ts: t0 + n, n, pad }), { qos: 1 });
            acked.set(id, n + 1);
          }
        })();
        return { c, loop };
      }),
    );
    const buffer = () => gw.pipeline.status().components.find((c) => c.kind === 'buffer')!;
    await eventually('disk full', async () => buffer().state, (s) => s === 'disk_error', 60_000);
    const ready = await fetch(`http://127.0.0.1:${gw.http.port}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toMatch(/disk full/);
    // while full: acknowledgements stop, connections stay
    const sumAcked = () => [...acked.values()].reduce((a, b) => a + b, 0);
    const atFull = sumAcked();
    await new Promise((r) => setTimeout(r, 3000));
    expect(sumAcked() - atFull, 'no acknowledgement without a commit').toBeLessThanOrEqual(10);
    expect(closes, 'no connection was closed').toBe(0);
    expect(gw.broker!.status().details!.connectedDevices).toBe(10);

    // InfluxDB comes back: the sink writes, its acknowledgements free segments, intake resumes
    await db.restart();
    await eventually('buffer writing again', async () => buffer().state, (s) => s === 'running', 60_000);
    await eventually('acknowledgements flow again', async () => sumAcked(), (n) => n > atFull + 100, 30_000);
    running = false;
    await Promise.all(devices.map((d) => d.loop));
    await Promise.all(devices.map((d) => d.c.endAsync()));
    const total = sumAcked();
    await eventually('every acknowledged message stored', async () => rows(await db.query('SELECT count(n) FROM full', 'diskfull'))[0]?.count, (n) => n === total, 60_000);
    expect(closes - 10, 'no reconnect storm').toBe(0); // the 10 closes are our own endAsync
    expect(gw.pipeline.status().deadLetters.total).toBe(0);
    console.log(`disk full: ${atFull} acknowledged before the disk filled, ${total} in all, all stored`);
  });
});
