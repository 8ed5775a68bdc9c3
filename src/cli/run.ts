/** `plantgate check` and `plantgate run`: validate a configuration; run the gateway until a signal (SIGHUP reloads). */
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, formatProblem } from '../core/errors.js';
import { Gateway, inputsOf } from '../gateway/gateway.js';
import { guardRejections } from './process-guard.js';
import { untilSignal } from './signals.js';
import { configArg, UsageError } from './usage.js';

export function check(args: string[]): number {
  const file = configArg(args);
  try {
    // the master data it names is part of what a start needs: checked too
    inputsOf(loadConfigFile(file));
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
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, 'log-format': { type: 'string' }, watch: { type: 'boolean' } }, strict: true });
  if (!values.config) throw new UsageError('--config FILE is required');
  const file = values.config;
  const format = values['log-format'];
  if (format !== undefined && !['auto', 'json', 'pretty'].includes(format)) throw new UsageError(`--log-format must be auto, json or pretty, got ${JSON.stringify(format)}`);
  // the command line's log format holds for every reload too
  const load = () => {
    const config = loadConfigFile(file);
    if (format) config.log.format = format as 'auto' | 'json' | 'pretty';
    return config;
  };
  let inputs;
  try {
    inputs = inputsOf(load());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n`);
      return 1;
    }
    throw err;
  }
  const gw = await Gateway.start(inputs, { load, file, watch: values.watch });
  guardRejections(gw.log);
  // SIGHUP reloads, as daemons do; it never stops the gateway (an invalid file is reported and kept out)
  const onHup = () => void gw.reload('signal');
  process.on('SIGHUP', onHup);
  await untilSignal();
  process.off('SIGHUP', onHup);
  gw.log.info('stopping: intake first, then flushing the buffer');
  await gw.stop();
  return 0;
}
