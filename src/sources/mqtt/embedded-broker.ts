/**
 * The embedded MQTT broker (aedes) devices publish to.
 *
 * Ack after durable (spec rule 1): aedes writes PUBACK for QoS 1 *after* `authorizePublish` calls
 * back, so ingestion happens inside that hook and calls back only once the points are in the
 * buffer. aedes reads a client's next socket chunk only when every packet of the current chunk
 * has been handled, so a full buffer (whenFull: block) stops reading that client: TCP pushes back
 * to the device, which keeps its unacknowledged messages. A payload that cannot be decoded is
 * dead-lettered and acknowledged (it is kept, with its reason, so it is not lost).
 *
 * Security: every connection passes the connection-rate and packet-size limits (connection-limits.ts),
 * then authentication (broker-auth.ts); each publish and subscribe is checked against that
 * connection's ACL. A publish outside it is refused before anything is ingested, and MQTT 3.1.1
 * has no other way to refuse a publish than closing the connection. Refusals are counted by
 * reason and the latest are listed in the status API, with client id, user and address.
 *
 * Longer than ~400 lines: aedes' hooks (pre-connect, authenticate, authorize publish and
 * subscribe) and the device list share one connection's state and grant. What stands apart is in
 * connection-limits.ts (limits), broker-auth.ts (users) and acl.ts.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { changedKeys } from '../../core/factory.js';
import { isLoopback, listen } from '../../core/net.js';
import type { RefusalReason } from '../../core/reasons.js';
import { serverTlsOptions } from '../../security/tls.js';
import type { SourceContext } from '../source.js';
import { mayPublish, maySubscribe } from './acl.js';
import { BrokerAuth, type Grant } from './broker-auth.js';
import { LimitedConnection, IntakeBudget, type Peer, RateLimiter } from './connection-limits.js';
import { MqttSource } from './mqtt-source.js';
import type { BrokerConfig } from './config.js';
import type { TopicRouter } from './router.js';

interface DeviceInfo {
  clientId: string;
  username?: string;
  auth: Grant['method'];
  address?: string;
  transport: NonNullable<Peer['transport']>;
  connectedAt: number;
  messages: number;
  lastMessageAt?: number;
  /** Set once the connection is gone: the operator sees which device went away, and when. */
  disconnectedAt?: number;
}

/** Broker keys that shape its listeners or aedes itself: changing one restarts the broker (devices reconnect). */
const LISTENER_KEYS = ['listen', 'tls', 'websocket', 'connectTimeout', 'maxTopicDepth', 'maxInflight'];

/** Devices that went away, kept for the device list (oldest forgotten first). */
const GONE_KEPT = 10_000;

/** One row of the operators' device list. */
export interface DeviceRow {
  source: string;
  id: string;
  state: 'connected' | 'gone';
  since: number;
  lastSeenAt?: number;
  messages: number;
  user?: string;
  address?: string;
}

interface RefusalRecord {
  reason: RefusalReason;
  detail: string;
  clientId?: string;
  username?: string;
  address?: string;
  at: number;
}

const BAD_TOPIC_CHAR = /[\u0000\uFFFD]/;

/** A publish this broker refused (and counted); aedes reports it again as the reason it closed the connection. */
class PublishRefused extends Error {}

type Duplexish = ConstructorParameters<typeof LimitedConnection>[0];

export class EmbeddedBroker extends MqttSource {
  readonly type = 'mqtt-broker';
  private aedes?: Aedes;
  private server?: Server;
  private wsServer?: HttpServer;
  private wss?: WebSocketServer;
  private readonly devices = new Map<string, DeviceInfo>();
  private readonly gone = new Map<string, DeviceInfo>();
  private readonly grants = new WeakMap<Client, Grant>();
  private auth: BrokerAuth;
  private rate: RateLimiter;
  private authFailures: RateLimiter;
  private readonly refusals: Record<string, number> = {};
  private readonly recentRefusals: RefusalRecord[] = [];
  private readonly lastLogged = new Map<string, number>();
  private connections = 0;
  private budget?: IntakeBudget;
  /** Connections whose CONNECT had an empty client id and clean session 0 (refused with CONNACK 2, MQTT-3.1.3-8). */
  private readonly emptyIdPersistent = new WeakSet<Client>();
  /** QoS 2 packet ids being ingested or awaiting PUBREL, per connection: a resend before PUBREL is not ingested again. */
  private readonly qos2Seen = new WeakMap<Client, Set<number>>();
  /** Retained messages the broker holds: topic -> bytes and the client that set it. */
  private readonly retained = new Map<string, { bytes: number; clientId: string }>();
  private readonly retainedPerClient = new Map<string, number>();
  private retainedBytes = 0;
  private retainedCleared = 0;
  private readonly seenClientIds = new Set<string>();
  private reconnects = 0;
  /** Set at the first subscription granted: from then on aedes distributes every publish (skipDistribution). */
  private distributing = false;
  /** Port actually bound (differs from config when it asks for port 0). */
  port = 0;
  wsPort = 0;

