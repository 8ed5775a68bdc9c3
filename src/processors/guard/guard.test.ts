import { describe, expect, it } from 'vitest';
import type { RejectedInput } from '../../core/errors.js';
import { Unsigned, type Point } from '../../core/point.js';
import { guardSchema } from './config.js';
import { Guard } from './guard.js';

const point = (fields: Point['fields'], time = Date.now()): Point => ({ measurement: 'm', tags: { a: 'x', empty: '' }, fields, time, receivedAt: time, quality: 'good', source: 't' });

function run(g: Guard, points: Point[]) {
  const refused: string[] = [];
  const out = g.process(points, (_p, why: RejectedInput) => refused.push(why.reason));
  return { out, refused };
}

describe('guard', () => {
  it('passes writable points, drops empty tags, refuses the rest with a reason and counts it', () => {
    const g = new Guard('guard', guardSchema.parse({}));
    const { out, refused } = run(g, [point({ v: 1 }), point({ v: Number.NaN }), point({ v: 1 }, Date.now() + 86_400_000), point({ time: 1 })]);
    expect(out).toHaveLength(1);
    expect(out[0]!.tags).toEqual({ a: 'x' });
    expect(refused).toEqual(['non_finite_float', 'timestamp_in_future', 'reserved_name']);
    expect(g.status().counters).toMatchObject({ received: 4, written: 1, dropped: { non_finite_float: 1, timestamp_in_future: 1, reserved_name: 1 } });
  });

  it('keeps unsigned integers for a v2 sink; for InfluxDB 1.x writes them as integers and refuses what int64 cannot hold', () => {
    const big = new Unsigned(2n ** 63n);
    const native = run(new Guard('guard', guardSchema.parse({}), 'native'), [point({ n: big })]);
    expect(native.out[0]!.fields.n).toBe(big);
    const v1 = run(new Guard('guard', guardSchema.parse({}), 'integer'), [point({ n: new Unsigned(42n) }), point({ n: big })]);
    expect(v1.out.map((p) => p.fields.n)).toEqual([42n]);
    expect(v1.refused).toEqual(['integer_out_of_range']);
  });
});
