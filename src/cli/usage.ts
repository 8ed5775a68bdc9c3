import { parseArgs } from 'node:util';
/** A mistake on the command line: printed without a stack, exit code 2. */
export class UsageError extends Error {}

/** The --config FILE every configuration command takes. */
export function configArg(args: string[]): string {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) throw new UsageError('--config FILE is required');
  return values.config;
}
