/**
 * This gateway as a member of a fleet that shares OPC UA endpoints and Sparkplug groups ("units")
 * through leases in etcd. Nothing here is a server of our own: etcd holds the facts, and every
 * member acts on them for itself (assignment.ts decides what it should claim or give up).
 *
 * Keys, under the fleet's prefix, all attached to this member's one lease:
 *   members/<instance>  {instance, advertise, boot, since}
 *   units/<unit>        <instance>           (created only if absent: an etcd transaction)
 * When the member dies, its lease expires after leaseTtl and etcd deletes every key of it at
 * once; the others see the units unowned and claim them on their next round.
 *
 * The keepalive runs on its own timer, every leaseTtl/3 as etcd's own Go client does. Rounds run
 * every leaseTtl/5 (at most 2 s): read the view, claim, release, and hand the set of owned units to the gateway,
 * which starts and stops exactly those components (the same path as a reload). A unit is stopped
 * here before its key is deleted, and started only after its key is ours: two members overlap on
 * a unit only when one of them cannot reach etcd.
 *
 * Partitions. A member that has not reached etcd for 60% of the TTL asks its peers, at the status
 * URL they advertise, whether they reach etcd. If one does, this member is the one cut off: it
 * stops reading everything before its lease runs out (the peers take the units over when it has).
 * If none does, etcd itself is down: every member keeps reading what it owns (data does not stop),
 * and etcd, which restarts its leases' timers when it elects a leader, finds them all still valid
 * when it returns. A member whose lease did expire takes a new one and claims back what it still
 * reads where nobody else has; what another member owns by then it stops. docs/scaling.md gives
 * the bounds of the overlap.
 *
 * Longer than ~400 lines: the lease, its keepalive, the rounds that claim and release, and the
 * partition test all read and change one state (the lease, the units held, when etcd last
 * answered); the pure part, the plan of who claims what, is in assignment.ts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Etcd3, EtcdLeaseInvalidError, type Lease, type Namespace } from 'etcd3';
import type { Logger } from 'pino';
import { withTimeout } from '../core/retry.js';
import { plan } from './assignment.js';
import type { ClusterConfig } from './config.js';

export interface MemberDeps {
  instance: string;
  /** URL of this gateway's status server as peers reach it (read once the server listens). */
  advertise(): string;
  /** Every unit of the fleet, from the configuration now running. */
  units(): string[];
  /** Make the gateway read exactly these units; resolves, once their components run, to how many failed to start. */
  apply(owned: ReadonlySet<string>): Promise<number>;
  log: Logger;
}

export interface Handover {
  unit: string;
  action: 'acquired' | 'released';
  at: number;
  /** Why: rebalance, failover, cut off from etcd, no longer configured, stopping. */
  reason: string;
  /** acquired: the member that held it last, as this member saw it. */
  from?: string;
  /** acquired: how long it had no reader, as seen from here (its last owner's last sighting to our start). */
  darkMs?: number;
  /** How long starting or stopping its component took. */
  durationMs: number;
}

export interface ClusterStatus {
  instance: string;
  advertise: string;
  leaseTtlMs: number;
  etcd: { endpoints: string[]; reachable: boolean; lastContactAt?: number; lastError?: string };
  /** held: the lease is ours; waiting: the key of an earlier process of this instance has not expired; cut-off: peers reach etcd and we do not, so we read nothing; etcd-down: nobody reaches etcd, we keep reading; connecting. */
  lease: { state: 'connecting' | 'held' | 'waiting' | 'cut-off' | 'etcd-down'; id?: string; since: number };
  members: { instance: string; advertise?: string; since?: number; units: string[] }[];
  units: { total: number; owned: string[]; unowned: string[] };
  handovers: Handover[];
  counters: { acquired: number; released: number };
}

interface MemberRecord {
  instance: string;
  advertise: string;
  boot: string;
  since: number;
}

