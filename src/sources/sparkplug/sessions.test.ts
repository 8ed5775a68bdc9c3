/** The host's session rules alone, message by message (no broker): seq, reorder, deaths, restore. */
import { describe, expect, it } from 'vitest';
import { DataType, decodePayload, encodePayload, type MetricInput } from './codec.js';
import { sparkplugSchema } from './config.js';
import { Sessions } from './sessions.js';
import { parseTopic } from './topic.js';

const G = 'g';
const E = 'e';

function msg(s: Sessions, topic: string, p: { seq?: number; metrics?: MetricInput[]; timestamp?: number }, now = 1000) {
  const t = parseTopic(topic);
  if (t.kind === 'state') throw new Error('state');
  return s.handle(t, decodePayload(encodePayload({ timestamp: p.timestamp ?? now, metrics: p.metrics ?? [], ...(p.seq === undefined ? {} : { seq: p.seq }) })), { now, topic });
}

function born(overrides: Record<string, unknown> = {}, bdSeq = 3n) {
  const s = new Sessions(sparkplugSchema.parse({ reorderTimeout: 100, rebirthTimeout: 1000, ...overrides }), 'sparkplug');
  msg(s, `spBv1.0/${G}/NBIRTH/${E}`, {
    seq: 0,
    metrics: [
      { name: 'bdSeq', datatype: DataType.Int64, value: bdSeq },
      { name: 'Temp', alias: 1, datatype: DataType.Float, value: 20 },
      { name: 'Count', alias: 2, datatype: DataType.UInt32, value: 5n },
    ],
  });
  return s;
}

const data = (s: Sessions, seq: number, now = 1000, alias = 1) => msg(s, `spBv1.0/${G}/NDATA/${E}`, { seq, metrics: [{ alias, datatype: DataType.Float, value: seq }] }, now);
const node = (s: Sessions) => s.nodes.get(`${G}/${E}`)!;

describe('seq', () => {
  it('wraps from 255 to 0 without a gap', () => {
    const s = born();
    for (let i = 1; i <= 300; i++) expect(data(s, i % 256).rebirths).toEqual([]);
    expect(s.tick(10_000)).toEqual([]);
    expect(node(s).stats.gaps).toBe(0);
  });
  it('a late message within the reorder timeout is not a gap [tck-id-operational-behavior-host-reordering-success]', () => {
    const s = born();
    data(s, 1);
    data(s, 3, 1000); // 2 missing
    expect(s.tick(1050)).toEqual([]);
    data(s, 2, 1060);
    expect(s.tick(5000)).toEqual([]);
    expect(node(s).stats).toMatchObject({ gaps: 0, reordered: 1 });
  });
  it('a missing one past the timeout is one gap and one request [tck-id-operational-behavior-host-reordering-rebirth]', () => {
    const s = born();
    data(s, 1);
    data(s, 5, 1000); // 2, 3, 4 missing
    expect(s.tick(1099)).toEqual([]);
    expect(s.tick(1100)).toEqual([{ group: G, edge: E, reason: 'seq_gap', via: undefined }]);
    expect(s.tick(1200)).toEqual([]);
    expect(node(s).stats).toMatchObject({ gaps: 1, rebirthsNeeded: 1 });
  });
  it('a redelivered message is a duplicate, not a jump of 255', () => {
    const s = born();
    data(s, 1);
    data(s, 2);
    data(s, 2);
    data(s, 1);
    expect(s.tick(10_000)).toEqual([]);
    expect(node(s).stats.duplicates).toBe(2);
  });
  it('a second incident while a request is pending is answered by the same birth', () => {
    const s = born();
    data(s, 1);
    expect(data(s, 2, 1000, 99).rebirths).toHaveLength(1); // unknown alias
    expect(data(s, 3, 1010, 98).rebirths).toEqual([]);
    expect(node(s).stats).toMatchObject({ unknownAliases: 2, rebirthsNeeded: 1, rebirthsSuppressed: 1 });
    expect(data(s, 4, 2500, 97).rebirths).toHaveLength(1); // rebirthTimeout passed without a birth: ask again
  });
  it('passive mode reports every incident (nothing is requested, no birth will answer)', () => {
    const s = born({ mode: 'passive' });
    expect(data(s, 1, 1000, 99).rebirths).toHaveLength(1);
    expect(data(s, 2, 1001, 98).rebirths).toHaveLength(1);
    expect(node(s).stats.rebirthsNeeded).toBe(2);
  });
});

