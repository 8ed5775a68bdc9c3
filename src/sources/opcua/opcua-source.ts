/**
 * One OPC UA server endpoint as a source, with its own connection supervisor.
 *
 * Why a supervisor of our own instead of node-opcua's built-in reconnection: the complaint users
 * raise about OPC UA gateways is a subscription that never comes back after a server restart. We
 * therefore treat every connection as disposable: node-opcua's client is created with no retries
 * (`maxRetry: 0`), and any sign of trouble (connection lost, session keep-alive failure, the
 * subscription terminated, no publish response within its keep-alive window, optionally no data at
 * all) ends that connection; the loop then backs off (exponential, full jitter, no give-up) and
 * builds a fresh client, session, subscription and monitored items from the configuration,
 * browsing again so nodes added or removed on the server are picked up. Recreation rather than
 * subscription transfer: values the server queued during a network cut are not recovered (see the
 * README); after a server restart there is nothing to transfer anyway.
 *
 * Per-node isolation: monitored items are created in one request per parameter set and each
 * result is looked at on its own; an unknown node, a node that turns bad and a node deleted while
 * subscribed (the server sends BadNodeIdInvalid) are recorded with their status code and shown on
 * the status page, while the other nodes keep flowing. Failed nodes are tried again periodically.
 *
 * Notifications are handled straight from the DataChangeNotification (by client handle) rather
 * than through one node-opcua ClientMonitoredItem object per node, so 100,000 items cost arrays,
 * not 100,000 event emitters.
 */
import {
  AttributeIds,
  type ClientSession,
  type ClientSubscription,
  DataChangeFilter,
  DataChangeTrigger,
  type DataChangeNotification,
  type DataValue,
  DeadbandType,
  MessageSecurityMode,
  MonitoringMode,
  type NodeId,
  OPCUAClient,
  type OPCUACertificateManager,
  readNamespaceArray,
  SecurityPolicy,
  StatusCodes,
  TimestampsToReturn,
  type UserIdentityInfo,
  UserTokenType,
} from 'node-opcua';
import { readFileSync, statSync } from 'node:fs';
import { type ClientSessionRawSubscriptionService } from 'node-opcua-client';
import { makeSHA1Thumbprint, readCertificate } from 'node-opcua-crypto';
import { BaseComponent } from '../../core/component.js';
import { backoff, sleep } from '../../core/retry.js';
import type { FieldValue, Point, Quality } from '../../core/point.js';
import type { Source, SourceContext } from '../source.js';
import { discoverVariables, nsuString, resolveTarget } from './browse.js';
import { type EndpointConfig, type Monitoring, monitoringFor } from './config.js';
import { ensureClientCertificate, listCertificates } from './pki.js';
import { convertVariant, qualityOf } from './values.js';
import { type OfferedEndpoint, rank, type Security, strongest } from './security.js';

type NodeStatus = 'pending' | 'ok' | 'bad' | 'failed' | 'removed';

/** One value to monitor, as configured or discovered. Survives reconnects for the status page. */
interface Item {
  key: string;
  /** As configured (`nsu=`/browse path), or the discovered node's nsu= id. */
  nodeText: string;
  nodeId?: NodeId;
  field: string;
  measurement: string;
  tags: Record<string, string>;
  /** measurement + tags, to merge values with equal time into one point. */
  seriesKey: string;
  monitoring: Monitoring;
  status: NodeStatus;
  statusCode: string;
  since: number;
  values: number;
  lastValueAt?: number;
  /** Server-side id of the current monitored item, for deletion on retry. */
  monitoredItemId?: number;
  /** Client handle in the current subscription (index into byHandle). */
  handle?: number;
}

interface Outage {
  at: number;
  reason: string;
  /** Until data flowed again; absent while the outage lasts. */
  durationMs?: number;
}

const REMOVED_CODES = new Set([StatusCodes.BadNodeIdUnknown.value, StatusCodes.BadNodeIdInvalid.value]);
const CREATE_SLICE = 1000;
const READ_SLICE = 1000;

