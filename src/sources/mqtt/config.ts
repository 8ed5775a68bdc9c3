import { z } from 'zod';
import { bool, componentName, duration, int, listenAddress } from '../../config/types.js';
import { parseTopicTemplate } from './topic-template.js';

const fieldType = z.enum(['float', 'integer', 'boolean', 'string']);

export const routeSchema = z
  .strictObject({
    /** Topic template; `{name}` levels become tags. */
    topic: z.string().superRefine((t, ctx) => {
      try {
        parseTopicTemplate(t);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `bad topic template: ${(err as Error).message}` });
      }
    }),
    measurement: z.string().min(1),
    format: z.literal('json').default('json'),
    /** Payload keys whose values become tags instead of fields. */
    tags: z.array(z.string().min(1)).default([]),
    /** Tags added to every point of this route. */
    staticTags: z.record(z.string(), z.string().min(1)).default({}),
    /**
     * Explicit field mapping: payload key (nested keys joined with `_`) to field name, or to
     * `{ name, type }`. When given, only these keys become fields.
     */
    fields: z
      .record(z.string(), z.union([z.string().min(1), z.strictObject({ name: z.string().min(1).optional(), type: fieldType.optional() })]))
      .optional(),
    /** Payload keys never to ingest. */
    ignore: z.array(z.string()).default([]),
    /** Which payload key holds the source timestamp. Default: `ts` (epoch ms) or `timestamp` (ISO 8601). */
    timeKey: z.string().optional(),
    /** Depth beyond which nested objects are refused (JSON bombs). */
    maxDepth: int().pipe(z.number().min(1).max(32)).default(8),
    /** Fields beyond this count make the payload a dead letter rather than a series explosion. */
    maxFields: int().pipe(z.number().min(1).max(10_000)).default(1000),
  });
export type RouteConfig = z.output<typeof routeSchema>;

export const brokerSchema = z.strictObject({
  listen: listenAddress,
  /** Largest accepted MQTT packet; bigger ones close the connection. */
  maxPayloadBytes: int().pipe(z.number().positive()).default(1024 * 1024),
});
export type BrokerConfig = z.output<typeof brokerSchema>;

export const clientSchema = z.strictObject({
  name: componentName.optional(),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^/\s]+/, 'expected an mqtt://host:port (or mqtts://, ws://, wss://) URL'),
  clientId: z.string().min(1).max(128),
  /** false keeps a persistent session, so the broker holds QoS 1/2 messages while we are away. */
  clean: bool().default(false),
  username: z.string().optional(),
  password: z.string().optional(),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
  keepalive: int().pipe(z.number().min(0).max(65535)).default(30),
  reconnectPeriod: duration.default(1000),
  subscriptions: z
    .array(z.strictObject({ topic: z.string().min(1), qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1) }))
    .optional(),
});
export type ClientConfig = z.output<typeof clientSchema>;

export const mqttSchema = z.strictObject({
  /** The embedded aedes broker devices publish to; omit to disable. */
  broker: brokerSchema.optional(),
  /** Connections to external brokers. */
  clients: z.array(clientSchema).default([]),
  routes: z.array(routeSchema).default([]),
});
export type MqttConfig = z.output<typeof mqttSchema>;
