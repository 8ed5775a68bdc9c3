/**
 * Sparkplug B payloads: the protobuf of Eclipse Tahu (sparkplug_b.proto, vendored beside this file)
 * through protobufjs, and the value rules of the specification (chapter 6) on top of it.
 *
 * We do not use `sparkplug-payload`: its 1.0.3 cannot decode DataSets with Int8/16/32, UInt64 or
 * DateTime columns, nor any array type. Values are decoded only once the data type is known, because
 * DATA messages may omit it (the birth gave it) and the same wire field means different things:
 * `int_value` 0xFFFFFFFF is -1 as Int8/16/32 and 4294967295 as UInt32.
 */
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import Long from 'long';
import { RejectedInput } from '../../core/errors.js';

export enum DataType {
  Unknown = 0,
  Int8 = 1, Int16 = 2, Int32 = 3, Int64 = 4,
  UInt8 = 5, UInt16 = 6, UInt32 = 7, UInt64 = 8,
  Float = 9, Double = 10, Boolean = 11, String = 12, DateTime = 13, Text = 14,
  UUID = 15, DataSet = 16, Bytes = 17, File = 18, Template = 19,
  PropertySet = 20, PropertySetList = 21,
  Int8Array = 22, Int16Array = 23, Int32Array = 24, Int64Array = 25,
  UInt8Array = 26, UInt16Array = 27, UInt32Array = 28, UInt64Array = 29,
  FloatArray = 30, DoubleArray = 31, BooleanArray = 32, StringArray = 33, DateTimeArray = 34,
}

export interface DataSetValue {
  columns: string[];
  types: DataType[];
  rows: Value[][];
}

export interface TemplateValue {
  version?: string;
  templateRef?: string;
  isDefinition: boolean;
  metrics: Metric[];
  parameters: Record<string, Value>;
}

/** A decoded value; integers of every width as bigint so 64-bit ones stay exact. */
export type Value =
  | number | bigint | boolean | string | Uint8Array | null
  | number[] | bigint[] | boolean[] | string[]
  | DataSetValue | TemplateValue | PropertySet | PropertySet[];

export type PropertySet = Record<string, { type: DataType; value: Value }>;

export interface Metric {
  name?: string;
  alias?: bigint;
  timestamp?: number;
  datatype?: DataType;
  isHistorical: boolean;
  isTransient: boolean;
  isNull: boolean;
  properties?: PropertySet;
  /** The protobuf message; `valueOf(metric, type)` reads the value once the type is known. */
  readonly wire: WireMetric;
}

export interface Payload {
  timestamp?: number;
  seq?: number;
  uuid?: string;
  body?: Uint8Array;
  metrics: Metric[];
}

/** What the simulator and the host's commands encode. */
export interface MetricInput {
  name?: string;
  alias?: bigint | number;
  timestamp?: number;
  datatype: DataType;
  value: Value;
  isHistorical?: boolean;
  isTransient?: boolean;
  properties?: PropertySet;
}

// ---- protobuf ------------------------------------------------------------------------------

