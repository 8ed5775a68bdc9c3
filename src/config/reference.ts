/**
 * The configuration's documentation, generated from the schema so it cannot drift from it:
 * `plantgate config example` prints config/example.yaml (every key, commented, with its default
 * or an example), `plantgate config reference` prints the reference table of
 * docs/configuration.md. Both read zod 4's JSON Schema of the whole configuration (input side:
 * what a user writes), with the descriptions and examples the components' schemas carry in
 * `.describe()` and `.meta()`. tests/config-docs.test.ts fails when the committed files differ.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

interface Json {
  type?: string | string[];
  description?: string;
  default?: unknown;
  examples?: unknown[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Json>;
  required?: string[];
  additionalProperties?: boolean | Json;
  items?: Json;
  anyOf?: Json[];
  oneOf?: Json[];
  minimum?: number;
  maximum?: number;
}

/** The JSON Schema of what a configuration file holds; defaults and examples over pipes are added back (zod leaves them out on the input side). */
export function configJsonSchema(): Json {
  return z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const def = (ctx.zodSchema as unknown as { _zod: { def: { type: string; defaultValue?: unknown } } })._zod.def;
      if ((def.type === 'default' || def.type === 'prefault') && ctx.jsonSchema.default === undefined) ctx.jsonSchema.default = def.defaultValue;
      // zod leaves out the examples of a schema with a transform on the input side (they could be outputs); ours are inputs
      const examples = z.globalRegistry.get(ctx.zodSchema)?.examples;
      if (examples !== undefined && ctx.jsonSchema.examples === undefined) ctx.jsonSchema.examples = examples as unknown[];
    },
  }) as Json;
}

const MS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
] as const;
const BYTES = [
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
] as const;

/** A default as a user would write it: `30s` rather than 30000, `16MiB` rather than 16777216. */
function human(v: unknown, node: Json): unknown {
  if (typeof v !== 'number' || v === 0) return v;
  const units = node.format === 'duration' ? MS : node.format === 'bytes' ? BYTES : undefined;
  if (!units) return v;
  for (const [u, n] of units) if (v % n === 0) return `${v / n}${u}`;
  return node.format === 'duration' ? `${v}ms` : v;
}

const PLAIN = /^[A-Za-z0-9_./@$*-][A-Za-z0-9_./:@$*+ -]*$/;
const KEYWORD = /^(true|false|yes|no|on|off|null|~)$/i;

/** A value in YAML flow style, quoted only where YAML needs it. */
export function flow(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(flow).join(', ')}]`;
  if (v && typeof v === 'object') {
    const e = Object.entries(v);
    return e.length ? `{ ${e.map(([k, x]) => `${PLAIN.test(k) ? k : JSON.stringify(k)}: ${flow(x)}`).join(', ')} }` : '{}';
  }
  if (typeof v === 'string') return PLAIN.test(v) && !KEYWORD.test(v) && Number.isNaN(Number(v)) && !v.endsWith(' ') && !v.includes(' #') ? v : JSON.stringify(v);
  return String(v);
}

/** The object branches of a union, or undefined when the node is not a union of objects. */
function branches(n: Json): Json[] | undefined {
  const opts = n.oneOf ?? n.anyOf;
  if (!opts || !opts.every((o) => o.properties)) return undefined;
  return opts;
}

/** The discriminator of a union of objects: the property that is a constant in every branch. */
function discriminator(opts: Json[]): string | undefined {
  return Object.keys(opts[0]!.properties!).find((k) => opts.every((o) => o.properties?.[k]?.const !== undefined));
}

function typeOf(n: Json): string {
  if (n.format === 'duration') return 'duration';
  if (n.format === 'bytes') return 'size';
  if (n.format === 'listen') return 'host:port';
  if (n.const !== undefined) return flow(n.const);
  if (n.enum) return n.enum.map(flow).join(' \\| ');
  const opts = n.anyOf ?? n.oneOf;
  if (opts) return [...new Set(opts.map(typeOf))].join(' or ');
  if (n.type === 'array') return n.items?.properties ? 'list of objects' : `list of ${typeOf(n.items ?? {})}`;
  if (n.type === 'object') return n.properties ? 'object' : 'map';
  return String(n.type ?? 'any');
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/)) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out;
}

// ---- the example ------------------------------------------------------------------------------

/**
 * Output lines. `off` is the column at which a block that is off (an optional section left out)
 * is commented: removing that one `# ` turns the whole block on, its own comments included.
 */
