/**
 * What an independent OPC UA server showed (issue "Seen against an independent server"), against
 * a node-opcua server built here with exactly those nodes, through a real influxd:
 * - a node declared BaseDataType (or Number) whose values switch between integer, float and
 *   string: every value is stored, in one float and one `.text` field, no field type conflict;
 * - a structure (the server's own ServerStatus): DateTime members as epoch ms, the enumeration
 *   as its integer, UInt32 as an integer, as top-level values of those types;
 * - a browse root where `dotted.name` and `dotted` / `name` make the same field: the second is
 *   refused with the first one's node id, not silently overwritten;
 * - a node that flaps Good/Bad is logged once, not on every change;
 * - in poll mode an unknown node writes no point on every poll.
 */
import { DataType, OPCUAServer, StatusCodes, Variant } from 'node-opcua';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../tools/servers/process.js';
import { testGateway } from './helpers/gateway.js';
import { logCapture } from './helpers/logs.js';
import { eventually, type InfluxdHandle, rows, tempDir, useInfluxd } from './helpers/servers.js';

const NS = 'urn:plantgate:test:seen';

describe('OPC UA values as an independent server sends them', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const pki = tempDir('opcua-seen');
  let server: OPCUAServer;
  let port: number;
  let timer: NodeJS.Timeout;
  let tick = 0;
  const sent: unknown[] = [];
  let gw: Awaited<ReturnType<typeof testGateway>>;
  const { logs, stream } = logCapture();

  beforeAll(async () => {
    port = await freePort();
    server = new OPCUAServer({ port, host: '127.0.0.1', hostname: '127.0.0.1', serverCertificateManager: undefined, certificateFile: undefined });
    await server.initialize();
    const as = server.engine.addressSpace!;
    const ns = as.registerNamespace(NS);
    const plant = ns.addObject({ organizedBy: as.rootFolder.objects, browseName: 'Seen', nodeId: 's=Seen' });
    const mixed = ns.addVariable({ componentOf: plant, browseName: 'Mixed', nodeId: 's=Mixed', dataType: 'BaseDataType', value: new Variant({ dataType: DataType.Int32, value: 0 }) });
    const num = ns.addVariable({ componentOf: plant, browseName: 'Num', nodeId: 's=Num', dataType: 'Number', value: new Variant({ dataType: DataType.Int32, value: 0 }) });
    const flappy = ns.addVariable({ componentOf: plant, browseName: 'Flappy', nodeId: 's=Flappy', dataType: 'Double', value: new Variant({ dataType: DataType.Double, value: 0 }) });
    // the same field twice below one root: "dotted.name", and "name" in the object "dotted"
    const coll = ns.addObject({ organizedBy: as.rootFolder.objects, browseName: 'Coll', nodeId: 's=Coll' });
    ns.addVariable({ componentOf: coll, browseName: 'dotted.name', nodeId: 's=Coll.flat', dataType: 'Double', value: new Variant({ dataType: DataType.Double, value: 1 }) });
    const dotted = ns.addObject({ componentOf: coll, browseName: 'dotted', nodeId: 's=Coll.dotted' });
    ns.addVariable({ componentOf: dotted, browseName: 'name', nodeId: 's=Coll.dotted.name', dataType: 'Double', value: new Variant({ dataType: DataType.Double, value: 2 }) });
    await server.start();
    timer = setInterval(() => {
      tick++;
      const value = tick % 3 === 0 ? new Variant({ dataType: DataType.Int32, value: tick }) : tick % 3 === 1 ? new Variant({ dataType: DataType.Double, value: tick + 0.5 }) : new Variant({ dataType: DataType.String, value: `state-${tick}` });
      sent.push(value.value);
      mixed.setValueFromSource(value);
      num.setValueFromSource(tick % 2 ? new Variant({ dataType: DataType.Int32, value: tick }) : new Variant({ dataType: DataType.Double, value: tick + 0.25 }));
      flappy.setValueFromSource(new Variant({ dataType: DataType.Double, value: tick }), tick % 2 ? StatusCodes.BadSensorFailure : StatusCodes.Good);
    }, 150);
    gw = await testGateway(
      `
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: seen, flushInterval: 200ms }
buffer: { dir: "\${DATA}/buffer" }
opcua:
  pkiDir: ${pki.path}/gw
  endpoints:
    - name: seen
      url: opc.tcp://127.0.0.1:${port}
      securityMode: None
      securityPolicy: None
      measurement: seen
      publishingInterval: 100ms
      nodes:
        - { nodeId: "nsu=${NS};s=Mixed", field: mixed, samplingInterval: 50ms, queueSize: 20 }
        - { nodeId: "nsu=${NS};s=Num", field: num, samplingInterval: 50ms, queueSize: 20 }
        - { nodeId: "nsu=${NS};s=Flappy", field: flappy, samplingInterval: 50ms, queueSize: 20 }
        - { nodeId: "i=2256", field: status, samplingInterval: 1s }
      browse:
        - { root: "nsu=${NS};s=Coll", measurement: coll }
    - name: polled
      url: opc.tcp://127.0.0.1:${port}
      securityMode: None
      securityPolicy: None
      measurement: polled
      mode: poll
      pollInterval: 100ms
      nodes:
        - { nodeId: "nsu=${NS};s=Num", field: num }
        - { nodeId: "nsu=${NS};s=DoesNotExist", field: ghost }
`,
      {},
      { logTo: stream },
    );
  }, 60_000);

  afterAll(async () => {
    clearInterval(timer);
    await gw?.cleanup();
    await server?.shutdown(0);
    pki.remove();
  });

  it('stores every value of a BaseDataType node that switches types, in one float and one text field', async () => {
    const q = async () => rows(await db.query('SELECT count(mixed) AS f, count("mixed.text") AS t, count(num) AS n FROM seen', 'seen'))[0] as { f?: number; t?: number; n?: number } | undefined;
    const first = sent.length;
    const got = await eventually('60 values of each kind', q, (r) => (r?.f ?? 0) >= 40 && (r?.t ?? 0) >= 20, 30_000);
    // nothing refused: no field type conflict, no dead letter
    expect(gw.pipeline.status().deadLetters.byReason.influx_400 ?? 0).toBe(0);
    expect(got?.n).toBeGreaterThan(0);
    // every value the server sent since the gateway subscribed is there: integers and floats as floats, strings as text
    const stored = rows(await db.query('SELECT mixed, "mixed.text" FROM seen', 'seen')) as { mixed?: number; 'mixed.text'?: string }[];
    const values = new Set(stored.map((r) => r.mixed ?? r['mixed.text']));
    const expected = sent.slice(first + 5, first + 30);
    expect(expected.filter((v) => !values.has(v as never))).toEqual([]);
  }, 60_000);

  it('types the members of a structure as top-level values of their types', async () => {
    const r = await eventually(
      'ServerStatus stored',
      async () => rows(await db.query('SELECT "status.state", "status.currentTime" FROM seen ORDER BY time DESC LIMIT 1', 'seen'))[0] as Record<string, unknown> | undefined,
      (x) => !!x,
      20_000,
    );
    const fields = await db.queryText('SHOW FIELD KEYS FROM seen', 'seen');
    const type = (k: string) => fields.find((f) => f.fieldKey === k)?.fieldType;
    expect(type('status.startTime')).toBe('integer');
    expect(type('status.currentTime')).toBe('integer');
    expect(type('status.state')).toBe('integer');
    expect(type('status.secondsTillShutdown')).toBe('integer');
    expect(type('status.buildInfo.buildDate')).toBe('integer');
    expect(type('status.buildInfo.productUri')).toBe('string');
    expect(Math.abs(Number(r!['status.currentTime']) - Date.now())).toBeLessThan(60_000);
  });

  it('refuses the second node of one field below a browse root, naming the first', async () => {
    type Failing = { node: string; field: string; status: string; statusCode: string }[];
    const failing = async (name: string) => ((gw.pipeline.status().components.find((c) => c.name === name)?.details?.failingNodes ?? []) as Failing);
    const dup = await eventually('the duplicate refused', async () => (await failing('seen')).filter((n) => n.field === 'dotted.name'), (n) => n.length > 0, 20_000);
    expect(dup).toHaveLength(1);
    expect(dup[0]!.status).toBe('failed');
    expect(dup[0]!.statusCode).toMatch(/^DuplicateField: field "dotted\.name" .* written by nsu=urn:plantgate:test:seen;s=Coll\.(flat|dotted\.name) already/);
    const stored = await eventually('the first one stored', async () => rows(await db.query('SELECT "dotted.name" FROM coll', 'seen')), (r) => r.length > 0, 20_000);
    expect(new Set(stored.map((r) => r['dotted.name'])).size).toBe(1);
  });

  it('logs a node that flaps between Good and Bad once, not on every change', async () => {
    await eventually('Flappy went bad many times', async () => tick, (t) => t > 40, 20_000);
    const bad = logs.filter((l) => l.msg === 'opcua node bad' && l.field === 'flappy');
    expect(bad).toHaveLength(1);
  });

  it('writes no point for an unknown node in poll mode, however often it polls', async () => {
    await eventually('polled values stored', async () => rows(await db.query('SELECT count(num) FROM polled', 'seen'))[0]?.count as number | undefined, (n) => (n ?? 0) >= 20, 20_000);
    expect(rows(await db.query('SELECT "ghost.status" FROM polled', 'seen'))).toEqual([]);
    const ghost = ((gw.pipeline.status().components.find((c) => c.name === 'polled')?.details?.failingNodes ?? []) as { field: string; status: string }[]).find((n) => n.field === 'ghost');
    expect(ghost?.status).toMatch(/removed|failed/);
  });
});
