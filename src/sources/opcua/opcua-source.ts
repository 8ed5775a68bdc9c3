/**
 * One OPC UA server endpoint as a source, with its own connection supervisor.
 *
 * Why a supervisor of our own instead of node-opcua's built-in reconnection: the complaint users
 * raise about OPC UA gateways is a subscription that never comes back after a server restart. We
 * therefore treat every connection as disposable: node-opcua's client is created with no retries
 * (`maxRetry: 0`), and any sign of trouble (connection lost, session keep-alive failure, the
 * subscription terminated, no publish response within its keep-alive window, optionally no data at
 * all) ends that connection; the loop then backs off (exponential, full jitter, no give-up) and
 * builds a fresh client. When the connection ended in a way the server survives (a network cut,
 * a stall), the session is kept: the next client reactivates it on its new secure channel, and
 * its subscription with it, then asks the server with Republish for every notification message
 * sent into the dead connection, in order, before publishing resumes (see `resume` and
 * `republish`). Values sampled meanwhile wait in the server's monitored-item queues, so a cut
 * shorter than queueSize x samplingInterval (and than the session timeout) loses nothing. When
 * the session is gone (a server restart, or a cut longer than the session timeout), a new
 * session, subscription and monitored items are built from the configuration, browsing again so
 * nodes added or removed on the server are picked up; the time without values is read back from
 * the server's history (backfill.ts), and what cannot be is recorded as a gap (`recordGap`): a
 * point in `plantgate_gaps` and a line on the status page.
 *
 * The monitored items, with their per-node isolation and status, are in items.ts, events and
 * alarms in events.ts; values become points in mapping.ts; Republish and the pieces of
 * node-opcua it needs are in resume.ts; certificate trust in trust.ts. What stays here is the
 * connection: the supervisor loop, choosing the security, the user identity, subscription or
 * polling, resuming a kept session, gaps and the status. They share one connection's state
 * (client, session, the security floor, the kept session, the time it was lost), which is why
 * this file is longer than ~400 lines.
 */
import {
  AttributeIds,
  type ClientSession,
  type ClientSubscription,
  type DataChangeNotification,
  type EventNotificationList,
  MessageSecurityMode,
  OPCUAClient,
  type OPCUACertificateManager,
  readNamespaceArray,
  SecurityPolicy,
  type UserIdentityInfo,
  UserTokenType,
} from 'node-opcua';
import { readFileSync } from 'node:fs';
import { readCertificate } from 'node-opcua-crypto';
import { BaseComponent } from '../../core/component.js';
import { backoff, sleep, withTimeout } from '../../core/retry.js';
import type { Point } from '../../core/point.js';
import type { Source, SourceContext } from '../source.js';
import type { EndpointConfig } from './config.js';
import { backfill } from './backfill.js';
import { EventItems } from './events.js';
import { MonitoredItems, type NodeStatus } from './items.js';
import { pairs, type ValueBatch, valuesToPoints } from './mapping.js';
import { ensureClientCertificate } from './pki.js';
import { type OfferedEndpoint, rank, type Security, strongest } from './security.js';
import { abortChannel, type Kept, publishEngine, republishFrom, RESUMABLE } from './resume.js';
import { ServerTrust } from './trust.js';
import { decodeStructuresFirst } from './structures.js';

interface Outage {
  at: number;
  reason: string;
  /** Until data flowed again; absent while the outage lasts. */
  durationMs?: number;
}

const READ_SLICE = 1000;

/** A stretch of time whose values the server could not hand over (see recordGap). */
export interface Gap {
  start: number;
  end: number;
  reason: string;
}

