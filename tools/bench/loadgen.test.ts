import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { connectPacket, deviceName, lineOf, messageOf, payloadOf, publishPacket, SHAPES, topicOf } from './loadgen.js';
import { decodeJson } from '../../src/sources/mqtt/json-decoder.js';
import { routeSchema } from '../../src/sources/mqtt/config.js';

function parse(buf: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: mqttPacket.Packet[] = [];
  parser.on('packet', (p) => out.push(p));
  parser.on('error', (e) => {
    throw e;
  });
  parser.parse(buf);
  return out;
}

describe('load generator packets', () => {
  it('CONNECT and PUBLISH built by hand parse as MQTT 3.1.1 (incl. a 2-byte remaining length)', () => {
    const [c] = parse(connectPacket('dev-00001', 'user', 'secret')) as mqttPacket.IConnectPacket[];
    expect(c).toMatchObject({ cmd: 'connect', clientId: 'dev-00001', username: 'user', clean: true, keepalive: 0, protocolVersion: 4 });
    expect(String(c!.password)).toBe('secret');
    const topic = Buffer.from(topicOf({ run: 'r1' }, deviceName(7)));
    const long = 'x'.repeat(300);
    const packets = parse(Buffer.concat([publishPacket(topic, payloadOf(7, 3, 1000), 1, 42), publishPacket(topic, long, 0, 0)])) as mqttPacket.IPublishPacket[];
    expect(packets[0]).toMatchObject({ cmd: 'publish', topic: 'bench/r1/dev-00007/telemetry', qos: 1, messageId: 42 });
    expect(JSON.parse(String(packets[0]!.payload))).toEqual({ ts: 1000, temperature: 27.003, pressure: 1.0003, spindle_speed: 8003, power: 3.503 });
    expect(packets[1]).toMatchObject({ qos: 0 });
    expect(String(packets[1]!.payload)).toBe(long);
  });

  it('the pre-encoded line of the ceiling carries the same values as the JSON message', () => {
    expect(lineOf({ run: 'r1' }, 'telemetry', 7, 3, 1000)).toBe('telemetry,device=dev-00007,run=r1 temperature=27.003,pressure=1.0003,spindle_speed=8003,power=3.503 1000');
  });

  it('each payload shape decodes, through the gateway\'s own JSON decoder, into the points and field values SHAPES says', () => {
    const route = routeSchema.parse({ topic: 'bench/{run}/{device}/telemetry', measurement: 'telemetry' });
    for (const [shape, want] of Object.entries(SHAPES)) {
      const payload = Buffer.from(messageOf(shape as keyof typeof SHAPES, 3, 17, 1_000_000));
      const points = decodeJson(payload, { route, topicTags: { run: 'r', device: 'd' }, receivedAt: 0, source: 'bench' });
      expect(points, shape).toHaveLength(want.points);
      for (const p of points) expect(Object.keys(p.fields), shape).toHaveLength(want.fields);
      expect(points.map((p) => p.time), shape).toEqual(Array.from({ length: want.points }, (_, i) => 1_000_000 + i));
    }
  });
});
