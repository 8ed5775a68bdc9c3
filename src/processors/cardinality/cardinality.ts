/**
 * The cardinality limit: counts distinct series per measurement, per source and in all, and refuses
 * points that would open a series beyond a budget (see config.ts). The refusal names the source,
 * so the operator sees which device is misbehaving, in the dead letters and in the status API.
 *
 * The counts start empty at every start: the limit bounds what one run can add, not what InfluxDB
 * already holds.
 */
import { BaseComponent } from '../../core/component.js';
import { RejectedInput } from '../../core/errors.js';
import type { Point } from '../../core/point.js';
import { seriesKeyOf } from '../../lineprotocol/encode.js';
import type { Processor, Reject } from '../processor.js';
import type { CardinalityConfig } from './config.js';

interface Offender {
  source: string;
  measurement: string;
  budget: 'measurement' | 'source' | 'total';
  refused: number;
  /** One refused series, as InfluxDB would have indexed it. */
  example: string;
  at: number;
}

/** Who sent the point, as precisely as its source knows it. */
export function sourceOf(p: Point): string {
  if (p.origin?.clientId) return `${p.source}/${p.origin.clientId}`;
  if (p.origin?.endpoint && p.origin.endpoint !== p.source) return `${p.source}/${p.origin.endpoint}`;
  return p.source;
}

/** The series as InfluxDB indexes it: the line-protocol series key (measurement, sorted tags), built once per point. */
export function seriesKey(p: Point): string {
  return seriesKeyOf(p);
}

export class CardinalityLimit extends BaseComponent implements Processor {
  readonly kind = 'processor' as const;
  readonly type = 'cardinality';
  private readonly series = new Set<string>();
  private readonly perMeasurement = new Map<string, number>();
  private readonly perSource = new Map<string, number>();
  private readonly offenders = new Map<string, Offender>();

  constructor(name: string, private config: CardinalityConfig) {
    super(name);
  }

  /** New budgets apply at once; the series already known stay known (a restart would let a tag explosion in again). */
  reconfigure(config: CardinalityConfig): void {
    this.config = config;
  }

  protected async doStart(): Promise<void> {}
  protected async doStop(): Promise<void> {}

  process(points: Point[], reject: Reject): Point[] {
    const out: Point[] = [];
    for (const p of points) {
      this.counters.received++;
      const key = seriesKey(p);
      if (!this.series.has(key)) {
        const source = sourceOf(p);
        const over = this.overBudget(p.measurement, source);
        if (over) {
          const { budget, limit } = over;
          this.drop('series_budget_exceeded');
          this.recordOffender(source, p.measurement, budget, key);
          reject(p, new RejectedInput('series_budget_exceeded', `new series ${key.slice(0, 300)} from ${source} refused: the ${budget === 'total' ? 'total' : `per-${budget}`} budget of ${limit} series is used up`));
          continue;
        }
        this.series.add(key);
        this.perMeasurement.set(p.measurement, (this.perMeasurement.get(p.measurement) ?? 0) + 1);
        this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
      }
      out.push(p);
      this.counters.written++;
    }
    return out;
  }

  private overBudget(measurement: string, source: string): { budget: Offender['budget']; limit: number } | undefined {
    const c = this.config;
    if ((this.perSource.get(source) ?? 0) >= c.maxSeriesPerSource) return { budget: 'source', limit: c.maxSeriesPerSource };
    if ((this.perMeasurement.get(measurement) ?? 0) >= c.maxSeriesPerMeasurement) return { budget: 'measurement', limit: c.maxSeriesPerMeasurement };
    if (this.series.size >= c.maxSeries) return { budget: 'total', limit: c.maxSeries };
    return undefined;
  }

  private recordOffender(source: string, measurement: string, budget: Offender['budget'], example: string): void {
    const id = `${source}|${measurement}`;
    const o = this.offenders.get(id) ?? { source, measurement, budget, refused: 0, example, at: 0 };
    o.refused++;
    o.example = example;
    o.at = Date.now();
    o.budget = budget;
    this.offenders.delete(id);
    this.offenders.set(id, o);
    if (this.offenders.size > 100) this.offenders.delete(this.offenders.keys().next().value!);
    if (o.refused === 1) this.setState('degraded');
  }

  override details() {
    const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([name, series]) => ({ name, series }));
    return {
      budgets: this.config,
      series: this.series.size,
      measurements: top(this.perMeasurement),
      sources: top(this.perSource),
      /** Sources whose new series were refused, latest last. */
      overBudget: [...this.offenders.values()].slice(-20),
    };
  }
}
