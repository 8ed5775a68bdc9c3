/**
 * OPC UA values to point fields. Each OPC UA data type has one InfluxDB type, decided by the data
 * type and never by the value, so a field cannot flip between integer and float (which InfluxDB
 * refuses for the rest of the shard):
 *   Boolean -> boolean; SByte..UInt64 (and enumerations, which arrive as Int32) -> integer;
 *   Float, Double -> float; DateTime -> integer epoch ms; text-like types -> string;
 *   structures -> each member as `field.member`, typed by the structure's definition by the same
 *   rules (an Int64 member is an integer, a DateTime member epoch ms, an enumeration member its
 *   integer value); arrays -> `field[i]`.
 * A node declared with an abstract data type (BaseDataType, Number, Integer, UInteger) may send a
 * different concrete type with every value. Its fields are typed by the declaration instead:
 * every number (and, for BaseDataType, a boolean as 0 or 1) goes to `field` as a float, anything
 * else to `field.text` as a string. So the field keeps one type whatever the server sends.
 * A value that cannot be written (NaN, an array longer than the limit, an opaque type) is returned
 * as an error with a reason, so the caller dead-letters that one value and keeps the others.
 */
import { DataType, type StatusCode, Variant, VariantArrayType } from 'node-opcua';
import { findBuiltInType } from 'node-opcua-factory';
import { Unsigned, type FieldValue, type Quality } from '../../core/point.js';
import type { DropReason } from '../../core/reasons.js';

export type Converted = { ok: true; fields: Record<string, FieldValue> } | { ok: false; reason: DropReason; detail: string };

/** OPC UA status severity: the top two bits (Part 4, 7.39). */
export function qualityOf(status: StatusCode): Quality {
  const severity = status.value >>> 30;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

/**
 * How the node's declared data type decides the fields: `concrete` (the value's own type, the
 * usual case), `number` (Number, Integer, UInteger: a float field) or `any` (BaseDataType: a
 * float field for numbers and booleans, a `.text` string field for the rest).
 */
export type Declared = 'concrete' | 'number' | 'any';

/** ns=0 ids of the abstract data types a variable may be declared with (Part 5, 12.2). */
const ABSTRACT: Record<number, Declared> = { 24: 'any', 26: 'number', 27: 'number', 28: 'number' };

/** The declared DataType attribute (a NodeId of namespace 0) as `Declared`. */
export function declaredOf(dataType: { namespace: number; value: unknown } | undefined): Declared {
  return dataType && dataType.namespace === 0 && typeof dataType.value === 'number' ? (ABSTRACT[dataType.value] ?? 'concrete') : 'concrete';
}

export function convertVariant(field: string, v: Variant | null | undefined, maxArrayLength: number, declared: Declared = 'concrete'): Converted {
  const fields: Record<string, FieldValue> = {};
  if (!v || v.dataType === DataType.Null || v.value === null || v.value === undefined) return { ok: true, fields };
  const one = (name: string, value: unknown) => (declared === 'concrete' ? put(fields, name, v.dataType, value, maxArrayLength) : putAbstract(fields, name, v.dataType, value, declared, maxArrayLength));
  if (v.arrayType === VariantArrayType.Scalar) {
    const err = one(field, v.value);
    return err ? { ok: false, reason: err, detail: `${field}: ${DataType[v.dataType]}` } : { ok: true, fields };
  }
  const arr = v.value as ArrayLike<unknown>;
  if (arr.length > maxArrayLength) {
    return { ok: false, reason: 'array_too_long', detail: `${field}: ${arr.length} elements, more than maxArrayLength ${maxArrayLength}` };
  }
  for (let i = 0; i < arr.length; i++) {
    const err = one(`${field}[${i}]`, arr[i]);
    if (err) return { ok: false, reason: err, detail: `${field}[${i}]: ${DataType[v.dataType]}` };
  }
  return { ok: true, fields };
}

/**
 * The common case without the general path's objects: a finite Float or Double scalar of a node
 * declared with its own type is the field's value as it is. Anything else is undefined, and goes
 * through convertVariant (which also gives the reason a value cannot be written).
 */
export function plainNumber(v: Variant | null | undefined, declared: Declared = 'concrete'): number | undefined {
  if (!v || declared !== 'concrete' || v.arrayType !== VariantArrayType.Scalar || (v.dataType !== DataType.Double && v.dataType !== DataType.Float)) return undefined;
  const x = v.value as number;
  return Number.isFinite(x) ? x : undefined;
}

const NUMERIC = new Set([DataType.SByte, DataType.Byte, DataType.Int16, DataType.UInt16, DataType.Int32, DataType.UInt32, DataType.Int64, DataType.UInt64, DataType.Float, DataType.Double]);

/** A value of a node declared abstract: one float field for numbers, one string field for the rest. */
function putAbstract(out: Record<string, FieldValue>, name: string, type: DataType, value: unknown, declared: Declared, maxArrayLength: number): DropReason | undefined {
  if (type === DataType.ExtensionObject) return flattenStructure(out, name, value, 0, maxArrayLength);
  if (NUMERIC.has(type) || (declared === 'any' && type === DataType.Boolean)) {
    const tmp: Record<string, FieldValue> = {};
    const err = put(tmp, name, type, value, maxArrayLength);
    if (err) return err;
    const x = tmp[name];
    const n = typeof x === 'boolean' ? (x ? 1 : 0) : x instanceof Unsigned ? Number(x.value) : Number(x);
    if (!Number.isFinite(n)) return 'non_finite';
    out[name] = n;
    return;
  }
  if (declared === 'number') return 'wrong_type';
  const tmp: Record<string, FieldValue> = {};
  const err = put(tmp, name, type, value, maxArrayLength);
  if (err) return err;
  out[`${name}.text`] = String(tmp[name]);
  return;
}

/** Adds one scalar; returns a reason when it cannot be represented. */
function put(out: Record<string, FieldValue>, name: string, type: DataType, value: unknown, maxArrayLength = 64): DropReason | undefined {
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
      return flattenStructure(out, name, value, 0, maxArrayLength);
    default:
      return 'unsupported_type';
  }
}