  constructor(name: string, private config: BrokerConfig, router: TopicRouter, ctx: SourceContext) {
    super(name, router, ctx);
    this.auth = new BrokerAuth(config);
    this.rate = new RateLimiter(config.maxConnectionsPerSecond);
    this.authFailures = new RateLimiter(config.maxAuthFailuresPerMinute / 60, config.maxAuthFailuresPerMinute);
  }

  /**
   * A changed broker section, applied without closing a connection; false when it needs new
   * listeners or a new aedes (LISTENER_KEYS), which only a restart of the broker gives. Users, ACLs
   * and anonymous access apply to the next CONNECT (a connected device keeps the grant it logged
   * in with, as with a changed credentials file); publish, retained and intake limits apply to the
   * next packet; per-connection packet limits to connections made from now on.
   */
  reconfigure(next: BrokerConfig): boolean {
    const prev = this.config;
    if (changedKeys(prev, next).some((k) => LISTENER_KEYS.includes(k))) return false;
    this.config = next;
    this.auth = new BrokerAuth(next);
    if (prev.maxConnectionsPerSecond !== next.maxConnectionsPerSecond) this.rate = new RateLimiter(next.maxConnectionsPerSecond);
    if (prev.maxAuthFailuresPerMinute !== next.maxAuthFailuresPerMinute) this.authFailures = new RateLimiter(next.maxAuthFailuresPerMinute / 60, next.maxAuthFailuresPerMinute);
    this.budget?.setLimits(next.maxPartialBytes, next.maxInflightBytes);
    return true;
  }

