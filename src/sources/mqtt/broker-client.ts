/**
 * A connection to an external MQTT broker (mosquitto, HiveMQ, EMQX...) through mqtt.js.
 *
 * Ack after durable (spec rule 1): mqtt.js sends PUBACK/PUBREC when `handleMessage` calls back, so
 * the points are ingested there and the callback waits for the buffer. With `clean: false` the
 * broker keeps QoS 1/2 messages for us while we are disconnected or stopped.
 * mqtt.js handles incoming packets one at a time; AckPipeline lets it read on while earlier
 * messages wait for their commit, and holds each PUBACK until its message is durable.
 */
import { safeUrl } from '../../security/secrets.js';
import { clientTlsOptions } from '../../security/tls.js';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { SourceContext } from '../source.js';
import { AckPipeline } from './ack-pipeline.js';
import { MqttSource } from './mqtt-source.js';
import { isSparkplugTopic } from '../sparkplug/topic.js';
import type { ClientConfig } from './config.js';
import type { TopicRouter } from './router.js';

/** Messages taken from one broker connection that may wait for their buffer commit at once. */
const MAX_PENDING_ACKS = 2000;

type SendPacket = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

export class BrokerClient extends MqttSource {
  readonly type = 'mqtt-client';
  private client?: MqttClient;
  private connects = 0;
  private disconnects = 0;
  private connected = false;
  /** Primary Sparkplug host: the timestamp of the will registered with the current connection. */
  private stateTimestamp = 0;
  private ending = false;
  /** Filters this client asked the broker for: what a changed route list must unsubscribe (a persistent session keeps them). */
  private readonly subscribed = new Set<string>();

  constructor(name: string, private readonly config: ClientConfig, router: TopicRouter, ctx: SourceContext) {
    super(name, router, ctx);
  }

  protected async doStart(): Promise<void> {
    this.ending = false;
    const c = this.config;
    const opts: IClientOptions = {
      clientId: c.clientId,
      clean: c.clean,
      protocolVersion: c.protocolVersion,
      keepalive: c.keepalive,
      reconnectPeriod: c.reconnectPeriod,
      connectTimeout: 10_000,
      // never resubscribe blindly; we (re)subscribe on every connect ourselves, see below
      resubscribe: false,
    };
    if (c.username !== undefined) opts.username = c.username;
    if (c.password !== undefined) opts.password = c.password;
    Object.assign(opts, clientTlsOptions(c.tls));
    if (c.protocolVersion === 5 && !c.clean) opts.properties = { sessionExpiryInterval: 0xffffffff };
    if (this.sparkplug?.mode === 'primary') {
      // [tck-id-operational-behavior-host-application-connect-will*]: STATE offline, QoS 1, retained,
      // with the timestamp the online STATE after this CONNECT will repeat
      this.stateTimestamp = Date.now();
      opts.will = this.sparkplug.stateMessage(false, this.stateTimestamp);
    }
    const client = mqtt.connect(c.url, opts);
    this.client = client;
    // Not durable: do not acknowledge. Dropping the connection makes the broker redeliver.
    const notDurable = (err: unknown, stream: { destroy(): void } | undefined) => {
      this.recordError(err);
      stream?.destroy();
    };
    const acks = new AckPipeline(MAX_PENDING_ACKS, (err, stream) => notDurable(err, stream as { destroy(): void }));
    /** QoS 1 messages whose PUBACK mqtt.js is about to send: held until durable (see AckPipeline). */
    const held = new Map<number, { stream: object; durable: Promise<void> }>();
    // _sendPacket is private in mqtt.js' typings: say what changed rather than fail on .bind
    if (typeof (client as unknown as { _sendPacket?: unknown })._sendPacket !== 'function') {
      throw new Error('mqtt.js changed: MqttClient._sendPacket is missing (PUBACKs are held there until durable)');
    }
    const sendPacket = (client as unknown as { _sendPacket: SendPacket })._sendPacket.bind(client);
    (client as unknown as { _sendPacket: SendPacket })._sendPacket = (packet, cb, ...rest) => {
      const h = packet.cmd === 'puback' && packet.messageId !== undefined ? held.get(packet.messageId) : undefined;
      if (!h) return sendPacket(packet, cb, ...rest);
      held.delete(packet.messageId!);
      acks.admit(h.stream, h.durable, () => client.stream === h.stream && sendPacket(packet, undefined, ...rest), () => cb?.());
    };
    client.handleMessage = (packet, callback) => {
      const durable = this.deliver(packet.topic, packet.payload as Buffer);
      // Sparkplug keeps one message at a time (births must be recorded before the data that
      // follows them); QoS 2 keeps mqtt.js's own PUBREC/PUBREL flow.
      if (packet.qos === 2 || (this.sparkplug && isSparkplugTopic(packet.topic))) {
        durable.then(
          () => callback(),
          (err: unknown) => notDurable(err, client.stream),
        );
        return;
      }
      if (packet.qos === 1 && packet.messageId !== undefined) {
        held.set(packet.messageId, { stream: client.stream, durable });
        callback(); // mqtt.js now calls _sendPacket(puback), which the hook above holds back
      } else {
        acks.admit(client.stream, durable, () => undefined, () => callback());
      }
    };
    client.on('connect', () => {
      this.connects++;
      this.connected = true;
      this.setState('running');
      // A persistent session keeps our subscriptions; subscribing again is harmless and repairs a
      // session the broker lost (a restart without persistence).
      this.subscribe(true);
    });
    client.on('close', () => {
      if (this.connected) this.disconnects++;
      this.connected = false;
      if (this.sparkplug?.mode === 'primary' && client.options.will) {
        // the next CONNECT carries a will with a new timestamp, and the next online STATE repeats it
        this.stateTimestamp = Date.now();
        client.options.will = { ...client.options.will, payload: this.sparkplug.stateMessage(false, this.stateTimestamp).payload };
      }
      if (this.state === 'running') this.setState('reconnecting');
    });
    client.on('error', (err) => this.recordError(err));
    // Start does not wait for the broker: an unreachable broker is a state, not a start failure.
    this.setState('reconnecting');
  }

