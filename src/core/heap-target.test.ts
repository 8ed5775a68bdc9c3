import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../status/metrics.js';
import { growingFactor, heapTargetState, holdHeapTarget } from './heap-target.js';

describe('memory.heapTarget', () => {
  afterEach(() => holdHeapTarget(undefined));

  it('lets a small live set grow as far as V8 would, and a large one only down to 1.5x', () => {
    expect(growingFactor(256 * 2 ** 20, 40 * 2 ** 20)).toBe(4);
    expect(growingFactor(256 * 2 ** 20, 100 * 2 ** 20)).toBeCloseTo(2.56);
    expect(growingFactor(256 * 2 ** 20, 300 * 2 ** 20)).toBe(1.5);
    expect(growingFactor(256 * 2 ** 20, 0)).toBe(4);
  });

  it('gives V8 the factor for what is alive now, shows it in /metrics, and its own schedule back when the target goes', async () => {
    const live = getHeapStatistics().used_heap_size;
    holdHeapTarget(live * 2);
    const held = heapTargetState();
    expect(held.heapTarget).toBe(live * 2);
    // before the first full GC the live set is assumed to double: 1.5x, the least it gives
    expect(held.growingPercent).toBe(50);
    const metrics = new Metrics({ components: () => [], deadLetters: () => ({ total: 0, byReason: {} }), indicators: () => undefined });
    const text = await metrics.render();
    expect(text).toContain(`plantgate_heap_target_bytes ${live * 2}`);
    expect(text).toContain('plantgate_heap_growing_factor 1.5');
    expect(text).toContain('plantgate_heap_relimits_total 0');
    holdHeapTarget(undefined);
    expect(heapTargetState()).toMatchObject({ heapTarget: undefined, growingPercent: 0 });
    expect(await metrics.render()).toContain('plantgate_heap_growing_factor 0');
  });

  it('changes on a reload in place, and goes back to V8\'s schedule when the section is removed', async () => {
    const { KINDS } = await import('../gateway/kinds.js');
    const memory = KINDS.find((k) => k.key === 'memory')!;
    const rt = { log: pino({ level: 'silent' }) } as never;
    memory.apply!({ heapTarget: 512 * 2 ** 20 }, {}, rt);
    expect(heapTargetState().heapTarget).toBe(512 * 2 ** 20);
    expect(memory.instances({ config: {} } as never)).toEqual([{ name: 'memory', config: {} }]);
    memory.apply!({}, { heapTarget: 512 * 2 ** 20 }, rt);
    expect(heapTargetState()).toMatchObject({ heapTarget: undefined, growingPercent: 0 });
  });

  it('when the live set jumps, runs one full GC so that V8 sets its limit from the new live set at once', async () => {
    // what is really alive, without the garbage of the tests before
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
    const live0 = getHeapStatistics().used_heap_size;
    // room for 8x what is alive now: V8 gets its largest factor, 4
    holdHeapTarget(live0 * 8);
    expect(heapTargetState().growingPercent).toBe(300);
    const before = heapTargetState().relimits;
    // the live set grows by steps: once a full GC finds it grown, the factor it had would let the
    // heap grow far past the target
    const kept: number[][] = [];
    let bytes = 0;
    while (heapTargetState().relimits === before && bytes < 20 * live0) {
      kept.push(Array.from({ length: 16_384 }, (_, i) => i + 0.5));
      bytes += 16_384 * 8;
      if (kept.length % 32 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(heapTargetState().relimits).toBe(before + 1);
    // and the factor now given is for the grown live set, not the 4x of the small one
    expect(heapTargetState().growingPercent).toBeLessThan(300);
    expect(kept.length).toBeGreaterThan(0);
  });
});
