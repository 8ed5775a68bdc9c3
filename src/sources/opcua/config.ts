/**
 * OPC UA source configuration: one entry per server endpoint. Monitoring parameters (sampling
 * interval, queue, discard policy, deadband) are set on the endpoint and may be overridden per node
 * or per browse root; the same resolution (`monitoringFor`) is used by the source and by the docs.
 */
import { secretFromFile } from '../../security/secrets.js';
import { readableFile } from '../../security/tls.js';
import { z } from 'zod';
import { bool, componentName, duration, int, num } from '../../core/config-types.js';

export const securityModes = ['None', 'Sign', 'SignAndEncrypt'] as const;
export const securityPolicies = ['None', 'Basic128Rsa15', 'Basic256', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'] as const;
export const qualities = ['good', 'uncertain', 'bad'] as const;

/** `nsu=<uri>;s=...`, `ns=<index>;i=...`, or a bare standard node id (`i=85`). */
const nodeIdText = z
  .string()
  .trim()
  .regex(/^((nsu=[^;]+|ns=\d+);)?(i=\d+|s=.+|g=[0-9a-fA-F-]{36}|b=.+)$/, 'expected a node id such as "nsu=http://example.com/;s=Spindle.Speed" or "ns=2;i=1001"');

const deadband = z.strictObject({
  type: z.enum(['absolute', 'percent']).describe('`absolute`: a change smaller than value is not reported; `percent`: of the node\'s EURange (the server must have one).'),
  value: num().pipe(z.number().min(0)).describe('The deadband\'s size, in the node\'s unit or in percent.'),
});

/** Monitoring parameters, all optional so that a node inherits what it does not set. */
const monitoring = {
  samplingInterval: duration.optional().describe('How often the server samples the node (default: the endpoint\'s).'),
  queueSize: int().pipe(z.number().min(1).max(100_000)).optional().describe('Values the server keeps for the node between publishes (default: the endpoint\'s).'),
  discardOldest: bool().optional().describe('When that queue is full, drop its oldest value (true) or the newest (default: the endpoint\'s).'),
  deadband: deadband.optional().describe('Report only changes larger than this (default: the endpoint\'s).'),
};

/** Where the point goes: overrides of the endpoint's measurement and tags. */
const target = {
  measurement: z.string().min(1).optional().describe('Measurement of these values (default: the endpoint\'s).'),
  tags: z.record(z.string(), z.string().min(1)).optional().describe('Tags added to these values, over the endpoint\'s.'),
};

const nodeSchema = z
  .strictObject({
    nodeId: nodeIdText.optional().describe('The node to monitor, by id ...'),
    browsePath: z.string().regex(/^\//, 'a browse path starts at the Objects folder with "/"').optional().describe('... or by browse path from the Objects folder, e.g. `/cnc:Machine01/cnc:CncSpindleList/cnc:S1/cnc:ActSpeed`.'),
    field: z.string().min(1).describe('The field the value is written to.').meta({ examples: ['spindle_speed'] }),
    ...monitoring,
    ...target,
  })
  .refine((n) => (n.nodeId === undefined) !== (n.browsePath === undefined), 'give exactly one of nodeId and browsePath');

const browseSchema = z.strictObject({
  root: z.string().min(1).describe('Folder or object whose variables are discovered (node id or browse path).'),
  fields: z.literal('variables').default('variables').describe('`variables`: every data variable below root; properties (units, ranges) only with `properties: true`.'),
  properties: bool().default(false).describe('Also take properties (engineering units, ranges) as fields.'),
  maxDepth: int().pipe(z.number().min(1).max(32)).default(8).describe('How many levels below root are browsed.'),
  separator: z.string().default('.').describe('Field names are the browse names from root joined with this.'),
  ...monitoring,
  ...target,
});

/**
 * Events and conditions (OPC UA Part 9 alarms) from one notifier: a where clause on severity and
 * event type, and the fields to select besides the defaults (events.ts).
 */
const eventsSchema = z.strictObject({
  source: z.string().min(1).default('i=2253').describe('The notifier whose events are taken (node id or browse path); the Server object (`i=2253`) gets the events of the whole server.'),
  types: z.array(z.string().min(1)).default([]).describe('Event types to take (standard names such as `AlarmConditionType`, or node ids); empty: every type. Subtypes are included.').meta({ examples: [['AlarmConditionType']] }),
  minSeverity: int().pipe(z.number().min(1).max(1000)).default(1).describe('Events below this severity (1-1000) are not sent by the server.'),
  fields: z.array(z.string().regex(/^(([A-Za-z][A-Za-z0-9_-]*:)?[^:/]+)(\/([A-Za-z][A-Za-z0-9_-]*:)?[^:/]+)*$/, 'a field is a browse path below the event, e.g. "AlarmIdentifier", "cnc:AlarmIdentifier" (namespace alias) or "LimitState/CurrentState"')).default([]).describe('Event properties selected besides EventId, EventType, SourceName, Time, Message, Severity (and for conditions ConditionName, ActiveState, AckedState, Retain), as browse paths below the event; each becomes a field named by its browse names joined with dots (`LimitState/CurrentState` -> `LimitState.CurrentState`). A namespace alias prefix (`cnc:AlarmIdentifier`) names a companion spec\'s property.'),
  measurement: z.string().min(1).default('opcua_events').describe('Measurement of these events.'),
  tags: z.record(z.string(), z.string().min(1)).optional().describe('Tags added to these events, over the endpoint\'s.'),
});

const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('anonymous').describe('How the session logs in: anonymous, username or certificate.') }),
  z
    .strictObject({ type: z.literal('username'), username: z.string().min(1).describe('User name for the session.'), password: z.string().optional().describe('Its password (or passwordFile).'), passwordFile: readableFile.optional().describe('File holding the password.') })
    .transform((a, ctx) => {
      const rest = secretFromFile(a, 'password', ctx);
      if (rest.password === undefined && !a.passwordFile) ctx.addIssue({ code: 'custom', path: ['password'], message: 'give password or passwordFile' });
      return { ...rest, password: rest.password ?? '' };
    }),
  z.strictObject({ type: z.literal('certificate'), certFile: z.string().min(1).describe('X.509 user certificate (PEM or DER).'), keyFile: z.string().min(1).describe('Its private key.') }),
]);

