/**
 * Devices that attack the embedded broker, at the sizes they were seen at, against the gateway as
 * its own process (so its memory is measured from outside): an amplifying JSON batch, a PINGREQ
 * flood from a client that never reads, hundreds of half-sent packets with keepalive 0, a
 * subscriber that stops reading, retained-message hoarding. Throughout, a good device publishes
 * QoS 1 and every PUBACK must come within 1 s; the gateway's RSS must stay under 512 MB. Also the
 * QoS 2 resend before PUBREL and the empty retained message, in-process.
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayProcess, type GatewayProcess } from '../tools/servers/gateway-process.js';
import { hashPassword } from '../src/security/passwords.js';
import { freePort } from '../tools/servers/process.js';
import { testGateway } from './helpers/gateway.js';
import { connectPacket, publishPacket } from './helpers/raw-mqtt.js';
import { eventually, type InfluxdHandle, rows, tempDir, useInfluxd } from './helpers/servers.js';

const RSS_BOUND = 512 * 1024 ** 2;
const PUBACK_BOUND_MS = 1000;

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

describe('hostile devices against the gateway process', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let gw: GatewayProcess;
  let mqttPort = 0;
  const dir = tempDir('hostile');
  let good: mqtt.MqttClient;
  let goodRunning = true;
  let goodSent = 0;
  let worstPubackMs = 0;
  let goodLoop: Promise<void>;
  let peakRss = 0;
  let sampler: NodeJS.Timeout;
  const status = async () => (await (await fetch(`${gw.httpUrl}/api/status`)).json()) as { components: { type: string; details: Record<string, unknown> }[]; deadLetters: { byReason: Record<string, number> } };
  const broker = async () => (await status()).components.find((c) => c.type === 'mqtt-broker')!.details as { refusals: Record<string, number>; retained: { messages: number; bytes: number }; connectedDevices: number };

  beforeAll(async () => {
    mqttPort = await freePort();
    gw = await gatewayProcess(dir.path, (http) => `
http: { listen: 127.0.0.1:${http} }
influx: { url: ${db.url}, database: hostile, flushInterval: 100ms }
mqtt:
  broker: { listen: 127.0.0.1:${mqttPort}, allowAnonymous: true, maxPayloadBytes: 2097152, maxConnectionsPerSecond: 2000, packetTimeout: 5s }
  routes:
    - { topic: "amp/{a}/{b}", measurement: amp }
    - { topic: "good/{device}", measurement: good }
buffer: { dir: "${dir.path}/buffer" }
deadLetters: { file: "${dir.path}/deadletters.jsonl" }
`);
    await gw.start();
    sampler = setInterval(() => (peakRss = Math.max(peakRss, gw.rss())), 100);
    good = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'good-device', reconnectPeriod: 0 });
    goodLoop = (async () => {
      while (goodRunning) {
        const t0 = Date.now();
        await good.publishAsync('good/dev1', JSON.stringify({ ts: Date.now(), n: goodSent }), { qos: 1 });
        worstPubackMs = Math.max(worstPubackMs, Date.now() - t0);
        goodSent++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  });
  afterAll(async () => {
    goodRunning = false;
    await goodLoop?.catch(() => undefined);
    await good?.endAsync().catch(() => undefined);
    clearInterval(sampler);
    await gw?.kill('SIGTERM');
    dir.remove();
  });

  it('a 1 MiB batch of 131,000 tiny objects on a topic with two 500-byte levels: dead-lettered, not 80 MB of buffer', async () => {
    const topic = `amp/${'a'.repeat(490)}/${'b'.repeat(490)}`;
    const bomb = Buffer.from(`[${Array(131_000).fill('{"v":1}').join(',')}]`);
    // and one under maxPoints whose tags still make it 65 times its size
    const sly = Buffer.from(JSON.stringify(Array.from({ length: 9000 }, (_, i) => ({ ts: 1_700_000_000_000 + i, v: 1 }))));
    const one = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'amplifier', reconnectPeriod: 0 });
    for (let i = 0; i < 10; i++) await one.publishAsync(topic, i % 2 ? sly : bomb, { qos: 1 });
    await one.endAsync();
    // 30 connections x 2 messages at once
    const many = await Promise.all(Array.from({ length: 30 }, (_, i) => mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `amp-${i}`, reconnectPeriod: 0 })));
    await Promise.all(many.flatMap((c) => [c.publishAsync(topic, bomb, { qos: 1 }), c.publishAsync(topic, sly, { qos: 1 })]));
    await Promise.all(many.map((c) => c.endAsync()));
    const dl = (await status()).deadLetters.byReason;
    expect(dl.too_many_points).toBe(5 + 30);
    expect(dl.expansion_too_large).toBe(5 + 30);
    expect(peakRss).toBeLessThan(RSS_BOUND);
    expect(worstPubackMs).toBeLessThan(PUBACK_BOUND_MS);
  });

  it('2 M PINGREQs from a client that never reads: closed early, the good device not stalled', async () => {
    const s = await rawSocket(mqttPort);
    s.pause(); // never reads a PINGRESP
    s.write(connectPacket());
    const flood = Buffer.alloc(4_000_000, Buffer.from([0xc0, 0x00]));
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => undefined);
    s.write(flood);
    await closed;
    await eventually('flood refused', broker, (b) => (b.refusals.control_packet_flood ?? 0) >= 1, 10_000);
    expect(peakRss).toBeLessThan(RSS_BOUND);
    expect(worstPubackMs).toBeLessThan(PUBACK_BOUND_MS);
  });

  it('a subscriber that stops reading is closed once 4 MiB wait for it', async () => {
    const s = await rawSocket(mqttPort);
    s.on('error', () => undefined);
    const topic = Buffer.from('firehose/#');
    const sub = Buffer.concat([Buffer.from([0, 1, topic.length >> 8, topic.length & 255]), topic, Buffer.from([0])]);
    s.write(Buffer.concat([connectPacket(), Buffer.from([0x82, sub.length]), sub]));
    await new Promise((r) => setTimeout(r, 300));
    s.pause();
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'firehose', reconnectPeriod: 0 });
    const big = Buffer.alloc(100_000, 0x61);
    // (a socket that does not read does not see the close either: the broker's count tells)
    const refused = async () => (await broker()).refusals.output_backlog ?? 0;
    for (let i = 0; i < 500 && (await refused()) === 0; i++) await pub.publishAsync('firehose/x', big, { qos: 0 });
    await pub.endAsync();
    s.destroy();
    expect(await refused()).toBe(1);
    expect(peakRss).toBeLessThan(RSS_BOUND);
  });

  it('300 connections with keepalive 0 each holding 999 KB of a publish: bounded, then timed out', async () => {
    const socks = await Promise.all(Array.from({ length: 300 }, () => rawSocket(mqttPort)));
    const head = publishPacket('amp/x/y', Buffer.alloc(1_000_000, 0x20), 0).subarray(0, 999_000);
    const closes = socks.map((s) => new Promise<void>((r) => s.once('close', () => r())));
    for (const s of socks) {
      s.on('error', () => undefined);
      s.resume(); // reads the CONNACK and sees the close
      s.write(Buffer.concat([connectPacket({ keepalive: 0 }), head]));
    }
    await Promise.all(closes); // over maxPartialBytes at once, or after packetTimeout (5 s)
    const r = (await broker()).refusals;
    expect((r.partial_packets_over_limit ?? 0) + (r.packet_timeout ?? 0)).toBe(300);
    expect(r.partial_packets_over_limit).toBeGreaterThan(200); // 64 MiB holds ~67 of them
    expect(peakRss).toBeLessThan(RSS_BOUND);
    expect(worstPubackMs).toBeLessThan(PUBACK_BOUND_MS);
  });

  it('400 retained 1 MiB messages from an anonymous client: nothing held, the values still taken', async () => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'hoarder', reconnectPeriod: 0 });
    const mib = Buffer.alloc(1024 ** 2, 0x61);
    for (let i = 0; i < 400; i++) await c.publishAsync(`hoard/${i}`, mib, { qos: 1, retain: true });
    await c.endAsync();
    const b = await broker();
    expect(b.retained).toMatchObject({ messages: 0, bytes: 0 });
    expect(b.refusals.retain_refused).toBe(400);
    expect(peakRss).toBeLessThan(RSS_BOUND);
  });

  it('the good device lost nothing', async () => {
    goodRunning = false;
    await goodLoop;
    await eventually('good messages stored', async () => rows(await db.query('SELECT count(n) FROM good', 'hostile'))[0]?.count, (n) => n === goodSent, 30_000);
    expect(worstPubackMs).toBeLessThan(PUBACK_BOUND_MS);
    console.log(`hostile devices: peak RSS ${Math.round(peakRss / 1024 ** 2)} MB, worst good PUBACK ${worstPubackMs} ms, ${goodSent} good messages`);
  });
});

describe('retained messages and QoS 2 resends', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let gw: Awaited<ReturnType<typeof testGateway>>;
  beforeAll(async () => {
    const hash = await hashPassword('pw');
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: retained, flushInterval: 50ms }
mqtt:
  broker:
    listen: 127.0.0.1:0
    maxRetainedMessages: 3
    maxRetainedPerClient: 2
    users: [{ username: keeper, passwordHash: "${hash}", publish: ["#"], subscribe: ["#"] }]
    allowAnonymous: true
  routes: [{ topic: "r/{device}", measurement: r }]
buffer: { dir: "\${DATA}/buffer" }
`);
  });
  afterAll(async () => gw?.cleanup());
  const details = () => gw.broker!.status().details as { refusals: Record<string, number>; retained: { messages: number; bytes: number; cleared: number } };

  it('holds retained messages within per-client and total limits; an empty retained message deletes and is no dead letter', async () => {
    const port = gw.broker!.port;
    const a = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'ret-a', username: 'keeper', password: 'pw', reconnectPeriod: 0 });
    for (const d of ['d1', 'd2', 'd3']) await a.publishAsync(`r/${d}`, JSON.stringify({ ts: Date.now(), v: 1 }), { qos: 1, retain: true });
    expect(details().retained.messages).toBe(2); // maxRetainedPerClient 2
    expect(details().refusals.retain_refused).toBe(1);
    await a.publishAsync('r/d1', '', { qos: 1, retain: true });
    expect(details().retained).toMatchObject({ messages: 1, cleared: 1 });
    expect(gw.pipeline.status().deadLetters.total).toBe(0);
    // a late subscriber gets what is held, and not the cleared one
    const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'ret-late', username: 'keeper', password: 'pw', reconnectPeriod: 0 });
    const got: string[] = [];
    late.on('message', (t) => got.push(t));
    await late.subscribeAsync('r/#');
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual(['r/d2']);
    await late.endAsync();
    await a.endAsync();
    // anonymous connections may not retain (anonymous.retain defaults to false)
    const anon = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'ret-anon', reconnectPeriod: 0 });
    await anon.publishAsync('r/d9', JSON.stringify({ ts: Date.now(), v: 9 }), { qos: 1, retain: true });
    await anon.endAsync();
    expect(details().refusals.retain_refused).toBe(2);
    await eventually('the refused-retain value was still stored', async () => rows(await db.query("SELECT count(v) FROM r WHERE device = 'd9'", 'retained'))[0]?.count, (n) => n === 1);
  });

  it('a QoS 2 PUBLISH sent again before PUBREL is ingested once', async () => {
    const s = await rawSocket(gw.broker!.port);
    const received: number[] = [];
    s.on('data', (d: Buffer) => received.push(...d));
    s.write(connectPacket());
    const ts = Date.now();
    const pub = publishPacket('r/q2', Buffer.from(JSON.stringify({ ts, v: 2 })), 2, 7);
    const before = gw.pipeline.buffer.committedLines();
    s.write(pub);
    await eventually('PUBREC', async () => received.filter((b) => b === 0x50).length, (n) => n >= 1, 5000);
    const dup = Buffer.from(pub);
    dup[0] = dup[0]! | 0x08;
    s.write(dup);
    await eventually('second PUBREC', async () => received.filter((b) => b === 0x50).length, (n) => n >= 2, 5000);
    s.write(Buffer.from([0x62, 0x02, 0, 7])); // PUBREL
    await eventually('PUBCOMP', async () => received.includes(0x70), (v) => v, 5000);
    s.destroy();
    expect(gw.pipeline.buffer.committedLines() - before).toBe(1);
    // after PUBREL the id may be used again for a new message
    const s2 = await rawSocket(gw.broker!.port);
    s2.write(connectPacket());
    s2.write(publishPacket('r/q2', Buffer.from(JSON.stringify({ ts: ts + 1, v: 3 })), 2, 7));
    await eventually('new message with the same id taken', async () => gw.pipeline.buffer.committedLines() - before, (n) => n === 2, 5000);
    s2.destroy();
  });
});

describe('what the embedded broker distributes', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let gw: Awaited<ReturnType<typeof testGateway>>;
  beforeAll(async () => {
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: distribute, flushInterval: 50ms }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes: [{ topic: "d/{device}", measurement: d }]
buffer: { dir: "\${DATA}/buffer" }
`);
  });
  afterAll(async () => gw?.cleanup());
  const distributing = () => (gw.broker!.status().details as { distributing: boolean }).distributing;
  const stored = async (device: string) => Number(rows(await db.query(`SELECT count(v) FROM d WHERE device = '${device}'`, 'distribute'))[0]?.count ?? 0);

  it('skips distribution until a subscription, then subscribers online and offline get every publish, and wills', async () => {
    const url = `mqtt://127.0.0.1:${gw.broker!.port}`;
    const device = await mqtt.connectAsync(url, { clientId: 'dist-device', reconnectPeriod: 0 });
    const send = (d: string, v: number) => device.publishAsync(`d/${d}`, JSON.stringify({ ts: Date.now(), v }), { qos: 1 });
    for (let i = 0; i < 3; i++) await send('before', i);
    expect(distributing()).toBe(false);
    await eventually('values sent before any subscription stored', () => stored('before'), (n) => n === 3);

    // a persistent session: online it gets each publish, offline they are queued for it
    const got: string[] = [];
    const watch = () => mqtt.connectAsync(url, { clientId: 'dist-watcher', clean: false, reconnectPeriod: 0 });
    let watcher = await watch();
    watcher.on('message', (t) => got.push(t));
    await watcher.subscribeAsync('d/#', { qos: 1 });
    expect(distributing()).toBe(true);
    await send('online', 1);
    await eventually('the subscriber got the publish', async () => got.join(), (g) => g === 'd/online');
    await watcher.endAsync();
    await send('offline', 2);
    watcher = await watch();
    watcher.on('message', (t) => got.push(t));
    await eventually('the queued publish arrived on reconnect', async () => got.join(), (g) => g === 'd/online,d/offline');

    // a will: the device goes away without DISCONNECT
    const dying = await mqtt.connectAsync(url, { clientId: 'dist-dying', reconnectPeriod: 0, will: { topic: 'd/will', payload: Buffer.from(JSON.stringify({ ts: Date.now(), v: 9 })), qos: 1, retain: false } });
    dying.stream.destroy();
    await eventually('the will was delivered', async () => got.join(), (g) => g === 'd/online,d/offline,d/will');
    for (const d of ['online', 'offline', 'will']) await eventually(`${d} stored`, () => stored(d), (n) => n === 1);
    await watcher.endAsync();
    await device.endAsync();
  });
});
