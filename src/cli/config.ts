/** `plantgate config example|reference`: the configuration's documentation, printed from the schema. */
import { configExample, configReference } from '../config/reference.js';
import { UsageError } from './usage.js';

export function configCommand(args: string[]): number {
  const [what, ...rest] = args;
  if (rest.length) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  if (what === 'example') process.stdout.write(configExample());
  else if (what === 'reference') process.stdout.write(configReference());
  else throw new UsageError(`expected \`plantgate config example\` or \`plantgate config reference\`, got ${what === undefined ? 'nothing' : JSON.stringify(what)}`);
  return 0;
}
