/**
 * Reading back the measurement and the field types of a line plantgate wrote, for the sink to
 * recognise lines InfluxDB is known to refuse (a field that already exists with another type)
 * before sending them again. Follows the escaping of encode.ts (and of InfluxDB's parser):
 * backslash escapes in names, `"` and `\` escaped inside string values.
 */
export type FieldType = 'float' | 'integer' | 'unsigned' | 'boolean' | 'string';

export interface LineFields {
  measurement: string;
  /** Field key (unescaped) -> its type. */
  fields: Map<string, FieldType>;
  /** Field key -> where `key=value` stands in the line ([start, end)). */
  spans: Map<string, [number, number]>;
}

/** Characters a backslash escapes in keys; before anything else a backslash is itself. */
const KEY_ESCAPED = new Set([',', '=', ' ']);

/** The measurement and field types of one line, or undefined when it is not line protocol. */
export function lineFields(line: string): LineFields | undefined {
  let i = 0;
  const n = line.length;
  let measurement = '';
  for (; i < n; i++) {
    const c = line[i]!;
    if (c === '\\' && (line[i + 1] === ',' || line[i + 1] === ' ')) measurement += line[++i];
    else if (c === ',' || c === ' ') break;
    else measurement += c;
  }
  // tags: skip to the first space that is not escaped
  for (; i < n && line[i] !== ' '; i++) if (line[i] === '\\') i++;
  while (line[i] === ' ') i++;
  const fields = new Map<string, FieldType>();
  const spans = new Map<string, [number, number]>();
  while (i < n) {
    const start = i;
    let key = '';
    for (; i < n && line[i] !== '='; i++) key += line[i] === '\\' && KEY_ESCAPED.has(line[i + 1]!) ? line[++i] : line[i];
    i++; // '='
    if (i >= n) return undefined;
    let type: FieldType;
    if (line[i] === '"') {
      type = 'string';
      for (i++; i < n && line[i] !== '"'; i++) if (line[i] === '\\') i++;
      i++;
    } else {
      const from = i;
      for (; i < n && line[i] !== ',' && line[i] !== ' '; i++);
      const v = line.slice(from, i);
      const last = v[v.length - 1];
      type = last === 'i' ? 'integer' : last === 'u' ? 'unsigned' : /^(t|T|true|True|TRUE|f|F|false|False|FALSE)$/.test(v) ? 'boolean' : 'float';
    }
    if (!key) return undefined;
    fields.set(key, type);
    spans.set(key, [start, i]);
    if (line[i] === ' ' || i >= n) break;
    i++; // ','
  }
  return { measurement, fields, spans };
}

/**
 * The line without the fields `drop` names (unescaped keys), or undefined when none would be
 * left: what the sink writes when InfluxDB refuses one field, so the point's other fields live.
 */
export function withoutFields(line: string, lf: LineFields, drop: ReadonlySet<string>): string | undefined {
  const kept = [...lf.spans].filter(([k]) => !drop.has(k)).map(([, [a, b]]) => line.slice(a, b));
  if (kept.length === 0) return undefined;
  const spans = [...lf.spans.values()];
  return line.slice(0, spans[0]![0]) + kept.join(',') + line.slice(spans[spans.length - 1]![1]);
}

/**
 * A field type conflict from InfluxDB's 400 answer, as 1.x and 2.x word it:
 * `field type conflict: input field "v" on measurement "m" is type integer, already exists as type float`.
 */
export function parseTypeConflicts(message: string): { measurement: string; field: string; existing: FieldType }[] {
  const out: { measurement: string; field: string; existing: FieldType }[] = [];
  const re = /input field "((?:[^"\\]|\\.)*)" on measurement "((?:[^"\\]|\\.)*)" is type \w+, already exists as type (\w+)/g;
  for (const m of message.matchAll(re)) {
    const existing = m[3] === 'int' || m[3] === 'integer' ? 'integer' : m[3] === 'uint' || m[3] === 'unsigned' ? 'unsigned' : m[3] === 'bool' || m[3] === 'boolean' ? 'boolean' : m[3] === 'string' ? 'string' : 'float';
    out.push({ field: m[1]!.replace(/\\(.)/g, '$1'), measurement: m[2]!.replace(/\\(.)/g, '$1'), existing });
  }
  return out;
}
