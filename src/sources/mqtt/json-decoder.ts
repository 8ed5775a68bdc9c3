/**
 * JSON payloads to points. Numbers become float fields (so a field never flips between integer and
 * float), booleans boolean fields, strings string fields unless listed as tags; nested objects and
 * arrays are flattened with `_` (`{"axis":{"x":1}}` -> `axis_x`). `ts` (epoch ms) or `timestamp`
 * (ISO 8601) is the source time, else the receive time. A top-level array is a batch of objects.
 * Anything that cannot become a point throws RejectedInput with a reason; nothing is guessed.
 *
 * Limits against amplification: a message becomes at most `maxPoints` points and at most
 * `maxLineBytes` characters of line protocol, nor more than `maxExpansion` times its payload once
 * past 256 KiB (counted as the points are made, so a bomb is stopped before it is built). A batch
 * whose items would land on the same series at the same time (no `ts`, no distinguishing tag) is
 * refused: InfluxDB would silently keep only the last of them.
 */
import type { FieldValue, Point } from '../../core/point.js';
import { RejectedInput } from '../../core/errors.js';
import type { RouteConfig } from './config.js';

/** Below this, a message's line protocol is never refused for its expansion. */
const EXPANSION_FLOOR = 256 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

export interface DecodeContext {
  route: RouteConfig;
  topicTags: Record<string, string>;
  receivedAt: number;
  source: string;
  origin?: Point['origin'];
}

/** Characters of line protocol the points of one message have made so far, against the route's limits. */
class LineBudget {
  private used = 0;
  private readonly limit: number;
  constructor(private readonly route: RouteConfig, private readonly payloadBytes: number) {
    this.limit = Math.min(route.maxLineBytes, Math.max(EXPANSION_FLOOR, route.maxExpansion * payloadBytes));
  }
  /** Every point of a batch repeats the measurement and the route's and topic's tags: a lower bound known before any item is decoded. */
  checkBatch(items: number, ctx: DecodeContext): void {
    let each = ctx.route.measurement.length + 16;
    for (const [k, v] of Object.entries({ ...ctx.route.staticTags, ...ctx.topicTags })) each += k.length + v.length + 2;
    if (items * each > this.limit) this.refuse(items * each);
  }

  private refuse(n: number): never {
    throw new RejectedInput('expansion_too_large', `payload of ${this.payloadBytes} bytes would become more than ${this.limit} characters of line protocol (at least ${n}; maxExpansion ${this.route.maxExpansion}, maxLineBytes ${this.route.maxLineBytes})`);
  }

  add(p: Point): void {
    let n = p.measurement.length + 16;
    for (const k in p.tags) n += k.length + p.tags[k]!.length + 2;
    for (const k in p.fields) {
      const v = p.fields[k]!;
      n += k.length + 2 + (typeof v === 'string' ? v.length + 2 : 24);
    }
    this.used += n;
    if (this.used > this.limit) this.refuse(this.used);
  }
}

/** Payloads from this size on are counted before they are parsed (a parse of 1 MiB of tiny objects takes ~25 ms). */
const PRECOUNT_BYTES = 64 * 1024;

/**
 * Items of a top-level JSON array, counted on the bytes (strings and nested values skipped), up to
 * `limit` + 1; -1 when the payload is not an array. Only a count: the parse still judges the rest.
 */
export function countArrayItems(b: Uint8Array, limit: number): number {
  let i = 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  if (b[i] !== 0x5b) return -1;
  let depth = 0;
  let n = 0;
  let empty = true;
  for (; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x22) {
      for (i++; i < b.length && b[i] !== 0x22; i++) if (b[i] === 0x5c) i++;
      empty = false;
    } else if (c === 0x5b || c === 0x7b) {
      if (depth++ === 1) empty = false;
    } else if (c === 0x5d || c === 0x7d) {
      if (--depth === 0) break;
    } else if (c === 0x2c && depth === 1) {
      if (++n >= limit) return n + 1;
    } else if (depth === 1 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) empty = false;
  }
  return empty && n === 0 ? 0 : n + 1;
}

