/**
 * Issue 7, done-when: the Sparkplug B host against the edge-node simulator on real brokers (the
 * embedded aedes and a real mosquitto) and a real influxd.
 *  - every metric type arrives, names resolved from aliases, values exact;
 *  - a seq gap and an unknown alias each cause exactly one rebirth request in active mode, none in
 *    passive; messages swapped within the reorder timeout cause none;
 *  - NDEATH (the will of a killed connection) marks the node offline and its metrics stale;
 *  - a gateway restart keeps resolving aliases without a new birth;
 *  - malformed protobuf, wrong topics and data before birth are dead-lettered (and, in active mode,
 *    answered with a rebirth request), nothing crashes;
 *  - primary mode publishes the host STATE as the specification says.
 * Assertion ids of the Sparkplug TCK are cited where a test checks one.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_TYPES, SparkplugEdgeNode, typedValue } from '../simulators/sparkplug-edge.js';
import { DataType, decodePayload, encodePayload, valueOf } from '../src/sources/sparkplug/codec.js';
import { flatten } from '../src/sources/sparkplug/mapping.js';
import { testGateway } from './helpers/gateway.js';
import { eventually, mosquitto, useInfluxd, type InfluxdHandle } from './helpers/servers.js';

type TestGateway = Awaited<ReturnType<typeof testGateway>>;

let db: InfluxdHandle;
useInfluxd((d) => (db = d));

let broker: Awaited<ReturnType<typeof mosquitto>>;
beforeAll(async () => {
  broker = await mosquitto();
});
afterAll(async () => {
  await broker?.stop();
  broker?.remove();
});

function gatewayYaml(database: string, sparkplug: string, transport: 'embedded' | 'mosquitto', clientId = 'plantgate-host'): string {
  const mqttPart =
    transport === 'embedded'
      ? `mqtt:\n  broker: { listen: 127.0.0.1:0, allowAnonymous: true }`
      : `mqtt:\n  clients:\n    - { url: "${broker.url}", clientId: ${clientId}, clean: true }`;
  return `
influx: { url: ${db.url}, database: ${database}, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
${mqttPart}
sparkplug: ${sparkplug}
buffer: { dir: "\${DATA}/buffer" }
`;
}

function host(gw: TestGateway) {
  return gw.pipeline.status().components.find((c) => c.name === 'sparkplug')!;
}

function nodeStatus(gw: TestGateway, edge: string) {
  return (host(gw).details!.nodes as { edge: string; online: boolean; stale: boolean; restored: boolean; staleMetrics: number; metrics: number; rebirthsRequested: number; gaps: number; reordered: number; unknownAliases: number; devices: { device: string; online: boolean; stale: boolean; staleMetrics: number; metrics: number }[] }[]).find((n) => n.edge === edge);
}

/** Watches NCMD rebirth requests on a broker. */
async function ncmdWatcher(url: string): Promise<{ client: MqttClient; rebirths: string[] }> {
  const client = await mqtt.connectAsync(url, { clientId: `watch-${Math.random().toString(16).slice(2)}` });
  const rebirths: string[] = [];
  client.on('message', (topic, payload) => {
    const p = decodePayload(payload);
    if (p.metrics.some((m) => m.name === 'Node Control/Rebirth' && valueOf(m, DataType.Boolean) === true)) rebirths.push(topic);
  });
  await client.subscribeAsync('spBv1.0/+/NCMD/+', { qos: 1 });
  return { client, rebirths };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('every metric type, names from aliases (embedded broker)', () => {
  let gw: TestGateway;
  let edge: SparkplugEdgeNode;
  beforeAll(async () => {
    gw = await testGateway(gatewayYaml('sp_types', '{ mode: active, hostId: plantgate }', 'embedded'));
    edge = new SparkplugEdgeNode({ url: `mqtt://127.0.0.1:${gw.broker!.port}`, group: 'plant', edge: 'edge-types', devices: [{ id: 'robot-001', kind: 'robot' }, { id: 'machine-001', kind: 'machine' }], intervalMs: 0 });
    await edge.start();
    await eventually('births seen', async () => nodeStatus(gw, 'edge-types'), (n) => n?.devices.length === 2 && n.devices.every((d) => d.online));
  });
  afterAll(async () => {
    await edge?.stop();
    await gw?.cleanup();
  });

  it('stores every Sparkplug data type with the value the edge node sent, by name', async () => {
    await edge.publishData(); // by alias only
    // the simulator's UInt64 stays within what every sink holds (int64), however long it runs
    for (const tick of [0, 806, 807, 10_000, 31_536_000]) expect(typedValue(DataType.UInt64, tick) as bigint).toBeLessThanOrEqual(2n ** 63n - 1n);
    const sent = edge.last.get('machine-001')!;
    const expected = new Map<string, unknown>();
    for (const type of ALL_TYPES) {
      const name = `Types/${DataType[type]}`;
      expect(sent.values.get(name)).toEqual(typedValue(type, sent.tick));
      for (const [f, v] of flatten(name, type, sent.values.get(name)!, { maxArrayLength: 64, maxBytesLength: 8192 })) expected.set(f, v);
    }
    const row = await eventually(
      'DDATA stored',
      async () => (await db.queryText(`SELECT * FROM sparkplug WHERE device='machine-001' AND time = ${sent.time}ms`, 'sp_types').catch(() => []))[0],
      (r) => r !== undefined,
    );
    expect(row!).toMatchObject({ group: 'plant', edge_node: 'edge-types', device: 'machine-001', quality: 'good' });
    const missing: string[] = [];
    for (const [field, v] of expected) {
      const got = row![field];
      if (got === undefined || (got === '' && v !== '')) missing.push(field);
      else if (typeof v === 'number') expect(Number(got), field).toBeCloseTo(v, 6);
      else expect(got, field).toBe(String(v));
    }
    expect(missing).toEqual([]);
    // every type is there: scalars, DataSet cells, template members, arrays, bytes and file as base64
    expect(expected.size).toBeGreaterThan(50);
    for (const f of ['Types/DataSet[1].life', 'Types/Template/Speed', 'Types/BooleanArray[2]', 'Types/UInt64Array[1]', 'Types/Bytes', 'Types/UUID', 'Types/DateTime']) expect(expected.has(f), f).toBe(true);
    // the template definition in the NBIRTH is a type, not a value; bdSeq and Node Control are plumbing
    const nodeRows = await db.queryText(`SELECT * FROM sparkplug WHERE device = ''`, 'sp_types');
    expect(Object.keys(nodeRows[0] ?? {}).filter((k) => k.startsWith('_types_') || k === 'bdSeq' || k.startsWith('Node Control'))).toEqual([]);
    expect(nodeRows.some((r) => r['Node Info/Uptime'] !== '')).toBe(true);
  });

  it('types in InfluxDB follow the Sparkplug data types', async () => {
    const keys = Object.fromEntries((await db.queryText('SHOW FIELD KEYS FROM sparkplug', 'sp_types')).map((r) => [r.fieldKey, r.fieldType]));
    expect(keys).toMatchObject({
      'Types/Int8': 'integer', 'Types/UInt64': 'integer', 'Types/DateTime': 'integer', 'Types/Float': 'float', 'Types/Double': 'float',
      'Types/Boolean': 'boolean', 'Types/String': 'string', 'Types/Text': 'string', 'Types/UUID': 'string', 'Types/Bytes': 'string',
      'Types/Int32Array[0]': 'integer', 'Types/FloatArray[1]': 'float', 'Types/StringArray[1]': 'string', 'Types/Template/Feed': 'float',
      'Joints/Angles[5]': 'float', mode: 'string', emergency_stop: 'boolean',
    });
  });

  it('a DDEATH marks the device offline and its metrics stale; the node stays online', async () => {
    await edge.deviceDeath('robot-001');
    const n = await eventually('device dead', async () => nodeStatus(gw, 'edge-types'), (s) => s?.devices.find((d) => d.device === 'robot-001')?.online === false);
    const robot = n!.devices.find((d) => d.device === 'robot-001')!;
    expect(robot).toMatchObject({ stale: true, staleMetrics: robot.metrics });
    expect(n!.online).toBe(true);
    expect(n!.devices.find((d) => d.device === 'machine-001')!.stale).toBe(false);
  });
});

describe('rebirth requests: exactly one per incident in active mode, none in passive (mosquitto)', () => {
  for (const mode of ['active', 'passive'] as const) {
    it(`${mode}: seq gap, unknown alias, swapped messages`, async () => {
      const gw = await testGateway(gatewayYaml(`sp_${mode}`, `{ mode: ${mode}, hostId: host-${mode}, reorderTimeout: 300ms, rebirthTimeout: 5s, groups: [g-${mode}] }`, 'mosquitto', `pg-${mode}`));
      const watch = await ncmdWatcher(broker.url);
      const edge = new SparkplugEdgeNode({ url: broker.url, group: `g-${mode}`, edge: 'e1', devices: [{ id: 'robot-001', kind: 'robot' }], intervalMs: 0 });
      try {
        await eventually('host subscribed', async () => host(gw).state, (s) => s === 'running');
        await settle(300);
        await edge.start();
        await eventually('birth seen', async () => nodeStatus(gw, 'e1'), (n) => n?.online === true && n.devices[0]?.online === true);
        await edge.publishData();

        // two messages swapped, well within the reorder timeout: no gap, no request
        // [tck-id-operational-behavior-host-reordering-success]
        edge.injectOutOfOrder();
        await edge.publishData();
        await settle(800);
        expect(nodeStatus(gw, 'e1')).toMatchObject({ gaps: 0, reordered: 1 });
        expect(watch.rebirths).toEqual([]);

        // a lost message: one request after the reorder timeout [tck-id-operational-behavior-host-reordering-rebirth]
        edge.injectGap();
        await edge.publishData();
        await edge.publishData();
        await settle(1000);
        expect(nodeStatus(gw, 'e1')!.gaps).toBe(1);
        if (mode === 'active') {
          await eventually('rebirth answered', async () => edge.stats.rebirthRequests, (n) => n === 1);
          expect(watch.rebirths).toEqual([`spBv1.0/g-${mode}/NCMD/e1`]);
          await eventually('node born again', async () => host(gw).details!.births as number, (n) => n === 2);
        }

        // an alias the birth never gave: dead-lettered, one request
        edge.injectUnknownAlias();
        await edge.publishData();
        await edge.publishData(); // the rest keeps flowing
        await settle(1000);
        const n = nodeStatus(gw, 'e1')!;
        expect(n.unknownAliases).toBe(1);
        expect(gw.pipeline.status().deadLetters.byReason.unknown_alias).toBe(1);
        if (mode === 'active') {
          expect(watch.rebirths).toHaveLength(2);
          expect(edge.stats.rebirthRequests).toBe(2);
          expect(n.rebirthsRequested).toBe(2);
        } else {
          expect(watch.rebirths).toEqual([]);
          expect(edge.stats.rebirthRequests).toBe(0);
          expect(host(gw).details!.rebirthsNeeded).toBe(2); // seen and reported, not requested
          expect(host(gw).details!.rebirthsSent).toBe(0);
        }
        // every DDATA that was sent is stored (the swapped and the unknown-alias one too)
        const count = await eventually(
          'data stored',
          async () => Number((await db.queryText(`SELECT count(cycle_count) FROM sparkplug WHERE device='robot-001'`, `sp_${mode}`).catch(() => []))[0]?.count ?? 0),
          (c) => c >= (mode === 'active' ? 8 : 7),
        );
        expect(count).toBeGreaterThanOrEqual(7);
      } finally {
        await edge.stop();
        await watch.client.endAsync();
        await gw.cleanup();
      }
    });
  }
});

describe('death, restart and bad input (mosquitto, active)', () => {
  it('NDEATH from the will marks the node offline and stale; an older bdSeq death is ignored', async () => {
    const gw = await testGateway(gatewayYaml('sp_death', '{ mode: active, groups: [g-death] }', 'mosquitto', 'pg-death'));
    const edge = new SparkplugEdgeNode({ url: broker.url, group: 'g-death', edge: 'e1', devices: [{ id: 'robot-001', kind: 'robot' }], intervalMs: 0, bdSeq: 7 });
    try {
      await eventually('host running', async () => host(gw).state, (s) => s === 'running');
      await settle(300);
      await edge.start();
      await eventually('birth', async () => nodeStatus(gw, 'e1'), (n) => n?.online === true && n.devices[0]?.online === true);
      expect(host(gw).details!.nodes).toMatchObject([{ bdSeq: '7' }]);
      expect(gw.sparkplug!.presence().map((p) => p.tags.device ?? '')).toEqual(['', 'robot-001']);

      // a death with another bdSeq is the will of an older session [tck-id-operational-behavior-edge-node-...]
      const old = await mqtt.connectAsync(broker.url, { clientId: 'old-session' });
      await old.publishAsync('spBv1.0/g-death/NDEATH/e1', Buffer.from(encodePayload({ timestamp: Date.now(), metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 6n }] })), { qos: 1 });
      await old.endAsync();
      await eventually('stale death counted', async () => (host(gw).details!.staleDeaths as number), (n) => n === 1);
      expect(nodeStatus(gw, 'e1')!.online).toBe(true);

      edge.kill(); // no DISCONNECT: mosquitto publishes the NDEATH will (keepalive 5 s at most)
      const n = await eventually('node dead', async () => nodeStatus(gw, 'e1'), (s) => s?.online === false, 30_000);
      expect(n).toMatchObject({ stale: true, staleMetrics: n!.metrics });
      expect(n!.devices[0]).toMatchObject({ online: false, stale: true });
      expect(host(gw).details!.deaths).toBe(1);
      expect(gw.sparkplug!.presence()).toEqual([]); // indicators stop counting it once their window passes
    } finally {
      await edge.stop();
      await gw.cleanup();
    }
  });

  it('a gateway restart keeps resolving aliases without waiting for a new birth', async () => {
    const yaml = gatewayYaml('sp_restart', '{ mode: active, groups: [g-restart] }', 'mosquitto', 'pg-restart');
    const first = await testGateway(yaml);
    const dir = first.dir;
    const edge = new SparkplugEdgeNode({ url: broker.url, group: 'g-restart', edge: 'e1', devices: [{ id: 'machine-001', kind: 'machine' }], intervalMs: 0 });
    let second: TestGateway | undefined;
    try {
      await eventually('host running', async () => host(first).state, (s) => s === 'running');
      await settle(300);
      await edge.start();
      await eventually('birth', async () => nodeStatus(first, 'e1'), (n) => n?.devices[0]?.online === true);
      await first.stop(); // not cleanup: keep the folder with the state file

      // the same folder, a new gateway
      second = await testGateway(yaml, {}, { reuseDir: dir });
      await eventually('host running again', async () => host(second!).state, (s) => s === 'running');
      expect(nodeStatus(second, 'e1')).toMatchObject({ online: true, restored: true });
      await settle(500);
      await edge.publishData(); // aliases only
      const sent = edge.last.get('machine-001')!;
      const row = await eventually(
        'data by alias stored after restart',
        async () => (await db.queryText(`SELECT "Spindle/Speed", "Parts/Count", "Types/Int64" FROM sparkplug WHERE device='machine-001' AND time = ${sent.time}ms`, 'sp_restart').catch(() => []))[0],
        (r) => r !== undefined,
      );
      expect(row!['Parts/Count']).toBe(String(sent.values.get('Parts/Count')));
      expect(row!['Types/Int64']).toBe(String(sent.values.get('Types/Int64')));
      expect(edge.stats.rebirthRequests).toBe(0);
      expect(nodeStatus(second, 'e1')!.unknownAliases).toBe(0);
    } finally {
      await edge.stop();
      await second?.cleanup();
      await first.cleanup();
    }
  });

  it('malformed protobuf, wrong topics and data before birth are dead-lettered; good traffic goes on', async () => {
    const gw = await testGateway(gatewayYaml('sp_bad', '{ mode: active, groups: [g-bad], rebirthTimeout: 30s }', 'mosquitto', 'pg-bad'));
    const watch = await ncmdWatcher(broker.url);
    const good = new SparkplugEdgeNode({ url: broker.url, group: 'g-bad', edge: 'good', devices: [{ id: 'robot-001', kind: 'robot' }], intervalMs: 0 });
    const early = new SparkplugEdgeNode({ url: broker.url, group: 'g-bad', edge: 'early', devices: [{ id: 'robot-002', kind: 'robot' }], intervalMs: 0, noBirth: true });
    const raw = await mqtt.connectAsync(broker.url, { clientId: 'raw' });
    try {
      await eventually('host running', async () => host(gw).state, (s) => s === 'running');
      await settle(300);
      await good.start();
      await eventually('birth', async () => nodeStatus(gw, 'good'), (n) => n?.devices[0]?.online === true);
      const bad: [string, string, Buffer][] = [
        ['sparkplug_malformed', 'spBv1.0/g-bad/NDATA/good', Buffer.from([0xff, 0xff, 0xff, 0xff])],
        ['sparkplug_malformed', 'spBv1.0/g-bad/DDATA/good/robot-001', Buffer.from('{"json": "not protobuf"}')],
        ['sparkplug_topic', 'spBv1.0/g-bad/DDATA/good', Buffer.from(encodePayload({ seq: 1, metrics: [] }))],
        ['sparkplug_topic', 'spBv1.0/g-bad/NFOO/good', Buffer.from(encodePayload({ seq: 1, metrics: [] }))],
        ['sparkplug_bad_state', 'spBv1.0/STATE/other', Buffer.from('online')],
      ];
      for (const [, topic, payload] of bad) {
        await raw.publishAsync(topic, payload, { qos: 1 });
        await good.publishData();
      }
      await early.start();
      await early.publishData(); // NDATA + DDATA before any birth
      const dl = await eventually('dead letters', async () => gw.pipeline.status().deadLetters, (d) => (d.byReason.data_before_birth ?? 0) >= 2 && d.total >= bad.length + 2);
      for (const reason of new Set(bad.map(([r]) => r))) expect(dl.byReason[reason], reason).toBe(bad.filter(([r]) => r === reason).length);
      expect(dl.latest.filter((d) => d.reason === 'sparkplug_topic').map((d) => d.message)).toContainEqual(expect.stringMatching(/device messages need a device_id/));
      // active mode asks the early node to rebirth, once for both messages; it answers with its births
      await eventually('early node asked to rebirth', async () => early.stats.rebirthRequests, (n) => n === 1);
      await settle(300);
      expect(watch.rebirths).toEqual(['spBv1.0/g-bad/NCMD/early']);
      await eventually('early node born', async () => nodeStatus(gw, 'early'), (n) => n?.online === true);

      expect(host(gw).state).toBe('running');
      const stored = await eventually(
        'all good data stored',
        async () => Number((await db.queryText(`SELECT count(cycle_count) FROM sparkplug WHERE edge_node='good'`, 'sp_bad').catch(() => []))[0]?.count ?? 0),
        (c) => c === bad.length + 1,
      );
      expect(stored).toBe(bad.length + 1); // birth + one DDATA after each bad message
    } finally {
      await raw.endAsync();
      await good.stop();
      await early.stop();
      await watch.client.endAsync();
      await gw.cleanup();
    }
  });
});

