/**
 * The catalogue of bad inputs (issue 9; the table in docs/bad-input.md): each entry is sent to
 * one running gateway while a good device publishes all along, and gets exactly its expected
 * outcome: a refused connection (counted by reason), or a dead letter with its reason (message
 * acknowledged, connection kept). At the end every good message is stored and the gateway runs.
 * Entries tested elsewhere: certificates (security.test.ts), OPC UA bad status codes and removed
 * nodes (opcua.test.ts), OPC UA huge arrays (src/sources/opcua/values.test.ts), configuration
 * mistakes (src/config/load.test.ts, `plantgate check` in bad-input.test.ts).
 */
import { connect as netConnect } from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePayload } from '../src/sources/sparkplug/codec.js';
import { testGateway } from './helpers/gateway.js';
import { connectPacket, publishPacket } from './helpers/raw-mqtt.js';
import { eventually, type InfluxdHandle, rows, useInfluxd } from './helpers/servers.js';

type Outcome = { refused: string } | { deadLetter: string };
interface Entry {
  what: string;
  /** Raw bytes on a new TCP connection, or an MQTT publish from a well-behaved client. */
  send: { raw: Buffer } | { topic: string; payload: string | Buffer };
  expect: Outcome;
}

const rawPublish = (topic: Buffer) => ({ raw: Buffer.concat([connectPacket(), publishPacket(topic, Buffer.from('{"v":1}'))]) });
const T = 'factory/anshan/bad-dev/telemetry';
const now = Date.now();