export const endpointSchema = z
  .strictObject({
    name: componentName.describe('The endpoint\'s name: its component name in the status and the `endpoint` of registry bindings.').meta({ examples: ['cnc-01'] }),
    url: z.string().regex(/^opc\.tcp:\/\/[^/\s]+/, 'expected an opc.tcp://host:port URL').describe('The server\'s address.').meta({ examples: ['opc.tcp://127.0.0.1:4840'] }),
    securityMode: z.enum([...securityModes, 'auto']).default('auto').describe('`auto` (the default): the strongest endpoint the server offers (SignAndEncrypt before Sign before None; Aes256_Sha256_RsaPss, Aes128_Sha256_RsaOaep, Basic256Sha256; the deprecated Basic128Rsa15 and Basic256 never chosen), and never weaker than chosen earlier in this run.'),
    securityPolicy: z.enum(securityPolicies).optional().describe('With a fixed securityMode: the policy (`None` goes with mode `None`).'),
    auth: authSchema.default({ type: 'anonymous' }).describe('How the session logs in: `{ type: anonymous }`, `{ type: username, username, password (or passwordFile) }` or `{ type: certificate, certFile, keyFile }`.'),
    allowPasswordOverInsecureChannel: bool().default(false).describe('Sending a password over a channel without encryption has to be asked for by name.'),
    namespaces: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/), z.string().min(1)).default({}).describe('Aliases usable as namespace prefixes in browse paths: `{ cnc: "http://opcfoundation.org/UA/CNC" }`.'),
    measurement: z.string().min(1).default('opcua').describe('Measurement of the values; nodes and browse roots may set their own.'),
    tags: z.record(z.string(), z.string().min(1)).default({}).describe('Tags on every value of this endpoint; nodes and browse roots may add their own.'),
    timestamp: z.enum(['source', 'server', 'gateway']).default('source').describe('Which timestamp becomes the point\'s time; a missing one falls back to the next (server, then arrival).'),
    accept: z.array(z.enum(qualities)).min(1).default(['good', 'uncertain', 'bad']).describe('Values of these qualities are written; the others are counted as dropped.'),
    qualityTag: z.string().default('quality').describe('Tag carrying good / uncertain / bad on every point; empty string to leave it out.'),
    mode: z.enum(['subscribe', 'poll']).default('subscribe').describe('`subscribe`: the server reports changes; `poll`: every node is read every pollInterval (servers without subscriptions).'),
    pollInterval: duration.default(1000).describe('How often all nodes are read in poll mode.'),
    publishingInterval: duration.default(1000).describe('How often the server sends what its subscription collected.'),
    samplingInterval: duration.default(1000).describe('Default for every node: how often the server samples it.'),
    queueSize: int().pipe(z.number().min(1).max(100_000)).default(10).describe('Default for every node: values the server keeps between publishes; a cut up to queueSize x samplingInterval loses none.'),
    discardOldest: bool().default(true).describe('Default for every node: when its queue is full, drop the oldest value.'),
    deadband: deadband.optional().describe('Default for every node: report only changes larger than this.'),
    maxArrayLength: int().pipe(z.number().min(0).max(10_000)).default(64).describe('Arrays become `field[0]`, `field[1]` ... up to this length; longer ones are dead-lettered.'),
    reconnect: z
      .strictObject({ initialDelay: duration.default(500).describe('First wait after a connection is lost.'), maxDelay: duration.default(30_000).describe('Longest wait between attempts.') })
      .prefault({}).describe('Reconnect backoff: doubles from initialDelay up to maxDelay, full jitter, never gives up.'),
    noDataTimeout: duration.default(0).describe('Reconnect when no data change at all arrives for this long (0 = off; keep-alives are watched anyway).'),
    retryFailedNodes: duration.default(60_000).describe('Nodes that failed (unknown, access denied) are tried again this often while connected.'),
    backfill: z
      .strictObject({
        enabled: bool().default(true).describe('After an outage whose session was lost, read the values of the gap back from the server\'s history (nodes that historize); what cannot be read is recorded as a gap.'),
        maxAge: duration.default(3_600_000).describe('Read back at most this far into the past.'),
        maxValuesPerSecond: int().pipe(z.number().min(1)).default(10_000).describe('Pace of the history reads, in values per second.'),
      })
      .prefault({})
      .describe('Backfill of gaps from the server\'s history (HistoryRead, raw values).'),
    sessionTimeout: duration.default(30_000).describe('How long the server keeps the session through a network cut: a shorter cut is resumed without losing a value (docs/delivery.md rule 8).'),
    nodes: z.array(nodeSchema).default([]).describe('Nodes to monitor, each with its field name.').meta({ examples: [[{ nodeId: 'nsu=urn:plantgate:sim:cnc;s=cnc-01.S1-ActSpeed', field: 'spindle_speed', samplingInterval: '100ms' }]] }),
    browse: z.array(browseSchema).default([]).describe('Folders or objects whose variables are all monitored, named by their browse path.').meta({ examples: [[{ root: 'nsu=urn:plantgate:sim:cnc;s=cnc-01' }]] }),
    events: z.array(eventsSchema).default([]).describe('Events and alarms to take, per notifier; they become points in their own measurement (subscribe mode only).').meta({ examples: [[{ source: 'i=2253', types: ['AlarmConditionType'], minSeverity: 100 }]] }),
  })
  .superRefine((e, ctx) => {
    if (e.nodes.length === 0 && e.browse.length === 0 && e.events.length === 0) ctx.addIssue({ code: 'custom', path: ['nodes'], message: 'give at least one node, browse root or events entry' });
    if (e.events.length > 0 && e.mode === 'poll') ctx.addIssue({ code: 'custom', path: ['events'], message: 'events need a subscription: they cannot be polled (mode subscribe)' });
    e.events.forEach((ev, i) => {
      for (const [k, f] of ev.fields.entries()) {
        for (const part of f.split('/')) {
          const alias = part.includes(':') ? part.slice(0, part.indexOf(':')) : undefined;
          if (alias && !(alias in e.namespaces)) ctx.addIssue({ code: 'custom', path: ['events', i, 'fields', k], message: `unknown namespace alias ${JSON.stringify(alias)} (declare it under namespaces)` });
        }
      }
    });
    if (e.securityMode === 'auto') {
      if (e.securityPolicy) ctx.addIssue({ code: 'custom', path: ['securityPolicy'], message: 'securityMode auto chooses the policy too; give securityMode with securityPolicy, or neither' });
    } else if ((e.securityMode === 'None') !== ((e.securityPolicy ?? 'None') === 'None')) {
      ctx.addIssue({ code: 'custom', path: ['securityPolicy'], message: `securityMode ${e.securityMode} needs ${e.securityMode === 'None' ? 'securityPolicy None' : 'a securityPolicy other than None'}` });
    }
    // with auto the same rule is applied to the endpoint chosen, when connecting
    if (e.auth.type === 'username' && e.securityMode !== 'SignAndEncrypt' && e.securityMode !== 'auto' && !e.allowPasswordOverInsecureChannel) {
      ctx.addIssue({ code: 'custom', path: ['auth'], message: `a password over a ${e.securityMode} channel is readable on the network; use securityMode SignAndEncrypt or set allowPasswordOverInsecureChannel: true` });
    }
    const fields = new Map<string, number>();
    e.nodes.forEach((n, i) => {
      const key = `${n.measurement ?? e.measurement}\u0000${JSON.stringify(n.tags ?? {})}\u0000${n.field}`;
      if (fields.has(key)) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'field'], message: `field ${JSON.stringify(n.field)} is already used by nodes[${fields.get(key)}]` });
      fields.set(key, i);
    });
  });
