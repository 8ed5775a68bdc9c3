/**
 * Reads YAML files into validated objects: parse, `${VAR}` / `${VAR:-default}` interpolation from
 * the environment (in string values only, so a variable can never inject structure), then strict
 * zod validation. Every problem is reported at once as file, line and column, key path and what was
 * expected, with "did you mean" for an unknown key close to a known one. The configuration, the
 * credentials file and the indicator master data all go through here.
 */
import { readFileSync } from 'node:fs';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';

const VAR = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g;

/** Reads a YAML file and validates it with `schema`; the same errors as for the configuration. */
export function loadYamlWith<S extends z.ZodType>(schema: S, file: string, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return parseYamlWith(schema, text, file, env);
}

export function parseYamlWith<S extends z.ZodType>(schema: S, text: string, file: string, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  if (doc.errors.length) {
    // the first errors are the cause; the rest are usually the parser losing its way after it
    const problems: ConfigProblem[] = doc.errors.slice(0, 3).map((e) => ({ file, path: '', message: `YAML: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}${e.linePos ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : ''}` }));
    if (/\{[^}\n]*:\s*\$\{/.test(text)) {
      problems.push({ file, path: '', message: 'hint: inside { ... } a ${VAR} must be quoted, for example { url: "${INFLUX_URL}" }' });
    }
    throw new ConfigError(problems);
  }
  const problems: ConfigProblem[] = [];
  let js: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs")
    js = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw new ConfigError([{ file, path: '', message: `YAML: ${(err as Error).message}` }]);
  }
  const raw = interpolate(js, [], env, file, problems);
  if (problems.length) throw new ConfigError(problems);
  const res = schema.safeParse(raw);
  if (!res.success) throw new ConfigError(res.error.issues.flatMap((i) => toProblems(i, file, [], schema)).map((p) => locate(p, doc, lineCounter)));
  return res.data;
}

/** Adds the line and column of the problem's key (or of the nearest node above it that the file has). */
function locate(p: ConfigProblem & { keys?: PropertyKey[] }, doc: Document, lc: LineCounter): ConfigProblem {
  const { keys, ...problem } = p;
  if (!keys) return problem;
  for (let n = keys.length; n >= 0; n--) {
    const parent = n > 0 ? doc.getIn(keys.slice(0, n - 1), true) : undefined;
    // the key itself where it is a map entry (an unknown key, a wrong value), else the value's node
    const pair = isMap(parent) ? parent.items.find((it) => isScalar(it.key) && String(it.key.value) === String(keys[n - 1])) : undefined;
    const node = pair?.key ?? (n > 0 ? doc.getIn(keys.slice(0, n), true) : doc.contents);
    if (isNode(node) && node.range) {
      const pos = lc.linePos(node.range[0]);
      return { ...problem, line: pos.line, column: pos.col };
    }
  }
  return problem;
}

/** The keys a strict object in `schema` accepts at `path`, through defaults, optionals, pipes, arrays and records. */
function keysAt(schema: z.ZodType, path: PropertyKey[]): string[] | undefined {
  type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; valueType?: z.ZodType; options?: z.ZodType[] };
  const def = (s: z.ZodType | undefined) => (s as unknown as { _zod?: { def: Def } } | undefined)?._zod?.def;
  const unwrap = (s: z.ZodType | undefined): z.ZodType | undefined => {
    for (let d = def(s); d && s; d = def(s)) {
      if (d.innerType) s = d.innerType;
      // a pipe validates with `in`, unless `in` is a preprocess step (then `out` holds the shape)
      else if (d.type === 'pipe' && d.in) s = def(d.in)?.type === 'transform' ? d.out : d.in;
      else break;
    }
    return s;
  };
  const shapes = (x: z.ZodType | undefined): Record<string, z.ZodType>[] => {
    const d = def(unwrap(x));
    if (d?.type === 'object' && d.shape) return [d.shape];
    if (d?.type === 'union') return (d.options ?? []).flatMap(shapes);
    return [];
  };
  let s = unwrap(schema);
  for (const p of path) {
    const d = def(s);
    if (!d) return undefined;
    if (d.type === 'array') s = d.element;
    else if (d.type === 'record') s = d.valueType;
    else s = shapes(s).find((sh) => sh[String(p)])?.[String(p)];
    s = unwrap(s);
  }
  const keys = [...new Set(shapes(s).flatMap((sh) => Object.keys(sh)))];
  return keys.length ? keys : undefined;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function unknownKeyMessage(key: string, known: string[] | undefined): string {
  if (!known?.length) return 'unknown key';
  const best = known.map((k) => [k, distance(key, k)] as const).sort((a, b) => a[1] - b[1])[0]!;
  if (best[1] <= Math.max(1, Math.floor(key.length / 3))) return `unknown key; did you mean ${best[0]}?`;
  return `unknown key; expected one of ${known.join(', ')}`;
}

/** Deeper than any configuration needs; a recursive YAML alias (`&a [*a]`) would otherwise never end. */
const MAX_DEPTH = 64;

function interpolate(v: unknown, path: (string | number)[], env: NodeJS.ProcessEnv, file: string, problems: ConfigProblem[]): unknown {
  if (path.length > MAX_DEPTH) {
    if (!problems.some((p) => p.message.startsWith('nested deeper'))) problems.push({ file, path: formatPath(path.slice(0, 3)), message: `nested deeper than ${MAX_DEPTH} levels (a YAML alias that refers to itself?)` });
    return null;
  }
  if (typeof v === 'string') {
    return v.replace(VAR, (m, name: string | undefined, op: string | undefined, def: string | undefined) => {
      if (m === '$$') return '$';
      const val = env[name!];
      if (op === ':-' && (val === undefined || val === '')) return def ?? '';
      if (op === '-' && val === undefined) return def ?? '';
      if (val === undefined) {
        problems.push({ file, path: formatPath(path), message: `environment variable ${name} is not set (use \${${name}:-default} for a default)` });
        return '';
      }
      return val;
    });
  }
  if (Array.isArray(v)) return v.map((x, i) => interpolate(x, [...path, i], env, file, problems));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x, [...path, k], env, file, problems)]));
  }
  return v;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function toProblems(issue: z.core.$ZodIssue, file: string, prefix: PropertyKey[], schema: z.ZodType): (ConfigProblem & { keys: PropertyKey[] })[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(schema, path);
    return issue.keys.map((k) => ({ file, path: formatPath([...path, k]), message: unknownKeyMessage(k, known), keys: [...path, k] }));
  }
  if (issue.code === 'invalid_union' && issue.errors.length && !issue.message.startsWith('expected')) {
    // report the branch that got furthest: the user most likely meant that one
    const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    return best.flatMap((i) => toProblems(i, file, path, schema));
  }
  return [{ file, path: formatPath(path), message: issue.message.replace(/^Invalid input: /, ''), keys: path }];
}

function depth(issues: z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length)) - issues.length / 1000;
}
