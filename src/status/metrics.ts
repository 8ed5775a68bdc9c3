/**
 * Prometheus `/metrics` through prom-client: the process and Node.js metrics it collects
 * (`plantgate_process_*`, `plantgate_nodejs_*`), build info, and the gateway's own state read from
 * the components at each scrape: every component's counters and state, buffer depth, sink
 * writes and retries, connected devices, OPC UA failing nodes, Sparkplug nodes online, dead
 * letters by reason and the indicator values. Counters of drops, dead letters and refusals are
 * there from the start at 0 for every reason plantgate knows (src/core/reasons.ts).
 * Units: `points` are what a source made and the buffer holds (one line each).
 */
import { type DetailsByType, ofKind, ofType } from './details.js';
import { readFileSync } from 'node:fs';
import client, { Counter, Gauge, Registry } from 'prom-client';
import type { ClusterStatus } from '../cluster/member.js';
import type { ComponentStatus } from '../core/component.js';
import { heapTargetState } from '../core/heap-target.js';
import { DROP_REASONS, REFUSAL_REASONS } from '../core/reasons.js';
import type { IndicatorValue } from '../indicators/engine.js';

const STATES = ['stopped', 'starting', 'running', 'degraded', 'reconnecting', 'retrying', 'paused', 'full', 'disk_error', 'stopping'] as const;
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface MetricsSource {
  components(): ComponentStatus[];
  deadLetters(): { total: number; byReason: Record<string, number> };
  indicators(): IndicatorValue[] | undefined;
  cluster?(): ClusterStatus | undefined;
}

type Labels = Record<string, string>;
type Sample = [Labels, number];

/** A metric whose samples are read from the gateway at scrape time. */
function live(registry: Registry, kind: 'counter' | 'gauge', name: string, help: string, labelNames: string[], read: () => Sample[]): void {
  const Metric = kind === 'counter' ? Counter : Gauge;
  new Metric({
    name,
    help,
    labelNames,
    registers: [registry],
    collect(this: Counter | Gauge) {
      this.reset();
      for (const [labels, value] of read()) {
        if (this instanceof Gauge) this.set(labels, Number.isFinite(value) ? value : 0);
        else this.inc(labels, Math.max(0, value));
      }
    },
  });
}

export class Metrics {
  readonly registry = new Registry();
  private snapshot?: { components: ComponentStatus[]; deadLetters: { total: number; byReason: Record<string, number> }; indicators?: IndicatorValue[]; cluster?: ClusterStatus };

