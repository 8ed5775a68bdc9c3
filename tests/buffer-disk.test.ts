/**
 * The buffer on a disk that fills up, and on segments that were damaged while it was stopped
 * (docs/delivery.md rules 3 and 5). The disk is a real tmpfs this test mounts.
 */
import { readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { bufferSchema } from '../src/buffer/config.js';
import { DiskBuffer } from '../src/buffer/disk-buffer.js';
import { tempDir } from './helpers/servers.js';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function capture() {
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logs, log: pino({ level: 'debug' }, stream) };
}

function open(dir: string, extra: Record<string, unknown>, log?: pino.Logger) {
  return new DiskBuffer('buffer', bufferSchema.parse({ dir, ...extra }), ['sink'], log);
}

const line = (i: number, pad = 200) => `m,dev=d${i % 7} v=${i},s="${'x'.repeat(pad)}" ${1_700_000_000_000 + i}`;

async function drain(b: DiskBuffer): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const batch = await b.read('sink', 500);
    if (!batch) return out;
    out.push(...batch.body.split('\n'));
    b.ack('sink', batch.end, batch.lines);
  }
}

const settled = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => 'resolved', () => 'rejected'), new Promise((r) => setTimeout(() => r('pending'), ms))]);

describe('buffer on a full disk', () => {
  it('holds appends instead of failing them, says why, and goes on once space is freed; a restart on the full disk works', async () => {
    const fs = mountTmpfs(2 * 1024 * 1024);
    cleanups.push(fs.remove);
    const dir = join(fs.path, 'buffer');
    const { logs, log } = capture();
    const cfg = { maxBytes: '1GiB', segmentBytes: '128KiB' };
    let b = open(dir, cfg, log);
    await b.start();
    expect(logs.some((l) => l.code === 'PG_ERR_BUFFER_OVER_FREE_SPACE'), 'maxBytes above the free space is warned about').toBe(true);

    // fill the disk through the buffer until a commit cannot be written
    let n = 0;
    let waiting: Promise<void> | undefined;
    const rejected: unknown[] = [];
    while (!waiting) {
      const p = b.append(Array.from({ length: 50 }, (_, k) => line(n * 50 + k)));
      n++;
      p.catch((err: unknown) => rejected.push(err));
      if ((await settled(p, 300)) === 'pending') waiting = p;
      expect(n).toBeLessThan(1000);
    }
    const accepted = (n - 1) * 50;
    const s = b.status();
    expect(s.state).toBe('disk_error');
    expect((s.details!.diskError as { code: string }).code).toBe('ENOSPC');
    expect(logs.find((l) => l.code === 'PG_ERR_BUFFER_DISK_FULL')?.msg).toMatch(/disk is full/);
    // a second append waits too, and nothing is refused
    const second = b.append([line(999_999)]);
    expect(await settled(second, 300)).toBe('pending');
    expect(rejected).toEqual([]);

    // a sink writes part of the backlog: the cursor must be saved on the full disk (the reserve
    // makes room), segments go, and the waiting appends are committed by themselves
    const firstBatch = (await b.read('sink', 2000))!;
    b.ack('sink', firstBatch.end, firstBatch.lines);
    await waiting;
    await second;
    expect(b.status().state).toBe('running');
    expect(logs.some((l) => /commits again/.test(String(l.msg)))).toBe(true);
    await b.stop();

    // fill the disk from outside, then restart: start must not fail on the full disk
    const filler = fillDisk(fs.path);
    b = open(dir, cfg, log);
    await b.start();
    expect(b.status().state).toBe('running');
    const rest = await drain(b);
    expect(firstBatch.lines + rest.length).toBe(accepted + 50 + 1);
    unlinkSync(filler);
    await b.stop();
  });

  it('a state file that cannot be written is retried, never thrown, and shown', async () => {
    const fs = mountTmpfs(1024 * 1024);
    cleanups.push(fs.remove);
    const dir = join(fs.path, 'buffer');
    const { log } = capture();
    const b = open(dir, { maxBytes: '1GiB', segmentBytes: '64KiB' }, log);
    await b.start();
    await b.append([line(1), line(2)]);
    rmSync(join(dir, 'reserve'));
    const filler = fillDisk(fs.path);
    const batch = (await b.read('sink', 10))!;
    expect(() => b.ack('sink', batch.end, batch.lines)).not.toThrow();
    expect((b.status().details!.ledgerError as { code: string }).code).toBe('ENOSPC');
    unlinkSync(filler);
    await new Promise((r) => setTimeout(r, 1500));
    expect(b.status().details!.ledgerError).toBeUndefined();
    expect(JSON.parse(readFileSync(join(dir, 'cursors.json'), 'utf8')).sink).toEqual(batch.end);
    await b.stop();
  });
});

