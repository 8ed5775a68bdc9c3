/** `plantgate check` and `plantgate run`: validate a configuration; run the gateway until a signal. */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, formatProblem } from '../core/errors.js';
import { startGateway } from '../gateway/gateway.js';
import { loadRegistry, loadTargets } from '../indicators/registry.js';
import { guardRejections } from './process-guard.js';
import { untilSignal } from './signals.js';
import { configArg, UsageError } from './usage.js';

export function check(args: string[]): number {
  const file = configArg(args);
  try {
    const config = loadConfigFile(file);
    if (config.indicators) {
      // master data is part of what a start needs: check it too
      loadRegistry(resolve(config.indicators.registry));
      loadTargets(resolve(config.indicators.targets));
    }
    process.stdout.write(`${file}: OK\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n${err.problems.length} problem(s) found\n`);
      return 1;
    }
    throw err;
  }
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, 'log-format': { type: 'string' } }, strict: true });
  if (!values.config) throw new UsageError('--config FILE is required');
  const file = values.config;
  const format = values['log-format'];
  if (format !== undefined && !['auto', 'json', 'pretty'].includes(format)) throw new UsageError(`--log-format must be auto, json or pretty, got ${JSON.stringify(format)}`);
  let config;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n`);
      return 1;
    }
    throw err;
  }
  if (format) config.log.format = format as 'auto' | 'json' | 'pretty';
  const gw = await startGateway(config);
  guardRejections(gw.log);
  await untilSignal();
  gw.log.info('stopping: intake first, then flushing the buffer');
  await gw.stop();
  return 0;
}
