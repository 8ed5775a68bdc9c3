/**
 * `plantgate indicators --config FILE [--json]`: the fleet's indicators, computed once from the
 * presence records in InfluxDB and printed. A process with no sources: whatever the configuration's
 * scope, it reads what every gateway of the fleet recorded over the window.
 */
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, formatProblem } from '../core/errors.js';
import { inputsOf } from '../gateway/gateway.js';
import { IndicatorEngine } from '../indicators/engine.js';
import { fleetClient, FleetView } from '../indicators/fleet.js';
import { UsageError } from './usage.js';

export async function indicatorsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, strict: true });
  if (!values.config) throw new UsageError('--config FILE is required');
  let inputs;
  try {
    inputs = inputsOf(loadConfigFile(values.config));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n`);
      return 1;
    }
    throw err;
  }
  const { config, indicators: unit } = inputs;
  if (!unit) throw new UsageError(`${values.config} has no indicators section`);
  const view = new FleetView(fleetClient(config.influx), `${unit.settings.measurement}_presence`);
  const engine = new IndicatorEngine('indicators', unit.settings, unit.registry, unit.targets, undefined, { view, instance: config.instance });
  const now = Date.now();
  await view.refresh(now - unit.settings.window);
  if (view.status.lastError) {
    process.stderr.write(`plantgate: cannot read the presence records from ${config.influx.url}: ${view.status.lastError.message}\n`);
    return 1;
  }
  const snap = engine.snapshot(now);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(snap, null, 2)}\n`);
    return 0;
  }
  const pct = (v: number | null, unit: string) => (v === null ? '–' : unit === 'ratio' ? `${(v * 100).toFixed(1)} %` : v.toFixed(unit === 'count' ? 0 : 1));
  process.stdout.write(`${snap.region}: window ${snap.window / 1000} s, ${view.status.contributors.length} gateway(s) contributed (${view.status.contributors.join(', ') || 'none'})\n`);
  for (const v of snap.values.filter((x) => x.scope !== 'enterprise' && x.kind === 'measured')) {
    process.stdout.write(`${v.scopeName.padEnd(24)} ${v.indicator.padEnd(24)} ${pct(v.value, v.unit).padStart(10)}  (${v.numerator}/${v.denominator})${v.target !== undefined ? `  target ${pct(v.target, v.unit)}` : ''}\n`);
  }
  return 0;
}
