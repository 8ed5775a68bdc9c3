/**
 * The indicator arithmetic on a registry small enough to check by hand (docs/indicators.md).
 */
import { describe, expect, it } from 'vitest';
import type { Point } from '../core/point.js';
import { indicatorsSchema } from './config.js';
import { IndicatorEngine, type IndicatorValue } from './engine.js';
import { registrySchema, targetsSchema } from './registry.js';

const registry = registrySchema.parse({
  region: { name: 'Test region' },
  enterprises: [
    {
      id: 'e1', name: 'E1', city: 'Shenyang', industry: 'C342', equipmentManufacturing: true, regulated: true, employees: 1000,
      declared: { keyLinksDigitalised: true, rdDesignTools: true, networkedCollaboration: false },
      keyProcesses: [{ id: 'p1', name: 'P1' }, { id: 'p2', name: 'P2' }, { id: 'p3', name: 'P3' }, { id: 'p4', name: 'P4' }],
      equipment: [
        { id: 'c1', class: 'cnc', process: 'p1', source: { tags: { machine: 'c1' } } },
        { id: 'c2', class: 'cnc', process: 'p1', source: { tags: { machine: 'c2' } } },
        { id: 'c3', class: 'cnc', process: 'p2', source: { tags: { machine: 'c3' } } },
        { id: 'plc1', class: 'plc', process: 'p3', source: { clientId: 'plc-1' } },
        { id: 'c4', class: 'cnc', process: 'p4' },
        { id: 'r1', class: 'robot', source: { clientId: 'r1' } },
        { id: 'r2', class: 'robot', source: { clientId: 'r2' } },
        { id: 'r3', class: 'robot' },
      ],
    },
    {
      id: 'e2', name: 'E2', city: 'Dalian', industry: 'C373', equipmentManufacturing: true, regulated: true, employees: 500,
      keyProcesses: [{ id: 'q1', name: 'Q1' }, { id: 'q2', name: 'Q2' }, { id: 'q3', name: 'Q3' }],
      equipment: [
        { id: 'd1', class: 'cnc', process: 'q1', source: { topic: 'f/d1' } },
        { id: 'r4', class: 'robot', source: { tags: { robot: 'r4' } } },
      ],
    },
    { id: 'e3', name: 'E3', city: 'Dalian', industry: 'C261', equipmentManufacturing: false, regulated: true, employees: 300, equipment: [{ id: 'x1', class: 'other', source: { tags: { machine: 'x1' } } }] },
    { id: 'e4', name: 'E4', city: 'Anshan', industry: 'C311', equipmentManufacturing: false, regulated: true, employees: 200 },
    { id: 'e5', name: 'E5', city: 'Anshan', industry: 'C311', equipmentManufacturing: false, regulated: false, employees: 100, equipment: [{ id: 'o1', class: 'other', source: { clientId: 'o1' } }] },
  ],
});
const targets = targetsSchema.parse({
  source: 'test', year: 2023,
  targets: { ncRateKeyProcesses: 0.7, robotsPer10k: 160, industrialInternetAccess: 0.56, keyLinksDigitalised: 0.43, rdDesignTools: 0.84, networkedCollaboration: 0.35 },
});
const T = 1_800_000_000_000;

function pt(receivedAt: number, extra: Partial<Point>): Point {
  return { measurement: 'm', tags: {}, fields: { v: 1 }, time: receivedAt, receivedAt, quality: 'good', source: 'mqtt', ...extra };
}

function engine(): IndicatorEngine {
  const e = new IndicatorEngine('indicators', indicatorsSchema.parse({ registry: 'x', targets: 'y', window: 60_000 }), registry, targets);
  e.observe([
    pt(T - 10_000, { tags: { machine: 'c1' } }),
    pt(T - 5_000, { tags: { machine: 'c2' }, quality: 'bad' }), // bad quality is not valid data
    pt(T - 120_000, { tags: { machine: 'c3' } }), // outside the window
    pt(T - 1_000, { origin: { clientId: 'plc-1' } }),
    pt(T - 1_000, { origin: { clientId: 'r1' }, fields: { mode: 'AUTO', protective_stop: false, emergency_stop: false } }),
    pt(T - 1_000, { origin: { clientId: 'r2' }, fields: { mode: 'AUTO', emergency_stop: true } }),
    pt(T - 30_000, { origin: { topic: 'f/d1' } }),
    pt(T - 2_000, { tags: { machine: 'x1' } }),
    pt(T - 2_000, { origin: { clientId: 'o1' } }),
    pt(T - 2_000, { origin: { clientId: 'ghost' } }),
  ]);
  return e;
}

function get(values: IndicatorValue[], indicator: string, scopeId = 'region'): IndicatorValue {
  const v = values.find((x) => x.indicator === indicator && x.scopeId === scopeId);
  if (!v) throw new Error(`no ${indicator} for ${scopeId}`);
  return v;
}

