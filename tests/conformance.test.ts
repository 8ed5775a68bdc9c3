/**
 * The conformance suite every source and the sink run against their real counterparts (an MQTT
 * device on the embedded broker and on mosquitto, a Sparkplug edge, an OPC UA PLC simulator, a real
 * influxd), beside the lifecycle suite (tests/lifecycle.test.ts, docs/components.md):
 *  - rejections: input that cannot be stored is handed to `reject` once per refusal, with a reason
 *    from the catalogue (src/core/reasons.ts) and the component's name, the component counts it
 *    as dropped with that reason, and the input next to it is still taken;
 *  - stop while busy: a stop issued while the pipeline (or InfluxDB) holds a write ends promptly,
 *    stopped, and acknowledges nothing it had not made durable: an MQTT device keeps its QoS 1
 *    message unacknowledged, the sink leaves its cursor where it was and the next sink writes it.
 * A new source or sink type is added to these tables.
 */
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLC_NAMESPACE, plcFleet } from '../simulators/opcua-plc.js';
import type { SimServer } from '../simulators/opcua-server.js';
import { bufferSchema } from '../src/buffer/config.js';
import { DiskBuffer } from '../src/buffer/disk-buffer.js';
import type { Component } from '../src/core/component.js';
import type { Point } from '../src/core/point.js';
import { DROP_REASONS } from '../src/core/reasons.js';
import type { Rejection } from '../src/deadletters/dead-letters.js';
import { influxSchema } from '../src/sinks/influxdb/config.js';
import { InfluxSink } from '../src/sinks/influxdb/influx-sink.js';
import { BrokerClient } from '../src/sources/mqtt/broker-client.js';
import { brokerSchema, clientSchema, routeSchema } from '../src/sources/mqtt/config.js';
import { EmbeddedBroker } from '../src/sources/mqtt/embedded-broker.js';
import { TopicRouter } from '../src/sources/mqtt/router.js';
import { endpointSchema } from '../src/sources/opcua/config.js';
import { OpcuaEndpointSource } from '../src/sources/opcua/opcua-source.js';
import { openCertificateManager } from '../src/sources/opcua/pki.js';
import { DataType, encodePayload } from '../src/sources/sparkplug/codec.js';
import { sparkplugSchema } from '../src/sources/sparkplug/config.js';
import { SparkplugHost } from '../src/sources/sparkplug/host.js';
import type { SourceContext } from '../src/sources/source.js';
import { freePort } from '../tools/servers/process.js';
import { eventually, mosquitto, rows, tempDir, useInfluxd, type InfluxdHandle } from './helpers/servers.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

const silent = pino({ level: 'silent' });
const dir = tempDir('conformance');
const catalogued = new Set<string>(DROP_REASONS);

/** A source with its real counterpart: `good` is input it must take, `bad` input it must refuse. */
interface Rig {
  source: Component;
  /** Sends good input; resolves when the device got its acknowledgement (for a protocol that has one). */
  good(): Promise<unknown>;
  bad(): Promise<unknown>;
  /** Whether the protocol acknowledges input (then a stop while busy must leave it unacknowledged). */
  acknowledges: boolean;
  /** Where the protocol sends unacknowledged input again: the same source built anew on `ctx`, started. */
  again?(ctx: SourceContext): Promise<Component>;
  close(): Promise<void>;
}

interface SourceCase {
  name: string;
  /** The reason `bad` must be refused with. */
  reason: string;
  rig(ctx: SourceContext): Promise<Rig>;
}

/** The pipeline's side as the source sees it: what it ingested and what it rejected. */
function pipelineSide(ingest: (points: Point[]) => Promise<void> = async () => undefined) {
  const ingested: Point[] = [];
  const rejected: Rejection[] = [];
  const ctx: SourceContext = {
    ingest: async (points) => {
      ingested.push(...points);
      await ingest(points);
    },
    reject: (r) => void rejected.push(r),
    log: silent,
  };
  return { ctx, ingested, rejected };
}

