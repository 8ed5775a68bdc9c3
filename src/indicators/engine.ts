/**
 * The indicator engine: measures the 2023 targets of the Liaoning plan from the live stream
 * (docs/indicators.md), not from what InfluxDB stored; with `scope: fleet` it adds the presence
 * records the fleet's gateways wrote (fleet.ts). It watches accepted points (a pipeline tap), binds
 * them to equipment in the registry, and at any moment computes, for the configured window:
 *
 *  nc_rate               per enterprise: key processes with at least one bound CNC/PLC that sent
 *                        valid (not bad-quality) data in the window / key processes; city and region
 *                        = unweighted mean of enterprise rates (the official form); nc_rate_pooled
 *                        beside it = all covered processes / all key processes.
 *  robot_density         robots that reported in the window / manufacturing employees x 10,000,
 *                        with robot_density_installed (registry) and robot_density_active
 *                        (reporting, in automatic mode, no stop latched) beside it.
 *  internet_access       regulated enterprises with at least one bound device reporting / all
 *                        regulated enterprises of the registry.
 *  networked_share       registered digital equipment that reported / registered digital equipment.
 *  key_links_digitalised, rd_design_tools, networked_collaboration: not measurable from telemetry;
 *                        the share of regulated enterprises that declare them, labelled declared.
 *
 * Measured values are lower bounds of the declared ones: an unconnected CNC machine is still
 * numerically controlled. Every value carries its window, numerator, denominator and gap to target.
 *
 * Longer than ~400 lines on purpose: every definition above is computed in one function, so each
 * can be read against docs/indicators.md in one place.
 */
import { BaseComponent } from '../core/component.js';
import type { Point } from '../core/point.js';
import type { Source, SourceContext } from '../sources/source.js';
import type { IndicatorsConfig } from './config.js';
import type { FleetView } from './fleet.js';
import type { Binding, Enterprise, Equipment, Registry, Targets } from './registry.js';

export type Scope = 'region' | 'city' | 'enterprise';

export interface IndicatorValue {
  indicator: string;
  kind: 'measured' | 'declared' | 'registry';
  scope: Scope;
  scopeId: string;
  scopeName: string;
  value: number | null;
  numerator: number;
  denominator: number;
  unit: 'ratio' | 'per_10k' | 'count';
  target?: number;
  /** value - target (negative: short of the target). */
  gap?: number;
  windowMs: number;
  computedAt: number;
}

interface Seen {
  lastValidAt: number;
  /** Robots: last reported mode and stops. */
  mode?: string;
  stopLatched?: boolean;
}

export interface Unregistered {
  key: string;
  source: string;
  measurement: string;
  lastSeenAt: number;
  points: number;
}

const UNREGISTERED_MAX = 1000;
const CACHE_MAX = 50_000;

export class IndicatorEngine extends BaseComponent implements Source {
  readonly kind = 'source' as const;
  readonly type = 'indicator-engine';
  /** Its points are the indicators, computed from what the other sources took in. */
  override readonly derived = true as const;
  private readonly seen = new Map<string, Seen>();
  private readonly unregistered = new Map<string, Unregistered>();
  private readonly byClientId = new Map<string, Equipment[]>();
  private readonly byTopic = new Map<string, Equipment[]>();
  private readonly byEndpoint = new Map<string, Equipment[]>();
  private readonly byTags: Equipment[] = [];
  /** binding key of a point -> equipment bound to it (bounded). */
  private readonly cache = new Map<string, Equipment[]>();
  private timer?: NodeJS.Timeout;
  private fleetTimer?: NodeJS.Timeout;
  /** With scope fleet: the lastValidAt of each equipment's last presence record written. */
  private readonly presenceWritten = new Map<string, number>();
  private lastSnapshot?: IndicatorValue[];
  private published = 0;

  constructor(
    name: string,
    private config: IndicatorsConfig,
    private registryData: Registry,
    private targetsData: Targets,
    private readonly ctx?: SourceContext,
    /** Scope fleet: the fleet's presence records, and this gateway's instance name for its own. */
    private readonly fleet?: { view: FleetView; instance: string },
  ) {
    super(name);
    this.index();
  }

