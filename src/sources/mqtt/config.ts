import { z } from 'zod';
import { bool, byteSize, componentName, duration, int, listenAddress } from '../../core/config-types.js';
import { isPasswordHash, PASSWORD_HASH_HINT } from '../../security/passwords.js';
import { readableFile, tlsClientSchema, tlsServerSchema } from '../../security/tls.js';
import { secretFromFile } from '../../security/secrets.js';
import { filterProblem } from './acl.js';
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
    /** Points one message may become (a JSON array is a batch). */
    maxPoints: int().pipe(z.number().min(1).max(1_000_000)).default(10_000),
    /**
     * Line-protocol characters one message may become, as a multiple of its payload bytes, once
     * past 256 KiB: topic tags repeated on every point of a batch must not turn 1 MiB into 80 MB.
     */
    maxExpansion: z.number().min(1).default(16),
    /** Line-protocol characters one message may become at the most. */
    maxLineBytes: byteSize.default(16 * 1024 ** 2),
  });
export type RouteConfig = z.output<typeof routeSchema>;

/** ACL rules: topic filters, `%c` = client id, `%u` = username (see acl.ts). */
const aclRules = z
  .array(
    z.string().superRefine((f, ctx) => {
      const p = filterProblem(f);
      if (p) ctx.addIssue({ code: 'custom', message: p });
    }),
  )
  .default([]);

export const brokerUserSchema = z
  .strictObject({
    /** The MQTT username, or the common name (CN) of the client certificate. */
    username: z.string().min(1).max(256),
    /** From `plantgate hash-password`; the password itself never goes into a file. */
    passwordHash: z.string().refine(isPasswordHash, PASSWORD_HASH_HINT).optional(),
    /** May log in with a client certificate (signed by `tls.ca`) whose CN is `username`. */
    certificate: bool().default(false),
    /** Topics this user may publish to; none when empty. */
    publish: aclRules,
    /** Topic filters this user may subscribe to; none when empty. */
    subscribe: aclRules,
    /** May publish retained messages (held by the broker for later subscribers). */
    retain: bool().default(true),
  })
  .superRefine((u, ctx) => {
    if (!u.passwordHash && !u.certificate) ctx.addIssue({ code: 'custom', path: ['passwordHash'], message: 'a user needs a passwordHash, certificate: true, or both' });
  });
export type BrokerUser = z.output<typeof brokerUserSchema>;

/** The credentials file: the same user entries, kept apart from the configuration. */
export const credentialsFileSchema = z.strictObject({ users: z.array(brokerUserSchema) });

