/**
 * Sparkplug host session state (spec chapter 5), without I/O: per edge node the alias map and
 * metric definitions from its births, `bdSeq` and `seq`, online/offline of the node and each of its
 * devices, and the points each message gives. The host component around it does the MQTT, the
 * timers, the persistence and the ingest; keeping this part pure makes every rule testable alone.
 *
 * Ordering: points carry their own timestamps, so an out-of-order message is ingested at once (and
 * acknowledged once durable) instead of being held back; the seq is only used to detect loss. A seq
 * that jumps ahead marks the skipped numbers missing; if they do not arrive within the reorder
 * timeout it is a gap [tck-id-operational-behavior-host-reordering-rebirth], if they do, nothing
 * happens [tck-id-operational-behavior-host-reordering-success].
 *
 * Longer than ~400 lines on purpose: the host's rules of the specification (births, deaths, seq,
 * aliases, rebirth requests) stay in one place, each next to the TCK assertion it implements.
 */
import { RejectedInput } from '../../core/errors.js';
import type { FieldValue, Point, Quality } from '../../core/point.js';
import { DataType, valueOf, type Metric, type Payload, type PropertySet, type Value } from './codec.js';
import type { SparkplugConfig } from './config.js';
import { displayValue, flatten, qualityOf, splitName } from './mapping.js';
import type { SparkplugTopic } from './topic.js';
import type { DropReason } from '../../core/reasons.js';

export interface MetricDef {
  name: string;
  datatype: DataType;
  alias?: string;
  properties?: PropertySet;
  lastAt?: number;
  value?: string;
  stale: boolean;
}

export interface DeviceState {
  device: string;
  online: boolean;
  since: number;
  births: number;
  deaths: number;
  metrics: Map<string, MetricDef>;
}

export interface NodeState {
  group: string;
  edge: string;
  /** Between a birth (or a restored state) and a death. */
  online: boolean;
  /** Alias map and definitions came from disk, not from a birth seen by this process. */
  restored: boolean;
  since: number;
  bdSeq?: bigint;
  /** Last seq seen; undefined until the first message after birth or restore. */
  seq?: number;
  aliases: Map<string, { device?: string; name: string }>;
  metrics: Map<string, MetricDef>;
  devices: Map<string, DeviceState>;
  /** seq -> deadline (epoch ms) of numbers skipped over and not yet arrived. */
  missing: Map<number, number>;
  rebirthPendingUntil: number;
  lastMessageAt: number;
  via?: string;
  stats: NodeStats;
}

export interface NodeStats {
  messages: number;
  births: number;
  deaths: number;
  gaps: number;
  reordered: number;
  duplicates: number;
  unknownAliases: number;
  dataBeforeBirth: number;
  staleDeaths: number;
  /** Incidents that call for a rebirth (in passive mode too). */
  rebirthsNeeded: number;
  /** NCMD Rebirth actually published (host). */
  rebirthsRequested: number;
  /** Further triggers while a request was pending: answered by the same birth. */
  rebirthsSuppressed: number;
}

export interface Rejection {
  reason: DropReason;
  message: string;
}

export interface RebirthRequest {
  group: string;
  edge: string;
  reason: string;
  /** Transport the node was last heard on, where the NCMD goes. */
  via?: string;
}

export interface Outcome {
  points: Point[];
  rejections: Rejection[];
  rebirths: RebirthRequest[];
  /** Alias maps or online states changed: persist before acknowledging. */
  persist: boolean;
  ignored?: DropReason;
}

const newStats = (): NodeStats => ({ messages: 0, births: 0, deaths: 0, gaps: 0, reordered: 0, duplicates: 0, unknownAliases: 0, dataBeforeBirth: 0, staleDeaths: 0, rebirthsNeeded: 0, rebirthsRequested: 0, rebirthsSuppressed: 0 });

/** Session plumbing carried as metrics; kept in the definitions, not stored as telemetry. */
const isControl = (name: string) => name === 'bdSeq' || name.startsWith('Node Control/') || name.startsWith('Device Control/');

export class Sessions {
  readonly nodes = new Map<string, NodeState>();
  /** In a cluster: the groups this gateway owns (a message of another group is ignored); undefined: `config.groups`. */
  owned?: Set<string>;

  constructor(
    private readonly config: SparkplugConfig,
    private readonly source: string,
  ) {}

