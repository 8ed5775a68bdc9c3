/**
 * The layout: `src/` is the gateway and its command line. Outside `src/cli/`, nothing in it
 * imports the simulators, the developer tooling (`tools/`: bench harness, process starters) or
 * test code, and no module of `src/` imports itself back through others (static or dynamic).
 * Folders are layered too: `src/config` composes the components' schemas, so no component folder
 * may import `src/config` (its shared helpers live in `src/core`). A file of more than ~400
 * lines says in its header why it is not split.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(`${dir}/${e.name}`) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [`${dir}/${e.name}`] : []));
}
/** Relative imports of a file, as repository paths (`.js` specifiers point at `.ts` sources). */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)).replace(/\.js$/, '.ts'));
}
const SRC = files('src');

describe('layout', () => {
  it('src/ outside the CLI imports no simulator, tool or test', () => {
    const bad = SRC.filter((f) => !f.startsWith('src/cli/')).flatMap((f) => imports(f).filter((i) => !i.startsWith('src/')).map((i) => `${f} -> ${i}`));
    expect(bad).toEqual([]);
  });

  it('src/ has no import cycle', () => {
    const graph = new Map(SRC.map((f) => [f, imports(f).filter((i) => i.startsWith('src/'))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of SRC) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('no component folder imports src/config (config composes them, not the other way)', () => {
    const bad = SRC.filter((f) => !f.startsWith('src/config/') && !f.startsWith('src/cli/') && !f.startsWith('src/gateway/')).flatMap((f) =>
      imports(f).filter((i) => i.startsWith('src/config/')).map((i) => `${f} -> ${i}`),
    );
    expect(bad).toEqual([]);
  });

  it('a source file over ~400 lines says in its header why', () => {
    const long = SRC.filter((f) => readFileSync(join(ROOT, f), 'utf8').split('\n').length > 420);
    const unexplained = long.filter((f) => {
      const text = readFileSync(join(ROOT, f), 'utf8');
      const header = text.slice(0, text.indexOf('*/') + 2);
      return !/longer than ~400 lines/i.test(header.replace(/\s*\n\s*\*\s*/g, ' '));
    });
    expect(unexplained).toEqual([]);
  });

  it('dead letters are written in one place: the pipeline; components hand rejections over', () => {
    const writers = SRC.filter((f) => /deadLetters\.add\(|\bDeadLetters\b[^;]*\.add\(/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(writers).toEqual(['src/pipeline/pipeline.ts']);
  });
});
