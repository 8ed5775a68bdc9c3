/**
 * Loads a YAML configuration: parse, `${VAR}` / `${VAR:-default}` interpolation from the
 * environment (in string values only, so a variable can never inject structure), then strict zod
 * validation. Every problem is reported at once as file, key path and what was expected.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../core/errors.js';
import { configSchema, type PlantgateConfig } from './schema.js';

const VAR = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g;

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): PlantgateConfig {
  return loadYamlWith(configSchema, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): PlantgateConfig {
  return parseYamlWith(configSchema, text, file, env);
}

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
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
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
  if (!res.success) throw new ConfigError(res.error.issues.flatMap((i) => toProblems(i, file)));
  return res.data;
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

function toProblems(issue: z.core.$ZodIssue, file: string, prefix: PropertyKey[] = []): ConfigProblem[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => ({ file, path: formatPath([...path, k]), message: 'unknown key' }));
  }
  if (issue.code === 'invalid_union' && issue.errors.length && !issue.message.startsWith('expected')) {
    // report the branch that got furthest: the user most likely meant that one
    const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    return best.flatMap((i) => toProblems(i, file, path));
  }
  return [{ file, path: formatPath(path), message: issue.message.replace(/^Invalid input: /, '') }];
}

function depth(issues: z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length)) - issues.length / 1000;
}