export function decodeJson(payload: Uint8Array, ctx: DecodeContext): Point[] {
  if (payload.length >= PRECOUNT_BYTES) {
    const items = countArrayItems(payload, ctx.route.maxPoints);
    if (items > ctx.route.maxPoints) throw new RejectedInput('too_many_points', `payload is a batch of more than ${ctx.route.maxPoints} items (maxPoints)`);
  }
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    throw new RejectedInput('invalid_utf8', 'payload is not valid UTF-8');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RejectedInput('invalid_json', `payload is not valid JSON: ${(err as Error).message}`);
  }
  const budget = new LineBudget(ctx.route, payload.length);
  if (Array.isArray(doc)) {
    if (doc.length === 0) throw new RejectedInput('no_fields', 'payload is an empty array');
    if (doc.length > ctx.route.maxPoints) throw new RejectedInput('too_many_points', `payload is a batch of ${doc.length} items, limit ${ctx.route.maxPoints} (maxPoints)`);
    budget.checkBatch(doc.length, ctx);
    const seen = doc.length > 1 ? new Map<string, number>() : undefined;
    return doc.map((item, i) => {
      let p: Point;
      try {
        p = decodeObject(item, ctx);
        budget.add(p);
      } catch (err) {
        if (err instanceof RejectedInput) throw new RejectedInput(err.reason, `item ${i}: ${err.message}`);
        throw err;
      }
      if (seen) {
        // the items of one message share measurement, route and topic tags: only the payload's own tags tell their series apart
        let key = String(p.time);
        for (const t of ctx.route.tags) key += p.tags[t] === undefined ? '\u0000' : `\u0001${p.tags[t]}`;
        const first = seen.get(key);
        if (first !== undefined) {
          throw new RejectedInput('duplicate_point', `items ${first} and ${i} have the same series and time${p.time === ctx.receivedAt ? ' (no ts)' : ''}: InfluxDB would keep only one; give each item its own ts or a distinguishing tag`);
        }
        seen.set(key, i);
      }
      return p;
    });
  }
  const p = decodeObject(doc, ctx);
  budget.add(p);
  return [p];
}

/**
 * The keys of a route that are not plain fields: the time candidates, tags and ignored keys. The
 * flattening sets only these aside; every other value goes straight into the point's fields.
 */
const rolesOf = new WeakMap<RouteConfig, Set<string>>();
function roles(route: RouteConfig): Set<string> {
  let r = rolesOf.get(route);
  if (!r) {
    r = new Set([...(route.timeKey ? [route.timeKey] : ['ts', 'timestamp']), ...route.tags, ...route.ignore]);
    rolesOf.set(route, r);
  }
  return r;
}

/**
 * One payload object flattened. A message is decoded in one pass (this is the hot path of every
 * MQTT message): values become fields as they are met; only the route's special keys, or every
 * value when the route maps its fields explicitly, are kept aside in a map for the second look.
 */
interface Flat {
  fields: Record<string, FieldValue>;
  n: number;
  values: number;
  readonly maxFields: number;
  readonly roles: Set<string>;
  /** The special keys met (time candidates, tags, ignored), or every value (explicit `fields`). */
  aside: Map<string, unknown>;
  readonly all: boolean;
}