export class OpcuaEndpointSource extends BaseComponent implements Source {
  readonly kind = 'source';
  readonly type = 'opcua';
  private abort = new AbortController();
  private loop?: Promise<void>;
  private readonly nodes: MonitoredItems;
  private readonly events: EventItems;
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
  /** The server certificate the endpoints offered (auto security asks for them first). */
  private offeredCertificate?: Buffer;
  /** Certificate trust, both ways: what a refusal means, and the server certificate not trusted yet. */
  private readonly trust: ServerTrust;
  private readonly outages: Outage[] = [];
  private outageCount = 0;
  private readonly transitions: Record<string, number> = {};
  private lastPublishAt = 0;
  private lastDataAt = 0;
  private revised?: { publishingInterval: number; maxKeepAliveCount: number };
  /** Node values received (several make one point when they share series and time). */
  private valuesReceived = 0;
  private inflight = 0;
  /** The session of a connection that was lost; resumed by the next connection (see resume). */
  private kept?: Kept;
  private sessionsResumed = 0;
  /** Notification messages asked for again with Republish after a resume. */
  private republished = 0;
  /**
   * The sequence number of the next notification message the subscription owes us: a data
   * message's number plus one, or a keep-alive's own number (a keep-alive carries the number of
   * the next message without using it up). Republish after a resume starts here.
   */
  private expectedSequence = 1;
  /** The end of the last connection, while the time until values flow again may be a gap. */
  private lostAt?: number;
  private gapCount = 0;
  /** Gaps read back in full from the server's history, and the values read back. */
  private backfills = 0;
  private backfilledValues = 0;
  private readonly gaps: Gap[] = [];

