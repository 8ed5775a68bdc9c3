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
    topic: z.string().superRefine((t, ctx) => {
      try {
        parseTopicTemplate(t);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `bad topic template: ${(err as Error).message}` });
      }
    }).describe('Topic template; `{name}` levels become tags.'),
    measurement: z.string().min(1).describe('Measurement of the route\'s points.').meta({ examples: ['cnc'] }),
    format: z.literal('json').default('json').describe('Payload format: JSON objects, or arrays of them (batches).'),
    tags: z.array(z.string().min(1)).default([]).describe('Payload keys whose values become tags instead of fields.'),
    staticTags: z.record(z.string(), z.string().min(1)).default({}).describe('Tags added to every point of this route.'),
    fields: z
      .record(z.string(), z.union([z.string().min(1), z.strictObject({ name: z.string().min(1).optional(), type: fieldType.optional() })]))
      .optional().describe('Explicit field mapping: payload key (nested keys joined with `_`) to field name, or to `{ name, type }`. When given, only these keys become fields.'),
    ignore: z.array(z.string()).default([]).describe('Payload keys never to ingest.'),
    timeKey: z.string().optional().describe('Which payload key holds the source timestamp. Default: `ts` (epoch ms) or `timestamp` (ISO 8601).'),
    maxDepth: int().pipe(z.number().min(1).max(32)).default(8).describe('Depth beyond which nested objects are refused (JSON bombs).'),
    maxFields: int().pipe(z.number().min(1).max(10_000)).default(1000).describe('Fields beyond this count make the payload a dead letter rather than a series explosion.'),
    maxPoints: int().pipe(z.number().min(1).max(1_000_000)).default(10_000).describe('Points one message may become (a JSON array is a batch).'),
    maxExpansion: z.number().min(1).default(16).describe('Line-protocol characters one message may become, as a multiple of its payload bytes, once past 256 KiB: topic tags repeated on every point of a batch must not turn 1 MiB into 80 MB.'),
    maxLineBytes: byteSize.default(16 * 1024 ** 2).describe('Line-protocol characters one message may become at the most.'),
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
    username: z.string().min(1).max(256).describe('The MQTT username, or the common name (CN) of the client certificate.'),
    passwordHash: z.string().refine(isPasswordHash, PASSWORD_HASH_HINT).optional().describe('From `plantgate hash-password`; the password itself never goes into a file.'),
    certificate: bool().default(false).describe('May log in with a client certificate (signed by `tls.ca`) whose CN is `username`.'),
    publish: aclRules.describe('Topics this user may publish to; none when empty.'),
    subscribe: aclRules.describe('Topic filters this user may subscribe to; none when empty.'),
    retain: bool().default(true).describe('May publish retained messages (held by the broker for later subscribers).'),
  })
  .superRefine((u, ctx) => {
    if (!u.passwordHash && !u.certificate) ctx.addIssue({ code: 'custom', path: ['passwordHash'], message: 'a user needs a passwordHash, certificate: true, or both' });
  });
export type BrokerUser = z.output<typeof brokerUserSchema>;

/** The credentials file: the same user entries, kept apart from the configuration. */
export const credentialsFileSchema = z.strictObject({ users: z.array(brokerUserSchema) });

