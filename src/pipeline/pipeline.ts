/**
 * The pipeline connects the components (README, Architecture):
 *   sources -> processors -> taps -> line-protocol encoding -> durable buffer -> sinks
 * `ingest()` is the only way in; its promise is the source's permission to acknowledge.
 * Start order is buffer, sinks, processors, sources (so nothing arrives before it can be kept);
 * stop order is the reverse (intake stops first, then what was taken in is flushed).
 */
import type { Logger } from 'pino';
import { BufferFullError, type DiskBuffer } from '../buffer/disk-buffer.js';
import type { Component, ComponentStatus } from '../core/component.js';
import { PlantgateError } from '../core/errors.js';
import type { Point } from '../core/point.js';
import type { DeadLetters, Reject } from '../deadletters/dead-letters.js';
import { encodeLine } from '../lineprotocol/encode.js';
import type { Processor } from '../processors/processor.js';
import type { Source, SourceContext } from '../sources/source.js';

/** A sink that can be told to write what is buffered now rather than wait for fuller batches. */
export interface Drainable {
  drain(): void;
}

/** Live observers of accepted points (indicators, live rates). Must be cheap and never throw. */
export type Tap = (points: readonly Point[]) => void;

export class Pipeline {
  readonly sources: Source[] = [];
  private readonly taps: Tap[] = [];
  private started = false;
  private lastCommit?: Promise<void>;
  private lastCommitSeen?: Promise<void>;

  constructor(
    readonly buffer: DiskBuffer,
    readonly processors: Processor[],
    readonly sinks: Component[],
    readonly deadLetters: DeadLetters,
    readonly log: Logger,
  ) {}

  /**
   * The one writer of dead letters: sources, processors and sinks hand their rejections here
   * (through their context or the runtime), so every refusal is kept, counted and shown alike.
   */
  readonly reject: Reject = (r) => this.deadLetters.add(r);

  /** The context handed to every source. */
  sourceContext(): SourceContext {
    return { ingest: (points, source) => this.ingest(points, source), reject: this.reject, log: this.log, pendingBytes: () => this.buffer.pendingAppendBytes() };
  }

  /** `first`: started before, and stopped after, every other source (the Sparkplug host, which its transports feed). */
  addSource(source: Source, where: 'first' | 'last' = 'last'): void {
    if (where === 'first') this.sources.unshift(source);
    else this.sources.push(source);
  }

  /** Takes a source out (a reload); the caller stops it. */
  removeSource(source: Source): void {
    const i = this.sources.indexOf(source);
    if (i >= 0) this.sources.splice(i, 1);
  }

  /** Puts a new sink in the place of one that was stopped (a reload); it reads on from the same cursor. */
  replaceSink(old: Component, next: Component): void {
    const i = this.sinks.indexOf(old);
    if (i < 0 || old.name !== next.name) throw new Error(`no sink ${old.name} to replace`);
    this.sinks[i] = next;
  }

  /** Returns the function that takes the tap away again. */
  addTap(tap: Tap): () => void {
    this.taps.push(tap);
    return () => {
      const i = this.taps.indexOf(tap);
      if (i >= 0) this.taps.splice(i, 1);
    };
  }

  ingest(points: Point[], source: string): Promise<void> {
    let lines: string[] | undefined;
    try {
      lines = this.encode(points, source);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!lines) return Promise.resolve();
    // Only the lines wait for the commit: the points are garbage from here on. (An async function
    // would keep them, and the source's whole batch, alive in its suspended frame until then.)
    const commit = this.buffer.append(lines);
    // the appends of one group share their commit, and so they share what waits for it here
    if (commit !== this.lastCommit) {
      this.lastCommit = commit;
      this.lastCommitSeen = commit.catch(droppedOnPurpose);
    }
    return this.lastCommitSeen!;
  }

  /** Processors, then taps, then one line per point; undefined when the processors left nothing. */
  private encode(points: Point[], source: string): string[] | undefined {
    let ps = points;
    for (const proc of this.processors) {
      ps = proc.process(ps, (p, why) =>
        this.reject({ source, reason: why.reason, message: `${proc.name}: ${why.message}`, line: safeLine(p) }),
      );
      if (ps.length === 0) return undefined;
    }
    for (const tap of this.taps) {
      try {
        tap(ps);
      } catch (err) {
        this.log.error({ err }, 'tap failed');
      }
    }
    const lines = new Array<string>(ps.length);
    for (let i = 0; i < ps.length; i++) lines[i] = encodeLine(ps[i]!);
    return lines;
  }

  components(): Component[] {
    return [...this.sources, ...this.processors, this.buffer, ...this.sinks];
  }

  /** Starts everything in order; a component that cannot start stops what was started and is named in the error. */
  async start(): Promise<void> {
    this.started = true;
    for (const c of [this.buffer, ...this.sinks, ...this.processors, ...this.sources]) {
      try {
        await c.start();
      } catch (err) {
        await this.stop();
        throw new PlantgateError(err instanceof PlantgateError ? err.code : 'PG_ERR_START', `${c.kind} ${c.name} cannot start: ${(err as Error).message}`, false, { cause: err });
      }
    }
  }

  /**
   * Stops intake, gives the sinks up to `drainMs` to write what is buffered, then stops them; what
   * is not written stays on disk for the next start. Safe twice.
   */
  async stop(drainMs = 5000): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const s of [...this.sources].reverse()) await s.stop().catch((err) => this.log.error({ err, component: s.name }, 'stop failed'));
    for (const p of this.processors) await p.stop();
    for (const s of this.sinks) (s as Partial<Drainable>).drain?.();
    const deadline = Date.now() + drainMs;
    while (Date.now() < deadline && this.sinks.some((s) => s.status().state !== 'stopped' && !this.buffer.caughtUp(s.name))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const s of this.sinks) await s.stop().catch((err) => this.log.error({ err, component: s.name }, 'stop failed'));
    await this.buffer.stop();
  }

  status(): { components: ComponentStatus[]; deadLetters: ReturnType<DeadLetters['status']> } {
    return { components: this.components().map((c) => c.status()), deadLetters: this.deadLetters.status() };
  }
}

/**
 * whenFull: drop_newest dropped these on purpose and counted them; the source acknowledges,
 * otherwise the publisher would resend them forever into a full buffer.
 */
function droppedOnPurpose(err: unknown): void {
  if (err instanceof BufferFullError) return;
  throw err;
}

function safeLine(p: Point): string {
  try {
    return encodeLine(p);
  } catch {
    return JSON.stringify(p, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}