  get scope(): IndicatorsConfig['scope'] {
    return this.fleet ? 'fleet' : 'local';
  }

  /** Scope fleet: the gateways whose presence records fall in the window. */
  get contributors(): string[] | undefined {
    return this.fleet?.view.status.contributors;
  }

  /** How far back equipment counts as reporting (ms). */
  get window(): number {
    return this.config.window;
  }

  get registry(): Registry {
    return this.registryData;
  }

  get targets(): Targets {
    return this.targetsData;
  }

  /**
   * A new registry, targets or settings (a reload), in place: what was heard from equipment that
   * is still registered keeps counting, so the values do not drop to zero and climb back.
   */
  reconfigure(config: IndicatorsConfig, registry: Registry, targets: Targets): void {
    const republish = config.publishInterval !== this.config.publishInterval;
    this.config = config;
    this.registryData = registry;
    this.targetsData = targets;
    this.index();
    const ids = new Set(registry.enterprises.flatMap((e) => e.equipment.map((q) => q.id)));
    for (const id of this.seen.keys()) if (!ids.has(id)) this.seen.delete(id);
    if (republish && this.state !== 'stopped') {
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      this.schedule();
    }
  }

  private index(): void {
    this.byClientId.clear();
    this.byTopic.clear();
    this.byEndpoint.clear();
    this.byTags.length = 0;
    this.cache.clear();
    for (const e of this.registryData.enterprises) {
      for (const q of e.equipment) {
        const s = q.source;
        if (!s) continue;
        // index by the most selective criterion; the rest are checked in matches()
        if (s.clientId) push(this.byClientId, s.clientId, q);
        else if (s.topic) push(this.byTopic, s.topic, q);
        else if (s.endpoint) push(this.byEndpoint, s.endpoint, q);
        else this.byTags.push(q);
      }
    }
  }

  protected async doStart(): Promise<void> {
    this.schedule();
  }

  private schedule(): void {
    if (this.config.publishInterval > 0 && this.ctx) {
      this.timer = setInterval(() => void this.publish(), this.config.publishInterval);
      this.timer.unref();
    }
    if (this.fleet && !this.fleetTimer) {
      void this.fleetTick();
      this.fleetTimer = setInterval(() => void this.fleetTick(), this.config.presenceInterval);
      this.fleetTimer.unref();
    }
  }

  /** Writes this gateway's presence records, then reads the fleet's. */
  async fleetTick(now = Date.now()): Promise<void> {
    if (!this.fleet) return;
    await this.writePresence();
    await this.fleet.view.refresh(now - this.config.window);
  }

  /** One record per equipment heard from since the last one (its time: the last valid data). */
  private async writePresence(): Promise<void> {
    if (!this.fleet || !this.ctx) return;
    const points: Point[] = [];
    for (const [id, s] of this.seen) {
      if (this.presenceWritten.get(id) === s.lastValidAt) continue;
      const fields: Point['fields'] = { lastValidAt: s.lastValidAt };
      if (s.mode !== undefined) fields.mode = s.mode;
      if (s.stopLatched !== undefined) fields.stopLatched = s.stopLatched;
      points.push({ measurement: this.fleet.view.measurement, tags: { equipment: id, instance: this.fleet.instance }, fields, time: s.lastValidAt, receivedAt: Date.now(), quality: 'good', source: this.name });
    }
    if (!points.length) return;
    try {
      await this.ctx.ingest(points, this.name);
      for (const p of points) this.presenceWritten.set(p.tags.equipment!, p.time);
      this.counters.written += points.length;
    } catch (err) {
      this.recordError(err);
    }
  }

  /** What is known of one equipment: heard here, or (scope fleet) recorded by any gateway, whichever is later. */
  private seenOf(id: string): Seen | undefined {
    const local = this.seen.get(id);
    const remote = this.fleet?.view.get(id);
    if (!remote) return local;
    if (!local) return remote;
    return remote.lastValidAt > local.lastValidAt ? remote : local;
  }

