/**
 * Simulated Sparkplug B edge nodes (spec chapter 5, edge node side), one MQTT connection each, with
 * robots and machines as devices. They behave like real ones: NDEATH registered as the MQTT will
 * with the bdSeq the following NBIRTH repeats, births that give every metric an alias, data by
 * alias only, seq counting 0..255, births again on an NCMD `Node Control/Rebirth`, an explicit
 * NDEATH on a clean stop. With a primary host configured they wait for its online STATE.
 *
 * Faults for tests: a seq gap, two messages swapped, an alias the birth never gave, data before
 * any birth, and a connection killed without DISCONNECT (the broker sends the will).
 *
 * Machines carry one metric of every Sparkplug data type under `Types/`, so a host can be checked
 * against everything the specification defines; the values are a function of the tick and can be
 * recomputed by tests (`typedValue`).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { DataType, decodePayload, encodePayload, templateOf, valueOf, type DataSetValue, type MetricInput, type Value } from '../src/sources/sparkplug/codec.js';
import { deviceTopic, nodeTopic, stateTopic } from '../src/sources/sparkplug/topic.js';

export type DeviceKind = 'robot' | 'machine';

export interface EdgeNodeOptions {
  url: string;
  group: string;
  edge: string;
  devices: { id: string; kind: DeviceKind }[];
  /** Period of DDATA/NDATA; 0: only when `publishData()` is called. */
  intervalMs: number;
  /** Wait for this host's online STATE before births. */
  primaryHost?: string;
  /** First bdSeq (default 0). */
  bdSeq?: number;
  /** Do not send births on connect (to test data before birth). */
  noBirth?: boolean;
  qos?: 0 | 1;
  /** Credentials, for a broker that wants them. */
  username?: string;
  password?: string;
}

interface MetricSpec {
  name: string;
  datatype: DataType;
  value: (tick: number, device: number) => Value;
  properties?: MetricInput['properties'];
}

/** Every data type a metric can have (spec 6.4.16), for `Types/<name>`. */
export const ALL_TYPES: DataType[] = [
  DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64, DataType.UInt8, DataType.UInt16, DataType.UInt32, DataType.UInt64,
  DataType.Float, DataType.Double, DataType.Boolean, DataType.String, DataType.DateTime, DataType.Text, DataType.UUID,
  DataType.DataSet, DataType.Bytes, DataType.File, DataType.Template,
  DataType.Int8Array, DataType.Int16Array, DataType.Int32Array, DataType.Int64Array, DataType.UInt8Array, DataType.UInt16Array,
  DataType.UInt32Array, DataType.UInt64Array, DataType.FloatArray, DataType.DoubleArray, DataType.BooleanArray, DataType.StringArray, DataType.DateTimeArray,
];

const EPOCH = 1_700_000_000_000n;

