/**
 * Issue 19, no value lost across a cut the session survives, against a real node-opcua server
 * and a real influxd: the PLC simulator's Diagnostics.Sequence goes up by one every 100 ms, the
 * gateway reads it through a TCP relay, and the relay is cut ten times for 3-5 s. Every value
 * the server produced meanwhile must be stored, counted against the server's own sequence. A
 * server restart (the session is gone) is recorded as a gap with its start and end instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLC_NAMESPACE, plcFleet, type PlcMachine } from '../simulators/opcua-plc.js';
import type { SimServer } from '../simulators/opcua-server.js';
import { freePort } from '../tools/servers/process.js';
import type { OpcuaEndpointSource } from '../src/sources/opcua/opcua-source.js';
import { onPage } from './helpers/browser.js';
import { testGateway } from './helpers/gateway.js';
import { eventually, rows, tempDir, useInfluxd, type InfluxdHandle } from './helpers/servers.js';
import { TcpProxy } from './helpers/tcp-proxy.js';

interface Details {
  connected: boolean;
  backfills: number;
  backfilledValues: number;
  outages: number;
  sessionsResumed: number;
  republished: number;
  gaps: number;
  recentGaps: Array<{ start: number; end: number; reason: string }>;
}

/**
 * A PLC simulator behind a TCP relay, read by a gateway through the relay, and a real influxd:
 * the rig of every test here. samplingInterval 0 on the counter: the server reports every change
 * (a sampling timer as fast as the counter misses a value now and then on a busy host, which is
 * no loss of the cut's); queueSize 100 at 10 changes a second: the server holds 10 s of values,
 * more than a 5 s cut.
 */
function plcBehindRelay(o: { endpoint: string; database: string; historize?: boolean; nodes?: string }) {
  const rig = {} as { db: InfluxdHandle; sim: SimServer; proxy: TcpProxy; gw: Awaited<ReturnType<typeof testGateway>> };
  useInfluxd((d) => (rig.db = d));
  const pki = tempDir(`opcua-${o.database}`);
  beforeAll(async () => {
    rig.sim = plcFleet({ servers: 1, plcsPerServer: 1, basePort: await freePort(), pkiDir: pki.path, security: 'none', intervalMs: 100, historize: o.historize })[0]!;
    await rig.sim.start();
    rig.proxy = new TcpProxy(rig.sim.options.port);
    await rig.proxy.start();
    rig.gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${rig.db.url}, database: ${o.database}, flushInterval: 200ms }
buffer: { dir: "\${DATA}/buffer" }
opcua:
  pkiDir: ${pki.path}/gw
  endpoints:
    - name: ${o.endpoint}
      url: opc.tcp://127.0.0.1:${rig.proxy.port}
      measurement: plc
      qualityTag: ""
      publishingInterval: 200
      samplingInterval: 100
      queueSize: 100
      sessionTimeout: 30s
      reconnect: { initialDelay: 200ms, maxDelay: 1s }
      nodes:
        - { nodeId: "nsu=${PLC_NAMESPACE};s=PLC_01.Diagnostics.Sequence", field: seq, samplingInterval: 0 }
${o.nodes ?? ''}`);
  }, 60_000);
  afterAll(async () => {
    await rig.gw?.cleanup();
    await rig.proxy?.stop();
    await rig.sim?.stop();
    pki.remove();
  }, 60_000);
  return Object.assign(rig, {
    plc: () => rig.sim.models[0] as PlcMachine,
    details: () => (rig.gw.pipeline.sources.find((s) => s.name === o.endpoint)! as OpcuaEndpointSource).status().details as unknown as Details,
  });
}

describe('OPC UA: no value lost when the connection drops', () => {
  const rig = plcBehindRelay({ endpoint: 'plc', database: 'gapless' });
  const { plc, details } = rig;

  /** Stored sequence values from `from` on, and which of from..to are missing. */
  async function missing(from: number, to: number): Promise<{ stored: number; missing: number[] }> {
    const got = new Set(rows(await rig.db.query(`SELECT seq FROM plc WHERE seq >= ${from} AND seq <= ${to}`, 'gapless')).map((r) => Number(r.seq)));
    const lost: number[] = [];
    for (let v = from; v <= to; v++) if (!got.has(v)) lost.push(v);
    return { stored: got.size, missing: lost };
  }

  it('stores every value of a counter across ten cuts of 3-5 s that the session survives', async () => {
    await eventually('values flowing', async () => rows(await rig.db.query('SELECT count(seq) FROM plc', 'gapless'))[0]?.count ?? 0, (n) => Number(n) > 5, 20_000);
    const first = plc().sequence;
    const before = details();
    // the server's sequence at each cut and when its session was back, to place a loss if one shows
    const windows: string[] = [];
    for (let i = 0; i < 10; i++) {
      const ms = 3000 + ((i * 733) % 2001);
      const atCut = plc().sequence;
      rig.proxy.cut(ms);
      await eventually('cut noticed', async () => details().outages, (n) => n === before.outages + i + 1, 20_000);
      await eventually('session resumed', async () => details(), (d) => d.connected && d.sessionsResumed > before.sessionsResumed + i, 30_000);
      windows.push(`${atCut}..${plc().sequence}`);
    }
    const last = plc().sequence;
    // the values of the last seconds reach influxd
    await eventually('the last value stored', async () => (await missing(last, last)).missing.length, (n) => n === 0, 20_000);
    const r = await missing(first, last);
    const d = details();
    console.info(`10 cuts: server sequence ${first}..${last} (${last - first + 1} values), ${r.stored} stored, ${r.missing.length} missing${r.missing.length ? ` (${r.missing.join(', ')}; cuts at ${windows.join(', ')})` : ''}; ${d.republished} messages republished, ${d.gaps} gaps`);
    expect(r.missing).toEqual([]);
    // a cut can also fall on a resume in progress, which is resumed again
    expect(d.sessionsResumed).toBeGreaterThanOrEqual(before.sessionsResumed + 10);
    expect(d.gaps).toBe(before.gaps);
    // one session on the server: the resumed one, never a pile of orphans
    await eventually('one session on the server', async () => rig.sim.activeSessions(), (n) => n === 1, 10_000);
  }, 240_000);

  it('records a 20 s outage across a server restart as a gap with its start and end', async () => {
    const before = details();
    const cutAt = Date.now();
    rig.proxy.cut();
    await rig.sim.restart(0);
    await new Promise((r) => setTimeout(r, 20_000));
    rig.proxy.heal();
    await eventually('gap recorded', async () => details().gaps, (n) => n === before.gaps + 1, 30_000);
    const gap = details().recentGaps.at(-1)!;
    // the gap runs from the last answer before the cut to the new subscription after it
    expect(gap.start).toBeGreaterThan(cutAt - 2000);
    expect(gap.start).toBeLessThanOrEqual(cutAt + 1000);
    expect(gap.end - gap.start).toBeGreaterThan(19_000);
    expect(gap.reason).toMatch(/connection/);
    // the simulator keeps no history here: the backfill had nothing to read, and says so
    expect(gap.reason).toMatch(/1 of 1 nodes have no history on the server/);
    const point = await eventually(
      'gap point stored',
      async () => rows(await rig.db.query(`SELECT start_ms, end_ms, duration_s, reason FROM plantgate_gaps WHERE endpoint = 'plc'`, 'gapless')),
      (r) => r.length === 1,
      20_000,
    );
    expect(Number(point[0]!.start_ms)).toBe(gap.start);
    expect(Number(point[0]!.end_ms)).toBe(gap.end);
    expect(Number(point[0]!.duration_s)).toBeCloseTo((gap.end - gap.start) / 1000, 2);
    // and on the status page, in a real browser
    await onPage(`http://127.0.0.1:${rig.gw.http.port}`, async (page) => {
      await expect.poll(() => page.locator('#problems').textContent(), { timeout: 10_000 }).toMatch(/plc: values lost from .* to .*no history on the server/);
      await expect.poll(() => page.locator('#sources tr[data-source="plc"]').textContent()).toMatch(/1 gap\(s\)/);
    });
  }, 120_000);
});

