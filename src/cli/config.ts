/**
 * `plantgate config example|reference [--update FILE]`: the configuration's documentation, printed
 * from the schema. With --update, `example` writes the file and `reference` replaces the table
 * between the `config-reference` markers of the file (docs/configuration.md), prose kept.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configExample, configReference } from '../config/reference.js';
import { UsageError } from './usage.js';

const BEGIN = '<!-- config-reference:start -->\n';
const END = '<!-- config-reference:end -->';

export function configCommand(args: string[]): number {
  const { values, positionals } = parseArgs({ args, options: { update: { type: 'string' } }, allowPositionals: true, strict: true });
  const [what, ...rest] = positionals;
  if (rest.length) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (what !== 'example' && what !== 'reference') throw new UsageError(`expected \`plantgate config example\` or \`plantgate config reference\`, got ${what === undefined ? 'nothing' : JSON.stringify(what)}`);
  const text = what === 'example' ? configExample() : configReference();
  if (!values.update) {
    process.stdout.write(text);
    return 0;
  }
  if (what === 'example') {
    writeFileSync(values.update, text);
    return 0;
  }
  const doc = readFileSync(values.update, 'utf8');
  const i = doc.indexOf(BEGIN);
  const j = doc.indexOf(END);
  if (i < 0 || j < i) throw new UsageError(`${values.update} has no ${BEGIN.trim()} ... ${END} markers to put the table between`);
  writeFileSync(values.update, `${doc.slice(0, i + BEGIN.length)}${text}${doc.slice(j)}`);
  return 0;
}