type Off = number | undefined;
class Lines {
  readonly out: string[] = [];
  /** Where the text of each key line (not a description) starts: a list item's dash goes just before the first. */
  readonly keys = new Map<number, number>();
  push(indent: number, text: string, off: Off, isKey = true): void {
    if (isKey) this.keys.set(this.out.length, off === undefined ? indent : indent + 2);
    this.out.push((off === undefined ? `${' '.repeat(indent)}${text}` : `${' '.repeat(off)}# ${' '.repeat(indent - off)}${text}`).trimEnd());
  }
  note(indent: number, text: string | undefined, off: Off): void {
    if (text) for (const l of wrap(text.replace(/\s*\n\s*/g, ' '), 96 - indent)) this.push(indent, `# ${l}`, off, false);
  }
}

/**
 * One key. `value` is what the parent's example gives it; otherwise its own example, then its
 * default. A key with nothing to show is written commented out, so every key is in the file.
 */
function renderKey(L: Lines, indent: number, key: string, n: Json, value: unknown, required: boolean, parentOff: Off): void {
  const own = value !== undefined ? value : (n.examples?.[0] ?? n.default);
  const off = parentOff ?? (own === undefined && !required ? indent : undefined);
  L.note(indent, n.description, parentOff);
  if (n.properties || branches(n)) {
    L.push(indent, `${key}:`, off);
    renderObject(L, indent + 2, n, (own ?? {}) as Record<string, unknown>, off);
    return;
  }
  if (n.type === 'array' && n.items?.properties && Array.isArray(own) && own.length) {
    // a list of objects: every key of each item, as for an object, the first key that is on
    // carrying the item's dash
    L.push(indent, `${key}:`, off);
    for (const item of own as Record<string, unknown>[]) {
      const sub = new Lines();
      renderObject(sub, indent + 4, n.items, item, off);
      const [first, col] = [...sub.keys].find(([i]) => off !== undefined || !sub.out[i]!.trimStart().startsWith('#')) ?? [-1, 0];
      if (first >= 0) sub.out[first] = `${sub.out[first]!.slice(0, col - 2)}- ${sub.out[first]!.slice(col)}`;
      L.out.push(...sub.out);
    }
    return;
  }
  L.push(indent, `${key}: ${scalar(n, own)}`, off);
}

function scalar(n: Json, v: unknown): string {
  return v === undefined ? flow(placeholder(n)) : flow(human(v, n));
}

function placeholder(n: Json): unknown {
  if (n.type === 'array') return [];
  if (n.type === 'object') return {};
  if (n.enum) return n.enum[0];
  return `<${typeOf(n)}>`;
}

