/**
 * Test vectors written outside the project live in `shared/testdata/` beside the repository
 * (MANIFEST.tsv there gives their origins). PLANTGATE_TESTDATA overrides the location.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function testdata(...parts: string[]): string {
  const candidates = [process.env.PLANTGATE_TESTDATA, resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/testdata')].filter(Boolean) as string[];
  for (const c of candidates) if (existsSync(join(c, ...parts))) return join(c, ...parts);
  throw new Error(`test vectors not found: ${join('shared/testdata', ...parts)} beside the repository (or set PLANTGATE_TESTDATA)`);
}