export const brokerSchema = z
  .strictObject({
    listen: listenAddress.describe('TCP listener; TLS (MQTT over TLS, usually port 8883) when `tls` is set.'),
    tls: tlsServerSchema.optional().describe('MQTT over TLS; `ca` signs the devices\' client certificates.'),
    websocket: z.strictObject({ listen: listenAddress.describe('WebSocket listener.'), path: z.string().regex(/^\//, 'expected a path such as /mqtt').default('/mqtt').describe('URL path devices connect to.') }).optional().describe('MQTT over WebSocket (wss:// when `tls` is set), for browser and firewalled clients.'),
    allowAnonymous: bool().default(false).describe('Connections without username and certificate; only when asked for by name.'),
    anonymous: z.strictObject({ publish: aclRules.describe('Topics they may publish to.'), subscribe: aclRules.describe('Topic filters they may subscribe to.'), retain: bool().default(false).describe('May they publish retained messages.') }).default({ publish: ['#'], subscribe: ['#'], retain: false }).describe('What anonymous connections may do, when allowed.'),
    users: z.array(brokerUserSchema).default([]).describe('Devices that may connect; rules are topic filters with `%u` (username or certificate CN) and `%c` (client id).').meta({ examples: [[{ username: 'press-01', passwordHash: 'scrypt$15$8$1$ZXhhbXBsZS1zYWx0LTEyMw==$n0tArEaLhAsHjUsTtHeFoRmAtOfOnE+eXaMpLeS0000=', publish: ['factory/+/+/press-01/#'] }]] }),
    credentialsFile: readableFile.optional().describe('YAML file with `users: [...]`; re-read when it changes, so devices can be added without a restart.'),
    maxPayloadBytes: int().pipe(z.number().positive()).default(1024 * 1024).describe('Payloads larger than this are dead-lettered (the message is kept, cut to the packet limit).'),
    maxPacketBytes: int().pipe(z.number().positive().max(268_435_455)).optional().describe('An MQTT packet announcing more than this closes the connection before it is read. Default: maxPayloadBytes + 64 KiB.'),
    maxTopicLength: int().pipe(z.number().min(16).max(65_535)).default(1024).describe('Topic length in bytes; a longer topic closes the connection.'),
    maxTopicDepth: int().pipe(z.number().min(1).max(100)).default(32).describe('Levels of a topic (aedes\' own ceiling is 100).'),
    maxInflight: int().pipe(z.number().min(1).max(65_535)).default(100).describe('Inbound QoS 2 messages per client awaiting PUBREL (QoS 1 is taken one at a time, acked when durable).'),
    maxConnections: int().pipe(z.number().min(1)).default(10_000).describe('Connections at once; beyond it new ones are refused.'),
    maxConnectionsPerSecond: int().pipe(z.number().min(1)).default(200).describe('New connections per second from one address (devices behind one NAT reconnecting together count as one).'),
    maxAuthFailuresPerMinute: int().pipe(z.number().min(1)).default(30).describe('Failed logins per minute from one address; beyond it the address is refused until the minute has passed.'),
    connectTimeout: duration.default(10_000).describe('A connection that has not sent CONNECT by then is closed.'),
    packetTimeout: duration.default(30_000).describe('A packet must arrive whole within this once its first byte came (keepalive 0 sets no other clock).'),
    maxPartialBytes: byteSize.default(64 * 1024 ** 2).describe('Bytes of unfinished packets, all connections together; the connection that goes beyond is closed.'),
    maxInflightBytes: byteSize.default(128 * 1024 ** 2).describe('Bytes of PUBLISH packets being ingested plus lines waiting for their buffer commit, all connections together; beyond it devices are held back (their sockets are not read).'),
    maxUnsentBytes: byteSize.default(4 * 1024 ** 2).describe('Bytes written to a connection that its peer has not read; beyond it the connection is closed.'),
    maxControlPacketsPerSecond: int().pipe(z.number().min(1)).default(100).describe('PINGREQ, SUBSCRIBE and UNSUBSCRIBE per second per connection (bursts of ten times that are allowed).'),
    maxRetainedMessages: int().pipe(z.number().min(0)).default(10_000).describe('Retained messages the broker holds in all; beyond this (or the per-client and byte limits) the retain flag is refused (`retain_refused`) and the value still taken.'),
    maxRetainedPerClient: int().pipe(z.number().min(0)).default(100).describe('Retained messages one client may have set.'),
    maxRetainedBytes: byteSize.default(16 * 1024 ** 2).describe('Bytes of all retained messages together.'),
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
  name: componentName.optional().describe('Component name in the status (default `mqtt-client-<clientId>`).'),
  url: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^/\s]+/, 'expected an mqtt://host:port (or mqtts://, ws://, wss://) URL').describe('The broker: `mqtt://`, `mqtts://`, `ws://` or `wss://`.').meta({ examples: ['mqtt://127.0.0.1:1884'] }),
  clientId: z.string().min(1).max(128).optional().describe('Client id at the broker; keep it stable, so a persistent session finds its messages again (default: the `instance`, then `-2`, `-3` for further clients).').meta({ examples: ['plantgate-1'] }),
  shareGroup: z
    .string()
    .regex(/^[^/+#]+$/, 'a share name must not contain / + or #')
    .optional()
    .describe('Share the subscriptions with the other gateways of this group: each filter becomes `$share/<shareGroup>/<filter>`, and the broker gives each message to one member (docs/scaling.md).'),
  clean: bool().default(false).describe('false keeps a persistent session, so the broker holds QoS 1/2 messages while we are away.'),
  username: z.string().optional().describe('User name at the broker.'),
  password: z.string().optional().describe('Password at the broker (or passwordFile).'),
  passwordFile: readableFile.optional().describe('File holding the password (Docker / systemd credentials); instead of `password`.'),
  tls: tlsClientSchema.optional().describe('CA, client certificate and key for mqtts:// and wss:// brokers.'),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4).describe('4 (MQTT 3.1.1) or 5.'),
  keepalive: int().pipe(z.number().min(0).max(65535)).default(30).describe('Seconds between PINGREQs when idle (0: none).'),
  reconnectPeriod: duration.default(1000).describe('Wait between reconnect attempts.'),
  subscriptions: z
    .array(z.strictObject({ topic: z.string().min(1).describe('An MQTT topic filter (`+` and `#` wildcards).'), qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1).describe('The QoS asked for.') }))
    .optional().describe('Topic filters with their QoS; default: the routes\' filters at QoS 1.').meta({ examples: [[{ topic: 'factory/+/+/+/telemetry', qos: 1 }]] }),
})
  .superRefine((c, ctx) => {
    c.subscriptions?.forEach((s, i) => {
      if (s.topic.startsWith('$share/')) ctx.addIssue({ code: 'custom', path: ['subscriptions', i, 'topic'], message: 'give the plain filter and shareGroup: <name> instead of $share/ in the topic' });
    });
  })
  .transform((c, ctx) => secretFromFile(c, 'password', ctx));
/** A client's section once the root schema has given it a client id. */
export type ClientConfig = z.output<typeof clientSchema> & { clientId: string };

export const mqttSchema = z.strictObject({
  broker: brokerSchema.optional().describe('The embedded aedes broker devices publish to; omit to disable.').meta({ examples: [{ listen: '127.0.0.1:1883', users: [{ username: 'press-01', passwordHash: 'scrypt$15$8$1$ZXhhbXBsZS1zYWx0LTEyMw==$n0tArEaLhAsHjUsTtHeFoRmAtOfOnE+eXaMpLeS0000=', publish: ['factory/+/+/press-01/#'] }] }] }),
  clients: z.array(clientSchema).default([]).describe('Connections to external brokers (a plant\'s mosquitto, EMQX, HiveMQ).').meta({ examples: [[{ url: 'mqtt://127.0.0.1:1884', clientId: 'plantgate-1' }]] }),
  routes: z.array(routeSchema).default([]).describe('How topics become points: the first route whose template matches a topic takes its messages.').meta({ examples: [[{ topic: 'factory/{site}/{line}/{machine}/telemetry', measurement: 'cnc', tags: ['program'], staticTags: { region: 'liaoning' }, ignore: ['seq'] }]] }),
});
export type MqttConfig = z.output<typeof mqttSchema>;
