/**
 * OPC UA values to point fields. Each OPC UA data type has one InfluxDB type, decided by the data
 * type and never by the value, so a field cannot flip between integer and float (which InfluxDB
 * refuses for the rest of the shard):
 *   Boolean -> boolean; SByte..UInt64 (and enumerations, which arrive as Int32) -> integer;
 *   Float, Double -> float; DateTime -> integer epoch ms; text-like types -> string;
 *   structures -> their numeric / boolean / string members as `field.member`; arrays -> `field[i]`.
 * A value that cannot be written (NaN, an array longer than the limit, an opaque type) is returned
 * as an error with a reason, so the caller dead-letters that one value and keeps the others.
 */
import { DataType, type StatusCode, type Variant, VariantArrayType } from 'node-opcua';
import { Unsigned, type FieldValue, type Quality } from '../../core/point.js';

export type Converted = { ok: true; fields: Record<string, FieldValue> } | { ok: false; reason: string; detail: string };

/** OPC UA status severity: the top two bits (Part 4, 7.39). */
export function qualityOf(status: StatusCode): Quality {
  const severity = status.value >>> 30;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

export function convertVariant(field: string, v: Variant | null | undefined, maxArrayLength: number): Converted {
  const fields: Record<string, FieldValue> = {};
  if (!v || v.dataType === DataType.Null || v.value === null || v.value === undefined) return { ok: true, fields };
  if (v.arrayType === VariantArrayType.Scalar) {
    const err = put(fields, field, v.dataType, v.value);
    return err ? { ok: false, reason: err, detail: `${field}: ${DataType[v.dataType]}` } : { ok: true, fields };
  }
  const arr = v.value as ArrayLike<unknown>;
  if (arr.length > maxArrayLength) {
    return { ok: false, reason: 'array_too_long', detail: `${field}: ${arr.length} elements, more than maxArrayLength ${maxArrayLength}` };
  }
  for (let i = 0; i < arr.length; i++) {
    const err = put(fields, `${field}[${i}]`, v.dataType, arr[i]);
    if (err) return { ok: false, reason: err, detail: `${field}[${i}]: ${DataType[v.dataType]}` };
  }
  return { ok: true, fields };
}

/** Adds one scalar; returns a reason when it cannot be represented. */
function put(out: Record<string, FieldValue>, name: string, type: DataType, value: unknown): string | undefined {
  switch (type) {
    case DataType.Boolean:
      out[name] = Boolean(value);
      return;
    case DataType.SByte:
    case DataType.Byte:
    case DataType.Int16:
    case DataType.UInt16:
    case DataType.Int32:
    case DataType.UInt32:
      out[name] = BigInt(value as number);
      return;
    case DataType.Int64:
    case DataType.UInt64: {
      // node-opcua carries 64-bit integers as [high, low] 32-bit words
      const [hi, lo] = value as [number, number];
      const raw = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
      out[name] = type === DataType.Int64 ? BigInt.asIntN(64, raw) : new Unsigned(raw);
      return;
    }
    case DataType.Float:
    case DataType.Double:
      if (!Number.isFinite(value as number)) return 'non_finite';
      out[name] = value as number;
      return;
    case DataType.DateTime:
      out[name] = BigInt((value as Date).getTime());
      return;
    case DataType.String:
    case DataType.XmlElement:
      out[name] = String(value);
      return;
    case DataType.LocalizedText:
      out[name] = (value as { text?: string | null }).text ?? '';
      return;
    case DataType.QualifiedName:
      out[name] = (value as { name?: string | null }).name ?? '';
      return;
    case DataType.NodeId:
    case DataType.ExpandedNodeId:
    case DataType.Guid:
      out[name] = String(value);
      return;
    case DataType.StatusCode:
      out[name] = (value as StatusCode).name;
      return;
    case DataType.ExtensionObject:
      return flattenStructure(out, name, value, 0);
    default:
      return 'unsupported_type';
  }
}

/** A structure's members, as JSON gives them, below `name.` (numbers as floats: JSON does not say which). */
function flattenStructure(out: Record<string, FieldValue>, name: string, value: unknown, depth: number): string | undefined {
  if (value === null || value === undefined) return;
  const obj = typeof (value as { toJSON?: unknown }).toJSON === 'function' ? (value as { toJSON(): unknown }).toJSON() : value;
  if (depth > 4) return 'structure_too_deep';
  if (typeof obj !== 'object' || obj === null) return 'unsupported_type';
  for (const [k, m] of Object.entries(obj as Record<string, unknown>)) {
    const key = `${name}.${k}`;
    if (typeof m === 'number') {
      if (Number.isFinite(m)) out[key] = m;
    } else if (typeof m === 'boolean' || typeof m === 'string') out[key] = m;
    else if (typeof m === 'object' && m !== null && !Array.isArray(m)) {
      const err = flattenStructure(out, key, m, depth + 1);
      if (err) return err;
    }
  }
  return;
}
