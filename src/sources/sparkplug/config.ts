import { z } from 'zod';
import { bool, byteSize, duration, int } from '../../core/config-types.js';

/** [tck-id-topic-structure-namespace-valid-group-id]: any UTF-8 except + / # */
const sparkplugId = z.string().min(1).regex(/^[^+/#]+$/, 'must not contain + / or #');

export const sparkplugSchema = z.strictObject({
  mode: z.enum(['passive', 'active', 'primary']).default('active').describe('passive: listen only, never publish. active: also send an NCMD `Node Control/Rebirth` on a seq gap, an unknown alias or data before birth. primary: active, and publish the host STATE, so edge nodes configured with this primary host wait for it before their births.'),
  hostId: sparkplugId.default('plantgate').describe('sparkplug_host_id: the STATE topic is spBv1.0/STATE/<hostId>. Unique among the plant\'s hosts.'),
  groups: z.array(sparkplugId).default([]).describe('Sparkplug groups to take; empty: every group.'),
  measurement: z.string().min(1).default('sparkplug').describe('Measurement for metrics whose name has no measurement part (see metricPath).'),
  metricPath: z
    .strictObject({ separator: z.string().min(1).default('/').describe('What splits a metric name into levels.'), measurementLevels: int().pipe(z.number().min(0).max(8)).default(0).describe('Leading levels that name the measurement.') })
    .prefault({}).describe('How metric names become measurement and field: the first `measurementLevels` levels of the name (split on `separator`) are the measurement, the rest the field. 0: the whole name is the field of `measurement`. `Spindle/Speed` with 1 -> measurement Spindle, field Speed.'),
  reorderTimeout: duration.default(2000).describe('How long a missing seq may take to arrive before it is a gap (spec 5.x \'Reorder Timeout\').'),
  rebirthTimeout: duration.default(10_000).describe('After a rebirth request, no second one for the same node until its NBIRTH or this long.'),
  storeTransient: bool().default(false).describe('Transient metrics are live values the edge asks hosts not to historise; default: not stored.'),
  maxArrayLength: int().pipe(z.number().min(0).max(10_000)).default(64).describe('Arrays, DataSet rows and template members beyond this many become a dead letter, not fields.'),
  maxBytesLength: byteSize.default(8 * 1024).describe('Bytes and File metrics are stored base64-encoded up to this size; larger ones are dead letters.'),
  stateFile: z.string().min(1).optional().describe('Where alias maps and node states survive a restart; default: sparkplug-state.json beside the buffer.'),
});
export type SparkplugConfig = z.output<typeof sparkplugSchema>;