/** Simple types (Part 3 and 5) that findBuiltInType does not resolve to their built-in type. */
const ALIASES: Record<string, DataType> = {
  IntegerId: DataType.UInt32, Index: DataType.UInt32, Counter: DataType.UInt32, VersionTime: DataType.UInt32,
  Duration: DataType.Double, UtcTime: DataType.DateTime, Date: DataType.DateTime, LocaleId: DataType.String,
  NumericRange: DataType.String, Time: DataType.String, NormalizedString: DataType.String, DecimalString: DataType.String,
  DurationString: DataType.String, TimeString: DataType.String, DateString: DataType.String, BitFieldMaskDataType: DataType.UInt64,
};

/** A structure field's declared type name as a built-in data type (undefined: not one). */
function builtInOf(fieldType: string): DataType | undefined {
  const direct = (DataType as unknown as Record<string, DataType | undefined>)[fieldType];
  if (typeof direct === 'number') return direct;
  if (ALIASES[fieldType] !== undefined) return ALIASES[fieldType];
  try {
    const b = findBuiltInType(fieldType);
    const t = (DataType as unknown as Record<string, DataType | undefined>)[b.name];
    return typeof t === 'number' ? t : undefined;
  } catch {
    return undefined;
  }
}

interface StructureField {
  name: string;
  fieldType: string;
  category: 'basic' | 'enumeration' | 'complex';
  isArray?: boolean;
}

/**
 * A structure's members below `name.`, each typed by the structure's definition (its schema, which
 * node-opcua builds from the type dictionary or DataTypeDefinition) by the same rules as a value
 * of that type. Opaque members (ByteString, DiagnosticInfo) are left out: they are no field. A
 * structure without a definition (an encoding the client could not resolve) is refused.
 */
function flattenStructure(out: Record<string, FieldValue>, name: string, value: unknown, depth: number, maxArrayLength: number): DropReason | undefined {
  if (value === null || value === undefined) return;
  if (depth > 4) return 'structure_too_deep';
  const fields = (value as { schema?: { fields?: StructureField[] } }).schema?.fields;
  if (!fields) return 'unsupported_type';
  const obj = value as Record<string, unknown>;
  for (const f of fields) {
    const m = obj[f.name] ?? obj[f.name.charAt(0).toLowerCase() + f.name.slice(1)];
    if (m === null || m === undefined) continue;
    const key = `${name}.${f.name}`;
    if (f.isArray) {
      const arr = m as ArrayLike<unknown>;
      if (arr.length > maxArrayLength) return 'array_too_long';
      for (let i = 0; i < arr.length; i++) {
        const err = member(out, `${key}[${i}]`, f, arr[i], depth, maxArrayLength);
        if (err) return err;
      }
    } else {
      const err = member(out, key, f, m, depth, maxArrayLength);
      if (err) return err;
    }
  }
  return;
}

function member(out: Record<string, FieldValue>, key: string, f: StructureField, m: unknown, depth: number, maxArrayLength: number): DropReason | undefined {
  if (m === null || m === undefined) return;
  if (f.category === 'complex') return flattenStructure(out, key, m, depth + 1, maxArrayLength);
  if (f.category === 'enumeration') {
    out[key] = BigInt(Number(m));
    return;
  }
  const type = builtInOf(f.fieldType);
  if (type === DataType.Variant) {
    const conv = convertVariant(key, m instanceof Variant ? m : undefined, maxArrayLength, 'any');
    if (!conv.ok) return conv.reason;
    Object.assign(out, conv.fields);
    return;
  }
  if (type === undefined || type === DataType.ByteString || type === DataType.DiagnosticInfo || type === DataType.DataValue) return;
  const err = put(out, key, type, m, maxArrayLength);
  // a member that cannot be a field (NaN) leaves the others
  return err === 'non_finite' || err === 'unsupported_type' ? undefined : err;
}
