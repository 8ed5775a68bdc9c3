/**
 * The component model (docs/components.md). Sources, processors, the buffer and sinks are all
 * components: they have a type name, a two-step lifecycle, and report their own state and counters,
 * which the status API and /metrics read. Invariants:
 *  - `stop()` is safe without `start()` and safe to call twice (every component's test checks it).
 *  - Counters only grow; drops are always counted with a reason.
 */
import type { Reason } from './reasons.js';
export type ComponentKind = 'source' | 'processor' | 'buffer' | 'sink';

export type ComponentState =
  | 'stopped'
  | 'starting'
  | 'running'
  /** Connected but something is wrong (failing nodes, auth refused, sink paused). */
  | 'degraded'
  | 'reconnecting'
  /** A sink whose last write failed and is being retried (network, 429, 5xx). */
  | 'retrying'
  /** A sink that stopped writing until something outside changes (credentials, missing target). */
  | 'paused'
  /** The buffer reached maxBytes: sources are held back (whenFull: block). */
  | 'full'
  /** The buffer's disk refuses writes (no space, I/O error): appends wait and are retried. */
  | 'disk_error'
  | 'stopping';

export interface ComponentCounters {
  received: number;
  written: number;
  errors: number;
  dropped: Record<string, number>;
}

export interface ComponentStatus {
  name: string;
  kind: ComponentKind;
  type: string;
  state: ComponentState;
  /** Epoch ms of the last state change. */
  since: number;
  counters: ComponentCounters;
  lastError?: { at: number; message: string };
  /** Epoch ms of the last value received or written, whichever applies to the kind. */
  lastValueAt?: number;
  /** Component-specific detail (connected devices, failing topics, buffer depth...). */
  details?: Record<string, unknown>;
  /** A source whose points are computed from other sources' points (the indicators): not intake. */
  derived?: true;
}

export interface Component {
  readonly name: string;
  readonly kind: ComponentKind;
  readonly type: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): ComponentStatus;
}

/** Shared lifecycle bookkeeping: subclasses implement doStart/doStop and call the counters. */
export abstract class BaseComponent implements Component {
  abstract readonly kind: ComponentKind;
  abstract readonly type: string;
  /** See ComponentStatus.derived. */
  readonly derived?: true;
  protected state: ComponentState = 'stopped';
  protected since = Date.now();
  protected readonly counters: ComponentCounters = { received: 0, written: 0, errors: 0, dropped: {} };
  protected lastError?: { at: number; message: string };
  protected lastValueAt?: number;
  private starting?: Promise<void>;
  private stopping?: Promise<void>;

  constructor(readonly name: string) {}

  protected abstract doStart(): Promise<void>;
  protected abstract doStop(): Promise<void>;
  /** What the status shows of this component beyond state and counters (typed per component: status/details.ts). */
  details(): Record<string, unknown> | undefined {
    return undefined;
  }

  async start(): Promise<void> {
    if (this.starting) return this.starting;
    this.stopping = undefined;
    this.setState('starting');
    this.starting = this.doStart().then(
      () => {
        if (this.state === 'starting') this.setState('running');
      },
      (err: unknown) => {
        this.recordError(err);
        this.setState('stopped');
        this.starting = undefined;
        throw err;
      },
    );
    return this.starting;
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (!this.starting) return; // never started: nothing to release
    const started = this.starting;
    this.stopping = (async () => {
      await started.catch(() => undefined);
      this.setState('stopping');
      try {
        await this.doStop();
      } finally {
        this.starting = undefined;
        this.setState('stopped');
      }
    })();
    return this.stopping;
  }

  protected setState(state: ComponentState): void {
    if (state !== this.state) {
      this.state = state;
      this.since = Date.now();
    }
  }

  protected recordError(err: unknown): void {
    this.counters.errors++;
    this.lastError = { at: Date.now(), message: err instanceof Error ? err.message : String(err) };
  }

  /** Counts input dropped with `reason`, a reason of the catalogue (src/core/reasons.ts): the compiler holds every caller to it. */
  protected drop(reason: Reason, n = 1): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + n;
  }

  status(): ComponentStatus {
    return {
      name: this.name,
      kind: this.kind,
      type: this.type,
      state: this.state,
      since: this.since,
      counters: { ...this.counters, dropped: { ...this.counters.dropped } },
      lastError: this.lastError,
      lastValueAt: this.lastValueAt,
      details: this.details(),
      ...(this.derived ? { derived: true as const } : {}),
    };
  }
}