/** A tiny PRNG so each damage seed is repeatable. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
}

describe('buffer damaged while stopped', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: flipped bytes, a truncated closed segment, a broken length field, no cursor file: lost lines within the reported bounds, each finding logged`, async () => {
      const d = tempDir('damage');
      cleanups.push(d.remove);
      const cfg = { maxBytes: '64MiB', segmentBytes: '64KiB' };
      let b = open(d.path, cfg);
      await b.start();
      const total = 6000;
      // appends of 1..40 lines, so records differ in size
      const r = rng(seed);
      for (let i = 0; i < total; ) {
        const k = Math.min(total - i, 1 + Math.floor(r() * 40));
        await b.append(Array.from({ length: k }, (_, j) => line(i + j, 20 + Math.floor(r() * 60))));
        i += k;
      }
      await b.stop();
      const segs = readdirSync(d.path).filter((f) => f.endsWith('.seg')).sort();
      expect(segs.length).toBeGreaterThan(5);
      const path = (i: number) => join(d.path, segs[i]!);
      // 1. bytes flipped inside a closed segment
      const a = readFileSync(path(1));
      for (let k = 0; k < 3; k++) a[Math.floor(r() * a.length)]! ^= 0x5a;
      writeFileSync(path(1), a);
      // 2. a closed segment truncated to 40 %
      truncateSync(path(2), Math.floor(statSync(path(2)).size * 0.4));
      // 3. a record's length field flipped in another closed segment (a record boundary found by walking headers)
      const c = readFileSync(path(3));
      let off = 0;
      const hops = 1 + Math.floor(r() * 5);
      for (let h = 0; h < hops; h++) off += 20 + c.readUInt32LE(off);
      c[off + 1]! ^= 0xff;
      writeFileSync(path(3), c);
      // 4. flipped bytes in the active (last) segment, which the manifest does not count
      const e = readFileSync(path(segs.length - 1));
      e[Math.floor(e.length / 3)]! ^= 0x21;
      writeFileSync(path(segs.length - 1), e);
      // 5. the cursor file is gone
      rmSync(join(d.path, 'cursors.json'), { force: true });

      const { logs, log } = capture();
      b = open(d.path, cfg, log);
      await b.start();
      const got = await drain(b);
      const lost = total - new Set(got).size;
      const rec = b.status().details!.recovered as { linesLost: number; linesLostAtLeast: number; linesLostAtMost: number; exact: boolean };
      expect(lost).toBeGreaterThan(0);
      expect(lost, `lost ${lost}, reported ${JSON.stringify(rec)}`).toBeGreaterThanOrEqual(rec.linesLostAtLeast);
      expect(lost).toBeLessThanOrEqual(rec.linesLostAtMost);
      expect(b.status().counters.dropped.corrupt_record).toBe(rec.linesLost);
      // every damaged segment is named in a log line with its offset
      for (const i of [1, 2, 3, segs.length - 1]) {
        expect(logs.some((l) => l.code === 'PG_ERR_BUFFER_CORRUPT' && l.file === path(i) && typeof l.offset === 'number'), `segment ${segs[i]} logged`).toBe(true);
      }
      expect(logs.some((l) => l.code === 'PG_ERR_BUFFER_CORRUPT' && /cursors.json is missing/.test(String(l.msg)))).toBe(true);
      // the good records after a broken length field are kept (resynchronised, not cut)
      const seg3 = new Set(c.toString('latin1').match(/v=\d+/g));
      expect([...seg3].filter((v) => got.some((g) => g.includes(`${v},`))).length).toBeGreaterThan(seg3.size / 2);
      // the loss stays on record until an operator acknowledges it, across a restart
      await b.stop();
      b = open(d.path, cfg);
      await b.start();
      expect(b.unacknowledgedLosses().length).toBeGreaterThanOrEqual(4);
      expect((b.status().details!.losses as { lines: number }).lines).toBe(rec.linesLost);
      b.acknowledgeLosses();
      expect(b.status().details!.losses).toBeUndefined();
      await b.stop();
      b = open(d.path, cfg);
      await b.start();
      expect(b.unacknowledgedLosses()).toEqual([]);
      await b.stop();
    });
  }
});
