/** MQTT 3.1.1 packets as raw bytes, for tests that send what a well-behaved client never would. */
import { remainingLength } from '../../tools/bench/loadgen.js';

let ids = 0;

/** CONNECT with `flags` (default: clean session), a fresh client id unless given, keep-alive in seconds, and what follows the id (user name, password). */
export function connectPacket(opts: { flags?: number; id?: string; keepalive?: number; protocol?: string; rest?: Buffer } = {}): Buffer {
  const id = Buffer.from(opts.id ?? `raw-${++ids}`);
  const ka = opts.keepalive ?? 60;
  const proto = Buffer.from(opts.protocol ?? 'MQTT');
  const body = Buffer.concat([Buffer.from([0, proto.length]), proto, Buffer.from([4, opts.flags ?? 2, ka >> 8, ka & 255, 0, id.length]), id, opts.rest ?? Buffer.alloc(0)]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

/** PUBLISH of `payload` on `topic` at `qos` (packet id `id` for QoS 1 and 2). */
export function publishPacket(topic: string | Buffer, payload: Buffer, qos = 1, id = 1): Buffer {
  const t = typeof topic === 'string' ? Buffer.from(topic) : topic;
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 255]), t, qos ? Buffer.from([id >> 8, id & 255]) : Buffer.alloc(0), payload]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1), ...remainingLength(body.length)]), body]);
}