describe('indicator arithmetic', () => {
  const values = engine().compute(T);

  it('NC rate: per enterprise covered key processes / key processes; region the unweighted mean, pooled beside it', () => {
    expect(get(values, 'nc_rate', 'e1')).toMatchObject({ numerator: 2, denominator: 4, value: 0.5 }); // p1 (c1), p3 (plc1)
    expect(get(values, 'nc_rate', 'e2')).toMatchObject({ numerator: 1, denominator: 3 });
    const region = get(values, 'nc_rate');
    expect(region.value).toBeCloseTo((0.5 + 1 / 3) / 2, 12);
    expect(region).toMatchObject({ denominator: 2, kind: 'measured', target: 0.7, windowMs: 60_000 });
    expect(region.gap).toBeCloseTo((0.5 + 1 / 3) / 2 - 0.7, 12);
    expect(get(values, 'nc_rate_pooled')).toMatchObject({ numerator: 3, denominator: 7 });
    expect(get(values, 'nc_rate', 'Dalian').value).toBeCloseTo(1 / 3, 12); // e3 is not equipment manufacturing
  });

  it('robots: reporting, active and installed per 10,000 employees', () => {
    expect(get(values, 'robot_density')).toMatchObject({ numerator: 2, denominator: 2100 });
    expect(get(values, 'robot_density').value).toBeCloseTo((2 / 2100) * 10_000, 9);
    expect(get(values, 'robot_density_active').numerator).toBe(1); // r2 has its emergency stop latched
    expect(get(values, 'robot_density_installed')).toMatchObject({ numerator: 4, kind: 'registry' });
    expect(get(values, 'robots_reporting', 'e1')).toMatchObject({ value: 2, denominator: 3 });
    expect(get(values, 'robot_density', 'e2').value).toBe(0);
  });

  it('industrial-internet access over all regulated enterprises of the registry', () => {
    expect(get(values, 'internet_access')).toMatchObject({ numerator: 3, denominator: 4, value: 0.75, target: 0.56 }); // e4 has nothing, e5 is not regulated
    expect(get(values, 'internet_access', 'Dalian')).toMatchObject({ numerator: 2, denominator: 2 });
    expect(get(values, 'internet_access', 'Anshan')).toMatchObject({ numerator: 0, denominator: 1 });
  });

  it('networked share of digital equipment', () => {
    expect(get(values, 'networked_share')).toMatchObject({ numerator: 7, denominator: 12 });
  });

  it('declared-only indicators are labelled declared', () => {
    expect(get(values, 'key_links_digitalised')).toMatchObject({ kind: 'declared', numerator: 1, denominator: 4, value: 0.25, target: 0.43 });
    expect(get(values, 'networked_collaboration')).toMatchObject({ kind: 'declared', numerator: 0, value: 0 });
  });

  it('a device that stopped reporting leaves the numerator once the window has passed it', () => {
    const e = engine();
    expect(get(e.compute(T + 49_000), 'nc_rate', 'e1').numerator).toBe(2);
    expect(get(e.compute(T + 51_000), 'nc_rate', 'e1').numerator).toBe(1); // c1 (T-10 s) has left
    expect(get(e.compute(T + 61_000), 'nc_rate', 'e1').numerator).toBe(0);
    expect(get(e.compute(T + 61_000), 'internet_access').numerator).toBe(0);
  });

  it('lists telemetry from devices not in the registry as unregistered', () => {
    const u = engine().snapshot(T).unregistered;
    expect(u.map((x) => x.key)).toEqual(['mqtt client ghost']);
  });

  it('names unregistered devices as an operator looks for them, not as raw JSON', () => {
    const e = engine();
    e.observe([
      pt(T - 500, { measurement: 'sparkplug', tags: { group: 'as', edge_node: 'edge-01', device: 'robot-009' } }),
      pt(T - 500, { measurement: 'plc', tags: { site: 'x', plc: 'P9' } }),
    ]);
    const keys = e.snapshot(T).unregistered.map((x) => x.key);
    expect(keys).toEqual(expect.arrayContaining(['sparkplug as/edge-01/robot-009', 'plc site=x,plc=P9']));
    expect(keys.join()).not.toMatch(/[{}"]/);
  });

  it('refuses a registry with a dangling process reference, naming it', () => {
    const bad = registrySchema.safeParse({ region: { name: 'x' }, enterprises: [{ id: 'a', name: 'A', city: 'c', industry: 'i', equipmentManufacturing: true, regulated: true, employees: 1, equipment: [{ id: 'q', class: 'cnc', process: 'nope' }] }] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]).toMatchObject({ path: ['enterprises', 0, 'equipment', 0, 'process'] });
    expect(bad.error!.issues[0]!.message).toMatch(/no key process "nope"/);
  });
});
