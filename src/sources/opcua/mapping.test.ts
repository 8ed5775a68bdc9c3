import pino from 'pino';
import { DataType, DataValue, StatusCodes, Variant } from 'node-opcua';
import { describe, expect, it } from 'vitest';
import { endpointSchema } from './config.js';
import { type Item, MonitoredItems } from './items.js';
import { valuesToPoints } from './mapping.js';

describe('OPC UA values to points', () => {
  it('counts a value whose quality the endpoint does not accept as dropped with its quality, and writes the others', () => {
    const c = endpointSchema.parse({ name: 'e', url: 'opc.tcp://127.0.0.1:4840', accept: ['good'], nodes: [{ nodeId: 'ns=1;s=a', field: 'a' }] });
    const items = new MonitoredItems(c, 'e', pino({ level: 'silent' }));
    const item = { key: 'k', nodeText: 'ns=1;s=a', field: 'a', measurement: 'm', tags: {}, seriesKey: 'm', monitoring: { samplingInterval: 1000, queueSize: 1, discardOldest: true }, status: 'pending', statusCode: '', since: 0, values: 0 } as Item;
    const dv = (value: number, status: typeof StatusCodes.Good, t: number) => new DataValue({ value: new Variant({ dataType: DataType.Double, value }), statusCode: status, sourceTimestamp: new Date(t) });
    const dropped: string[] = [];
    const r = valuesToPoints([[item, dv(1, StatusCodes.Good, 1000)], [item, dv(2, StatusCodes.UncertainLastUsableValue, 2000)], [item, dv(3, StatusCodes.BadSensorFailure, 3000)]], c, 'e', items, { drop: (reason) => dropped.push(reason), reject: () => expect.unreachable() });
    expect(r.points.map((p) => p.fields)).toEqual([{ a: 1 }]);
    expect(dropped).toEqual(['quality_uncertain', 'quality_bad']);
    expect(r.values).toBe(3);
  });
});
