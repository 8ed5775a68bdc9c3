/**
 * Secrets (passwords, tokens) come from the configuration, from `${VAR}` in it, or from a file
 * named by a `...File` key (Docker / systemd credentials). They are never logged and never shown
 * by the status API: the logger redacts these key names wherever they appear, and components
 * show URLs through `safeUrl`.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

/** Key names whose values the logger replaces with [redacted], at any depth up to three. */
export const SECRET_KEYS = ['password', 'passwordHash', 'token', 'authorization', 'key', 'secret'];
export const LOG_REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

/**
 * For a schema's transform: when `<key>File` is set, reads the secret from that file (one trailing
 * newline dropped, as `echo` writes it) into `<key>`. Both at once is a mistake worth naming.
 * The result never carries `<key>File`: past the configuration only the secret itself matters.
 */
export function secretFromFile<T extends Record<string, unknown>, K extends string>(obj: T, key: K, ctx: z.RefinementCtx): Omit<T, `${K}File`> {
  const fileKey = `${key}File`;
  const { [fileKey]: file, ...rest } = obj;
  if (typeof file !== 'string') return rest as Omit<T, `${K}File`>;
  if (obj[key] !== undefined) {
    ctx.addIssue({ code: 'custom', path: [fileKey], message: `give ${key} or ${fileKey}, not both` });
    return rest as Omit<T, `${K}File`>;
  }
  try {
    const value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (!value) ctx.addIssue({ code: 'custom', path: [fileKey], message: `${file} is empty` });
    return { ...rest, [key]: value } as Omit<T, `${K}File`>;
  } catch (err) {
    ctx.addIssue({ code: 'custom', path: [fileKey], message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    return rest as Omit<T, `${K}File`>;
  }
}

/** A URL fit for logs and the status API: user info (mqtt://user:pass@host) removed. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}
