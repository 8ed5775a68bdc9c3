/**
 * docs/bad-input.md and the code name the same reasons: every reason the code can give
 * (src/core/reasons.ts) is documented, and every reason the document gives is one the code knows.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DROP_REASONS, REFUSAL_REASONS } from '../src/core/reasons.js';

const doc = readFileSync(new URL('../docs/bad-input.md', import.meta.url), 'utf8');
const known = new Set<string>([...DROP_REASONS, ...REFUSAL_REASONS]);

describe('reason catalogue', () => {
  it('every reason in the code is in docs/bad-input.md', () => {
    const missing = [...known].filter((r) => !doc.includes(`\`${r}\``));
    expect(missing).toEqual([]);
  });

  it('every reason in the docs is one the code knows', () => {
    // the reason column of each table: `| input | outcome | reason | test |`
    const documented = new Set<string>();
    for (const line of doc.split('\n')) {
      const cols = line.split('|').map((c) => c.trim());
      if (cols.length !== 6 || cols[1] === 'input' || cols[1]?.startsWith('---')) continue;
      for (const m of cols[3]!.matchAll(/`([a-z0-9_]+)`/g)) documented.add(m[1]!);
    }
    expect(documented.size).toBeGreaterThan(40);
    expect([...documented].filter((r) => !known.has(r))).toEqual([]);
  });

  it('the catalogue has no duplicates', () => {
    expect(new Set(DROP_REASONS).size).toBe(DROP_REASONS.length);
    expect(new Set(REFUSAL_REASONS).size).toBe(REFUSAL_REASONS.length);
  });
});
