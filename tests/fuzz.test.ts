/**
 * Property-based tests (fast-check) of what reads untrusted input: the JSON payload decoder (with
 * the router and the guard behind it), the line-protocol encoder, and the configuration loader.
 * The properties: no exception other than the project's own refusals escapes, and every refused
 * input is counted (a dead letter, a guard drop, or a ConfigError problem naming where).
 * The Sparkplug decoder has its own fuzz tests in src/sources/sparkplug/codec.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseDocument, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { ConfigError, RejectedInput } from '../src/core/errors.js';
import type { FieldValue, Point } from '../src/core/point.js';
import { deadLettersSchema } from '../src/deadletters/config.js';
import { DeadLetters } from '../src/deadletters/dead-letters.js';
import { checkPoint, encodeLine } from '../src/lineprotocol/encode.js';
import { Guard } from '../src/processors/guard/guard.js';
import { guardSchema } from '../src/processors/guard/config.js';
import { routeSchema } from '../src/sources/mqtt/config.js';
import { TopicRouter } from '../src/sources/mqtt/router.js';
import { tempDir } from './helpers/servers.js';

const RUNS = Number(process.env.PLANTGATE_FUZZ_RUNS ?? 1500);

describe('fuzz: JSON payloads through router and guard', () => {
  const dir = tempDir('fuzz');
  afterAll(() => dir.remove());

  it('every payload becomes points or a counted refusal; nothing else escapes', () => {
    const dl = new DeadLetters(join(dir.path, 'dl.jsonl'), deadLettersSchema.parse({}));
    const router = new TopicRouter([
      routeSchema.parse({ topic: 'f/{site}/{machine}', measurement: 'm', tags: ['program'], maxDepth: 4, maxFields: 50 }),
      routeSchema.parse({ topic: 'typed/{machine}', measurement: 't', fields: { speed: { type: 'float' }, count: { type: 'integer' }, ok: { type: 'boolean' }, note: 'note' } }),
    ]);
    const guard = new Guard('guard', guardSchema.parse({}));
    let rejectedMessages = 0;
    let guardRejects = 0;
    const key = fc.oneof(fc.constantFrom('ts', 'timestamp', 'program', 'speed', 'count', 'ok', 'note', '', 'time', 'a b', 'x\ny', 'é'), fc.string({ maxLength: 6 }));
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.double(),
        fc.integer(),
        fc.constantFrom(1e308, -1e308, 0, -0, 1.7e12, Date.now(), '2026-01-01T00:00:00Z', 'NaN', 'Infinity'),
        fc.boolean(),
        fc.constant(null),
        fc.string({ maxLength: 20 }),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(key, tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    const json = fc.oneof(value.map((v) => JSON.stringify(v) ?? 'null'), fc.dictionary(key, value, { maxKeys: 8 }).map((o) => JSON.stringify(o)));
    const mutated = fc.tuple(json, fc.nat(), fc.string({ maxLength: 3 })).map(([s, i, ins]) => s.slice(0, i % (s.length + 1)) + ins + s.slice(i % (s.length + 1)));
    const bytes = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b));
    const payload = fc.oneof(json.map((s) => Buffer.from(s)), mutated.map((s) => Buffer.from(s)), bytes, fc.constantFrom(Buffer.from('1e999'), Buffer.from('{"v":1e999}'), Buffer.from(`${'['.repeat(5000)}${']'.repeat(5000)}`), Buffer.from(`${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`)));
    const topic = fc.constantFrom('f/anshan/m1', 'typed/m2', 'other/x');

    fc.assert(
      fc.property(topic, payload, (t, p) => {
        const before = dl.status().total;
        const res = router.route(t, p, 'fuzz', (r) => dl.add(r), 4096, 'dev');
        if (res.kind === 'rejected') {
          rejectedMessages++;
          expect(dl.status().total).toBe(before + 1);
          return;
        }
        if (res.kind === 'unrouted') return;
        const out = guard.process(res.points, (_pt, why) => {
          expect(why).toBeInstanceOf(RejectedInput);
          guardRejects++;
        });
        for (const pt of out) expect(() => checkPoint(pt)).not.toThrow();
      }),
      { numRuns: RUNS },
    );
    const g = guard.status().counters;
    // the guard's counters add up: everything it received was passed on or dropped with a reason
    expect(g.received).toBe(g.written + Object.values(g.dropped).reduce((a, b) => a + b, 0));
    expect(Object.values(g.dropped).reduce((a, b) => a + b, 0)).toBe(guardRejects);
    expect(dl.status().total).toBe(rejectedMessages);
    expect(rejectedMessages).toBeGreaterThan(RUNS / 10); // the generators do reach the refusals
  });
});

/** A line-protocol reader following influxd's unescaping, to read back what the encoder wrote. */
function parseLine(line: string): { measurement: string; tags: Record<string, string>; fields: Record<string, FieldValue>; time: number } {
  let i = 0;
  const until = (stops: string): string => {
    let out = '';
    while (i < line.length && !stops.includes(line[i]!)) {
      if (line[i] === '\\' && i + 1 < line.length && (stops.includes(line[i + 1]!) || line[i + 1] === '=' || line[i + 1] === ',' || line[i + 1] === ' ')) {
        out += line[i + 1];
        i += 2;
      } else out += line[i++];
    }
    return out;
  };
  const measurement = until(', ');
  const tags: Record<string, string> = {};
  while (line[i] === ',') {
    i++;
    const k = until('=');
    i++;
    tags[k] = until(', ');
  }
  i++; // space
  const fields: Record<string, FieldValue> = {};
  for (;;) {
    const k = until('=');
    i++;
    if (line[i] === '"') {
      i++;
      let s = '';
      while (line[i] !== '"') {
        if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) i++;
        s += line[i++];
      }
      i++;
      fields[k] = s;
    } else {
      const raw = until(', ');
      fields[k] = raw === 'true' ? true : raw === 'false' ? false : raw.endsWith('i') ? BigInt(raw.slice(0, -1)) : Number(raw);
    }
    if (line[i] !== ',') break;
    i++;
  }
  i++;
  return { measurement, tags, fields, time: Number(line.slice(i)) };
}

