import { describe, expect, it } from 'vitest';
import { AckPipeline } from './ack-pipeline.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
}
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('AckPipeline', () => {
  it('acknowledges in arrival order, each only once durable, and reads on up to the limit', async () => {
    const failures: unknown[] = [];
    const p = new AckPipeline(2, (e) => failures.push(e));
    const stream = {};
    const acks: number[] = [];
    const nexts: number[] = [];
    const d = [deferred(), deferred(), deferred()];
    d.forEach((x, i) => p.admit(stream, x.promise, () => acks.push(i), () => nexts.push(i)));
    expect(nexts).toEqual([0, 1]); // the third waits: two are pending
    d[1]!.resolve(); // durable out of order: no ack before message 0's
    await tick();
    expect(acks).toEqual([]);
    d[0]!.resolve();
    await tick();
    expect(acks).toEqual([0, 1]);
    expect(nexts).toEqual([0, 1, 2]);
    d[2]!.resolve();
    await tick();
    expect(acks).toEqual([0, 1, 2]);
    expect(p.pending).toBe(0);
    expect(failures).toEqual([]);
  });

  it('after a message that could not be made durable, nothing later on that connection is acknowledged', async () => {
    const failures: unknown[] = [];
    const p = new AckPipeline(10, (e) => failures.push(e));
    const a = {};
    const b = {};
    const acks: string[] = [];
    p.admit(a, Promise.resolve(), () => acks.push('a0'), () => undefined);
    p.admit(a, Promise.reject(new Error('disk full')), () => acks.push('a1'), () => undefined);
    p.admit(a, Promise.resolve(), () => acks.push('a2'), () => undefined);
    p.admit(b, Promise.resolve(), () => acks.push('b0'), () => undefined); // a new connection
    await tick();
    await tick();
    expect(acks).toEqual(['a0', 'b0']);
    expect(failures).toHaveLength(1);
  });
});