/** An MQTT device publishing at QoS 1 with a persistent session, so an unacknowledged message would be sent again. */
async function device(url: string): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(url, { clientId: `dev-${Math.random().toString(36).slice(2, 8)}`, clean: false, reconnectPeriod: 200 });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}

const route = () => new TopicRouter([routeSchema.parse({ topic: 'plant/{machine}/telemetry', measurement: 'm' })]);
const goodJson = () => JSON.stringify({ temp: 21.5, ts: Date.now() });

let broker: Awaited<ReturnType<typeof mosquitto>>;
let plc: SimServer;

const sources: SourceCase[] = [
  {
    name: 'embedded broker',
    reason: 'invalid_json',
    async rig(ctx) {
      const port = await freePort();
      const make = (c: SourceContext) => new EmbeddedBroker('broker', brokerSchema.parse({ listen: `127.0.0.1:${port}`, allowAnonymous: true }), route(), c);
      const source = make(ctx);
      await source.start();
      const dev = await device(`mqtt://127.0.0.1:${port}`);
      let next: Component | undefined;
      return {
        source,
        acknowledges: true,
        // the device reconnects to the broker on the same port and sends its unacknowledged message again
        async again(c) {
          next = make(c);
          await next.start();
          return next;
        },
        good: () => dev.publishAsync('plant/m1/telemetry', goodJson(), { qos: 1 }),
        bad: () => dev.publishAsync('plant/m1/telemetry', '{"temp": 21.5,', { qos: 1 }),
        close: async () => {
          await dev.endAsync(true);
          await next?.stop();
        },
      };
    },
  },
  {
    name: 'mqtt client (mosquitto)',
    reason: 'not_an_object',
    async rig(ctx) {
      const clientId = `gw-${Math.random().toString(36).slice(2, 8)}`;
      const make = (c: SourceContext) => new BrokerClient('client', { ...clientSchema.parse({ url: broker.url, clean: false }), clientId }, route(), c);
      const source = make(ctx);
      await source.start();
      await eventually('the client subscribed', async () => source.status().state, (s) => s === 'running', 10_000);
      const dev = await device(broker.url);
      let next: Component | undefined;
      return {
        source,
        // mosquitto keeps the persistent session's unacknowledged message and sends it again
        async again(c) {
          next = make(c);
          await next.start();
          return next;
        },
        // mosquitto acknowledges the device; what the gateway holds back is its own PUBACK to mosquitto
        acknowledges: false,
        good: () => dev.publishAsync('plant/m2/telemetry', goodJson(), { qos: 1 }),
        bad: () => dev.publishAsync('plant/m2/telemetry', '[1, 2, 3]', { qos: 1 }),
        close: async () => {
          await dev.endAsync(true);
          await next?.stop();
        },
      };
    },
  },
  {
    name: 'sparkplug host (embedded broker)',
    reason: 'sparkplug_malformed',
    async rig(ctx) {
      const port = await freePort();
      const host = new SparkplugHost('sparkplug', { ...sparkplugSchema.parse({ mode: 'passive' }), stateFile: `${dir.path}/sparkplug-${port}.json` }, ctx);
      const source = new EmbeddedBroker('broker', brokerSchema.parse({ listen: `127.0.0.1:${port}`, allowAnonymous: true }), route(), ctx);
      source.useSparkplug(host);
      await host.start();
      await source.start();
      const dev = await device(`mqtt://127.0.0.1:${port}`);
      const birth = () => encodePayload({ timestamp: Date.now(), seq: 0, metrics: [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0n }, { name: 'Temperature', datatype: DataType.Double, value: 21.5 }] });
      return {
        source: host,
        acknowledges: false,
        good: () => dev.publishAsync('spBv1.0/line/NBIRTH/edge-1', Buffer.from(birth()), { qos: 0 }),
        bad: () => dev.publishAsync('spBv1.0/line/NDATA/edge-2', Buffer.from([0xff, 0xff, 0xff, 0x01]), { qos: 0 }),
        close: async () => {
          await dev.endAsync(true);
          await source.stop();
        },
      };
    },
  },
  {
    name: 'opcua endpoint (PLC simulator)',
    reason: 'array_too_long',
    async rig(ctx) {
      // the PLC's 8 analog inputs are one array value: longer than maxArrayLength 4, refused whole
      const nodes = [
        { nodeId: `nsu=${PLC_NAMESPACE};s=${plc.models[0]!.name}.Tank.Level`, field: 'level' },
        { nodeId: `nsu=${PLC_NAMESPACE};s=${plc.models[0]!.name}.Diagnostics.AnalogInputs`, field: 'ai' },
      ];
      const source = new OpcuaEndpointSource('opc', endpointSchema.parse({ name: 'opc', url: plc.url, securityMode: 'None', securityPolicy: 'None', measurement: 'plc', maxArrayLength: 4, nodes }), { manager: openCertificateManager(`${dir.path}/pki`), applicationName: 'conformance' }, ctx);
      await source.start();
      return {
        source,
        acknowledges: false,
        // the server samples by itself: good and bad values keep coming once subscribed
        good: async () => undefined,
        bad: async () => undefined,
        close: async () => undefined,
      };
    },
  },
];

