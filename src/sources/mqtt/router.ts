/**
 * Topic -> route -> points, shared by the embedded broker and the external clients so both treat
 * a payload the same way. Bad payloads become dead letters here, with topic and reason.
 */
import { RejectedInput } from '../../core/errors.js';
import type { Point } from '../../core/point.js';
import type { Reject } from '../../deadletters/dead-letters.js';
import type { RouteConfig } from './config.js';
import { decodeJson } from './json-decoder.js';
import { parseTopicTemplate, type TopicTemplate } from './topic-template.js';
import type { DropReason } from '../../core/reasons.js';

export type RouteResult = { kind: 'points'; points: Point[] } | { kind: 'unrouted' } | { kind: 'rejected'; reason: DropReason };

export class TopicRouter {
  private routes: { config: RouteConfig; template: TopicTemplate }[] = [];

  constructor(routes: RouteConfig[]) {
    this.setRoutes(routes);
  }

  /** New routes apply from the next message on, for every transport at once (a reload: no connection is touched). */
  setRoutes(routes: RouteConfig[]): void {
    this.routes = routes.map((config) => ({ config, template: parseTopicTemplate(config.topic) }));
  }

  /** MQTT filters that cover every route (what external clients subscribe to by default). */
  filters(): string[] {
    return [...new Set(this.routes.map((r) => r.template.filter))];
  }

  route(topic: string, payload: Uint8Array, source: string, reject: Reject, maxPayloadBytes = Infinity, clientId?: string): RouteResult {
    for (const { config, template } of this.routes) {
      const topicTags = template.match(topic);
      if (!topicTags) continue;
      try {
        if (payload.length > maxPayloadBytes) {
          throw new RejectedInput('payload_too_large', `payload of ${payload.length} bytes exceeds maxPayloadBytes ${maxPayloadBytes}`);
        }
        const origin = clientId === undefined ? { topic } : { topic, clientId };
        return { kind: 'points', points: decodeJson(payload, { route: config, topicTags, receivedAt: Date.now(), source, origin }) };
      } catch (err) {
        if (!(err instanceof RejectedInput)) throw err;
        reject({ source, reason: err.reason, message: err.message, topic, payload: payload.subarray(0, 4096) });
        return { kind: 'rejected', reason: err.reason };
      }
    }
    return { kind: 'unrouted' };
  }
}