export const brokerSchema = z
  .strictObject({
    /** TCP listener; TLS (MQTT over TLS, usually port 8883) when `tls` is set. */
    listen: listenAddress,
    tls: tlsServerSchema.optional(),
    /** MQTT over WebSocket (wss:// when `tls` is set), for browser and firewalled clients. */
    websocket: z.strictObject({ listen: listenAddress, path: z.string().regex(/^\//, 'expected a path such as /mqtt').default('/mqtt') }).optional(),
    /** Connections without username and certificate; only when asked for by name. */
    allowAnonymous: bool().default(false),
    /** What anonymous connections may do, when allowed. */
    anonymous: z.strictObject({ publish: aclRules, subscribe: aclRules, retain: bool().default(false) }).default({ publish: ['#'], subscribe: ['#'], retain: false }),
    users: z.array(brokerUserSchema).default([]),
    /** YAML file with `users: [...]`; re-read when it changes, so devices can be added without a restart. */
    credentialsFile: readableFile.optional(),
    /** Payloads larger than this are dead-lettered (the message is kept, cut to the packet limit). */
    maxPayloadBytes: int().pipe(z.number().positive()).default(1024 * 1024),
    /** An MQTT packet announcing more than this closes the connection before it is read. Default: maxPayloadBytes + 64 KiB. */
    maxPacketBytes: int().pipe(z.number().positive().max(268_435_455)).optional(),
    maxTopicLength: int().pipe(z.number().min(16).max(65_535)).default(1024),
    /** Levels of a topic (aedes' own ceiling is 100). */
    maxTopicDepth: int().pipe(z.number().min(1).max(100)).default(32),
    /** Inbound QoS 2 messages per client awaiting PUBREL (QoS 1 is taken one at a time, acked when durable). */
    maxInflight: int().pipe(z.number().min(1).max(65_535)).default(100),
    maxConnections: int().pipe(z.number().min(1)).default(10_000),
    /** New connections per second from one address (devices behind one NAT reconnecting together count as one). */
    maxConnectionsPerSecond: int().pipe(z.number().min(1)).default(200),
    /** Failed logins per minute from one address; beyond it the address is refused until the minute has passed. */
    maxAuthFailuresPerMinute: int().pipe(z.number().min(1)).default(30),
    /** A connection that has not sent CONNECT by then is closed. */
    connectTimeout: duration.default(10_000),
    /** A packet must arrive whole within this once its first byte came (keepalive 0 sets no other clock). */
    packetTimeout: duration.default(30_000),
    /** Bytes of unfinished packets, all connections together; the connection that goes beyond is closed. */
    maxPartialBytes: byteSize.default(64 * 1024 ** 2),
    /**
     * Bytes of PUBLISH packets being ingested plus lines waiting for their buffer commit, all
     * connections together; beyond it devices are held back (their sockets are not read).
     */
    maxInflightBytes: byteSize.default(128 * 1024 ** 2),
    /** Bytes written to a connection that its peer has not read; beyond it the connection is closed. */
    maxUnsentBytes: byteSize.default(4 * 1024 ** 2),
    /** PINGREQ, SUBSCRIBE and UNSUBSCRIBE per second per connection (bursts of ten times that are allowed). */
    maxControlPacketsPerSecond: int().pipe(z.number().min(1)).default(100),
    /** Retained messages the broker holds, in all and per client, and their bytes in all; beyond them the retain flag is refused. */
    maxRetainedMessages: int().pipe(z.number().min(0)).default(10_000),
    maxRetainedPerClient: int().pipe(z.number().min(0)).default(100),
    maxRetainedBytes: byteSize.default(16 * 1024 ** 2),
  })
  .transform((b) => ({ ...b, maxPacketBytes: b.maxPacketBytes ?? b.maxPayloadBytes + 65_536 }))
  .superRefine((b, ctx) => {
    if (!b.allowAnonymous && b.users.length === 0 && !b.credentialsFile) {
      ctx.addIssue({ code: 'custom', path: ['users'], message: 'no device could connect: add users (passwords from `plantgate hash-password`), a credentialsFile, or set allowAnonymous: true' });
    }
    if (b.users.some((u) => u.certificate) && b.tls?.clientCertificates === undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'users with certificate: true need tls with a ca for client certificates' });
    } else if (b.users.some((u) => u.certificate) && b.tls?.clientCertificates === 'none') {
      ctx.addIssue({ code: 'custom', path: ['tls', 'clientCertificates'], message: 'users with certificate: true need clientCertificates optional or required' });
    }
    const seen = new Set<string>();
    b.users.forEach((u, i) => {
      if (seen.has(u.username)) ctx.addIssue({ code: 'custom', path: ['users', i, 'username'], message: `duplicate user ${JSON.stringify(u.username)}` });
      seen.add(u.username);
    });
    if (b.maxPacketBytes <= b.maxPayloadBytes) ctx.addIssue({ code: 'custom', path: ['maxPacketBytes'], message: 'must be larger than maxPayloadBytes (the packet also holds the topic)' });
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
  /** File holding the password (Docker / systemd credentials); instead of `password`. */
  passwordFile: readableFile.optional(),
  /** CA, client certificate and key for mqtts:// and wss:// brokers. */
  tls: tlsClientSchema.optional(),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
  keepalive: int().pipe(z.number().min(0).max(65535)).default(30),
  reconnectPeriod: duration.default(1000),
  subscriptions: z
    .array(z.strictObject({ topic: z.string().min(1), qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1) }))
    .optional(),
}).transform((c, ctx) => secretFromFile(c, 'password', ctx));
export type ClientConfig = z.output<typeof clientSchema>;

export const mqttSchema = z.strictObject({
  /** The embedded aedes broker devices publish to; omit to disable. */
  broker: brokerSchema.optional(),
  /** Connections to external brokers. */
  clients: z.array(clientSchema).default([]),
  routes: z.array(routeSchema).default([]),
});
export type MqttConfig = z.output<typeof mqttSchema>;