  protected async doStop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.fleetTimer) clearInterval(this.fleetTimer);
    this.timer = undefined;
    this.fleetTimer = undefined;
  }

  /** Pipeline tap: sees every accepted point. */
  observe(points: readonly Point[]): void {
    for (const p of points) {
      if (p.source === this.name) continue;
      const eqs = this.bind(p);
      if (eqs.length === 0) {
        this.noteUnregistered(p);
        continue;
      }
      if (p.quality === 'bad') continue;
      for (const q of eqs) {
        let s = this.seen.get(q.id);
        if (!s) this.seen.set(q.id, (s = { lastValidAt: 0 }));
        s.lastValidAt = Math.max(s.lastValidAt, p.receivedAt);
        if (q.class === 'robot') this.noteRobotState(s, p);
      }
      this.counters.received++;
      this.lastValueAt = p.receivedAt;
    }
  }

  private bind(p: Point): Equipment[] {
    const o = p.origin;
    let key = `${o?.clientId ?? ''}\u0000${o?.topic ?? ''}\u0000${o?.endpoint ?? ''}\u0000${p.measurement}`;
    for (const k of Object.keys(p.tags).sort()) key += `\u0000${k}=${p.tags[k]}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const candidates = [
      ...(o?.clientId ? (this.byClientId.get(o.clientId) ?? []) : []),
      ...(o?.topic ? (this.byTopic.get(o.topic) ?? []) : []),
      ...(o?.endpoint ? (this.byEndpoint.get(o.endpoint) ?? []) : []),
      ...this.byTags,
    ];
    const found = candidates.filter((q) => matches(q.source!, p));
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, found);
    return found;
  }

  private noteRobotState(s: Seen, p: Point): void {
    const r = this.config.robot;
    const mode = p.fields[r.modeField];
    if (typeof mode === 'string') s.mode = mode;
    let reported = false;
    let latched = false;
    for (const f of r.stopFields) {
      const v = p.fields[f];
      if (v === undefined) continue;
      reported = true;
      if (v === true || v === 1 || v === 1n || v === 'true') latched = true;
    }
    if (reported) s.stopLatched = latched;
  }

  private noteUnregistered(p: Point): void {
    const o = p.origin;
    // named as an operator would look for it in the registry's source selectors
    const t = p.tags;
    const key = o?.clientId
      ? `mqtt client ${o.clientId}`
      : o?.endpoint
        ? `opcua ${o.endpoint}`
        : t.group && t.edge_node
          ? `sparkplug ${t.group}/${t.edge_node}${t.device ? `/${t.device}` : ''}`
          : o?.topic
            ? `topic ${o.topic}`
            : `${p.measurement} ${Object.entries(t).map(([k, v]) => `${k}=${v}`).join(',')}`;
    let u = this.unregistered.get(key);
    if (!u) {
      if (this.unregistered.size >= UNREGISTERED_MAX) this.unregistered.delete(this.unregistered.keys().next().value!);
      u = { key, source: p.source, measurement: p.measurement, lastSeenAt: 0, points: 0 };
      this.unregistered.set(key, u);
    }
    u.points++;
    u.lastSeenAt = Math.max(u.lastSeenAt, p.receivedAt);
  }

  private reporting(q: Equipment, since: number): boolean {
    return (this.seenOf(q.id)?.lastValidAt ?? 0) >= since;
  }

  private active(q: Equipment, since: number): boolean {
    if (!this.reporting(q, since)) return false;
    const s = this.seenOf(q.id)!;
    return s.mode !== undefined && this.config.robot.automatic.includes(s.mode) && s.stopLatched !== true;
  }

  /** Every indicator for every scope, as of `now`. */
  compute(now = Date.now()): IndicatorValue[] {
    const w = this.config.window;
    const since = now - w;
    const T = this.targets.targets;
    const out: IndicatorValue[] = [];
    const v = (indicator: string, kind: IndicatorValue['kind'], unit: IndicatorValue['unit'], scope: Scope, scopeId: string, scopeName: string, numerator: number, denominator: number, value: number | null, target?: number) => {
      const iv: IndicatorValue = { indicator, kind, scope, scopeId, scopeName, value, numerator, denominator, unit, windowMs: w, computedAt: now };
      if (target !== undefined) {
        iv.target = target;
        if (value !== null) iv.gap = value - target;
      }
      out.push(iv);
    };
    const ratio = (n: number, d: number) => (d > 0 ? n / d : null);

    const groups: { scope: Scope; id: string; name: string; ents: Enterprise[] }[] = [];
    groups.push({ scope: 'region', id: 'region', name: this.registry.region.name, ents: this.registry.enterprises });
    const cities = new Map<string, Enterprise[]>();
    for (const e of this.registry.enterprises) push(cities, e.city, e);
    for (const [city, ents] of [...cities].sort((a, b) => a[0].localeCompare(b[0]))) groups.push({ scope: 'city', id: city, name: city, ents });
    for (const e of this.registry.enterprises) groups.push({ scope: 'enterprise', id: e.id, name: e.name, ents: [e] });

    for (const g of groups) {
      // NC rate of key processes (equipment-manufacturing enterprises with key processes)
      const ncEnts = g.ents.filter((e) => e.equipmentManufacturing && e.keyProcesses.length > 0);
      if (ncEnts.length) {
        let rateSum = 0;
        let covered = 0;
        let processes = 0;
        for (const e of ncEnts) {
          const c = e.keyProcesses.filter((kp) => e.equipment.some((q) => q.process === kp.id && (q.class === 'cnc' || q.class === 'plc') && this.reporting(q, since))).length;
          covered += c;
          processes += e.keyProcesses.length;
          rateSum += c / e.keyProcesses.length;
        }
        if (g.scope === 'enterprise') {
          v('nc_rate', 'measured', 'ratio', g.scope, g.id, g.name, covered, processes, ratio(covered, processes), T.ncRateKeyProcesses);
        } else {
          v('nc_rate', 'measured', 'ratio', g.scope, g.id, g.name, rateSum, ncEnts.length, ratio(rateSum, ncEnts.length), T.ncRateKeyProcesses);
          v('nc_rate_pooled', 'measured', 'ratio', g.scope, g.id, g.name, covered, processes, ratio(covered, processes), T.ncRateKeyProcesses);
        }
      }

      // robots
      const employees = g.ents.reduce((n, e) => n + e.employees, 0);
      const robots = g.ents.flatMap((e) => e.equipment.filter((q) => q.class === 'robot'));
      const reporting = robots.filter((q) => this.reporting(q, since)).length;
      const active = robots.filter((q) => this.active(q, since)).length;
      const per10k = (n: number) => (employees > 0 ? (n / employees) * 10_000 : null);
      v('robot_density', 'measured', 'per_10k', g.scope, g.id, g.name, reporting, employees, per10k(reporting), T.robotsPer10k);
      v('robot_density_active', 'measured', 'per_10k', g.scope, g.id, g.name, active, employees, per10k(active), T.robotsPer10k);
      v('robot_density_installed', 'registry', 'per_10k', g.scope, g.id, g.name, robots.length, employees, per10k(robots.length), T.robotsPer10k);
      v('robots_reporting', 'measured', 'count', g.scope, g.id, g.name, reporting, robots.length, reporting);
      v('robots_active', 'measured', 'count', g.scope, g.id, g.name, active, robots.length, active);

      // industrial-internet access of regulated enterprises
      const regulated = g.ents.filter((e) => e.regulated);
      if (regulated.length) {
        const connected = regulated.filter((e) => e.equipment.some((q) => q.source && this.reporting(q, since))).length;
        v('internet_access', 'measured', 'ratio', g.scope, g.id, g.name, connected, regulated.length, ratio(connected, regulated.length), T.industrialInternetAccess);
        for (const [indicator, key, target] of [
          ['key_links_digitalised', 'keyLinksDigitalised', T.keyLinksDigitalised],
          ['rd_design_tools', 'rdDesignTools', T.rdDesignTools],
          ['networked_collaboration', 'networkedCollaboration', T.networkedCollaboration],
        ] as const) {
          const yes = regulated.filter((e) => e.declared[key] === true).length;
          v(indicator, 'declared', 'ratio', g.scope, g.id, g.name, yes, regulated.length, ratio(yes, regulated.length), target);
        }
      }

      // networked share of digital equipment
      const digital = g.ents.flatMap((e) => e.equipment.filter((q) => q.digital));
      if (digital.length) {
        const networked = digital.filter((q) => this.reporting(q, since)).length;
        v('networked_share', 'measured', 'ratio', g.scope, g.id, g.name, networked, digital.length, ratio(networked, digital.length));
      }
    }
    this.lastSnapshot = out;
    return out;
  }

  snapshot(now = Date.now()) {
    return {
      region: this.registry.region.name,
      window: this.config.window,
      scope: this.scope,
      fleet: this.fleet?.view.status,
      targets: this.targets,
      computedAt: now,
      values: this.compute(now),
      unregistered: [...this.unregistered.values()].sort((a, b) => b.lastSeenAt - a.lastSeenAt).slice(0, 100),
    };
  }

  /** Writes the current values to InfluxDB through the pipeline (measurement `indicator`). */
  async publish(now = Date.now()): Promise<void> {
    if (!this.ctx) return;
    const points: Point[] = [];
    // scope fleet: every member writes the same values at the same aligned time, with no tag of its
    // own, so several writers overwrite one another instead of counting twice
    const time = this.fleet ? Math.floor(now / this.config.publishInterval) * this.config.publishInterval : now;
    for (const iv of this.compute(now)) {
      if (iv.value === null) continue;
      const fields: Point['fields'] = { value: iv.value, numerator: iv.numerator, denominator: iv.denominator, window_s: iv.windowMs / 1000 };
      if (iv.target !== undefined) fields.target = iv.target;
      if (iv.gap !== undefined) fields.gap = iv.gap;
      points.push({
        measurement: this.config.measurement,
        tags: { indicator: iv.indicator, kind: iv.kind, scope: iv.scope, scope_id: iv.scopeId },
        fields,
        time,
        receivedAt: now,
        quality: 'good',
        source: this.name,
      });
    }
    try {
      await this.ctx.ingest(points, this.name);
      this.counters.written += points.length;
      this.published++;
    } catch (err) {
      this.recordError(err);
    }
  }

  override details() {
    const now = Date.now();
    const since = now - this.config.window;
    const all = this.registry.enterprises.flatMap((e) => e.equipment);
    return {
      window: this.config.window,
      scope: this.scope,
      contributors: this.contributors,
      fleetError: this.fleet?.view.status.lastError,
      enterprises: this.registry.enterprises.length,
      equipment: all.length,
      equipmentReporting: all.filter((q) => this.reporting(q, since)).length,
      unregisteredDevices: [...this.unregistered.values()].filter((u) => u.lastSeenAt >= since).length,
      // the names, so an operator can add them to the registry (a few: the full list is in /api/indicators)
      unregistered: [...this.unregistered.values()].filter((u) => u.lastSeenAt >= since).slice(0, 10).map((u) => ({ key: u.key, source: u.source, lastSeenAt: u.lastSeenAt })),
      publishes: this.published,
      lastComputedAt: this.lastSnapshot?.[0]?.computedAt,
    };
  }
}

function matches(b: Binding, p: Point): boolean {
  const o = p.origin;
  if (b.clientId !== undefined && o?.clientId !== b.clientId) return false;
  if (b.topic !== undefined && o?.topic !== b.topic) return false;
  if (b.endpoint !== undefined && o?.endpoint !== b.endpoint) return false;
  if (b.tags) for (const k in b.tags) if (p.tags[k] !== b.tags[k]) return false;
  return true;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
