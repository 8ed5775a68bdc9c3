/**
 * The pipeline without a network: processors' refusals become dead letters, taps see only what
 * passed, ingest resolves once the lines are committed, drop_newest is acknowledged (counted, not
 * resent forever), and a component that cannot start is named and what started is stopped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { bufferSchema } from '../buffer/config.js';
import { DiskBuffer } from '../buffer/disk-buffer.js';
import { BaseComponent } from '../core/component.js';
import { PlantgateError } from '../core/errors.js';
import type { Point } from '../core/point.js';
import { deadLettersSchema } from '../deadletters/config.js';
import { DeadLetters } from '../deadletters/dead-letters.js';
import { guardSchema } from '../processors/guard/config.js';
import { Guard } from '../processors/guard/guard.js';
import { Pipeline } from './pipeline.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(buffer: Record<string, unknown> = {}, sinks: BaseComponent[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'pg-pipe-'));
  dirs.push(dir);
  const buf = new DiskBuffer('buffer', bufferSchema.parse({ dir: join(dir, 'buf'), ...buffer }), ['sink']);
  const dl = new DeadLetters(join(dir, 'dl.jsonl'), deadLettersSchema.parse({}));
  return { p: new Pipeline(buf, [new Guard('guard', guardSchema.parse({}))], sinks, dl, pino({ level: 'silent' })), buf, dl };
}

const pt = (v: number, time = Date.now()): Point => ({ measurement: 'm', tags: { d: 'a' }, fields: { v }, time, receivedAt: time, quality: 'good', source: 'test' });

class Failing extends BaseComponent {
  readonly kind = 'sink' as const;
  readonly type = 'failing';
  protected async doStart(): Promise<void> {
    throw new PlantgateError('PG_ERR_LISTEN', 'cannot listen on 127.0.0.1:1: taken');
  }
  protected async doStop(): Promise<void> {}
}

describe('pipeline', () => {
  it('dead-letters what a processor refuses, taps and commits the rest, and resolves once committed', async () => {
    const { p, buf, dl } = setup();
    const seen: Point[] = [];
    p.addTap((ps) => seen.push(...ps));
    await p.start();
    await p.ingest([pt(1), pt(Number.NaN), pt(3)], 'test');
    expect(seen.map((x) => x.fields.v)).toEqual([1, 3]);
    expect(buf.committedLines()).toBe(2);
    expect(dl.status().byReason).toEqual({ non_finite_float: 1 });
    expect(dl.status().latest[0]).toMatchObject({ source: 'test', reason: 'non_finite_float' });
    await p.stop();
  });

  it('a tap that throws does not stop the points', async () => {
    const { p, buf } = setup();
    p.addTap(() => {
      throw new Error('tap bug');
    });
    await p.start();
    await p.ingest([pt(1)], 'test');
    expect(buf.committedLines()).toBe(1);
    await p.stop();
  });

  it('with drop_newest a full buffer drops and counts, and ingest resolves (the source acknowledges)', async () => {
    const { p, buf } = setup({ maxBytes: 2048, segmentBytes: 512, whenFull: 'drop_newest' });
    await p.start();
    for (let i = 0; i < 100; i++) await p.ingest([pt(i, Date.now() - 1000 + i)], 'test');
    expect(buf.status().counters.dropped.buffer_full_drop_newest).toBeGreaterThan(0);
    await p.stop();
  });

  it('names the component that cannot start, keeps its error code, and stops what had started', async () => {
    const { p, buf } = setup({}, [new Failing('influx')]);
    const err = await p.start().catch((e: unknown) => e as PlantgateError);
    expect(err).toBeInstanceOf(PlantgateError);
    expect((err as PlantgateError).code).toBe('PG_ERR_LISTEN');
    expect((err as Error).message).toBe('sink influx cannot start: cannot listen on 127.0.0.1:1: taken');
    expect(buf.status().state).toBe('stopped');
  });
});
