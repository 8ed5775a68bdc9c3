/**
 * Issue 21, done-when: live reconfiguration under load. 100 devices publish QoS 1 (50 into the
 * embedded broker, 50 into a real mosquitto the gateway subscribes to), 3 OPC UA PLC simulators
 * are read, and the configuration file is changed and reloaded 20 times through POST /api/reload:
 * endpoints added and removed, a route added and removed, a node list changed, an MQTT user added,
 * guard and broker limits changed, the registry and targets changed, the sink's batching changed,
 * one invalid file, one change only a restart can make, and reloads with nothing changed.
 * Afterwards every acknowledged message is in influxd, the components no change touched kept
 * their connections (connect counters and the broker's reconnect count did not move), each changed
 * one did what its change said, and the invalid file left everything running and was reported with
 * its key path, line and column.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plcFleet, PLC_NAMESPACE } from '../simulators/opcua-plc.js';
import type { SimServer } from '../simulators/opcua-server.js';
import { loadConfigFile } from '../src/config/load.js';
import { createLogger, Gateway, inputsOf } from '../src/gateway/gateway.js';
import { hashPassword } from '../src/security/passwords.js';
import type { ReloadReport } from '../src/status/control.js';
import { gatewayProcess } from '../tools/servers/gateway-process.js';
import { freePort } from '../tools/servers/process.js';
import { eventually, mosquitto, rows, tempDir, useInfluxd, type InfluxdHandle } from './helpers/servers.js';
import { targetsYaml } from './helpers/targets.js';

const TOKEN = 'reload-test-token-0123456789';
const NS = `nsu=${PLC_NAMESPACE}`;

const REGISTRY = (extra: string) => `
region: { name: Test }
enterprises:
  - id: ent-a
    name: A
    city: Shenyang
    industry: C342
    equipmentManufacturing: true
    regulated: true
    employees: 1000
    keyProcesses: [{ id: p1, name: P1 }]
    equipment:
      - { id: plc-0, class: plc, source: { endpoint: plc-0 } }
${extra}`;

interface Knobs {
  endpoints: number[];
  plc1Nodes: string[];
  energyRoute: boolean;
  users: string[];
  maxPayloadBytes: number;
  maxFuture: string;
  batchSize: number;
  logLevel: string;
  invalid?: boolean;
  bufferMaxBytes?: string;
}

describe('live reconfiguration under load', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const dir = tempDir('reload');
  const file = join(dir.path, 'plantgate.yaml');
  let sims: SimServer[];
  let broker: Awaited<ReturnType<typeof mosquitto>>;
  let gw: Gateway;
  let base: string;
  let hashes: Record<string, string>;
  const devices: { client: MqttClient; id: string; acked: number[]; seq: number }[] = [];
  let publishing: NodeJS.Timeout | undefined;

  const yaml = (k: Knobs) => `
http: { listen: 127.0.0.1:0, auth: { token: ${TOKEN} } }
influx: { url: ${db.url}, database: reload, flushInterval: 200ms, batchSize: ${k.batchSize} }
buffer: { dir: ${dir.path}/buffer${k.bufferMaxBytes ? `, maxBytes: ${k.bufferMaxBytes}` : ''} }
log: { level: ${k.logLevel} }
guard: { maxFuture: ${k.maxFuture} }
mqtt:
  broker:
    listen: 127.0.0.1:0
    maxPayloadBytes: ${k.maxPayloadBytes}
    users:
${k.users.map((u) => `      - { username: ${u}, passwordHash: "${hashes[u]}", publish: ["plant/#"] }`).join('\n')}
  clients:
    - { name: upstream, url: ${broker.url}, clientId: gw-reload-test }
  routes:
    - { topic: "plant/{line}/{device}/telemetry", measurement: telemetry }
${k.energyRoute ? '    - { topic: "plant/{line}/{device}/energy", measurement: energy }' : ''}
opcua:
  pkiDir: ${dir.path}/pki
  endpoints:
${k.endpoints
  .map((i) => {
    const nodes = i === 1 ? k.plc1Nodes : ['Press.Pressure'];
    return `    - { name: plc-${i}, url: "${sims[i]!.url}", securityMode: None, securityPolicy: None, measurement: plc, tags: { plc: p${i} }, publishingInterval: 200, nodes: [${nodes.map((n) => `{ nodeId: "${NS};s=PLC_0${i + 1}.${n}", field: ${n.replace('.', '_')} }`).join(', ')}] }`;
  })
  .join('\n')}
indicators: { registry: ${dir.path}/registry.yaml, targets: ${dir.path}/targets.yaml, window: 5s, publishInterval: 1s }
${k.invalid ? 'influxx: { typo: true }\n' : ''}`;

  let knobs: Knobs = { endpoints: [0, 1, 2], plc1Nodes: ['Press.Pressure'], energyRoute: false, users: ['dev'], maxPayloadBytes: 65536, maxFuture: '1h', batchSize: 5000, logLevel: 'silent' };

  async function reload(change: Partial<Knobs>): Promise<ReloadReport> {
    knobs = { ...knobs, ...change };
    writeFileSync(file, yaml(knobs));
    const res = await fetch(`${base}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    const report = (await res.json()) as ReloadReport;
    expect(res.status, JSON.stringify(report)).toBe(report.outcome === 'applied' || report.outcome === 'unchanged' ? 200 : 422);
    // the invalid key is not kept for the next step
    if (change.invalid) knobs = { ...knobs, invalid: false };
    if (change.bufferMaxBytes) knobs = { ...knobs, bufferMaxBytes: undefined };
    return report;
  }
  const actions = (r: ReloadReport) => r.changes.filter((c) => !c.error).map((c) => `${c.action} ${c.component}`).sort();
  const status = async () => (await (await fetch(`${base}/api/status`)).json()) as { components: { name: string; state: string; details?: Record<string, unknown> }[]; config: { hash: string; lastReload?: ReloadReport; reloads: number } };
  const detail = async (name: string) => (await status()).components.find((c) => c.name === name)?.details as Record<string, number> | undefined;

  beforeAll(async () => {
    hashes = { dev: await hashPassword('dev-password'), newdev: await hashPassword('newdev-password') };
    const first = await freePort();
    sims = plcFleet({ servers: 4, plcsPerServer: 1, basePort: first, pkiDir: `${dir.path}/sim`, security: 'none', intervalMs: 200 });
    // consecutive ports may be taken: give each server its own free port
    for (const s of sims) (s.options as { port: number }).port = await freePort();
    await Promise.all(sims.map((s) => s.start()));
    broker = await mosquitto();
    writeFileSync(join(dir.path, 'registry.yaml'), REGISTRY(''));
    writeFileSync(join(dir.path, 'targets.yaml'), targetsYaml(0.56));
    writeFileSync(file, yaml(knobs));
    gw = await Gateway.start(inputsOf(loadConfigFile(file)), { load: () => loadConfigFile(file), file, log: createLogger(process.env.PLANTGATE_TEST_LOG ?? 'silent') });
    base = `http://127.0.0.1:${gw.http.port}`;
    const brokerUrl = `mqtt://127.0.0.1:${gw.broker!.port}`;
    for (let d = 0; d < 100; d++) {
      const embedded = d < 50;
      const id = `dev-${String(d).padStart(3, '0')}`;
      const client = await mqtt.connectAsync(embedded ? brokerUrl : broker.url, { clientId: id, username: embedded ? 'dev' : undefined, password: embedded ? 'dev-password' : undefined, reconnectPeriod: 500 });
      devices.push({ client, id, acked: [], seq: 0 });
    }
    await eventually('the gateway subscribed to mosquitto', async () => detail('upstream'), (d) => d?.connected === (true as unknown as number), 20_000);
    // 100 messages per second in all: each device once a second, spread over the second
    let tick = 0;
    publishing = setInterval(() => {
      const dev = devices[tick++ % devices.length]!;
      const seq = dev.seq++;
      dev.client.publishAsync(`plant/line-${tick % 4}/${dev.id}/telemetry`, JSON.stringify({ ts: Date.UTC(2026, 0, 1) + seq * 1000, seq, temperature: 20 + seq / 100 }), { qos: 1 }).then(
        () => dev.acked.push(seq),
        () => undefined, // not acknowledged: the device would resend; not counted
      );
    }, 10);
  }, 120_000);

  afterAll(async () => {
    clearInterval(publishing);
    await Promise.all(devices.map((d) => d.client.endAsync().catch(() => undefined)));
    await gw?.stop();
    await broker?.stop();
    await Promise.all((sims ?? []).map((s) => s.stop()));
    broker?.remove();
    dir.remove();
  }, 60_000);

  it('applies 20 reloads, touching only what changed, and loses no acknowledged message', async () => {
    await eventually('three endpoints reading', async () => rows(await db.query('SELECT count(Press_Pressure) FROM plc GROUP BY plc', 'reload').catch(() => [])), (r) => r.length === 3, 30_000);
    const connectsBefore = { upstream: (await detail('upstream'))!.connects, ...Object.fromEntries(await Promise.all([0, 1, 2].map(async (i) => [`plc-${i}`, (await detail(`plc-${i}`))!.connects]))) };
    const hash0 = (await status()).config.hash;
    const reports: ReloadReport[] = [];
    const step = async (change: Partial<Knobs>) => {
      const r = await reload(change);
      reports.push(r);
      // the reloads are spread over the load, so each one meets messages in flight
      await new Promise((res) => setTimeout(res, 700));
      return r;
    };

    // 1. add an OPC UA endpoint: it starts and its values arrive; nothing else moves
    expect(actions(await step({ endpoints: [0, 1, 2, 3] }))).toEqual(['added plc-3']);
    await eventually('plc-3 values', async () => rows(await db.query(`SELECT count(Press_Pressure) FROM plc WHERE plc='p3'`, 'reload').catch(() => [])), (r) => Number(r[0]?.count ?? 0) > 0, 20_000);
    // 2. remove it again
    expect(actions(await step({ endpoints: [0, 1, 2] }))).toEqual(['removed plc-3']);
    expect((await status()).components.some((c) => c.name === 'plc-3')).toBe(false);
    // 3. nothing changed
    expect((await step({})).outcome).toBe('unchanged');
    // 4. add a route: in place, and the mosquitto client subscribes to its filter on the same connection
    const r4 = await step({ energyRoute: true });
    expect(actions(r4)).toEqual(['updated mqtt.routes']);
    await devices[0]!.client.publishAsync('plant/line-1/dev-000/energy', JSON.stringify({ kwh: 12.5 }), { qos: 1 });
    await eventually('the mosquitto client subscribed to the new filter', async () => {
      await devices[60]!.client.publishAsync('plant/line-1/dev-060/energy', JSON.stringify({ kwh: 7.5 }), { qos: 1 });
      return rows(await db.query('SELECT kwh FROM energy GROUP BY device', 'reload').catch(() => []));
    }, (r) => r.length >= 2, 20_000);
    // 5. change one endpoint's node list: only that endpoint gets a new session
    expect(actions(await step({ plc1Nodes: ['Press.Pressure', 'Tank.Level'] }))).toEqual(['restarted plc-1']);
    await eventually('the new node of plc-1', async () => rows(await db.query(`SELECT count(Tank_Level) FROM plc WHERE plc='p1'`, 'reload').catch(() => [])), (r) => Number(r[0]?.count ?? 0) > 0, 20_000);
    // 6. add an MQTT user: refused before, let in after, and no device was disconnected
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'newcomer', username: 'newdev', password: 'newdev-password', reconnectPeriod: 0 })).rejects.toThrow();
    expect(actions(await step({ users: ['dev', 'newdev'] }))).toEqual(['updated mqtt-broker']);
    const newcomer = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'newcomer', username: 'newdev', password: 'newdev-password', reconnectPeriod: 0 });
    await newcomer.publishAsync('plant/line-9/newcomer/telemetry', JSON.stringify({ temperature: 1 }), { qos: 1 });
    await newcomer.endAsync();
    // 7. a broker limit: applies to the next packet, in place
    expect(actions(await step({ maxPayloadBytes: 2048 }))).toEqual(['updated mqtt-broker']);
    const big = JSON.stringify({ temperature: 1, note: 'x'.repeat(3000) });
    await devices[1]!.client.publishAsync('plant/line-1/dev-001/telemetry', big, { qos: 1 });
    await eventually('the large payload dead-lettered', async () => (await status()) as unknown as { deadLetters: { byReason: Record<string, number> } }, (s) => (s.deadLetters.byReason.payload_too_large ?? 0) >= 1, 10_000);
    // 8. a guard limit of the pipeline: in place, counters go on
    expect(actions(await step({ maxFuture: '2h' }))).toEqual(['updated guard']);
    // 9. the registry: the indicators take the new equipment in place
    writeFileSync(join(dir.path, 'registry.yaml'), REGISTRY('      - { id: plc-1, class: plc, source: { endpoint: plc-1 } }'));
    expect(actions(await step({}))).toEqual(['updated indicators']);
    expect(gw.indicators!.registry.enterprises[0]!.equipment.map((q) => q.id)).toEqual(['plc-0', 'plc-1']);
    // 10. the targets
    writeFileSync(join(dir.path, 'targets.yaml'), targetsYaml(0.6));
    expect(actions(await step({}))).toEqual(['updated indicators']);
    expect(gw.indicators!.targets.targets.industrialInternetAccess).toBe(0.6);
    // 11. an invalid file: nothing is touched, the problem is reported with its place
    const hashBefore = (await status()).config.hash;
    const bad = await step({ invalid: true });
    expect(bad.outcome).toBe('invalid');
    expect(bad.changes).toEqual([]);
    expect(bad.problems).toEqual([expect.objectContaining({ path: 'influxx', message: expect.stringMatching(/unknown key; did you mean influx\?/), line: expect.any(Number), column: 1 })]);
    const st = await status();
    expect(st.config.hash).toBe(hashBefore);
    expect(st.config.lastReload).toMatchObject({ outcome: 'invalid' });
    expect(st.components.filter((c) => c.state === 'stopped')).toEqual([]);
    // 12. a change only a restart can make: refused as a whole, nothing touched
    const refused = await step({ bufferMaxBytes: '512MiB', logLevel: 'warn' });
    expect(refused.outcome).toBe('refused');
    expect(refused.problems[0]!.message).toMatch(/buffer\.maxBytes apply at the next start/);
    expect(gw.log.level).toBe('silent');
    // 13. the sink's batching: the sink restarts and reads on from its cursor
    expect(actions(await step({ batchSize: 500, logLevel: 'silent' }))).toEqual(['restarted influx-v1']);
    // 14-15. an endpoint once more, added and removed
    expect(actions(await step({ endpoints: [0, 1, 2, 3] }))).toEqual(['added plc-3']);
    expect(actions(await step({ endpoints: [0, 1, 2] }))).toEqual(['removed plc-3']);
    // 16. the log level, in place
    expect(actions(await step({ logLevel: 'fatal' }))).toEqual(['updated log']);
    expect(gw.log.level).toBe('fatal');
    // 17. the route removed again: in place, the client unsubscribes
    expect(actions(await step({ energyRoute: false, logLevel: 'silent' }))).toEqual(['updated log', 'updated mqtt.routes']);
    // 18. node list back
    expect(actions(await step({ plc1Nodes: ['Press.Pressure'] }))).toEqual(['restarted plc-1']);
    // 19. the broker limit back, 20. nothing changed
    expect(actions(await step({ maxPayloadBytes: 65536 }))).toEqual(['updated mqtt-broker']);
    expect((await step({})).outcome).toBe('unchanged');
    expect(reports).toHaveLength(20);
    expect(reports.flatMap((r) => r.changes.filter((c) => c.error))).toEqual([]);
    expect((await status()).config.hash).not.toBe(hash0);
    expect((await status()).config.reloads).toBe(20);

    // stop the load, then every acknowledged message must be stored
    clearInterval(publishing);
    publishing = undefined;
    await new Promise((r) => setTimeout(r, 500));
    const acked = devices.reduce((n, d) => n + d.acked.length, 0);
    expect(acked).toBeGreaterThan(1000);
    const stored = await eventually(
      'every acknowledged message in influxd',
      async () => new Map(rows(await db.query('SELECT count(seq) FROM telemetry GROUP BY device', 'reload').catch(() => [])).map((r) => [String(r.device), Number(r.count)])),
      (m) => devices.every((d) => (m.get(d.id) ?? 0) >= new Set(d.acked).size),
      30_000,
    );
    for (const d of devices) {
      const seqs = new Set(rows(await db.query(`SELECT seq FROM telemetry WHERE device='${d.id}'`, 'reload')).map((r) => Number(r.seq)));
      expect(d.acked.filter((s) => !seqs.has(s)), d.id).toEqual([]);
    }
    expect(stored.size).toBeGreaterThanOrEqual(100);

    // what no change touched kept its connection; the changed endpoint got new sessions
    expect((await detail('upstream'))!.connects).toBe(connectsBefore.upstream);
    expect((await detail('plc-0'))!.connects).toBe(connectsBefore['plc-0']);
    expect((await detail('plc-2'))!.connects).toBe(connectsBefore['plc-2']);
    expect((await detail('mqtt-broker'))!.reconnects).toBe(0);
    expect(devices.every((d) => d.client.connected)).toBe(true);
  }, 300_000);
});

describe('reload triggers of `plantgate run`', () => {
  const dir = tempDir('reload-run');
  let gw: Awaited<ReturnType<typeof gatewayProcess>>;
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const config = (httpPort: number, routes: string) => `
http: { listen: 127.0.0.1:${httpPort} }
influx: { url: ${db.url}, database: reload_run, flushInterval: 200ms }
buffer: { dir: ${dir.path}/buffer }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes:
${routes}
`;
  let port = 0;
  const report = async () => ((await (await fetch(`${gw.httpUrl}/api/status`)).json()) as { config: { hash: string; reloads: number; lastReload?: ReloadReport; watching: string[] } }).config;

  beforeAll(async () => {
    gw = await gatewayProcess(dir.path, (p) => config((port = p), '    - { topic: "a/{device}", measurement: a }'), { args: ['--watch'] });
    await gw.start();
  }, 60_000);
  afterAll(async () => {
    await gw?.kill('SIGTERM');
    dir.remove();
  }, 30_000);

  it('reloads on SIGHUP, keeps running on an invalid file, and with --watch on a changed file', async () => {
    const first = await report();
    expect(first.watching).toEqual([gw.file]);
    // an invalid file and SIGHUP: reported, the process and the running configuration stay
    // (--watch sees the same change: whichever comes first reports it)
    writeFileSync(gw.file, `${config(port, '    - { topic: "a/{device}", measurment: a }')}`);
    gw.signal('SIGHUP');
    const invalid = await eventually('the invalid reload reported', report, (r) => r.lastReload?.outcome === 'invalid', 10_000);
    expect(invalid.hash).toBe(first.hash);
    expect(invalid.lastReload!.problems).toContainEqual(expect.objectContaining({ path: 'mqtt.routes[0].measurment', message: 'unknown key; did you mean measurement?', line: 8 }));
    expect((await fetch(`${gw.httpUrl}/readyz`)).ok).toBe(true);
    // and on the page, in a real browser: the hash, and the problem with its place
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(gw.httpUrl);
      await page.waitForFunction(() => document.querySelector('#cfg-reload')?.textContent?.includes('invalid'), undefined, { timeout: 10_000 });
      expect(await page.textContent('#cfg-hash')).toBe(first.hash);
      expect(await page.textContent('#active-list')).toMatch(/reload invalid .* the running configuration is kept: .*mqtt\.routes\[0\]\.measurment \(line 8, column \d+\) unknown key; did you mean measurement\?/);
    } finally {
      await browser.close();
    }
    // a valid change, seen by --watch alone
    writeFileSync(gw.file, config(port, '    - { topic: "a/{device}", measurement: a }\n    - { topic: "b/{device}", measurement: b }'));
    const applied = await eventually('the watched change applied', report, (r) => r.lastReload?.outcome === 'applied', 10_000);
    expect(applied.lastReload!.changes).toEqual([expect.objectContaining({ component: 'mqtt.routes', action: 'updated' })]);
    expect(['watch', 'signal']).toContain(applied.lastReload!.trigger);
    expect(applied.hash).not.toBe(first.hash);
    // SIGHUP with nothing changed
    const reloads = applied.reloads;
    gw.signal('SIGHUP');
    const again = await eventually('SIGHUP reload', report, (r) => r.reloads > reloads, 10_000);
    expect(again.lastReload).toMatchObject({ trigger: 'signal', outcome: 'unchanged' });
    // POST /api/reload needs http.auth: without it the admin action is refused, as every other one
    expect((await fetch(`${gw.httpUrl}/api/reload`, { method: 'POST' })).status).toBe(403);
  }, 60_000);
});

describe('a reload that moves the sink to another InfluxDB', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const dir = tempDir('reload-sink');
  const file = join(dir.path, 'plantgate.yaml');
  let gw: Gateway;
  const yaml = (url: string) => `
http: { listen: 127.0.0.1:0, auth: { token: ${TOKEN} } }
influx: { url: ${url}, database: moved, flushInterval: 100ms, retryMin: 100ms, retryMax: 200ms }
buffer: { dir: ${dir.path}/buffer }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes: [{ topic: "m/{device}", measurement: m }]
`;
  afterAll(async () => {
    await gw?.stop();
    dir.remove();
  }, 30_000);

  it('is refused while the buffer holds lines for the old target, unless moveBuffered says to write them to the new one', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    writeFileSync(file, yaml(dead));
    gw = await Gateway.start(inputsOf(loadConfigFile(file)), { load: () => loadConfigFile(file), file, log: createLogger('silent') });
    const base = `http://127.0.0.1:${gw.http.port}`;
    const dev = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'm1' });
    for (let i = 0; i < 5; i++) await dev.publishAsync('m/m1', JSON.stringify({ i, ts: Date.UTC(2026, 0, 1) + i }), { qos: 1 });
    await dev.endAsync();
    writeFileSync(file, yaml(db.url));
    const post = async (q = '') => (await (await fetch(`${base}/api/reload${q}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).json()) as ReloadReport;
    const refused = await post();
    expect(refused.outcome).toBe('refused');
    expect(refused.problems[0]!.message).toMatch(/influx\.url changes where the data goes while the buffer still holds lines .*\?moveBuffered=true/);
    const moved = await post('?moveBuffered=true');
    expect(moved.outcome).toBe('applied');
    expect(moved.changes).toEqual([expect.objectContaining({ component: 'influx-v1', action: 'restarted', keys: ['url'] })]);
    await eventually('the buffered lines in the new InfluxDB', async () => rows(await db.query('SELECT count(i) FROM m', 'moved').catch(() => [])), (r) => Number(r[0]?.count ?? 0) === 5, 20_000);
  }, 60_000);
});