  constructor(private readonly source: MetricsSource) {
    const r = this.registry;
    client.collectDefaultMetrics({ register: r, prefix: 'plantgate_' });
    new Gauge({ name: 'plantgate_build_info', help: 'Version of plantgate and of Node.js (always 1).', labelNames: ['version', 'node'], registers: [r] }).set({ version: VERSION, node: process.version }, 1);
    live(r, 'gauge', 'plantgate_heap_target_bytes', 'memory.heapTarget (0: none, V8\'s own schedule).', [], () => [[{}, heapTargetState().heapTarget ?? 0]]);
    live(r, 'gauge', 'plantgate_heap_growing_factor', 'How far V8 may grow the heap after the last full GC, as the heap target set it (0: V8\'s own factor).', [], () => {
      const p = heapTargetState().growingPercent;
      return [[{}, p ? 1 + p / 100 : 0]];
    });
    live(r, 'counter', 'plantgate_heap_relimits_total', 'Full GCs run by the heap target so that V8 set its limit again at once, after the live set had jumped.', [], () => [[{}, heapTargetState().relimits]]);
    const cs = () => this.snapshot!.components;
    const id = (c: ComponentStatus) => ({ component: c.name, kind: c.kind, type: c.type });
    const of = (kind: string) => cs().filter((c) => c.kind === kind);
    const typed = <T extends keyof DetailsByType>(type: T) => ofType(cs(), type);
    const idLabels = ['component', 'kind', 'type'];

    live(r, 'gauge', 'plantgate_component_state', 'Component state (1 for the current one).', [...idLabels, 'state'], () => cs().flatMap((c) => STATES.map((s): Sample => [{ ...id(c), state: s }, c.state === s ? 1 : 0])));
    live(r, 'gauge', 'plantgate_component_state_since_seconds', 'Unix time of the last state change.', idLabels, () => cs().map((c) => [id(c), c.since / 1000]));
    live(r, 'counter', 'plantgate_received_total', 'Points received by the component (sources: made from their input; buffer: committed; sinks: read from the buffer).', idLabels, () => cs().map((c) => [id(c), c.counters.received]));
    live(r, 'counter', 'plantgate_written_total', 'Points passed on (sources, processors) or written (buffer, sinks).', idLabels, () => cs().map((c) => [id(c), c.counters.written]));
    live(r, 'counter', 'plantgate_errors_total', 'Errors met by the component.', idLabels, () => cs().map((c) => [id(c), c.counters.errors]));
    live(r, 'counter', 'plantgate_dropped_total', 'Points (buffer: lines) dropped, by reason; every known reason from the start.', [...idLabels, 'reason'], () =>
      cs().flatMap((c) => {
        const reasons = new Set<string>([...(c.kind === 'source' || c.kind === 'processor' || c.kind === 'sink' || c.kind === 'buffer' ? DROP_REASONS : []), ...Object.keys(c.counters.dropped)]);
        return [...reasons].map((reason): Sample => [{ ...id(c), reason }, c.counters.dropped[reason] ?? 0]);
      }),
    );
    live(r, 'gauge', 'plantgate_last_value_age_seconds', 'Seconds since the last value.', idLabels, () => cs().filter((c) => c.lastValueAt).map((c) => [id(c), (Date.now() - c.lastValueAt!) / 1000]));

    const buffers = () => ofKind(cs(), 'buffer');
    type BufferNumber = 'bytesOnDisk' | 'maxBytes' | 'freeBytes' | 'linesQueued' | 'oldestAgeMs';
    const buf = (key: BufferNumber, scale = 1) => () => buffers().map((c): Sample => [{ component: c.name }, Number(c.details[key] ?? 0) / scale]);
    live(r, 'gauge', 'plantgate_buffer_bytes', 'Bytes of the buffer on disk.', ['component'], buf('bytesOnDisk'));
    live(r, 'gauge', 'plantgate_buffer_max_bytes', 'Size limit of the buffer.', ['component'], buf('maxBytes'));
    live(r, 'gauge', 'plantgate_buffer_free_disk_bytes', 'Space left on the filesystem of the buffer.', ['component'], buf('freeBytes'));
    live(r, 'gauge', 'plantgate_buffer_lines', 'Lines (points) waiting for the slowest sink.', ['component'], buf('linesQueued'));
    live(r, 'gauge', 'plantgate_buffer_oldest_age_seconds', 'Age of the oldest line not yet written.', ['component'], buf('oldestAgeMs', 1000));
    live(r, 'gauge', 'plantgate_buffer_disk_error', '1 while the disk refuses the buffer\'s writes (full, I/O error).', ['component'], () => buffers().map((c) => [{ component: c.name }, c.details.diskError ? 1 : 0]));
    live(r, 'gauge', 'plantgate_buffer_lost_lines', 'Lines found lost in damaged buffer files and not yet acknowledged by an operator.', ['component'], () =>
      buffers().map((c) => [{ component: c.name }, Number(c.details.losses?.lines ?? 0)]),
    );

    const sinks = () => ofKind(cs(), 'sink');
    type SinkNumber = 'retries' | 'writes' | 'requests' | 'lastLatencyMs';
    const sink = (key: SinkNumber, scale = 1) => () => sinks().map((c): Sample => [{ component: c.name }, Number(c.details[key] ?? 0) / scale]);
    live(r, 'counter', 'plantgate_sink_retries_total', 'Write attempts that had to be retried.', ['component'], sink('retries'));
    live(r, 'counter', 'plantgate_sink_writes_total', 'Write requests accepted.', ['component'], sink('writes'));
    live(r, 'counter', 'plantgate_sink_requests_total', 'Write requests sent, accepted or not.', ['component'], sink('requests'));
    live(r, 'gauge', 'plantgate_sink_last_latency_seconds', 'Latency of the last accepted write.', ['component'], sink('lastLatencyMs', 1000));
    live(r, 'gauge', 'plantgate_sink_paused', '1 while the sink is paused by an authorisation or missing-target error.', ['component'], () => of('sink').map((c) => [{ component: c.name }, c.state === 'paused' ? 1 : 0]));
    live(r, 'gauge', 'plantgate_sink_retrying', '1 while the sink\'s writes fail and are retried.', ['component'], () => of('sink').map((c) => [{ component: c.name }, c.state === 'retrying' ? 1 : 0]));

    live(r, 'gauge', 'plantgate_mqtt_connected_devices', 'Devices connected to the embedded broker.', ['component'], () => typed('mqtt-broker').map((c) => [{ component: c.name }, c.details.connectedDevices]));
    live(r, 'counter', 'plantgate_mqtt_refusals_total', 'Connections, packets and publishes the embedded broker refused, by reason; every known reason from the start.', ['component', 'reason'], () =>
      typed('mqtt-broker').flatMap((c) => {
        const got: Record<string, number> = c.details.refusals;
        return [...new Set([...REFUSAL_REASONS, ...Object.keys(got)])].map((reason): Sample => [{ component: c.name, reason }, got[reason] ?? 0]);
      }),
    );
    live(r, 'gauge', 'plantgate_mqtt_connected', '1 while connected to the external broker.', ['component'], () => typed('mqtt-client').map((c) => [{ component: c.name }, c.details.connected ? 1 : 0]));
    live(r, 'counter', 'plantgate_mqtt_reconnects_total', 'Connections made again: by a client id seen before (embedded broker), or to the external broker after the first.', ['component'], () => [
      ...typed('mqtt-client').map((c): Sample => [{ component: c.name }, Math.max(0, c.details.connects - 1)]),
      ...typed('mqtt-broker').map((c): Sample => [{ component: c.name }, c.details.reconnects]),
    ]);
    live(r, 'counter', 'plantgate_unrouted_messages_total', 'MQTT messages that matched no route.', ['component'], () =>
      [...typed('mqtt-broker'), ...typed('mqtt-client')].map((c) => [{ component: c.name }, c.details.unroutedMessages]),
    );
    live(r, 'gauge', 'plantgate_opcua_connected', '1 while the OPC UA endpoint\'s session is up.', ['component'], () => typed('opcua').map((c) => [{ component: c.name }, c.details.connected ? 1 : 0]));
    live(r, 'gauge', 'plantgate_opcua_failing_nodes', 'Nodes of the endpoint that are not good (failed, bad, removed).', ['component'], () =>
      typed('opcua').map((c) => [{ component: c.name }, Math.max(0, c.details.nodes.total - c.details.nodes.ok)]),
    );
    live(r, 'counter', 'plantgate_opcua_sessions_resumed_total', 'Sessions taken over again after a cut, with the notifications the server held (nothing lost).', ['component'], () => typed('opcua').map((c) => [{ component: c.name }, c.details.sessionsResumed]));
    live(r, 'counter', 'plantgate_opcua_gaps_total', 'Outages whose values the server could not hand over (session gone: server restart, or a cut longer than the session timeout).', ['component'], () => typed('opcua').map((c) => [{ component: c.name }, c.details.gaps]));
    live(r, 'gauge', 'plantgate_opcua_active_alarms', 'Conditions the endpoint\'s server retains (active, or not yet acknowledged), by severity band.', ['component', 'severity'], () =>
      typed('opcua').flatMap((c) => Object.entries(c.details.events?.activeAlarmsBySeverity ?? {}).map(([severity, n]): Sample => [{ component: c.name, severity }, n])),
    );
    live(r, 'gauge', 'plantgate_sparkplug_nodes_online', 'Sparkplug edge nodes online (born, not dead).', ['component'], () => typed('sparkplug-host').map((c) => [{ component: c.name }, c.details.nodesOnline]));
    live(r, 'gauge', 'plantgate_sparkplug_nodes_offline', 'Sparkplug edge nodes known and offline.', ['component'], () => typed('sparkplug-host').map((c) => [{ component: c.name }, c.details.nodesOffline]));

    live(r, 'counter', 'plantgate_dead_letters_total', 'Inputs moved to dead letters (all reasons).', [], () => [[{}, this.snapshot!.deadLetters.total]]);
    live(r, 'counter', 'plantgate_dead_letters_by_reason_total', 'Inputs moved to dead letters, by reason; every known reason from the start.', ['reason'], () => {
      const got = this.snapshot!.deadLetters.byReason;
      return [...new Set([...DROP_REASONS, ...Object.keys(got)])].map((reason): Sample => [{ reason }, got[reason] ?? 0]);
    });
    live(r, 'gauge', 'plantgate_indicator_value', 'Indicator value (ratios as fractions, densities per 10,000 employees).', ['indicator', 'kind', 'scope', 'scope_id'], () =>
      (this.snapshot!.indicators ?? []).filter((v) => v.value !== null).map((v) => [{ indicator: v.indicator, kind: v.kind, scope: v.scope, scope_id: v.scopeId }, v.value!]),
    );
    live(r, 'gauge', 'plantgate_indicator_target', 'Target of the indicator.', ['indicator', 'scope', 'scope_id'], () =>
      (this.snapshot!.indicators ?? []).filter((v) => v.value !== null && v.target !== undefined).map((v) => [{ indicator: v.indicator, scope: v.scope, scope_id: v.scopeId }, v.target!]),
    );
    const cl = () => this.snapshot!.cluster;
    live(r, 'counter', 'plantgate_cluster_handovers_total', 'Units (OPC UA endpoints, Sparkplug groups) this member acquired or released.', ['direction'], () => (cl() ? [[{ direction: 'acquired' }, cl()!.counters.acquired], [{ direction: 'released' }, cl()!.counters.released]] : []));
    live(r, 'gauge', 'plantgate_cluster_units_owned', 'Units this member reads.', [], () => (cl() ? [[{}, cl()!.units.owned.length]] : []));
    live(r, 'gauge', 'plantgate_cluster_units_unowned', 'Units of the fleet nobody holds the lease of, as this member sees it.', [], () => (cl() ? [[{}, cl()!.units.unowned.length]] : []));
    live(r, 'gauge', 'plantgate_cluster_members', 'Live members of the fleet, as this member sees them.', [], () => (cl() ? [[{}, cl()!.members.length]] : []));
    live(r, 'gauge', 'plantgate_cluster_etcd_reachable', '1 while this member reaches etcd.', [], () => (cl() ? [[{}, cl()!.etcd.reachable ? 1 : 0]] : []));
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text; the gateway's state is read once per scrape. */
  async render(): Promise<string> {
    this.snapshot = { components: this.source.components(), deadLetters: this.source.deadLetters(), indicators: this.source.indicators(), cluster: this.source.cluster?.() };
    try {
      return await this.registry.metrics();
    } finally {
      this.snapshot = undefined;
    }
  }
}
