import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GuardedConnection, RateLimiter } from './broker-guard.js';

function guard(limit: number) {
  const inner = new PassThrough();
  const violations: string[] = [];
  const g = new GuardedConnection(inner, {}, limit, (reason, detail) => violations.push(`${reason}: ${detail}`));
  const got: Buffer[] = [];
  g.on('data', (d: Buffer) => got.push(d));
  g.on('error', () => undefined);
  return { inner, g, violations, got };
}

describe('broker guard', () => {
  it('follows packet boundaries across chunks and passes the bytes on unchanged', async () => {
    const { inner, violations, got } = guard(100);
    // PINGREQ, then a PUBLISH of 5 bytes split over three chunks, then a DISCONNECT
    const bytes = Buffer.from([0xc0, 0x00, 0x30, 0x05, 0, 1, 0x61, 0x62, 0x63, 0xe0, 0x00]);
    inner.write(bytes.subarray(0, 3));
    inner.write(bytes.subarray(3, 6));
    inner.write(bytes.subarray(6));
    await new Promise((r) => setImmediate(r));
    expect(violations).toEqual([]);
    expect(Buffer.concat(got)).toEqual(bytes);
  });

  it('closes on a packet over the limit at its header, and on a 5-byte remaining length', async () => {
    const a = guard(100);
    a.inner.write(Buffer.from([0x30, 0xe5, 0x00])); // 101 bytes announced
    await new Promise((r) => setImmediate(r));
    expect(a.violations).toEqual(['packet_too_large: packet of 101 bytes, limit 100']);
    expect(a.g.destroyed).toBe(true);
    const b = guard(1e9);
    b.inner.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await new Promise((r) => setImmediate(r));
    expect(b.violations).toEqual(['malformed_packet: remaining length longer than 4 bytes']);
  });

  it('rate limiter: a burst, then the refill rate, per key', () => {
    const r = new RateLimiter(2, 2);
    expect([r.allow('a', 0), r.allow('a', 0), r.allow('a', 0)]).toEqual([true, true, false]);
    expect(r.allow('b', 0)).toBe(true);
    expect(r.has('a', 400)).toBe(false);
    expect(r.allow('a', 500)).toBe(true);
  });
});
