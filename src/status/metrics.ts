/**
 * Prometheus text exposition (format 0.0.4) of the gateway's state: every component's counters
 * and state, buffer depth, sink retries and latency, connected devices, dead letters by reason and
 * the indicator values. Names are `plantgate_` prefixed; counters end in `_total`.
 */
import type { ComponentStatus } from '../core/component.js';
import type { IndicatorValue } from '../indicators/engine.js';

const STATES = ['stopped', 'starting', 'running', 'degraded', 'reconnecting', 'retrying', 'paused', 'full', 'disk_error', 'stopping'] as const;

class Exposition {
  private readonly families = new Map<string, { help: string; type: 'counter' | 'gauge'; samples: string[] }>();

  add(name: string, type: 'counter' | 'gauge', help: string, labels: Record<string, string>, value: number): void {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { help, type, samples: [] }));
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
      .join(',');
    f.samples.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN'}`);
  }

  toString(): string {
    let out = '';
    for (const [name, f] of this.families) out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n${f.samples.join('\n')}\n`;
    return out;
  }
}

export function renderMetrics(components: ComponentStatus[], deadLetters: { total: number; byReason: Record<string, number> }, indicators?: IndicatorValue[]): string {
  const m = new Exposition();
  const now = Date.now();
  for (const c of components) {
    const id = { component: c.name, kind: c.kind, type: c.type };
    for (const s of STATES) m.add('plantgate_component_state', 'gauge', 'Component state (1 for the current one).', { ...id, state: s }, c.state === s ? 1 : 0);
    m.add('plantgate_component_state_since_seconds', 'gauge', 'Unix time of the last state change.', id, c.since / 1000);
    m.add('plantgate_received_total', 'counter', 'Values received by the component.', id, c.counters.received);
    m.add('plantgate_written_total', 'counter', 'Values passed on (sources, processors) or written (buffer, sinks).', id, c.counters.written);
    m.add('plantgate_errors_total', 'counter', 'Errors met by the component.', id, c.counters.errors);
    for (const [reason, n] of Object.entries(c.counters.dropped)) m.add('plantgate_dropped_total', 'counter', 'Values dropped, by reason.', { ...id, reason }, n);
    if (c.lastValueAt) m.add('plantgate_last_value_age_seconds', 'gauge', 'Seconds since the last value.', id, (now - c.lastValueAt) / 1000);
    const d = (c.details ?? {}) as Record<string, unknown>;
    if (c.kind === 'buffer') {
      m.add('plantgate_buffer_bytes', 'gauge', 'Bytes of the buffer on disk.', { component: c.name }, Number(d.bytesOnDisk ?? 0));
      m.add('plantgate_buffer_max_bytes', 'gauge', 'Size limit of the buffer.', { component: c.name }, Number(d.maxBytes ?? 0));
      m.add('plantgate_buffer_lines', 'gauge', 'Lines waiting for the slowest sink.', { component: c.name }, Number(d.linesQueued ?? 0));
      m.add('plantgate_buffer_oldest_age_seconds', 'gauge', 'Age of the oldest line not yet written.', { component: c.name }, Number(d.oldestAgeMs ?? 0) / 1000);
    }
    if (c.kind === 'sink') {
      m.add('plantgate_sink_retries_total', 'counter', 'Write attempts that had to be retried.', { component: c.name }, Number(d.retries ?? 0));
      m.add('plantgate_sink_writes_total', 'counter', 'Write requests accepted.', { component: c.name }, Number(d.writes ?? 0));
      m.add('plantgate_sink_last_latency_seconds', 'gauge', 'Latency of the last accepted write.', { component: c.name }, Number(d.lastLatencyMs ?? 0) / 1000);
      m.add('plantgate_sink_paused', 'gauge', '1 while the sink is paused by an authorisation or missing-target error.', { component: c.name }, d.alert ? 1 : 0);
    }
    if (c.type === 'mqtt-broker') m.add('plantgate_mqtt_connected_devices', 'gauge', 'Devices connected to the embedded broker.', { component: c.name }, Number(d.connectedDevices ?? 0));
    if (c.type === 'mqtt-client') {
      m.add('plantgate_mqtt_connected', 'gauge', '1 while connected to the external broker.', { component: c.name }, d.connected ? 1 : 0);
      m.add('plantgate_mqtt_reconnects_total', 'counter', 'Connections made after the first.', { component: c.name }, Math.max(0, Number(d.connects ?? 0) - 1));
    }
    if (c.kind === 'source' && 'unroutedMessages' in d) m.add('plantgate_unrouted_messages_total', 'counter', 'MQTT messages that matched no route.', { component: c.name }, Number(d.unroutedMessages));
  }
  m.add('plantgate_dead_letters_total', 'counter', 'Inputs moved to dead letters (all reasons).', {}, deadLetters.total);
  for (const [reason, n] of Object.entries(deadLetters.byReason)) m.add('plantgate_dead_letters_by_reason_total', 'counter', 'Inputs moved to dead letters, by reason.', { reason }, n);
  for (const v of indicators ?? []) {
    if (v.value === null) continue;
    m.add('plantgate_indicator_value', 'gauge', 'Indicator value (ratios as fractions, densities per 10,000 employees).', { indicator: v.indicator, kind: v.kind, scope: v.scope, scope_id: v.scopeId }, v.value);
    if (v.target !== undefined) m.add('plantgate_indicator_target', 'gauge', 'Target of the indicator.', { indicator: v.indicator, scope: v.scope, scope_id: v.scopeId }, v.target);
  }
  return m.toString();
}