  constructor(
    name: string,
    private readonly config: EndpointConfig,
    private readonly certificates: { manager: OPCUACertificateManager; applicationName: string },
    private readonly ctx: SourceContext,
  ) {
    super(name);
    this.nodes = new MonitoredItems(config, name, ctx.log);
    this.events = new EventItems(config, name, ctx.log, (points) => this.ingestPoints(points, Date.now()));
    this.trust = new ServerTrust(certificates.manager, name, config.url, ctx.log, () => this.retryNow());
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
    this.trust.stop();
    await this.loop;
    this.loop = undefined;
    const k = this.kept;
    this.kept = undefined; // the server expires it by its session timeout
    if (k) await withTimeout(k.client.disconnect(), 2000).catch(() => undefined);
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
        reason = this.trust.explainRefusal((err as Error).message, this.security);
        if (!signal.aborted) {
          this.recordError(reason === (err as Error).message ? err : new Error(reason, { cause: err }));
          this.trust.noteUntrusted(reason, this.lastClient?.serverCertificate ?? this.offeredCertificate);
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
    // the first reason wins, and is known at once (the finally below decides on it)
    let endReason = '';
    let resolveEnded!: (reason: string) => void;
    const ended = new Promise<string>((r) => (resolveEnded = r));
    const end = (reason: string) => {
      endReason ||= reason;
      resolveEnded(endReason);
    };
    // ends what this connection started in the background (a backfill)
    const connection = new AbortController();
    const onAbort = () => end('stopped');
    signal.addEventListener('abort', onAbort);
    client.on('connection_lost', () => end('connection lost'));
    client.on('close', () => end('connection closed'));
    let session: ClientSession | undefined;
    let subscription: ClientSubscription | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    // listeners on a session or subscription that may outlive this connection are taken off again
    const off: Array<() => void> = [];
    const on = (emitter: { on(e: string, f: () => void): unknown; removeListener(e: string, f: () => void): unknown }, event: string, f: () => void) => {
      emitter.on(event, f);
      off.push(() => emitter.removeListener(event, f));
    };
    try {
      await withTimeout(client.connect(c.url), 20_000, `connect to ${c.url} timed out`);
      const kept = await this.resume(client);
      if (kept) {
        ({ session, subscription } = kept);
      } else {
        session = await withTimeout(client.createSession(await this.identity()), 20_000, 'create session timed out');
        this.namespaceArray = await readNamespaceArray(session);
        this.nodes.resetHandles();
        await this.nodes.resolve(session, this.namespaceArray);
      }
      on(session, 'keepalive_failure', () => end('session keep-alive failed'));
      on(session, 'session_closed', () => end('session closed by server'));
      if (c.mode === 'subscribe' && !subscription) {
        subscription = await session.createSubscription2({
          requestedPublishingInterval: c.publishingInterval,
          requestedMaxKeepAliveCount: 10,
          // the subscription must outlive the session on the server through a cut, or a resumed
          // session would come back without it
          requestedLifetimeCount: Math.max(60, Math.ceil((2 * c.sessionTimeout) / c.publishingInterval)),
          maxNotificationsPerPublish: 0,
          publishingEnabled: true,
          priority: 1,
        });
        const sub = subscription;
        this.revised = { publishingInterval: sub.publishingInterval, maxKeepAliveCount: sub.maxKeepAliveCount };
        this.expectedSequence = 1;
        this.hookNotifications(sub);
        decodeStructuresFirst(sub, session, {
          // a keep-alive carries the next message's number; a data message, its own
          received: (m) => (this.expectedSequence = (m.notificationData ?? []).length > 0 ? m.sequenceNumber + 1 : m.sequenceNumber),
          undecodable: (values, err) => {
            this.recordError(err);
            this.ctx.log.warn({ code: 'PG_ERR_OPCUA_STRUCTURE', endpoint: this.name, values, err: err.message }, 'opcua structure definitions could not be read from the server: those values go to dead letters (unsupported_type), the others of the message are written');
          },
          error: (err) => this.recordError(err),
        });
        await this.nodes.createMonitoredItems(session, sub, this.nodes.items.filter((i) => i.nodeId));
        await this.events.create(session, sub, this.namespaceArray);
      }
      if (subscription) {
        on(subscription, 'keepalive', () => (this.lastPublishAt = Date.now()));
        on(subscription, 'terminated', () => end('subscription terminated'));
      }
      if (kept && subscription) {
        // what the server sent into the dead connection, in order, before any new Publish
        const n = await this.republish(session, subscription);
        publishEngine(session)?.suspend(false);
        this.ctx.log.info({ endpoint: this.name, republished: n }, 'opcua session resumed');
      }
      if (kept) this.sessionsResumed++;
      if (signal.aborted) return 'stopped';
      this.connected = true;
      this.trust.connected();
      this.connects++;
      const last = this.outages.at(-1);
      if (last && last.durationMs === undefined) last.durationMs = Date.now() - last.at;
      if (this.lostAt !== undefined && !kept) void this.fillGap(session, this.lostAt, Date.now(), last?.reason ?? 'connection lost', connection.signal);
      this.lostAt = undefined;
      this.lastPublishAt = this.lastDataAt = Date.now();
      this.updateState();
      firstDone();
      this.ctx.log.info({ endpoint: this.name, url: c.url, nodes: this.nodes.items.length, failing: this.nodes.failing().length, resumed: Boolean(kept) }, 'opcua connected');

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
        if (this.nodes.failing().some((i) => i.status === 'failed' || i.status === 'removed')) {
          this.nodes.retryFailed(s, subscription, this.namespaceArray).then(() => this.updateState(), (err: unknown) => this.recordError(err));
        }
      }, c.retryFailedNodes);
      return await ended;
    } catch (err) {
      // a connection that breaks while it is being set up (a second cut during a resume) leaves
      // the session as resumable as one that breaks later
      if (/Connection Break|socket|connection (lost|closed)/i.test((err as Error).message)) end('connection lost');
      throw err;
    } finally {
      connection.abort();
      signal.removeEventListener('abort', onAbort);
      clearInterval(watchdog);
      clearInterval(retryTimer);
      for (const f of off) f();
      // values may be missing from the last answer of the server on (a stall is noticed late)
      if (this.connected && this.lostAt === undefined) this.lostAt = this.lastPublishAt || Date.now();
      if (session && RESUMABLE.test(endReason) && !signal.aborted) {
        // The server still holds this session (until its timeout), with its subscription and the
        // values it samples meanwhile: the next connection takes it over (resume). Until then no
        // Publish may go out, or a message sent after the cut would arrive before the ones
        // Republish recovers. The old client is left undisconnected, because disconnecting marks
        // its sessions closed and node-opcua then refuses to reactivate them. A cut without a TCP
        // reset shows only as silence (no publish response, a failed keep-alive); its channel may
        // still be alive (a stall, or only a host too busy to answer in time): it is aborted here,
        // as a lost connection's is, or the server's answers to the old client's requests, once
        // the session has moved to the new channel (BadSecureChannelIdInvalid), would reject
        // promises nobody holds.
        publishEngine(session)?.suspend(true);
        if (!/^connection (lost|closed)/.test(endReason)) await abortChannel(client);
        this.kept = { session, client, subscription };
      } else {
        // a dead connection may not answer: never wait long for a polite goodbye
        if (session) await withTimeout(session.close(true), 2000).catch(() => undefined);
        await withTimeout(client.disconnect(), 2000).catch(() => undefined);
      }
    }
  }

  /**
   * A session left behind by a lost connection is moved onto the new channel (ActivateSession is
   * allowed on another channel by the same client), with its subscription and monitored items.
   * After a server restart, or a cut longer than the session timeout, it no longer exists: the
   * attempt fails, the old client is let go, and the caller builds a new session.
   */
  private async resume(client: OPCUAClient): Promise<Kept | undefined> {
    const k = this.kept;
    this.kept = undefined;
    if (!k) return undefined;
    try {
      await withTimeout(client.reactivateSession(k.session), 5000, 'reactivate timed out');
      return k;
    } catch (err) {
      this.ctx.log.info({ endpoint: this.name, err: (err as Error).message }, 'opcua session could not be resumed: a new one is created');
      return undefined;
    } finally {
      // the session has moved to the new client (or is gone): the old one holds nothing any more
      await withTimeout(k.client.disconnect(), 2000).catch(() => undefined);
    }
  }

  /**
   * Republish from the first sequence number not received, until the server has no more
   * (BadMessageNotAvailable): the messages it sent into the dead connection, delivered through
   * the subscription as if they had arrived then, and acknowledged. A server that has lost the
   * subscription (its lifetime ran out) ends the connection, and the next builds a new one.
   */
  private async republish(session: ClientSession, sub: ClientSubscription): Promise<number> {
    const n = await republishFrom(session, sub, this.expectedSequence);
    this.republished += n;
    return n;
  }

  /**
   * The session was lost, and with it what the server sampled meanwhile: read it back from the
   * server's history where its nodes historize (backfill.ts); what remains is a gap.
   */
  private async fillGap(session: ClientSession, start: number, end: number, reason: string, signal: AbortSignal): Promise<void> {
    const b = this.config.backfill;
    if (!b.enabled || this.config.mode !== 'subscribe') return this.recordGap(start, end, reason);
    try {
      const r = await backfill(session, this.nodes.items, start, end, { maxAge: b.maxAge, maxValuesPerSecond: b.maxValuesPerSecond, signal }, (values) => this.onValues(pairs(values)));
      this.backfilledValues += r.values;
      if (r.complete) {
        this.backfills++;
        this.ctx.log.info({ endpoint: this.name, values: r.values, nodes: r.nodes, start: new Date(start).toISOString(), end: new Date(end).toISOString() }, 'opcua gap filled from the server\'s history');
        return;
      }
      this.recordGap(start, end, `${reason}; ${r.reason}${r.values ? ` (${r.values} values read back)` : ''}`);
    } catch (err) {
      this.recordGap(start, end, `${reason}; history read failed: ${(err as Error).message}`);
    }
  }

  /**
   * Values the server sampled between `start` and `end` were lost with its session: a point in
   * `plantgate_gaps` (through the buffer, like any value) and an entry in the status, so the hole
   * in the data is never silent.
   */
  private recordGap(start: number, end: number, reason: string): void {
    const gap = { start, end, reason };
    this.gapCount++;
    this.gaps.push(gap);
    if (this.gaps.length > 20) this.gaps.shift();
    this.ctx.log.warn({ endpoint: this.name, start: new Date(start).toISOString(), end: new Date(end).toISOString(), reason }, 'opcua values lost: the server could not hand over what it sampled while disconnected');
    const point: Point = {
      measurement: 'plantgate_gaps',
      tags: { ...this.config.tags, endpoint: this.name, source: 'opcua' },
      fields: { start_ms: BigInt(start), end_ms: BigInt(end), duration_s: (end - start) / 1000, reason },
      time: start,
      receivedAt: end,
      quality: 'good',
      source: this.name,
      origin: { endpoint: this.name },
    };
    this.ctx.ingest([point], this.name).catch((err: unknown) => this.recordError(err));
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
      await withTimeout(probe.disconnect(), 2000).catch(() => undefined);
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

  /**
   * node-opcua would look each notification up in its own per-item objects (and warn about handles
   * it does not know); we take the DataChangeNotification itself, after node-opcua has decoded any
   * structures in it. The method is private in node-opcua's typings, so its presence is checked.
   */
  private hookNotifications(sub: ClientSubscription): void {
    const target = sub as unknown as Record<string, unknown>;
    for (const m of ['__on_publish_response_DataChangeNotification', '__on_publish_response_EventNotificationList']) {
      if (typeof target[m] !== 'function') throw new Error(`node-opcua changed: ClientSubscription.${m} is missing`);
    }
    target.__on_publish_response_EventNotificationList = (n: EventNotificationList) => {
      this.lastPublishAt = Date.now();
      this.events.onEvents(n);
    };
    target.__on_publish_response_DataChangeNotification = (n: DataChangeNotification) => {
      this.lastPublishAt = Date.now();
      const list = n.monitoredItems ?? [];
      const byHandle = this.nodes.byHandle;
      this.onValues({ length: list.length, item: (i) => byHandle[list[i]!.clientHandle], value: (i) => list[i]!.value });
    };
  }

  private pollLoop(session: ClientSession, end: (reason: string) => void): void {
    const { signal } = this.abort;
    void (async () => {
      while (!signal.aborted) {
        // a removed node is read again only after retryFailedNodes has found it again
        const items = this.nodes.items.filter((i) => i.nodeId && i.status !== 'failed' && i.status !== 'removed');
        try {
          for (let i = 0; i < items.length; i += READ_SLICE) {
            const slice = items.slice(i, i + READ_SLICE);
            const values = await session.read(slice.map((it) => ({ nodeId: it.nodeId!, attributeId: AttributeIds.Value })), 0);
            this.lastPublishAt = Date.now();
            this.onValues({ length: values.length, item: (k) => slice[k], value: (k) => values[k]! });
          }
        } catch (err) {
          end(`read failed: ${(err as Error).message}`);
          return;
        }
        await sleep(this.config.pollInterval, signal);
      }
    })();
  }

  /** Values to points (mapping.ts), then into the pipeline. */
  private onValues(values: ValueBatch): void {
    const receivedAt = Date.now();
    const r = valuesToPoints(values, this.config, this.name, this.nodes, {
      drop: (reason) => this.drop(reason),
      reject: (reason, message, node) => this.ctx.reject({ source: this.name, reason, message, topic: node }),
    }, receivedAt);
    this.valuesReceived += r.values;
    if (r.changed) this.updateState();
    this.ingestPoints(r.points, receivedAt);
  }

  /** Points (values or events) into the pipeline, counted. */
  private ingestPoints(batch: Point[], receivedAt: number): void {
    if (batch.length === 0) return;
    this.lastDataAt = this.lastValueAt = receivedAt;
    // counted in points, as every source counts (a point holds the values of one series and time)
    this.counters.received += batch.length;
    const n = batch.length;
    this.inflight += n;
    // OPC UA has no acknowledgement to hold back: the values are ours once the server sent them.
    // A refusal by the pipeline (stopping) is counted, never silent; drop_newest is counted by the buffer.
    // The callbacks keep the count, not the points, which are garbage once they are encoded.
    this.ctx.ingest(batch, this.name).then(
      () => {
        this.inflight -= n;
        this.counters.written += n;
      },
      (err: unknown) => {
        this.inflight -= n;
        this.drop('pipeline_refused', n);
        this.recordError(err);
      },
    );
  }

  private updateState(): void {
    if (!this.connected) return;
    this.setState(this.nodes.failing().length || this.events.failing().length ? 'degraded' : 'running');
  }

  override details() {
    const { counts, failing } = this.nodes.summary(50);
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
      nodes: { total: this.nodes.items.length, ...counts },
      failingNodes: [
        ...this.events.failing().map((e) => ({ node: `events of ${e.config.source}`, field: e.config.measurement, status: e.status, statusCode: e.statusCode, since: e.since })),
        ...failing.map((i) => ({ node: i.nodeText, field: i.field, status: i.status, statusCode: i.statusCode, since: i.since })),
      ].slice(0, 50),
      events: this.config.events.length ? this.events.details() : undefined,
      pendingIngest: this.inflight,
      valuesReceived: this.valuesReceived,
      untrustedServer: this.trust.untrusted,
      sessionsResumed: this.sessionsResumed,
      republished: this.republished,
      gaps: this.gapCount,
      backfills: this.backfills,
      backfilledValues: this.backfilledValues,
      recentGaps: this.gaps.slice(-10),
    };
  }

  /** The next attempt starts now instead of after its backoff (after an operator trusted the server). */
  retryNow(): void {
    this.retryWake.abort();
  }

  /** Trusts the server certificate the last attempt refused (the status page's admin action), and retries now. */
  trustServer(): Promise<{ thumbprint: string; subject?: string }> {
    return this.trust.trustRefused();
  }

  /** Per-node view for tests and the API: field, status, values seen. */
  nodeStates(): Array<{ node: string; field: string; status: NodeStatus; statusCode: string; values: number; measurement: string; tags: Record<string, string> }> {
    return this.nodes.states();
  }
}
