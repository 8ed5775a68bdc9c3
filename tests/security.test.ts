/**
 * Issue 9: devices prove who they are and publish only where they may; secrets stay secret.
 * Real aedes (embedded broker) with TLS and WebSocket, real mqtt.js devices, real influxd.
 */
import { connect as netConnect } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt, { type IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/security/passwords.js';
import { TestPki } from './helpers/certs.js';
import { testGateway } from './helpers/gateway.js';
import { eventually, type InfluxdHandle, mosquitto, rows, tempDir, useInfluxd } from './helpers/servers.js';

const PASSWORDS = { 'press-01': 'press-01-pw-Xq7', 'robot-07': 'robot-07-pw-Lk2', reader: 'reader-pw-9Jm' };

/** Collects the gateway's log lines (the production logger, redaction included). */
function logSink(): { stream: Writable; text(): string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } }),
    text: () => chunks.join(''),
  };
}

/** Connects and resolves with the client, or rejects with the broker's refusal. */
function tryConnect(url: string, opts: IClientOptions): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    c.once('connect', () => resolve(c));
    c.once('error', (err) => { c.end(true); reject(err); });
    c.once('close', () => reject(new Error('connection closed')));
  });
}

function closed(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
}

describe('embedded broker: users, ACLs, TLS, client certificates, WebSocket, limits', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const pki = tempDir('pki');
  let ca: TestPki;
  let hashes: Record<string, string>;
  afterAll(() => pki.remove());
  beforeAll(async () => {
    ca = new TestPki(pki.path);
    hashes = Object.fromEntries(await Promise.all(Object.entries(PASSWORDS).map(async ([u, p]) => [u, await hashPassword(p)])));
  });

  it('refuses wrong passwords and anonymous devices, keeps each device inside its ACL, never logs a secret', async () => {
    const log = logSink();
    const credentials = join(pki.path, 'credentials.yaml');
    writeFileSync(credentials, `users:\n  - { username: reader, passwordHash: "${hashes.reader}", subscribe: ["factory/#"] }\n`);
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_acl, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker:
    listen: 127.0.0.1:0
    users:
      - { username: press-01, passwordHash: "${hashes['press-01']}", publish: ["factory/+/+/press-01/#"] }
      - { username: robot-07, passwordHash: "${hashes['robot-07']}", publish: ["factory/+/+/%c/#"] }
    credentialsFile: ${credentials}
  routes:
    - { topic: "factory/{site}/{line}/{machine}/telemetry", measurement: m }
buffer: { dir: "\${DATA}/buffer" }
`, {}, { logTo: log.stream });
    const url = `mqtt://127.0.0.1:${gw.broker!.port}`;
    const msg = (v: number) => JSON.stringify({ ts: 1_700_000_000_000 + v, v });
    try {
      // refused: wrong password (code 4), unknown user (4), no credentials at all (5)
      await expect(tryConnect(url, { clientId: 'press-01', username: 'press-01', password: 'guess' })).rejects.toThrow(/Bad username or password/);
      await expect(tryConnect(url, { clientId: 'x', username: 'nobody', password: 'guess' })).rejects.toThrow(/Bad username or password/);
      await expect(tryConnect(url, { clientId: 'anon' })).rejects.toThrow(/Not authorized/);

      // press-01: inside its subtree stored, outside it refused (connection closed, nothing stored)
      const press = await tryConnect(url, { clientId: 'press-01', username: 'press-01', password: PASSWORDS['press-01'] });
      await press.publishAsync('factory/anshan/l1/press-01/telemetry', msg(1), { qos: 1 });
      await press.publishAsync('factory/anshan/l1/press-01/telemetry', msg(2), { qos: 1 });
      press.publish('factory/anshan/l1/press-02/telemetry', msg(3), { qos: 1 });
      await closed(press);
      press.end(true);

      // robot-07's rule uses %c: its client id's subtree only, so the same user under another client id is kept out of it
      const robot = await tryConnect(url, { clientId: 'robot-07', username: 'robot-07', password: PASSWORDS['robot-07'] });
      await robot.publishAsync('factory/dalian/l2/robot-07/telemetry', msg(4), { qos: 1 });
      await robot.endAsync();
      const spoof = await tryConnect(url, { clientId: 'robot-99', username: 'robot-07', password: PASSWORDS['robot-07'] });
      spoof.publish('factory/dalian/l2/robot-07/telemetry', msg(5), { qos: 1 });
      await closed(spoof);
      spoof.end(true);

      // the credentials file's user may subscribe under factory/ only (SUBACK 128 elsewhere), and publish nowhere
      const reader = await tryConnect(url, { clientId: 'reader-1', username: 'reader', password: PASSWORDS.reader });
      // mqtt.js rejects when any filter is refused; the SUBACK's codes are on the error
      const granted = await reader.subscribeAsync({ 'factory/#': { qos: 1 }, '#': { qos: 1 }, 'spBv1.0/#': { qos: 0 } }).then(
        (g) => g.map((x) => x.qos),
        (err: { packet?: { granted: number[] } }) => err.packet?.granted,
      );
      expect(granted).toEqual([1, 128, 128]);
      reader.publish('factory/x/y/reader/telemetry', msg(6), { qos: 1 });
      await closed(reader);
      reader.end(true);

      await eventually('press-01 and robot-07 stored', async () => rows(await db.query('SELECT count(v) FROM m GROUP BY machine', 'sec_acl')).length, (n) => n === 2);
      const byMachine = Object.fromEntries((await db.query('SELECT count(v) FROM m GROUP BY machine', 'sec_acl')).map((s) => [s.tags!.machine, s.values[0]![1]]));
      expect(byMachine).toEqual({ 'press-01': 2, 'robot-07': 1 });

      const status = await (await fetch(`http://127.0.0.1:${gw.http.port}/api/status`)).text();
      const broker = (JSON.parse(status) as { components: { name: string; details: Record<string, unknown>; counters: { dropped: Record<string, number> } }[] }).components.find((c) => c.name === 'mqtt-broker')!;
      expect(broker.details.refusals).toEqual({ bad_credentials: 2, anonymous_refused: 1, publish_denied: 3, subscribe_denied: 2 });
      expect(broker.counters.dropped.publish_denied).toBe(3);
      const recent = broker.details.recentRefusals as { reason: string; clientId?: string; username?: string }[];
      expect(recent.filter((r) => r.reason === 'publish_denied').map((r) => r.clientId)).toEqual(['press-01', 'robot-99', 'reader-1']);
      expect(broker.details.auth).toEqual({ allowAnonymous: false, users: 3 });

      // no password and no hash, in the status API or the log
      const logText = log.text();
      expect(logText).toMatch(/MQTT connection refused: may not publish/);
      for (const secret of [...Object.values(PASSWORDS), 'guess', ...Object.values(hashes)]) {
        expect(status.includes(secret), `status holds ${secret.slice(0, 12)}`).toBe(false);
        expect(logText.includes(secret), `log holds ${secret.slice(0, 12)}`).toBe(false);
      }

      // a user added to the credentials file can connect without a restart
      const h = await hashPassword('late-pw-Vb3');
      writeFileSync(credentials, `users:\n  - { username: reader, passwordHash: "${hashes.reader}" }\n  - { username: late, passwordHash: "${h}", publish: ["factory/+/+/%u/telemetry"] }\n`);
      const late = await tryConnect(url, { clientId: 'late-1', username: 'late', password: 'late-pw-Vb3' });
      await late.publishAsync('factory/x/y/late/telemetry', msg(7), { qos: 1 });
      await late.endAsync();
      await eventually('the late user stored', async () => rows(await db.query("SELECT count(v) FROM m WHERE machine = 'late'", 'sec_acl'))[0]?.count, (n) => n === 1);
    } finally {
      await gw.cleanup();
    }
  });

  it('the cardinality limit stops a device that puts a serial number in a tag, and names it', async () => {
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_card, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes:
    - { topic: "factory/{site}/{line}/{machine}/telemetry", measurement: m, tags: [serial] }
cardinality: { maxSeriesPerSource: 5 }
buffer: { dir: "\${DATA}/buffer" }
`);
    try {
      const url = `mqtt://127.0.0.1:${gw.broker!.port}`;
      const bad = await tryConnect(url, { clientId: 'bad-dev' });
      const good = await tryConnect(url, { clientId: 'good-dev' });
      for (let i = 0; i < 20; i++) {
        await bad.publishAsync('factory/a/l1/bad-dev/telemetry', JSON.stringify({ ts: 1_700_000_000_000 + i, serial: `SN-${1_700_000_000_000 + i}`, v: i }), { qos: 1 });
        await good.publishAsync('factory/a/l1/good-dev/telemetry', JSON.stringify({ ts: 1_700_000_000_000 + i, serial: 'SN-1', v: i }), { qos: 1 });
      }
      await Promise.all([bad.endAsync(), good.endAsync()]);
      await eventually('what passed is stored', async () => rows(await db.query('SELECT count(v) FROM m GROUP BY machine', 'sec_card')).length, (n) => n === 2);
      const counts = await eventually('all counted', async () => Object.fromEntries((await db.query('SELECT count(v) FROM m GROUP BY machine', 'sec_card')).map((x) => [x.tags!.machine, x.values[0]![1]])), (c) => c['good-dev'] === 20 && c['bad-dev'] === 5);
      expect(counts).toEqual({ 'bad-dev': 5, 'good-dev': 20 });
      const { deadLetters, components } = gw.pipeline.status();
      expect(deadLetters.byReason.series_budget_exceeded).toBe(15);
      expect(deadLetters.latest.find((d) => d.reason === 'series_budget_exceeded')!.message).toMatch(/from mqtt-broker\/bad-dev refused: the per-source budget of 5 series/);
      const card = components.find((c) => c.name === 'cardinality')!;
      expect(card.state).toBe('degraded');
      expect(card.details!.overBudget).toEqual([expect.objectContaining({ source: 'mqtt-broker/bad-dev', measurement: 'm', refused: 15, budget: 'source' })]);
    } finally {
      await gw.cleanup();
    }
  });

  it('MQTT over TLS and WebSocket: client certificates by CN, unknown and expired certificates refused', async () => {
    const server = ca.issue('127.0.0.1', { ip: '127.0.0.1' });
    const robot = ca.issue('robot-07');
    const expired = ca.issue('robot-07', { expired: true });
    const stranger = new TestPki(pki.path, 'other-ca').issue('robot-07');
    const notAUser = ca.issue('robot-99');
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_tls, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker:
    listen: 127.0.0.1:0
    tls: { cert: ${server.cert}, key: ${server.key}, ca: ${ca.ca}, clientCertificates: optional }
    websocket: { listen: 127.0.0.1:0 }
    users:
      - { username: robot-07, certificate: true, publish: ["factory/+/+/%u/#"] }
      - { username: press-01, passwordHash: "${hashes['press-01']}", publish: ["factory/+/+/%u/#"] }
  routes:
    - { topic: "factory/{site}/{line}/{machine}/telemetry", measurement: m }
buffer: { dir: "\${DATA}/buffer" }
`);
    const tlsUrl = `mqtts://127.0.0.1:${gw.broker!.port}`;
    const wssUrl = `wss://127.0.0.1:${gw.broker!.wsPort}/mqtt`;
    const trust = { ca: [readFileSync(ca.ca)] };
    const withCert = (c: { cert: string; key: string }) => ({ ...trust, cert: readFileSync(c.cert), key: readFileSync(c.key) });
    const msg = (v: number) => JSON.stringify({ ts: 1_700_000_000_000 + v, v });
    try {
      // the certificate is the identity: no username or password
      const r = await tryConnect(tlsUrl, { clientId: 'robot-07', ...withCert(robot) });
      await r.publishAsync('factory/dalian/l2/robot-07/telemetry', msg(1), { qos: 1 });
      await r.endAsync();
      const w = await tryConnect(wssUrl, { clientId: 'robot-07-ws', ...withCert(robot) });
      await w.publishAsync('factory/dalian/l2/robot-07/telemetry', msg(2), { qos: 1 });
      await w.endAsync();
      // a password over TLS without a certificate
      const p = await tryConnect(tlsUrl, { clientId: 'press-01', username: 'press-01', password: PASSWORDS['press-01'], ...trust });
      await p.publishAsync('factory/anshan/l1/press-01/telemetry', msg(3), { qos: 1 });
      await p.endAsync();

      await expect(tryConnect(tlsUrl, { clientId: 'robot-07', ...withCert(expired) })).rejects.toThrow(/Not authorized/);
      await expect(tryConnect(tlsUrl, { clientId: 'robot-07', ...withCert(stranger) })).rejects.toThrow(/Not authorized/);
      await expect(tryConnect(tlsUrl, { clientId: 'robot-99', ...withCert(notAUser) })).rejects.toThrow(/Not authorized/);
      // plain MQTT on the TLS port never gets a CONNACK
      await expect(tryConnect(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'plain', username: 'press-01', password: PASSWORDS['press-01'] })).rejects.toThrow();

      await eventually('3 messages stored', async () => rows(await db.query('SELECT count(v) FROM m', 'sec_tls'))[0]?.count, (n) => n === 3);
      const broker = gw.pipeline.status().components.find((c) => c.name === 'mqtt-broker')!;
      expect(broker.details!.refusals).toMatchObject({ certificate_refused: 2, unknown_certificate: 1 });
      const recent = broker.details!.recentRefusals as { reason: string; detail: string }[];
      expect(recent.find((x) => x.reason === 'certificate_refused' && /CERT_HAS_EXPIRED|expired/i.test(x.detail)), JSON.stringify(recent)).toBeTruthy();
    } finally {
      await gw.cleanup();
    }
  });

  it('required client certificates: the handshake refuses a client without one', async () => {
    const server = ca.issue('127.0.0.1', { ip: '127.0.0.1' });
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_req, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker:
    listen: 127.0.0.1:0
    tls: { cert: ${server.cert}, key: ${server.key}, ca: ${ca.ca}, clientCertificates: required }
    users: [{ username: press-01, passwordHash: "${hashes['press-01']}", publish: ["#"] }]
  routes: [{ topic: "factory/{site}/{line}/{machine}/telemetry", measurement: m }]
buffer: { dir: "\${DATA}/buffer" }
`);
    try {
      const trust = { ca: [readFileSync(ca.ca)] };
      await expect(tryConnect(`mqtts://127.0.0.1:${gw.broker!.port}`, { clientId: 'press-01', username: 'press-01', password: PASSWORDS['press-01'], ...trust })).rejects.toThrow();
      await eventually('handshake refusal counted', async () => gw.pipeline.status().components.find((c) => c.name === 'mqtt-broker')!.details!.refusals as Record<string, number>, (r) => (r.tls_handshake_failed ?? 0) >= 1, 5000);
    } finally {
      await gw.cleanup();
    }
  });

  it('limits: oversized and malformed packets close the connection before they are read; connection rate per address', async () => {
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_lim, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker:
    listen: 127.0.0.1:0
    allowAnonymous: true
    maxPayloadBytes: 1000
    maxPacketBytes: 4000
    maxTopicLength: 64
    maxTopicDepth: 6
    maxConnectionsPerSecond: 5
    maxAuthFailuresPerMinute: 3
  routes: [{ topic: "factory/{site}/{line}/{machine}/telemetry", measurement: m }]
buffer: { dir: "\${DATA}/buffer" }
`);
    const port = gw.broker!.port;
    const url = `mqtt://127.0.0.1:${port}`;
    const refusals = () => gw.pipeline.status().components.find((c) => c.name === 'mqtt-broker')!.details!.refusals as Record<string, number>;
    /** Sends raw bytes; resolves when the broker closes the socket. */
    const raw = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const s = netConnect(port, '127.0.0.1', () => s.write(bytes));
        s.resume(); // read any answer, so the broker's FIN is seen
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
    try {
      const CONNECT = Buffer.from('101000044d5154540402003c0004746573740000', 'hex').subarray(0, 18);
      CONNECT[1] = 16; // remaining length of a minimal CONNECT with client id "test"
      // a PUBLISH announcing 200 MB: closed at its header, nothing buffered
      await raw(Buffer.concat([Buffer.from('101000044d5154540402003c000474657374', 'hex'), Buffer.from([0x30, 0x80, 0x80, 0x80, 0x60])]));
      // a remaining length of 5 bytes, and the reserved packet type 0
      await raw(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]));
      await raw(Buffer.from([0x00, 0x00]));
      expect(refusals()).toMatchObject({ packet_too_large: 1, malformed_packet: 2 });

      await new Promise((r) => setTimeout(r, 1100)); // refill the connection bucket
      const dev = await tryConnect(url, { clientId: 'dev-1' });
      await dev.publishAsync('factory/a/b/dev-1/telemetry', JSON.stringify({ v: 1 }), { qos: 1 });
      // over maxPayloadBytes but under maxPacketBytes: kept as a dead letter, connection stays
      await dev.publishAsync('factory/a/b/dev-1/telemetry', JSON.stringify({ v: 'x'.repeat(2000) }), { qos: 1 });
      expect(gw.pipeline.status().deadLetters.byReason.payload_too_large).toBe(1);
      dev.publish(`factory/${'a'.repeat(80)}/b/dev-1/telemetry`, '{"v":1}', { qos: 1 });
      await closed(dev);
      dev.end(true);
      const deep = await tryConnect(url, { clientId: 'dev-2' });
      deep.publish('a/b/c/d/e/f/g/h', '{"v":1}', { qos: 1 });
      await closed(deep);
      deep.end(true);
      expect(refusals()).toMatchObject({ topic_too_long: 1, topic_too_deep: 1 });

      // 5 per second per address: a burst of 12 connections gets some refused
      await new Promise((r) => setTimeout(r, 1100));
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => tryConnect(url, { clientId: `storm-${i}` })));
      const ok = results.filter((r) => r.status === 'fulfilled');
      for (const r of ok) (r as PromiseFulfilledResult<mqtt.MqttClient>).value.end(true);
      expect(ok.length).toBeLessThanOrEqual(6);
      expect(refusals().connection_rate_limited).toBeGreaterThanOrEqual(6);

      // through it all the broker ran and the good message was stored
      await eventually('good message stored', async () => rows(await db.query('SELECT count(v) FROM m', 'sec_lim'))[0]?.count, (n) => n === 1);
      expect(gw.broker!.status().state).toBe('running');

      // a password guesser: after 3 failed logins in a minute the address is refused outright
      await new Promise((r) => setTimeout(r, 1100));
      for (let i = 0; i < 3; i++) await expect(tryConnect(url, { clientId: `guess-${i}`, username: 'admin', password: `guess-${i}` })).rejects.toThrow(/Bad username or password/);
      await expect(tryConnect(url, { clientId: 'guess-4' })).rejects.toThrow();
      expect(refusals()).toMatchObject({ bad_credentials: 3, too_many_auth_failures: 1 });
    } finally {
      await gw.cleanup();
    }
  });
});