/** The value of `Types/<type>` at a tick: deterministic, covering signs and the full ranges. */
export function typedValue(type: DataType, tick: number): Value {
  const k = BigInt(tick);
  switch (type) {
    case DataType.Int8: return -128n + ((k * 37n) % 256n);
    case DataType.Int16: return -32768n + ((k * 4099n) % 65536n);
    case DataType.Int32: return -2147483648n + ((k * 1000003n) % 4294967296n);
    case DataType.Int64: return -9223372036854775807n + k * 1000000007n;
    case DataType.UInt8: return (k * 37n) % 256n;
    case DataType.UInt16: return 65535n - ((k * 7n) % 65536n);
    case DataType.UInt32: return 4294967295n - k;
    // near the top of InfluxDB's signed 64-bit range (1.x has no unsigned type), never past it,
    // however long the simulator runs, so the stored value can be compared
    case DataType.UInt64: return 9223372036854775000n + (k % 800n);
    case DataType.Float: return Math.fround(tick * 0.25 - 100.5);
    case DataType.Double: return tick * 1.000001 + 0.1;
    case DataType.Boolean: return tick % 2 === 1;
    case DataType.String: return `str-${tick}-ü`;
    case DataType.DateTime: return EPOCH + k * 1000n;
    case DataType.Text: return `text ${tick}`;
    case DataType.UUID: return `00000000-0000-4000-8000-${String(tick).padStart(12, '0')}`;
    case DataType.DataSet:
      return {
        columns: ['tool', 'life', 'worn'],
        types: [DataType.String, DataType.Int32, DataType.Boolean],
        rows: [['T1', BigInt(100 - (tick % 100)), false], ['T2', BigInt(-tick), tick % 3 === 0]],
      } satisfies DataSetValue;
    case DataType.Bytes: return Uint8Array.from([tick & 255, 0, 255, 7]);
    case DataType.File: return Uint8Array.from(Buffer.from(`G01 X${tick}\n`));
    case DataType.Template:
      return templateOf(
        [
          { name: 'Feed', datatype: DataType.Float, value: Math.fround(tick / 4) },
          { name: 'Speed', datatype: DataType.UInt16, value: BigInt(1000 + (tick % 500)) },
        ],
        { templateRef: 'Recipe' },
      );
    case DataType.Int8Array: return [-128n, BigInt(tick % 128)];
    case DataType.Int16Array: return [-32768n, BigInt(tick)];
    case DataType.Int32Array: return [-1n, BigInt(tick), 2147483647n];
    case DataType.Int64Array: return [-9223372036854775807n, BigInt(tick)];
    case DataType.UInt8Array: return [255n, BigInt(tick % 256)];
    case DataType.UInt16Array: return [65535n, BigInt(tick % 65536)];
    case DataType.UInt32Array: return [4294967295n, BigInt(tick)];
    case DataType.UInt64Array: return [9223372036854775807n, BigInt(tick)];
    case DataType.FloatArray: return [Math.fround(tick / 2), -1.5];
    case DataType.DoubleArray: return [tick / 3, 1e-9];
    case DataType.BooleanArray: return [true, false, tick % 2 === 0];
    case DataType.StringArray: return ['a', `b${tick}`, ''];
    case DataType.DateTimeArray: return [EPOCH, EPOCH + k];
    default: throw new Error(`no value for ${DataType[type]}`);
  }
}

const quality = (code: number) => ({ Quality: { type: DataType.Int32, value: BigInt(code) } });

const ROBOT: MetricSpec[] = [
  { name: 'mode', datatype: DataType.String, value: (t, d) => ((t + d * 7) % 20 === 0 ? 'MANUAL' : 'AUTO') },
  { name: 'emergency_stop', datatype: DataType.Boolean, value: () => false },
  { name: 'protective_stop', datatype: DataType.Boolean, value: (t, d) => (t + d) % 50 === 49 },
  { name: 'cycle_count', datatype: DataType.UInt32, value: (t, d) => BigInt(1000 * d + t) },
  { name: 'Joints/Angles', datatype: DataType.DoubleArray, value: (t) => [0, 1, 2, 3, 4, 5].map((j) => +(Math.sin(t / 10 + j) * 90).toFixed(3)) },
  { name: 'Joints/Temperatures', datatype: DataType.FloatArray, value: (t) => [0, 1, 2, 3, 4, 5].map((j) => Math.fround(40 + j + (t % 10) / 10)) },
  { name: 'Tcp/Speed', datatype: DataType.Double, value: (t) => +(250 + 50 * Math.sin(t / 5)).toFixed(3) },
  { name: 'Controller/Temperature', datatype: DataType.Float, value: (t) => Math.fround(45 + (t % 7)), properties: { ...quality(192), engUnit: { type: DataType.String, value: 'degC' } } },
  { name: 'Program/Name', datatype: DataType.Text, value: (_t, d) => `weld-${d % 3}` },
  { name: 'Errors/Code', datatype: DataType.Int16, value: (t) => ((t % 30) === 29 ? -17n : 0n) },
];

