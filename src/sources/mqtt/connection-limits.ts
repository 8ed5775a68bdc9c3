/**
 * What stands between a network connection and aedes in the embedded broker:
 *   - LimitedConnection reads the MQTT framing (type byte, remaining length) of every packet as
 *     the bytes arrive, and closes the connection as soon as a packet announces more than the
 *     limit or its length field is malformed: aedes (mqtt-packet) would otherwise buffer up to
 *     256 MB per packet before deciding anything. It also closes a connection
 *       - whose packet does not arrive whole within `packetTimeoutMs` (keepalive 0 sets no other clock),
 *       - that sends PINGREQ, SUBSCRIBE or UNSUBSCRIBE faster than `maxControlPacketsPerSecond`,
 *       - that does not read what is written to it (more than `maxUnsentBytes` waiting),
 *       - whose unfinished packet takes the connections' partial bytes over `maxPartialBytes`.
 *   - IntakeBudget bounds, across all connections, the bytes of PUBLISH packets handed to aedes
 *     and not done yet plus the lines waiting for their buffer commit: beyond `maxInflightBytes`
 *     no connection is handed another PUBLISH (its socket is paused: the device is pushed back)
 *     until some are done. The heap then holds at most that, plus one message's expansion.
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

/** Publishes of one connection that may wait for their buffer commit at once. */
const MAX_WAITING_PUBLISHES = 64;
/** Bytes of one connection's PUBLISH packets that may wait at once (at least one packet always may). */
const MAX_WAITING_BYTES_PER_CONNECTION = 8 * 1024 * 1024;
/** PINGREQ (12), SUBSCRIBE (8), UNSUBSCRIBE (10): a device needs few; a flood of them costs the event loop. */
const CONTROL_TYPES = new Set([8, 10, 12]);

export type GuardViolation = 'packet_too_large' | 'malformed_packet' | 'packet_timeout' | 'partial_packets_over_limit' | 'control_packet_flood' | 'output_backlog';

export interface ConnectionLimits {
  maxPacketBytes: number;
  maxUnsentBytes: number;
  packetTimeoutMs: number;
  maxControlPacketsPerSecond: number;
}

/** What all connections share: bytes of unfinished packets, and of PUBLISH packets not done yet. */
export class IntakeBudget {
  partialBytes = 0;
  inflightBytes = 0;
  private readonly waiting = new Set<LimitedConnection>();
  private timer?: NodeJS.Timeout;

  constructor(
    public maxPartialBytes: number,
    public maxInflightBytes: number,
    /** Bytes of lines the pipeline holds for their commit (all sources). */
    private readonly pendingBytes: () => number = () => 0,
  ) {}

  /** New limits (a reload); connections held back are looked at again on the next tick. */
  setLimits(maxPartialBytes: number, maxInflightBytes: number): void {
    this.maxPartialBytes = maxPartialBytes;
    this.maxInflightBytes = maxInflightBytes;
  }

  full(): boolean {
    return this.inflightBytes + this.pendingBytes() > this.maxInflightBytes;
  }

  /** `conn` is held back until the budget has room: woken when publishes are done, and checked every 50 ms. */
  wait(conn: LimitedConnection): void {
    this.waiting.add(conn);
    this.timer ??= setInterval(() => this.wake(), 50).unref();
  }

  forget(conn: LimitedConnection): void {
    this.waiting.delete(conn);
  }

  wake(): void {
    // called once per finished PUBLISH: nothing to do unless a connection waits
    if (this.waiting.size === 0 || this.full()) return;
    const conns = [...this.waiting];
    this.waiting.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const c of conns) c.resumeIntake();
  }
}

export class LimitedConnection extends Duplex {
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
  private ends: { at: number; publish: boolean; size: number }[] = [];
  private endsHead = 0;
  /** PUBLISH packets handed to aedes whose points are not durable yet, and their sizes (oldest first). */
  private inFlight = 0;
  private inFlightBytes = 0;
  private inFlightSizes: number[] = [];
  private ended = false;
  /** Bytes of the packet being read so far (counted in the budget's partialBytes while it is unfinished). */
  private partial = 0;
  private packetStartedAt = 0;
  private packets = 0;
  private packetTimer?: NodeJS.Timeout;
  /** PINGREQ, SUBSCRIBE and UNSUBSCRIBE of this connection: the rate, bursts of ten seconds' worth. */
  private readonly control: RateLimiter;