beforeAll(async () => {
  broker = await mosquitto();
  plc = plcFleet({ servers: 1, plcsPerServer: 1, basePort: await freePort(), pkiDir: `${dir.path}/sim-pki`, security: 'none', intervalMs: 200 })[0]!;
  await plc.start();
}, 60_000);

afterAll(async () => {
  await plc?.stop();
  await broker?.stop();
  broker?.remove();
  dir.remove();
});

describe('source conformance', () => {
  for (const c of sources) {
    it(`${c.name}: a refusal goes to reject with its catalogued reason, is counted as dropped, and costs only itself`, async () => {
      const side = pipelineSide();
      const rig = await c.rig(side.ctx);
      try {
        await rig.bad();
        await eventually('the refusal', async () => side.rejected.length, (n) => n > 0, 15_000);
        await rig.good();
        await eventually('the good input', async () => side.ingested.length, (n) => n > 0, 15_000);
        const reasons = new Set(side.rejected.map((r) => r.reason));
        expect([...reasons]).toContain(c.reason);
        for (const r of side.rejected) {
          expect(catalogued.has(r.reason), `reason ${r.reason} is in src/core/reasons.ts`).toBe(true);
          expect(r.source).toBe(rig.source.name);
          expect(r.message.length).toBeGreaterThan(0);
        }
        // counted exactly as often as handed over (both read in one tick: more may still arrive)
        const handed = side.rejected.filter((r) => r.reason === c.reason).length;
        expect(rig.source.status().counters.dropped[c.reason]).toBe(handed);
      } finally {
        await rig.source.stop();
        await rig.close();
      }
    }, 60_000);

    it(`${c.name}: a stop while the pipeline holds its input ends promptly, acknowledges nothing, and the input comes again where the protocol resends`, async () => {
      let release!: (err?: Error) => void;
      const held = new Promise<void>((resolve, reject) => (release = (err) => (err ? reject(err) : resolve())));
      held.catch(() => undefined);
      const side = pipelineSide(() => held);
      const rig = await c.rig(side.ctx);
      let acked = false;
      try {
        const sent = rig.good().then(() => (acked = true), () => undefined);
        await eventually('the input in the pipeline', async () => side.ingested.length, (n) => n > 0, 15_000);
        const t0 = Date.now();
        await rig.source.stop();
        // "promptly": far below what a hang would be; each protocol's own goodbye has a 2-5 s bound
        expect(Date.now() - t0).toBeLessThan(15_000);
        expect(rig.source.status().state).toBe('stopped');
        expect(rig.source.status().counters.written).toBe(0);
        if (rig.acknowledges) {
          await new Promise((r) => setTimeout(r, 500));
          expect(acked, 'the device got no PUBACK for a message that never became durable').toBe(false);
        }
        if (rig.again) {
          // not lost either: sent again to the next instance, which takes it
          const after = pipelineSide();
          await rig.again(after.ctx);
          await eventually('the held message delivered again', async () => after.ingested.length, (n) => n > 0, 20_000);
          expect(after.ingested[0]!.fields).toEqual(side.ingested[0]!.fields);
          if (rig.acknowledges) {
            await sent;
            expect(acked).toBe(true);
          }
        }
      } finally {
        release(new Error('stopping'));
        await rig.source.stop();
        await rig.close();
      }
    }, 60_000);
  }
});

