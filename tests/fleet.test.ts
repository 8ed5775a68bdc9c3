/**
 * Issue 17, done-when: three gateways share `$share` subscriptions on a real mosquitto. 100 devices
 * publish 2,000 QoS 1 messages each (distinct series, increasing timestamps) while random members
 * are killed with SIGKILL and restarted, 10 times. Every message mosquitto acknowledged is in
 * influxd; duplicates are counted (each member tags its points with its instance, so a message
 * written by two members is two rows). Then one member is killed for good: what mosquitto had queued
 * for it waits in its session, and a member started under the same client id takes it over
 * (docs/scaling.md records these figures).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayProcess, type GatewayProcess } from '../tools/servers/gateway-process.js';
import { publishFleet } from './helpers/publish.js';
import { eventually, mosquitto, rows, tempDir, useInfluxd, type InfluxdHandle } from './helpers/servers.js';

const DEVICES = 100;
const PER_DEVICE = 2000;

describe('a fleet of three gateways behind one mosquitto', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let broker: Awaited<ReturnType<typeof mosquitto>>;
  const dir = tempDir('fleet');
  const members: GatewayProcess[] = [];

  /** Stored rows and distinct messages per device, over every member's series. */
  async function counts(from = 0): Promise<{ rows: number; distinct: number; perDevice: Map<string, number> }> {
    const q = async (f: string) => rows(await db.query(`SELECT ${f} FROM t WHERE seq >= ${from} GROUP BY device`, 'fleet').catch(() => []));
    const total = await q('count(seq)');
    const distinct = await q('count(distinct(seq))');
    return {
      rows: total.reduce((n, r) => n + Number(r.count), 0),
      distinct: distinct.reduce((n, r) => n + Number(r.count), 0),
      perDevice: new Map(distinct.map((r) => [String(r.device), Number(r.count)])),
    };
  }

  beforeAll(async () => {
    broker = await mosquitto();
    for (let i = 1; i <= 3; i++) {
      const own = join(dir.path, `gw-${i}`);
      mkdirSync(own, { recursive: true });
      members.push(
        await gatewayProcess(
          own,
          (port) => `
instance: gw-${i}
http: { listen: 127.0.0.1:${port} }
influx: { url: ${db.url}, database: fleet, flushInterval: 200ms }
buffer: { dir: ${own}/buffer }
mqtt:
  clients:
    - { name: plant-broker, url: ${broker.url}, shareGroup: plantgate, reconnectPeriod: 200ms }
  routes:
    - { topic: "factory/{site}/{line}/{device}/telemetry", measurement: t, staticTags: { gw: gw-${i} } }
`,
        ),
      );
    }
    await Promise.all(members.map((m) => m.start()));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(members.map((m) => m.kill('SIGTERM')));
    await broker?.stop();
    broker?.remove();
    dir.remove();
  }, 60_000);

  it('loses no acknowledged message while members are killed with SIGKILL and restarted 10 times', async () => {
    // each member shows its identity and its shared subscription
    for (const [i, m] of members.entries()) {
      const st = (await (await fetch(`${m.httpUrl}/api/status`)).json()) as { instance: string; components: { name: string; details?: { clientId?: string; subscriptions?: string[] } }[] };
      expect(st.instance).toBe(`gw-${i + 1}`);
      const client = st.components.find((c) => c.name === 'plant-broker')!;
      expect(client.details).toMatchObject({ clientId: `gw-${i + 1}`, subscriptions: ['$share/plantgate/factory/+/+/+/telemetry'] });
    }
    // a kill about every second, each member restarted in the background (at times two are down)
    let kills = 0;
    let killsWhilePublishing = 0;
    let publishing = true;
    const up = new Set(members);
    const restarts: Promise<void>[] = [];
    const chaos = (async () => {
      while (kills < 10) {
        await new Promise((r) => setTimeout(r, 600 + Math.random() * 600));
        const candidates = [...up];
        if (candidates.length < 2) continue; // one member always takes the load
        const m = candidates[Math.floor(Math.random() * candidates.length)]!;
        up.delete(m);
        await m.kill('SIGKILL');
        kills++;
        if (publishing) killsWhilePublishing++;
        restarts.push(
          (async () => {
            await new Promise((r) => setTimeout(r, 200 + Math.random() * 500));
            await m.start(60_000);
            up.add(m);
          })(),
        );
      }
    })();
    const started = Date.now();
    const acked = await publishFleet(broker.url, DEVICES, PER_DEVICE, { prefix: 'fleet' });
    publishing = false;
    const publishS = (Date.now() - started) / 1000;
    await chaos;
    await Promise.all(restarts);
    expect(acked).toBe(DEVICES * PER_DEVICE);
    const c = await eventually('every acknowledged message in influxd', () => counts(), (x) => x.distinct === DEVICES * PER_DEVICE, 120_000);
    for (const n of c.perDevice.values()) expect(n).toBe(PER_DEVICE);
    const duplicates = c.rows - c.distinct;
    console.log(`fleet: ${acked} messages in ${publishS.toFixed(1)} s, ${killsWhilePublishing} of ${kills} SIGKILLs while publishing; ${c.distinct} distinct stored, ${duplicates} written by two members (${((100 * duplicates) / c.distinct).toFixed(2)} %)`);
    expect(kills).toBe(10);
    // every member took part
    const perMember = rows(await db.query('SELECT count(seq) FROM t GROUP BY gw', 'fleet'));
    expect(perMember.map((r) => r.gw).sort()).toEqual(['gw-1', 'gw-2', 'gw-3']);
  }, 300_000);

  it('holds what was meant for a member that does not come back, until one with its client id does', async () => {
    const gone = members[2]!;
    await gone.kill('SIGKILL');
    const acked = await publishFleet(broker.url, DEVICES, 50, { prefix: 'fleet-b', firstDevice: 0, seqBase: 10_000 });
    expect(acked).toBe(DEVICES * 50);
    // the two that remain take what mosquitto gives them; what it had given gw-3 waits in gw-3's session
    await new Promise((r) => setTimeout(r, 3000));
    const before = await counts(10_000);
    const missing = DEVICES * 50 - before.distinct;
    console.log(`fleet: member gw-3 gone for good: ${missing} of ${DEVICES * 50} messages wait in its session`);
    // a replacement under the same client id (a StatefulSet pod comes back with its name) takes them over
    await gone.start(60_000);
    const after = await eventually('the held messages delivered to the replacement', () => counts(10_000), (x) => x.distinct === DEVICES * 50, 60_000);
    expect(after.distinct).toBe(DEVICES * 50);
  }, 120_000);
});