describe('OPC UA: a gap after a server restart is filled from the server\'s history', () => {
  const rig = plcBehindRelay({ endpoint: 'plc-hist', database: 'backfill', historize: true, nodes: `        - { nodeId: "nsu=${PLC_NAMESPACE};s=PLC_01.Tank.Level", field: level }\n` });
  const { plc, details } = rig;

  it('stores every value of the 20 s outage with a server restart in it, read back with HistoryRead', async () => {
    await eventually('values flowing', async () => rows(await rig.db.query('SELECT count(seq) FROM plc', 'backfill'))[0]?.count ?? 0, (n) => Number(n) > 5, 20_000);
    const first = plc().sequence;
    const before = details();
    rig.proxy.cut();
    await new Promise((r) => setTimeout(r, 10_000));
    await rig.sim.restart(0); // the session is gone with it: nothing to resume, the history is all there is
    await new Promise((r) => setTimeout(r, 10_000));
    rig.proxy.heal();
    await eventually('gap filled', async () => details(), (d) => d.backfills === before.backfills + 1, 30_000);
    const last = plc().sequence;
    await eventually('the last value stored', async () => rows(await rig.db.query(`SELECT count(seq) FROM plc WHERE seq = ${last}`, 'backfill')).length, (n) => n === 1, 20_000);
    const got = new Set(rows(await rig.db.query(`SELECT seq FROM plc WHERE seq >= ${first} AND seq <= ${last}`, 'backfill')).map((r) => Number(r.seq)));
    const missing: number[] = [];
    for (let v = first; v <= last; v++) if (!got.has(v)) missing.push(v);
    const d = details();
    console.info(`backfill: server sequence ${first}..${last} (${last - first + 1} values), ${got.size} stored, ${missing.length} missing; ${d.backfilledValues - before.backfilledValues} values read back, ${d.gaps} gaps`);
    expect(missing).toEqual([]);
    expect(d.gaps).toBe(before.gaps);
  }, 120_000);
});

