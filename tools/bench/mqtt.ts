/**
 * MQTT scenarios: throughput into a real influxd (embedded broker and external mosquitto, QoS 0
 * and 1), the raw InfluxDB ceiling on the same points, the pipeline alone (sink writing nowhere),
 * latency at half the maximum rate, and an InfluxDB outage under load.
 *
 * Rates are points stored per second from the first publish to the moment the last point was
 * accepted by InfluxDB (the gateway's sink counter, polled every 100 ms), and every run is checked
 * afterwards by counting the run's points in InfluxDB.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../servers/process.js';
import { BenchGateway, type BenchContext, bufferQueue, type DeliveryFigures, figures, otherCores, type ProcFigures, round, runLoadProcess, waitForCount } from './harness.js';
import { ProcSampler } from './proc-stats.js';
import { countFieldValues, countRun, postLines, probesAfter } from './influx.js';
import { lineOf, type PayloadShape, SHAPES } from './loadgen.js';

export const DB = 'bench';
export const MEASUREMENT = 'telemetry';
const ROUTE = 'bench/{run}/{device}/telemetry';

export interface ThroughputResult extends DeliveryFigures {
  scenario: string;
  via: 'embedded' | 'mosquitto';
  /** `memory.heapTarget` the gateway ran with (none: V8's own schedule). */
  heapTarget?: string;
  /** What each message carried; `sent`/`stored`/`lost` count points, `messages` the MQTT messages. */
  shape: PayloadShape;
  messages: number;
  gateway: ProcFigures;
  /** Gateway points per CPU-second (per core); for `basic` also messages per CPU-second. */
  perCore: number;
  messagesPerCore: number;
  /** Field values stored (InfluxDB's count of every field; undefined where nothing was counted in InfluxDB). */
  fieldValues?: number;
  fieldValuesPerSecond?: number;
  fieldValuesPerCore?: number;
}

let runs = 0;
export function runId(name: string): string {
  return `${name}-${Date.now().toString(36)}-${runs++}`;
}

export interface GatewayOptions {
  influxUrl: string;
  via: 'embedded' | 'mosquitto';
  mqttPort: number;
  qos: 0 | 1;
  dir: string;
  /** Extra `influx:` keys (YAML). */
  influxExtra?: string;
  /** `memory.heapTarget`, e.g. `192MiB`. */
  heapTarget?: string;
}

/** The gateway configuration of the MQTT scenarios. */
export function gatewayYaml(o: GatewayOptions, httpPort: number): string {
  const source =
    o.via === 'embedded'
      ? `  broker:\n    listen: 127.0.0.1:${o.mqttPort}\n    allowAnonymous: true\n    maxConnectionsPerSecond: 100000\n`
      : `  clients:\n    - name: mosquitto\n      url: mqtt://127.0.0.1:${o.mqttPort}\n      clientId: plantgate-bench-${Date.now().toString(36)}\n      subscriptions: [{ topic: "bench/#", qos: ${o.qos} }]\n`;
  return [
    'http:',
    `  listen: 127.0.0.1:${httpPort}`,
    'influx:',
    `  url: ${o.influxUrl}`,
    '  api: v1',
    `  database: ${DB}`,
    ...(o.influxExtra ? [o.influxExtra] : []),
    'buffer:',
    `  dir: ${o.dir}/buffer`,
    '  maxBytes: 16GiB',
    'mqtt:',
    source.trimEnd(),
    '  routes:',
    `    - { topic: "${ROUTE}", measurement: ${MEASUREMENT} }`,
    ...(o.heapTarget ? ['memory:', `  heapTarget: ${o.heapTarget}`] : []),
    'log:',
    '  level: warn',
    '',
  ].join('\n');
}