const MACHINE: MetricSpec[] = [
  { name: 'Spindle/Speed', datatype: DataType.Float, value: (t) => Math.fround(12000 + (t % 100) * 10) },
  { name: 'Spindle/Load', datatype: DataType.Int8, value: (t) => BigInt(40 + (t % 50)) },
  { name: 'Parts/Count', datatype: DataType.Int64, value: (t, d) => BigInt(d * 100000 + t) },
  ...ALL_TYPES.map((type): MetricSpec => ({ name: `Types/${DataType[type]}`, datatype: type, value: (t) => typedValue(type, t) })),
];

const NODE: MetricSpec[] = [
  { name: 'Properties/Hardware', datatype: DataType.String, value: () => 'plantgate-sim' },
  { name: 'Node Info/Uptime', datatype: DataType.UInt64, value: (t) => BigInt(t) },
];

export function deviceMetrics(kind: DeviceKind): { name: string; datatype: DataType }[] {
  return (kind === 'robot' ? ROBOT : MACHINE).map((m) => ({ name: m.name, datatype: m.datatype }));
}

export class SparkplugEdgeNode {
  private client?: MqttClient;
  private seq = 0;
  private bdSeq: number;
  private tick = 0;
  private timer?: NodeJS.Timeout;
  private born = false;
  private hostOnline = false;
  private hostStateTs = 0;
  private stopped = false;
  private pendingGap = 0;
  private pendingSwap = false;
  private pendingUnknownAlias = false;
  /** alias numbers: node metrics first, then each device's in order (unique per edge node) */
  private readonly aliases = new Map<string, number>();
  readonly stats = { births: 0, deviceBirths: 0, rebirthRequests: 0, messages: 0, connects: 0 };
  /** Last values published per device ('' = the node), for tests to compare with what was stored. */
  readonly last = new Map<string, { tick: number; time: number; values: Map<string, Value> }>();

  constructor(readonly options: EdgeNodeOptions) {
    this.bdSeq = options.bdSeq ?? 0;
    let a = 1;
    for (const m of NODE) this.aliases.set(`\u0000${m.name}`, a++);
    for (const d of options.devices) for (const m of this.specs(d.kind)) this.aliases.set(`${d.id}\u0000${m.name}`, a++);
  }

  get currentSeq(): number {
    return this.seq;
  }

  get currentBdSeq(): number {
    return this.bdSeq;
  }

  private specs(kind: DeviceKind): MetricSpec[] {
    return kind === 'robot' ? ROBOT : MACHINE;
  }