export class OpcuaEndpointSource extends BaseComponent implements Source {
  readonly kind = 'source';
  readonly type = 'opcua';
  private abort = new AbortController();
  private loop?: Promise<void>;
  private items: Item[] = [];
  /** clientHandle -> item, for the current subscription. */
  private byHandle: Array<Item | undefined> = [];
  private namespaceArray: string[] = [];
  private connected = false;
  /** Security of the current (or last) connection. */
  private security?: Security;
  /** With securityMode auto: the strongest chosen so far; nothing weaker is accepted later. */
  private securityFloor?: Security;
  private connects = 0;
  private attempts = 0;
  private nextRetryAt?: number;
  /** Cuts the wait before the next attempt short (an operator trusted the server's certificate). */
  private retryWake = new AbortController();
  /** The client of the latest attempt: its server certificate names an untrusted server. */
  private lastClient?: OPCUAClient;
  private untrustedDer?: Buffer;
  /** The server certificate the endpoints offered (auto security asks for them first). */
  private offeredCertificate?: Buffer;
  /** The server's certificate this gateway does not trust yet (refused until an operator trusts it). */
  private untrusted?: { thumbprint: string; subject?: string; since: number; trust: string };
  private readonly outages: Outage[] = [];
  private outageCount = 0;
  private readonly transitions: Record<string, number> = {};
  private lastPublishAt = 0;
  private lastDataAt = 0;
  private revised?: { publishingInterval: number; maxKeepAliveCount: number };
  /** Node values received (several make one point when they share series and time). */
  private valuesReceived = 0;
  private inflight = 0;
  /** The session of a connection that was lost; closed from the next connection (see below). */
  private orphan?: { session: ClientSession; client: OPCUAClient };
  private orphansClosed = 0;

  constructor(
    name: string,
    private readonly config: EndpointConfig,
    private readonly certificates: { manager: OPCUACertificateManager; applicationName: string },
    private readonly ctx: SourceContext,
  ) {
    super(name);
  }

  protected async doStart(): Promise<void> {
    this.abort = new AbortController();
    await ensureClientCertificate(this.certificates.manager, this.certificates.applicationName);
    let firstDone!: () => void;
    const first = new Promise<void>((r) => (firstDone = r));
    this.loop = this.supervise(firstDone);
    // Start waits for the first attempt (at most 15 s) so the state it leaves is meaningful; an
    // unreachable server is a state (`reconnecting`), not a start failure.
    await Promise.race([first, sleep(15_000, this.abort.signal)]);
  }