/** One throughput run: gateway, load generator, wait for every point, count them in InfluxDB. */
export async function throughput(
  ctx: BenchContext,
  o: { name: string; via: 'embedded' | 'mosquitto'; qos: 0 | 1; mosquittoPort?: number; influxUrl?: string; messages?: number; countInInflux?: boolean; shape?: PayloadShape; heapTarget?: string },
): Promise<ThroughputResult> {
  const shape = o.shape ?? 'basic';
  const { points: perMessage } = SHAPES[shape];
  const dir = ctx.folder(o.name);
  const run = runId(o.name);
  const mqttPort = o.via === 'embedded' ? await freePort() : o.mosquittoPort!;
  const influxUrl = o.influxUrl ?? ctx.influx.url;
  const gw = await BenchGateway.start(dir, (http) => gatewayYaml({ influxUrl, via: o.via, mqttPort, qos: o.qos, dir, heapTarget: o.heapTarget }, http));
  try {
    const sampler = gw.sampler().start();
    const influxd = new ProcSampler(ctx.influx.pid).start();
    const load = await runLoadProcess({ host: '127.0.0.1', port: mqttPort, devices: ctx.sizes.devices, messages: o.messages ?? ctx.sizes.messages, qos: o.qos, rate: 0, run, shape });
    const want = (o.qos ? load.acked : load.sent) * perMessage;
    const done = await waitForCount(() => gw.written(), want);
    const proc = figures(sampler.stop());
    const influxdCpu = influxd.stop().cpuSeconds;
    const inInflux = o.countInInflux !== false;
    const stored = inInflux ? await countRun(influxUrl, DB, MEASUREMENT, run, shape === 'cnc' ? 'spindle_speed' : 'temperature') : done.count;
    const fieldValues = inInflux ? await countFieldValues(influxUrl, DB, MEASUREMENT, run) : undefined;
    const seconds = (done.at - load.startedAt) / 1000;
    const sent = load.sent * perMessage;
    const perCpu = (x: number) => (proc.cpuSeconds > 0 ? Math.round(x / proc.cpuSeconds) : 0);
    const r: ThroughputResult = {
      scenario: o.name,
      via: o.via,
      ...(o.heapTarget ? { heapTarget: o.heapTarget } : {}),
      qos: o.qos,
      shape,
      messages: load.sent,
      sent,
      stored,
      lost: sent - stored,
      seconds: round(seconds, 2),
      pointsPerSecond: Math.round(stored / seconds),
      ...otherCores(influxdCpu, load, seconds),
      gateway: proc,
      perCore: perCpu(stored),
      messagesPerCore: perCpu(stored / perMessage),
      ...(fieldValues !== undefined ? { fieldValues, fieldValuesPerSecond: Math.round(fieldValues / seconds), fieldValuesPerCore: perCpu(fieldValues) } : {}),
    };
    ctx.log(`${o.name}: ${r.pointsPerSecond} points/s${fieldValues !== undefined ? ` (${r.fieldValuesPerSecond} field values/s)` : ''}, ${r.stored}/${r.sent} stored, gateway ${proc.cores} cores (influxd ${r.influxdCores}, load ${r.loadgenCores}), peak RSS ${proc.peakRssMB} MB`);
    return r;
  } finally {
    await gw.stop();
  }
}

export interface CeilingResult {
  points: number;
  batch: number;
  concurrency: number;
  seconds: number;
  pointsPerSecond: number;
  stored: number;
  /** influxd's CPU per point stored: what any writer has to leave it on the shared cores. */
  influxdMicrosPerPoint: number;
}

/**
 * The same points (same devices, fields and series shape) as pre-encoded line protocol, posted
 * straight to the same influxd: what InfluxDB itself takes on this machine. Encoding happens before
 * the clock starts.
 */
