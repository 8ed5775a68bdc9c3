/**
 * A fleet of three gateway processes sharing 12 OPC UA endpoints and 4 Sparkplug groups through
 * leases in a real 3-member etcd cluster (Debian's etcd-server), with the real simulators and a
 * real mosquitto. Every OPC UA server is watched from its own side the whole time: the sessions
 * reading it (activated, on an open channel) are sampled every 100 ms, so "read by exactly one
 * gateway" and "two readers for at most one TTL" are measured, not inferred from the gateways'
 * word. Sizes prove the point; the TTL is 4 s (CLUSTER_TTL=10s runs the same with the default).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cncFleet, CNC_NAMESPACE } from '../simulators/opcua-cnc.js';
import type { SimServer } from '../simulators/opcua-server.js';
import { startSparkplugFleet } from '../simulators/sparkplug-edge.js';
import type { ClusterStatus } from '../src/cluster/member.js';
import { startEtcdCluster, type EtcdCluster } from '../tools/servers/etcd.js';
import { gatewayProcess, type GatewayProcess } from '../tools/servers/gateway-process.js';
import { freePortRange } from '../tools/servers/process.js';
import { eventually, type InfluxdHandle, mosquitto, tempDir, useInfluxd } from './helpers/servers.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { chromium } from 'playwright-core';

const TTL_MS = Number((process.env.CLUSTER_TTL ?? '4s').replace(/s$/, '')) * 1000;
const ENDPOINTS = 12;
const GROUPS = ['line-a', 'line-b', 'line-c', 'line-d'];
const UNITS = [...Array.from({ length: ENDPOINTS }, (_v, i) => `opcua/cnc-${i + 1}`), ...GROUPS.map((g) => `sparkplug/${g}`)];

interface Status {
  components: { name: string; type: string; state: string; lastValueAt?: number; details?: Record<string, unknown> }[];
  cluster?: ClusterStatus;
}

describe('a fleet sharing OPC UA endpoints and Sparkplug groups through etcd leases', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const dir = tempDir('cluster');
  let etcd: EtcdCluster;
  let broker: Awaited<ReturnType<typeof mosquitto>>;
  let servers: SimServer[];
  let sparkplug: Awaited<ReturnType<typeof startSparkplugFleet>>[] = [];
  const relays: TcpProxy[] = [];
  const gateways: GatewayProcess[] = [];
  // server side, every 100 ms: sessions per server; the longest stretch with two or more, and with none
  const watch = { overlapMs: new Array<number>(ENDPOINTS).fill(0), longestOverlapMs: new Array<number>(ENDPOINTS).fill(0), darkSince: new Array<number | undefined>(ENDPOINTS).fill(undefined), longestDarkMs: new Array<number>(ENDPOINTS).fill(0), samples: 0 };
  let sampler: NodeJS.Timeout | undefined;
  let phase = 'start';
  const episodes: string[] = [];
  const resetDark = () => {
    watch.longestDarkMs.fill(0);
    watch.darkSince.fill(undefined);
  };

  const status = async (g: GatewayProcess): Promise<Status | undefined> => (await fetch(`${g.httpUrl}/api/status`).catch(() => undefined))?.json().catch(() => undefined) as Promise<Status | undefined>;
  const live = async () => (await Promise.all(gateways.map(status))).map((s, i) => ({ i, s }));

  /** unit -> the gateways that read it and have a value from it in the last `freshMs`. */
  async function readers(freshMs = 3000): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>(UNITS.map((u) => [u, []]));
    const now = Date.now();
    for (const { i, s } of await live()) {
      if (!s) continue;
      for (const c of s.components) {
        if (c.type === 'opcua' && c.lastValueAt && now - c.lastValueAt < freshMs) out.get(`opcua/${c.name}`)?.push(i);
        if (c.type === 'sparkplug-host') {
          const nodes = (c.details?.nodes ?? []) as { group: string; online: boolean; lastMessageAt?: number }[];
          for (const g of GROUPS) if (nodes.some((n) => n.group === g && n.online && n.lastMessageAt && now - n.lastMessageAt < freshMs)) out.get(`sparkplug/${g}`)!.push(i);
        }
      }
    }
    return out;
  }
  const allFlowing = (m: Map<string, number[]>) => [...m.values()].every((r) => r.length >= 1);
  /** For a failed wait: the last output of every gateway that does not answer (a crash says why there). */
  const deadGateways = async () => {
    const down = (await live()).filter(({ s }) => !s);
    return down.map(({ i }) => `\ngw-${i + 1} does not answer; its output:\n${gateways[i]!.output().slice(-2000)}`).join('');
  };
  /** For a failed wait: which units have no reader, or more than one. */
  const readersText = (m: Map<string, number[]>) => ({ none: [...m].filter(([, r]) => r.length === 0).map(([u]) => u), several: [...m].filter(([, r]) => r.length > 1).map(([u, r]) => `${u}: ${r.map((i) => `gw-${i + 1}`).join('+')}`) });
  /** Waits until `ok(readers)`, and says which units were off when it did not happen. */
  const untilReaders = async (what: string, ok: (m: Map<string, number[]>) => boolean, timeoutMs: number) => {
    let last = new Map<string, number[]>();
    try {
      return await eventually(what, async () => (last = await readers()), ok, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}; units ${JSON.stringify(readersText(last))}; owners ${JSON.stringify([...(await owners())])}${await deadGateways()}`);
    }
  };
  const owners = async () => {
    const s = (await live()).find((x) => x.s?.cluster?.etcd.reachable)?.s?.cluster;
    return s ? new Map(s.members.flatMap((m) => m.units.map((u) => [u, m.instance] as const))) : new Map<string, string>();
  };

  function gatewayYaml(i: number, etcdEndpoints: string[]) {
    return (httpPort: number) => {
      const endpoints = servers
        .map((s, k) => `    - { name: cnc-${k + 1}, url: ${s.url}, securityMode: None, securityPolicy: None, measurement: cnc, publishingInterval: 250, reconnect: { maxDelay: 2s }, browse: [{ root: "nsu=${CNC_NAMESPACE};s=${s.models[0]!.name}", tags: { machine: ${s.models[0]!.name} }, samplingInterval: 250 }] }`)
        .join('\n');
      return `instance: gw-${i}
http: { listen: 127.0.0.1:${httpPort} }
influx: { url: ${db.url}, database: cluster, flushInterval: 200ms }
buffer: { dir: ${dir.path}/gw-${i}/buffer }
mqtt:
  clients: [{ name: plant-broker, url: "${broker.url}", clientId: gw-${i} }]
sparkplug: { mode: active, hostId: gw-${i}, groups: [${GROUPS.join(', ')}], reorderTimeout: 500ms, rebirthTimeout: 2s }
opcua:
  pkiDir: ${dir.path}/gw-${i}/pki
  endpoints:
${endpoints}
cluster:
  etcd: { endpoints: [${etcdEndpoints.join(', ')}], prefix: /plantgate-test/ }
  leaseTtl: ${TTL_MS}ms
`;
    };
  }

  beforeAll(async () => {
    etcd = await startEtcdCluster({ dir: join(dir.path, 'etcd') });
    broker = await mosquitto();
    servers = cncFleet({ servers: ENDPOINTS, machinesPerServer: 1, basePort: await freePortRange(ENDPOINTS), pkiDir: join(dir.path, 'sim-pki'), security: 'none', intervalMs: 500, timeScale: 20 });
    await Promise.all(servers.map((s) => s.start()));
    for (const g of GROUPS) sparkplug.push(await startSparkplugFleet({ url: broker.url, group: g, nodes: 1, robots: 1, machines: 1, intervalMs: 500 }));
    sampler = setInterval(() => {
      const now = Date.now();
      watch.samples++;
      servers.forEach((s, k) => {
        const n = s.activeSessions();
        if (n < 2 && watch.overlapMs[k]! > 0) episodes.push(`cnc-${k + 1}: ${watch.overlapMs[k]} ms with ${phase}`);
        watch.overlapMs[k] = n >= 2 ? watch.overlapMs[k]! + 100 : 0;
        watch.longestOverlapMs[k] = Math.max(watch.longestOverlapMs[k]!, watch.overlapMs[k]!);
        if (n === 0) watch.darkSince[k] ??= now;
        else watch.darkSince[k] = undefined;
        if (watch.darkSince[k] !== undefined) watch.longestDarkMs[k] = Math.max(watch.longestDarkMs[k]!, now - watch.darkSince[k]!);
      });
    }, 100);
    // gw-3 reaches etcd through relays, so that it alone can be cut off
    for (const url of etcd.endpoints) {
      const relay = new TcpProxy(Number(new URL(url).port));
      await relay.start();
      relays.push(relay);
    }
    for (let i = 1; i <= 3; i++) {
      mkdirSync(join(dir.path, `gw-${i}`), { recursive: true });
      gateways.push(await gatewayProcess(join(dir.path, `gw-${i}`), gatewayYaml(i, i === 3 ? relays.map((r) => `http://127.0.0.1:${r.port}`) : etcd.endpoints)));
    }
    // started one after the other, as a rollout does; ready means: owns a unit (nothing is unowned)
    for (const g of gateways) await g.start(60_000);
  }, 180_000);

  afterAll(async () => {
    clearInterval(sampler);
    for (const g of gateways) await g.kill('SIGTERM').catch(() => undefined);
    for (const f of sparkplug) await f.stop().catch(() => undefined);
    for (const s of servers ?? []) await s.stop().catch(() => undefined);
    for (const r of relays) await r.stop();
    await etcd?.stop();
    await broker?.stop();
    broker?.remove();
    dir.remove();
  }, 120_000);

  it('reads every endpoint and group from exactly one gateway, spread 4/4/4, each server seeing one session', async () => {
    await untilReaders('every unit flowing from exactly one gateway', (m) => [...m.values()].every((x) => x.length === 1), 90_000);
    const spread = await eventually(
      'the endpoints spread evenly',
      async () => {
        const o = await owners();
        return { owned: o.size, perGateway: [1, 2, 3].map((i) => [...o].filter(([u, m]) => m === `gw-${i}` && u.startsWith('opcua/')).length) };
      },
      (x) => x.owned === UNITS.length && x.perGateway.every((n) => Math.abs(n - ENDPOINTS / 3) <= 1),
      30_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}${await deadGateways()}`);
    });
    await untilReaders('every unit flowing from exactly one gateway, spread', (m) => [...m.values()].every((x) => x.length === 1), 30_000);
    console.log(`cluster: endpoints per gateway ${spread.perGateway.join('/')}`);
    expect(servers.map((s) => s.activeSessions())).toEqual(new Array(ENDPOINTS).fill(1));
    const st = (await status(gateways[0]!))!.cluster!;
    expect(st.members.map((m) => m.instance)).toEqual(['gw-1', 'gw-2', 'gw-3']);
    expect(st.lease.state).toBe('held');
    const metrics = await (await fetch(`${gateways[0]!.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^plantgate_cluster_handovers_total\{direction="acquired"\} [1-9]/m);
    expect(metrics).toMatch(/^plantgate_cluster_members 3$/m);
    // and on the page, in a real browser: the members and what each reads
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(gateways[0]!.httpUrl);
      await page.waitForSelector('#cl-members tr[data-member="gw-3"]', { timeout: 10_000 });
      expect(await page.textContent('#cl-summary')).toContain('gw-1: lease held · 3 member(s) · 16 unit(s), 0 unowned');
      expect(await page.textContent('#cl-members tr[data-member="gw-2"]')).toMatch(/opcua\/cnc-\d+/);
      expect(await page.textContent('#cl-handovers')).toMatch(/(acquired|released).*rebalance/);
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('takes over the units of a gateway killed with SIGKILL, and gives them back when it returns', async () => {
    phase = 'kill';
    const o = await owners();
    const victim = gateways[1]!;
    const its = [...o].filter(([, m]) => m === 'gw-2').map(([u]) => u);
    expect(its.length).toBeGreaterThan(0);
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    const r = await untilReaders('gw-2\'s units flowing from the others', (m) => its.every((u) => (m.get(u) ?? []).some((i) => i !== 1)), 60_000);
    const failoverMs = Date.now() - killedAt;
    // where the time went, as the survivors recorded it: since the kill, when they started each unit and how long that took
    const taken = (await live()).flatMap(({ s }) => (s?.cluster?.handovers ?? []).filter((h) => h.action === 'acquired' && h.at > killedAt && its.includes(h.unit)).map((h) => `${h.unit} at +${h.at - killedAt} ms (start ${h.durationMs} ms)`));
    console.log(`cluster: failover of ${its.length} units after SIGKILL in ${(failoverMs / 1000).toFixed(1)} s (leaseTtl ${TTL_MS / 1000} s): ${taken.join(', ')}`);
    expect(allFlowing(r)).toBe(true);
    // the lease runs out, then the next round claims and the session opens
    expect(failoverMs).toBeLessThan(TTL_MS + 8000);
    const handovers = (await status(gateways[0]!))!.cluster!.handovers.filter((h) => h.action === 'acquired' && h.reason === 'failover');
    expect(handovers.length).toBeGreaterThan(0);

    resetDark();
    await victim.start(60_000);
    await eventually(
      'units back on gw-2',
      async () => [...(await owners())].filter(([, m]) => m === 'gw-2').length,
      (n) => n >= Math.floor(UNITS.length / 3),
      60_000,
    );
    await untilReaders('every unit flowing after the rebalance', allFlowing, 30_000);
    // a unit moved by a rebalance is dark for one reconnect at most (stopped here, started there)
    console.log(`cluster: longest dark endpoint during the rebalance ${Math.max(...watch.longestDarkMs)} ms`);
    expect(Math.max(...watch.longestDarkMs)).toBeLessThan(5000);
  }, 180_000);

  it('one etcd member down changes nothing; all three down, the data keeps flowing, and ownership is one owner each when they return', async () => {
    phase = 'etcd';
    const before = await owners();
    await etcd.members[0]!.kill();
    await new Promise((r) => setTimeout(r, 2 * TTL_MS));
    expect(await owners()).toEqual(before);
    expect(allFlowing(await readers())).toBe(true);
    await etcd.members[0]!.start();

    for (const m of etcd.members) await m.kill();
    await new Promise((r) => setTimeout(r, 2.5 * TTL_MS));
    const during = await readers();
    expect(allFlowing(during)).toBe(true);
    const states = (await live()).map(({ s }) => s?.cluster?.lease.state);
    expect(states).toEqual(['etcd-down', 'etcd-down', 'etcd-down']);
    await Promise.all(etcd.members.map((m) => m.start()));
    await new Promise((r) => setTimeout(r, TTL_MS));
    await untilReaders('one reader per unit after etcd returned', (m) => [...m.values()].every((x) => x.length === 1), 3 * TTL_MS + 10_000);
    expect(servers.map((s) => s.activeSessions())).toEqual(new Array(ENDPOINTS).fill(1));
  }, 180_000);

  it('a gateway cut off from etcd gives its units up to the others, and rejoins when the cut heals', async () => {
    phase = 'cut';
    const o = await owners();
    const its = [...o].filter(([, m]) => m === 'gw-3').map(([u]) => u);
    expect(its.length).toBeGreaterThan(0);
    for (const r of relays) r.cut();
    await eventually('gw-3 cut off', async () => (await status(gateways[2]!))?.cluster?.lease.state, (s) => s === 'cut-off', 3 * TTL_MS + 5000);
    expect((await status(gateways[2]!))!.cluster!.units.owned).toEqual([]);
    const ready = await fetch(`${gateways[2]!.httpUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toContain('cut off from etcd');
    await untilReaders('gw-3\'s units flowing from gw-1 and gw-2', (m) => its.every((u) => (m.get(u) ?? []).length === 1 && !m.get(u)!.includes(2)), 3 * TTL_MS + 10_000);
    for (const r of relays) r.heal();
    await eventually('gw-3 owns units again', async () => (await status(gateways[2]!))?.cluster?.units.owned.length ?? 0, (n) => n >= Math.floor(UNITS.length / 3), 60_000);
    await untilReaders('every unit flowing from one gateway', (m) => [...m.values()].every((x) => x.length === 1), 30_000);
  }, 180_000);

  it('never had two sessions on a server for longer than one TTL, nor a Sparkplug seq gap from a hand-over', async () => {
    console.log(`cluster: longest overlap of two sessions on one server ${Math.max(...watch.longestOverlapMs)} ms over ${watch.samples} samples; episodes: ${episodes.join('; ') || 'none'}`);
    expect(Math.max(...watch.longestOverlapMs)).toBeLessThanOrEqual(TTL_MS);
    let gaps = 0;
    let rebirths = 0;
    for (const { s } of await live()) {
      const host = s?.components.find((c) => c.type === 'sparkplug-host');
      gaps += Number(host?.details?.gaps ?? 0);
      rebirths += Number(host?.details?.rebirthsSent ?? 0);
    }
    expect(gaps).toBe(0);
    // every hand-over of a group asked its node for a birth
    expect(rebirths).toBeGreaterThan(0);
    expect(sparkplug.reduce((n, f) => n + f.nodes[0]!.stats.rebirthRequests, 0)).toBeGreaterThan(0);
  }, 30_000);
});