function renderObject(L: Lines, indent: number, n: Json, value: Record<string, unknown>, off: Off): void {
  const opts = branches(n);
  if (opts) {
    // a union (influx api v1 | v2, OPC UA auth types): the discriminator first, the keys of the
    // branch it picks, then the keys only the other branches have, commented with their condition
    const d = discriminator(opts)!;
    const chosen = opts.find((o) => o.properties![d]!.const === value[d]) ?? opts[0]!;
    const dn = chosen.properties![d]!;
    L.note(indent, dn.description ?? `${opts.map((o) => flow(o.properties![d]!.const)).join(' | ')}`, off);
    L.push(indent, `${d}: ${flow(value[d] ?? dn.const)}`, off);
    const { [d]: _, ...rest } = chosen.properties!;
    renderObject(L, indent, { ...chosen, properties: rest }, value, off);
    for (const o of opts) {
      if (o === chosen) continue;
      const extra = Object.entries(o.properties!).filter(([k]) => !chosen.properties![k]);
      if (!extra.length) continue;
      L.push(indent, `# with ${d}: ${flow(o.properties![d]!.const)}:`, off);
      for (const [k, child] of extra) renderKey(L, indent, k, child, undefined, false, off ?? indent);
    }
    return;
  }
  const required = new Set(n.required ?? []);
  for (const [k, child] of Object.entries(n.properties ?? {})) renderKey(L, indent, k, child, value[k], required.has(k), off);
}

export function configExample(): string {
  const L = new Lines();
  L.out.push(
    '# plantgate configuration: every key, with its default or an example. Keys written as comments',
    '# are optional and off unless given. Made by `plantgate config example` from the schema; edit the',
    '# schema (its .describe() and .meta()), not this file. Check a file with: plantgate check --config FILE',
    '# Values may use ${VAR} or ${VAR:-default} from the environment (quote them inside { }).',
  );
  const root = configJsonSchema();
  const required = new Set(root.required ?? []);
  for (const [k, child] of Object.entries(root.properties!)) {
    L.out.push('');
    renderKey(L, 0, k, child, undefined, required.has(k), undefined);
  }
  return `${L.out.join('\n')}\n`;
}

// ---- the reference table ----------------------------------------------------------------------

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

function rows(n: Json, path: string, required: boolean, out: Row[], note = ''): void {
  const opts = branches(n);
  const def = n.default !== undefined ? `\`${flow(human(n.default, n))}\`` : required ? 'required' : 'none';
  const desc = `${note}${(n.description ?? '').replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|')}`;
  if (opts) {
    const d = discriminator(opts)!;
    if (path) out.push({ key: path, type: 'object', default: def, description: desc });
    const seen = new Set<string>();
    for (const o of opts) {
      const only = `(${d}: ${flow(o.properties![d]!.const)}) `;
      const req = new Set(o.required ?? []);
      for (const [k, child] of Object.entries(o.properties!)) {
        const inAll = opts.every((x) => x.properties![k]);
        if (k === d) {
          if (!seen.has(k)) out.push({ key: join(path, k), type: opts.map((x) => flow(x.properties![d]!.const)).join(' \\| '), default: child.default !== undefined ? `\`${flow(child.default)}\`` : 'required', description: (child.description ?? '').replace(/\|/g, '\\|') });
          seen.add(k);
          continue;
        }
        if (inAll && seen.has(k)) continue;
        seen.add(k);
        rows(child, join(path, k), req.has(k), out, inAll ? '' : only);
      }
    }
    return;
  }
  if (n.properties) {
    if (path && (n.description || !required)) out.push({ key: path, type: 'object', default: n.default !== undefined && Object.keys(n.default as object).length === 0 ? 'see keys' : def, description: desc });
    const req = new Set(n.required ?? []);
    for (const [k, child] of Object.entries(n.properties)) rows(child, join(path, k), req.has(k), out);
    return;
  }
  if (n.type === 'array' && n.items?.properties) {
    out.push({ key: path, type: 'list of objects', default: def, description: desc });
    rows(n.items, `${path}[]`, true, out);
    return;
  }
  out.push({ key: path, type: typeOf(n), default: def, description: desc });
}

function join(path: string, k: string): string {
  return path ? `${path}.${k}` : k;
}

export function configReference(): string {
  const out: Row[] = [];
  rows(configJsonSchema(), '', true, out);
  const lines = ['| key | type | default | meaning |', '|---|---|---|---|', ...out.map((r) => `| \`${r.key}\` | ${r.type} | ${r.default} | ${r.description} |`)];
  return `${lines.join('\n')}\n`;
}