export async function ceiling(ctx: BenchContext, o: { batch?: number; concurrency?: number } = {}): Promise<CeilingResult> {
  const batch = o.batch ?? 5000;
  const concurrency = o.concurrency ?? 2;
  const run = runId('ceiling');
  const { devices, messages } = ctx.sizes;
  const t0 = Date.now();
  // message-major order, as the gateway sees them arrive: every device's seq 0, then seq 1, ...
  const bodies: string[] = [];
  let lines: string[] = [];
  for (let seq = 0; seq < messages; seq++) {
    for (let d = 0; d < devices; d++) {
      lines.push(lineOf({ run }, MEASUREMENT, d, seq, t0 + seq));
      if (lines.length === batch) {
        bodies.push(lines.join('\n'));
        lines = [];
      }
    }
  }
  if (lines.length) bodies.push(lines.join('\n'));
  const start = performance.now();
  const influxd = new ProcSampler(ctx.influx.pid).start();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < bodies.length) await postLines(ctx.influx.url, DB, bodies[next++]!);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const influxdCpu = influxd.stop().cpuSeconds;
  const points = devices * messages;
  const stored = await countRun(ctx.influx.url, DB, MEASUREMENT, run);
  const r = { points, batch, concurrency, seconds: round(seconds, 2), pointsPerSecond: Math.round(points / seconds), stored, influxdMicrosPerPoint: round((influxdCpu / points) * 1e6, 2) };
  ctx.log(`ceiling: ${r.pointsPerSecond} points/s (${batch} per request, ${concurrency} at a time), ${stored}/${points} stored, influxd ${r.influxdMicrosPerPoint} µs CPU per point`);
  return r;
}

