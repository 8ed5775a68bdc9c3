/**
 * What every benchmark scenario shares: the run's folders and servers, the gateway as a process of
 * its own (measured from outside: CPU from /proc, RSS sampled), the load generator as another
 * process, and waiting for points to arrive.
 */
import { gatewayProcess, type GatewayProcess, PLANTGATE_BIN } from '../servers/gateway-process.js';
import { launch } from '../servers/process.js';
import type { Influxd } from '../servers/influxd.js';
import { ProcSampler } from './proc-stats.js';
import type { LoadOptions, LoadResult } from './loadgen.js';

/** Sizes of one bench run; `smoke` is the few-second version the test suite runs. */
export interface BenchSizes {
  devices: number;
  /** Messages per device for the MQTT throughput runs. */
  messages: number;
  /** Messages per device for Node-RED's per-message flow (slow: one HTTP write per message). */
  nodeRedPerMessageMessages: number;
  /** Messages per device for the realistic-payload runs (25-field CNC status; 10 points per message). */
  payloadMessages: { cnc: number; batch10: number };
  latencySeconds: number;
  outage: { warmSeconds: number; downSeconds: number; rate: number };
  opcua: { servers: number; machines: number; tags: number; largeTags: number; fastTags: number; seconds: number };
}

export const FULL: BenchSizes = {
  devices: 200,
  messages: 3000,
  nodeRedPerMessageMessages: 250,
  payloadMessages: { cnc: 1500, batch10: 600 },
  latencySeconds: 30,
  outage: { warmSeconds: 15, downSeconds: 180, rate: 0 },
  opcua: { servers: 4, machines: 250, tags: 100, largeTags: 250, fastTags: 25, seconds: 60 },
};

export const SMOKE: BenchSizes = {
  devices: 4,
  messages: 50,
  nodeRedPerMessageMessages: 20,
  payloadMessages: { cnc: 30, batch10: 10 },
  latencySeconds: 3,
  outage: { warmSeconds: 1, downSeconds: 2, rate: 200 },
  opcua: { servers: 1, machines: 2, tags: 5, largeTags: 8, fastTags: 5, seconds: 4 },
};

export interface BenchContext {
  dir: string;
  influx: Influxd;
  /** Restart influxd on the same port and data (after an outage). */
  restartInflux(): Promise<void>;
  stopInflux(): Promise<void>;
  sizes: BenchSizes;
  log(msg: string): void;
  /** A fresh folder for one scenario. */
  folder(name: string): string;
}

/** What one MQTT run delivered, plantgate's or the peer's. */
export interface DeliveryFigures {
  qos: 0 | 1;
  sent: number;
  stored: number;
  lost: number;
  seconds: number;
  pointsPerSecond: number;
  /** Cores the other processes on the machine used meanwhile: where the 2 cores went. */
  influxdCores: number;
  loadgenCores: number;
}

export interface ProcFigures {
  cpuSeconds: number;
  cores: number;
  peakRssMB: number;
  meanRssMB: number;
}

export function figures(s: ReturnType<ProcSampler['stop']>): ProcFigures {
  return { cpuSeconds: round(s.cpuSeconds, 2), cores: round(s.cores, 2), peakRssMB: round(s.peakRssBytes / 2 ** 20, 1), meanRssMB: round(s.meanRssBytes / 2 ** 20, 1) };
}

/** influxd's and the load generator's share of the cores over a run of `seconds`. */
export function otherCores(influxdCpuSeconds: number, load: LoadResult, seconds: number): Pick<DeliveryFigures, 'influxdCores' | 'loadgenCores'> {
  return { influxdCores: round(influxdCpuSeconds / seconds, 2), loadgenCores: round(load.cpuSeconds / ((load.endedAt - load.startedAt) / 1000), 2) };
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The part of `/api/status` the benchmarks read. */
export interface GatewayStatus {
  components: { kind: string; name: string; state: string; counters: { received: number; written: number; dropped: Record<string, number> }; details?: Record<string, unknown> }[];
}

/** Lines all sinks have had accepted. */
export function sinkWritten(s: GatewayStatus): number {
  return s.components.filter((c) => c.kind === 'sink').reduce((a, c) => a + c.counters.written, 0);
}

/** Lines waiting in the durable buffer for the slowest sink, and its bytes on disk. */
export function bufferQueue(s: GatewayStatus): { lines: number; bytes: number } {
  const b = s.components.find((c) => c.kind === 'buffer');
  return { lines: Number(b?.details?.linesQueued ?? 0), bytes: Number(b?.details?.bytesOnDisk ?? 0) };
}

/** The gateway (`plantgate run`) with a configuration made for one scenario. */
export class BenchGateway {
  private constructor(readonly proc: GatewayProcess) {}

  static async start(dir: string, yaml: (httpPort: number) => string, readyTimeoutMs?: number): Promise<BenchGateway> {
    const p = await gatewayProcess(dir, yaml);
    await p.start(readyTimeoutMs);
    return new BenchGateway(p);
  }

  sampler(): ProcSampler {
    return new ProcSampler(this.proc.pid()!);
  }

  async status(): Promise<GatewayStatus> {
    const r = await fetch(`${this.proc.httpUrl}/api/status`);
    return (await r.json()) as never;
  }

  /** Lines the sinks have had accepted so far. */
  async written(): Promise<number> {
    return sinkWritten(await this.status());
  }

  async stop(): Promise<void> {
    await this.proc.kill('SIGTERM');
  }
}

/** The load generator as a process of its own; resolves with its result. */
export async function runLoadProcess(o: LoadOptions): Promise<LoadResult> {
  const args = [
    PLANTGATE_BIN, 'loadgen', '--url', `mqtt://${o.host}:${o.port}`, '--devices', String(o.devices), '--messages', String(o.messages), '--qos', String(o.qos),
    '--rate', String(o.rate), '--run', o.run, '--window', String(o.window ?? 10), '--probe-rate', String(o.probeRate ?? 0),
  ];
  if (o.prefix) args.push('--prefix', o.prefix);
  if (o.shape) args.push('--shape', o.shape);
  const m = launch(process.execPath, args);
  let out = '';
  m.proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  // 'close', not 'exit': the result line may still be in the pipe when the process exits
  const code = await new Promise<number | null>((r) => m.proc.once('close', (c) => r(c)));
  // the result is the one JSON line (node-opcua, imported by the CLI, may print warnings after it)
  const line = out.split('\n').find((l) => l.startsWith('{')) ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`load generator failed (exit ${code}): ${m.output()}`);
  return JSON.parse(line) as LoadResult;
}

/** Polls `count` until it reaches `want` or stops growing for `stallMs`; returns the count and when it got there. */
export async function waitForCount(count: () => Promise<number>, want: number, opts: { everyMs?: number; stallMs?: number; timeoutMs?: number } = {}): Promise<{ count: number; at: number; stalled: boolean }> {
  const every = opts.everyMs ?? 100;
  const stallMs = opts.stallMs ?? 20_000;
  const deadline = Date.now() + (opts.timeoutMs ?? 3_600_000);
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const n = await count().catch(() => last);
    const now = Date.now();
    if (n >= want) return { count: n, at: now, stalled: false };
    if (n !== last) {
      last = n;
      lastChange = now;
    } else if (now - lastChange > stallMs || now > deadline) {
      return { count: n, at: lastChange, stalled: true };
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