type WireMetric = Record<string, unknown> & { value?: string };
// keepCase: the field names of the .proto (int_value...), as the specification writes them
const root = protobuf.parse(readFileSync(new URL('./sparkplug_b.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
const PayloadType = root.lookupType('org.eclipse.tahu.protobuf.Payload');
const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function toBig(v: unknown): bigint {
  if (typeof v === 'number') return BigInt(v);
  if (Long.isLong(v)) return BigInt.asUintN(64, (BigInt((v as Long).high >>> 0) << 32n) | BigInt((v as Long).low >>> 0));
  throw new Error(`not an integer: ${String(v)}`);
}
const toMs = (v: unknown): number => Number(toBig(v));
const toLong = (v: bigint | number): Long => Long.fromString(BigInt.asUintN(64, BigInt(v)).toString(), true);

export function decodePayload(buf: Uint8Array): Payload {
  let msg: Record<string, unknown>;
  try {
    msg = PayloadType.decode(buf) as unknown as Record<string, unknown>;
  } catch (err) {
    throw new RejectedInput('sparkplug_malformed', `not a Sparkplug B payload: ${(err as Error).message}`);
  }
  const p: Payload = { metrics: ((msg.metrics as WireMetric[]) ?? []).map(readMetric) };
  if (own(msg, 'timestamp')) p.timestamp = toMs(msg.timestamp);
  if (own(msg, 'seq')) p.seq = Number(toBig(msg.seq));
  if (own(msg, 'uuid')) p.uuid = msg.uuid as string;
  if (own(msg, 'body')) p.body = msg.body as Uint8Array;
  return p;
}

function readMetric(w: WireMetric): Metric {
  const m: Metric = { isHistorical: w.is_historical === true, isTransient: w.is_transient === true, isNull: w.is_null === true, wire: w };
  if (own(w, 'name')) m.name = w.name as string;
  if (own(w, 'alias')) m.alias = toBig(w.alias);
  if (own(w, 'timestamp')) m.timestamp = toMs(w.timestamp);
  if (own(w, 'datatype')) m.datatype = w.datatype as DataType;
  if (own(w, 'properties')) m.properties = readPropertySet(w.properties as Record<string, unknown>);
  return m;
}

function readPropertySet(ps: Record<string, unknown>): PropertySet {
  const keys = (ps.keys as string[]) ?? [];
  const values = (ps.values as Record<string, unknown>[]) ?? [];
  const out: PropertySet = {};
  keys.forEach((k, i) => {
    const pv = values[i];
    if (!pv) return;
    const type = (pv.type as DataType) ?? DataType.Unknown;
    let value: Value = null;
    if (pv.is_null !== true) {
      if (pv.value === 'propertyset_value') value = readPropertySet(pv.propertyset_value as Record<string, unknown>);
      else if (pv.value === 'propertysets_value') value = ((pv.propertysets_value as { propertyset?: Record<string, unknown>[] }).propertyset ?? []).map(readPropertySet);
      else value = scalar(pv, pv.value as string | undefined, type, 'property');
    }
    out[k] = { type, value };
  });
  return out;
}

/** The metric's value read as `type` (the metric's own or the one its birth declared). */
export function valueOf(m: Metric, type: DataType): Value {
  if (m.isNull) return null;
  const w = m.wire;
  switch (type) {
    case DataType.DataSet: {
      const ds = w.dataset_value as Record<string, unknown> | undefined;
      if (!ds) throw bad(type, 'no dataset_value');
      const types = ((ds.types as number[]) ?? []) as DataType[];
      const columns = (ds.columns as string[]) ?? [];
      if (types.length !== columns.length) throw bad(type, `${columns.length} columns but ${types.length} types`);
      const rows = ((ds.rows as { elements?: Record<string, unknown>[] }[]) ?? []).map((r, ri) => {
        const el = r.elements ?? [];
        if (el.length !== columns.length) throw bad(type, `row ${ri} has ${el.length} values for ${columns.length} columns`);
        return el.map((e, ci) => scalar(e, e.value as string | undefined, types[ci]!, `row ${ri} column ${columns[ci]}`));
      });
      return { columns, types, rows };
    }
    case DataType.Template: {
      const t = w.template_value as Record<string, unknown> | undefined;
      if (!t) throw bad(type, 'no template_value');
      const parameters: Record<string, Value> = {};
      for (const p of (t.parameters as Record<string, unknown>[]) ?? []) {
        if (own(p, 'name')) parameters[p.name as string] = scalar(p, p.value as string | undefined, (p.type as DataType) ?? DataType.Unknown, `parameter ${String(p.name)}`);
      }
      const tv: TemplateValue = { isDefinition: t.is_definition === true, metrics: ((t.metrics as WireMetric[]) ?? []).map(readMetric), parameters };
      if (own(t, 'version')) tv.version = t.version as string;
      if (own(t, 'template_ref')) tv.templateRef = t.template_ref as string;
      return tv;
    }
    default:
      return scalar(w, w.value, type, 'metric');
  }
}

const bad = (type: DataType, detail: string) => new RejectedInput('sparkplug_bad_value', `${DataType[type] ?? `type ${type}`}: ${detail}`);

/** A scalar or array value out of a oneof (metric, property, dataset cell, template parameter). */
function scalar(o: Record<string, unknown>, field: string | undefined, type: DataType, where: string): Value {
  const v = field ? o[field] : undefined;
  const want = (f: string) => {
    if (field !== f) throw bad(type, `${where}: expected ${f}, got ${field ?? 'no value'}`);
    return v;
  };
  switch (type) {
    case DataType.Int8: return BigInt((Number(want('int_value')) << 24) >> 24);
    case DataType.Int16: return BigInt((Number(want('int_value')) << 16) >> 16);
    case DataType.Int32: return BigInt(Number(want('int_value')) | 0);
    case DataType.UInt8: return BigInt(Number(want('int_value')) & 0xff);
    case DataType.UInt16: return BigInt(Number(want('int_value')) & 0xffff);
    case DataType.UInt32: return BigInt(Number(want('int_value')) >>> 0);
    case DataType.Int64: return BigInt.asIntN(64, toBig(want('long_value')));
    case DataType.UInt64: return toBig(want('long_value'));
    case DataType.DateTime: return toBig(want('long_value'));
    case DataType.Float: return Number(want('float_value'));
    case DataType.Double: return Number(want('double_value'));
    case DataType.Boolean: return Boolean(want('boolean_value'));
    case DataType.String: case DataType.Text: case DataType.UUID: return String(want('string_value'));
    case DataType.Bytes: case DataType.File: return want('bytes_value') as Uint8Array;
    default:
      if (type >= DataType.Int8Array && type <= DataType.DateTimeArray) return readArray(want('bytes_value') as Uint8Array, type);
      throw bad(type, `${where}: unsupported data type`);
  }
}

const WIDTH: Partial<Record<DataType, number>> = {
  [DataType.Int8Array]: 1, [DataType.UInt8Array]: 1, [DataType.Int16Array]: 2, [DataType.UInt16Array]: 2,
  [DataType.Int32Array]: 4, [DataType.UInt32Array]: 4, [DataType.FloatArray]: 4,
  [DataType.Int64Array]: 8, [DataType.UInt64Array]: 8, [DataType.DoubleArray]: 8, [DataType.DateTimeArray]: 8,
};

/** Spec 6.4.17: little-endian packed; booleans bit-packed after a 4-byte count; strings NUL-terminated. */
export function readArray(b: Uint8Array, type: DataType): number[] | bigint[] | boolean[] | string[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (type === DataType.BooleanArray) {
    if (b.length < 4) throw bad(type, 'shorter than its 4-byte count');
    const n = dv.getUint32(0, true);
    if (Math.ceil(n / 8) > b.length - 4) throw bad(type, `count ${n} needs ${Math.ceil(n / 8)} bytes, ${b.length - 4} given`);
    const out: boolean[] = [];
    // bit 7 of the first byte is element 0 (spec example: F,F,T,T,F,T,F,F -> 0x34)
    for (let i = 0; i < n; i++) out.push(((b[4 + (i >> 3)]! >> (7 - (i & 7))) & 1) === 1);
    return out;
  }
  if (type === DataType.StringArray) {
    if (b.length === 0) return [];
    if (b[b.length - 1] !== 0) throw bad(type, 'last string is not NUL-terminated');
    return Buffer.from(b.buffer, b.byteOffset, b.length - 1).toString('utf8').split('\u0000');
  }
  const w = WIDTH[type]!;
  if (b.length % w !== 0) throw bad(type, `${b.length} bytes is not a multiple of ${w}`);
  const n = b.length / w;
  const nums: number[] = [];
  const bigs: bigint[] = [];
  for (let i = 0, o = 0; i < n; i++, o += w) {
    switch (type) {
      case DataType.Int8Array: bigs.push(BigInt(dv.getInt8(o))); break;
      case DataType.UInt8Array: bigs.push(BigInt(dv.getUint8(o))); break;
      case DataType.Int16Array: bigs.push(BigInt(dv.getInt16(o, true))); break;
      case DataType.UInt16Array: bigs.push(BigInt(dv.getUint16(o, true))); break;
      case DataType.Int32Array: bigs.push(BigInt(dv.getInt32(o, true))); break;
      case DataType.UInt32Array: bigs.push(BigInt(dv.getUint32(o, true))); break;
      case DataType.Int64Array: bigs.push(dv.getBigInt64(o, true)); break;
      case DataType.UInt64Array: case DataType.DateTimeArray: bigs.push(dv.getBigUint64(o, true)); break;
      case DataType.FloatArray: nums.push(dv.getFloat32(o, true)); break;
      case DataType.DoubleArray: nums.push(dv.getFloat64(o, true)); break;
    }
  }
  return type === DataType.FloatArray || type === DataType.DoubleArray ? nums : bigs;
}

export function writeArray(values: readonly (number | bigint | boolean | string)[], type: DataType): Uint8Array {
  if (type === DataType.BooleanArray) {
    const b = new Uint8Array(4 + Math.ceil(values.length / 8));
    new DataView(b.buffer).setUint32(0, values.length, true);
    values.forEach((v, i) => {
      if (v) b[4 + (i >> 3)]! |= 1 << (7 - (i & 7));
    });
    return b;
  }
  if (type === DataType.StringArray) return Buffer.from(values.map((s) => `${String(s)}\u0000`).join(''), 'utf8');
  const w = WIDTH[type]!;
  const b = new Uint8Array(values.length * w);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => {
    const o = i * w;
    switch (type) {
      case DataType.Int8Array: dv.setInt8(o, Number(v)); break;
      case DataType.UInt8Array: dv.setUint8(o, Number(v)); break;
      case DataType.Int16Array: dv.setInt16(o, Number(v), true); break;
      case DataType.UInt16Array: dv.setUint16(o, Number(v), true); break;
      case DataType.Int32Array: dv.setInt32(o, Number(v), true); break;
      case DataType.UInt32Array: dv.setUint32(o, Number(v), true); break;
      case DataType.Int64Array: dv.setBigInt64(o, BigInt(v), true); break;
      case DataType.UInt64Array: case DataType.DateTimeArray: dv.setBigUint64(o, BigInt(v), true); break;
      case DataType.FloatArray: dv.setFloat32(o, Number(v), true); break;
      case DataType.DoubleArray: dv.setFloat64(o, Number(v), true); break;
    }
  });
  return b;
}

// ---- encoding (simulator, NCMD) -------------------------------------------------------------

export function encodePayload(p: { timestamp?: number; seq?: number; uuid?: string; body?: Uint8Array; metrics: MetricInput[] }): Uint8Array {
  const msg: Record<string, unknown> = { metrics: p.metrics.map(writeMetric) };
  if (p.timestamp !== undefined) msg.timestamp = toLong(p.timestamp);
  if (p.seq !== undefined) msg.seq = toLong(p.seq);
  if (p.uuid !== undefined) msg.uuid = p.uuid;
  if (p.body !== undefined) msg.body = p.body;
  return PayloadType.encode(PayloadType.fromObject(msg)).finish();
}

function writeMetric(m: MetricInput): Record<string, unknown> {
  const w: Record<string, unknown> = { datatype: m.datatype };
  if (m.name !== undefined) w.name = m.name;
  if (m.alias !== undefined) w.alias = toLong(m.alias);
  if (m.timestamp !== undefined) w.timestamp = toLong(m.timestamp);
  if (m.isHistorical) w.is_historical = true;
  if (m.isTransient) w.is_transient = true;
  if (m.properties) w.properties = writePropertySet(m.properties);
  if (m.value === null) w.is_null = true;
  else Object.assign(w, writeValue(m.value, m.datatype));
  return w;
}

function writePropertySet(ps: PropertySet): Record<string, unknown> {
  const keys = Object.keys(ps);
  return {
    keys,
    values: keys.map((k) => {
      const { type, value } = ps[k]!;
      if (value === null) return { type, is_null: true };
      if (type === DataType.PropertySet) return { type, propertyset_value: writePropertySet(value as PropertySet) };
      if (type === DataType.PropertySetList) return { type, propertysets_value: { propertyset: (value as PropertySet[]).map(writePropertySet) } };
      return { type, ...writeValue(value, type) };
    }),
  };
}

function writeValue(v: Value, type: DataType): Record<string, unknown> {
  switch (type) {
    case DataType.Int8: case DataType.Int16: case DataType.Int32:
    case DataType.UInt8: case DataType.UInt16: case DataType.UInt32:
      // signed values travel as their two's complement in uint32 (what Tahu does)
      return { int_value: Number(v) >>> 0 };
    case DataType.Int64: case DataType.UInt64: case DataType.DateTime:
      return { long_value: toLong(v as bigint | number) };
    case DataType.Float: return { float_value: v };
    case DataType.Double: return { double_value: v };
    case DataType.Boolean: return { boolean_value: v };
    case DataType.String: case DataType.Text: case DataType.UUID: return { string_value: v };
    case DataType.Bytes: case DataType.File: return { bytes_value: v };
    case DataType.DataSet: {
      const ds = v as DataSetValue;
      return {
        dataset_value: {
          num_of_columns: toLong(ds.columns.length),
          columns: ds.columns,
          types: ds.types,
          rows: ds.rows.map((r) => ({ elements: r.map((cell, i) => writeValue(cell, ds.types[i]!)) })),
        },
      };
    }
    case DataType.Template: {
      const t = v as TemplateValue;
      const tv: Record<string, unknown> = {
        is_definition: t.isDefinition,
        metrics: t.metrics.map((m) => writeMetric({ ...m, datatype: m.datatype ?? DataType.Unknown, value: valueOf(m, m.datatype ?? DataType.Unknown) } as MetricInput)),
      };
      if (t.version !== undefined) tv.version = t.version;
      if (t.templateRef !== undefined) tv.template_ref = t.templateRef;
      return { template_value: tv };
    }
    default:
      if (type >= DataType.Int8Array && type <= DataType.DateTimeArray) return { bytes_value: writeArray(v as (number | bigint | boolean | string)[], type) };
      throw new Error(`cannot encode ${DataType[type] ?? type}`);
  }
}

/** Template members as inputs, for building a template value to encode. */
export function templateOf(metrics: MetricInput[], opts: { templateRef?: string; isDefinition?: boolean; version?: string } = {}): TemplateValue {
  // round-trip through the wire form so the members carry their values like decoded ones
  const decoded = decodePayload(encodePayload({ metrics })).metrics;
  return { metrics: decoded, parameters: {}, isDefinition: opts.isDefinition ?? false, ...(opts.templateRef ? { templateRef: opts.templateRef } : {}), ...(opts.version ? { version: opts.version } : {}) };
}