/** An HTTP server that answers like InfluxDB 1.x and throws the data away: the sink writing nowhere. */
export async function nullInflux(): Promise<{ url: string; bytes(): number; close(): Promise<void> }> {
  let bytes = 0;
  const server: Server = createServer((req, res) => {
    req.on('data', (b: Buffer) => (bytes += b.length));
    req.on('end', () => {
      if (req.url?.startsWith('/query')) res.writeHead(200, { 'content-type': 'application/json' }).end('{"results":[{"statement_id":0}]}');
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, bytes: () => bytes, close: () => new Promise((r) => server.close(() => r())) };
}

export interface LatencyResult {
  rate: number;
  seconds: number;
  probes: number;
  seen: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  pollMs: number;
  stored: number;
  sent: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Source timestamp to readable in InfluxDB, at `rate` messages per second (half the measured
 * maximum): a probe device sends 20 messages a second stamped with the send time among the load;
 * the bench polls InfluxDB every `pollMs` for new probes and takes (seen - sent).
 */
export async function latency(ctx: BenchContext, rate: number): Promise<LatencyResult> {
  const dir = ctx.folder('latency');
  const run = runId('latency');
  const mqttPort = await freePort();
  const pollMs = 25;
  const gw = await BenchGateway.start(dir, (http) => gatewayYaml({ influxUrl: ctx.influx.url, via: 'embedded', mqttPort, qos: 1, dir }, http));
  const lat: number[] = [];
  try {
    const seconds = ctx.sizes.latencySeconds;
    const messages = Math.max(1, Math.round((rate * seconds) / ctx.sizes.devices));
    let last = Date.now() - 1;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const ts = await probesAfter(ctx.influx.url, DB, MEASUREMENT, run, last).catch(() => [] as number[]);
        const now = Date.now();
        for (const t of ts) {
          lat.push(now - t);
          if (t > last) last = t;
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    })();
    const load = await runLoadProcess({ host: '127.0.0.1', port: mqttPort, devices: ctx.sizes.devices, messages, qos: 1, rate, run, probeRate: 20 });
    await waitForCount(() => gw.written(), load.acked + load.probes, { stallMs: 5000 });
    await new Promise((r) => setTimeout(r, 1000));
    polling = false;
    await poller;
    const stored = await countRun(ctx.influx.url, DB, MEASUREMENT, run);
    lat.sort((a, b) => a - b);
    const r: LatencyResult = {
      rate: Math.round(rate),
      seconds,
      probes: load.probes,
      seen: lat.length,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      maxMs: lat[lat.length - 1] ?? NaN,
      pollMs,
      stored,
      sent: load.sent + load.probes,
    };
    ctx.log(`latency at ${r.rate} msg/s: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (${r.seen}/${r.probes} probes)`);
    return r;
  } finally {
    await gw.stop();
  }
}

export interface OutageResult {
  rate: number;
  downSeconds: number;
  rssBeforeMB: number;
  peakRssDuringOutageMB: number;
  peakRssAfterMB: number;
  backlogLines: number;
  bufferBytesPeak: number;
  drainSeconds: number;
  drainPointsPerSecond: number;
  drainMultiple: number;
  sent: number;
  stored: number;
  lost: number;
}

/**
 * InfluxDB stopped for `downSeconds` while devices keep sending at `rate` (QoS 1, embedded broker):
 * the gateway's RSS before and during the outage, then the drain after InfluxDB is back, as a
 * multiple of the ingest rate (the load keeps running while it drains).
 */
export async function outage(ctx: BenchContext, rate: number): Promise<OutageResult> {
  const dir = ctx.folder('outage');
  const run = runId('outage');
  const mqttPort = await freePort();
  const { warmSeconds, downSeconds } = ctx.sizes.outage;
  const afterSeconds = Math.max(downSeconds, 5);
  const gw = await BenchGateway.start(dir, (http) => gatewayYaml({ influxUrl: ctx.influx.url, via: 'embedded', mqttPort, qos: 1, dir, influxExtra: '  retryMax: 2s' }, http));
  try {
    const messages = Math.max(1, Math.round((rate * (warmSeconds + downSeconds + afterSeconds)) / ctx.sizes.devices));
    const loadP = runLoadProcess({ host: '127.0.0.1', port: mqttPort, devices: ctx.sizes.devices, messages, qos: 1, rate, run });
    const warm = gw.sampler().start();
    await new Promise((r) => setTimeout(r, warmSeconds * 1000));
    const before = warm.stop();
    await ctx.stopInflux();
    const down = gw.sampler().start();
    let bufferBytesPeak = 0;
    const bufferBytes = async () => bufferQueue(await gw.status());
    const downUntil = Date.now() + downSeconds * 1000;
    while (Date.now() < downUntil) {
      bufferBytesPeak = Math.max(bufferBytesPeak, (await bufferBytes()).bytes);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const during = down.stop();
    const backlog = (await bufferBytes()).lines;
    const after = gw.sampler().start();
    // counted before influxd is back: nothing can be written while it is down, and a small backlog
    // (smoke sizes) may be written before a count taken after the restart would see it
    const written0 = await gw.written();
    await ctx.restartInflux();
    const restartedAt = Date.now();
    // drained: the queue is down to what half a second of ingest adds
    let drainedAt = 0;
    let writtenAtDrain = 0;
    for (;;) {
      const q = await bufferBytes();
      if (q.lines <= Math.max(rate / 2, 1)) {
        drainedAt = Date.now();
        writtenAtDrain = await gw.written();
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const load = await loadP;
    await waitForCount(() => gw.written(), load.acked);
    const afterFig = after.stop();
    const stored = await countRun(ctx.influx.url, DB, MEASUREMENT, run);
    const drainSeconds = (drainedAt - restartedAt) / 1000;
    const drainRate = drainSeconds > 0 ? (writtenAtDrain - written0) / drainSeconds : 0;
    const r: OutageResult = {
      rate: Math.round(rate),
      downSeconds,
      rssBeforeMB: round(before.peakRssBytes / 2 ** 20, 1),
      peakRssDuringOutageMB: round(during.peakRssBytes / 2 ** 20, 1),
      peakRssAfterMB: round(afterFig.peakRssBytes / 2 ** 20, 1),
      backlogLines: backlog,
      bufferBytesPeak,
      drainSeconds: round(drainSeconds, 1),
      drainPointsPerSecond: Math.round(drainRate),
      drainMultiple: round(drainRate / rate, 1),
      sent: load.sent,
      stored,
      lost: load.sent - stored,
    };
    ctx.log(`outage ${downSeconds}s at ${r.rate} msg/s: RSS ${r.rssBeforeMB} -> peak ${r.peakRssDuringOutageMB} MB, backlog ${backlog}, drained at ${r.drainMultiple}x ingest in ${r.drainSeconds}s, ${stored}/${load.sent} stored`);
    return r;
  } finally {
    await gw.stop();
  }
}