const CATALOGUE: Entry[] = [
  // malformed MQTT: the connection is closed, nothing else happens
  { what: 'an HTTP request on the MQTT port', send: { raw: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n') }, expect: { refused: 'malformed_packet' } },
  { what: 'CONNECT with an unknown protocol name', send: { raw: connectPacket({ protocol: 'MQTX' }) }, expect: { refused: 'malformed_packet' } },
  { what: 'PUBLISH before CONNECT', send: { raw: publishPacket(Buffer.from(T), Buffer.from('{"v":1}')) }, expect: { refused: 'malformed_packet' } },
  { what: 'a second CONNECT', send: { raw: Buffer.concat([connectPacket(), connectPacket()]) }, expect: { refused: 'malformed_packet' } },
  { what: 'a remaining length of 5 bytes', send: { raw: Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]) }, expect: { refused: 'malformed_packet' } },
  { what: 'the reserved packet type 0', send: { raw: Buffer.from([0x00, 0x00]) }, expect: { refused: 'malformed_packet' } },
  { what: 'a packet announcing 200 MB', send: { raw: Buffer.concat([connectPacket(), Buffer.from([0x30, 0x80, 0x80, 0x80, 0x60])]) }, expect: { refused: 'packet_too_large' } },
  { what: 'a topic of invalid UTF-8', send: rawPublish(Buffer.from([0x66, 0x2f, 0xc3, 0x28])), expect: { refused: 'invalid_topic' } },
  { what: 'a topic with U+0000', send: rawPublish(Buffer.from('factory/a\0/b/telemetry')), expect: { refused: 'invalid_topic' } },
  { what: 'a wildcard in a PUBLISH topic', send: rawPublish(Buffer.from('factory/#')), expect: { refused: 'malformed_packet' } },
  { what: 'an empty PUBLISH topic', send: rawPublish(Buffer.from('')), expect: { refused: 'malformed_packet' } },
  { what: 'a topic over maxTopicLength', send: { topic: `factory/${'x'.repeat(200)}/m/telemetry`, payload: '{"v":1}' }, expect: { refused: 'topic_too_long' } },
  { what: 'a topic over maxTopicDepth', send: { topic: 'a/b/c/d/e/f/g/h/i/j/k/l', payload: '{"v":1}' }, expect: { refused: 'topic_too_deep' } },
  // protocol rules MQTT 3.1.1 makes and a lenient broker let through
  { what: 'a QoS 1 PUBLISH with packet identifier 0 (MQTT-2.3.1-1)', send: { raw: Buffer.concat([connectPacket(), publishPacket(Buffer.from(T), Buffer.from('{"v":1}'), 1, 0)]) }, expect: { refused: 'malformed_packet' } },
  { what: 'an empty client id with clean session 0 (MQTT-3.1.3-8)', send: { raw: connectPacket({ flags: 0x00, id: '' }) }, expect: { refused: 'client_id_rejected' } },
  { what: 'a password without a user name (MQTT-3.1.2-22)', send: { raw: connectPacket({ flags: 0x42, id: 'nouser', rest: Buffer.from([0, 2, 0x70, 0x77]) }) }, expect: { refused: 'malformed_packet' } },
  { what: 'a PUBLISH to $SYS', send: { topic: '$SYS/broker/uptime', payload: '1' }, expect: { refused: 'reserved_topic' } },
  // what the network can do to a broker that trusts it
  { what: '2,000 PINGREQs at once', send: { raw: Buffer.concat([connectPacket(), Buffer.alloc(4000, Buffer.from([0xc0, 0x00]))]) }, expect: { refused: 'control_packet_flood' } },
  { what: 'a PUBLISH that stops half-way (packetTimeout 2 s)', send: { raw: Buffer.concat([connectPacket(), publishPacket(Buffer.from(T), Buffer.alloc(900, 0x20)).subarray(0, 300)]) }, expect: { refused: 'packet_timeout' } },
  { what: 'an unfinished packet beyond maxPartialBytes', send: { raw: Buffer.concat([connectPacket(), publishPacket(Buffer.from(T), Buffer.alloc(70_000, 0x20)).subarray(0, 50_000)]) }, expect: { refused: 'partial_packets_over_limit' } },
  // bad payloads: acknowledged, kept as a dead letter with the reason, the connection stays
  { what: 'a payload over maxPayloadBytes', send: { topic: T, payload: `{"v":"${'x'.repeat(12_000)}"}` }, expect: { deadLetter: 'payload_too_large' } },
  { what: 'truncated JSON', send: { topic: T, payload: '{"v": 1' }, expect: { deadLetter: 'invalid_json' } },
  { what: 'NaN as a JSON literal', send: { topic: T, payload: '{"v": NaN}' }, expect: { deadLetter: 'invalid_json' } },
  { what: 'invalid UTF-8 in the payload', send: { topic: T, payload: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]) }, expect: { deadLetter: 'invalid_utf8' } },
  { what: 'a JSON bomb: nesting 1,500 deep', send: { topic: T, payload: `${'{"a":'.repeat(1500)}1${'}'.repeat(1500)}` }, expect: { deadLetter: 'too_deep' } },
  { what: 'a JSON bomb: 500 keys (maxFields 100)', send: { topic: T, payload: JSON.stringify(Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i]))) }, expect: { deadLetter: 'too_many_fields' } },
  { what: 'a JSON bomb: 800 empty objects in a batch', send: { topic: T, payload: `[${Array(800).fill('{}').join(',')}]` }, expect: { deadLetter: 'no_fields' } },
  { what: 'a scalar instead of an object', send: { topic: T, payload: '42' }, expect: { deadLetter: 'not_an_object' } },
  { what: 'only nulls', send: { topic: T, payload: '{"v": null}' }, expect: { deadLetter: 'no_fields' } },
  { what: 'Infinity (1e999)', send: { topic: T, payload: '{"v": 1e999}' }, expect: { deadLetter: 'non_finite_float' } },
  { what: 'a wrong type for a typed field', send: { topic: 'typed/m1', payload: '{"count": "twelve"}' }, expect: { deadLetter: 'wrong_type' } },
  { what: 'a timestamp that is not one', send: { topic: T, payload: '{"ts": "soon", "v": 1}' }, expect: { deadLetter: 'bad_timestamp' } },
  { what: 'a timestamp a year ahead', send: { topic: T, payload: `{"ts": ${now + 365 * 86_400_000}, "v": 1}` }, expect: { deadLetter: 'timestamp_in_future' } },
  { what: 'a timestamp in the year 2000 (maxAge 30d)', send: { topic: T, payload: '{"ts": 946684800000, "v": 1}' }, expect: { deadLetter: 'timestamp_too_old' } },
  { what: 'a timestamp beyond what InfluxDB or a Date can hold', send: { topic: T, payload: '{"ts": 8640000000000001, "v": 1}' }, expect: { deadLetter: 'timestamp_out_of_range' } },
  { what: 'an empty field name', send: { topic: T, payload: '{"": 1}' }, expect: { deadLetter: 'empty_name' } },
  { what: 'a __proto__ key', send: { topic: T, payload: '{"__proto__": 1, "v": 2}' }, expect: { deadLetter: 'reserved_name' } },
  { what: 'a batch without ts: every item the same point in InfluxDB', send: { topic: T, payload: '[{"v":1},{"v":2},{"v":3}]' }, expect: { deadLetter: 'duplicate_point' } },
  { what: 'a batch over maxPoints (1,100 items, maxPoints 1,000)', send: { topic: T, payload: `[${Array(1100).fill('{}').join(',')}]` }, expect: { deadLetter: 'too_many_points' } },
  { what: 'a batch whose topic tags expand it beyond maxLineBytes', send: { topic: `amp/${'a'.repeat(50)}/${'b'.repeat(50)}`, payload: JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ ts: now - i, v: i }))) }, expect: { deadLetter: 'expansion_too_large' } },
  // Sparkplug garbage
  { what: 'Sparkplug: bytes that are not a protobuf', send: { topic: 'spBv1.0/g/NDATA/e1', payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) }, expect: { deadLetter: 'sparkplug_malformed' } },
  { what: 'Sparkplug: JSON on a Sparkplug topic', send: { topic: 'spBv1.0/g/DDATA/e1/d1', payload: '{"v":1}' }, expect: { deadLetter: 'sparkplug_malformed' } },
  { what: 'Sparkplug: a device message without a device', send: { topic: 'spBv1.0/g/DDATA/e1', payload: Buffer.from(encodePayload({ seq: 1, metrics: [] })) }, expect: { deadLetter: 'sparkplug_topic' } },
  { what: 'Sparkplug: data before any birth', send: { topic: 'spBv1.0/g/NDATA/e9', payload: Buffer.from(encodePayload({ seq: 0, metrics: [{ name: 'x', alias: 1n, datatype: 10, value: 1 }] })) }, expect: { deadLetter: 'data_before_birth' } },
];