  constructor(
    private readonly inner: Duplex,
    readonly peer: Peer,
    private readonly limits: ConnectionLimits,
    private readonly budget: IntakeBudget,
    private readonly onViolation: (reason: GuardViolation, detail: string) => void,
  ) {
    super({ allowHalfOpen: false });
    this.control = new RateLimiter(limits.maxControlPacketsPerSecond, limits.maxControlPacketsPerSecond * 10);
    inner.on('data', (chunk: Buffer) => {
      const problem = this.inspect(chunk, this.heldAt + this.held.length);
      if (problem) return this.violate(problem[0], problem[1]);
      if (this.phase !== 0) this.armPacketTimer();
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

  private violate(reason: GuardViolation, detail: string): void {
    if (this.destroyed) return;
    this.onViolation(reason, detail);
    this.destroy();
  }

  /** Walks the packet boundaries in `chunk`; returns why the stream must be closed, if it must. */
  private inspect(chunk: Buffer, base: number): [reason: GuardViolation, detail: string] | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.phase === 5) {
        const n = Math.min(this.left, chunk.length - i);
        this.left -= n;
        i += n;
        if (this.left === 0) {
          this.phase = 0;
          this.packetDone(base + i);
        } else {
          this.partial += n;
          this.budget.partialBytes += n;
          if (this.budget.partialBytes > this.budget.maxPartialBytes) {
            return ['partial_packets_over_limit', `unfinished packets of all connections hold more than ${this.budget.maxPartialBytes} bytes`];
          }
        }
        continue;
      }
      const b = chunk[i++]!;
      if (this.phase === 0) {
        if (b >> 4 === 0) return ['malformed_packet', `packet type 0 is reserved (first byte 0x${b.toString(16).padStart(2, '0')})`];
        if (CONTROL_TYPES.has(b >> 4) && !this.control.allow('')) {
          return ['control_packet_flood', `more than ${this.limits.maxControlPacketsPerSecond} PINGREQ/SUBSCRIBE/UNSUBSCRIBE per second`];
        }
        this.isPublish = b >> 4 === 3;
        this.phase = 1;
        this.length = 0;
        this.multiplier = 1;
        this.packetStartedAt = Date.now();
        continue;
      }
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (b & 0x80) {
        if (++this.phase > 4) return ['malformed_packet', 'remaining length longer than 4 bytes'];
        continue;
      }
      if (this.length > this.limits.maxPacketBytes) return ['packet_too_large', `packet of ${this.length} bytes, limit ${this.limits.maxPacketBytes}`];
      this.left = this.length;
      this.size = this.phase + 1 + this.length;
      this.phase = this.left === 0 ? 0 : 5;
      if (this.phase === 0) this.packetDone(base + i);
    }
    return undefined;
  }

  /** Bytes of the packet being read, header included. */
  private size = 0;

  private packetDone(at: number): void {
    this.ends.push({ at, publish: this.isPublish, size: this.size });
    this.packets++;
    this.budget.partialBytes -= this.partial;
    this.partial = 0;
  }

  /** A packet has started arriving and is not whole yet: it must be within packetTimeoutMs. */
  private armPacketTimer(): void {
    if (this.packetTimer) return;
    const seq = this.packets;
    const wait = Math.max(0, this.packetStartedAt + this.limits.packetTimeoutMs - Date.now());
    this.packetTimer = setTimeout(() => {
      this.packetTimer = undefined;
      if (this.destroyed || this.phase === 0) return;
      if (this.packets === seq) return this.violate('packet_timeout', `a packet was not whole ${this.limits.packetTimeoutMs} ms after it began`);
      this.armPacketTimer(); // another packet is arriving now: it gets its own time
    }, wait).unref();
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
        if ((this.inFlight > 0 && this.inFlightBytes + e.size > MAX_WAITING_BYTES_PER_CONNECTION) || this.budget.full()) {
          this.budget.wait(this);
          break;
        }
        this.inFlight++;
        this.inFlightBytes += e.size;
        this.inFlightSizes.push(e.size);
        this.budget.inflightBytes += e.size;
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
    if (this.inFlight > 0) {
      this.inFlight--;
      const size = this.inFlightSizes.shift() ?? 0;
      this.inFlightBytes -= size;
      this.budget.inflightBytes -= size;
    }
    this.pump();
    this.budget.wake();
  }

  /** The intake budget has room again. */
  resumeIntake(): void {
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
    // What the peer does not read waits in the socket, counted there, up to maxUnsentBytes: a peer
    // that stops reading (a subscriber gone quiet, a PINGREQ flood that never takes its PINGRESPs)
    // is closed instead of growing our memory. (Waiting for 'drain' here would queue the rest in
    // this stream, where no limit would see it.)
    if (this.inner.writableLength > this.limits.maxUnsentBytes) {
      cb();
      return this.violate('output_backlog', `more than ${this.limits.maxUnsentBytes} bytes written to the connection are not read by the peer`);
    }
    this.inner.write(chunk);
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // what this connection held counts no more
    this.budget.partialBytes -= this.partial;
    this.partial = 0;
    this.budget.inflightBytes -= this.inFlightBytes;
    this.inFlightBytes = 0;
    this.inFlightSizes = [];
    this.budget.forget(this);
    if (this.packetTimer) clearTimeout(this.packetTimer);
    this.inner.destroy();
    this.budget.wake();
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