function decodeObject(doc: unknown, ctx: DecodeContext): Point {
  const { route } = ctx;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new RejectedInput('not_an_object', `payload must be a JSON object, got ${doc === null ? 'null' : Array.isArray(doc) ? 'an array' : typeof doc}`);
  }
  const f: Flat = { fields: {}, n: 0, values: 0, maxFields: route.maxFields, roles: roles(route), aside: new Map(), all: route.fields !== undefined };
  flatten(doc as Record<string, unknown>, '', 1, route.maxDepth, f);
  const flat = f.aside;

  const time = pickTime(flat, route.timeKey, ctx.receivedAt);
  const tags: Record<string, string> = { ...route.staticTags, ...ctx.topicTags };
  for (const key of route.tags) {
    const v = flat.get(key);
    flat.delete(key);
    if (v === undefined || v === null || v === '') continue;
    tags[key] = String(v);
  }
  for (const key of route.ignore) flat.delete(key);

  let fields = f.fields;
  let n = f.n;
  if (route.fields) {
    fields = {};
    n = 0;
    for (const [key, spec] of Object.entries(route.fields)) {
      const v = flat.get(key);
      if (v === undefined || v === null) continue;
      const name = typeof spec === 'string' ? spec : (spec.name ?? key);
      const type = typeof spec === 'string' ? undefined : spec.type;
      fields[name] = convert(v, type, key);
      n++;
    }
  } else {
    // a time candidate that was not the time (`timestamp` beside `ts`) is a field like any other
    for (const [key, v] of flat) {
      if (v === null) continue;
      fields[key] = v as FieldValue;
      n++;
    }
  }
  if (n === 0) throw new RejectedInput('no_fields', 'payload yields no field');
  const p: Point = { measurement: route.measurement, tags, fields, time, receivedAt: ctx.receivedAt, quality: 'good', source: ctx.source };
  if (ctx.origin) p.origin = ctx.origin;
  return p;
}

function flatten(obj: Record<string, unknown>, prefix: string, depth: number, maxDepth: number, f: Flat): void {
  if (depth > maxDepth) throw new RejectedInput('too_deep', `payload nests deeper than ${maxDepth} levels`);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) put(f, prefix ? `${prefix}_${i}` : String(i), obj[i], depth, maxDepth);
    return;
  }
  for (const k in obj) {
    // JSON.parse makes "__proto__" an own key, which assigning to a plain object would drop without a word
    if (k === '__proto__') throw new RejectedInput('reserved_name', 'key "__proto__" cannot be a field or tag name');
    put(f, prefix ? `${prefix}_${k}` : k, obj[k], depth, maxDepth);
  }
}

function put(f: Flat, key: string, v: unknown, depth: number, maxDepth: number): void {
  if (v !== null && typeof v === 'object') return flatten(v as Record<string, unknown>, key, depth + 1, maxDepth, f);
  if (++f.values > f.maxFields) throw new RejectedInput('too_many_fields', `payload has more than ${f.maxFields} values`);
  if (f.all || f.roles.has(key)) f.aside.set(key, v);
  else if (v !== null) {
    f.fields[key] = v as FieldValue;
    f.n++;
  }
}

function pickTime(flat: Map<string, unknown>, timeKey: string | undefined, receivedAt: number): number {
  const keys = timeKey ? [timeKey] : ['ts', 'timestamp'];
  for (const key of keys) {
    if (!flat.has(key)) continue;
    const v = flat.get(key);
    flat.delete(key);
    if (typeof v === 'number') {
      if (!Number.isFinite(v) || !Number.isInteger(v)) throw new RejectedInput('bad_timestamp', `${key} must be whole epoch milliseconds, got ${v}`);
      return v;
    }
    if (typeof v === 'string' && ISO_8601.test(v)) {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) return t;
    }
    throw new RejectedInput('bad_timestamp', `${key} must be epoch milliseconds or an ISO 8601 time with zone, got ${JSON.stringify(v)}`);
  }
  return receivedAt;
}

function convert(v: unknown, type: 'float' | 'integer' | 'boolean' | 'string' | undefined, key: string): FieldValue {
  const bad = (expected: string) => new RejectedInput('wrong_type', `${JSON.stringify(key)} should be ${expected}, got ${JSON.stringify(v)}`);
  switch (type) {
    case undefined:
      if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
      throw bad('a number, boolean or string');
    case 'float': {
      // "NaN" and "Infinity" pass through so the guard refuses them with the precise reason
      if (typeof v === 'string' && /^[+-]?(NaN|Infinity)$/.test(v.trim())) return Number(v);
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (Number.isNaN(n)) throw bad('a number');
      return n;
    }
    case 'integer':
      if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
      throw bad('an integer');
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === 'false') return v === 'true';
      throw bad('a boolean');
    case 'string':
      return String(v);
  }
}