export class ClusterMember {
  readonly type = 'cluster-member';
  private client?: Etcd3;
  private ns?: Namespace;
  private lease?: Lease;
  private leaseId?: string;
  private readonly boot = randomBytes(8).toString('hex');
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = false;
  private lastContact = 0;
  private lastError?: string;
  private leaseState: ClusterStatus['lease'] = { state: 'connecting', since: Date.now() };
  private members = new Map<string, MemberRecord>();
  private owners = new Map<string, string>();
  /** What the gateway reads now (applied), which may differ from what etcd says while it is unreachable. */
  private reading = new Set<string>();
  /** unit -> when it was first seen without owner, and who held it before. */
  private readonly unownedSince = new Map<string, { at: number; from?: string }>();
  private readonly lastOwner = new Map<string, { owner: string; at: number }>();
  private readonly handovers: Handover[] = [];
  private readonly counters = { acquired: 0, released: 0 };
  private readonly intervalMs: number;
  /** Some owned unit did not start: apply again next round. */
  private failedToStart = false;
  private keeper?: NodeJS.Timeout;
  private keeping = false;
  private keepRetry?: NodeJS.Timeout;
  private watcher?: { cancel(): Promise<void> };
  private again = false;

  constructor(
    readonly name: string,
    private readonly config: ClusterConfig,
    private readonly deps: MemberDeps,
  ) {
    this.intervalMs = Math.max(200, Math.min(2000, config.leaseTtl / 5));
  }

  private get ttlSeconds(): number {
    return Math.max(2, Math.round(this.config.leaseTtl / 1000));
  }