describe('bad-input catalogue: every entry gets its outcome while good traffic flows', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let gw: Awaited<ReturnType<typeof testGateway>>;
  let stopGood: () => Promise<number>;
  let goodSent = () => 0;
  const goodDuring: number[] = [];

  beforeAll(async () => {
    gw = await testGateway(`
influx: { url: ${db.url}, database: catalogue, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true, maxPayloadBytes: 10000, maxPacketBytes: 80000, maxTopicLength: 128, maxTopicDepth: 10, packetTimeout: 2s, maxPartialBytes: 40000 }
  routes:
    - { topic: "factory/{site}/{machine}/telemetry", measurement: cat, maxFields: 100, maxPoints: 1000 }
    - { topic: "amp/{a}/{b}", measurement: amp, maxLineBytes: 4000 }
    - { topic: "typed/{machine}", measurement: typed, fields: { count: { type: integer } } }
sparkplug: { mode: passive, groups: [g] }
guard: { maxAge: 30d }
buffer: { dir: "\${DATA}/buffer" }
`);
    // the good device: one message every 10 ms, each its own timestamp, until told to stop
    const good = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'good-dev' });
    let sent = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        await good.publishAsync('factory/anshan/good-dev/telemetry', JSON.stringify({ ts: now - 60_000 + sent, v: sent }), { qos: 1 });
        sent++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    goodSent = () => sent;
    stopGood = async () => {
      while (sent < 50) await new Promise((r) => setTimeout(r, 20));
      running = false;
      await loop;
      await good.endAsync();
      return sent;
    };
  });
  afterAll(async () => {
    await gw?.cleanup();
  });

  const refusals = () => (gw.broker!.status().details!.refusals ?? {}) as Record<string, number>;
  const deadLetters = () => gw.pipeline.status().deadLetters.byReason;

  for (const entry of CATALOGUE) {
    const [kind, reason] = 'refused' in entry.expect ? ['refused', entry.expect.refused] : ['dead letter', entry.expect.deadLetter];
    it(`${entry.what}: ${kind} ${reason}`, async () => {
      const counts = () => (kind === 'refused' ? refusals() : deadLetters());
      goodDuring.push(goodSent());
      const before = { ...refusals(), ...Object.fromEntries(Object.entries(deadLetters()).map(([k, v]) => [`dl:${k}`, v])) };
      if ('raw' in entry.send) {
        const bytes = entry.send.raw;
        const closedByBroker = await new Promise<boolean>((resolve) => {
          const s = netConnect(gw.broker!.port, '127.0.0.1', () => s.write(bytes));
          const t = setTimeout(() => (resolve(false), s.destroy()), 12_000);
          s.on('error', () => undefined);
          s.resume(); // read what the broker answers (a CONNACK), or its FIN is never seen
          s.on('close', () => (clearTimeout(t), resolve(true)));
        });
        expect(closedByBroker, 'the broker closed the connection').toBe(true);
      } else {
        const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: `cat-${Math.random().toString(36).slice(2, 8)}`, reconnectPeriod: 0 });
        const { topic, payload } = entry.send;
        if (kind === 'refused') {
          c.publish(topic, payload, { qos: 1 });
          await new Promise<void>((resolve) => c.once('close', () => resolve()));
          c.end(true);
        } else {
          await c.publishAsync(topic, payload, { qos: 1 }); // acknowledged: kept as a dead letter
          expect(c.connected).toBe(true);
          await c.endAsync();
        }
      }
      await eventually(`${reason} counted`, async () => counts()[reason] ?? 0, (n) => n === (kind === 'refused' ? (before[reason] ?? 0) : (before[`dl:${reason}`] ?? 0)) + 1, 15_000);
      // exactly this outcome: no other refusal or dead letter appeared
      const after = { ...refusals(), ...Object.fromEntries(Object.entries(deadLetters()).map(([k, v]) => [`dl:${k}`, v])) };
      const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
      expect(changed).toEqual([kind === 'refused' ? reason : `dl:${reason}`]);
    });
  }

  it('the good device lost nothing and the gateway kept running', async () => {
    // the good device was publishing while the entries went in
    expect(goodDuring.at(-1)!).toBeGreaterThan(goodDuring[0]!);
    const sent = await stopGood();
    await eventually('every good message stored', async () => rows(await db.query("SELECT count(v) FROM cat WHERE machine = 'good-dev'", 'catalogue'))[0]?.count, (n) => n === sent, 30_000);
    for (const c of gw.pipeline.status().components) expect(['running', 'degraded'], `${c.name} ${c.state}`).toContain(c.state);
    expect(gw.broker!.status().state).toBe('running');
  });
});
