import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LimitedConnection, IntakeBudget, RateLimiter, type ConnectionLimits } from './connection-limits.js';

function guard(limit: number, limits: Partial<ConnectionLimits> = {}, budget = new IntakeBudget(1e9, 1e9)) {
  const inner = new PassThrough();
  const violations: string[] = [];
  const all: ConnectionLimits = { maxPacketBytes: limit, maxUnsentBytes: 1e9, packetTimeoutMs: 60_000, maxControlPacketsPerSecond: 1e6, ...limits };
  const g = new LimitedConnection(inner, {}, all, budget, (reason, detail) => violations.push(`${reason}: ${detail}`));
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

  it('hands on at most 64 PUBLISH not yet done, the rest as they are done, in order and unchanged', async () => {
    const { inner, g, got } = guard(1000);
    const publish = (i: number) => Buffer.from([0x30, 0x03, 0, 1, 0x61 + (i % 26)]);
    const all = Buffer.concat([...Array.from({ length: 100 }, (_, i) => publish(i)), Buffer.from([0xc0, 0x00])]);
    inner.write(all);
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(got).length).toBe(64 * 5);
    for (let i = 0; i < 10; i++) g.publishDone();
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(got).length).toBe(74 * 5);
    for (let i = 0; i < 64; i++) g.publishDone();
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(got)).toEqual(all);
  });

  it('passes a packet larger than what it holds back while it is still arriving', async () => {
    const { inner, got, violations } = guard(1_000_000);
    const payload = Buffer.alloc(300_000, 0x61);
    const len = 3 + payload.length; // topic length (2) + topic "t" (1) + payload
    const head = Buffer.from([0x30, (len & 0x7f) | 0x80, ((len >> 7) & 0x7f) | 0x80, len >> 14, 0, 1, 0x74]);
    const packet = Buffer.concat([head, payload]);
    for (let at = 0; at < packet.length; at += 10_000) {
      inner.write(packet.subarray(at, at + 10_000));
      await new Promise((r) => setImmediate(r));
    }
    expect(violations).toEqual([]);
    expect(Buffer.concat(got)).toEqual(packet);
  });

  it('rate limiter: a burst, then the refill rate, per key', () => {
    const r = new RateLimiter(2, 2);
    expect([r.allow('a', 0), r.allow('a', 0), r.allow('a', 0)]).toEqual([true, true, false]);
    expect(r.allow('b', 0)).toBe(true);
    expect(r.has('a', 400)).toBe(false);
    expect(r.allow('a', 500)).toBe(true);
  });
});
