/**
 * `plantgate bench` / `npm run bench`: every scenario in one run against one influxd and one
 * mosquitto, so that each figure can be given as a ratio of the ceiling or the peer measured in
 * the same run. Results go to a JSON file and into docs/benchmarks.md (between markers).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, freemem, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startInfluxd } from '../servers/influxd.js';
import { startMosquitto } from '../servers/mosquitto.js';
import { findBinary } from '../servers/process.js';
import { type BenchContext, type BenchSizes, FULL, round, SMOKE } from './harness.js';
import { createDatabase } from './influx.js';
import { ceiling, type CeilingResult, DB, latency, type LatencyResult, nullInflux, outage, type OutageResult, throughput, type ThroughputResult } from './mqtt.js';
import { fleet, type FleetResult } from './fleet.js';
import { floor, type FloorResult } from './floor.js';
import { ensureNodeRed, nodeRed, nodeRedPerCpu, type NodeRedResult, nodeRedVersion } from './node-red.js';
import { opcuaScale, type OpcuaScaleResult } from './opcua.js';

/**
 * `memory.heapTarget` for the runs that show what it holds: the QoS 0 flood (garbage awaiting a
 * full GC) and 100,000 OPC UA items (a ~110 MB live set). RSS is ~100-150 MB above the heap.
 */
export const HEAP_TARGETS = { mqtt: '192MiB', opcua: '200MiB' } as const;