  protected async doStart(): Promise<void> {
    const c = this.config;
    const aedes = await Aedes.createBroker({
      maxClientsIdLength: 128,
      drainTimeout: 30_000,
      connectTimeout: c.connectTimeout,
      maxTopicLevels: c.maxTopicDepth,
      maxInflightInbound: c.maxInflight,
    });
    this.aedes = aedes;
    this.budget = new IntakeBudget(c.maxPartialBytes, c.maxInflightBytes, this.ctx.pendingBytes);
    // [MQTT-4.3.3-2]: aedes itself sends no second delivery for a QoS 2 resend before PUBREL, but
    // it asks authorizePublish (where plantgate ingests) again; PUBREL ends the packet id's life here
    // (aedes' typings leave out its persistence, which every aedes persistence implements)
    const persistence = (aedes as unknown as { persistence: { incomingDelPacket(client: Client, packet: unknown): Promise<void> } }).persistence;
    const incomingDel = persistence.incomingDelPacket.bind(persistence);
    persistence.incomingDelPacket = (client: Client, packet: unknown) => {
      this.qos2Seen.get(client)?.delete((packet as { messageId?: number }).messageId ?? -1);
      return incomingDel(client, packet);
    };
    this.distributing = false;
    this.skipDistribution(aedes);
    aedes.preConnect = (client, packet, done) => {
      const address = (client.conn as unknown as LimitedConnection).peer?.address;
      // [MQTT-3.1.2-22]: a password flag without the user name flag is a protocol violation
      if (packet.password !== undefined && packet.username === undefined) {
        this.refuse('malformed_packet', 'CONNECT has a password but no user name (MQTT-3.1.2-22)', { clientId: packet.clientId, address });
        return done(new Error('password without user name'), false);
      }
      if (packet.clientId === '' && packet.clean === false) this.emptyIdPersistent.add(client);
      done(null, true);
    };
    aedes.authenticate = (client, username, password, done) => {
      const peer = (client.conn as unknown as LimitedConnection).peer ?? {};
      if (this.emptyIdPersistent.has(client)) {
        this.refuse('client_id_rejected', 'an empty client id needs clean session 1 (MQTT-3.1.3-8)', { username, address: peer.address });
        return done(Object.assign(new Error('identifier rejected'), { returnCode: 2 as const }), false);
      }
      this.auth.authenticate(client.id, username, password, peer).then(
        (res) => {
          if ('reason' in res) {
            this.authFailures.allow(peer.address ?? 'unknown');
            this.refuse(res.reason, res.detail, { clientId: client.id, username, address: peer.address });
            return done(Object.assign(new Error(res.detail), { returnCode: res.returnCode }), false);
          }
          this.grants.set(client, res);
          done(null, true);
        },
        (err: unknown) => done(Object.assign(err instanceof Error ? err : new Error(String(err)), { returnCode: 3 as const }), false),
      );
    };
    aedes.authorizePublish = (client, packet, cb) => {
      // every PUBLISH the connection handed over is reported done, so it hands over the next
      const callback = (err: Error | null) => {
        (client?.conn as unknown as Partial<LimitedConnection> | undefined)?.publishDone?.();
        cb(err);
      };
      if (!client) return callback(null);
      const denied = this.checkPublish(client, packet);
      if (denied) return callback(new PublishRefused(denied));
      if (packet.retain && !this.retain(client, packet)) return callback(null); // an empty retained message deletes, it is no value
      if (packet.qos === 2 && packet.messageId !== undefined) {
        const seen = this.qos2Seen.get(client) ?? new Set<number>();
        this.qos2Seen.set(client, seen);
        if (seen.has(packet.messageId!)) return callback(null);
        seen.add(packet.messageId!);
      }
      this.onPublish(client, packet).then(
        () => callback(null),
        // Not durable: refuse, so aedes closes the connection without PUBACK and the device resends.
        (err: unknown) => {
          if (packet.qos === 2 && packet.messageId !== undefined) this.qos2Seen.get(client)?.delete(packet.messageId); // not durable: the resend must be taken
          callback(err instanceof Error ? err : new Error(String(err)));
        },
      );
    };
    aedes.authorizeSubscribe = (client, sub, callback) => {
      const grant = this.grants.get(client);
      if (grant && maySubscribe(grant.subscribe, grant.identity, sub.topic)) {
        this.distributing = true; // before aedes adds it: from now on every publish is distributed
        return callback(null, sub);
      }
      this.refuse('subscribe_denied', `may not subscribe to ${JSON.stringify(sub.topic)}`, this.who(client));
      callback(null, null); // SUBACK 0x80 for this filter; the connection stays
    };
    aedes.on('client', (client) => {
      // a device that comes back under its client id: the broker's reconnects (a flapping link or a storm)
      if (this.seenClientIds.has(client.id)) this.reconnects++;
      else if (this.seenClientIds.size < 100_000) this.seenClientIds.add(client.id);
      const peer = (client.conn as unknown as LimitedConnection).peer ?? {};
      const grant = this.grants.get(client);
      this.gone.delete(client.id);
      this.devices.set(client.id, {
        clientId: client.id,
        username: grant?.identity.username,
        auth: grant?.method ?? 'anonymous',
        address: peer.address ? `${peer.address}:${peer.port}` : undefined,
        transport: peer.transport ?? 'tcp',
        connectedAt: Date.now(),
        messages: 0,
      });
    });
    aedes.on('clientDisconnect', (client) => {
      const d = this.devices.get(client.id);
      if (!d) return;
      this.devices.delete(client.id);
      d.disconnectedAt = Date.now();
      this.gone.set(client.id, d);
      if (this.gone.size > GONE_KEPT) this.gone.delete(this.gone.keys().next().value!);
    });
    aedes.on('clientError', (client, err) => this.clientError(client, err));
    aedes.on('connectionError', (client, err) => this.clientError(client, err));

    const tls = c.tls ? serverTlsOptions(c.tls) : undefined;
    const onTlsError = (err: Error & { code?: string }, sock: Socket) => this.refuse('tls_handshake_failed', err.code ?? err.message, { address: sock.remoteAddress });
    const server = tls ? createTlsServer(tls) : createServer();
    server.on(tls ? 'secureConnection' : 'connection', (sock: Socket) => this.accept(sock, { transport: tls ? 'tls' : 'tcp', tls: tls ? (sock as TLSSocket) : undefined }));
    if (tls) server.on('tlsClientError', onTlsError);
    this.server = server;
    this.port = await listen(server, c.listen.host, c.listen.port);
    server.on('error', (err) => this.recordError(err));

    if (c.websocket) {
      const http = tls ? createHttpsServer(tls) : createHttpServer();
      http.on('request', (_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n'));
      if (tls) http.on('tlsClientError', onTlsError);
      const wss = new WebSocketServer({ server: http, path: c.websocket.path, maxPayload: c.maxPacketBytes + 8 });
      wss.on('connection', (ws, req) => {
        this.accept(createWebSocketStream(ws), { transport: tls ? 'wss' : 'ws', tls: tls ? (req.socket as TLSSocket) : undefined, address: req.socket.remoteAddress, port: req.socket.remotePort });
      });
      this.wsServer = http;
      this.wss = wss;
      this.wsPort = await listen(http as unknown as Server, c.websocket.listen.host, c.websocket.listen.port);
    }
    this.ctx.log.info({ host: c.listen.host, port: this.port, tls: !!tls, websocket: c.websocket ? this.wsPort : undefined, users: this.auth.userCount, anonymous: c.allowAnonymous }, 'embedded MQTT broker listening');
    if (c.allowAnonymous && (!isLoopback(c.listen.host) || (c.websocket && !isLoopback(c.websocket.listen.host)))) {
      this.ctx.log.warn('anonymous MQTT connections are allowed on a non-loopback address: any device on the network may publish');
    }
    if (!c.allowAnonymous && this.auth.userCount === 0) this.ctx.log.warn('the broker has no users yet: every connection is refused until the credentials file has some');
    // the broker lives and dies with the host, so its STATE needs no will: online now, offline at stop
    if (this.sparkplug?.mode === 'primary') await this.announceOnline();
  }

  /**
   * Once a device's PUBLISH is ingested (authorizePublish), aedes hands it to its distribution: the
   * retained store, the queues of offline persistent sessions, then the subscribers online, each
   * step a topic match and a promise. Until some connection has been granted a subscription there
   * is nobody to distribute to (the memory persistence starts empty with each aedes), so a device's
   * non-retained message skips it: the same outcome for ~1.5 µs less CPU per message, measured with
   * aedes alone (docs/benchmarks.md, "The MQTT libraries alone"). Retained messages, the broker's own
   * publishes (Sparkplug STATE, $SYS) and everything after the first subscription take aedes' path.
   */
  private skipDistribution(aedes: Aedes): void {
    const inner = aedes as unknown as { publish(packet: PublishPacket, client: unknown, done?: (err?: Error | null) => void): void };
    const distribute = inner.publish.bind(aedes);
    inner.publish = (packet, client, done) => {
      // aedes' own calls pass the client; the API form publish(packet, done) has none
      if (this.distributing || typeof client !== 'object' || client === null || packet.retain) return distribute(packet, client, done);
      // never synchronously: aedes' own path answers later, and its parse loop expects that
      if (done) process.nextTick(done, null);
    };
  }

  /** A new connection: rate and count limits, then the connection limits (connection-limits.ts), then aedes. */
  private accept(conn: Duplexish, peer: Peer): void {
    const sock = conn as Socket;
    const address = peer.address ?? sock.remoteAddress ?? 'unknown';
    if (this.connections >= this.config.maxConnections) {
      this.refuse('too_many_connections', `limit ${this.config.maxConnections}`, { address });
      return void conn.destroy();
    }
    if (!this.authFailures.has(address)) {
      this.refuse('too_many_auth_failures', `more than ${this.config.maxAuthFailuresPerMinute} failed logins in a minute from this address`, { address });
      return void conn.destroy();
    }
    if (!this.rate.allow(address)) {
      this.refuse('connection_rate_limited', `more than ${this.config.maxConnectionsPerSecond} new connections per second`, { address });
      return void conn.destroy();
    }
    this.connections++;
    const c = this.config;
    const limits = { maxPacketBytes: c.maxPacketBytes, maxUnsentBytes: c.maxUnsentBytes, packetTimeoutMs: c.packetTimeout, maxControlPacketsPerSecond: c.maxControlPacketsPerSecond };
    const guarded = new LimitedConnection(conn, { ...peer, address, port: peer.port ?? sock.remotePort }, limits, this.budget!, (reason, detail) =>
      this.refuse(reason, detail, { address, clientId: (guarded as unknown as { client?: Client }).client?.id }),
    );
    guarded.once('close', () => this.connections--);
    this.aedes?.handle(guarded);
  }

  /** Why this publish is refused, or undefined when it may go on. */
  private checkPublish(client: Client, packet: PublishPacket): string | undefined {
    const c = this.config;
    const topic = packet.topic;
    const grant = this.grants.get(client);
    let reason: RefusalReason | undefined;
    let detail = '';
    // [MQTT-2.3.1-1]: QoS 1 and 2 packets carry a non-zero packet identifier (a will, which never
    // came as a PUBLISH, has none at all)
    if (packet.qos > 0 && packet.messageId === 0) [reason, detail] = ['malformed_packet', `QoS ${packet.qos} PUBLISH with packet identifier 0`];
    else if (topic.startsWith('$SYS/') || topic === '$SYS') [reason, detail] = ['reserved_topic', `$SYS topics are the broker's own (${JSON.stringify(topic.slice(0, 200))})`];
    else if (Buffer.byteLength(topic) > c.maxTopicLength) [reason, detail] = ['topic_too_long', `topic of ${Buffer.byteLength(topic)} bytes, limit ${c.maxTopicLength}`];
    // [MQTT-1.5.3-1/2]: ill-formed UTF-8 (which the packet parser turns into U+FFFD) and U+0000 close the connection
    else if (BAD_TOPIC_CHAR.test(topic)) [reason, detail] = ['invalid_topic', `topic ${JSON.stringify(topic.slice(0, 200))} holds invalid UTF-8 or U+0000`];
    else if (!grant || !mayPublish(grant.publish, grant.identity, topic)) [reason, detail] = ['publish_denied', `may not publish to ${JSON.stringify(topic.slice(0, 200))}`];
    if (!reason) return undefined;
    this.drop(reason);
    this.refuse(reason, detail, this.who(client));
    return detail;
  }

  /**
   * Keeps the retained store within its limits. Returns false for an empty retained message (MQTT's
   * delete, which aedes applies). A retain beyond the limits, or from a connection whose ACL does
   * not allow retaining, has its retain flag taken off: the value is still ingested, nothing is held.
   */
  private retain(client: Client, packet: PublishPacket): boolean {
    const c = this.config;
    const old = this.retained.get(packet.topic);
    const payload = packet.payload as Buffer;
    const forget = () => {
      if (!old) return;
      this.retained.delete(packet.topic);
      this.retainedBytes -= old.bytes;
      const n = (this.retainedPerClient.get(old.clientId) ?? 1) - 1;
      if (n > 0) this.retainedPerClient.set(old.clientId, n);
      else this.retainedPerClient.delete(old.clientId);
    };
    if (payload.length === 0) {
      forget();
      this.retainedCleared++;
      return false;
    }
    const bytes = payload.length + Buffer.byteLength(packet.topic);
    const mine = this.retainedPerClient.get(client.id) ?? 0;
    const grant = this.grants.get(client);
    let why: string | undefined;
    if (!grant?.retain) why = 'this connection may not publish retained messages (acl: retain)';
    else if (!old && this.retained.size >= c.maxRetainedMessages) why = `the broker holds ${c.maxRetainedMessages} retained messages (maxRetainedMessages)`;
    else if (!old && mine >= c.maxRetainedPerClient) why = `this client holds ${mine} retained messages (maxRetainedPerClient)`;
    else if (this.retainedBytes - (old?.bytes ?? 0) + bytes > c.maxRetainedBytes) why = `retained messages would take more than ${c.maxRetainedBytes} bytes (maxRetainedBytes)`;
    if (why) {
      packet.retain = false;
      this.refuse('retain_refused', `${why}: the value is taken, not retained`, this.who(client));
      return true;
    }
    forget();
    this.retained.set(packet.topic, { bytes, clientId: client.id });
    this.retainedBytes += bytes;
    this.retainedPerClient.set(client.id, (this.retainedPerClient.get(client.id) ?? 0) + 1);
    return true;
  }

  private who(client: Client): Omit<RefusalRecord, 'reason' | 'detail' | 'at'> {
    const g = this.grants.get(client);
    return { clientId: client.id, username: g?.identity.username, address: (client.conn as unknown as LimitedConnection).peer?.address };
  }

  private clientError(client: Client | null, err: Error): void {
    // aedes' own refusals of malformed or over-limit packets, named like ours
    if (err instanceof PublishRefused) return; // counted when it was refused
    const m = err.message;
    const reason = /too many levels/.test(m) ? 'topic_too_deep' : /maxInflightInbound/.test(m) ? 'inflight_exceeded' : /not allowed in PUBLISH|Invalid|invalid|malformed|Cannot parse|protocol/i.test(m) ? 'malformed_packet' : undefined;
    if (reason) return this.refuse(reason, m, client ? this.who(client) : {});
    this.recordError(err);
  }

  private refuse(reason: RefusalReason, detail: string, who: Omit<RefusalRecord, 'reason' | 'detail' | 'at'>): void {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
    const rec = { reason, detail, ...who, at: Date.now() };
    this.recentRefusals.push(rec);
    if (this.recentRefusals.length > 50) this.recentRefusals.shift();
    // one log line per reason and client per minute: a device retrying every second must not flood the log
    const key = `${reason}|${who.clientId ?? who.address}`;
    if ((this.lastLogged.get(key) ?? 0) < rec.at - 60_000) {
      this.lastLogged.set(key, rec.at);
      if (this.lastLogged.size > 1000) this.lastLogged.clear();
      this.ctx.log.warn({ reason, clientId: who.clientId, username: who.username, address: who.address }, `MQTT connection refused: ${detail}`);
    }
  }

  async announceOnline(): Promise<void> {
    await this.publishState(true, Date.now());
  }

  publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.reject(new Error('embedded broker is not running'));
    return new Promise((resolve, reject) => {
      aedes.publish({ cmd: 'publish', topic, payload, qos: opts.qos, retain: opts.retain, dup: false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  protected async doStop(): Promise<void> {
    if (this.sparkplug?.mode === 'primary' && this.aedes) {
      await this.publishState(false, Date.now()).catch((err) => this.recordError(err));
    }
    const servers = [this.server, this.wsServer].filter((s) => !!s);
    const aedes = this.aedes;
    this.server = this.wsServer = undefined;
    this.aedes = undefined;
    this.wss?.close();
    this.wss = undefined;
    const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    // aedes.close() ends the client connections, which lets the servers' close() finish
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await closed;
    this.devices.clear();
    this.gone.clear();
  }

  /** Connected devices, then those gone (most recent first). */
  deviceRows(): DeviceRow[] {
    const row = (d: DeviceInfo): DeviceRow => ({
      source: this.name,
      id: d.clientId,
      state: d.disconnectedAt ? 'gone' : 'connected',
      since: d.disconnectedAt ?? d.connectedAt,
      lastSeenAt: d.lastMessageAt ?? d.connectedAt,
      messages: d.messages,
      user: d.username,
      address: d.address,
    });
    return [...[...this.devices.values()].map(row), ...[...this.gone.values()].reverse().map(row)];
  }

  private async onPublish(client: Client, packet: PublishPacket): Promise<void> {
    const dev = this.devices.get(client.id);
    if (dev) {
      dev.messages++;
      dev.lastMessageAt = Date.now();
    }
    await this.deliver(packet.topic, packet.payload as Buffer, this.config.maxPayloadBytes, client.id);
  }

  override details() {
    const c = this.config;
    return {
      listen: `${c.listen.host}:${this.port}`,
      tls: c.tls ? { clientCertificates: c.tls.clientCertificates } : false,
      websocket: c.websocket ? `${c.websocket.listen.host}:${this.wsPort}${c.websocket.path}` : undefined,
      auth: { allowAnonymous: c.allowAnonymous, users: this.auth.userCount, credentialsFileError: this.auth.fileError },
      connectedDevices: this.devices.size,
      // the devices themselves are in /api/devices: the live feed carries counts only, whatever the fleet's size
      goneDevices: this.gone.size,
      lastGone: [...this.gone.values()].slice(-5).reverse().map((d) => ({ clientId: d.clientId, at: d.disconnectedAt })),
      reconnects: this.reconnects,
      // false until a connection subscribes: device publishes skip aedes' distribution (skipDistribution)
      distributing: this.distributing,
      refusals: this.refusals,
      recentRefusals: this.recentRefusals.slice(-20),
      retained: { messages: this.retained.size, bytes: this.retainedBytes, cleared: this.retainedCleared },
      intake: this.budget ? { inflightBytes: this.budget.inflightBytes, partialBytes: this.budget.partialBytes, maxInflightBytes: this.config.maxInflightBytes } : undefined,
      ...this.routingDetails(),
    };
  }
}
