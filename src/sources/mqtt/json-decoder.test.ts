import { describe, expect, it } from 'vitest';
import { RejectedInput } from '../../core/errors.js';
import { routeSchema } from './config.js';
import { countArrayItems, decodeJson } from './json-decoder.js';

const route = (extra: Record<string, unknown> = {}) => routeSchema.parse({ topic: 'f/{m}', measurement: 'cnc', ...extra });
const ctx = (extra: Record<string, unknown> = {}) => ({ route: route(extra), topicTags: { m: 'm1' }, receivedAt: 1_000, source: 'test' });
const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof RejectedInput) return err.reason;
    throw err;
  }
  throw new Error('not rejected');
}

describe('JSON payloads', () => {
  it('numbers become floats, booleans booleans, strings string fields; ts is the time', () => {
    const [p] = decodeJson(enc({ ts: 1700000000000, speed: 1200, on: true, mode: 'AUTO' }), ctx());
    expect(p).toMatchObject({ measurement: 'cnc', tags: { m: 'm1' }, fields: { speed: 1200, on: true, mode: 'AUTO' }, time: 1700000000000, receivedAt: 1000, quality: 'good' });
  });

  it('takes an ISO 8601 timestamp, else the receive time', () => {
    expect(decodeJson(enc({ timestamp: '2026-01-01T00:00:00.250Z', v: 1 }), ctx())[0]!.time).toBe(Date.UTC(2026, 0, 1, 0, 0, 0, 250));
    expect(decodeJson(enc({ v: 1 }), ctx())[0]!.time).toBe(1000);
  });

  it('maps listed keys to tags and flattens nested objects with _', () => {
    const [p] = decodeJson(enc({ program: 'O100', axis: { x: 1, y: [2, 3] } }), ctx({ tags: ['program'], staticTags: { plant: 'dalian' } }));
    expect(p!.tags).toEqual({ plant: 'dalian', m: 'm1', program: 'O100' });
    expect(p!.fields).toEqual({ axis_x: 1, axis_y_0: 2, axis_y_1: 3 });
  });

  it('applies an explicit field mapping with types', () => {
    const [p] = decodeJson(enc({ a: 5, b: '7', c: 'true', d: 1, other: 9 }), ctx({ fields: { a: { name: 'count', type: 'integer' }, b: { type: 'float' }, c: { type: 'boolean' }, d: { type: 'string' } } }));
    expect(p!.fields).toEqual({ count: 5n, b: 7, c: true, d: '1' });
  });

  it('a top-level array is a batch', () => {
    expect(decodeJson(enc([{ ts: 1, v: 1 }, { ts: 2, v: 2 }]), ctx()).map((p) => p.fields.v)).toEqual([1, 2]);
    // items that differ by a tag are different series, so they may share the receive time
    expect(decodeJson(enc([{ id: 'a', v: 1 }, { id: 'b', v: 2 }]), ctx({ tags: ['id'] })).map((p) => p.tags.id)).toEqual(['a', 'b']);
  });

  it('refuses a batch whose items would be one point in InfluxDB (same series, same time), rather than keep one silently', () => {
    expect(reason(() => decodeJson(enc([{ v: 1 }, { v: 2 }]), ctx()))).toBe('duplicate_point');
    expect(reason(() => decodeJson(enc([{ ts: 5, v: 1 }, { ts: 6, v: 1 }, { ts: 5, v: 3 }]), ctx()))).toBe('duplicate_point');
  });

  it('refuses amplification: too many points, or far more line protocol than payload', () => {
    const items = (n: number) => enc(Array.from({ length: n }, (_, i) => ({ ts: i, v: i })));
    expect(reason(() => decodeJson(items(11), ctx({ maxPoints: 10 })))).toBe('too_many_points');
    expect(decodeJson(items(10), ctx({ maxPoints: 10 }))).toHaveLength(10);
    // tiny items on a topic with long levels: every point repeats ~1,000 characters of tags
    const long = { route: route(), topicTags: { a: 'x'.repeat(500), b: 'y'.repeat(500) }, receivedAt: 1, source: 'test' };
    expect(reason(() => decodeJson(items(5000), long))).toBe('expansion_too_large');
    expect(decodeJson(items(100), long)).toHaveLength(100); // 100 kB of lines: under the 256 KiB floor
    expect(reason(() => decodeJson(items(3000), { ...long, route: route({ maxLineBytes: 1000 }) }))).toBe('expansion_too_large');
  });

  it('counts the items of a large batch before parsing it', () => {
    expect(countArrayItems(enc('[1, "a,]", {"b": [1,2]}, [3,4]]'), 100)).toBe(4);
    expect(countArrayItems(enc(' [ ] '), 100)).toBe(0);
    expect(countArrayItems(enc('{"a": [1,2]}'), 100)).toBe(-1);
    expect(countArrayItems(enc(`[${Array(50).fill('{}').join(',')}]`), 10)).toBe(11);
    const big = enc(`[${Array(70_000).fill('{"v":1}').join(',')}]`);
    expect(reason(() => decodeJson(big, ctx({ maxPoints: 10_000 })))).toBe('too_many_points');
  });

  it('refuses a __proto__ key instead of dropping it', () => {
    expect(reason(() => decodeJson(enc('{"__proto__": 1, "v": 2}'), ctx()))).toBe('reserved_name');
    expect(reason(() => decodeJson(enc('{"a": {"__proto__": {"x": 1}}}'), ctx()))).toBe('reserved_name');
  });

  it.each([
    ['not json', 'invalid_json'],
    ['"a string"', 'not_an_object'],
    ['null', 'not_an_object'],
    ['[]', 'no_fields'],
    ['{}', 'no_fields'],
    ['{"s": null}', 'no_fields'],
    ['{"ts": "yesterday", "v": 1}', 'bad_timestamp'],
    ['{"ts": 1.5, "v": 1}', 'bad_timestamp'],
    [`${'{"a":'.repeat(20)}1${'}'.repeat(20)}`, 'too_deep'],
  ])('refuses %s with %s', (payload, why) => {
    expect(reason(() => decodeJson(enc(payload), ctx()))).toBe(why);
  });

  it('refuses invalid UTF-8 and too many fields', () => {
    expect(reason(() => decodeJson(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), ctx()))).toBe('invalid_utf8');
    expect(reason(() => decodeJson(enc(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]))), ctx({ maxFields: 10 })))).toBe('too_many_fields');
  });

  it('refuses a wrong type in an explicit mapping', () => {
    expect(reason(() => decodeJson(enc({ a: 'x' }), ctx({ fields: { a: { type: 'integer' } } })))).toBe('wrong_type');
  });
});
