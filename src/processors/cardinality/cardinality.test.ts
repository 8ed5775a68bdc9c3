import { describe, expect, it } from 'vitest';
import type { RejectedInput } from '../../core/errors.js';
import type { Point } from '../../core/point.js';
import { CardinalityLimit, seriesKey } from './cardinality.js';
import { cardinalitySchema } from './config.js';

const point = (measurement: string, tags: Record<string, string>, clientId?: string): Point => ({
  measurement, tags, fields: { v: 1 }, time: 1, receivedAt: 1, quality: 'good', source: 'mqtt-broker', origin: clientId ? { clientId } : undefined,
});

function run(g: CardinalityLimit, points: Point[]) {
  const refused: [Point, RejectedInput][] = [];
  const out = g.process(points, (p, why) => refused.push([p, why]));
  return { out, refused };
}

describe('cardinality limit', () => {
  it('keys series by measurement and sorted tags', () => {
    expect(seriesKey(point('m', { b: '2', a: '1' }))).toBe('m,a=1,b=2');
  });

  it('refuses new series of a source over its budget, naming it; known series and other sources keep flowing', () => {
    const g = new CardinalityLimit('cardinality', cardinalitySchema.parse({ maxSeriesPerSource: 3 }));
    const bad = Array.from({ length: 10 }, (_, i) => point('robot', { serial: `SN${i}` }, 'bad-device'));
    const r1 = run(g, bad);
    expect(r1.out).toHaveLength(3);
    expect(r1.refused).toHaveLength(7);
    expect(r1.refused[0]![1].reason).toBe('series_budget_exceeded');
    expect(r1.refused[0]![1].message).toMatch(/new series robot,serial=SN3 from mqtt-broker\/bad-device refused: the per-source budget of 3/);
    // a series it already has still passes; a well-behaved device is unaffected
    expect(run(g, [point('robot', { serial: 'SN0' }, 'bad-device'), point('robot', { serial: 'R1' }, 'good-device')]).refused).toHaveLength(0);
    const d = g.status();
    expect(d.state).toBe('degraded');
    expect(d.counters.dropped.series_budget_exceeded).toBe(7);
    expect(d.details!.overBudget).toEqual([expect.objectContaining({ source: 'mqtt-broker/bad-device', measurement: 'robot', budget: 'source', refused: 7, example: 'robot,serial=SN9' })]);
    expect(d.details!.sources).toEqual([{ name: 'mqtt-broker/bad-device', series: 3 }, { name: 'mqtt-broker/good-device', series: 1 }]);
  });

  it('per measurement and total budgets', () => {
    const g = new CardinalityLimit('cardinality', cardinalitySchema.parse({ maxSeriesPerMeasurement: 2, maxSeries: 3 }));
    const r = run(g, [point('a', { x: '1' }, 'd1'), point('a', { x: '2' }, 'd2'), point('a', { x: '3' }, 'd3'), point('b', { x: '1' }, 'd1'), point('c', { x: '1' }, 'd1')]);
    expect(r.out.map(seriesKey)).toEqual(['a,x=1', 'a,x=2', 'b,x=1']);
    expect(r.refused.map(([, e]) => e.message.match(/the (.*) budget/)![1])).toEqual(['per-measurement', 'total']);
  });
});
