/**
 * Issue 17, done-when: fleet-wide indicators. The registry's devices are divided between three
 * gateways with `indicators.scope: fleet` in two ways, and in both the region, city and
 * enterprise values equal those of one gateway (scope local) that hears everything, on the same
 * traffic and window:
 *  - by enterprise: one gateway per plant, each with its own embedded broker;
 *  - at random: three gateways sharing one subscription on a real mosquitto.
 * A gateway stopped for good: its enterprise leaves the measured values once the window has
 * passed, not before. `plantgate indicators` (no sources) computes the same values from the
 * records alone.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDeviceFleet, type DeviceFleet } from '../simulators/mqtt-devices.js';
import { startRobotFleet, type RobotFleet } from '../simulators/mqtt-robots.js';
import type { IndicatorValue } from '../src/indicators/engine.js';
import { PLANTGATE_BIN } from '../tools/servers/gateway-process.js';
import { freePortRange, launch } from '../tools/servers/process.js';
import { testGateway } from './helpers/gateway.js';
import { targetsYaml } from './helpers/targets.js';
import { eventually, mosquitto, tempDir, useInfluxd, type InfluxdHandle } from './helpers/servers.js';

const REGISTRY = `
region: { name: Test }
enterprises:
  - id: ent-a
    name: A
    city: Shenyang
    industry: C342
    equipmentManufacturing: true
    regulated: true
    employees: 1000
    keyProcesses: [{ id: p1, name: P1 }, { id: p2, name: P2 }, { id: p3, name: P3 }]
    equipment:
      - { id: a-cnc-1, class: cnc, process: p1, source: { tags: { site: ent-a, machine: cnc-001 } } }
      - { id: a-cnc-2, class: cnc, process: p2, source: { tags: { site: ent-a, machine: cnc-002 } } }
      - { id: a-cnc-3, class: cnc, process: p3, source: { tags: { site: ent-a, machine: cnc-003 } } }
      - { id: a-robot-1, class: robot, source: { tags: { site: ent-a, robot: robot-001 } } }
      - { id: a-robot-2, class: robot, source: { tags: { site: ent-a, robot: robot-002 } } }
  - id: ent-b
    name: B
    city: Dalian
    industry: C373
    equipmentManufacturing: true
    regulated: true
    employees: 500
    keyProcesses: [{ id: p1, name: P1 }]
    equipment:
      - { id: b-cnc-1, class: cnc, process: p1, source: { tags: { site: ent-b, machine: cnc-001 } } }
      - { id: b-robot-1, class: robot, source: { tags: { site: ent-b, robot: robot-001 } } }
  - id: ent-c
    name: C
    city: Dalian
    industry: C373
    equipmentManufacturing: true
    regulated: true
    employees: 800
    keyProcesses: [{ id: p1, name: P1 }, { id: p2, name: P2 }]
    equipment:
      - { id: c-cnc-1, class: cnc, process: p1, source: { tags: { site: ent-c, machine: cnc-001 } } }
      - { id: c-cnc-2, class: cnc, process: p2, source: { tags: { site: ent-c, machine: cnc-002 } } }
      - { id: c-robot-1, class: robot, source: { tags: { site: ent-c, robot: robot-001 } } }
  - id: ent-d
    name: D (not connected)
    city: Dalian
    industry: C373
    equipmentManufacturing: true
    regulated: true
    employees: 300
    keyProcesses: [{ id: p1, name: P1 }]
    equipment:
      - { id: d-cnc-1, class: cnc, process: p1, source: { tags: { site: ent-d, machine: cnc-001 } } }
`;
/** What each plant runs: machines cnc-001.. and robots robot-001.. (ent-a's cnc-003 stays dark). */
const PLANTS = { 'ent-a': { machines: 2, robots: 2 }, 'ent-b': { machines: 1, robots: 1 }, 'ent-c': { machines: 2, robots: 1 } } as const;
const WINDOW = 3000;

type Gw = Awaited<ReturnType<typeof testGateway>>;

/** The measured values, by indicator and scope, as the comparison sees them. */
function measured(values: IndicatorValue[]): Record<string, { value: number | null; numerator: number; denominator: number }> {
  return Object.fromEntries(values.filter((v) => v.kind === 'measured').map((v) => [`${v.indicator} ${v.scope} ${v.scopeId}`, { value: v.value, numerator: v.numerator, denominator: v.denominator }]));
}

