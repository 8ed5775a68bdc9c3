import { z } from 'zod';
import { duration } from '../core/config-types.js';

export const indicatorsSchema = z.strictObject({
  registry: z.string().min(1).describe('Registry of enterprises, key processes and equipment (YAML, see seeds/).'),
  targets: z.string().min(1).describe('The plan\'s targets (YAML, see seeds/).'),
  window: duration.default(300_000).describe('A device counts as reporting when it sent valid data within this window.'),
  publishInterval: duration.default(60_000).describe('How often indicator values are written to InfluxDB (0: never).'),
  measurement: z.string().min(1).default('indicator').describe('Measurement the indicator values are written to.'),
  scope: z
    .enum(['local', 'fleet'])
    .default('local')
    .describe('`local`: from what this gateway hears. `fleet`: from the presence records every gateway of the fleet writes into the shared InfluxDB (`<measurement>_presence`), so the values count every plant however the devices are divided among gateways; needs InfluxQL reads (`/query`) on the sink\'s InfluxDB.'),
  presenceInterval: duration
    .default(5000)
    .describe('With scope fleet: how often this gateway writes one presence record per equipment it heard from, and reads the fleet\'s back.'),
  robot: z
    .strictObject({
      modeField: z.string().default('mode').describe('The field holding the robot\'s operating mode.'),
      automatic: z.array(z.string()).default(['AUTO', 'AUTOMATIC', 'auto', 'automatic']).describe('Modes that count as automatic operation.'),
      stopFields: z.array(z.string()).default(['protective_stop', 'emergency_stop']).describe('Boolean fields that, when true, mean the robot is stopped.'),
    })
    .prefault({}).describe('How robots report their state (fields of their points).'),
});
export type IndicatorsConfig = z.output<typeof indicatorsSchema>;
