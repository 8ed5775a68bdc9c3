/**
 * What stands between a network connection and aedes in the embedded broker:
 *   - GuardedConnection reads the MQTT framing (type byte, remaining length) of every packet as
 *     the bytes arrive, and closes the connection as soon as a packet announces more than the
 *     limit or its length field is malformed: aedes (mqtt-packet) would otherwise buffer up to
 *     256 MB per packet before deciding anything.
 *   - RateLimiter bounds new connections and failed logins per remote address (reconnect storms,
 *     password guessers, which would otherwise also keep scrypt busy).
 * It works on any duplex stream, so TCP, TLS and WebSocket connections get the same limits.
 */
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';

export interface Peer {
  address?: string;
  port?: number;
  transport?: 'tcp' | 'tls' | 'ws' | 'wss';
  /** Set for TLS connections: the client certificate is read from it. */
  tls?: TLSSocket;
}

/** Publishes of one connection that may wait for their buffer commit at once (× connections: the memory bound). */
const MAX_WAITING_PUBLISHES = 64;

export class GuardedConnection extends Duplex {
  /** 0: expecting a fixed header byte; 1..4: reading the remaining-length bytes; 5: in the body. */
  private phase = 0;
  private length = 0;
  private multiplier = 1;
  private left = 0;
  private corked = false;
  /** Whether the packet being read is a PUBLISH. */
  private isPublish = false;
  /** Bytes read from the socket and not yet handed to aedes; `heldAt`: their offset in the stream. */
  private held: Buffer = Buffer.alloc(0);
  private heldAt = 0;
  /** Where packets end (stream offsets) from `ends[endsHead]` on: offsets, so nothing is rebased per packet. */
  private ends: { at: number; publish: boolean }[] = [];
  private endsHead = 0;
  /** PUBLISH packets handed to aedes whose points are not durable yet. */
  private inFlight = 0;
  private ended = false;

  constructor(
    private readonly inner: Duplex,
    readonly peer: Peer,
    private readonly maxPacketBytes: number,
    private readonly onViolation: (reason: 'packet_too_large' | 'malformed_packet', detail: string) => void,
  ) {
    super({ allowHalfOpen: false });
    inner.on('data', (chunk: Buffer) => {
      const problem = this.inspect(chunk, this.heldAt + this.held.length);
      if (problem) {
        this.onViolation(problem[0], problem[1]);
        this.destroy();
        return;
      }
      this.held = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
      this.pump();
    });
    inner.once('end', () => {
      this.ended = true;
      this.pump();
    });
    inner.once('error', (err) => this.destroy(err));
    inner.once('close', () => this.destroy());
  }

  /** Walks the packet boundaries in `chunk`; returns why the stream must be closed, if it must. */
  private inspect(chunk: Buffer, base: number): [reason: 'packet_too_large' | 'malformed_packet', detail: string] | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.phase === 5) {
        const n = Math.min(this.left, chunk.length - i);
        this.left -= n;
        i += n;
        if (this.left === 0) {
          this.phase = 0;
          this.ends.push({ at: base + i, publish: this.isPublish });
        }
        continue;
      }
      const b = chunk[i++]!;
      if (this.phase === 0) {
        if (b >> 4 === 0) return ['malformed_packet', `packet type 0 is reserved (first byte 0x${b.toString(16).padStart(2, '0')})`];
        this.isPublish = b >> 4 === 3;
        this.phase = 1;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (b & 0x80) {
        if (++this.phase > 4) return ['malformed_packet', 'remaining length longer than 4 bytes'];
        continue;
      }
      if (this.length > this.maxPacketBytes) return ['packet_too_large', `packet of ${this.length} bytes, limit ${this.maxPacketBytes}`];
      this.left = this.length;
      this.phase = this.left === 0 ? 0 : 5;
      if (this.phase === 0) this.ends.push({ at: base + i, publish: this.isPublish });
    }
    return undefined;
  }

  override _read(): void {
    this.pump();
  }

  /**
   * Hands aedes whole packets, at most MAX_WAITING_PUBLISHES PUBLISH packets whose points are not
   * durable yet. aedes starts every packet of what it reads at once (and reads again on each
   * 'readable'), so a QoS 0 flood, which no acknowledgement window limits, put ~500 messages per
   * connection in flight: ~1 GB with 200 devices. What is held back stays in the socket's
   * buffers (the socket is paused once 64 KiB wait here), which pushes back on the device.
   */
  private pump(): void {
    if (this.destroyed) return;
    // everything, up to the start of the first PUBLISH that would exceed the limit. This runs once
    // per finished PUBLISH, so it must not walk (or copy) the packets it holds back: under a QoS 0
    // flood hundreds wait here, and rebasing them each time made a message cost twice as much.
    let k = this.endsHead;
    while (k < this.ends.length) {
      const e = this.ends[k]!;
      if (e.publish) {
        if (this.inFlight >= MAX_WAITING_PUBLISHES) break;
        this.inFlight++;
      }
      k++;
    }
    // nothing held back: the start of a packet still arriving goes too (a large one would
    // otherwise fill `held` and pause the socket before its end could arrive)
    const cut = k === this.ends.length ? this.held.length : k > this.endsHead ? this.ends[k - 1]!.at - this.heldAt : 0;
    if (cut > 0) {
      const out = this.held.subarray(0, cut);
      this.held = this.held.subarray(cut);
      this.heldAt += cut;
      if (k === this.ends.length) {
        this.ends = [];
        this.endsHead = 0;
      } else if (k > 1024) {
        this.ends = this.ends.slice(k);
        this.endsHead = 0;
      } else this.endsHead = k;
      this.push(out);
    }
    if (this.ended) {
      if (this.held.length === 0) this.push(null);
      return;
    }
    if (this.held.length > 65_536) this.inner.pause();
    else this.inner.resume();
  }

  /** A PUBLISH handed to aedes has been handled (its points are durable, or it was refused). */
  publishDone(): void {
    if (this.inFlight > 0) this.inFlight--;
    this.pump();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // The PUBACKs of one buffer commit are written in the same tick: one syscall for all of them
    // instead of one per acknowledgement (a seventh of the event loop under load, measured).
    if (!this.corked) {
      this.corked = true;
      this.inner.cork();
      process.nextTick(() => {
        this.corked = false;
        this.inner.uncork();
      });
    }
    if (this.inner.write(chunk)) cb();
    else this.inner.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}

/** Token buckets by key (a remote address): `perSecond` refill, at most `burst` at once. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perSecond: number, private readonly burst = perSecond) {}

  private bucket(key: string, now: number): { tokens: number; at: number } {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.prune(now);
    return b;
  }

  /** Takes a token when one is left. */
  allow(key: string, now = Date.now()): boolean {
    const b = this.bucket(key, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Would `allow` succeed? Takes nothing. */
  has(key: string, now = Date.now()): boolean {
    return !this.buckets.has(key) || this.bucket(key, now).tokens >= 1;
  }

  /** Forgets keys whose bucket is full again (they would be allowed anyway). */
  prune(now = Date.now()): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
  }
}
