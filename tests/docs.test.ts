/**
 * Every reference a reader can follow leads somewhere: links and file paths in the README and
 * docs/, and the docs/*.md, tests/*.ts and src/*.ts files that comments cite in the product, the
 * simulators, the tests and the tooling.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(`${dir}/${e.name}`) : /\.(ts|js)$/.test(e.name) ? [`${dir}/${e.name}`] : []));
}

describe('references', () => {
  it('links and paths in the README and docs/ exist', () => {
    const broken: string[] = [];
    for (const doc of DOCS) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(m[1]!)) continue;
        if (!existsSync(join(ROOT, dirname(doc), m[1]!))) broken.push(`${doc}: ${m[1]}`);
      }
      for (const m of text.matchAll(/`((?:docs|src|tests|config|seeds|simulators|scripts)\/[\w./-]+\.(?:md|ts|js|yaml|sh))`/g)) {
        if (!existsSync(join(ROOT, m[1]!))) broken.push(`${doc}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('files cited in source comments exist, and no comment cites a document outside the repository', () => {
    const broken: string[] = [];
    for (const f of [...files('src'), ...files('simulators'), ...files('tests'), ...files('tools')]) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      // this file names the patterns it looks for; the test-vector loader reads the public vectors
      // from beside the repository (a path it opens, not a document it cites)
      if (/DESIGN §|\.\.\/shared\/|docs\/spec\//.test(text) && f !== 'tests/docs.test.ts' && f !== 'tests/helpers/testdata.ts') broken.push(`${f}: cites a document that is not in the repository`);
      for (const m of text.matchAll(/\b((?:docs|tests)\/[\w./-]+\.(?:md|ts))\b/g)) if (!existsSync(join(ROOT, m[1]!))) broken.push(`${f}: ${m[1]}`);
    }
    expect(broken).toEqual([]);
  });
});
