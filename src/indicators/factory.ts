import { resolve } from 'node:path';
import { defineFactory } from '../core/factory.js';
import type { SourceContext } from '../sources/source.js';
import { indicatorsSchema } from './config.js';
import type { InfluxConfig } from '../sinks/influxdb/config.js';
import { IndicatorEngine } from './engine.js';
import { fleetClient, FleetView } from './fleet.js';
import { loadRegistry, loadTargets, type Registry, type Targets } from './registry.js';

/** The indicators' section with the master data its files hold: a changed file is a changed section. */
export interface IndicatorsUnit {
  settings: import('zod').output<typeof indicatorsSchema>;
  registry: Registry;
  targets: Targets;
}

/** Reads the registry and targets a section names; a bad file throws a ConfigError with its problems. */
export function loadIndicatorsUnit(settings: IndicatorsUnit['settings']): IndicatorsUnit {
  return { settings, registry: loadRegistry(resolve(settings.registry)), targets: loadTargets(resolve(settings.targets)) };
}

export const indicatorEngineFactory = defineFactory({
  type: 'indicator-engine',
  schema: indicatorsSchema,
  /** The master data comes read and checked (loadIndicatorsUnit), so a reload validates it before anything changes. */
  create: (name, settings, deps: { registry: Registry; targets: Targets; ctx: SourceContext; influx: InfluxConfig; instance: string }) =>
    new IndicatorEngine(name, settings, deps.registry, deps.targets, deps.ctx, settings.scope === 'fleet' ? { view: new FleetView(fleetClient(deps.influx), `${settings.measurement}_presence`), instance: deps.instance } : undefined),
});
