/**
 * The guard: the last check before the buffer. Refuses what InfluxDB could not store or would
 * store wrongly (non-finite floats, names line protocol cannot carry, impossible timestamps), so
 * the buffer only ever holds writable lines and a bad value never poisons a batch.
 * An empty tag value is removed, which is what InfluxDB would do with it (an empty tag is no tag).
 * Unsigned integers go out as they are where the sink has the type (`native`, the v2 API); for
 * InfluxDB 1.x (`integer`) they become integers, and a value above the int64 maximum, which 1.x
 * cannot hold, is refused (`integer_out_of_range`) rather than written wrong.
 */
import { BaseComponent } from '../../core/component.js';
import { RejectedInput } from '../../core/errors.js';
import { Unsigned, type Point } from '../../core/point.js';
import { checkPoint } from '../../lineprotocol/encode.js';
import type { Processor, Reject } from '../processor.js';
import type { GuardConfig } from './config.js';

const INT64_MAX = 2n ** 63n - 1n;

function asIntegers(p: Point): void {
  for (const k in p.fields) {
    const v = p.fields[k];
    if (!(v instanceof Unsigned)) continue;
    if (v.value > INT64_MAX) throw new RejectedInput('integer_out_of_range', `field ${JSON.stringify(k)} = ${v.value} is above the int64 maximum, and InfluxDB 1.x has no unsigned type`);
    p.fields[k] = v.value;
  }
}

export class Guard extends BaseComponent implements Processor {
  readonly kind = 'processor' as const;
  readonly type = 'guard';

  constructor(name: string, private config: GuardConfig, private readonly unsigned: 'native' | 'integer' = 'native') {
    super(name);
  }

  /** New limits apply to the next batch; counters go on. */
  reconfigure(config: GuardConfig): void {
    this.config = config;
  }

  protected async doStart(): Promise<void> {}
  protected async doStop(): Promise<void> {}

  process(points: Point[], reject: Reject): Point[] {
    const now = Date.now();
    const out: Point[] = [];
    for (const p of points) {
      this.counters.received++;
      try {
        for (const k in p.tags) if (p.tags[k] === '') delete p.tags[k];
        if (this.unsigned === 'integer') asIntegers(p);
        checkPoint(p);
        // range first: beyond it a Date cannot even be formatted for the message
        if (p.time < -9_223_372_036_854 || p.time > 9_223_372_036_854) {
          throw new RejectedInput('timestamp_out_of_range', `timestamp ${p.time} ms is outside what InfluxDB can store (1677-09-21 to 2262-04-11)`);
        }
        if (p.time > now + this.config.maxFuture) {
          throw new RejectedInput('timestamp_in_future', `timestamp ${new Date(p.time).toISOString()} is more than ${this.config.maxFuture} ms ahead of the gateway clock`);
        }
        if (this.config.maxAge > 0 && p.time < now - this.config.maxAge) {
          throw new RejectedInput('timestamp_too_old', `timestamp ${new Date(p.time).toISOString()} is older than maxAge`);
        }
        out.push(p);
        this.counters.written++;
      } catch (err) {
        if (!(err instanceof RejectedInput)) throw err;
        this.drop(err.reason);
        reject(p, err);
      }
    }
    return out;
  }
}
