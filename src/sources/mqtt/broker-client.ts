/**
 * A connection to an external MQTT broker (mosquitto, HiveMQ, EMQX...) through mqtt.js.
 *
 * Ack after durable (spec rule 1): mqtt.js sends PUBACK/PUBREC when `handleMessage` calls back, so
 * the points are ingested there and the callback waits for the buffer. With `clean: false` the
 * broker keeps QoS 1/2 messages for us while we are disconnected or stopped.
 * mqtt.js handles incoming packets one at a time, so one client's rate is bounded by the buffer's
 * commit latency; several clients with MQTT 5 shared subscriptions spread the load.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { SourceContext } from '../source.js';
import { MqttSource } from './mqtt-source.js';
import type { ClientConfig } from './config.js';
import type { TopicRouter } from './router.js';

export class BrokerClient extends MqttSource {
  readonly type = 'mqtt-client';
  private client?: MqttClient;
  private connects = 0;
  private disconnects = 0;
  private connected = false;

  constructor(name: string, private readonly config: ClientConfig, router: TopicRouter, ctx: SourceContext) {
    super(name, router, ctx);
  }

  protected async doStart(): Promise<void> {
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
    if (c.protocolVersion === 5 && !c.clean) opts.properties = { sessionExpiryInterval: 0xffffffff };
    const client = mqtt.connect(c.url, opts);
    this.client = client;
    client.handleMessage = (packet, callback) => {
      this.deliver(packet.topic, packet.payload as Buffer).then(
        () => callback(),
        (err: unknown) => {
          // Not durable: do not acknowledge. Dropping the connection makes the broker redeliver.
          this.recordError(err);
          client.stream?.destroy();
        },
      );
    };
    client.on('connect', () => {
      this.connects++;
      this.connected = true;
      this.setState('running');
      // A persistent session keeps our subscriptions; subscribing again is harmless and repairs a
      // session the broker lost (a restart without persistence).
      this.subscribe();
    });
    client.on('close', () => {
      if (this.connected) this.disconnects++;
      this.connected = false;
      if (this.state === 'running') this.setState('reconnecting');
    });
    client.on('error', (err) => this.recordError(err));
    // Start does not wait for the broker: an unreachable broker is a state, not a start failure.
    this.setState('reconnecting');
  }

  private subscribe(): void {
    const subs = this.config.subscriptions ?? this.router.filters().map((topic) => ({ topic, qos: 1 as const }));
    for (const s of subs) {
      this.client?.subscribe(s.topic, { qos: s.qos }, (err, granted) => {
        if (err) this.recordError(err);
        else if (granted?.some((g) => g.qos === 128)) this.recordError(new Error(`broker refused subscription to ${s.topic}`));
      });
    }
  }

  protected async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(false).catch(() => client.end(true));
  }

  protected override details(): Record<string, unknown> {
    return {
      url: this.config.url,
      clientId: this.config.clientId,
      connected: this.connected,
      connects: this.connects,
      disconnects: this.disconnects,
      ...this.routingDetails(),
    };
  }
}