  async start(): Promise<void> {
    const e = this.config.etcd;
    const callMs = Math.max(500, Math.min(3000, this.config.leaseTtl / 4));
    this.client = new Etcd3({
      hosts: e.endpoints,
      auth: e.username ? { username: e.username, password: e.password ?? '' } : undefined,
      credentials: e.tls?.ca ? { rootCertificate: readFileSync(e.tls.ca), privateKey: e.tls.key ? readFileSync(e.tls.key) : undefined, certChain: e.tls.cert ? readFileSync(e.tls.cert) : undefined } : undefined,
      grpcOptions: e.tls?.servername ? { 'grpc.ssl_target_name_override': e.tls.servername } : undefined,
      dialTimeout: callMs,
      // a call that cannot complete within a fraction of the TTL is a failed round, not a hang
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callMs }),
    });
    this.ns = this.client.namespace(e.prefix);
    // etcd being down at start is a state (shown, retried), not a start failure
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    // every TTL/3, as etcd's own Go client does
    this.keeper = setInterval(() => void this.keepalive(), this.config.leaseTtl / 3);
    this.keeper.unref();
    // a unit or member key deleted (a lease expired, a unit given up) or a member joining starts a
    // round at once, instead of at the next tick: a failover waits for the lease, not for us
    void this.ns.watch().prefix('').create().then(
      (w) => {
        if (this.stopped) return void w.cancel();
        this.watcher = w;
        w.on('delete', () => void this.tick(true));
        w.on('put', (kv) => void (kv.key.toString().includes('members/') && this.tick(true)));
        w.on('error', () => undefined); // the client reconnects the watch; the ticks go on meanwhile
      },
      () => undefined,
    );
    // not awaited: a member added by a reload hands its units over once that reload is done
    void this.tick();
  }

  /** No more rounds (the gateway is stopping its components). */
  async halt(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.keeper);
    clearTimeout(this.keepRetry);
    await etcdTimeout(this.watcher?.cancel() ?? Promise.resolve(), 1000).catch(() => undefined);
    await this.round?.catch(() => undefined);
  }

  /** Leaves the fleet (the gateway has stopped the units' components): revokes the lease, so every unit is given back and the others take over at once. */
  async stop(): Promise<void> {
    await this.halt();
    const now = Date.now();
    for (const unit of this.reading) this.record({ unit, action: 'released', at: now, reason: 'stopping', durationMs: 0 });
    this.reading = new Set();
    if (this.lease) await etcdTimeout(this.lease.revoke(), 2000).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'cluster: could not revoke the lease; the others take over when it expires'));
    this.client?.close();
  }

  /** Peers ask this when they cannot reach etcd themselves. */
  peer(): { instance: string; etcdReachable: boolean; lastContactAt: number } {
    return { instance: this.deps.instance, etcdReachable: this.reachable(), lastContactAt: this.lastContact };
  }

  private reachable(now = Date.now()): boolean {
    return this.lastContact > 0 && now - this.lastContact < Math.max(2 * this.intervalMs, this.config.leaseTtl / 3);
  }

  status(): ClusterStatus {
    const units = this.deps.units();
    const configured = new Set(units);
    const byMember = new Map<string, string[]>();
    for (const [u, m] of this.owners) if (configured.has(u)) byMember.set(m, [...(byMember.get(m) ?? []), u]);
    const names = new Set([...this.members.keys(), ...byMember.keys()]);
    return {
      instance: this.deps.instance,
      advertise: this.deps.advertise(),
      leaseTtlMs: this.config.leaseTtl,
      etcd: { endpoints: this.config.etcd.endpoints, reachable: this.reachable(), lastContactAt: this.lastContact || undefined, lastError: this.lastError },
      lease: this.leaseState,
      members: [...names].sort().map((m) => ({ instance: m, advertise: this.members.get(m)?.advertise, since: this.members.get(m)?.since, units: (byMember.get(m) ?? []).sort() })),
      units: { total: units.length, owned: [...this.reading].sort(), unowned: units.filter((u) => !this.owners.has(u)).sort() },
      handovers: [...this.handovers].reverse(),
      counters: { ...this.counters },
    };
  }

  /** `soon`: asked by a watch event; when a round is running, one more follows it. */
  private tick(soon = false): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.round) {
      if (soon) this.again = true;
      return this.round;
    }
    this.round = this.once()
      .catch((err: Error) => this.deps.log.error({ err }, 'cluster round failed'))
      .finally(() => {
        this.round = undefined;
        if (this.again) {
          this.again = false;
          void this.tick();
        }
      });
    return this.round;
  }

  private async once(): Promise<void> {
    const now = Date.now();
    try {
      await this.keepLease(now);
      await this.readView();
      this.contact();
    } catch (err) {
      this.lastError = (err as Error).message;
      await this.unreachable(now);
      return;
    }
    if (this.stopped || this.leaseState.state !== 'held') return;
    await this.act();
  }

  private contact(): void {
    if (!this.reachable()) this.deps.log.info({ endpoints: this.config.etcd.endpoints }, 'cluster: etcd reached');
    this.lastContact = Date.now();
    this.lastError = undefined;
  }

  private setLease(state: ClusterStatus['lease']['state']): void {
    if (this.leaseState.state !== state) this.leaseState = { state, id: this.leaseId, since: Date.now() };
    else this.leaseState.id = this.leaseId;
  }

  /**
   * The keepalive, on a timer of its own: a round may wait seconds for the endpoints it starts,
   * and the lease must not run out meanwhile (a member busy starting is not a dead one).
   */
  private async keepalive(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.keeping) return;
    this.keeping = true;
    let retry = false;
    try {
      await etcdTimeout(lease.keepaliveOnce(), Math.max(500, this.config.leaseTtl / 4));
      this.contact();
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) {
        if (this.lease === lease) {
          // etcd says it expired: every key of it is gone, and others may hold our units already
          this.deps.log.warn({ lease: this.leaseId }, 'cluster: our lease expired in etcd; taking a new one');
          this.lease = undefined;
          this.leaseId = undefined;
        }
      } else if (!this.stopped) {
        // at once again, not at the next tick: the call went to an etcd member that is down, and
        // the client's circuit breaker sends the next one to another member
        retry = true;
      }
    } finally {
      this.keeping = false;
    }
    if (retry) {
      clearTimeout(this.keepRetry);
      this.keepRetry = setTimeout(() => void this.keepalive(), 100);
      this.keepRetry.unref();
    }
  }

  /** Grants the lease and the member key when there is none. */
  private async keepLease(now: number): Promise<void> {
    const ns = this.ns!;
    if (!this.lease) {
      const lease = ns.lease(this.ttlSeconds, { autoKeepAlive: false });
      lease.on('lost', () => undefined); // handled by keepalive(); the event must have a listener
      this.leaseId = await etcdTimeout(lease.grant(), Math.max(500, this.config.leaseTtl / 4));
      this.lease = lease;
    }
    const key = `members/${this.deps.instance}`;
    const mine: MemberRecord = { instance: this.deps.instance, advertise: this.deps.advertise(), boot: this.boot, since: now };
    const existing = await ns.get(key).string();
    if (existing) {
      const rec = JSON.parse(existing) as MemberRecord;
      if (rec.boot === this.boot) return this.setLease('held');
      // a key of this instance from an earlier process (killed and restarted before its lease ran
      // out), or a second gateway with the same instance: wait for it to expire
      if (this.leaseState.state !== 'waiting') this.deps.log.warn({ instance: this.deps.instance }, 'cluster: a member with this instance name is registered by another process (an earlier run of this one, or a duplicate instance); waiting for its lease to expire');
      this.setLease('waiting');
      return;
    }
    const r = await ns.if(key, 'Create', '==', 0).then(ns.put(key).value(JSON.stringify(mine)).lease(this.leaseId!)).commit();
    if (r.succeeded) {
      this.deps.log.info({ instance: this.deps.instance, lease: this.leaseId, ttlMs: this.config.leaseTtl }, 'cluster: joined');
      this.setLease('held');
    }
  }

  private async readView(): Promise<void> {
    const all = await this.ns!.getAll().strings();
    const members = new Map<string, MemberRecord>();
    const owners = new Map<string, string>();
    for (const [k, v] of Object.entries(all)) {
      if (k.startsWith('members/')) {
        try {
          members.set(k.slice(8), JSON.parse(v) as MemberRecord);
        } catch {
          this.deps.log.warn({ key: k }, 'cluster: a member key that is not JSON; ignored');
        }
      } else if (k.startsWith('units/')) owners.set(k.slice(6), v);
    }
    const now = Date.now();
    for (const [u, o] of owners) {
      this.lastOwner.set(u, { owner: o, at: now });
      this.unownedSince.delete(u);
    }
    for (const u of this.deps.units()) if (!owners.has(u) && !this.unownedSince.has(u)) this.unownedSince.set(u, { at: this.lastOwner.get(u)?.at ?? now, from: this.lastOwner.get(u)?.owner });
    this.members = members;
    this.owners = owners;
  }

  /** etcd did not answer this round: decide whether to keep reading (docs/scaling.md, partitions). */
  private async unreachable(now: number): Promise<void> {
    if (this.reachable(now)) return; // one failed round is not a partition
    if (this.lastContact === 0 || this.reading.size === 0) {
      if (this.leaseState.state === 'held') this.setLease('connecting');
      return;
    }
    const silentMs = now - this.lastContact;
    if (silentMs < 0.6 * this.config.leaseTtl || this.leaseState.state === 'cut-off') return;
    const peers = [...this.members.values()].filter((m) => m.instance !== this.deps.instance);
    const answers = await Promise.all(peers.map((p) => askPeer(p.advertise, Math.min(1000, this.config.leaseTtl / 5))));
    const reaching = peers.filter((_p, i) => answers[i]?.etcdReachable).map((p) => p.instance);
    if (reaching.length) {
      this.deps.log.error({ code: 'PG_ERR_CLUSTER', peers: reaching, silentMs }, 'cluster: cut off from etcd while other members reach it; giving up every unit before our lease runs out');
      await this.applyOwned(new Set(), 'cut off from etcd');
      this.setLease('cut-off');
      return;
    }
    if (this.leaseState.state !== 'etcd-down') this.deps.log.warn({ code: 'PG_ERR_CLUSTER', silentMs, peers: peers.length }, 'cluster: no member reaches etcd; keeping the units we read');
    this.setLease('etcd-down');
  }

  private async act(): Promise<void> {
    const ns = this.ns!;
    const me = this.deps.instance;
    const units = this.deps.units();
    const now = Date.now();
    // what we still read from before a lost lease, and nobody owns: ours again first
    const configured = new Set(units);
    const reclaim = [...this.reading].filter((u) => !this.owners.has(u) && configured.has(u));
    const starving = new Set(units.filter((u) => !this.owners.has(u) && now - (this.unownedSince.get(u)?.at ?? now) > this.config.leaseTtl));
    const p = plan({ members: [...this.members.keys()], owners: this.owners, units }, me, starving);
    const toClaim = [...new Set([...reclaim, ...p.claim])];
    const claimed: string[] = [];
    for (const unit of toClaim) {
      const r = await ns.if(`units/${unit}`, 'Create', '==', 0).then(ns.put(`units/${unit}`).value(me).lease(this.leaseId!)).commit();
      if (r.succeeded) {
        claimed.push(unit);
        this.owners.set(unit, me);
      }
    }
    // stop before giving up: the next owner starts only once our key is gone
    const release = p.release.filter((u) => this.owners.get(u) === me);
    const wanted = new Set([...this.owners].filter(([u, o]) => o === me && configured.has(u) && !release.includes(u)).map(([u]) => u));
    const reasons = new Map<string, string>(claimed.map((u) => [u, this.unownedSince.get(u)?.from && !this.members.has(this.unownedSince.get(u)!.from!) ? 'failover' : reclaim.includes(u) ? 'reclaimed after etcd returned' : 'rebalance']));
    for (const u of release) reasons.set(u, configured.has(u) ? 'rebalance' : 'no longer configured');
    await this.applyOwned(wanted, reasons);
    for (const unit of release) {
      await ns.if(`units/${unit}`, 'Value', '==', me).then(ns.delete().key(`units/${unit}`)).commit();
      this.owners.delete(unit);
    }
  }

  private async applyOwned(wanted: Set<string>, why: string | Map<string, string>): Promise<void> {
    const gained = [...wanted].filter((u) => !this.reading.has(u));
    const lost = [...this.reading].filter((u) => !wanted.has(u));
    if (!gained.length && !lost.length && !this.failedToStart) return;
    const started = Date.now();
    this.failedToStart = (await this.deps.apply(wanted)) > 0;
    const at = Date.now();
    const reason = (u: string) => (typeof why === 'string' ? why : (why.get(u) ?? 'another member owns it'));
    for (const unit of lost) this.record({ unit, action: 'released', at, reason: reason(unit), durationMs: at - started });
    for (const unit of gained) {
      const before = this.unownedSince.get(unit);
      this.record({ unit, action: 'acquired', at, reason: reason(unit), from: before?.from, darkMs: before ? at - before.at : undefined, durationMs: at - started });
    }
    this.reading = wanted;
    this.deps.log.info({ acquired: gained, released: lost, owned: wanted.size, durationMs: at - started }, 'cluster: units handed over');
  }

  private record(h: Handover): void {
    this.counters[h.action]++;
    this.handovers.push(h);
    if (this.handovers.length > 50) this.handovers.shift();
  }
}

async function askPeer(advertise: string | undefined, timeoutMs: number): Promise<{ etcdReachable: boolean } | undefined> {
  if (!advertise) return undefined;
  try {
    const res = await fetch(new URL('/api/cluster/peer', advertise), { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? ((await res.json()) as { etcdReachable: boolean }) : undefined;
  } catch {
    return undefined;
  }
}

function etcdTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return withTimeout(p, ms, `etcd did not answer within ${ms} ms`);
}
