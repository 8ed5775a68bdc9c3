/**
 * InfluxDB line protocol encoding, checked against InfluxDB's own vectors
 * (shared/testdata/line-protocol, see encode.test.ts).
 *
 * Escaping follows what influxd unescapes: measurement `,` and space; tag keys, tag values and
 * field keys `,` `=` and space; string field values `"` and `\`. A newline in a string field is
 * written raw (influxd keeps quoted newlines); a newline anywhere else cannot be carried and is
 * refused by `checkPoint`, as are empty tag values, non-finite floats and integers outside int64.
 */
import { Unsigned, type FieldValue, type Point } from '../core/point.js';
import { RejectedInput } from '../core/errors.js';

const MEASUREMENT_SPECIAL = /[, ]/g;
const KEY_SPECIAL = /[,= ]/g;
const STRING_SPECIAL = /["\\]/g;
const NEEDS_MEASUREMENT_ESCAPE = /[, ]/;
const NEEDS_KEY_ESCAPE = /[,= ]/;
const NEEDS_STRING_ESCAPE = /["\\]/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

export function escapeMeasurement(s: string): string {
  return NEEDS_MEASUREMENT_ESCAPE.test(s) ? s.replace(MEASUREMENT_SPECIAL, '\\$&') : s;
}

export function escapeKey(s: string): string {
  return NEEDS_KEY_ESCAPE.test(s) ? s.replace(KEY_SPECIAL, '\\$&') : s;
}

/**
 * Field and tag keys repeat in every message of a device, so each is checked and escaped once and
 * then looked up (a string's hash is kept with it, so the lookup costs less than the two regular
 * expressions). Bounded: past the limit, new keys are checked and escaped every time again.
 */
const KEYS_KEPT = 20_000;
const keyChecked = new Map<string, string>();

/** `checkName` for a tag or field key, once per key; a key that failed is not kept, so it fails again. */
function checkKey(what: string, k: string): void {
  if (keyChecked.has(k)) return;
  checkName(what, k);
  if (keyChecked.size < KEYS_KEPT) keyChecked.set(k, escapeKey(k));
}

function escapedKey(k: string): string {
  return keyChecked.get(k) ?? escapeKey(k);
}

export function escapeString(s: string): string {
  return NEEDS_STRING_ESCAPE.test(s) ? s.replace(STRING_SPECIAL, '\\$&') : s;
}

export function encodeFieldValue(v: FieldValue): string {
  switch (typeof v) {
    case 'number':
      return String(v); // shortest round-trip form; influxd parses exponents too
    case 'bigint':
      return `${v}i`;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return `"${escapeString(v)}"`;
    default:
      return `${v.value}u`;
  }
}

/** `measurement,tag=v,...` with tags sorted by key, as InfluxDB stores them. */
export function encodeSeriesKey(measurement: string, tags: Record<string, string>): string {
  let out = escapeMeasurement(measurement);
  const keys = Object.keys(tags);
  // insertion sort, in place: a point has a few tags, and Array.prototype.sort allocates a work
  // copy on every call (~6 % of what the MQTT path allocated). `>` orders by UTF-16 code unit, as
  // sort() without a comparator does.
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    out += `,${escapedKey(k)}=${escapeKey(tags[k]!)}`;
  }
  return out;
}

export function encodeFields(fields: Record<string, FieldValue>): string {
  let out = '';
  for (const k in fields) {
    if (out) out += ',';
    out += `${escapedKey(k)}=${encodeFieldValue(fields[k]!)}`;
  }
  return out;
}

/**
 * The point's series key, built once: the cardinality limit needs it and so does the line. It is
 * kept on the point, so whatever changes a point's measurement or tags after `seriesKeyOf` was
 * called (nothing after the processors does) must delete `p.seriesKey`.
 */
export function seriesKeyOf(p: Point): string {
  return (p.seriesKey ??= encodeSeriesKey(p.measurement, p.tags));
}

/** One line, time in epoch milliseconds (the sinks write with precision=ms). */
export function encodeLine(p: Point): string {
  return `${seriesKeyOf(p)} ${encodeFields(p.fields)} ${Math.trunc(p.time)}`;
}

const NEWLINE = /[\n\r]/;

/**
 * Whether a point can be written as it is. Throws RejectedInput naming the offending part; the
 * guard processor turns that into a dead letter. Kept apart from encodeLine so the hot path does
 * not pay for checks the guard already made.
 */
export function checkPoint(p: Point): void {
  checkName('measurement', p.measurement);
  for (const k in p.tags) {
    checkKey('tag key', k);
    const v = p.tags[k]!;
    if (v === '') throw new RejectedInput('empty_tag_value', `tag ${JSON.stringify(k)} has an empty value`);
    checkName(`tag ${JSON.stringify(k)} value`, v);
  }
  let n = 0;
  for (const k in p.fields) {
    n++;
    checkKey('field key', k);
    if (k === 'time') throw new RejectedInput('reserved_name', 'field key "time" is reserved by InfluxDB');
    checkFieldValue(k, p.fields[k]!);
  }
  if (n === 0) throw new RejectedInput('no_fields', 'the point has no fields');
  if (!Number.isFinite(p.time)) throw new RejectedInput('bad_timestamp', `timestamp ${p.time} is not a number`);
}

/**
 * Whether InfluxDB can hold one field value. Sources that turn one input into many values (a
 * Sparkplug metric's array or DataSet) call it per value, so only the bad value is dead-lettered.
 */
export function checkFieldValue(k: string, v: FieldValue): void {
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new RejectedInput('non_finite_float', `field ${JSON.stringify(k)} is ${v}, which InfluxDB cannot store`);
  }
  if (typeof v === 'bigint' && (v < INT64_MIN || v > INT64_MAX)) {
    throw new RejectedInput('integer_out_of_range', `field ${JSON.stringify(k)} = ${v} is outside int64`);
  }
  if (v instanceof Unsigned && (v.value < 0n || v.value > UINT64_MAX)) {
    throw new RejectedInput('integer_out_of_range', `field ${JSON.stringify(k)} = ${v.value} is outside uint64`);
  }
  if (typeof v === 'string' && v.length > 65535) {
    throw new RejectedInput('string_too_long', `field ${JSON.stringify(k)} is ${v.length} characters (InfluxDB limit 64 KiB)`);
  }
}

function checkName(what: string, s: string): void {
  if (s === '') throw new RejectedInput('empty_name', `${what} is empty`);
  if (NEWLINE.test(s)) throw new RejectedInput('newline_in_name', `${what} ${JSON.stringify(s)} contains a newline`);
  // A backslash before a character influxd treats as special (or at the end) cannot be written so
  // that it reads back the same: influxd does not unescape `\\` outside string fields.
  if (/\\([,= ]|$)/.test(s)) {
    throw new RejectedInput('unencodable_backslash', `${what} ${JSON.stringify(s)} has a backslash line protocol cannot carry`);
  }
}
