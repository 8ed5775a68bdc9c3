/**
 * What the embedded broker and the external-broker client share: a message goes through the
 * router, rejected payloads are counted per topic, routed points are ingested (resolving only when
 * durable, spec rule 1).
 */
import { BaseComponent } from '../../core/component.js';
import type { Source, SourceContext } from '../source.js';
import type { SparkplugHost, SparkplugTransport } from '../sparkplug/host.js';
import { isSparkplugTopic } from '../sparkplug/topic.js';
import type { TopicRouter } from './router.js';

export abstract class MqttSource extends BaseComponent implements Source, SparkplugTransport {
  readonly kind = 'source' as const;
  protected unrouted = 0;
  /** Set when the Sparkplug host is on: `spBv1.0/` messages go to it instead of the JSON routes. */
  protected sparkplug?: SparkplugHost;
  protected readonly failingTopics = new Map<string, { reason: string; count: number; at: number }>();

  constructor(name: string, protected readonly router: TopicRouter, protected readonly ctx: SourceContext) {
    super(name);
  }

  useSparkplug(host: SparkplugHost | undefined): void {
    this.sparkplug?.detach(this);
    this.sparkplug = host;
    host?.attach(this);
  }

  /** Publishes on this connection (Sparkplug NCMD and STATE). */
  abstract publish(topic: string, payload: Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;

  /** Publishes the Sparkplug host's STATE (primary mode) on this connection. */
  protected publishState(online: boolean, timestamp: number): Promise<void> {
    const s = this.sparkplug!.stateMessage(online, timestamp);
    return this.publish(s.topic, s.payload, s);
  }

  /** Routes, decodes and ingests one message; resolves once its points are durable. */
  protected async deliver(topic: string, payload: Buffer, maxPayloadBytes?: number, clientId?: string): Promise<void> {
    if (this.sparkplug && isSparkplugTopic(topic)) {
      this.lastValueAt = Date.now();
      return this.sparkplug.handle(topic, payload, this, { clientId, maxPayloadBytes });
    }
    const res = this.router.route(topic, payload, this.name, this.ctx.reject, maxPayloadBytes, clientId);
    if (res.kind === 'unrouted') {
      this.unrouted++;
      return;
    }
    if (res.kind === 'rejected') {
      this.drop(res.reason);
      const prev = this.failingTopics.get(topic);
      this.failingTopics.delete(topic); // re-insert so the map stays in recency order
      this.failingTopics.set(topic, { reason: res.reason, count: (prev?.count ?? 0) + 1, at: Date.now() });
      if (this.failingTopics.size > 100) this.failingTopics.delete(this.failingTopics.keys().next().value!);
      return;
    }
    this.counters.received += res.points.length;
    this.lastValueAt = Date.now();
    await this.ctx.ingest(res.points, this.name);
    this.counters.written += res.points.length;
  }

  protected routingDetails() {
    return {
      unroutedMessages: this.unrouted,
      failingTopics: [...this.failingTopics].slice(-20).map(([topic, v]) => ({ topic, ...v })),
    };
  }
}
