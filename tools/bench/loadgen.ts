/**
 * MQTT load generator for the benchmarks (`plantgate loadgen`), run in a process of its own so its
 * CPU is not the gateway's. It speaks MQTT 3.1.1 over raw sockets with packets built by hand:
 * a general client library (mqtt.js) spends more CPU per message than the gateway does, and the
 * generator must be faster than what it measures.
 *
 * Every device has its own topic level (`<prefix>/<run>/<device>/telemetry`, which the bench route
 * turns into a `device` tag), so points with equal timestamps never overwrite each other in
 * InfluxDB; within a device `ts` strictly increases. A message is one of three shapes (`SHAPES`):
 * the plain 4-float message, a 25-field CNC status message with nested objects, strings and
 * booleans, or a batch of 10 such 4-float points.
 *
 * QoS 1: at most `window` unacknowledged messages per device; `acked` counts PUBACKs, so a run
 * ends only when the broker has taken responsibility for every message. QoS 0: the socket's own
 * back-pressure paces the sender.
 *
 * A probe device (optional) publishes `probeRate` messages per second with `ts` = the send time, so
 * latency can be measured on messages that travel among the load rather than on the load itself
 * (whose timestamps may run ahead of the clock at high rates).
 */
import { connect, type Socket } from 'node:net';

export interface LoadOptions {
  host: string;
  port: number;
  devices: number;
  /** Messages per device (the run's total is devices × messages). */
  messages: number;
  qos: 0 | 1;
  /** Total messages per second over all devices; 0 = as fast as the broker takes them. */
  rate: number;
  /** Distinct per run so runs never share series. */
  run: string;
  prefix?: string;
  /** Unacknowledged QoS 1 messages per device. */
  window?: number;
  username?: string;
  password?: string;
  /** Probe messages per second (0 = no probe device). */
  probeRate?: number;
  /** What each message carries (default `basic`). */
  shape?: PayloadShape;
}

/** The message shapes of the benchmarks: points per message, field values per point. */
export const SHAPES = {
  basic: { points: 1, fields: 4, what: 'JSON with `ts` and 4 float fields' },
  cnc: { points: 1, fields: 25, what: 'a CNC status message: `ts` and 25 fields in nested objects (floats, 3 strings, 4 booleans)' },
  batch10: { points: 10, fields: 4, what: 'a JSON array of 10 points, each with its own `ts` and 4 float fields' },
} as const;
export type PayloadShape = keyof typeof SHAPES;

export interface LoadResult {
  sent: number;
  acked: number;
  probes: number;
  /** Epoch ms of the first publish and of the last (QoS 1: of the last PUBACK). */
  startedAt: number;
  endedAt: number;
  /** Devices whose connection failed or was closed by the broker before the end. */
  failures: string[];
  /** CPU seconds the load generator spent from the first publish to the last (its share of the 2 cores). */
  cpuSeconds: number;
}

export function deviceName(i: number): string {
  return `dev-${String(i).padStart(5, '0')}`;
}

export function topicOf(o: Pick<LoadOptions, 'prefix' | 'run'>, device: string): string {
  return `${o.prefix ?? 'bench'}/${o.run}/${device}/telemetry`;
}

/** The telemetry of message `seq` of device `d`: deterministic, 4 float fields. */
export function payloadOf(d: number, seq: number, ts: number): string {
  const x = (seq % 1000) / 1000;
  return `{"ts":${ts},"temperature":${(20 + d % 50 + x).toFixed(3)},"pressure":${(1 + x / 10).toFixed(4)},"spindle_speed":${8000 + (seq % 400)},"power":${(3.5 + (d % 7) / 10 + x).toFixed(3)}}`;
}

/**
 * A CNC controller's status message (MTConnect/OPC 40502-like): 25 values once flattened
 * (`spindle_speed`, `axis_x_pos`, ...), 3 of them strings and 4 booleans, as a machine publishes it.
 */
export function cncPayloadOf(d: number, seq: number, ts: number): string {
  const x = (seq % 1000) / 1000;
  const axis = (a: number) => `{"pos":${(a * 100 + x * 50).toFixed(3)},"load":${(10 + a + x * 5).toFixed(2)}}`;
  return (
    `{"ts":${ts},"program":"O${1000 + (d % 90)}","mode":"AUTO","execution":"${seq % 50 === 0 ? 'FEED_HOLD' : 'ACTIVE'}","alarm":${seq % 97 === 0},` +
    `"part_count":${seq},"spindle":{"speed":${8000 + (seq % 400)},"load":${(40 + x * 20).toFixed(2)},"override":100,"temperature":${(35 + (d % 10) + x).toFixed(2)}},` +
    `"feed":{"rate":${1200 + (seq % 300)},"override":${90 + (seq % 20)}},"axis":{"x":${axis(1)},"y":${axis(2)},"z":${axis(3)}},` +
    `"coolant":{"on":true,"temperature":${(22 + x).toFixed(2)},"pressure":${(6 + x / 2).toFixed(3)}},"power_kw":${(7.5 + (d % 7) / 10 + x).toFixed(3)},` +
    `"cycle_time_s":${(42 + x * 3).toFixed(2)},"tool":{"number":${1 + (seq % 24)},"life_pct":${(100 - x * 100).toFixed(1)}},"door_open":false}`
  );
}