  handle(t: Exclude<SparkplugTopic, { kind: 'state' }>, p: Payload, meta: { now: number; via?: string; topic: string; clientId?: string }): Outcome {
    const out: Outcome = { points: [], rejections: [], rebirths: [], persist: false };
    if (this.owned) {
      if (!this.owned.has(t.group)) {
        out.ignored = 'group_not_owned'; // in flight while another member took the group over
        return out;
      }
    } else if (this.config.groups.length && !this.config.groups.includes(t.group)) {
      out.ignored = 'group_not_configured';
      return out;
    }
    if (t.type === 'NCMD' || t.type === 'DCMD') {
      out.ignored = 'command'; // another host's (or our own) command: not telemetry
      return out;
    }
    const key = `${t.group}/${t.edge}`;
    let node = this.nodes.get(key);
    const now = meta.now;

    if (t.type === 'NBIRTH') {
      node = this.birthNode(key, t.group, t.edge, p, now, meta.via);
      out.persist = true;
      this.values(node, undefined, p, true, meta, out);
      return out;
    }
    if (!node) {
      node = this.blankNode(t.group, t.edge, now);
      this.nodes.set(key, node);
    }
    node.stats.messages++;
    node.lastMessageAt = now;
    if (meta.via) node.via = meta.via;

    if (t.type === 'NDEATH') {
      // [tck-id-operational-behavior-edge-node-termination-host-offline...]: a death whose bdSeq does not
      // match the session's is the will of an older connection and MUST be ignored
      const bd = p.metrics.find((m) => m.name === 'bdSeq');
      const bdSeq = bd ? readBdSeq(bd) : undefined;
      if (node.bdSeq !== undefined && bdSeq !== undefined && bdSeq !== node.bdSeq) {
        node.stats.staleDeaths++;
        out.ignored = 'stale_death';
        return out;
      }
      if (node.online) {
        this.markDead(node, now);
        node.stats.deaths++;
        out.persist = true;
      }
      return out;
    }

    if (!node.online) {
      node.stats.dataBeforeBirth++;
      out.rejections.push({ reason: 'data_before_birth', message: `${t.type} from ${key}${t.kind === 'device' ? `/${t.device}` : ''} before its NBIRTH (or after its NDEATH)` });
      this.requestRebirth(node, 'data_before_birth', now, out);
      return out;
    }
    this.checkSeq(node, p.seq, now, out);

    if (t.kind === 'node') {
      // NDATA
      this.values(node, undefined, p, false, meta, out);
      return out;
    }
    let dev = node.devices.get(t.device);
    if (t.type === 'DBIRTH') {
      dev = { device: t.device, online: true, since: now, births: (dev?.births ?? 0) + 1, deaths: dev?.deaths ?? 0, metrics: new Map() };
      node.devices.set(t.device, dev);
      for (const [alias, a] of node.aliases) if (a.device === t.device) node.aliases.delete(alias);
      this.define(node, dev, p.metrics);
      out.persist = true;
      this.values(node, dev, p, true, meta, out);
      return out;
    }
    if (!dev || !dev.online) {
      if (t.type === 'DDEATH') return out;
      node.stats.dataBeforeBirth++;
      out.rejections.push({ reason: 'data_before_birth', message: `${t.type} from ${key}/${t.device} before its DBIRTH (or after its DDEATH)` });
      this.requestRebirth(node, 'device_data_before_birth', now, out);
      return out;
    }
    if (t.type === 'DDEATH') {
      dev.online = false;
      dev.since = now;
      dev.deaths++;
      for (const m of dev.metrics.values()) m.stale = true;
      out.persist = true;
      return out;
    }
    this.values(node, dev, p, false, meta, out);
    return out;
  }

  /** Gaps whose reorder timeout passed; returns the rebirth requests they cause. */
  tick(now: number): RebirthRequest[] {
    const out: Outcome = { points: [], rejections: [], rebirths: [], persist: false };
    for (const node of this.nodes.values()) {
      if (node.missing.size === 0) continue;
      let expired = false;
      for (const deadline of node.missing.values()) if (deadline <= now) expired = true;
      if (!expired) continue;
      node.stats.gaps++;
      node.missing.clear();
      this.requestRebirth(node, 'seq_gap', now, out);
    }
    return out.rebirths;
  }

  private birthNode(key: string, group: string, edge: string, p: Payload, now: number, via?: string): NodeState {
    const prev = this.nodes.get(key);
    const node = this.blankNode(group, edge, now);
    node.stats = prev?.stats ?? node.stats;
    node.stats.births++;
    node.stats.messages++;
    node.online = true;
    node.lastMessageAt = now;
    node.via = via ?? prev?.via;
    node.seq = p.seq;
    const bd = p.metrics.find((m) => m.name === 'bdSeq');
    if (bd) node.bdSeq = readBdSeq(bd);
    // a new NBIRTH invalidates the devices' births too: they are offline until their DBIRTH
    for (const d of prev?.devices.values() ?? []) {
      for (const m of d.metrics.values()) m.stale = true;
      node.devices.set(d.device, { ...d, online: false, since: now });
    }
    this.define(node, undefined, p.metrics);
    this.nodes.set(key, node);
    return node;
  }

