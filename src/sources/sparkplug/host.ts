/**
 * The Sparkplug B host application (docs/inputs.md, Sparkplug B): one component for the whole gateway, fed by every
 * MQTT transport (the embedded broker and each external client) with the messages on `spBv1.0/`
 * topics. It decodes, keeps the sessions (sessions.ts), sends rebirth requests back through the
 * transport the node was heard on, persists alias maps before a birth is acknowledged, and hands
 * points to the pipeline (acknowledged once durable, spec rule 1).
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BaseComponent } from '../../core/component.js';
import { RejectedInput } from '../../core/errors.js';
import type { Point } from '../../core/point.js';
import type { Source, SourceContext } from '../source.js';
import { DataType, decodePayload, encodePayload } from './codec.js';
import type { SparkplugConfig } from './config.js';
import { Sessions, type PersistedState, type RebirthRequest } from './sessions.js';
import { nodeTopic, parseTopic, stateTopic } from './topic.js';
import type { DropReason } from '../../core/reasons.js';

/** What the host needs from an MQTT connection: a name and a way to publish. */
export interface SparkplugTransport {
  readonly name: string;
  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /** Primary mode: publish the host's online STATE again (spec: when told it is offline). */
  announceOnline?(): Promise<void>;
  /** The groups this host follows changed: subscribe and unsubscribe on the same connection. */
  refreshSubscriptions?(): boolean;
}

export class SparkplugHost extends BaseComponent implements Source {
  readonly kind = 'source' as const;
  readonly type = 'sparkplug-host';
  readonly sessions: Sessions;
  private readonly transports = new Map<string, SparkplugTransport>();
  private tickTimer?: NodeJS.Timeout;
  private presenceTimer?: NodeJS.Timeout;
  private readonly recentRebirths: (RebirthRequest & { at: number; sent: boolean; error?: string })[] = [];
  private ncmdSent = 0;
  private statesSeen = new Map<string, { online: boolean; timestamp: number; at: number }>();
  private queuedWrite?: Promise<void>;
  private lastWrite: Promise<void> = Promise.resolve();
  private presenceSink?: (points: Point[]) => void;
  private presenceEvery = 5000;

  constructor(
    name: string,
    readonly config: SparkplugConfig & { stateFile: string },
    private readonly ctx: SourceContext,
  ) {
    super(name);
    this.sessions = new Sessions(config, name);
  }

  get mode(): SparkplugConfig['mode'] {
    return this.config.mode;
  }

  /** The groups to subscribe to; undefined: every group. */
  subscribedGroups(): string[] | undefined {
    if (this.sessions.owned) return [...this.sessions.owned].sort();
    return this.config.groups.length ? this.config.groups : undefined;
  }

  /**
   * In a cluster: the groups whose lease this gateway holds (undefined outside a cluster). Nodes of a
   * group gained or lost are forgotten: what this host knew of them is from an earlier ownership
   * and would look like a seq gap, so a gained group starts from a birth (asked for by a rebirth
   * request where needed, in active mode). Subscriptions change on the same connections.
   */
  setOwnedGroups(groups: readonly string[] | undefined): void {
    const prev = this.sessions.owned;
    const next = groups ? new Set(groups) : undefined;
    this.sessions.owned = next;
    const changed = new Set([...(prev ?? []), ...(next ?? [])].filter((g) => prev?.has(g) !== next?.has(g)));
    for (const [key, node] of this.sessions.nodes) if (changed.has(node.group) || (next && !next.has(node.group))) this.forget(key);
    for (const t of this.transports.values()) t.refreshSubscriptions?.();
    if (changed.size && this.state === 'running') void this.persist().catch((err) => this.recordError(err));
  }

  detach(t: SparkplugTransport): void {
    if (this.transports.get(t.name) === t) this.transports.delete(t.name);
  }

  attach(t: SparkplugTransport): void {
    this.transports.set(t.name, t);
  }

  /** Host STATE payload [tck-id-operational-behavior-host-application-connect-birth-payload]. */
  stateMessage(online: boolean, timestamp: number): { topic: string; payload: Buffer; qos: 1; retain: true } {
    return { topic: stateTopic(this.config.hostId), payload: Buffer.from(JSON.stringify({ online, timestamp })), qos: 1, retain: true };
  }

  protected async doStart(): Promise<void> {
    await this.load();
    // the state file may hold nodes of groups another member owns now
    const owned = this.sessions.owned;
    if (owned) for (const [key, node] of this.sessions.nodes) if (!owned.has(node.group)) this.sessions.nodes.delete(key);
    const every = Math.max(50, Math.min(500, this.config.reorderTimeout / 4));
    this.tickTimer = setInterval(() => this.tick(), every);
    this.tickTimer.unref();
    if (this.presenceSink) {
      this.presenceTimer = setInterval(() => this.presenceSink?.(this.presence()), this.presenceEvery);
      this.presenceTimer.unref();
    }
  }

