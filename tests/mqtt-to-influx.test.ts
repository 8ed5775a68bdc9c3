/**
 * Issue 2, done-when: 10,000 QoS 1 messages from 100 devices, published to the embedded broker and
 * separately through an external mosquitto with a persistent session, all land in a real influxd
 * with the right tags, fields and source timestamps; and the same through the v2 write protocol
 * into victoria-metrics.
 */
import { describe, expect, it } from 'vitest';
import { Unsigned } from '../src/core/point.js';
import { testGateway } from './helpers/gateway.js';
import { BASE_TS, message, publishFleet } from './helpers/publish.js';
import { eventually, type InfluxdHandle, useInfluxd, mosquitto, rows, victoriaMetrics } from './helpers/servers.js';

const ROUTES = `
  routes:
    - topic: factory/{site}/{line}/{machine}/telemetry
      measurement: cnc
      format: json
      tags: [program]
`;

describe('MQTT JSON to InfluxDB 1.x', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));

  it('stores 10,000 QoS 1 messages from 100 devices via the embedded broker', async () => {
    const gw = await testGateway(`
influx: { url: ${db.url}, api: v1, database: embedded, flushInterval: 200ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
${ROUTES}
buffer: { dir: "\${DATA}/buffer" }
`);
    try {
      const acked = await publishFleet(`mqtt://127.0.0.1:${gw.broker!.port}`, 100, 100);
      expect(acked).toBe(10_000);
      const count = await eventually('all 10,000 points in influxd', async () => rows(await db.query('SELECT count(temperature) FROM cnc', 'embedded'))[0]?.count, (n) => n === 10_000);
      expect(count).toBe(10_000);

      // every field, tag and timestamp of one device checked exactly
      const r = rows(await db.query(`SELECT * FROM cnc WHERE machine = 'dev-007' ORDER BY time`, 'embedded'));
      expect(r).toHaveLength(100);
      r.forEach((row, seq) => {
        const m = message(7, seq);
        expect(row).toMatchObject({ time: BASE_TS + seq * 1000, site: 'shenyang', line: 'line-3', machine: 'dev-007', program: 'O1007', temperature: m.temperature, running: m.running, seq });
      });
      // program is a tag, not a field; ts is the time, not a field
      const keys = rows(await db.query('SHOW FIELD KEYS FROM cnc', 'embedded')).map((x) => x.fieldKey);
      expect(keys.sort()).toEqual(['running', 'seq', 'temperature']);
      const src = gw.pipeline.status().components.find((c) => c.name === 'mqtt-broker')!;
      expect(src.counters.received).toBe(10_000);
    } finally {
      await gw.cleanup();
    }
  });

  it('stores 10,000 QoS 1 messages published through mosquitto to a persistent session, including those sent while the gateway was down', async () => {
    const broker = await mosquitto();
    const yaml = `
influx: { url: ${db.url}, api: v1, database: external, flushInterval: 200ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  clients:
    - { url: ${broker.url}, clientId: plantgate-test, clean: false, subscriptions: [{ topic: "factory/+/+/+/telemetry", qos: 1 }] }
${ROUTES}
buffer: { dir: "\${DATA}/buffer" }
`;
    let gw = await testGateway(yaml);
    try {
      await eventually('client connected', async () => gw.pipeline.status().components.find((c) => c.type === 'mqtt-client')!.state, (s) => s === 'running');
      expect(await publishFleet(broker.url, 50, 100, { prefix: 'a' })).toBe(5000);
      await eventually('first half stored', async () => rows(await db.query('SELECT count(temperature) FROM cnc', 'external'))[0]?.count, (n) => n === 5000);
      // gateway away: the broker holds the QoS 1 messages for the persistent session
      await gw.stop();
      expect(await publishFleet(broker.url, 50, 100, { prefix: 'b', firstDevice: 50 })).toBe(5000);
      gw = await testGateway(yaml);
      await eventually('all 10,000 stored', async () => rows(await db.query('SELECT count(temperature) FROM cnc', 'external'))[0]?.count, (n) => n === 10_000, 60_000);
      const r = rows(await db.query(`SELECT * FROM cnc WHERE machine = 'dev-077' ORDER BY time`, 'external'));
      expect(r.map((x) => x.time)).toEqual(Array.from({ length: 100 }, (_, i) => BASE_TS + i * 1000));
      expect(r.map((x) => x.temperature)).toEqual(Array.from({ length: 100 }, (_, i) => message(77, i).temperature));
    } finally {
      await gw.cleanup();
      await broker.stop();
      broker.remove();
    }
  });
});

describe('MQTT JSON to the InfluxDB v2 write protocol (victoria-metrics)', () => {
  it('stores 10,000 QoS 1 messages from 100 devices with tags and timestamps', async () => {
    const vm = await victoriaMetrics();
    const gw = await testGateway(`
influx: { url: ${vm.url}, api: v2, org: plant, bucket: factory, token: secret-token, flushInterval: 200ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
${ROUTES}
buffer: { dir: "\${DATA}/buffer" }
`);
    try {
      expect(await publishFleet(`mqtt://127.0.0.1:${gw.broker!.port}`, 100, 100)).toBe(10_000);
      const series = await eventually(
        'all 10,000 temperatures in victoria-metrics',
        () => vm.exportSeries('cnc_temperature'),
        (s) => s.reduce((n, x) => n + x.values.length, 0) === 10_000,
      );
      expect(series).toHaveLength(100);
      const s7 = series.find((s) => s.metric.machine === 'dev-007')!;
      expect(s7.metric).toMatchObject({ site: 'shenyang', line: 'line-3', program: 'O1007' });
      expect(s7.timestamps).toEqual(Array.from({ length: 100 }, (_, i) => BASE_TS + i * 1000));
      expect(s7.values).toEqual(Array.from({ length: 100 }, (_, i) => message(7, i).temperature));
      // an unsigned 64-bit value (OPC UA / Sparkplug UInt64) beyond int64 goes out as `u`, which this protocol has
      await gw.pipeline.ingest([{ measurement: 'counter', tags: { m: 'press' }, fields: { strokes: new Unsigned(18446744073709551615n) }, time: BASE_TS, receivedAt: BASE_TS, quality: 'good', source: 'test' }], 'test');
      const u = await eventually('the unsigned value in victoria-metrics', () => vm.exportSeries('counter_strokes'), (x) => x.length === 1);
      expect(u[0]!.values[0]).toBeCloseTo(1.8446744073709552e19, -5);
      expect(gw.pipeline.status().deadLetters.total).toBe(0);
    } finally {
      await gw.cleanup();
      await vm.stop();
      vm.remove();
    }
  });
});