describe('fleet-wide indicators', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  const dir = tempDir('fleet-ind');
  const sims: (DeviceFleet | RobotFleet)[] = [];
  const gateways: Gw[] = [];
  let broker: Awaited<ReturnType<typeof mosquitto>>;

  const gatewayYaml = (opts: { instance: string; database: string; scope: 'local' | 'fleet'; mqtt: string }) => `
instance: ${opts.instance}
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: ${opts.database}, flushInterval: 100ms }
buffer: { dir: "\${DATA}/buffer" }
mqtt:
${opts.mqtt}
  routes:
    - { topic: "factory/{site}/{line}/{machine}/telemetry", measurement: cnc }
    - { topic: "factory/{site}/{cell}/{robot}/robot", measurement: robot }
indicators: { registry: ${dir.path}/registry.yaml, targets: ${dir.path}/targets.yaml, window: ${WINDOW}ms, publishInterval: 1s, scope: ${opts.scope}, presenceInterval: 300ms }
`;
  async function plant(url: string, site: keyof typeof PLANTS): Promise<(DeviceFleet | RobotFleet)[]> {
    const started = [await startDeviceFleet({ url, site, devices: PLANTS[site].machines, intervalMs: 200, qos: 1 }), await startRobotFleet({ url, site, robots: PLANTS[site].robots, intervalMs: 200, disturbance: 0 })];
    sims.push(...started);
    return started;
  }
  async function stopAll() {
    await Promise.all(sims.splice(0).map((s) => s.stop()));
    await Promise.all(gateways.splice(0).map((g) => g.cleanup()));
  }
  /** Waits until the fleet's values equal the reference's (the fleet reads records a moment behind). */
  async function sameAsReference(fleet: Gw, reference: Gw) {
    const both = await eventually(
      'fleet values equal to the one-gateway reference',
      async () => ({ fleet: measured(fleet.indicators!.compute()), ref: measured(reference.indicators!.compute()) }),
      (x) => JSON.stringify(x.fleet) === JSON.stringify(x.ref) && (x.ref['internet_access region region']?.numerator ?? 0) === 3,
      30_000,
    );
    expect(both.fleet).toEqual(both.ref);
    // something to compare: 3 of 4 regulated enterprises connected, 5 of 7 key processes covered
    expect(both.ref['internet_access region region']).toEqual({ value: 0.75, numerator: 3, denominator: 4 });
    expect(both.ref['nc_rate_pooled region region']).toMatchObject({ numerator: 5, denominator: 7 });
    expect(both.ref['robots_reporting region region']).toMatchObject({ numerator: 4 });
  }

  beforeAll(async () => {
    writeFileSync(join(dir.path, 'registry.yaml'), REGISTRY);
    writeFileSync(join(dir.path, 'targets.yaml'), targetsYaml());
    broker = await mosquitto();
  }, 60_000);
  afterAll(async () => {
    await stopAll();
    await broker?.stop();
    broker?.remove();
    dir.remove();
  }, 60_000);

  it('by enterprise, one gateway per plant: the same values as one gateway for everything; a plant whose gateway stopped leaves after the window', async () => {
    const reference = await testGateway(gatewayYaml({ instance: 'reference', database: 'ref_a', scope: 'local', mqtt: '  broker: { listen: 127.0.0.1:0, allowAnonymous: true }' }));
    gateways.push(reference);
    const members: Record<string, Gw> = {};
    const own: Record<string, (DeviceFleet | RobotFleet)[]> = {};
    for (const site of Object.keys(PLANTS) as (keyof typeof PLANTS)[]) {
      const gw = await testGateway(gatewayYaml({ instance: `gw-${site}`, database: 'split_a', scope: 'fleet', mqtt: '  broker: { listen: 127.0.0.1:0, allowAnonymous: true }' }));
      gateways.push(gw);
      members[site] = gw;
      // the same plant twice: into its own gateway, and into the reference
      own[site] = await plant(`mqtt://127.0.0.1:${gw.broker!.port}`, site);
      await plant(`mqtt://127.0.0.1:${reference.broker!.port}`, site);
    }
    await sameAsReference(members['ent-a']!, reference);
    // any member computes the same
    expect(measured(members['ent-b']!.indicators!.compute())).toEqual(measured(members['ent-a']!.indicators!.compute()));
    const status = (await (await fetch(`http://127.0.0.1:${members['ent-a']!.http.port}/api/indicators`)).json()) as { scope: string; fleet: { contributors: string[] } };
    expect(status.scope).toBe('fleet');
    expect(status.fleet.contributors).toEqual(['gw-ent-a', 'gw-ent-b', 'gw-ent-c']);

    // plant C goes dark for the fleet: its gateway and the machines on its broker stop (the
    // reference still hears its twin machines)
    const c = members['ent-c']!;
    for (const sim of own['ent-c']!) {
      await sim.stop();
      sims.splice(sims.indexOf(sim), 1);
    }
    await c.cleanup();
    gateways.splice(gateways.indexOf(c), 1);
    const stoppedAt = Date.now();
    const accessC = () => members['ent-a']!.indicators!.compute().find((v) => v.indicator === 'internet_access' && v.scopeId === 'ent-c')!.value;
    await new Promise((r) => setTimeout(r, WINDOW / 2));
    expect(accessC()).toBe(1); // not before the window has passed
    await eventually('plant C out of the fleet values', async () => accessC(), (v) => v === 0, 15_000);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(WINDOW - 400);
    const region = members['ent-a']!.indicators!.compute().find((v) => v.indicator === 'internet_access' && v.scope === 'region')!;
    expect(region).toMatchObject({ numerator: 2, denominator: 4 });

    // plantgate indicators: the same values from the records alone, as a process with no sources
    const cfg = join(dir.path, 'indicators-only.yaml');
    writeFileSync(cfg, `instance: reader\ninflux: { url: ${db.url}, database: split_a }\nbuffer: { dir: ${dir.path}/reader-buffer }\nindicators: { registry: ${dir.path}/registry.yaml, targets: ${dir.path}/targets.yaml, window: ${WINDOW}ms, scope: fleet }\n`);
    const { stdout } = await promisify(execFile)(process.execPath, [PLANTGATE_BIN, 'indicators', '--config', cfg, '--json']);
    const printed = JSON.parse(stdout) as { scope: string; fleet: { contributors: string[] }; values: IndicatorValue[] };
    expect(printed.scope).toBe('fleet');
    expect(printed.fleet.contributors).toEqual(['gw-ent-a', 'gw-ent-b']);
    expect(printed.values.find((v) => v.indicator === 'internet_access' && v.scope === 'region')).toMatchObject({ numerator: 2, denominator: 4 });
    await stopAll();
  }, 120_000);

  it('at random, three gateways sharing one subscription: the same values as one gateway for everything', async () => {
    const reference = await testGateway(gatewayYaml({ instance: 'reference', database: 'ref_b', scope: 'local', mqtt: `  clients: [{ name: plant-broker, url: "${broker.url}", clientId: ref-b }]` }));
    gateways.push(reference);
    const members: Gw[] = [];
    for (let i = 1; i <= 3; i++) {
      const gw = await testGateway(gatewayYaml({ instance: `gw-${i}`, database: 'split_b', scope: 'fleet', mqtt: `  clients: [{ name: plant-broker, url: "${broker.url}", shareGroup: fleet-b }]` }));
      gateways.push(gw);
      members.push(gw);
    }
    for (const site of Object.keys(PLANTS) as (keyof typeof PLANTS)[]) await plant(broker.url, site);
    await sameAsReference(members[0]!, reference);
    // the devices really were divided: each member heard only part of them
    const heard = members.map((g) => g.indicators!.status().counters.received);
    expect(heard.every((n) => n > 0)).toBe(true);
    await stopAll();
  }, 120_000);

  it('plantgate demo --fleet runs three gateways behind a mosquitto, with fleet indicators on every dashboard', async () => {
    const base = await freePortRange(3);
    const demo = launch(process.execPath, [PLANTGATE_BIN, 'demo', '--fleet', '--interval', '300'], { ...process.env, INFLUX_URL: db.url, PLANTGATE_DATA: join(dir.path, 'demo'), PLANTGATE_FLEET_HTTP_PORT: String(base), PLANTGATE_LOG: 'warn' });
    try {
      for (let i = 0; i < 3; i++) {
        const url = `http://127.0.0.1:${base + i}/api/indicators`;
        // a demo that exited ends the wait at once, and its output says why
        const ind = await eventually(
          `dashboard ${i + 1} with three contributors`,
          async () => (demo.proc.exitCode !== null ? { exited: true } : ((await (await fetch(url).catch(() => undefined))?.json().catch(() => undefined)) as { scope: string; fleet?: { contributors: string[] } } | undefined)),
          (x) => 'exited' in x! || x?.fleet?.contributors.length === 3,
          60_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\nplantgate demo --fleet output:\n${demo.output()}`);
        });
        if ('exited' in ind!) throw new Error(`plantgate demo --fleet exited with ${demo.proc.exitCode}:\n${demo.output()}`);
        expect(ind!.scope).toBe('fleet');
        expect(ind!.fleet!.contributors).toEqual(['gw-1', 'gw-2', 'gw-3']);
      }
    } finally {
      await demo.stop('SIGTERM');
    }
    expect(demo.proc.exitCode, demo.output()).toBe(0);
  }, 120_000);
});
