import { z } from 'zod';
import { duration } from '../core/config-types.js';

export const indicatorsSchema = z.strictObject({
  /** Registry of enterprises, key processes and equipment (YAML, see seeds/). */
  registry: z.string().min(1),
  /** The plan's targets (YAML, see seeds/). */
  targets: z.string().min(1),
  /** A device counts as reporting when it sent valid data within this window. */
  window: duration.default(300_000),
  /** How often indicator values are written to InfluxDB (0: never). */
  publishInterval: duration.default(60_000),
  measurement: z.string().min(1).default('indicator'),
  /** How robots report their state (fields of their points). */
  robot: z
    .strictObject({
      modeField: z.string().default('mode'),
      automatic: z.array(z.string()).default(['AUTO', 'AUTOMATIC', 'auto', 'automatic']),
      stopFields: z.array(z.string()).default(['protective_stop', 'emergency_stop']),
    })
    .default({ modeField: 'mode', automatic: ['AUTO', 'AUTOMATIC', 'auto', 'automatic'], stopFields: ['protective_stop', 'emergency_stop'] }),
});
export type IndicatorsConfig = z.output<typeof indicatorsSchema>;