describe('primary host STATE (mosquitto)', () => {
  it('publishes online (retained, QoS 1) after subscribing, edge nodes wait for it, offline on stop', async () => {
    const states: { online: boolean; timestamp: number; retain: boolean }[] = [];
    const watcher = await mqtt.connectAsync(broker.url, { clientId: 'state-watch' });
    watcher.on('message', (_t, payload, packet) => states.push({ ...(JSON.parse(payload.toString()) as { online: boolean; timestamp: number }), retain: packet.retain }));
    await watcher.subscribeAsync('spBv1.0/STATE/pg-primary', { qos: 1 });
    const edge = new SparkplugEdgeNode({ url: broker.url, group: 'g-primary', edge: 'e1', devices: [{ id: 'robot-001', kind: 'robot' }], intervalMs: 0, primaryHost: 'pg-primary' });
    await edge.start();
    await settle(500);
    expect(edge.stats.births).toBe(0); // [tck-id-message-flow-edge-node-birth-publish-phid-wait]
    const gw = await testGateway(gatewayYaml('sp_primary', '{ mode: primary, hostId: pg-primary, groups: [g-primary] }', 'mosquitto', 'pg-primary'));
    try {
      await eventually('online STATE', async () => states.at(-1), (s) => s?.online === true);
      expect(typeof states.at(-1)!.timestamp).toBe('number');
      await eventually('edge born after the host came online', async () => nodeStatus(gw, 'e1'), (n) => n?.online === true);
      expect(edge.stats.births).toBe(1);
      // a late comer gets the retained online STATE [tck-id-host-topic-phid-birth-retain]
      const late = await mqtt.connectAsync(broker.url, { clientId: 'late' });
      const retained = new Promise<{ online: boolean; retain: boolean }>((r) => late.once('message', (_t, p, pk) => r({ ...(JSON.parse(p.toString()) as { online: boolean }), retain: pk.retain })));
      await late.subscribeAsync('spBv1.0/STATE/pg-primary', { qos: 1 });
      expect(await retained).toEqual({ online: true, timestamp: expect.any(Number), retain: true });
      await late.endAsync();
    } finally {
      await gw.cleanup();
    }
    await eventually('offline STATE on stop', async () => states.at(-1), (s) => s?.online === false);
    await edge.stop();
    await watcher.endAsync();
  });
});
