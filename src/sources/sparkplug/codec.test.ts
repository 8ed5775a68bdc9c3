/**
 * The Sparkplug codec against the specification's example payloads (shared/testdata/sparkplug,
 * encoded by sparkplug-payload and cross-checked with protoc) and the array examples of spec 6.4.17.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RejectedInput } from '../../core/errors.js';
import { testdata } from '../../../tests/helpers/testdata.js';
import { DataType, decodePayload, encodePayload, readArray, templateOf, valueOf, writeArray, type DataSetValue, type MetricInput, type TemplateValue } from './codec.js';
import { parseTopic } from './topic.js';

const EXAMPLES = ['NBIRTH', 'DBIRTH', 'NDATA', 'DDATA', 'NCMD', 'DCMD', 'NDEATH', 'DDEATH'];

interface SpecExample {
  topic: string;
  payload: { timestamp?: number; seq?: number; metrics?: { name: string; timestamp?: number; dataType: string; value: unknown }[] };
}

describe('spec example payloads', () => {
  for (const kind of EXAMPLES) {
    it(`${kind}: every metric decodes to the specification's name, type and value`, () => {
      const spec = JSON.parse(readFileSync(testdata('sparkplug', 'spec-examples', `${kind}.spec.json`), 'utf8')) as SpecExample;
      const p = decodePayload(readFileSync(testdata('sparkplug', 'spec-examples', `${kind}.bin`)));
      expect(p.timestamp).toBe(spec.payload.timestamp);
      expect(p.seq).toBe(spec.payload.seq);
      const metrics = spec.payload.metrics ?? [];
      expect(p.metrics).toHaveLength(metrics.length);
      metrics.forEach((sm, i) => {
        const m = p.metrics[i]!;
        expect(m.name).toBe(sm.name);
        expect(DataType[m.datatype!]).toBe(sm.dataType);
        expect(m.timestamp).toBe(sm.timestamp);
        const v = valueOf(m, m.datatype!);
        if (typeof v === 'bigint') expect(v).toBe(BigInt(sm.value as number));
        else if (sm.dataType === 'Float') expect(v).toBeCloseTo(sm.value as number, 5);
        else expect(v).toEqual(sm.value);
      });
      expect(parseTopic(spec.topic)).toMatchObject({ type: kind });
    });
  }
});

// The FloatArray and DoubleArray examples of the specification are printed big endian, against its
// own rule; we follow the rule (and Tahu), and test those two by round trip.
describe('array encodings (spec 6.4.17, little endian)', () => {
  const cases: [DataType, (number | bigint | boolean | string)[], number[]][] = [
    // the specification prints 0xEF for -23, which is -17; -23 is 0xE9
    [DataType.Int8Array, [-23n, 123n], [0xe9, 0x7b]],
    [DataType.Int16Array, [-30000n, 30000n], [0xd0, 0x8a, 0x30, 0x75]],
    [DataType.Int32Array, [-1n, 315338746n], [0xff, 0xff, 0xff, 0xff, 0xfa, 0xaf, 0xcb, 0x12]],
    [DataType.Int64Array, [-4270929666821191986n, -3601064768563266876n], [0xce, 0x06, 0x72, 0xac, 0x18, 0x9c, 0xba, 0xc4, 0xc4, 0xba, 0x9c, 0x18, 0xac, 0x72, 0x06, 0xce]],
    [DataType.UInt8Array, [23n, 250n], [0x17, 0xfa]],
    [DataType.UInt16Array, [30n, 52360n], [0x1e, 0x00, 0x88, 0xcc]],
    [DataType.UInt32Array, [52n, 3293969225n], [0x34, 0x00, 0x00, 0x00, 0x49, 0xfb, 0x55, 0xc4]],
    [DataType.UInt64Array, [52n, 16444743074749521625n], [0x34, 0, 0, 0, 0, 0, 0, 0, 0xd9, 0x9e, 0x02, 0xd1, 0xb2, 0x76, 0x37, 0xe4]],
    [DataType.StringArray, ['ABC', 'hello'], [0x41, 0x42, 0x43, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x00]],
  ];
  for (const [type, values, bytes] of cases) {
    it(`${DataType[type]} ${JSON.stringify(values, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`, () => {
      expect([...writeArray(values, type)]).toEqual(bytes);
      expect(readArray(Uint8Array.from(bytes), type)).toEqual(values);
    });
  }
  it('BooleanArray: 4-byte count, then bits from the high bit of the first byte', () => {
    const bools = [false, false, true, true, false, true, false, false, true, true, false, true];
    const b = writeArray(bools, DataType.BooleanArray);
    expect([...b.subarray(0, 5)]).toEqual([0x0c, 0, 0, 0, 0x34]);
    expect(b[5]! & 0xf0).toBe(0xd0);
    expect(readArray(b, DataType.BooleanArray)).toEqual(bools);
  });
  it('Float, Double and DateTime arrays round-trip exactly', () => {
    const f = [1.5, -89.25];
    expect(readArray(writeArray(f, DataType.FloatArray), DataType.FloatArray)).toEqual(f);
    const d = [12.354213, 1022.9123213];
    expect(readArray(writeArray(d, DataType.DoubleArray), DataType.DoubleArray)).toEqual(d);
    const t = [1256102875335n, 1656107875000n];
    expect(readArray(writeArray(t, DataType.DateTimeArray), DataType.DateTimeArray)).toEqual(t);
  });
  it('truncated arrays are refused with what is wrong', () => {
    expect(() => readArray(Uint8Array.from([1, 2, 3]), DataType.Int32Array)).toThrow(/3 bytes is not a multiple of 4/);
    expect(() => readArray(Uint8Array.from([9, 0, 0, 0, 0xff]), DataType.BooleanArray)).toThrow(/count 9 needs 2 bytes/);
    expect(() => readArray(Uint8Array.from([0x41]), DataType.StringArray)).toThrow(/NUL-terminated/);
  });
});

describe('every data type round-trips through protobuf', () => {
  const ds: DataSetValue = {
    columns: ['tool', 'life', 'worn', 'count', 'changed'],
    types: [DataType.String, DataType.Int16, DataType.Boolean, DataType.UInt64, DataType.DateTime],
    rows: [
      ['T1', -5n, false, 18446744073709551615n, 1700000000000n],
      ['T2', 300n, true, 0n, 1700000000001n],
    ],
  };
  const metrics: MetricInput[] = [
    { name: 'i8', datatype: DataType.Int8, value: -128n },
    { name: 'i16', datatype: DataType.Int16, value: -32768n },
    { name: 'i32', datatype: DataType.Int32, value: -2147483648n },
    { name: 'i64', datatype: DataType.Int64, value: -9223372036854775808n },
    { name: 'u8', datatype: DataType.UInt8, value: 255n },
    { name: 'u16', datatype: DataType.UInt16, value: 65535n },
    { name: 'u32', datatype: DataType.UInt32, value: 4294967295n },
    { name: 'u64', datatype: DataType.UInt64, value: 18446744073709551615n },
    { name: 'f', datatype: DataType.Float, value: 1.5 },
    { name: 'd', datatype: DataType.Double, value: Math.PI },
    { name: 'b', datatype: DataType.Boolean, value: true },
    { name: 's', datatype: DataType.String, value: 'grüß' },
    { name: 'dt', datatype: DataType.DateTime, value: 1486144502122n },
    { name: 't', datatype: DataType.Text, value: 'line\nline' },
    { name: 'u', datatype: DataType.UUID, value: '123e4567-e89b-12d3-a456-426614174000' },
    { name: 'ds', datatype: DataType.DataSet, value: ds },
    { name: 'by', datatype: DataType.Bytes, value: Uint8Array.from([0, 1, 254, 255]) },
    { name: 'fi', datatype: DataType.File, value: Uint8Array.from([37, 80, 68, 70]) },
    { name: 'null', datatype: DataType.Int32, value: null },
    { name: 'q', datatype: DataType.Double, value: 1, properties: { Quality: { type: DataType.Int32, value: 500n }, engUnit: { type: DataType.String, value: 'mm' } }, isHistorical: true, isTransient: true, alias: 7, timestamp: 1 },
  ];
  it('scalars, DataSet, bytes, null, properties and flags', () => {
    const p = decodePayload(encodePayload({ timestamp: 5, seq: 255, metrics }));
    expect(p.seq).toBe(255);
    metrics.forEach((m, i) => {
      const d = p.metrics[i]!;
      expect(d.name).toBe(m.name);
      const v = valueOf(d, d.datatype!);
      expect(v instanceof Uint8Array ? Uint8Array.from(v) : v).toEqual(m.value);
    });
    const q = p.metrics.at(-1)!;
    expect(q).toMatchObject({ alias: 7n, timestamp: 1, isHistorical: true, isTransient: true, isNull: false });
    expect(q.properties).toEqual({ Quality: { type: DataType.Int32, value: 500n }, engUnit: { type: DataType.String, value: 'mm' } });
    expect(p.metrics.find((m) => m.name === 'null')!.isNull).toBe(true);
  });
  it('template instances keep their members with types', () => {
    const tpl = templateOf([{ name: 'Feed', datatype: DataType.Float, value: 2.5 }, { name: 'Speed', datatype: DataType.UInt16, value: 1200n }], { templateRef: 'Recipe', version: 'v1' });
    const p = decodePayload(encodePayload({ metrics: [{ name: 'recipe', datatype: DataType.Template, value: tpl }] }));
    const v = valueOf(p.metrics[0]!, DataType.Template) as TemplateValue;
    expect(v.templateRef).toBe('Recipe');
    expect(v.version).toBe('v1');
    expect(v.isDefinition).toBe(false);
    expect(v.metrics.map((m) => [m.name, valueOf(m, m.datatype!)])).toEqual([['Feed', 2.5], ['Speed', 1200n]]);
  });
  it('every array type', () => {
    const arrays: MetricInput[] = [
      { name: 'a1', datatype: DataType.Int8Array, value: [-1n, 2n] },
      { name: 'a2', datatype: DataType.Int16Array, value: [-1n, 2n] },
      { name: 'a3', datatype: DataType.Int32Array, value: [-1n, 2n] },
      { name: 'a4', datatype: DataType.Int64Array, value: [-1n, 2n] },
      { name: 'a5', datatype: DataType.UInt8Array, value: [255n] },
      { name: 'a6', datatype: DataType.UInt16Array, value: [65535n] },
      { name: 'a7', datatype: DataType.UInt32Array, value: [4294967295n] },
      { name: 'a8', datatype: DataType.UInt64Array, value: [18446744073709551615n] },
      { name: 'a9', datatype: DataType.FloatArray, value: [0.5, -0.25] },
      { name: 'a10', datatype: DataType.DoubleArray, value: [0.1, 1e300] },
      { name: 'a11', datatype: DataType.BooleanArray, value: [true, false, true] },
      { name: 'a12', datatype: DataType.StringArray, value: ['a', '', 'ü'] },
      { name: 'a13', datatype: DataType.DateTimeArray, value: [0n, 1700000000000n] },
    ];
    const p = decodePayload(encodePayload({ metrics: arrays }));
    arrays.forEach((m, i) => expect(valueOf(p.metrics[i]!, m.datatype)).toEqual(m.value));
  });
});

describe('malformed input is refused, never thrown past the codec', () => {
  it('garbage bytes', () => {
    for (const bytes of [[0xff, 0xff, 0xff], [0x0a, 0x05, 0x01], [0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80], Buffer.from('{"json":true}')]) {
      let err: unknown;
      try {
        const p = decodePayload(Uint8Array.from(bytes));
        p.metrics.forEach((m) => valueOf(m, m.datatype ?? DataType.Int32));
      } catch (e) {
        err = e;
      }
      expect(err, Buffer.from(bytes).toString('hex')).toBeInstanceOf(RejectedInput);
    }
  });
  it('a value in the wrong wire field for its type', () => {
    const p = decodePayload(encodePayload({ metrics: [{ name: 'x', datatype: DataType.String, value: 'text' }] }));
    expect(() => valueOf(p.metrics[0]!, DataType.Int32)).toThrow(/expected int_value, got string_value/);
  });
  it('wrong topic shapes', () => {
    for (const [t, why] of [
      ['spBv1.0/g/NDATA', /expected spBv1.0\/group_id/],
      ['spBv1.0/g/DDATA/e', /device messages need a device_id/],
      ['spBv1.0/g/NDATA/e/d', /not a device message type/],
      ['spBv1.0/g/XDATA/e', /not an edge node message type/],
      ['spBv1.0//NDATA/e', /empty id/],
      ['spBv1.0/STATE', /expected spBv1.0/],
      ['spAv1.0/g/NDATA/e', /namespace/],
    ] as const) {
      expect(() => parseTopic(t), t).toThrow(why);
    }
  });
});

describe('fuzz: arbitrary bytes and mutated payloads', () => {
  it('decode and value reading either succeed or refuse with RejectedInput, never anything else', async () => {
    const fc = (await import('fast-check')).default;
    const valid = encodePayload({ timestamp: 1, seq: 3, metrics: [
      { name: 'a', alias: 1, datatype: DataType.DataSet, value: { columns: ['x'], types: [DataType.Int32], rows: [[1n]] } },
      { name: 'b', datatype: DataType.Int32Array, value: [1n, 2n] },
      { name: 'c', datatype: DataType.Template, value: templateOf([{ name: 'm', datatype: DataType.Float, value: 1 }]) },
    ] });
    const check = (bytes: Uint8Array) => {
      try {
        const p = decodePayload(bytes);
        for (const m of p.metrics) for (const t of [m.datatype ?? 0, DataType.Int64, DataType.DataSet, DataType.Template, DataType.BooleanArray, DataType.StringArray]) {
          try {
            valueOf(m, t);
          } catch (err) {
            if (!(err instanceof RejectedInput)) throw err;
          }
        }
      } catch (err) {
        if (!(err instanceof RejectedInput)) throw err;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => check(b)), { numRuns: 2000 });
    // flips and truncations of a valid payload reach deeper into the decoder than random bytes
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(valid.length), (i, v, cut) => {
        const b = Uint8Array.from(valid);
        b[i] = v;
        check(b.subarray(0, cut));
        check(b);
      }),
      { numRuns: 2000 },
    );
  });
});