  protected async doStop(): Promise<void> {
    clearInterval(this.tickTimer);
    clearInterval(this.presenceTimer);
    await this.persist().catch((err) => this.recordError(err));
  }

  /** One message from a transport; resolves once its points are durable (or it is dead-lettered). */
  async handle(topic: string, payload: Buffer, via: SparkplugTransport, opts: { clientId?: string; maxPayloadBytes?: number } = {}): Promise<void> {
    const now = Date.now();
    let points: Point[];
    try {
      if (opts.maxPayloadBytes !== undefined && payload.length > opts.maxPayloadBytes) {
        throw new RejectedInput('payload_too_large', `payload of ${payload.length} bytes exceeds maxPayloadBytes ${opts.maxPayloadBytes}`);
      }
      const t = parseTopic(topic);
      if (t.kind === 'state') {
        await this.onState(t.hostId, payload, via, now);
        return;
      }
      const out = this.sessions.handle(t, decodePayload(payload), { now, via: via.name, topic, clientId: opts.clientId });
      if (out.ignored) this.drop(out.ignored);
      for (const r of out.rejections) this.reject(r.reason, r.message, topic, payload);
      for (const r of out.rebirths) void this.requestRebirth(r);
      if (out.persist) await this.persist();
      points = out.points;
    } catch (err) {
      if (!(err instanceof RejectedInput)) throw err;
      this.reject(err.reason, err.message, topic, payload);
      return;
    }
    if (points.length === 0) return;
    this.counters.received += points.length;
    this.lastValueAt = now;
    await this.ctx.ingest(points, this.name);
    this.counters.written += points.length;
  }

  private reject(reason: DropReason, message: string, topic: string, payload: Buffer): void {
    this.drop(reason);
    this.ctx.reject({ source: this.name, reason, message, topic, payload: payload.subarray(0, 4096) });
  }

  private async onState(hostId: string, payload: Buffer, via: SparkplugTransport, now: number): Promise<void> {
    let s: { online?: unknown; timestamp?: unknown };
    try {
      s = JSON.parse(payload.toString('utf8')) as typeof s;
    } catch {
      throw new RejectedInput('sparkplug_bad_state', `STATE of ${hostId} is not JSON`);
    }
    if (typeof s?.online !== 'boolean' || typeof s.timestamp !== 'number') throw new RejectedInput('sparkplug_bad_state', `STATE of ${hostId} needs {online: boolean, timestamp: number}`);
    this.statesSeen.set(hostId, { online: s.online, timestamp: s.timestamp, at: now });
    if (this.statesSeen.size > 100) this.statesSeen.delete(this.statesSeen.keys().next().value!);
    // [tck-id-operational-behavior-host-application-...]: told it is offline while running (an old
    // will delivered late), a primary host publishes its online STATE again
    if (hostId === this.config.hostId && !s.online && this.config.mode === 'primary' && this.state === 'running') {
      await via.announceOnline?.();
    }
  }

  /**
   * An operator's rebirth request (HTTP admin action): for a node whose metrics look wrong. Refused
   * in passive mode, which never commands edge nodes, and for a node never heard of.
   */
  async operatorRebirth(group: string, edge: string): Promise<{ sent: boolean; error?: string }> {
    if (this.config.mode === 'passive') throw new RangeError('the Sparkplug host is passive: it sends no commands (mode: active or primary)');
    const node = this.sessions.nodes.get(`${group}/${edge}`);
    if (!node) throw new RangeError(`no edge node ${group}/${edge} known`);
    await this.requestRebirth({ group, edge, reason: 'operator', via: node.via });
    const entry = this.recentRebirths.at(-1)!;
    return { sent: entry.sent, error: entry.error };
  }

  private async requestRebirth(r: RebirthRequest): Promise<void> {
    const entry: (typeof this.recentRebirths)[number] = { ...r, at: Date.now(), sent: false };
    this.recentRebirths.push(entry);
    if (this.recentRebirths.length > 20) this.recentRebirths.shift();
    if (this.config.mode === 'passive') {
      this.ctx.log.debug({ group: r.group, edge: r.edge, reason: r.reason }, 'rebirth needed (passive: not requested)');
      return;
    }
    this.ctx.log.info({ group: r.group, edge: r.edge, reason: r.reason }, 'requesting rebirth');
    const t = (r.via && this.transports.get(r.via)) || this.transports.values().next().value;
    if (!t) return;
    // [tck-id-operational-behavior-host-application-...] NCMD Node Control/Rebirth = true, QoS 0, not retained
    const payload = Buffer.from(encodePayload({ timestamp: Date.now(), metrics: [{ name: 'Node Control/Rebirth', datatype: DataType.Boolean, value: true }] }));
    try {
      await t.publish(nodeTopic(r.group, 'NCMD', r.edge), payload, { qos: 0, retain: false });
      entry.sent = true;
      this.ncmdSent++;
      const node = this.sessions.nodes.get(`${r.group}/${r.edge}`);
      if (node) node.stats.rebirthsRequested++;
    } catch (err) {
      entry.error = (err as Error).message;
      this.recordError(err);
    }
  }