/** Ten points of device `d` in one message, at `ts` .. `ts + 9` (the loader advances its clock by 10). */
export function batchPayloadOf(d: number, seq: number, ts: number): string {
  let out = '[';
  for (let i = 0; i < 10; i++) out += (i ? ',' : '') + payloadOf(d, seq * 10 + i, ts + i);
  return `${out}]`;
}

export function messageOf(shape: PayloadShape, d: number, seq: number, ts: number): string {
  return shape === 'cnc' ? cncPayloadOf(d, seq, ts) : shape === 'batch10' ? batchPayloadOf(d, seq, ts) : payloadOf(d, seq, ts);
}

/** The same point as the gateway stores it, pre-encoded (for the raw InfluxDB ceiling). */
export function lineOf(o: Pick<LoadOptions, 'run'>, measurement: string, d: number, seq: number, ts: number): string {
  const x = (seq % 1000) / 1000;
  return `${measurement},device=${deviceName(d)},run=${o.run} temperature=${(20 + d % 50 + x).toFixed(3)},pressure=${(1 + x / 10).toFixed(4)},spindle_speed=${8000 + (seq % 400)},power=${(3.5 + (d % 7) / 10 + x).toFixed(3)} ${ts}`;
}

/** MQTT remaining-length bytes (variable-length integer, 7 bits a byte). */
export function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

export function connectPacket(clientId: string, username?: string, password?: string): Buffer {
  let flags = 0x02; // clean session
  if (username !== undefined) flags |= 0x80;
  if (password !== undefined) flags |= 0x40;
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, flags, 0, 0]), // protocol level 4 (3.1.1), keep-alive 0: no PINGREQ needed
    str(clientId),
    ...(username !== undefined ? [str(username)] : []),
    ...(password !== undefined ? [str(password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

export function publishPacket(topic: Buffer, payload: string, qos: 0 | 1, messageId: number): Buffer {
  const plen = Buffer.byteLength(payload);
  const len = 2 + topic.length + (qos ? 2 : 0) + plen;
  const rl = remainingLength(len);
  const out = Buffer.allocUnsafe(1 + rl.length + len);
  let o = 0;
  out[o++] = 0x30 | (qos << 1);
  for (const b of rl) out[o++] = b;
  out.writeUInt16BE(topic.length, o);
  o += 2;
  topic.copy(out, o);
  o += topic.length;
  if (qos) {
    out.writeUInt16BE(messageId, o);
    o += 2;
  }
  out.write(payload, o, 'utf8');
  return out;
}

/** One device connection: CONNECT, then publishes; counts PUBACKs. */
class Device {
  readonly sock: Socket;
  private inbuf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  inflight = 0;
  acked = 0;
  sent = 0;
  lastTs = 0;
  closed = false;
  private corked = false;
  error?: string;
  private connackWaiter?: (err?: Error) => void;
  private ackWaiters: (() => void)[] = [];
  private pingWaiter?: () => void;

  constructor(readonly name: string, readonly topic: Buffer, o: LoadOptions) {
    this.sock = connect({ host: o.host, port: o.port, noDelay: true });
    this.sock.on('data', (b) => this.onData(b));
    this.sock.on('error', (err) => {
      this.error ??= err.message;
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.connackWaiter?.(new Error(`${this.name}: connection closed before CONNACK${this.error ? ` (${this.error})` : ''}`));
      for (const w of this.ackWaiters.splice(0)) w();
    });
  }

  connect(o: LoadOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.connackWaiter = (err) => {
        this.connackWaiter = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.sock.write(connectPacket(this.name, o.username, o.password));
    });
  }

  private onData(b: Buffer): void {
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, b]) : b;
    for (;;) {
      if (this.inbuf.length < 2) return;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (;;) {
        if (i >= this.inbuf.length) return;
        const c = this.inbuf[i++]!;
        len += (c & 0x7f) * mul;
        mul *= 128;
        if (!(c & 0x80)) break;
      }
      if (this.inbuf.length < i + len) return;
      const type = this.inbuf[0]! >> 4;
      if (type === 2) {
        const rc = this.inbuf[i + 1];
        this.connackWaiter?.(rc === 0 ? undefined : new Error(`${this.name}: CONNACK return code ${rc}`));
      } else if (type === 13) {
        this.pingWaiter?.();
        this.pingWaiter = undefined;
      } else if (type === 4) {
        this.acked++;
        this.inflight--;
        const w = this.ackWaiters.shift();
        w?.();
      }
      this.inbuf = this.inbuf.subarray(i + len);
    }
  }

  /** Resolves when fewer than `window` messages are unacknowledged (or the connection closed). */
  room(window: number): Promise<void> | undefined {
    if (this.inflight < window || this.closed) return undefined;
    return new Promise((r) => this.ackWaiters.push(r));
  }

  publish(payload: string, qos: 0 | 1): boolean {
    const id = this.nextId;
    this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
    if (qos) this.inflight++;
    this.sent++;
    // What one device publishes in one tick leaves in one write: a syscall per message made the
    // load generator take ~8 µs per message, CPU the gateway and influxd share on 2 cores.
    if (!this.corked) {
      this.corked = true;
      this.sock.cork();
      process.nextTick(() => {
        this.corked = false;
        this.sock.uncork();
      });
    }
    return this.sock.write(publishPacket(this.topic, payload, qos, id));
  }

  /**
   * PINGREQ, then wait for PINGRESP: brokers handle one connection's packets in order, so every
   * earlier QoS 0 message has been taken when it comes. (Closing right after the last QoS 0
   * publish lets a broker drop what it has not read yet.)
   */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.pingWaiter = resolve;
      this.sock.write(Buffer.from([0xc0, 0]));
      this.sock.once('close', () => resolve());
    });
  }

  async end(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.sock.once('close', () => resolve());
      this.sock.end(Buffer.from([0xe0, 0]));
      setTimeout(() => this.sock.destroy(), 2000).unref();
    });
  }
}