describe('births and deaths', () => {
  it('data resolves aliases to names, types from the birth, metric timestamps kept', () => {
    const s = born();
    const out = msg(s, `spBv1.0/${G}/NDATA/${E}`, { seq: 1, metrics: [{ alias: 1, datatype: DataType.Float, value: 21.5, timestamp: 777 }, { alias: 2, datatype: DataType.UInt32, value: 6n }] }, 2000);
    expect(out.points.map((p) => [p.time, p.fields, p.tags])).toEqual([
      [777, { Temp: 21.5 }, { group: G, edge_node: E, quality: 'good' }],
      [2000, { Count: 6n }, { group: G, edge_node: E, quality: 'good' }],
    ]);
  });
  it('an NDEATH with another bdSeq is ignored; with the session bdSeq it marks everything stale', () => {
    const s = born({}, 3n);
    msg(s, `spBv1.0/${G}/DBIRTH/${E}/d1`, { seq: 1, metrics: [{ name: 'X', alias: 10, datatype: DataType.Int32, value: 1n }] });
    expect(msg(s, `spBv1.0/${G}/NDEATH/${E}`, { metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 2n }] }).ignored).toBe('stale_death');
    expect(node(s).online).toBe(true);
    expect(msg(s, `spBv1.0/${G}/NDEATH/${E}`, { metrics: [{ name: 'bdSeq', datatype: DataType.Int64, value: 3n }] }).persist).toBe(true);
    expect(node(s).online).toBe(false);
    expect([...node(s).metrics.values()].every((m) => m.stale)).toBe(true);
    expect(node(s).devices.get('d1')).toMatchObject({ online: false });
    // data after death: before the next birth
    const out = data(s, 2);
    expect(out.rejections.map((r) => r.reason)).toEqual(['data_before_birth']);
    expect(out.rebirths).toHaveLength(1);
  });
  it('historical values are stored but do not replace the live value; transient ones are not stored', () => {
    const s = born();
    const out = msg(s, `spBv1.0/${G}/NDATA/${E}`, {
      seq: 1,
      metrics: [
        { alias: 1, datatype: DataType.Float, value: 99, timestamp: 10, isHistorical: true },
        { alias: 2, datatype: DataType.UInt32, value: 7n, isTransient: true },
      ],
    });
    expect(out.points.map((p) => p.fields)).toEqual([{ Temp: 99 }]);
    expect(node(s).metrics.get('Temp')!.value).toBe('20');
    expect(node(s).metrics.get('Count')!.value).toBe('7');
  });
  it('Quality property: 500 STALE and 0 BAD become bad quality, kept apart from good points', () => {
    const s = born();
    const q = (code: number) => ({ Quality: { type: DataType.Int32, value: BigInt(code) } });
    const out = msg(s, `spBv1.0/${G}/NDATA/${E}`, { seq: 1, metrics: [{ alias: 1, datatype: DataType.Float, value: 1, properties: q(500) }, { alias: 2, datatype: DataType.UInt32, value: 1n, properties: q(192) }] });
    expect(out.points.map((p) => [p.quality, p.qualityCode, Object.keys(p.fields)])).toEqual([['bad', 'STALE', ['Temp']], ['good', undefined, ['Count']]]);
  });
  it('metric paths split into measurement and field when asked', () => {
    const s = new Sessions(sparkplugSchema.parse({ metricPath: { measurementLevels: 1 } }), 'sparkplug');
    const out = msg(s, `spBv1.0/${G}/NBIRTH/${E}`, { seq: 0, metrics: [{ name: 'Spindle/Speed', datatype: DataType.Float, value: 1 }, { name: 'Spindle/Load', datatype: DataType.Float, value: 2 }, { name: 'flat', datatype: DataType.Float, value: 3 }] });
    expect(out.points.map((p) => [p.measurement, p.fields])).toEqual([['Spindle', { Speed: 1, Load: 2 }], ['sparkplug', { flat: 3 }]]);
  });
  it('a restore keeps aliases; the first seq after it is the baseline, not a gap', () => {
    const s = born();
    data(s, 1);
    const snap = JSON.parse(JSON.stringify(s.snapshot()));
    const r = new Sessions(sparkplugSchema.parse({ reorderTimeout: 100 }), 'sparkplug');
    r.restore(snap);
    const out = data(r, 77, 5000);
    expect(out.points[0]!.fields).toEqual({ Temp: 77 });
    expect(out.rejections).toEqual([]);
    expect(r.tick(10_000)).toEqual([]);
    expect(r.nodes.get(`${G}/${E}`)!.restored).toBe(true);
  });
  it('a birth metric without a datatype is reported once, the others of the birth kept', () => {
    const s = new Sessions(sparkplugSchema.parse({}), 'sparkplug');
    const t = parseTopic(`spBv1.0/${G}/NBIRTH/${E}`);
    if (t.kind === 'state') throw new Error('state');
    const p = decodePayload(encodePayload({ seq: 0, metrics: [{ name: 'ok', datatype: DataType.Float, value: 1 }] }));
    p.metrics.push({ ...p.metrics[0]!, name: 'untyped', datatype: undefined });
    const out = s.handle(t, p, { now: 1, topic: 'x' });
    expect(out.rejections.map((r) => r.reason)).toEqual(['sparkplug_bad_metric']);
    expect(out.points.map((pt) => pt.fields)).toEqual([{ ok: 1 }]);
  });
  it('values InfluxDB cannot hold are rejected per metric, the others kept', () => {
    const s = born();
    const out = msg(s, `spBv1.0/${G}/NDATA/${E}`, { seq: 1, metrics: [{ alias: 1, datatype: DataType.Float, value: NaN }, { alias: 2, datatype: DataType.UInt32, value: 3n }] });
    expect(out.rejections.map((r) => r.reason)).toEqual(['non_finite_float']);
    expect(out.points.map((p) => p.fields)).toEqual([{ Count: 3n }]);
  });
});

describe('messages that are not telemetry for this host', () => {
  it('are counted with their reason, not dead-lettered: commands, groups not configured or owned by another member', () => {
    const s = born();
    expect(msg(s, `spBv1.0/${G}/NCMD/${E}`, { metrics: [{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true }] })).toMatchObject({ ignored: 'command', rejections: [], points: [] });
    const configured = new Sessions(sparkplugSchema.parse({ groups: ['other'] }), 'sparkplug');
    expect(msg(configured, `spBv1.0/${G}/NBIRTH/${E}`, { seq: 0 })).toMatchObject({ ignored: 'group_not_configured', rejections: [], points: [] });
    const owner = new Sessions(sparkplugSchema.parse({}), 'sparkplug');
    owner.owned = new Set(['other']);
    expect(msg(owner, `spBv1.0/${G}/NBIRTH/${E}`, { seq: 0 })).toMatchObject({ ignored: 'group_not_owned', rejections: [], points: [] });
  });
});