  protected async doStop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    this.loop = undefined;
    const o = this.orphan;
    this.orphan = undefined; // the server expires it by its session timeout
    if (o) await withTimeout(o.client.disconnect(), 2000, '').catch(() => undefined);
  }

  protected override setState(state: Parameters<BaseComponent['setState']>[0]): void {
    if (state !== this.state) {
      const t = `${this.state}->${state}`;
      this.transitions[t] = (this.transitions[t] ?? 0) + 1;
    }
    super.setState(state);
  }

  private async supervise(firstDone: () => void): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      this.attempts++;
      let reason: string;
      try {
        reason = await this.runConnection(firstDone);
      } catch (err) {
        reason = (err as Error).message;
        if (!signal.aborted) {
          this.recordError(err);
          this.noteUntrusted(reason);
          this.ctx.log.warn({ endpoint: this.name, url: this.config.url, err: reason }, 'opcua connection failed');
        }
      }
      firstDone();
      if (signal.aborted) break;
      if (this.connected) {
        // it was up: this is an outage
        this.connected = false;
        this.outageCount++;
        this.outages.push({ at: Date.now(), reason });
        if (this.outages.length > 20) this.outages.shift();
        this.ctx.log.warn({ endpoint: this.name, reason }, 'opcua connection lost');
        this.attempts = 1;
      }
      this.setState('reconnecting');
      const wait = backoff(this.attempts - 1, this.config.reconnect.initialDelay, this.config.reconnect.maxDelay);
      this.nextRetryAt = Date.now() + wait;
      this.retryWake = new AbortController();
      await sleep(wait, AbortSignal.any([signal, this.retryWake.signal]));
      this.nextRetryAt = undefined;
    }
  }

  /** One connection's life; resolves with the reason it ended. */
  private async runConnection(firstDone: () => void): Promise<string> {
    const c = this.config;
    const { signal } = this.abort;
    const security = await this.chooseSecurity();
    const client = (this.lastClient = OPCUAClient.create({
      ...this.clientBase(),
      securityMode: MessageSecurityMode[security.mode],
      securityPolicy: SecurityPolicy[security.policy],
      keepSessionAlive: true,
      keepAliveInterval: Math.max(1000, Math.min(c.sessionTimeout / 3, 10_000)),
      requestedSessionTimeout: c.sessionTimeout,
    }));
    let end!: (reason: string) => void;
    let endReason = '';
    const ended = new Promise<string>((r) => (end = r)).then((r) => (endReason = r));
    const onAbort = () => end('stopped');
    signal.addEventListener('abort', onAbort);
    client.on('connection_lost', () => end('connection lost'));
    client.on('close', () => end('connection closed'));
    let session: ClientSession | undefined;
    let subscription: ClientSubscription | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    try {
      await withTimeout(client.connect(c.url), 20_000, `connect to ${c.url} timed out`);
      await this.closeOrphan(client);
      session = await withTimeout(client.createSession(await this.identity()), 20_000, 'create session timed out');
      session.on('keepalive_failure', () => end('session keep-alive failed'));
      session.on('session_closed', () => end('session closed by server'));
      this.namespaceArray = await readNamespaceArray(session);
      await this.resolveItems(session);
      if (c.mode === 'subscribe') {
        subscription = await session.createSubscription2({
          requestedPublishingInterval: c.publishingInterval,
          requestedMaxKeepAliveCount: 10,
          requestedLifetimeCount: 60,
          maxNotificationsPerPublish: 0,
          publishingEnabled: true,
          priority: 1,
        });
        const sub = subscription;
        this.revised = { publishingInterval: sub.publishingInterval, maxKeepAliveCount: sub.maxKeepAliveCount };
        this.hookNotifications(sub);
        sub.on('keepalive', () => (this.lastPublishAt = Date.now()));
        sub.on('terminated', () => end('subscription terminated'));
        await this.createMonitoredItems(session, sub, this.items.filter((i) => i.nodeId));
      }
      if (signal.aborted) return 'stopped';
      this.connected = true;
      this.untrusted = undefined;
      this.connects++;
      const last = this.outages.at(-1);
      if (last && last.durationMs === undefined) last.durationMs = Date.now() - last.at;
      this.lastPublishAt = this.lastDataAt = Date.now();
      this.updateState();
      firstDone();
      this.ctx.log.info({ endpoint: this.name, url: c.url, nodes: this.items.length, failing: this.failing().length }, 'opcua connected');

      const s = session;
      if (c.mode === 'poll') this.pollLoop(s, end);
      watchdog = setInterval(() => {
        const now = Date.now();
        if (subscription && this.revised) {
          // the server must answer a publish at least every publishingInterval * maxKeepAliveCount
          const window = this.revised.publishingInterval * this.revised.maxKeepAliveCount;
          if (now - this.lastPublishAt > 2 * window + 5000) end(`no publish response for ${Math.round((now - this.lastPublishAt) / 1000)} s`);
        }
        if (c.noDataTimeout > 0 && now - this.lastDataAt > c.noDataTimeout) end(`no data for ${Math.round((now - this.lastDataAt) / 1000)} s`);
      }, 1000);
      retryTimer = setInterval(() => {
        if (this.failing().some((i) => i.status === 'failed' || i.status === 'removed')) {
          this.retryFailed(s, subscription).catch((err: unknown) => this.recordError(err));
        }
      }, c.retryFailedNodes);
      return await ended;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(watchdog);
      clearInterval(retryTimer);
      this.byHandle = [];
      for (const it of this.items) it.handle = undefined;
      if (session && /^connection (lost|closed)/.test(endReason) && !signal.aborted) {
        // The server still holds this session (until its timeout) and may refuse new ones with
        // BadTooManySessions after a few network cuts: close it from the next connection. The old
        // client is left undisconnected until then, because disconnecting marks its sessions
        // closed and node-opcua then refuses to reactivate them.
        this.orphan = { session, client };
      } else {
        // a dead connection may not answer: never wait long for a polite goodbye
        if (session) await withTimeout(session.close(true), 2000, '').catch(() => undefined);
        await withTimeout(client.disconnect(), 2000, '').catch(() => undefined);
      }
    }
  }

  /**
   * A session left behind by a lost connection is moved onto the new channel (ActivateSession is
   * allowed on another channel by the same client) and closed with its subscription. After a
   * server restart it no longer exists and the attempt fails quietly.
   */
  private async closeOrphan(client: OPCUAClient): Promise<void> {
    const o = this.orphan;
    this.orphan = undefined;
    if (!o) return;
    try {
      await withTimeout(client.reactivateSession(o.session), 5000, 'reactivate timed out');
      await withTimeout(o.session.close(true), 3000, 'close timed out');
      this.orphansClosed++;
    } catch {
      /* the server has already dropped it (restarted, or the session timed out) */
    } finally {
      await withTimeout(o.client.disconnect(), 2000, '').catch(() => undefined);
    }
  }

  /** What every client of this endpoint shares: our certificate, and one attempt per client (the supervisor retries). */
  private clientBase() {
    return {
      applicationName: this.certificates.applicationName,
      clientCertificateManager: this.certificates.manager,
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
      transportTimeout: 10_000,
    };
  }

  /** The configured security, or with `auto` the strongest the server offers now (security.ts). */
  private async chooseSecurity(): Promise<Security> {
    const c = this.config;
    if (c.securityMode !== 'auto') return (this.security = { mode: c.securityMode, policy: c.securityPolicy ?? 'None' });
    const probe = OPCUAClient.create(this.clientBase());
    let endpoints: OfferedEndpoint[];
    try {
      await withTimeout(probe.connect(c.url), 20_000, `connect to ${c.url} timed out`);
      endpoints = await withTimeout(probe.getEndpoints(), 10_000, 'GetEndpoints timed out');
      this.offeredCertificate = (endpoints as { serverCertificate?: Buffer }[]).find((e) => e.serverCertificate?.length)?.serverCertificate;
    } finally {
      await withTimeout(probe.disconnect(), 2000, '').catch(() => undefined);
    }
    const chosen = strongest(endpoints, this.securityFloor);
    if ('refused' in chosen) throw new Error(chosen.refused);
    if (c.auth.type === 'username' && chosen.mode !== 'SignAndEncrypt' && !c.allowPasswordOverInsecureChannel) {
      throw new Error(`the server offers at best ${chosen.mode}/${chosen.policy}: a password would be readable on the network (allowPasswordOverInsecureChannel: true to send it anyway)`);
    }
    if (!this.securityFloor || rank(chosen) > rank(this.securityFloor)) {
      if (chosen.mode === 'None') this.ctx.log.warn({ endpoint: this.name, url: c.url }, 'the OPC UA server offers no security: connecting unencrypted and unsigned');
      else this.ctx.log.info({ endpoint: this.name, url: c.url, securityMode: chosen.mode, securityPolicy: chosen.policy }, 'opcua security chosen');
      this.securityFloor = chosen;
    }
    return (this.security = chosen);
  }

  private async identity(): Promise<UserIdentityInfo> {
    const a = this.config.auth;
    if (a.type === 'username') return { type: UserTokenType.UserName, userName: a.username, password: a.password };
    if (a.type === 'certificate') return { type: UserTokenType.Certificate, certificateData: readCertificate(a.certFile), privateKey: readFileSync(a.keyFile, 'utf8') };
    return { type: UserTokenType.Anonymous };
  }

  /** Resolves configured nodes and browse roots to node ids; a failure marks that node only. */
  private async resolveItems(session: ClientSession): Promise<void> {
    const c = this.config;
    const previous = new Map(this.items.map((i) => [i.key, i]));
    const items: Item[] = [];
    const make = (key: string, nodeText: string, field: string, measurement: string, tags: Record<string, string>, monitoring: Monitoring): Item => {
      const prev = previous.get(key);
      const item: Item = prev ?? { key, nodeText, field, measurement, tags, seriesKey: `${measurement}\u0000${JSON.stringify(tags)}`, monitoring, status: 'pending', statusCode: '', since: Date.now(), values: 0 };
      item.nodeId = undefined;
      item.monitoredItemId = undefined;
      item.handle = undefined;
      items.push(item);
      return item;
    };
    for (const n of c.nodes) {
      const text = n.nodeId ?? n.browsePath!;
      const item = make(`node:${text}:${n.field}`, text, n.field, n.measurement ?? c.measurement, { ...c.tags, ...n.tags }, monitoringFor(c, n));
      try {
        item.nodeId = await resolveTarget(session, text, this.namespaceArray, c.namespaces);
      } catch (err) {
        this.markNode(item, 'failed', (err as Error).message.includes('BadNoMatch') ? 'BadNoMatch' : (err as Error).message);
      }
    }
    for (const [bi, b] of c.browse.entries()) {
      let vars: Awaited<ReturnType<typeof discoverVariables>> = [];
      const rootItem = { key: `browse:${bi}`, text: b.root };
      try {
        const root = await resolveTarget(session, b.root, this.namespaceArray, c.namespaces);
        vars = await discoverVariables(session, root, { properties: b.properties, maxDepth: b.maxDepth });
        if (vars.length === 0) throw new Error(`no variables below ${b.root}`);
      } catch (err) {
        const item = make(rootItem.key, b.root, `(browse ${b.root})`, b.measurement ?? c.measurement, { ...c.tags, ...b.tags }, monitoringFor(c, b));
        this.markNode(item, 'failed', (err as Error).message);
        continue;
      }
      for (const v of vars) {
        const text = nsuString(v.nodeId, this.namespaceArray);
        const item = make(`browse:${bi}:${text}`, text, v.path.join(b.separator), b.measurement ?? c.measurement, { ...c.tags, ...b.tags }, monitoringFor(c, b));
        item.nodeId = v.nodeId;
      }
    }
    this.items = items;
  }

  private filterFor(m: Monitoring): DataChangeFilter | undefined {
    if (!m.deadband) return undefined;
    return new DataChangeFilter({
      trigger: DataChangeTrigger.StatusValue,
      deadbandType: m.deadband.type === 'absolute' ? DeadbandType.Absolute : DeadbandType.Percent,
      deadbandValue: m.deadband.value,
    });
  }

  /** Creates monitored items in slices; each item's own result decides its status. */
  private async createMonitoredItems(session: ClientSession, sub: ClientSubscription, items: Item[]): Promise<void> {
    for (let i = 0; i < items.length; i += CREATE_SLICE) {
      const slice = items.slice(i, i + CREATE_SLICE);
      const handles = slice.map((it) => {
        if (it.handle === undefined) {
          it.handle = this.byHandle.length || 1;
          this.byHandle[it.handle] = it;
        }
        return it.handle;
      });
      const res = await (session as ClientSession & ClientSessionRawSubscriptionService).createMonitoredItems({
        subscriptionId: sub.subscriptionId,
        timestampsToReturn: TimestampsToReturn.Both,
        itemsToCreate: slice.map((it, k) => ({
          itemToMonitor: { nodeId: it.nodeId!, attributeId: AttributeIds.Value },
          monitoringMode: MonitoringMode.Reporting,
          requestedParameters: {
            clientHandle: handles[k]!,
            samplingInterval: it.monitoring.samplingInterval,
            queueSize: it.monitoring.queueSize,
            discardOldest: it.monitoring.discardOldest,
            filter: this.filterFor(it.monitoring),
          },
        })),
      });
      (res.results ?? []).forEach((r, k) => {
        const it = slice[k]!;
        if (r.statusCode.isGood()) {
          it.monitoredItemId = r.monitoredItemId;
          if (it.status !== 'bad') this.markNode(it, 'pending', '');
        } else {
          this.byHandle[handles[k]!] = undefined;
          it.handle = undefined;
          this.markNode(it, 'failed', r.statusCode.name);
        }
      });
    }
  }

  private async retryFailed(session: ClientSession, sub: ClientSubscription | undefined): Promise<void> {
    const retry = this.items.filter((i) => i.status === 'failed' || i.status === 'removed');
    for (const it of retry) {
      if (it.nodeId) continue;
      try {
        it.nodeId = await resolveTarget(session, it.nodeText, this.namespaceArray, this.config.namespaces);
      } catch (err) {
        this.markNode(it, 'failed', (err as Error).message);
      }
    }
    if (!sub) {
      for (const it of retry) if (it.nodeId) this.markNode(it, 'pending', '');
      return;
    }
    const stale = retry.filter((i) => i.monitoredItemId !== undefined).map((i) => i.monitoredItemId!);
    if (stale.length) await (session as ClientSession & ClientSessionRawSubscriptionService).deleteMonitoredItems({ subscriptionId: sub.subscriptionId, monitoredItemIds: stale }).catch(() => undefined);
    for (const it of retry) it.monitoredItemId = undefined;
    await this.createMonitoredItems(session, sub, retry.filter((i) => i.nodeId));
    this.updateState();
  }

  /**
   * node-opcua would look each notification up in its own per-item objects (and warn about handles
   * it does not know); we take the DataChangeNotification itself, after node-opcua has decoded any
   * structures in it. The method is private in node-opcua's typings, so its presence is checked.
   */
  private hookNotifications(sub: ClientSubscription): void {
    const target = sub as unknown as Record<string, unknown>;
    if (typeof target.__on_publish_response_DataChangeNotification !== 'function') {
      throw new Error('node-opcua changed: ClientSubscription.__on_publish_response_DataChangeNotification is missing');
    }
    target.__on_publish_response_DataChangeNotification = (n: DataChangeNotification) => {
      this.lastPublishAt = Date.now();
      this.onValues((n.monitoredItems ?? []).map((m) => [this.byHandle[m.clientHandle], m.value] as const));
    };
  }

  private pollLoop(session: ClientSession, end: (reason: string) => void): void {
    const { signal } = this.abort;
    void (async () => {
      while (!signal.aborted) {
        const items = this.items.filter((i) => i.nodeId && i.status !== 'failed');
        try {
          for (let i = 0; i < items.length; i += READ_SLICE) {
            const slice = items.slice(i, i + READ_SLICE);
            const values = await session.read(slice.map((it) => ({ nodeId: it.nodeId!, attributeId: AttributeIds.Value })), 0);
            this.lastPublishAt = Date.now();
            this.onValues(values.map((v, k) => [slice[k], v] as const));
          }
        } catch (err) {
          end(`read failed: ${(err as Error).message}`);
          return;
        }
        await sleep(this.config.pollInterval, signal);
      }
    })();
  }

  /** Values to points: one point per series, time and quality, so equal-time values share a line. */
  private onValues(values: ReadonlyArray<readonly [Item | undefined, DataValue]>): void {
    const c = this.config;
    const receivedAt = Date.now();
    const points = new Map<string, Point>();
    let changed = false;
    for (const [item, dv] of values) {
      if (!item) continue;
      const quality = qualityOf(dv.statusCode);
      const code = dv.statusCode.name;
      if (REMOVED_CODES.has(dv.statusCode.value)) changed = this.markNode(item, 'removed', code) || changed;
      else if (quality === 'bad') changed = this.markNode(item, 'bad', code) || changed;
      else changed = this.markNode(item, 'ok', quality === 'good' ? 'Good' : code) || changed;
      item.values++;
      item.lastValueAt = receivedAt;
      this.valuesReceived++;
      if (!c.accept.includes(quality)) {
        this.drop(`quality_${quality}`);
        continue;
      }
      const conv = convertVariant(item.field, dv.value, c.maxArrayLength);
      if (!conv.ok) {
        this.drop(conv.reason);
        this.ctx.deadLetters.add({ source: this.name, reason: conv.reason, message: `${item.nodeText}: ${conv.detail}`, topic: item.nodeText });
        continue;
      }
      const fields: Record<string, FieldValue> = conv.fields;
      if (quality !== 'good') fields[`${item.field}.status`] = code;
      if (Object.keys(fields).length === 0) continue;
      const time = this.timeOf(dv, receivedAt);
      const key = `${item.seriesKey}\u0000${time}\u0000${quality}`;
      let p = points.get(key);
      if (!p) {
        const tags = c.qualityTag ? { ...item.tags, [c.qualityTag]: quality } : { ...item.tags };
        p = { measurement: item.measurement, tags, fields: {}, time, receivedAt, quality, source: this.name, origin: { endpoint: this.name } };
        if (quality !== 'good') p.qualityCode = code;
        points.set(key, p);
      }
      Object.assign(p.fields, fields);
    }
    if (changed) this.updateState();
    if (points.size === 0) return;
    this.lastDataAt = this.lastValueAt = receivedAt;
    const batch = [...points.values()];
    // counted in points, as every source counts (a point holds the values of one series and time)
    this.counters.received += batch.length;
    this.inflight += batch.length;
    // OPC UA has no acknowledgement to hold back: the values are ours once the server sent them.
    // A refusal by the pipeline (stopping, buffer full with drop_newest) is counted, never silent.
    this.ctx.ingest(batch, this.name).then(
      () => {
        this.inflight -= batch.length;
        this.counters.written += batch.length;
      },
      (err: unknown) => {
        this.inflight -= batch.length;
        this.drop('pipeline_refused', batch.length);
        this.recordError(err);
      },
    );
  }

  private timeOf(dv: DataValue, receivedAt: number): number {
    const ts = this.config.timestamp;
    if (ts === 'gateway') return receivedAt;
    const first = ts === 'source' ? dv.sourceTimestamp : dv.serverTimestamp;
    const second = ts === 'source' ? dv.serverTimestamp : undefined;
    return first?.getTime() || second?.getTime() || receivedAt;
  }

  /** Returns true when the node's status changed. */
  private markNode(item: Item, status: NodeStatus, code: string): boolean {
    if (item.status === status && item.statusCode === code) return false;
    if (status === 'bad' || status === 'failed' || status === 'removed') {
      if (item.status !== status) this.ctx.log.warn({ endpoint: this.name, node: item.nodeText, field: item.field, status: code }, `opcua node ${status}`);
    }
    item.status = status;
    item.statusCode = code;
    item.since = Date.now();
    return true;
  }

  private failing(): Item[] {
    return this.items.filter((i) => i.status === 'bad' || i.status === 'failed' || i.status === 'removed');
  }

  private updateState(): void {
    if (!this.connected) return;
    this.setState(this.failing().length ? 'degraded' : 'running');
  }

  protected override details(): Record<string, unknown> {
    const counts: Record<NodeStatus, number> = { pending: 0, ok: 0, bad: 0, failed: 0, removed: 0 };
    for (const i of this.items) counts[i.status]++;
    return {
      url: this.config.url,
      security: this.security ? `${this.security.mode}/${this.security.policy}${this.config.securityMode === 'auto' ? ' (auto)' : ''}` : this.config.securityMode,
      mode: this.config.mode,
      connected: this.connected,
      connects: this.connects,
      outages: this.outageCount,
      recentOutages: this.outages.slice(-10),
      nextRetryAt: this.nextRetryAt,
      transitions: { ...this.transitions },
      subscription: this.revised,
      nodes: { total: this.items.length, ...counts },
      failingNodes: this.failing()
        .slice(0, 50)
        .map((i) => ({ node: i.nodeText, field: i.field, status: i.status, statusCode: i.statusCode, since: i.since })),
      pendingIngest: this.inflight,
      valuesReceived: this.valuesReceived,
      untrustedServer: this.untrusted,
      orphanSessionsClosed: this.orphansClosed,
    };
  }

  /** The next attempt starts now instead of after its backoff (after an operator trusted the server). */
  retryNow(): void {
    this.retryWake.abort();
  }

  /**
   * Trusts the server certificate the last attempt refused, in this gateway's own certificate
   * manager (whose trust list the next attempt reads at once), and retries now.
   */
  async trustServer(): Promise<{ thumbprint: string; subject?: string }> {
    const u = this.untrusted;
    if (!u || !this.untrustedDer) throw new Error(`endpoint ${this.name} has not refused a server certificate`);
    await this.certificates.manager.trustCertificate(this.untrustedDer);
    this.ctx.log.info({ code: 'PG_ERR_OPCUA_UNTRUSTED', endpoint: this.name, thumbprint: u.thumbprint, subject: u.subject }, 'server certificate trusted by an operator (status page)');
    this.retryNow();
    return { thumbprint: u.thumbprint, subject: u.subject };
  }

  /**
   * A refusal of the server's certificate is explained once per certificate: its thumbprint and
   * subject, and the command that trusts it (the dashboard offers the same as an admin action).
   */
  private noteUntrusted(reason: string): void {
    if (!/BadCertificateUntrusted|certificate/i.test(reason)) return;
    const raw = this.lastClient?.serverCertificate ?? this.offeredCertificate;
    let der = Array.isArray(raw) ? raw[0] : raw;
    // without either, the certificate node-opcua has just put into rejected/
    der ??= newestRejected(this.certificates.manager.rootDir);
    if (!der) return;
    const thumbprint = makeSHA1Thumbprint(der).toString('hex');
    if (this.untrusted?.thumbprint === thumbprint) return;
    const pki = this.certificates.manager.rootDir;
    const subject = listCertificates(pki).find((c) => c.thumbprint === thumbprint)?.subject;
    const trust = `plantgate pki trust ${thumbprint.slice(0, 12)} --pki ${pki}`;
    this.untrusted = { thumbprint, subject, since: Date.now(), trust };
    this.untrustedDer = der;
    this.ctx.log.warn({ code: 'PG_ERR_OPCUA_UNTRUSTED', endpoint: this.name, url: this.config.url, thumbprint, subject }, `the server's certificate is not trusted (${subject ?? 'subject unknown'}, thumbprint ${thumbprint}); check it and trust it with: ${trust}`);
  }

  /** Per-node view for tests and the API: field, status, values seen. */
  nodeStates(): Array<{ node: string; field: string; status: NodeStatus; statusCode: string; values: number; measurement: string; tags: Record<string, string> }> {
    return this.items.map((i) => ({ node: i.nodeText, field: i.field, status: i.status, statusCode: i.statusCode, values: i.values, measurement: i.measurement, tags: i.tags }));
  }
}

function newestRejected(pki: string): Buffer | undefined {
  const newest = listCertificates(pki)
    .filter((c) => c.store === 'rejected')
    .map((c) => ({ c, at: statSync(c.file).mtimeMs }))
    .sort((a, b) => b.at - a.at)[0];
  return newest && newest.at > Date.now() - 60_000 ? readCertificate(newest.c.file) : undefined;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_r, reject) => (t = setTimeout(() => reject(new Error(message || 'timed out')), ms)))]).finally(() => clearTimeout(t));
}