export type EndpointConfig = z.output<typeof endpointSchema>;
export type NodeConfig = EndpointConfig['nodes'][number];
export type BrowseConfig = EndpointConfig['browse'][number];
export type EventsConfig = EndpointConfig['events'][number];

export const opcuaSchema = z
  .strictObject({
    pkiDir: z.string().min(1).optional().describe('Client certificate, trusted and rejected server certificates. Default: `pki/` next to the buffer folder.'),
    applicationName: z.string().min(1).default('plantgate').describe('Application name in the client certificate plantgate presents to servers.'),
    endpoints: z.array(endpointSchema).default([]).describe('The OPC UA servers to read, one session each.').meta({ examples: [[{ name: 'cnc-01', url: 'opc.tcp://127.0.0.1:4840', tags: { machine: 'cnc-01' }, nodes: [{ nodeId: 'nsu=urn:plantgate:sim:cnc;s=cnc-01.S1-ActSpeed', field: 'spindle_speed', samplingInterval: '100ms' }], browse: [{ root: 'nsu=urn:plantgate:sim:cnc;s=cnc-01' }] }]] }),
  })
  .superRefine((o, ctx) => {
    const seen = new Set<string>();
    o.endpoints.forEach((e, i) => {
      if (seen.has(e.name)) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'name'], message: `duplicate endpoint name ${JSON.stringify(e.name)}` });
      seen.add(e.name);
    });
  });
export type OpcuaConfig = z.output<typeof opcuaSchema>;

export interface Monitoring {
  samplingInterval: number;
  queueSize: number;
  discardOldest: boolean;
  deadband?: { type: 'absolute' | 'percent'; value: number };
}

/** A node's monitoring parameters: its own, else its browse root's, else the endpoint's. */
export function monitoringFor(e: EndpointConfig, ...layers: Array<Partial<Monitoring> | undefined>): Monitoring {
  const m: Monitoring = { samplingInterval: e.samplingInterval, queueSize: e.queueSize, discardOldest: e.discardOldest, deadband: e.deadband };
  for (const l of layers) {
    if (!l) continue;
    if (l.samplingInterval !== undefined) m.samplingInterval = l.samplingInterval;
    if (l.queueSize !== undefined) m.queueSize = l.queueSize;
    if (l.discardOldest !== undefined) m.discardOldest = l.discardOldest;
    if (l.deadband !== undefined) m.deadband = l.deadband;
  }
  return m;
}