  private will() {
    const payload = Buffer.from(encodePayload({ timestamp: Date.now(), metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: BigInt(this.bdSeq) }] }));
    return { topic: nodeTopic(this.options.group, 'NDEATH', this.options.edge), payload, qos: 1 as const, retain: false };
  }

  async start(): Promise<void> {
    const o = this.options;
    const client = mqtt.connect(o.url, { clientId: `sp-${o.group}-${o.edge}`.slice(0, 64), clean: true, reconnectPeriod: 500, keepalive: 5, will: this.will(), username: o.username, password: o.password });
    this.client = client;
    client.on('error', () => undefined);
    client.on('close', () => {
      this.born = false;
      // [tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq]: the next CONNECT's will
      // carries the next bdSeq (0..255)
      if (this.client === client && !this.stopped) {
        this.bdSeq = (this.bdSeq + 1) % 256;
        client.options.will = this.will();
      }
    });
    client.on('connect', () => {
      this.stats.connects++;
      const subs = [`spBv1.0/${o.group}/NCMD/${o.edge}`, `spBv1.0/${o.group}/DCMD/${o.edge}/+`];
      if (o.primaryHost) subs.push(stateTopic(o.primaryHost));
      client.subscribe(subs, { qos: 1 }, () => {
        if (!o.primaryHost && !o.noBirth) void this.birth();
      });
    });
    client.on('message', (topic, payload) => void this.onMessage(topic, payload));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    if (o.intervalMs > 0) {
      this.timer = setInterval(() => {
        if (this.born) void this.publishData().catch(() => undefined);
      }, o.intervalMs);
    }
  }

  private async onMessage(topic: string, payload: Buffer): Promise<void> {
    if (topic.startsWith('spBv1.0/STATE/')) {
      let s: { online?: boolean; timestamp?: number };
      try {
        s = JSON.parse(payload.toString()) as typeof s;
      } catch {
        return;
      }
      // [tck-id-message-flow-edge-node-birth-publish-phid-offline]: older STATE messages are ignored
      if (typeof s.timestamp !== 'number' || s.timestamp < this.hostStateTs) return;
      this.hostStateTs = s.timestamp;
      this.hostOnline = s.online === true;
      if (this.hostOnline && !this.born && !this.options.noBirth) await this.birth();
      if (!this.hostOnline) this.born = false; // stop publishing until the host is back
      return;
    }
    let rebirth = false;
    try {
      rebirth = decodePayload(payload).metrics.some((m) => m.name === 'Node Control/Rebirth' && valueOf(m, DataType.Boolean) === true);
    } catch {
      return;
    }
    if (rebirth) {
      this.stats.rebirthRequests++;
      await this.birth();
    }
  }

  private lastTime = 0;

  /** Strictly increasing per node: two messages in one millisecond would be one point in InfluxDB. */
  private clock(): number {
    this.lastTime = Math.max(Date.now(), this.lastTime + 1);
    return this.lastTime;
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq = (this.seq + 1 + this.pendingGap) % 256;
    this.pendingGap = 0;
    return s;
  }

  private async send(topic: string, payload: Uint8Array): Promise<void> {
    await this.client!.publishAsync(topic, Buffer.from(payload), { qos: this.options.qos ?? 0 });
    this.stats.messages++;
  }

  /** NBIRTH (seq 0, this connection's bdSeq) and a DBIRTH per device, every metric with its alias. */
  async birth(): Promise<void> {
    const o = this.options;
    const now = this.clock();
    this.seq = 0;
    this.tick++;
    const nodeMetrics: MetricInput[] = [
      { name: 'bdSeq', datatype: DataType.Int64, value: BigInt(this.bdSeq), timestamp: now },
      { name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: false, timestamp: now },
      { name: 'Node Control/Reboot', datatype: DataType.Boolean, value: false, timestamp: now },
      // a template definition, as the specification puts them in the NBIRTH
      { name: '_types_/Recipe', datatype: DataType.Template, value: { ...(typedValue(DataType.Template, 0) as object), isDefinition: true, templateRef: undefined } as Value, timestamp: now },
      ...this.values('', NODE, now, true),
    ];
    await this.send(nodeTopic(o.group, 'NBIRTH', o.edge), encodePayload({ timestamp: now, seq: this.nextSeq(), metrics: nodeMetrics }));
    this.stats.births++;
    for (const d of o.devices) {
      await this.send(deviceTopic(o.group, 'DBIRTH', o.edge, d.id), encodePayload({ timestamp: now, seq: this.nextSeq(), metrics: this.values(d.id, this.specs(d.kind), now, true) }));
      this.stats.deviceBirths++;
    }
    this.born = true;
  }

  private values(device: string, specs: MetricSpec[], now: number, birth: boolean): MetricInput[] {
    const index = this.options.devices.findIndex((d) => d.id === device);
    const values = new Map<string, Value>();
    const out = specs.map((m): MetricInput => {
      const value = m.value(this.tick, index);
      values.set(m.name, value);
      const alias = this.aliases.get(`${device}\u0000${m.name}`)!;
      // births name every metric with its alias and type; data messages carry the alias alone
      return birth ? { name: m.name, alias, datatype: m.datatype, value, timestamp: now, ...(m.properties ? { properties: m.properties } : {}) } : { alias, datatype: m.datatype, value, timestamp: now };
    });
    this.last.set(device, { tick: this.tick, time: now, values });
    return out;
  }

  /** One NDATA and one DDATA per device, all metrics by alias, with the faults asked for. */
  async publishData(): Promise<void> {
    if (!this.client?.connected) throw new Error(`${this.options.edge} is not connected`);
    if (!this.born && !this.options.noBirth) return; // a real edge node publishes nothing before its birth
    const o = this.options;
    const now = this.clock();
    this.tick++;
    const messages: [string, Uint8Array][] = [];
    messages.push([nodeTopic(o.group, 'NDATA', o.edge), encodePayload({ timestamp: now, seq: this.nextSeq(), metrics: this.values('', NODE, now, false) })]);
    for (const d of o.devices) {
      const metrics = this.values(d.id, this.specs(d.kind), now, false);
      if (this.pendingUnknownAlias) {
        this.pendingUnknownAlias = false;
        metrics.push({ alias: 60_000, datatype: DataType.Int32, value: 1n, timestamp: now });
      }
      messages.push([deviceTopic(o.group, 'DDATA', o.edge, d.id), encodePayload({ timestamp: now, seq: this.nextSeq(), metrics })]);
    }
    if (this.pendingSwap && messages.length >= 2) {
      this.pendingSwap = false;
      [messages[0], messages[1]] = [messages[1]!, messages[0]!];
    }
    for (const [topic, payload] of messages) await this.send(topic, payload);
  }

  /** The next message skips `n` seq numbers, as if they were lost. */
  injectGap(n = 1): void {
    this.pendingGap = n;
  }

  /** The next round of data sends its first two messages in swapped order. */
  injectOutOfOrder(): void {
    this.pendingSwap = true;
  }

  /** The next DDATA carries an alias the birth never gave. */
  injectUnknownAlias(): void {
    this.pendingUnknownAlias = true;
  }

  /** DDEATH for one device (it goes offline, the node stays). */
  async deviceDeath(device: string): Promise<void> {
    await this.send(deviceTopic(this.options.group, 'DDEATH', this.options.edge, device), encodePayload({ timestamp: Date.now(), seq: this.nextSeq(), metrics: [] }));
  }

  /** Network loss: the socket closes without DISCONNECT, so the broker publishes the NDEATH will. */
  kill(): void {
    this.stopped = true;
    clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    c?.stream.destroy();
    c?.end(true);
  }

  /** Clean stop: NDEATH published explicitly (DISCONNECT suppresses the will), then DISCONNECT. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    if (c.connected) await c.publishAsync(this.will().topic, this.will().payload, { qos: 1 }).catch(() => undefined);
    await c.endAsync(false).catch(() => c.end(true));
  }
}

export interface SparkplugFleetOptions {
  url: string;
  group: string;
  nodes: number;
  robots: number;
  machines: number;
  intervalMs: number;
  primaryHost?: string;
  /** Every n-th data round of each node injects this fault (0: never). */
  gapEvery?: number;
  reorderEvery?: number;
  unknownAliasEvery?: number;
  username?: string;
  password?: string;
}

