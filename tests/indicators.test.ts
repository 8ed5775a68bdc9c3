/**
 * Issue 5, done-when: starting and stopping simulated machines and robots moves each indicator by
 * exactly what the definitions say, devices leave the numerator once the window has passed, and
 * the values are written to InfluxDB (measurement `indicator`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndicatorValue } from '../src/indicators/engine.js';
import { startDeviceFleet, type DeviceFleet } from '../simulators/mqtt-devices.js';
import { startRobotFleet, type RobotFleet } from '../simulators/mqtt-robots.js';
import { testGateway } from './helpers/gateway.js';
import { targetsYaml } from './helpers/targets.js';
import { eventually, influxd, rows, tempDir } from './helpers/servers.js';

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
    keyProcesses: [{ id: p1, name: P1 }, { id: p2, name: P2 }]
    equipment:
      - { id: a-cnc-1, class: cnc, process: p1, source: { tags: { site: ent-a, machine: cnc-001 } } }
      - { id: a-cnc-2, class: cnc, process: p2, source: { tags: { site: ent-a, machine: cnc-002 } } }
      - { id: a-robot-1, class: robot, source: { clientId: sim-ent-a-robot-001 } }
      - { id: a-robot-2, class: robot, source: { clientId: sim-ent-a-robot-002 } }
  - id: ent-b
    name: B
    city: Dalian
    industry: C373
    equipmentManufacturing: true
    regulated: true
    employees: 1000
    keyProcesses: [{ id: p1, name: P1 }]
    equipment:
      - { id: b-cnc-1, class: cnc, process: p1, source: { tags: { site: ent-b, machine: cnc-001 } } }
`;

describe('indicators from live simulators', () => {
  let db: Awaited<ReturnType<typeof influxd>>;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  const dir = tempDir('ind');
  beforeAll(async () => {
    db = await influxd();
    writeFileSync(join(dir.path, 'registry.yaml'), REGISTRY);
    writeFileSync(join(dir.path, 'targets.yaml'), targetsYaml());
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: ind, flushInterval: 100ms }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes:
    - { topic: "factory/{site}/{line}/{machine}/telemetry", measurement: cnc }
    - { topic: "factory/{site}/{cell}/{robot}/robot", measurement: robot }
buffer: { dir: "\${DATA}/buffer" }
indicators: { registry: ${dir.path}/registry.yaml, targets: ${dir.path}/targets.yaml, window: 1500ms, publishInterval: 500ms }
`);
  });
  afterAll(async () => {
    await gw?.cleanup();
    await db?.stop();
    db?.remove();
    dir.remove();
  });

  const value = (indicator: string, scopeId = 'region'): IndicatorValue => gw.indicators!.compute().find((v) => v.indicator === indicator && v.scopeId === scopeId)!;
  const until = (what: string, indicator: string, scopeId: string, ok: (v: IndicatorValue) => boolean) => eventually(what, async () => value(indicator, scopeId), ok, 20_000);

  it('moves each indicator as machines and robots start and stop', async () => {
    const url = `mqtt://127.0.0.1:${gw.broker!.port}`;
    expect(value('nc_rate')).toMatchObject({ value: 0, denominator: 2 });
    expect(value('internet_access')).toMatchObject({ numerator: 0, denominator: 2 });

    const aMachines: DeviceFleet = await startDeviceFleet({ url, site: 'ent-a', devices: 2, intervalMs: 200, qos: 1 });
    await until('ent-a both processes covered', 'nc_rate', 'ent-a', (v) => v.numerator === 2);
    expect(value('nc_rate').value).toBe(0.5); // (1 + 0) / 2
    expect(value('nc_rate_pooled')).toMatchObject({ numerator: 2, denominator: 3 });
    expect(value('internet_access')).toMatchObject({ numerator: 1, denominator: 2, value: 0.5 });

    const robots: RobotFleet = await startRobotFleet({ url, site: 'ent-a', robots: 2, intervalMs: 200, disturbance: 0 });
    await until('2 robots reporting', 'robot_density', 'region', (v) => v.numerator === 2);
    expect(value('robot_density').value).toBe(10); // 2 / 2000 x 10,000
    await until('2 robots active', 'robot_density_active', 'region', (v) => v.numerator === 2);
    robots.setEmergencyStop(0, true);
    await until('emergency stop takes one out of the active count', 'robot_density_active', 'region', (v) => v.numerator === 1);
    expect(value('robot_density').numerator).toBe(2); // still reporting

    const bMachines = await startDeviceFleet({ url, site: 'ent-b', devices: 1, intervalMs: 200, qos: 1 });
    await until('ent-b covered', 'nc_rate', 'region', (v) => v.value === 1);
    expect(value('internet_access').value).toBe(1);

    await aMachines.stop();
    await until('ent-a machines leave once the window has passed', 'nc_rate', 'ent-a', (v) => v.numerator === 0);
    expect(value('nc_rate').value).toBe(0.5);
    expect(value('internet_access').value).toBe(1); // ent-a's robots still report

    await robots.stop();
    await until('robots leave', 'robot_density', 'region', (v) => v.numerator === 0);
    expect(value('internet_access')).toMatchObject({ numerator: 1, denominator: 2 });
    await bMachines.stop();
    await until('everything gone', 'internet_access', 'region', (v) => v.numerator === 0);
  });

  it('writes indicator values to InfluxDB and serves them at /api/indicators', async () => {
    const r = await eventually('indicator points', async () => rows(await db.query(`SELECT * FROM indicator WHERE "indicator" = 'nc_rate' AND scope = 'region'`, 'ind')), (x) => x.length > 2);
    expect(r[0]).toMatchObject({ kind: 'measured', scope_id: 'region', target: 0.7, window_s: 1.5 });
    const api = (await (await fetch(`http://127.0.0.1:${gw.http.port}/api/indicators`)).json()) as { values: IndicatorValue[]; window: number };
    expect(api.window).toBe(1500);
    expect(api.values.find((v) => v.indicator === 'rd_design_tools')).toMatchObject({ kind: 'declared' });
  });
});
