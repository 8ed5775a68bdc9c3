/**
 * Sparkplug metrics -> plantgate field values. One metric may give several fields: arrays as
 * `name[i]`, DataSets as `name[row].column`, template instances member by member as
 * `name/member` (the Sparkplug folder separator), so a dashboard finds them by the names the edge
 * node's own tag browser shows. Integers of every width are InfluxDB integers (UInt64 unsigned,
 * see Unsigned), floats floats,
 * DateTime epoch ms as integer, Bytes and File base64 strings.
 */
import { RejectedInput } from '../../core/errors.js';
import { Unsigned, type FieldValue, type Quality } from '../../core/point.js';
import { checkFieldValue } from '../../lineprotocol/encode.js';
import { DataType, valueOf, type DataSetValue, type PropertySet, type TemplateValue, type Value } from './codec.js';

export interface Limits {
  maxArrayLength: number;
  maxBytesLength: number;
}

/** Flattens one metric's value under `name`; throws RejectedInput for values InfluxDB cannot hold. */
export function flatten(name: string, type: DataType, value: Value, limits: Limits, out: [string, FieldValue][] = []): [string, FieldValue][] {
  if (value === null) return out;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || typeof value === 'string') {
    const v = typeof value === 'bigint' && (type === DataType.UInt64 || type === DataType.UInt64Array) ? new Unsigned(value) : value;
    // the guard's own rules, per value, so one bad value does not cost the metric's others
    checkFieldValue(name, v);
    out.push([name, v]);
    return out;
  }
  if (value instanceof Uint8Array) {
    if (value.length > limits.maxBytesLength) throw new RejectedInput('too_large', `${name}: ${DataType[type]} of ${value.length} bytes exceeds maxBytesLength ${limits.maxBytesLength}`);
    out.push([name, Buffer.from(value.buffer, value.byteOffset, value.length).toString('base64')]);
    return out;
  }
  if (Array.isArray(value)) {
    if (type === DataType.PropertySetList) return out;
    if (value.length > limits.maxArrayLength) throw new RejectedInput('array_too_long', `${name}: ${value.length} elements, more than maxArrayLength ${limits.maxArrayLength}`);
    value.forEach((v, i) => flatten(`${name}[${i}]`, type, v as Value, limits, out));
    return out;
  }
  if (type === DataType.DataSet) {
    const ds = value as DataSetValue;
    if (ds.rows.length > limits.maxArrayLength) throw new RejectedInput('array_too_long', `${name}: DataSet of ${ds.rows.length} rows, more than maxArrayLength ${limits.maxArrayLength}`);
    ds.rows.forEach((row, r) => row.forEach((cell, c) => flatten(`${name}[${r}].${ds.columns[c]}`, ds.types[c]!, cell, limits, out)));
    return out;
  }
  if (type === DataType.Template) {
    const t = value as TemplateValue;
    if (t.isDefinition) return out; // a definition describes a type; its instances carry values
    if (t.metrics.length > limits.maxArrayLength * 16) throw new RejectedInput('array_too_long', `${name}: template with ${t.metrics.length} members`);
    for (const m of t.metrics) {
      if (m.name === undefined || m.datatype === undefined) throw new RejectedInput('sparkplug_bad_value', `${name}: template member without name or datatype`);
      flatten(`${name}/${m.name}`, m.datatype, valueOf(m, m.datatype), limits, out);
    }
    return out;
  }
  return out; // property sets are metadata, not values
}

/**
 * Spec 6.4.x Quality property: 192 GOOD, 0 BAD, 500 STALE. Anything else is not a code the
 * specification defines, so it is kept as uncertain with its number.
 */
export function qualityOf(props: PropertySet | undefined): { quality: Quality; code?: string } {
  const q = props?.Quality ?? props?.quality;
  if (!q || q.value === null || typeof q.value !== 'bigint') return { quality: 'good' };
  const n = Number(BigInt.asIntN(32, q.value));
  if (n === 192) return { quality: 'good' };
  if (n === 0) return { quality: 'bad', code: 'BAD' };
  if (n === 500) return { quality: 'bad', code: 'STALE' };
  return { quality: 'uncertain', code: `QUALITY_${n}` };
}

/** Splits a metric name into measurement and field (see config `metricPath`). */
export function splitName(name: string, defaultMeasurement: string, separator: string, levels: number): { measurement: string; field: string } {
  if (levels === 0) return { measurement: defaultMeasurement, field: name };
  const parts = name.split(separator);
  if (parts.length <= levels) return { measurement: defaultMeasurement, field: name };
  return { measurement: parts.slice(0, levels).join(separator), field: parts.slice(levels).join(separator) };
}

/** A short text of a value for the status page (never the whole array or dataset). */
export function displayValue(v: Value): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return v.length > 40 ? `${v.slice(0, 40)}…` : v;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `[${v.length}]`;
  if ('rows' in v && Array.isArray(v.rows)) return `dataset ${v.rows.length}x${(v as DataSetValue).columns.length}`;
  if ('metrics' in v && Array.isArray(v.metrics)) return `template ${(v as TemplateValue).templateRef ?? ''}`.trim();
  return 'properties';
}
