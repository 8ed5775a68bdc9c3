import pino from 'pino';
import { DataType, DataValue, StatusCodes, Variant } from 'node-opcua';
import { describe, expect, it } from 'vitest';
import { endpointSchema } from './config.js';
import { type Item, MonitoredItems } from './items.js';
import { pairs, valuesToPoints } from './mapping.js';

describe('OPC UA values to points', () => {
  it('counts a value whose quality the endpoint does not accept as dropped with its quality, and writes the others', () => {
    const c = endpointSchema.parse({ name: 'e', url: 'opc.tcp://127.0.0.1:4840', accept: ['good'], nodes: [{ nodeId: 'ns=1;s=a', field: 'a' }] });
    const items = new MonitoredItems(c, 'e', pino({ level: 'silent' }));
    const item = { entry: 'node', nodeText: 'ns=1;s=a', field: 'a', measurement: 'm', tags: {}, seriesKey: 'm', monitoring: { samplingInterval: 1000, queueSize: 1, discardOldest: true }, status: 'pending', statusCode: '', since: 0, values: 0, lastTime: 0 } as Item;
    const dv = (value: number, status: typeof StatusCodes.Good, t: number) => new DataValue({ value: new Variant({ dataType: DataType.Double, value }), statusCode: status, sourceTimestamp: new Date(t) });
    const dropped: string[] = [];
    const r = valuesToPoints(pairs([[item, dv(1, StatusCodes.Good, 1000)], [item, dv(2, StatusCodes.UncertainLastUsableValue, 2000)], [item, dv(3, StatusCodes.BadSensorFailure, 3000)]]), c, 'e', items, { drop: (reason) => dropped.push(reason), reject: () => expect.unreachable() });
    expect(r.points.map((p) => p.fields)).toEqual([{ a: 1 }]);
    expect(dropped).toEqual(['quality_uncertain', 'quality_bad']);
    expect(r.values).toBe(3);
  });

  it('merges the values of one series and time into one point even when other series come between, and refuses what cannot be a field', () => {
    const c = endpointSchema.parse({ name: 'e', url: 'opc.tcp://127.0.0.1:4840', accept: ['good', 'uncertain'], nodes: [{ nodeId: 'ns=1;s=a', field: 'a' }] });
    const items = new MonitoredItems(c, 'e', pino({ level: 'silent' }));
    const series = (machine: string) => ({ measurement: 'm', tags: { machine }, seriesKey: `m\u0000${machine}` });
    const item = (field: string, machine: string) => ({ entry: 'node', nodeText: `ns=1;s=${machine}.${field}`, field, ...series(machine), monitoring: { samplingInterval: 1000, queueSize: 1, discardOldest: true }, status: 'pending', statusCode: '', since: 0, values: 0, lastTime: 0 }) as Item;
    const [a1, b1, a2, a3] = [item('x', 'A'), item('x', 'B'), item('y', 'A'), item('z', 'A')];
    const dv = (dataType: DataType, value: unknown, t: number, status = StatusCodes.Good) => new DataValue({ value: new Variant({ dataType, value }), statusCode: status, sourceTimestamp: new Date(t) });
    const rejected: string[] = [];
    const r = valuesToPoints(
      pairs([
        [a1, dv(DataType.Double, 1, 1000)],
        [b1, dv(DataType.Double, 2, 1000)],
        [a2, dv(DataType.Int32, 3, 1000)],
        [a3, dv(DataType.Double, Number.NaN, 1000)],
        [a3, dv(DataType.Double, 4, 1000, StatusCodes.UncertainLastUsableValue)],
        [a1, dv(DataType.Double, 5, 2000)],
      ]),
      c,
      'e',
      items,
      { drop: () => undefined, reject: (reason, message) => rejected.push(`${reason} ${message}`) },
    );
    expect(r.points.map((p) => [p.tags.machine, p.time, p.quality, p.fields])).toEqual([
      ['A', 1000, 'good', { x: 1, y: 3n }],
      ['B', 1000, 'good', { x: 2 }],
      ['A', 1000, 'uncertain', { z: 4, 'z.status': 'UncertainLastUsableValue' }],
      ['A', 2000, 'good', { x: 5 }],
    ]);
    expect(rejected).toEqual(['non_finite ns=1;s=A.z: z: Double']);
    expect([a1.lastTime, b1.lastTime, a3.lastTime]).toEqual([2000, 1000, 1000]);
  });
});