export function edgeId(i: number): string {
  return `edge-${String(i + 1).padStart(2, '0')}`;
}

export async function startSparkplugFleet(o: SparkplugFleetOptions): Promise<{ nodes: SparkplugEdgeNode[]; stop(): Promise<void> }> {
  const nodes: SparkplugEdgeNode[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const devices = [
      ...Array.from({ length: o.robots }, (_, k) => ({ id: `robot-${String(i * o.robots + k + 1).padStart(3, '0')}`, kind: 'robot' as const })),
      ...Array.from({ length: o.machines }, (_, k) => ({ id: `machine-${String(i * o.machines + k + 1).padStart(3, '0')}`, kind: 'machine' as const })),
    ];
    const node = new SparkplugEdgeNode({ url: o.url, group: o.group, edge: edgeId(i), devices, intervalMs: 0, username: o.username, password: o.password, ...(o.primaryHost ? { primaryHost: o.primaryHost } : {}) });
    await node.start();
    nodes.push(node);
    let round = 0;
    timers.push(
      setInterval(() => {
        round++;
        if (o.gapEvery && round % o.gapEvery === 0) node.injectGap();
        if (o.reorderEvery && round % o.reorderEvery === 0) node.injectOutOfOrder();
        if (o.unknownAliasEvery && round % o.unknownAliasEvery === 0) node.injectUnknownAlias();
        void node.publishData().catch(() => undefined);
      }, o.intervalMs),
    );
  }
  return {
    nodes,
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