describe('external broker over TLS with a client certificate (mosquitto)', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const dir = tempDir('ext-tls');
  afterAll(() => dir.remove());

  it('connects with the plant CA and its own certificate, and a foreign CA is refused', async () => {
    const ca = new TestPki(dir.path);
    const server = ca.issue('127.0.0.1', { ip: '127.0.0.1' });
    const gwCert = ca.issue('plantgate');
    const device = ca.issue('press-01');
    const broker = await mosquitto({ tls: { ca: ca.ca, cert: server.cert, key: server.key } });
    const foreign = new TestPki(dir.path, 'foreign');
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_ext, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  clients:
    - { name: plant, url: "${broker.url}", clientId: pg-tls, clean: true, tls: { ca: ${ca.ca}, cert: ${gwCert.cert}, key: ${gwCert.key} } }
    - { name: wrong-ca, url: "${broker.url}", clientId: pg-wrong, clean: true, reconnectPeriod: 60s, tls: { ca: ${foreign.ca}, cert: ${gwCert.cert}, key: ${gwCert.key} } }
  routes:
    - { topic: "factory/{site}/{line}/{machine}/telemetry", measurement: m }
buffer: { dir: "\${DATA}/buffer" }
`);
    try {
      const source = (name: string) => gw.pipeline.status().components.find((c) => c.name === name)!;
      await eventually('connected over TLS', async () => source('plant').details!.connected, (c) => c === true, 15_000);
      const pub = await mqtt.connectAsync(broker.url, { clientId: 'press-01', ca: [readFileSync(ca.ca)], cert: readFileSync(device.cert), key: readFileSync(device.key) });
      await pub.publishAsync('factory/anshan/l1/press-01/telemetry', JSON.stringify({ ts: 1_700_000_000_000, v: 1 }), { qos: 1 });
      await pub.endAsync();
      await eventually('stored', async () => rows(await db.query('SELECT count(v) FROM m', 'sec_ext'))[0]?.count, (n) => n === 1);
      // the server certificate does not chain to the configured CA: never connected, the reason shown
      expect(source('wrong-ca').details!.connected).toBe(false);
      expect(source('wrong-ca').lastError?.message).toMatch(/certificate/i);
    } finally {
      await gw.cleanup();
      await broker.stop();
      broker.remove();
    }
  });
});

describe('InfluxDB over HTTPS with authentication, the password from a file', () => {
  const dir = tempDir('influx-tls');
  afterAll(() => dir.remove());

  it('writes through TLS with the plant CA and the user from the password file', async () => {
    const { startInfluxd } = await import('../tools/servers/influxd.js');
    const { request } = await import('node:https');
    const pki = new TestPki(dir.path);
    const server = pki.issue('127.0.0.1', { ip: '127.0.0.1' });
    const influx = await startInfluxd({ dataDir: join(dir.path, 'influxd'), https: server, auth: true });
    const query = (q: string, auth?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${influx.url}/query?${new URLSearchParams({ q, db: 'sec_tls' })}`, { method: 'POST', ca: readFileSync(pki.ca), headers: auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {} }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const pwFile = join(dir.path, 'influx-password');
    writeFileSync(pwFile, 'influx-admin-pw-R4\n');
    let gw: Awaited<ReturnType<typeof testGateway>> | undefined;
    try {
      expect((await query("CREATE USER admin WITH PASSWORD 'influx-admin-pw-R4' WITH ALL PRIVILEGES")).status).toBe(200);
      expect((await query('SHOW DATABASES')).status).toBe(401); // auth is really on
      gw = await testGateway(`
influx: { url: "${influx.url}", database: sec_tls, username: admin, passwordFile: ${pwFile}, tls: { ca: ${pki.ca} }, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes: [{ topic: "factory/{site}/{line}/{machine}/telemetry", measurement: m }]
buffer: { dir: "\${DATA}/buffer" }
`);
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'd1' });
      for (let i = 0; i < 5; i++) await c.publishAsync('factory/a/l1/m1/telemetry', JSON.stringify({ ts: 1_700_000_000_000 + i, v: i }), { qos: 1 });
      await c.endAsync();
      await eventually('5 points over HTTPS', async () => JSON.parse((await query('SELECT count(v) FROM m', 'admin:influx-admin-pw-R4')).body).results[0].series?.[0]?.values[0][1], (n) => n === 5);
      const status = JSON.stringify(gw.pipeline.status());
      expect(status).toContain(influx.url);
      expect(status).not.toContain('influx-admin-pw-R4');
    } finally {
      await gw?.cleanup();
      await influx.stop();
    }
  });
});

