import { DataType, StatusCodes, Variant, VariantArrayType } from 'node-opcua';
import { describe, expect, it } from 'vitest';
import { Unsigned } from '../../core/point.js';
import { convertVariant, qualityOf } from './values.js';

const v = (dataType: DataType, value: unknown, arrayType = VariantArrayType.Scalar) => new Variant({ dataType, arrayType, value });

describe('OPC UA values to fields', () => {
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

  it('reads quality from the status code severity', () => {
    expect(qualityOf(StatusCodes.Good)).toBe('good');
    expect(qualityOf(StatusCodes.UncertainLastUsableValue)).toBe('uncertain');
    expect(qualityOf(StatusCodes.BadSensorFailure)).toBe('bad');
  });
});