  private tick(): void {
    for (const r of this.sessions.tick(Date.now())) void this.requestRebirth(r);
  }

  /** Presence points (no fields, never stored) for the online nodes and devices. */
  presence(now = Date.now()): Point[] {
    const out: Point[] = [];
    for (const n of this.sessions.nodes.values()) {
      if (!n.online) continue;
      const base = { measurement: this.config.measurement, fields: {}, time: now, receivedAt: now, quality: 'good' as const, source: this.name };
      out.push({ ...base, tags: { group: n.group, edge_node: n.edge } });
      for (const d of n.devices.values()) if (d.online) out.push({ ...base, tags: { group: n.group, edge_node: n.edge, device: d.device } });
    }
    return out;
  }

  /**
   * Indicators: an online node or device counts as reporting even when report-by-exception leaves
   * its values unchanged for longer than the indicator window; after its death it stops counting
   * once the window passes. `everyMs` must be shorter than that window.
   */
  reportPresence(sink: (points: Point[]) => void, everyMs: number): void {
    this.presenceSink = sink;
    this.presenceEvery = Math.max(100, everyMs);
  }

  // ---- persistence: alias maps survive a restart --------------------------------------------

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.config.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      const state = JSON.parse(text) as PersistedState;
      if (state.version !== 1 || !Array.isArray(state.nodes)) throw new Error(`unknown format version ${String(state.version)}`);
      this.sessions.restore(state);
      this.ctx.log.info({ nodes: state.nodes.length, file: this.config.stateFile }, 'Sparkplug sessions restored');
    } catch (err) {
      // a damaged state file costs a rebirth per node, not the gateway: keep it aside and go on
      const aside = `${this.config.stateFile}.corrupt-${Date.now()}`;
      await rename(this.config.stateFile, aside).catch(() => undefined);
      this.recordError(new Error(`Sparkplug state file ${this.config.stateFile} unreadable (${(err as Error).message}); moved to ${aside}, nodes will be asked to rebirth`));
    }
  }

  /** Writes the sessions atomically; concurrent callers share the next write. */
  persist(): Promise<void> {
    if (this.queuedWrite) return this.queuedWrite;
    const run = this.lastWrite.then(() => {
      this.queuedWrite = undefined;
      return this.writeState();
    });
    this.queuedWrite = run;
    this.lastWrite = run.catch(() => undefined);
    return run;
  }

  private async writeState(): Promise<void> {
    const file = this.config.stateFile;
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(this.sessions.snapshot()));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  }

  /** A node handed over to another host: its counts stay in this host's totals. */
  private forget(key: string): void {
    const node = this.sessions.nodes.get(key);
    if (!node) return;
    for (const k of Object.keys(this.retired) as (keyof typeof this.retired)[]) this.retired[k] += node.stats[k];
    this.sessions.nodes.delete(key);
  }

  private readonly retired = { births: 0, deaths: 0, gaps: 0, unknownAliases: 0, dataBeforeBirth: 0, reordered: 0, duplicates: 0, staleDeaths: 0, rebirthsNeeded: 0 };

  override details() {
    const nodes = [...this.sessions.nodes.values()].sort((a, b) => (a.group + a.edge).localeCompare(b.group + b.edge));
    const staleOf = (m: Map<string, { stale: boolean }>) => [...m.values()].filter((d) => d.stale).length;
    const total = { ...this.retired };
    for (const n of nodes) for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += n.stats[k];
    return {
      mode: this.config.mode,
      hostId: this.config.hostId,
      transports: [...this.transports.keys()],
      nodesOnline: nodes.filter((n) => n.online).length,
      nodesOffline: nodes.filter((n) => !n.online).length,
      ...total,
      rebirthsSent: this.ncmdSent,
      recentRebirths: this.recentRebirths,
      hostStates: [...this.statesSeen].map(([hostId, s]) => ({ hostId, ...s })),
      nodes: nodes.slice(0, 500).map((n) => ({
        group: n.group,
        edge: n.edge,
        online: n.online,
        stale: !n.online,
        restored: n.restored,
        since: n.since,
        bdSeq: n.bdSeq?.toString(),
        seq: n.seq,
        via: n.via,
        lastMessageAt: n.lastMessageAt,
        metrics: n.metrics.size,
        staleMetrics: staleOf(n.metrics),
        rebirthPending: n.rebirthPendingUntil > Date.now(),
        ...n.stats,
        devices: [...n.devices.values()].slice(0, 200).map((d) => ({ device: d.device, online: d.online, stale: !d.online, since: d.since, births: d.births, deaths: d.deaths, metrics: d.metrics.size, staleMetrics: staleOf(d.metrics) })),
      })),
    };
  }
}
