/**
 * Issue 2, done-when: awkward names and values go through a real influxd and read back unchanged;
 * NaN and Infinity are refused with a reason, never written. Also: a batch with one line InfluxDB
 * refuses (a field type conflict) writes every other line and dead-letters the bad one with
 * InfluxDB's reason.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Point } from '../src/core/point.js';
import { testGateway } from './helpers/gateway.js';
import { eventually, influxd, rows } from './helpers/servers.js';

const T0 = Date.UTC(2026, 5, 1);

function point(measurement: string, tags: Record<string, string>, fields: Point['fields'], i: number): Point {
  return { measurement, tags, fields, time: T0 + i, receivedAt: Date.now(), quality: 'good', source: 'test' };
}

describe('awkward names and values through a real influxd', () => {
  let db: Awaited<ReturnType<typeof influxd>>;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  beforeAll(async () => {
    db = await influxd();
    gw = await testGateway(`
influx: { url: ${db.url}, database: awkward, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true }
  routes:
    - topic: plant/{machine}/json
      measurement: json
      fields:
        big: { type: integer }
        small: { type: integer }
        temp: { type: float }
        label: label
buffer: { dir: "\${DATA}/buffer" }
`);
  });
  afterAll(async () => {
    await gw?.cleanup();
    await db?.stop();
    db?.remove();
  });

  it('reads back measurement, tag and field names with spaces, commas, =, quotes, backslashes, unicode; strings with newlines; int64 extremes', async () => {
    const cases: Point[] = [
      point('weird, measurement', { 'tag key, with=stuff': 'value, with = "quotes"' }, { 'field, key=1': 1.5 }, 1),
      point('unicode', { 工厂: '沈阳 第一车间', emoji: '🏭' }, { 'température °C': -12.25, text: '数控机床 "CNC" \\ back\\slash' }, 2),
      point('strings', { k: 'back\\slash in middle' }, { nl: 'line one\nline two\r\nthree', quote: '"', bs: '\\', both: '\\"' }, 3),
      point('ints', { k: 'v' }, { max: 9223372036854775807n, min: -9223372036854775808n, zero: 0n, neg: -42n }, 4),
      point('floats', { k: 'v' }, { tiny: 5e-324, huge: 1.7976931348623157e308, neg: -0.000001, third: 1 / 3 }, 5),
      point('bools', { k: 'v' }, { t: true, f: false }, 6),
    ];
    await gw.pipeline.ingest(cases, 'test');

    for (const p of cases) {
      const re = `/^${p.measurement.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$/`;
      const got = await eventually(`${p.measurement} stored`, async () => rows(await db.query(`SELECT * FROM ${re}`, 'awkward')), (r) => r.length === 1);
      const row = got[0]!;
      expect(row.time).toBe(p.time);
      for (const [k, v] of Object.entries(p.tags)) expect(row[k], `tag ${k}`).toBe(v);
      for (const [k, v] of Object.entries(p.fields)) {
        if (typeof v === 'bigint') {
          // influxd's JSON gives int64 as a number; compare through the exact decimal text
          const r = await fetch(`${db.url}/query?${new URLSearchParams({ db: 'awkward', q: `SELECT "${k}" FROM ${re}` })}`);
          const text = await r.text();
          expect(text, `field ${k}`).toContain(`,${v.toString()}]`);
        } else {
          expect(row[k], `field ${k}`).toBe(v);
        }
      }
    }
  });

  it('refuses NaN, Infinity and out-of-range integers with a dead letter, and keeps the good ones', async () => {
    const before = gw.pipeline.status().deadLetters.total;
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'awkward' });
    const send = (payload: string) => client.publishAsync('plant/m1/json', payload, { qos: 1 });
    await send(`{"ts": ${T0 + 10}, "temp": "NaN"}`);
    await send(`{"ts": ${T0 + 11}, "temp": 1e400}`); // JSON.parse makes this Infinity
    await send(`{"ts": ${T0 + 12}, "temp": "-Infinity"}`);
    await send(`{"ts": ${T0 + 13}, "big": "9223372036854775808"}`);
    await send(`{"ts": ${T0 + 14}, "big": "9223372036854775807", "small": "-9223372036854775808", "temp": 21.5, "label": "ok"}`);
    await client.endAsync();
    const dl = gw.pipeline.status().deadLetters;
    expect(dl.total - before).toBe(4);
    expect(dl.byReason.non_finite_float).toBe(3);
    expect(dl.byReason.integer_out_of_range).toBe(1);
    expect(dl.latest[0]!.message).toMatch(/outside int64/);
    const got = await eventually('good message stored', async () => rows(await db.query('SELECT * FROM json', 'awkward')), (r) => r.length === 1);
    expect(got[0]).toMatchObject({ time: T0 + 14, machine: 'm1', temp: 21.5, label: 'ok' });
    const text = await (await fetch(`${db.url}/query?${new URLSearchParams({ db: 'awkward', q: 'SELECT big, small FROM json' })}`)).text();
    expect(text).toContain('9223372036854775807,-9223372036854775808]');
  });

  it('writes every other line of a batch and dead-letters the one InfluxDB refuses, with its reason', async () => {
    // establish "v" as a float, then send a batch where one line makes it a string
    await gw.pipeline.ingest([point('conflict', { s: 'a' }, { v: 1.5 }, 0)], 'test');
    await eventually('first stored', async () => rows(await db.query('SELECT * FROM conflict', 'awkward')), (r) => r.length === 1);
    const before = gw.pipeline.status().deadLetters.total;
    const batch = Array.from({ length: 50 }, (_, i) => point('conflict', { s: `s${i}` }, { v: i === 17 ? 'not a number' : i + 0.5 }, i + 1));
    await gw.pipeline.ingest(batch, 'test');
    await eventually('49 good lines stored', async () => rows(await db.query('SELECT count(v) FROM conflict', 'awkward'))[0]?.count, (n) => n === 50);
    await eventually('bad line dead-lettered', async () => gw.pipeline.status().deadLetters.total - before, (n) => n === 1);
    const dl = gw.pipeline.status().deadLetters.latest[0]!;
    expect(dl.reason).toBe('influx_400');
    expect(dl.line).toContain('s=s17');
    expect(dl.message).toMatch(/field type conflict/);
  });

  it('a conflicting field costs only itself: the other fields of its point are written', async () => {
    await gw.pipeline.ingest([point('conflict2', { s: 'a' }, { v: 1.5 }, 0)], 'test');
    await eventually('first stored', async () => rows(await db.query('SELECT * FROM conflict2', 'awkward')), (r) => r.length === 1);
    const before = gw.pipeline.status().deadLetters.total;
    // one device sends v as a string next to its good fields, in every line
    const batch = Array.from({ length: 30 }, (_, i) => point('conflict2', { s: `s${i}` }, i % 10 === 3 ? { v: 'text', speed: i, load: 0.5 } : { v: i + 0.5, speed: i, load: 0.5 }, i + 1));
    await gw.pipeline.ingest(batch, 'test');
    await eventually('every speed stored', async () => rows(await db.query('SELECT count(speed) FROM conflict2', 'awkward'))[0]?.count, (n) => n === 30);
    expect(rows(await db.query('SELECT count(v), count(load) FROM conflict2', 'awkward'))[0]).toMatchObject({ count: 28, count_1: 30 });
    await eventually('the conflicting fields dead-lettered', async () => gw.pipeline.status().deadLetters.total - before, (n) => n === 3);
    const dl = gw.pipeline.status().deadLetters.latest[0]!;
    expect(dl.message).toMatch(/field "v" of measurement "conflict2" is string here, InfluxDB holds it as float .*the line's other fields were written/);
  });
});
