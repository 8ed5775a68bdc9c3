import type { Logger } from 'pino';
import type { DiskBuffer } from '../../buffer/disk-buffer.js';
import { changedKeys, defineFactory } from '../../core/factory.js';
import type { Reject } from '../../deadletters/dead-letters.js';
import { type InfluxConfig, influxSchema } from './config.js';
import { InfluxSink } from './influx-sink.js';

/** The sink's name keys its cursor in the buffer; `influx-v1` or `influx-v2` unless named. */
export function sinkName(config: InfluxConfig): string {
  return config.name ?? `influx-${config.api}`;
}

/** Keys that say where the data goes, rather than how it is written. */
const TARGET_KEYS = ['url', 'database', 'retentionPolicy', 'org', 'bucket'];

/** The target keys that differ: the data already buffered was meant for the old target. */
export function targetChanges(prev: InfluxConfig, next: InfluxConfig): string[] {
  return changedKeys(prev, next).filter((k) => TARGET_KEYS.includes(k));
}

export const influxSinkFactory = defineFactory({
  type: 'influxdb',
  schema: influxSchema,
  create: (name, config, deps: { buffer: DiskBuffer; reject: Reject; log: Logger }) => new InfluxSink(name, config, deps.buffer, deps.reject, deps.log),
  // batching, timeouts and credentials: the sink restarts and goes on from its cursor, nothing is lost
  reconfigure: () => false,
  fixed: (prev, next) => {
    if (prev.api !== next.api) return 'influx.api changes how every buffered line was encoded: it applies at the next start';
    if (sinkName(prev) !== sinkName(next)) return `influx.name keys the sink's place in the buffer (${sinkName(prev)}): it applies at the next start`;
    return undefined;
  },
});
