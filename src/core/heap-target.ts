/**
 * `memory.heapTarget`: the size the V8 heap should stay under, held by choosing how far the heap
 * may grow after each full GC.
 *
 * V8 lets the old generation grow to up to four times what survived the last full GC before it
 * collects again, when collecting is cheap compared to the program's work. How much garbage is
 * made per second only sets how soon that limit is reached, not the limit: 100,000 OPC UA items
 * keep ~106 MB alive, so the heap reached ~450 MB between full GCs however little each value
 * allocated (docs/benchmarks.md). So after every full GC this sets V8's growing factor to
 * target / live, between 1.5 (below that, full GCs would follow each other and cost more CPU than
 * the memory is worth) and 4 (V8's own maximum): a small live set keeps V8's schedule and costs
 * nothing, a large one is collected sooner. It is a target, not a limit: what must stay alive
 * stays, and a live set above the target is logged, not cut.
 *
 * V8 sets the next limit inside the GC, before the observer here hears of it, so a factor given
 * now applies one collection later. When the live set jumps between two full GCs (a gateway
 * subscribing to 100,000 items), the limit V8 has just set is the old factor times the new live
 * set: 4 × 96 MB with a 224 MiB target, measured. Then one full GC is run at once, so that V8 sets
 * the limit again with the factor for what is alive now (at most once a minute: a full GC of a
 * 100 MB live set takes ~0.1 s of CPU).
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';

const MIN_FACTOR = 1.5;
const MAX_FACTOR = 4;
const WARN_EVERY_MS = 10 * 60_000;
/** A limit this far above the target is set again at once rather than waited for. */
const OVERSHOOT = 1.2;
const RELIMIT_EVERY_MS = 60_000;

/** The growing factor for `live` bytes surviving a full GC under `target`. */
export function growingFactor(target: number, live: number): number {
  if (live <= 0) return MAX_FACTOR;
  return Math.min(MAX_FACTOR, Math.max(MIN_FACTOR, target / live));
}

let observer: PerformanceObserver | undefined;
let target: number | undefined;
let percent = 0;
let lastLive = 0;
let warnedAt = 0;
let relimitedAt = 0;
let relimits = 0;
let collect: (() => void) | undefined;
let log: Logger | undefined;

function setPercent(p: number): void {
  if (p === percent) return;
  percent = p;
  // read by V8 whenever it sets the next limit (after each full GC); 0 is V8's own schedule
  setFlagsFromString(`--heap-growing-percent=${p}`);
}

/** A full GC now, outside V8's schedule: `gc()` of a fresh context once --expose-gc is set. */
function fullGc(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}

function afterFullGc(gcJustRan = true): void {
  if (target === undefined) return;
  const live = getHeapStatistics().used_heap_size;
  // the limit V8 has just set: this live set times the factor it was given after the last one
  const limit = live * (percent > 0 ? 1 + percent / 100 : MAX_FACTOR);
  // the factor given now applies one collection later: while the live set grows, it is assumed
  // to grow as much again by then; before the first full GC, to double
  const projected = live + Math.max(0, live - (lastLive || live / 2));
  lastLive = live;
  setPercent(Math.round((growingFactor(target, projected) - 1) * 100));
  const now = Date.now();
  if (gcJustRan && limit > target * OVERSHOOT && limit > live * (1 + percent / 100) * OVERSHOOT && now - relimitedAt >= RELIMIT_EVERY_MS) {
    relimitedAt = now;
    relimits++;
    fullGc();
  }
  if (live * MIN_FACTOR > target && now - warnedAt >= WARN_EVERY_MS) {
    warnedAt = now;
    log?.warn({ code: 'PG_ERR_HEAP_TARGET', heapTarget: target, liveBytes: live }, `memory.heapTarget ${Math.round(target / 2 ** 20)} MiB cannot be held: ${Math.round(live / 2 ** 20)} MiB stay alive after a full GC, so the heap grows to ${MIN_FACTOR}x that between collections`);
  }
}

/** Holds the heap under `bytes` from now on (undefined: V8's own schedule again). One per process. */
export function holdHeapTarget(bytes: number | undefined, logger?: Logger): void {
  target = bytes;
  lastLive = 0;
  relimitedAt = 0;
  if (logger) log = logger;
  if (bytes === undefined) {
    observer?.disconnect();
    observer = undefined;
    setPercent(0);
    return;
  }
  if (!observer) {
    observer = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const d = (e as { detail?: { kind?: number; flags?: number } }).detail;
        // the full GC run here to set the limit again has nothing new to say
        if (d?.kind === constants.NODE_PERFORMANCE_GC_MAJOR && !((d.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED)) {
          afterFullGc();
          break;
        }
      }
    });
    observer.observe({ entryTypes: ['gc'] });
  }
  // until the first full GC: what is alive now is the best estimate (with its garbage in it, so
  // no limit is inferred from it)
  afterFullGc(false);
}

/**
 * The target held, the growing factor V8 was last given (0: its own) and how many full GCs were
 * run to set a limit again, for /metrics.
 */
export function heapTargetState(): { heapTarget?: number; growingPercent: number; relimits: number } {
  return { heapTarget: target, growingPercent: percent, relimits };
}