/** Runs the load; resolves when every message is sent (and, for QoS 1, acknowledged). */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const window = o.window ?? 10;
  const devices: Device[] = [];
  for (let d = 0; d < o.devices; d++) devices.push(new Device(deviceName(d), Buffer.from(topicOf(o, deviceName(d))), o));
  // Connect in groups so a broker's per-address connection rate limit is not what is measured.
  for (let i = 0; i < devices.length; i += 50) {
    await Promise.all(devices.slice(i, i + 50).map((dev) => dev.connect(o)));
  }
  const failures: string[] = [];
  const startedAt = Date.now();
  const cpu0 = process.cpuUsage();
  let probes = 0;
  let probeTimer: NodeJS.Timeout | undefined;
  let probe: Device | undefined;
  if (o.probeRate) {
    probe = new Device('probe', Buffer.from(topicOf(o, 'probe')), o);
    await probe.connect(o);
    probeTimer = setInterval(() => {
      const ts = Date.now();
      probe!.publish(payloadOf(0, probes, ts), o.qos);
      probes++;
    }, 1000 / o.probeRate);
  }
  const perDeviceRate = o.rate > 0 ? o.rate / o.devices : 0;
  const shape = o.shape ?? 'basic';
  const span = SHAPES[shape].points; // timestamps one message takes
  await Promise.all(
    devices.map(async (dev, d) => {
      const t0 = Date.now();
      for (let seq = 0; seq < o.messages && !dev.closed; seq++) {
        if (perDeviceRate > 0) {
          const due = t0 + (seq / perDeviceRate) * 1000;
          const wait = due - Date.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        }
        const ts = Math.max(Date.now(), dev.lastTs + 1);
        dev.lastTs = ts + span - 1;
        if (o.qos) {
          const w = dev.room(window);
          if (w) await w;
          if (dev.closed) break;
        }
        if (!dev.publish(messageOf(shape, d, seq, ts), o.qos)) await new Promise((r) => dev.sock.once('drain', r));
        // Let other devices and acknowledgements in now and then.
        else if (seq % 64 === 63) await new Promise((r) => setImmediate(r));
      }
      if (o.qos) while (dev.inflight > 0 && !dev.closed) await dev.room(1);
      else await dev.flush();
      if (dev.closed && dev.sent < o.messages) failures.push(`${dev.name}: closed after ${dev.sent} messages${dev.error ? ` (${dev.error})` : ''}`);
    }),
  );
  clearInterval(probeTimer);
  const endedAt = Date.now();
  const cpu = process.cpuUsage(cpu0);
  await Promise.all([...devices, ...(probe ? [probe] : [])].map((d) => d.end()));
  let sent = 0;
  let acked = 0;
  for (const d of devices) {
    sent += d.sent;
    acked += d.acked;
  }
  return { sent, acked, probes, startedAt, endedAt, failures, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}