  private blankNode(group: string, edge: string, now: number): NodeState {
    return { group, edge, online: false, restored: false, since: now, aliases: new Map(), metrics: new Map(), devices: new Map(), missing: new Map(), rebirthPendingUntil: 0, lastMessageAt: now, stats: newStats() };
  }

  private define(node: NodeState, dev: DeviceState | undefined, metrics: Metric[]): void {
    const defs = dev ? dev.metrics : node.metrics;
    for (const m of metrics) {
      // a metric without name or type cannot be defined; values() reports it, once
      if (m.name === undefined || m.datatype === undefined) continue;
      const def: MetricDef = { name: m.name, datatype: m.datatype, stale: false };
      if (m.properties) def.properties = m.properties;
      if (m.alias !== undefined) {
        def.alias = m.alias.toString();
        node.aliases.set(def.alias, dev ? { device: dev.device, name: m.name } : { name: m.name });
      }
      defs.set(m.name, def);
    }
  }

  private markDead(node: NodeState, now: number): void {
    node.online = false;
    node.since = now;
    node.missing.clear();
    for (const m of node.metrics.values()) m.stale = true;
    for (const d of node.devices.values()) {
      d.online = false;
      d.since = now;
      for (const m of d.metrics.values()) m.stale = true;
    }
  }

  private checkSeq(node: NodeState, seq: number | undefined, now: number, out: Outcome): void {
    if (seq === undefined || seq < 0 || seq > 255) {
      out.rejections.push({ reason: 'sparkplug_bad_seq', message: `${node.group}/${node.edge}: seq ${seq ?? 'missing'} (must be 0..255)` });
      return;
    }
    if (node.seq === undefined) {
      node.seq = seq; // first message after a restore: the baseline, nothing to compare with
      return;
    }
    const ahead = (seq - node.seq) & 255;
    if (ahead === 1) {
      node.seq = seq;
      return;
    }
    if (node.missing.delete(seq)) {
      node.stats.reordered++; // a late one the reorder window was waiting for
      return;
    }
    if (ahead === 0 || ahead > 128) {
      node.stats.duplicates++; // behind us: a redelivery, not news
      return;
    }
    const deadline = now + this.config.reorderTimeout;
    for (let s = (node.seq + 1) & 255; s !== seq; s = (s + 1) & 255) node.missing.set(s, deadline);
    node.seq = seq;
    if (this.config.reorderTimeout === 0) {
      node.stats.gaps++;
      node.missing.clear();
      this.requestRebirth(node, 'seq_gap', now, out);
    }
  }

  private requestRebirth(node: NodeState, reason: string, now: number, out: Outcome): void {
    if (this.config.mode === 'passive') {
      // nothing is sent, so no birth will answer: every incident is reported on its own
      node.stats.rebirthsNeeded++;
      out.rebirths.push({ group: node.group, edge: node.edge, reason, via: node.via });
      return;
    }
    if (node.rebirthPendingUntil > now) {
      node.stats.rebirthsSuppressed++; // one request per incident; the birth answers them all
      return;
    }
    node.rebirthPendingUntil = now + this.config.rebirthTimeout;
    node.stats.rebirthsNeeded++;
    out.rebirths.push({ group: node.group, edge: node.edge, reason, via: node.via });
  }