describe('fuzz: line-protocol encoder', () => {
  it('every point is refused with a reason, or encoded to one line that reads back the same', () => {
    // mostly writable names with the characters line protocol must escape, sometimes impossible ones
    const special = fc.array(fc.constantFrom('a', 'Z', '0', ',', '=', ' ', '"', 'é', '中', '_', '\t', '#', '\\a'), { minLength: 1, maxLength: 8 }).map((a) => a.join(''));
    const impossible = fc.array(fc.constantFrom('a', '\\', '\n', '\r', ''), { maxLength: 4 }).map((a) => a.join(''));
    const name = fc.oneof({ arbitrary: special, weight: 12 }, { arbitrary: impossible, weight: 1 });
    const fieldValue: fc.Arbitrary<FieldValue> = fc.oneof(fc.double(), fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }), fc.boolean(), fc.string({ maxLength: 12 }), name);
    const point = fc.record({
      measurement: name,
      tags: fc.dictionary(name, name, { maxKeys: 3 }),
      fields: fc.dictionary(name, fieldValue, { minKeys: 1, maxKeys: 4 }),
      time: fc.oneof({ arbitrary: fc.integer({ min: -1e15, max: 1e15 }), weight: 20 }, { arbitrary: fc.constant(Number.NaN), weight: 1 }),
    });
    let refused = 0;
    let written = 0;
    fc.assert(
      fc.property(point, (raw) => {
        const p: Point = { ...raw, receivedAt: 0, quality: 'good', source: 'fuzz' };
        try {
          checkPoint(p);
        } catch (err) {
          expect(err).toBeInstanceOf(RejectedInput);
          refused++;
          return;
        }
        written++;
        const line = encodeLine(p);
        // a raw newline only ever inside a quoted string field
        const back = parseLine(line);
        expect(back.measurement).toBe(p.measurement);
        expect(back.tags).toEqual(p.tags);
        expect(Object.keys(back.fields)).toEqual(Object.keys(p.fields));
        for (const [k, v] of Object.entries(p.fields)) {
          if (typeof v === 'number') expect(back.fields[k] === v || (v === 0 && back.fields[k] === 0)).toBe(true);
          else expect(back.fields[k]).toEqual(v);
        }
        expect(back.time).toBe(Math.trunc(p.time));
      }),
      { numRuns: RUNS * 2 },
    );
    expect(refused).toBeGreaterThan(0);
    expect(written).toBeGreaterThan(RUNS / 10);
  });
});

describe('fuzz: configuration loader', () => {
  const example = readFileSync('config/example.yaml', 'utf8');
  const base = parseDocument(example).toJS() as Record<string, unknown>;

  /** Every key path in the example, so a mutation can hit any of them. */
  const paths: (string | number)[][] = [];
  (function walk(v: unknown, path: (string | number)[]) {
    if (path.length) paths.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  })(base, []);

  it('a mutated configuration loads, or every problem is a ConfigError naming where', () => {
    const junk = fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }), fc.constantFrom('${NOPE}', '5s', '1MiB', '0.0.0.0:99999', 'mqtt://x', '-1', ''));
    const mutation = fc.tuple(fc.nat(paths.length - 1), fc.oneof(fc.constant<'delete'>('delete'), fc.constant<'unknown'>('unknown'), junk.map((j) => ({ set: j }))));
    let refused = 0;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (muts) => {
        const doc = structuredClone(base);
        for (const [pi, m] of muts) {
          const path = paths[pi]!;
          let parent: Record<string | number, unknown> | undefined = doc;
          for (const k of path.slice(0, -1)) parent = parent && typeof parent === 'object' ? (parent[k] as Record<string | number, unknown>) : undefined;
          if (!parent || typeof parent !== 'object') continue;
          const last = path.at(-1)!;
          if (m === 'delete') delete parent[last];
          else if (m === 'unknown') parent[`${String(last)}_typo`] = 1;
          else parent[last] = m.set;
        }
        try {
          parseConfig(stringify(doc), 'fuzz.yaml', {});
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          refused++;
          expect(err.problems.length).toBeGreaterThan(0);
          for (const p of err.problems) {
            expect(p.file).toBe('fuzz.yaml');
            expect(p.message.length).toBeGreaterThan(3);
          }
        }
      }),
      { numRuns: RUNS / 3 },
    );
    expect(refused).toBeGreaterThan(RUNS / 30);
  });

  it('arbitrary text is a configuration or a ConfigError, never a crash', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom(example.slice(0, 500), '{', 'influx: [', '&a [*a]', 'a: &x\n  b: *x', '!!binary zz', 'influx: !!js/function "x"')), (text) => {
        try {
          parseConfig(text, 'fuzz.yaml', {});
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
      }),
      { numRuns: RUNS / 3 },
    );
  });
});
