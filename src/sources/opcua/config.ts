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
  type: z.enum(['absolute', 'percent']),
  value: num().pipe(z.number().min(0)),
});

/** Monitoring parameters, all optional so that a node inherits what it does not set. */
const monitoring = {
  samplingInterval: duration.optional(),
  queueSize: int().pipe(z.number().min(1).max(100_000)).optional(),
  discardOldest: bool().optional(),
  deadband: deadband.optional(),
};

/** Where the point goes: overrides of the endpoint's measurement and tags. */
const target = {
  measurement: z.string().min(1).optional(),
  tags: z.record(z.string(), z.string().min(1)).optional(),
};

const nodeSchema = z
  .strictObject({
    /** The node to monitor, by id ... */
    nodeId: nodeIdText.optional(),
    /** ... or by browse path from the Objects folder, e.g. `/cnc:Machine01/cnc:CncSpindleList/cnc:S1/cnc:ActSpeed`. */
    browsePath: z.string().regex(/^\//, 'a browse path starts at the Objects folder with "/"').optional(),
    field: z.string().min(1),
    ...monitoring,
    ...target,
  })
  .refine((n) => (n.nodeId === undefined) !== (n.browsePath === undefined), 'give exactly one of nodeId and browsePath');

const browseSchema = z.strictObject({
  /** Folder or object whose variables are discovered (node id or browse path). */
  root: z.string().min(1),
  /** `variables`: every data variable below root; properties (units, ranges) only with `properties: true`. */
  fields: z.literal('variables').default('variables'),
  properties: bool().default(false),
  maxDepth: int().pipe(z.number().min(1).max(32)).default(8),
  /** Field names are the browse names from root joined with this. */
  separator: z.string().default('.'),
  ...monitoring,
  ...target,
});

const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('anonymous') }),
  z
    .strictObject({ type: z.literal('username'), username: z.string().min(1), password: z.string().optional(), passwordFile: readableFile.optional() })
    .transform((a, ctx) => {
      const rest = secretFromFile(a, 'password', ctx);
      if (rest.password === undefined && !a.passwordFile) ctx.addIssue({ code: 'custom', path: ['password'], message: 'give password or passwordFile' });
      return { ...rest, password: rest.password ?? '' };
    }),
  z.strictObject({ type: z.literal('certificate'), certFile: z.string().min(1), keyFile: z.string().min(1) }),
]);

export const endpointSchema = z
  .strictObject({
    name: componentName,
    url: z.string().regex(/^opc\.tcp:\/\/[^/\s]+/, 'expected an opc.tcp://host:port URL'),
    /**
     * `auto` (the default): the strongest endpoint the server offers (SignAndEncrypt before Sign
     * before None; Aes256_Sha256_RsaPss, Aes128_Sha256_RsaOaep, Basic256Sha256; the deprecated
     * Basic128Rsa15 and Basic256 never chosen), and never weaker than chosen earlier in this run.
     */
    securityMode: z.enum([...securityModes, 'auto']).default('auto'),
    securityPolicy: z.enum(securityPolicies).optional(),
    auth: authSchema.default({ type: 'anonymous' }),
    /** Sending a password over a channel without encryption has to be asked for by name. */
    allowPasswordOverInsecureChannel: bool().default(false),
    /** Aliases usable as namespace prefixes in browse paths: `{ cnc: "http://opcfoundation.org/UA/CNC" }`. */
    namespaces: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/), z.string().min(1)).default({}),
    measurement: z.string().min(1).default('opcua'),
    tags: z.record(z.string(), z.string().min(1)).default({}),
    /** Which timestamp becomes the point's time; a missing one falls back to the next (server, then arrival). */
    timestamp: z.enum(['source', 'server', 'gateway']).default('source'),
    /** Values of these qualities are written; the others are counted as dropped. */
    accept: z.array(z.enum(qualities)).min(1).default(['good', 'uncertain', 'bad']),
    /** Tag carrying good / uncertain / bad on every point; empty string to leave it out. */
    qualityTag: z.string().default('quality'),
    mode: z.enum(['subscribe', 'poll']).default('subscribe'),
    pollInterval: duration.default(1000),
    publishingInterval: duration.default(1000),
    samplingInterval: duration.default(1000),
    queueSize: int().pipe(z.number().min(1).max(100_000)).default(10),
    discardOldest: bool().default(true),
    deadband: deadband.optional(),
    /** Arrays become `field[0]`, `field[1]` ... up to this length; longer ones are dead-lettered. */
    maxArrayLength: int().pipe(z.number().min(0).max(10_000)).default(64),
    /** Reconnect backoff: doubles from initialDelay up to maxDelay, full jitter, never gives up. */
    reconnect: z
      .strictObject({ initialDelay: duration.default(500), maxDelay: duration.default(30_000) })
      .default({ initialDelay: 500, maxDelay: 30_000 }),
    /** Reconnect when no data change at all arrives for this long (0 = off; keep-alives are watched anyway). */
    noDataTimeout: duration.default(0),
    /** Nodes that failed (unknown, access denied) are tried again this often while connected. */
    retryFailedNodes: duration.default(60_000),
    /** Also how long the server keeps a session left behind by a network cut. */
    sessionTimeout: duration.default(30_000),
    nodes: z.array(nodeSchema).default([]),
    browse: z.array(browseSchema).default([]),
  })
  .superRefine((e, ctx) => {
    if (e.nodes.length === 0 && e.browse.length === 0) ctx.addIssue({ code: 'custom', path: ['nodes'], message: 'give at least one node or browse root' });
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

export const opcuaSchema = z
  .strictObject({
    /** Client certificate, trusted and rejected server certificates. Default: `pki/` next to the buffer folder. */
    pkiDir: z.string().min(1).optional(),
    applicationName: z.string().min(1).default('plantgate'),
    endpoints: z.array(endpointSchema).default([]),
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
