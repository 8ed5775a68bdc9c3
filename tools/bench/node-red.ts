/**
 * The peer: Node-RED 4 with node-red-contrib-influxdb, on the same load through the same
 * mosquitto into the same influxd. Two flows, as users build them:
 *  - per message: mqtt in (JSON) -> function ([fields, tags]) -> influxdb out (one write per message);
 *  - batched: mqtt in -> function (point) -> join (1000 messages or 1 s) -> influxdb batch.
 * Node-RED is installed apart from plantgate (bench/node-red, its own lockfile), on first use.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, launch, waitFor } from '../servers/process.js';
import { type BenchContext, type DeliveryFigures, figures, otherCores, type ProcFigures, round, runLoadProcess, waitForCount } from './harness.js';
import { countRun } from './influx.js';
import { DB, MEASUREMENT, runId } from './mqtt.js';
import { ProcSampler } from './proc-stats.js';

const HOME = join(import.meta.dirname, '..', '..', 'bench', 'node-red');
const RED = join(HOME, 'node_modules', 'node-red', 'red.js');

/** Installs Node-RED from bench/node-red/package-lock.json when it is not there yet. */
export function ensureNodeRed(log: (m: string) => void): void {
  if (existsSync(RED)) return;
  log('installing Node-RED for the peer benchmark (bench/node-red, npm ci)');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: HOME, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !existsSync(RED)) throw new Error('npm ci in bench/node-red failed; Node-RED is needed for the peer benchmark');
}

export function nodeRedVersion(): string {
  try {
    return (JSON.parse(spawnSync('node', ['-p', `JSON.stringify([require('node-red/package.json').version, require('node-red-contrib-influxdb/package.json').version])`], { cwd: HOME, encoding: 'utf8' }).stdout) as string[]).join(' / contrib-influxdb ');
  } catch {
    return 'unknown';
  }
}

export type NodeRedFlow = 'per-message' | 'batched';

export function flows(flow: NodeRedFlow, mqttPort: number, influxPort: number, qos: 0 | 1): object[] {
  const toFields = 'const p = msg.payload; const t = msg.topic.split("/");';
  // ids are prefixed: a node id equal to a property name ("join") confuses Node-RED's config-node resolution
  const common = [
    { id: 'broker', type: 'mqtt-broker', name: 'mosquitto', broker: '127.0.0.1', port: String(mqttPort), clientid: `nodered-${Date.now().toString(36)}`, autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    { id: 'influx', type: 'influxdb', hostname: '127.0.0.1', port: String(influxPort), protocol: 'http', database: DB, name: 'bench', usetls: false, influxdbVersion: '1.x' },
    { id: 'tab', type: 'tab', label: 'bench' },
    { id: 'n-in', z: 'tab', type: 'mqtt in', name: '', topic: 'bench/#', qos: String(qos), datatype: 'json', broker: 'broker', nl: false, rap: true, rh: 0, inputs: 0, wires: [['n-fn']] },
  ];
  if (flow === 'per-message') {
    return [
      ...common,
      { id: 'n-fn', z: 'tab', type: 'function', name: 'to influx', func: `${toFields}\nmsg.payload = [{ temperature: p.temperature, pressure: p.pressure, spindle_speed: p.spindle_speed, power: p.power, time: p.ts }, { run: t[1], device: t[2] }];\nreturn msg;`, outputs: 1, wires: [['n-out']] },
      { id: 'n-out', z: 'tab', type: 'influxdb out', influxdb: 'influx', name: '', measurement: MEASUREMENT, precision: 'ms', retentionPolicy: '', wires: [] },
    ];
  }
  return [
    ...common,
    { id: 'n-fn', z: 'tab', type: 'function', name: 'to point', func: `${toFields}\nmsg.payload = { measurement: "${MEASUREMENT}", fields: { temperature: p.temperature, pressure: p.pressure, spindle_speed: p.spindle_speed, power: p.power }, tags: { run: t[1], device: t[2] }, timestamp: p.ts };\nreturn msg;`, outputs: 1, wires: [['n-join']] },
    { id: 'n-join', z: 'tab', type: 'join', name: '', mode: 'custom', build: 'array', property: 'payload', propertyType: 'msg', key: 'topic', joiner: '\\n', joinerType: 'str', accumulate: false, timeout: '1', count: '1000', reduceRight: false, wires: [['n-batch']] },
    { id: 'n-batch', z: 'tab', type: 'influxdb batch', influxdb: 'influx', name: '', precision: 'ms', retentionPolicy: '', wires: [] },
  ];
}

export interface NodeRedResult extends DeliveryFigures {
  flow: NodeRedFlow;
  nodeRed: ProcFigures;
}

/** Points Node-RED stored per CPU-second of its own: the peer's side of the measure. */
export function nodeRedPerCpu(n: NodeRedResult): number | undefined {
  return n.nodeRed.cpuSeconds > 0 ? n.stored / n.nodeRed.cpuSeconds : undefined;
}

export async function nodeRed(ctx: BenchContext, o: { flow: NodeRedFlow; qos: 0 | 1; mosquittoPort: number; messages: number }): Promise<NodeRedResult> {
  const name = `node-red-${o.flow}-qos${o.qos}`;
  const dir = ctx.folder(name);
  const run = runId(name);
  const flowFile = join(dir, 'flows.json');
  writeFileSync(flowFile, JSON.stringify(flows(o.flow, o.mosquittoPort, ctx.influx.port, o.qos), null, 1));
  const settings = join(dir, 'settings.js');
  writeFileSync(
    settings,
    `module.exports = { uiHost: '127.0.0.1', uiPort: ${await freePort()}, httpAdminRoot: false, httpNodeRoot: false, flowFile: ${JSON.stringify(flowFile)}, userDir: ${JSON.stringify(dir)}, credentialSecret: false, logging: { console: { level: 'info' } }, editorTheme: { tours: false } };\n`,
  );
  const m = launch(process.execPath, [RED, '--settings', settings, '--userDir', dir]);
  try {
    await waitFor('Node-RED connected to mosquitto', async () => /Connected to broker/.test(m.output()), 60_000, m);
    const sampler = new ProcSampler(m.proc.pid!).start();
    const influxd = new ProcSampler(ctx.influx.pid).start();
    const load = await runLoadProcess({ host: '127.0.0.1', port: o.mosquittoPort, devices: ctx.sizes.devices, messages: o.messages, qos: o.qos, rate: 0, run });
    // Node-RED has no counter of its own to poll; count in InfluxDB once a second
    const done = await waitForCount(() => countRun(ctx.influx.url, DB, MEASUREMENT, run), load.sent, { everyMs: 1000, stallMs: 20_000 });
    const proc = figures(sampler.stop());
    const influxdCpu = influxd.stop().cpuSeconds;
    const stored = await countRun(ctx.influx.url, DB, MEASUREMENT, run);
    const seconds = (done.at - load.startedAt) / 1000;
    const r: NodeRedResult = { flow: o.flow, qos: o.qos, sent: load.sent, stored, lost: load.sent - stored, seconds: round(seconds, 2), pointsPerSecond: Math.round(stored / seconds), ...otherCores(influxdCpu, load, seconds), nodeRed: proc };
    ctx.log(`${name}: ${r.pointsPerSecond} points/s, ${stored}/${load.sent} stored, ${proc.cores} cores, peak RSS ${proc.peakRssMB} MB`);
    if (r.lost > 0) ctx.log(`${name}: Node-RED's last output:\n${m.output().slice(-1500)}`);
    return r;
  } finally {
    await m.stop();
  }
}
