/** Small zod building blocks shared by every component's config schema (in core/, so components need nothing from src/config). */
import { z } from 'zod';

/**
 * Numbers may arrive as strings after `${VAR}` interpolation; accept a numeric string, refuse
 * anything else with zod's usual message.
 */
export function num() {
  return z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v), z.number());
}
export function int() {
  return z.preprocess((v) => (typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v), z.number().int());
}
export function bool() {
  return z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
}

/** `host:port`, `[v6]:port` or `:port`. Returns host and port. */
export const listenAddress = z.string().transform((s, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected host:port (for example 127.0.0.1:8080), got ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}).meta({ format: 'listen' });
export type ListenAddress = z.output<typeof listenAddress>;

/** Byte sizes: a number of bytes or `512MiB`, `2GB`, `64k`. */
export const byteSize = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$/i.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 512MiB, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}).meta({ format: 'bytes' });

/** Durations: milliseconds as a number, or `500ms`, `5s`, `2m`, `1h`, `1d`. */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms, 5s, 2m or 1h, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Number(m[1]) * mult;
}).meta({ format: 'duration' });

/** Names usable as component names, tags and file names. */
export const componentName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a name of letters, digits, _ . - (at most 64)');
