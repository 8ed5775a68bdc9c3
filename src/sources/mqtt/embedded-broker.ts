/**
 * The embedded MQTT broker (aedes) devices publish to.
 *
 * Ack after durable (spec rule 1): aedes writes PUBACK for QoS 1 *after* `authorizePublish` calls
 * back, so ingestion happens inside that hook and calls back only once the points are in the
 * buffer. aedes reads a client's next socket chunk only when every packet of the current chunk
 * has been handled, so a full buffer (whenFull: block) stops reading that client: TCP pushes back
 * to the device, which keeps its unacknowledged messages. A payload that cannot be decoded is
 * dead-lettered and acknowledged (it is kept, with its reason, so it is not lost).
 */
import { createServer, type Server } from 'node:net';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import { listen } from '../../core/net.js';
import type { SourceContext } from '../source.js';
import { MqttSource } from './mqtt-source.js';
import type { BrokerConfig } from './config.js';
import type { TopicRouter } from './router.js';

interface DeviceInfo {
  clientId: string;
  address?: string;
  connectedAt: number;
  messages: number;
  lastMessageAt?: number;
}

export class EmbeddedBroker extends MqttSource {
  readonly type = 'mqtt-broker';
  private aedes?: Aedes;
  private server?: Server;
  private readonly devices = new Map<string, DeviceInfo>();
  /** Port actually bound (differs from config when it asks for port 0). */
  port = 0;

  constructor(name: string, private readonly config: BrokerConfig, router: TopicRouter, ctx: SourceContext) {
    super(name, router, ctx);
  }

  protected async doStart(): Promise<void> {
    const aedes = await Aedes.createBroker({ maxClientsIdLength: 128, drainTimeout: 30_000 });
    this.aedes = aedes;
    aedes.authorizePublish = (client, packet, callback) => {
      if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS topics are reserved'));
      if (!client) return callback(null);
      this.onPublish(client, packet).then(
        () => callback(null),
        // Not durable: refuse, so aedes closes the connection without PUBACK and the device resends.
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    };
    aedes.on('client', (client) => {
      const sock = client.conn as unknown as { remoteAddress?: string; remotePort?: number };
      this.devices.set(client.id, { clientId: client.id, address: sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : undefined, connectedAt: Date.now(), messages: 0 });
    });
    aedes.on('clientDisconnect', (client) => this.devices.delete(client.id));
    aedes.on('clientError', (_client, err) => this.recordError(err));
    aedes.on('connectionError', (_client, err) => this.recordError(err));

    const server = createServer(aedes.handle);
    this.server = server;
    this.port = await listen(server, this.config.listen.host, this.config.listen.port);
    server.on('error', (err) => this.recordError(err));
    this.ctx.log.info({ component: this.name, host: this.config.listen.host, port: this.port }, 'embedded MQTT broker listening');
    // the broker lives and dies with the host, so its STATE needs no will: online now, offline at stop
    if (this.sparkplug?.mode === 'primary') await this.announceOnline();
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
    const server = this.server;
    const aedes = this.aedes;
    this.server = undefined;
    this.aedes = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // aedes.close() ends the client connections, which lets server.close() finish
        if (aedes) aedes.close();
        else resolve();
      });
    } else if (aedes) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    }
    this.devices.clear();
  }

  private async onPublish(client: Client, packet: PublishPacket): Promise<void> {
    const dev = this.devices.get(client.id);
    if (dev) {
      dev.messages++;
      dev.lastMessageAt = Date.now();
    }
    await this.deliver(packet.topic, packet.payload as Buffer, this.config.maxPayloadBytes, client.id);
  }

  protected override details(): Record<string, unknown> {
    return {
      listen: `${this.config.listen.host}:${this.port}`,
      connectedDevices: this.devices.size,
      devices: [...this.devices.values()].slice(0, 200),
      ...this.routingDetails(),
    };
  }
}