  private wanted(): { topic: string; qos: 0 | 1 | 2 }[] {
    const own = this.config.subscriptions ?? this.router.filters().map((topic) => ({ topic, qos: 1 as 0 | 1 | 2 }));
    // a shared subscription: the broker gives each message to one member of the group; messages
    // still arrive on their real topic, so routing is unchanged
    const share = this.config.shareGroup;
    const subs = share ? own.map((s) => ({ ...s, topic: `$share/${share}/${s.topic}` })) : [...own];
    if (this.sparkplug) {
      const groups = this.sparkplug.subscribedGroups();
      for (const topic of groups ? [...groups.map((g) => `spBv1.0/${g}/#`), 'spBv1.0/STATE/+'] : ['spBv1.0/#']) subs.push({ topic, qos: 1 });
    }
    return subs;
  }

  /**
   * The routes changed (a reload): subscribe to the filters that are new and unsubscribe the ones no
   * route needs, on the same connection. Returns whether anything changed.
   */
  refreshSubscriptions(): boolean {
    const wanted = new Set(this.wanted().map((s) => s.topic));
    const gone = [...this.subscribed].filter((t) => !wanted.has(t));
    const added = [...wanted].filter((t) => !this.subscribed.has(t));
    if (!gone.length && !added.length) return false;
    if (this.connected) this.subscribe();
    return true;
  }

  private subscribe(connecting = false): void {
    const subs = this.wanted();
    const client = this.client;
    if (!client) return;
    const wanted = new Set(subs.map((s) => s.topic));
    // a persistent session may hold subscriptions of an earlier run to Sparkplug groups this
    // member no longer owns (a cluster hand-over while it was down): drop them when connecting
    const earlier = connecting && this.sparkplug?.sessions.owned ? this.sparkplug.config.groups.map((g) => `spBv1.0/${g}/#`) : [];
    const gone = [...new Set([...this.subscribed, ...earlier])].filter((t) => !wanted.has(t));
    if (gone.length) {
      void client.unsubscribeAsync(gone).then(
        () => gone.forEach((t) => this.subscribed.delete(t)),
        (err: unknown) => this.recordError(err),
      );
    }
    if (subs.length === 0) return;
    for (const s of subs) this.subscribed.add(s.topic);
    void client.subscribeAsync(Object.fromEntries(subs.map((s) => [s.topic, { qos: s.qos }]))).then(
      async (granted) => {
        for (const g of granted) if (g.qos === 128) this.recordError(new Error(`broker refused subscription to ${g.topic}`));
        // [tck-id-host-topic-phid-birth-sub-required]: subscriptions first, then the online STATE
        if (this.sparkplug?.mode === 'primary' && this.client === client) await this.announceOnline();
      },
      (err: unknown) => this.recordError(err),
    );
  }

  async announceOnline(): Promise<void> {
    if (this.ending) return; // our own offline STATE coming back while we stop
    await this.publishState(true, this.stateTimestamp).catch((err) => this.recordError(err));
  }

  async publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    if (!this.client) throw new Error(`${this.name} is not running`);
    await this.client.publishAsync(topic, payload, opts);
  }

  protected async doStop(): Promise<void> {
    const client = this.client;
    this.ending = true;
    if (client && this.connected && this.sparkplug?.mode === 'primary') {
      // [tck-id-operational-behavior-host-application-termination]: an intentional disconnect
      // publishes the offline STATE first, since DISCONNECT suppresses the will
      await this.publishState(false, Date.now()).catch((err) => this.recordError(err));
    }
    this.client = undefined;
    if (client) await client.endAsync(false).catch(() => client.end(true));
  }

  override details() {
    return {
      url: safeUrl(this.config.url),
      tls: this.config.tls ? { ca: this.config.tls.ca, cert: this.config.tls.cert, rejectUnauthorized: this.config.tls.rejectUnauthorized } : undefined,
      clientId: this.config.clientId,
      shareGroup: this.config.shareGroup,
      subscriptions: [...this.subscribed],
      connected: this.connected,
      connects: this.connects,
      disconnects: this.disconnects,
      ...this.routingDetails(),
    };
  }
}