describe('sink conformance (influxdb, a real influxd)', () => {
  let db!: InfluxdHandle;
  useInfluxd((d) => (db = d));

  const newBuffer = async (name: string) => {
    const b = new DiskBuffer('buffer', bufferSchema.parse({ dir: `${dir.path}/${name}`, fsync: false }), ['sink']);
    await b.start();
    return b;
  };
  const sink = (url: string, buffer: DiskBuffer, database: string, reject: (r: Rejection) => void) =>
    new InfluxSink('sink', influxSchema.parse({ url, database, batchSize: 100, flushInterval: 50, retryMin: 100, retryMax: 500, api: 'v1' }), buffer, reject);
  const count = async (database: string) => Number(rows(await db.query('SELECT count(f) FROM m', database))[0]?.count ?? 0);

  it('a line InfluxDB refuses goes to reject as influx_400, is counted as dropped, and the lines beside it are written', async () => {
    const buffer = await newBuffer('reject');
    const rejected: Rejection[] = [];
    const s = sink(db.url, buffer, 'conf_reject', (r) => void rejected.push(r));
    await s.start();
    try {
      const t = Date.now() - 60_000;
      await buffer.append([...Array.from({ length: 10 }, (_v, i) => `m,k=a f=${i} ${t + i}`), 'm,k=a f=1 not-a-time', ...Array.from({ length: 10 }, (_v, i) => `m,k=b f=${i} ${t + i}`)]);
      await eventually('the good lines written', () => count('conf_reject'), (n) => n === 20, 20_000);
      expect(rejected.map((r) => r.reason)).toEqual(['influx_400']);
      expect(rejected[0]!.source).toBe('sink');
      expect(s.status().counters.dropped.influx_400).toBe(1);
      expect(buffer.unreadLines('sink')).toBe(0);
      // split in halves down to the bad line: the batch, then two requests per level (21 lines: 5 levels)
      expect(s.details().requests).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(21)));
    } finally {
      await s.stop();
      await buffer.stop();
    }
  });

  it('a stop while InfluxDB holds a write ends promptly, leaves the cursor where it was, and the next sink writes the batch', async () => {
    const proxy = new TcpProxy(db.port);
    await proxy.start();
    const buffer = await newBuffer('stop');
    const s = sink(`http://127.0.0.1:${proxy.port}`, buffer, 'conf_stop', () => undefined);
    await s.start();
    try {
      const t = Date.now() - 60_000;
      await buffer.append(Array.from({ length: 10 }, (_v, i) => `m,k=a f=${i} ${t + i}`));
      await eventually('the first batch written', () => count('conf_stop'), (n) => n === 10, 20_000);
      // a server that stops answering mid-connection: the next write hangs on the open socket
      proxy.stallOpen();
      await buffer.append(Array.from({ length: 10 }, (_v, i) => `m,k=b f=${i} ${t + i}`));
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      await s.stop();
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(s.status().state).toBe('stopped');
      expect(buffer.unreadLines('sink')).toBe(10);
      const next = sink(db.url, buffer, 'conf_stop', () => undefined);
      await next.start();
      await eventually('the held batch written by the next sink', () => count('conf_stop'), (n) => n === 20, 20_000);
      await next.stop();
    } finally {
      await s.stop();
      await buffer.stop();
      await proxy.stop();
    }
  });
});
