/**
 * One catalogue of error codes: every PG_ERR_* the code uses is in src/core/codes.ts, every code
 * there is used and explained in docs/errors.md, and the page says "retried" exactly for the
 * retryable ones.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/core/codes.js';

const ROOT = join(import.meta.dirname, '..');
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(`${dir}/${e.name}`) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [`${dir}/${e.name}`] : []));
}

describe('error code catalogue', () => {
  const used = new Set(sources('src').filter((f) => !f.endsWith('core/codes.ts')).flatMap((f) => [...readFileSync(join(ROOT, f), 'utf8').matchAll(/PG_ERR_[A-Z0-9_]+/g)].map((m) => m[0])));
  const listed = Object.keys(ERROR_CODES);

  it('every code in the code is in the catalogue, and every catalogued code is used', () => {
    expect([...used].filter((c) => !listed.includes(c))).toEqual([]);
    expect(listed.filter((c) => !used.has(c))).toEqual([]);
  });

  it('docs/errors.md explains each, with the retryable flag of the catalogue', () => {
    const rows = new Map([...readFileSync(join(ROOT, 'docs/errors.md'), 'utf8').matchAll(/^\| `(PG_ERR_[A-Z0-9_]+)` \| (yes|no) \|/gm)].map((m) => [m[1]!, m[2] === 'yes']));
    expect([...rows.keys()].sort()).toEqual([...listed].sort());
    for (const [code, { retryable }] of Object.entries(ERROR_CODES)) expect(rows.get(code), code).toBe(retryable);
  });
});