  /** Metrics of one message -> points, definitions updated. */
  private values(node: NodeState, dev: DeviceState | undefined, p: Payload, birth: boolean, meta: { now: number; topic: string; clientId?: string }, out: Outcome): void {
    const defs = dev ? dev.metrics : node.metrics;
    const byKey = new Map<string, Point>();
    const tags: Record<string, string> = { group: node.group, edge_node: node.edge };
    if (dev) tags.device = dev.device;
    const origin = meta.clientId === undefined ? { topic: meta.topic } : { topic: meta.topic, clientId: meta.clientId };
    const { separator, measurementLevels } = this.config.metricPath;
    let unknownAlias = false;

    for (const m of p.metrics) {
      let def: MetricDef | undefined;
      if (m.name !== undefined) def = defs.get(m.name);
      else if (m.alias !== undefined) {
        const a = node.aliases.get(m.alias.toString());
        if (a && a.device === dev?.device) def = defs.get(a.name);
        if (!def) {
          node.stats.unknownAliases++;
          unknownAlias = true;
          out.rejections.push({ reason: 'unknown_alias', message: `${node.group}/${node.edge}${dev ? `/${dev.device}` : ''}: alias ${m.alias} is not in the birth certificate` });
          continue;
        }
      }
      const name = m.name ?? def?.name;
      const type = m.datatype ?? def?.datatype;
      if (name === undefined || type === undefined) {
        out.rejections.push({ reason: 'sparkplug_bad_metric', message: `metric without name${m.alias === undefined ? ' or alias' : ''} or datatype` });
        continue;
      }
      let value: Value;
      let fields: [string, FieldValue][];
      try {
        value = valueOf(m, type);
        fields = isControl(name) || (m.isTransient && !this.config.storeTransient) ? [] : flatten(name, type, value, this.config);
      } catch (err) {
        if (!(err instanceof RejectedInput)) throw err;
        out.rejections.push({ reason: err.reason, message: `${node.group}/${node.edge}${dev ? `/${dev.device}` : ''} metric ${name}: ${err.message}` });
        continue;
      }
      const time = m.timestamp ?? p.timestamp ?? meta.now;
      if (def && !m.isHistorical) {
        // historical values fill the past; they must not replace the live value [spec 6.4.x is_historical]
        def.lastAt = time;
        def.value = displayValue(value);
        def.stale = false;
      } else if (!def && !birth) {
        // a name not in the birth: data, but the definitions are incomplete
        defs.set(name, { name, datatype: type, lastAt: time, value: displayValue(value), stale: false });
      }
      if (fields.length === 0) continue;
      const q = qualityOf(m.properties ?? def?.properties);
      const { measurement, field } = splitName(name, this.config.measurement, separator, measurementLevels);
      const pk = `${measurement}\u0000${time}\u0000${q.quality}`;
      let pt = byKey.get(pk);
      if (!pt) {
        pt = { measurement, tags: { ...tags, quality: q.quality }, fields: {}, time, receivedAt: meta.now, quality: q.quality as Quality, source: this.source, origin };
        byKey.set(pk, pt);
        out.points.push(pt);
      }
      if (q.code) pt.qualityCode = q.code;
      for (const [f, v] of fields) pt.fields[f === name ? field : field + f.slice(name.length)] = v;
    }
    if (unknownAlias) this.requestRebirth(node, 'unknown_alias', meta.now, out);
  }

  // ---- persistence ----------------------------------------------------------------------------

  snapshot(): PersistedState {
    return {
      version: 1,
      nodes: [...this.nodes.values()]
        .filter((n) => n.metrics.size || n.devices.size)
        .map((n) => ({
          group: n.group,
          edge: n.edge,
          online: n.online,
          since: n.since,
          bdSeq: n.bdSeq?.toString(),
          metrics: [...n.metrics.values()].map(persistDef),
          devices: [...n.devices.values()].map((d) => ({ device: d.device, online: d.online, since: d.since, metrics: [...d.metrics.values()].map(persistDef) })),
        })),
    };
  }

  restore(state: PersistedState): void {
    for (const n of state.nodes) {
      const node = this.blankNode(n.group, n.edge, n.since);
      node.online = n.online;
      node.restored = true;
      if (n.bdSeq !== undefined) node.bdSeq = BigInt(n.bdSeq);
      const load = (defs: Map<string, MetricDef>, list: PersistedDef[], device?: string) => {
        for (const d of list) {
          const def: MetricDef = { name: d.name, datatype: d.datatype, stale: !n.online };
          if (d.alias !== undefined) {
            def.alias = d.alias;
            node.aliases.set(d.alias, device === undefined ? { name: d.name } : { device, name: d.name });
          }
          defs.set(d.name, def);
        }
      };
      load(node.metrics, n.metrics);
      for (const d of n.devices) {
        const dev: DeviceState = { device: d.device, online: d.online && n.online, since: d.since, births: 0, deaths: 0, metrics: new Map() };
        load(dev.metrics, d.metrics, d.device);
        node.devices.set(d.device, dev);
      }
      this.nodes.set(`${n.group}/${n.edge}`, node);
    }
  }
}

interface PersistedDef {
  name: string;
  datatype: DataType;
  alias?: string;
}

export interface PersistedState {
  version: 1;
  nodes: { group: string; edge: string; online: boolean; since: number; bdSeq?: string; metrics: PersistedDef[]; devices: { device: string; online: boolean; since: number; metrics: PersistedDef[] }[] }[];
}

const persistDef = (d: MetricDef): PersistedDef => (d.alias === undefined ? { name: d.name, datatype: d.datatype } : { name: d.name, datatype: d.datatype, alias: d.alias });

function readBdSeq(m: Metric): bigint | undefined {
  try {
    const v = valueOf(m, m.datatype ?? DataType.Int64);
    return typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(Math.trunc(v)) : undefined;
  } catch {
    return undefined;
  }
}
