/**
 * Issue 21, done-when: `plantgate config example` prints config/example.yaml and `plantgate
 * config reference` the reference table of docs/configuration.md, both from the schemas, so the
 * committed files cannot drift from the defaults the code applies. And the example holds what a
 * user needs: every key of the schema appears in it, and it is a valid configuration.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { configExample, configJsonSchema, configReference } from '../src/config/reference.js';

const ROOT = join(import.meta.dirname, '..');
const HOW = 'run `node bin/plantgate.js config example --update config/example.yaml` and `node bin/plantgate.js config reference --update docs/configuration.md`';

/** Every key path of the schema, as `a.b[].c`. */
function schemaKeys(n: ReturnType<typeof configJsonSchema>, path = ''): string[] {
  const opts = n.oneOf ?? n.anyOf;
  const objects = n.properties ? [n] : opts?.every((o) => o.properties) ? opts : [];
  const keys = objects.flatMap((o) => Object.entries(o.properties!).flatMap(([k, c]) => [`${path}${k}`, ...schemaKeys(c, `${path}${k}.`)]));
  if (n.type === 'array' && n.items) keys.push(...schemaKeys(n.items, `${path.slice(0, -1)}[].`));
  return [...new Set(keys)];
}

describe('configuration docs from the schema', () => {
  it('config/example.yaml is what `plantgate config example` prints', () => {
    expect(readFileSync(join(ROOT, 'config', 'example.yaml'), 'utf8'), HOW).toBe(configExample());
  });

  it("docs/configuration.md's table is what `plantgate config reference` prints", () => {
    const doc = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
    const table = /<!-- config-reference:start -->\n([\s\S]*)<!-- config-reference:end -->/.exec(doc)?.[1];
    expect(table, HOW).toBe(configReference());
  });

  it('every key is in the example, described, and in the reference', () => {
    const example = configExample();
    const reference = configReference();
    const keys = schemaKeys(configJsonSchema());
    expect(keys.length).toBeGreaterThan(150);
    const last = (k: string) => k.split('.').pop()!.replace('[]', '');
    expect(keys.filter((k) => !new RegExp(`^\\s*(#\\s*)*(- )?${last(k)}:`, 'm').test(example))).toEqual([]);
    expect(keys.filter((k) => !reference.includes(`| \`${k}\` |`))).toEqual([]);
    const undocumented = reference.split('\n').filter((l) => /\| {2}\|$/.test(l) || /\) \|$/.test(l));
    expect(undocumented).toEqual([]);
  });

  it('the example is a valid configuration, and its live values are the defaults the code applies', () => {
    const text = configExample();
    const config = parseConfig(text, 'example.yaml');
    // the drift the hand-kept file had: a default in the file that the code did not apply
    expect(config.mqtt.broker!.maxConnectionsPerSecond).toBe(200);
    expect(parseDocument(text).getIn(['mqtt', 'broker', 'maxConnectionsPerSecond'])).toBe(200);
    // and the sections it used to lack are there
    for (const key of ['cardinality:', '# indicators:', '  # auth:', '    anonymous:', 'maxAuthFailuresPerMinute:', '# name:']) expect(text).toContain(key);
  });

  it('`--update` writes the example and puts the table between the markers, keeping the prose', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'config-docs-'));
    try {
      const doc = join(dir, 'configuration.md');
      writeFileSync(doc, 'before\n<!-- config-reference:start -->\nold table\n<!-- config-reference:end -->\nafter\n');
      const bin = join(ROOT, 'bin', 'plantgate.js');
      await promisify(execFile)(process.execPath, [bin, 'config', 'reference', '--update', doc]);
      expect(readFileSync(doc, 'utf8')).toBe(`before\n<!-- config-reference:start -->\n${configReference()}<!-- config-reference:end -->\nafter\n`);
      await promisify(execFile)(process.execPath, [bin, 'config', 'example', '--update', join(dir, 'example.yaml')]);
      expect(readFileSync(join(dir, 'example.yaml'), 'utf8')).toBe(configExample());
      writeFileSync(doc, 'no markers\n');
      await expect(promisify(execFile)(process.execPath, [bin, 'config', 'reference', '--update', doc])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/has no <!-- config-reference:start --> \.\.\. <!-- config-reference:end --> markers/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