export const SCENARIOS = ['mqtt', 'node-red', 'floor', 'payloads', 'pipeline', 'latency', 'outage', 'opcua', 'fleet'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchResults {
  when: string;
  smoke: boolean;
  command: string;
  machine: Record<string, string | number>;
  sizes: BenchSizes;
  ceiling: CeilingResult[];
  mqtt: ThroughputResult[];
  nodeRed: NodeRedResult[];
  /** The MQTT libraries alone (aedes, mqtt-packet, mqtt.js): the CPU per message no gateway on them goes below. */
  floor: FloorResult[];
  /** The realistic payloads (embedded broker, QoS 1): the 25-field CNC status and 10 points per message. */
  payloads: ThroughputResult[];
  pipeline: ThroughputResult[];
  latency?: LatencyResult;
  outage?: OutageResult;
  opcua: OpcuaScaleResult[];
  fleet: FleetResult[];
  ratios: Record<string, number>;
  seconds: number;
}

export async function runBench(o: { smoke: boolean; only?: Scenario[]; log: (m: string) => void; command: string }): Promise<BenchResults> {
  const t0 = Date.now();
  const sizes = o.smoke ? SMOKE : FULL;
  const want = (s: Scenario) => !o.only || o.only.includes(s);
  const base = mkdtempSync(join(tmpdir(), 'plantgate-bench-'));
  const influxDir = join(base, 'influxd');
  let influx = await startInfluxd({ dataDir: influxDir });
  await createDatabase(influx.url, DB);
  const mosq = await startMosquitto({ dir: join(base, 'mosquitto') });
  const ctx: BenchContext = {
    dir: base,
    get influx() {
      return influx;
    },
    sizes,
    log: o.log,
    folder: (name) => {
      const d = join(base, name);
      mkdirSync(d, { recursive: true });
      return d;
    },
    stopInflux: () => influx.stop(),
    async restartInflux() {
      influx = await startInfluxd({ dataDir: influxDir, port: influx.port });
    },
  };
  const r: BenchResults = {
    when: new Date().toISOString(),
    smoke: o.smoke,
    command: o.command,
    machine: machine(),
    sizes,
    ceiling: [],
    mqtt: [],
    nodeRed: [],
    floor: [],
    payloads: [],
    pipeline: [],
    opcua: [],
    fleet: [],
    ratios: {},
    seconds: 0,
  };
  try {
    if (want('node-red')) ensureNodeRed(o.log);
    if (want('mqtt') || want('node-red')) r.ceiling.push(await ceiling(ctx));
    if (want('mqtt')) {
      for (const qos of [1, 0] as const) r.mqtt.push(await throughput(ctx, { name: `embedded-qos${qos}`, via: 'embedded', qos }));
      r.mqtt.push(await throughput(ctx, { name: 'embedded-qos0-heap-target', via: 'embedded', qos: 0, heapTarget: HEAP_TARGETS.mqtt }));
      for (const qos of [1, 0] as const) r.mqtt.push(await throughput(ctx, { name: `mosquitto-qos${qos}`, via: 'mosquitto', qos, mosquittoPort: mosq.port }));
    }
    if (want('node-red')) {
      for (const qos of [1, 0] as const) r.nodeRed.push(await nodeRed(ctx, { flow: 'batched', qos, mosquittoPort: mosq.port, messages: sizes.messages }));
      r.nodeRed.push(await nodeRed(ctx, { flow: 'per-message', qos: 1, mosquittoPort: mosq.port, messages: sizes.nodeRedPerMessageMessages }));
    }
    if (want('floor')) {
      r.floor.push(await floor(ctx, { library: 'aedes' }));
      r.floor.push(await floor(ctx, { library: 'mqtt-packet' }));
      r.floor.push(await floor(ctx, { library: 'mqtt.js', mosquittoPort: mosq.port }));
    }
    if (want('payloads')) {
      for (const shape of ['cnc', 'batch10'] as const) {
        r.payloads.push(await throughput(ctx, { name: `embedded-qos1-${shape}`, via: 'embedded', qos: 1, shape, messages: sizes.payloadMessages[shape] }));
      }
    }
    if (want('pipeline')) {
      const sink = await nullInflux();
      try {
        for (const qos of [1, 0] as const) r.pipeline.push(await throughput(ctx, { name: `pipeline-qos${qos}`, via: 'embedded', qos, influxUrl: sink.url, countInInflux: false }));
      } finally {
        await sink.close();
      }
    }
    const maxRate = r.mqtt.find((x) => x.scenario === 'embedded-qos1')?.pointsPerSecond;
    if (want('latency')) r.latency = await latency(ctx, (maxRate ?? 2000) / 2);
    if (want('outage')) r.outage = await outage(ctx, sizes.outage.rate || (maxRate ?? 2000) / 2);
    if (want('opcua')) {
      r.opcua.push(await opcuaScale(ctx, { name: 'opcua-1s', tags: sizes.opcua.tags, intervalMs: 1000 }));
      r.opcua.push(await opcuaScale(ctx, { name: 'opcua-1s-heap-target', tags: sizes.opcua.tags, intervalMs: 1000, heapTarget: HEAP_TARGETS.opcua }));
      r.opcua.push(await opcuaScale(ctx, { name: 'opcua-1s-large', tags: sizes.opcua.largeTags, intervalMs: 1000 }));
      r.opcua.push(await opcuaScale(ctx, { name: 'opcua-100ms', tags: sizes.opcua.fastTags, intervalMs: 100 }));
    }
    if (want('fleet')) for (const gateways of [1, 2, 3]) r.fleet.push(await fleet(ctx, { gateways, mosquittoPort: mosq.port }));
    if (want('mqtt') || want('node-red')) r.ceiling.push(await ceiling(ctx));
  } finally {
    await mosq.stop().catch(() => undefined);
    await influx.stop().catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  }
  r.ratios = ratios(r);
  r.seconds = Math.round((Date.now() - t0) / 1000);
  return r;
}

/** Each plantgate figure against the ceiling and the peer measured in this run. */
export function ratios(r: BenchResults): Record<string, number> {
  const out: Record<string, number> = {};
  const ceil = Math.max(0, ...r.ceiling.map((c) => c.pointsPerSecond));
  const batchedRun = (qos: 0 | 1) => r.nodeRed.find((n) => n.flow === 'batched' && n.qos === qos);
  const batched = (qos: 0 | 1) => batchedRun(qos)?.pointsPerSecond;
  // the measure: what each spends in CPU for the same points
  const batchedPerCpu = (qos: 0 | 1) => {
    const n = batchedRun(qos);
    return n && nodeRedPerCpu(n);
  };
  const perMessage = r.nodeRed.find((n) => n.flow === 'per-message')?.pointsPerSecond;
  for (const m of r.mqtt) {
    if (ceil) out[`${m.scenario} / ceiling`] = round(m.pointsPerSecond / ceil, 2);
    const b = batched(m.qos);
    if (b) out[`${m.scenario} / node-red batched qos${m.qos}`] = round(m.pointsPerSecond / b, 1);
    const bc = batchedPerCpu(m.qos);
    if (bc && m.perCore) out[`${m.scenario} / node-red batched qos${m.qos}, per CPU-second`] = round(m.perCore / bc, 2);
    if (perMessage && m.qos === 1) out[`${m.scenario} / node-red per-message qos1`] = round(m.pointsPerSecond / perMessage, 1);
  }
  const bc1 = batchedPerCpu(1);
  for (const f of r.floor) {
    // at smoke sizes the library may use less CPU than /proc's 10 ms tick shows: no ratio then
    if (!f.messagesPerCore) continue;
    // the most a gateway on this library could reach if its own work cost nothing
    if (bc1) out[`${f.library} alone / node-red batched qos1, per CPU-second`] = round(f.messagesPerCore / bc1, 2);
    const m = f.library === 'mqtt-packet' ? undefined : r.mqtt.find((x) => x.via === f.via && x.qos === 1 && !x.heapTarget);
    if (m?.messagesPerCore) out[`${m.scenario} / ${f.library} alone, per CPU-second`] = round(m.messagesPerCore / f.messagesPerCore, 2);
  }
  for (const n of r.nodeRed) if (ceil) out[`node-red ${n.flow} qos${n.qos} / ceiling`] = round(n.pointsPerSecond / ceil, 2);
  for (const p of r.pipeline) {
    const m = r.mqtt.find((x) => x.via === 'embedded' && x.qos === p.qos);
    if (m) out[`${m.scenario} / ${p.scenario} (pipeline alone)`] = round(m.pointsPerSecond / p.pointsPerSecond, 2);
  }
  const one = r.fleet.find((f) => f.gateways === 1)?.pointsPerSecond;
  for (const f of r.fleet) if (one && f.gateways > 1) out[`fleet of ${f.gateways} / fleet of 1 (points/s)`] = round(f.pointsPerSecond / one, 2);
  if (r.outage) out['outage peak RSS / RSS before'] = round(r.outage.peakRssDuringOutageMB / r.outage.rssBeforeMB, 2);
  return out;
}

function version(bin: string, args: string[]): string {
  const p = findBinary(bin);
  if (!p) return 'not installed';
  const v = spawnSync(p, args, { encoding: 'utf8' });
  return `${v.stdout}${v.stderr}`.split('\n').find((l) => /\d+\.\d+/.test(l))?.trim() ?? 'unknown';
}

function machine(): Record<string, string | number> {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    freeMemoryGiB: round(freemem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    influxd: version('influxd', ['version']),
    mosquitto: version('mosquitto', ['-h']),
    nodeRed: nodeRedVersion(),
  };
}