describe('HTTP API: credentials for admin actions, authenticated reading, TLS, headers, no secrets', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const dir = tempDir('http-sec');
  afterAll(() => dir.remove());

  it('admin actions need a token or a user; reading can be closed; secrets never appear', async () => {
    const { SparkplugEdgeNode } = await import('../simulators/sparkplug-edge.js');
    const log = logSink();
    const token = 'tok-5ecret-0123456789abcdef';
    const pwFile = join(dir.path, 'influx-password');
    writeFileSync(pwFile, 'influx-pw-Zz9\n');
    const opHash = await hashPassword('operator-pw-Qw3');
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_http, username: plantgate, passwordFile: ${pwFile}, flushInterval: 100ms }
http:
  listen: 127.0.0.1:0
  auth: { token: "${token}", users: [{ username: operator, passwordHash: "${opHash}" }], readAccess: authenticated }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  clients:
    - { url: "mqtt://mqttuser:mqtt-url-pw-Hh1@127.0.0.1:1", clientId: pg-sec, password: mqtt-pw-Jj5, reconnectPeriod: 60s }
sparkplug: { mode: active, hostId: pg-http }
buffer: { dir: "\${DATA}/buffer" }
`, {}, { logTo: log.stream });
    const base = `http://127.0.0.1:${gw.http.port}`;
    const edge = new SparkplugEdgeNode({ url: `mqtt://127.0.0.1:${gw.broker!.port}`, group: 'g1', edge: 'e1', devices: [{ id: 'robot-001', kind: 'robot' }], intervalMs: 0 });
    await edge.start();
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    try {
      // reading: probes open, the rest needs credentials (basic for browsers, bearer for scripts)
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const anon = await fetch(`${base}/api/status`);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toMatch(/^Basic realm="plantgate"/);
      expect((await fetch(`${base}/api/status`, { headers: basic('operator', 'wrong') })).status).toBe(401);
      expect((await fetch(`${base}/api/status`, { headers: { authorization: 'Bearer not-the-token' } })).status).toBe(401);
      const page = await fetch(`${base}/`, { headers: basic('operator', 'operator-pw-Qw3') });
      expect(page.status).toBe(200);
      for (const h of ['content-security-policy', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'cross-origin-opener-policy']) expect(page.headers.get(h), h).toBeTruthy();

      // admin action: refused without credentials and cross-site; done with the token
      await eventually('edge node known', async () => gw.sparkplug!.status().details!.nodes as unknown[], (n) => n.length === 1, 10_000);
      const rebirth = `${base}/api/sparkplug/rebirth?node=g1/e1`;
      expect((await fetch(rebirth, { method: 'POST' })).status).toBe(401);
      expect((await fetch(rebirth, { method: 'POST', headers: { authorization: `Bearer ${token}`, origin: 'http://evil.example' } })).status).toBe(403);
      expect((await fetch(`${base}/api/sparkplug/rebirth?node=g1/nope`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(409);
      expect((await fetch(`${base}/api/status`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(405);
      const births = edge.stats.births;
      const ok = await fetch(rebirth, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ sent: true });
      await eventually('edge node born again', async () => edge.stats.births, (n) => n === births + 1, 10_000);

      // no secret in the status API, the metrics or the log
      const status = await (await fetch(`${base}/api/status`, { headers: { authorization: `Bearer ${token}` } })).text();
      const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      expect(status).toContain('mqtt://127.0.0.1:1'); // the client is listed, its URL without user info
      const logText = log.text();
      for (const secret of [token, 'operator-pw-Qw3', opHash, 'influx-pw-Zz9', 'mqtt-url-pw-Hh1', 'mqtt-pw-Jj5']) {
        for (const [where, text] of [['status', status], ['metrics', metrics], ['log', logText]] as const) expect(text.includes(secret), `${where} holds ${secret}`).toBe(false);
      }
    } finally {
      await edge.stop();
      await gw.cleanup();
    }
  });

  it('without http.auth admin actions are off; HTTPS with HSTS', async () => {
    const pki = new TestPki(dir.path, 'http-ca');
    const server = pki.issue('127.0.0.1', { ip: '127.0.0.1' });
    const gw = await testGateway(`
influx: { url: ${db.url}, database: sec_https }
http: { listen: 127.0.0.1:0, tls: { cert: ${server.cert}, key: ${server.key} } }
buffer: { dir: "\${DATA}/buffer" }
`);
    try {
      const { request } = await import('node:https');
      const get = (path: string, method = 'GET') =>
        new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
          const req = request(`https://127.0.0.1:${gw.http.port}${path}`, { method, ca: readFileSync(pki.ca) }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
          });
          req.on('error', reject);
          req.end();
        });
      const s = await get('/api/status');
      expect(s.status).toBe(200);
      expect(s.headers['strict-transport-security']).toMatch(/max-age=/);
      const post = await get('/api/sparkplug/rebirth?node=a/b', 'POST');
      expect(post.status).toBe(403);
      expect(post.body).toMatch(/configure http.auth/);
    } finally {
      await gw.cleanup();
    }
  });
});
