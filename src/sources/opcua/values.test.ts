import { BuildInfo, DataType, ServerState, ServerStatusDataType, StatusCodes, Variant, VariantArrayType } from 'node-opcua';
import { describe, expect, it } from 'vitest';
import { Unsigned } from '../../core/point.js';
import { convertVariant, declaredOf, plainNumber, qualityOf } from './values.js';

const v = (dataType: DataType, value: unknown, arrayType = VariantArrayType.Scalar) => new Variant({ dataType, arrayType, value });
/** A variant carrying a decoded structure as node-opcua hands it over (the constructor wants a class instance). */
const ext = (value: unknown) => Object.assign(new Variant({ dataType: DataType.ExtensionObject, value: new BuildInfo({}) }), { value });

describe('OPC UA values to fields', () => {
  it('takes a finite Float or Double scalar of a node with its own type as it is, and leaves everything else to convertVariant', () => {
    expect(plainNumber(v(DataType.Double, 1.25))).toBe(1.25);
    expect(plainNumber(v(DataType.Float, 2))).toBe(2);
    expect(plainNumber(v(DataType.Double, Number.NaN))).toBeUndefined();
    expect(plainNumber(v(DataType.Double, Number.POSITIVE_INFINITY))).toBeUndefined();
    expect(plainNumber(v(DataType.Int32, 7))).toBeUndefined();
    expect(plainNumber(v(DataType.Double, new Float64Array(2), VariantArrayType.Array))).toBeUndefined();
    expect(plainNumber(v(DataType.Double, 1), 'number')).toBeUndefined();
    expect(plainNumber(v(DataType.Double, 1), 'any')).toBeUndefined();
    expect(plainNumber(null)).toBeUndefined();
  });

  it('maps each data type to one InfluxDB type', () => {
    expect(convertVariant('f', v(DataType.Double, 1), 64)).toEqual({ ok: true, fields: { f: 1 } });
    expect(convertVariant('f', v(DataType.Float, 1.5), 64)).toEqual({ ok: true, fields: { f: 1.5 } });
    expect(convertVariant('f', v(DataType.Int32, -7), 64)).toEqual({ ok: true, fields: { f: -7n } });
    expect(convertVariant('f', v(DataType.Byte, 255), 64)).toEqual({ ok: true, fields: { f: 255n } });
    expect(convertVariant('f', v(DataType.Boolean, true), 64)).toEqual({ ok: true, fields: { f: true } });
    expect(convertVariant('f', v(DataType.String, 'O1000'), 64)).toEqual({ ok: true, fields: { f: 'O1000' } });
    expect(convertVariant('f', v(DataType.DateTime, new Date(1700000000123)), 64)).toEqual({ ok: true, fields: { f: 1700000000123n } });
    expect(convertVariant('f', v(DataType.LocalizedText, { text: 'Running' }), 64)).toEqual({ ok: true, fields: { f: 'Running' } });
  });

  it('carries 64-bit integers exactly; UInt64 as unsigned, so its full range survives where the sink has the type', () => {
    expect(convertVariant('f', v(DataType.Int64, [0x7fffffff, 0xffffffff]), 64)).toEqual({ ok: true, fields: { f: 9223372036854775807n } });
    expect(convertVariant('f', v(DataType.Int64, [0xffffffff, 0xfffffffe]), 64)).toEqual({ ok: true, fields: { f: -2n } });
    expect(convertVariant('f', v(DataType.UInt64, [0xffffffff, 0xffffffff]), 64)).toEqual({ ok: true, fields: { f: new Unsigned(18446744073709551615n) } });
  });

  it('flattens arrays up to the limit and refuses longer ones', () => {
    expect(convertVariant('ai', v(DataType.Float, new Float32Array([1, 2]), VariantArrayType.Array), 64)).toEqual({ ok: true, fields: { 'ai[0]': 1, 'ai[1]': 2 } });
    expect(convertVariant('ai', v(DataType.Double, new Float64Array(65), VariantArrayType.Array), 64)).toMatchObject({ ok: false, reason: 'array_too_long' });
  });

  it('refuses NaN and Infinity and gives nothing for a null value', () => {
    expect(convertVariant('f', v(DataType.Double, Number.NaN), 64)).toMatchObject({ ok: false, reason: 'non_finite' });
    expect(convertVariant('f', v(DataType.Float, Number.POSITIVE_INFINITY), 64)).toMatchObject({ ok: false, reason: 'non_finite' });
    expect(convertVariant('f', new Variant({ dataType: DataType.Null }), 64)).toEqual({ ok: true, fields: {} });
  });

  it('keeps one type per field for a node declared BaseDataType or Number, whatever type each value has', () => {
    expect(declaredOf({ namespace: 0, value: 24 })).toBe('any');
    expect(declaredOf({ namespace: 0, value: 26 })).toBe('number');
    expect(declaredOf({ namespace: 0, value: 11 })).toBe('concrete');
    expect(declaredOf({ namespace: 2, value: 24 })).toBe('concrete');
    // the values an abstract node sent, one after the other: an integer, a float, a string, a boolean, an Int64
    const seen = [v(DataType.Int32, 7), v(DataType.Double, 7.5), v(DataType.String, 'idle'), v(DataType.Boolean, true), v(DataType.Int64, [0, 9])].map((x) => convertVariant('f', x, 64, 'any'));
    expect(seen).toEqual([
      { ok: true, fields: { f: 7 } },
      { ok: true, fields: { f: 7.5 } },
      { ok: true, fields: { 'f.text': 'idle' } },
      { ok: true, fields: { f: 1 } },
      { ok: true, fields: { f: 9 } },
    ]);
    expect(convertVariant('f', v(DataType.UInt16, 3), 64, 'number')).toEqual({ ok: true, fields: { f: 3 } });
    expect(convertVariant('f', v(DataType.String, 'x'), 64, 'number')).toMatchObject({ ok: false, reason: 'wrong_type' });
  });

  it('types structure members by the structure\'s definition, as top-level values', () => {
    const at = new Date(1700000000123);
    const status = new ServerStatusDataType({ startTime: at, currentTime: at, state: ServerState.Suspended, buildInfo: new BuildInfo({ productName: 'cnc', buildDate: at }), secondsTillShutdown: 5 });
    const got = convertVariant('st', new Variant({ dataType: DataType.ExtensionObject, value: status }), 64);
    expect(got).toMatchObject({ ok: true, fields: { 'st.startTime': 1700000000123n, 'st.state': BigInt(ServerState.Suspended), 'st.secondsTillShutdown': 5n, 'st.buildInfo.productName': 'cnc', 'st.buildInfo.buildDate': 1700000000123n } });
    // a structure with Int64, Int16, Int32 and UInt32 members (as node-opcua decodes them: Int64 as [high, low] words)
    const custom = { schema: { fields: [{ name: 'count', fieldType: 'Int64', category: 'basic' }, { name: 'temp', fieldType: 'Int16', category: 'basic' }, { name: 'pos', fieldType: 'Int32', category: 'basic' }, { name: 'parts', fieldType: 'UInt32', category: 'basic' }, { name: 'load', fieldType: 'Double', category: 'basic' }, { name: 'took', fieldType: 'Duration', category: 'basic' }, { name: 'raw', fieldType: 'ByteString', category: 'basic' }, { name: 'axes', fieldType: 'Int32', category: 'basic', isArray: true }] }, count: [1, 0], temp: -3, pos: 12, parts: 4000000000, load: 1, took: 250, raw: Buffer.from('x'), axes: [1, 2] };
    expect(convertVariant('s', ext(custom), 64)).toEqual({ ok: true, fields: { 's.count': 4294967296n, 's.temp': -3n, 's.pos': 12n, 's.parts': 4000000000n, 's.load': 1, 's.took': 250, 's.axes[0]': 1n, 's.axes[1]': 2n } });
    // an encoding the client could not resolve has no definition: refused, not guessed
    expect(convertVariant('s', ext({ a: 1 }), 64)).toMatchObject({ ok: false, reason: 'unsupported_type' });
    // structures inside structures are followed 4 levels deep, not without end
    const nest = (d: number): unknown => (d === 0 ? { schema: { fields: [{ name: 'v', fieldType: 'Double', category: 'basic' }] }, v: 1 } : { schema: { fields: [{ name: 'inner', category: 'complex' }] }, inner: nest(d - 1) });
    expect(convertVariant('s', ext(nest(4)), 64)).toEqual({ ok: true, fields: { 's.inner.inner.inner.inner.v': 1 } });
    expect(convertVariant('s', ext(nest(6)), 64)).toMatchObject({ ok: false, reason: 'structure_too_deep' });
  });

  it('reads quality from the status code severity', () => {
    expect(qualityOf(StatusCodes.Good)).toBe('good');
    expect(qualityOf(StatusCodes.UncertainLastUsableValue)).toBe('uncertain');
    expect(qualityOf(StatusCodes.BadSensorFailure)).toBe('bad');
  });
});
