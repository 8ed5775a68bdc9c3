/**
 * The floor scenario: the MQTT libraries plantgate builds on, alone (tools/bench/floor-process.mjs),
 * on the same QoS 1 load as the gateway runs: aedes as the embedded broker, mqtt-packet (aedes'
 * parser) on a bare socket, what a path past aedes could not go below, and mqtt.js subscribed
 * through mosquitto. Each takes every message, acknowledges it and keeps nothing. Its CPU per
 * message is what no gateway on that library can go below, so the ratio of Node-RED's CPU per
 * message to it is the most such a gateway could reach against Node-RED per CPU-second even if
 * its own work (decode, checks, encoding, the durable buffer, the writes) cost nothing.
 */
import { join } from 'node:path';
import { GATEWAY_NODE_FLAGS } from '../servers/gateway-process.js';
import { freePort, launch, waitFor } from '../servers/process.js';
import { type BenchContext, figures, type ProcFigures, round, runLoadProcess, waitForCount } from './harness.js';
import { runId } from './mqtt.js';
import { ProcSampler } from './proc-stats.js';

const SCRIPT = join(import.meta.dirname, 'floor-process.mjs');

/** aedes (the embedded broker), mqtt-packet (its parser on a bare socket: a fast path's floor), mqtt.js (the client, through mosquitto). */
export type Library = 'aedes' | 'mqtt-packet' | 'mqtt.js';

export interface FloorResult {
  library: Library;
  via: 'embedded' | 'mosquitto';
  qos: 1;
  messages: number;
  /** Messages the library took (all of them, or the run failed). */
  taken: number;
  seconds: number;
  messagesPerSecond: number;
  process: ProcFigures;
  messagesPerCore: number;
  microsPerMessage: number;
}

export async function floor(ctx: BenchContext, o: { library: Library; mosquittoPort?: number }): Promise<FloorResult> {
  const via = o.library === 'mqtt.js' ? 'mosquitto' : 'embedded';
  const run = runId(`floor-${via}`);
  const port = via === 'embedded' ? await freePort() : o.mosquittoPort!;
  const args = o.library === 'mqtt.js' ? ['mqttjs', `mqtt://127.0.0.1:${port}`, `bench/${run}/#`] : [o.library, String(port)];
  // the gateway's own V8 flags, so the library runs as it does inside plantgate
  const m = launch(process.execPath, [...GATEWAY_NODE_FLAGS, SCRIPT, ...args]);
  let ready = false;
  let taken = 0;
  let rest = '';
  m.proc.stdout!.on('data', (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop()!;
    for (const l of lines) {
      if (l === 'ready') ready = true;
      else if (l.startsWith('count ')) taken = Number(l.slice(6));
    }
  });
  try {
    await waitFor(`${o.library} alone`, async () => ready, 30_000, m);
    const sampler = new ProcSampler(m.proc.pid!).start();
    const load = await runLoadProcess({ host: '127.0.0.1', port, devices: ctx.sizes.devices, messages: ctx.sizes.messages, qos: 1, rate: 0, run });
    const done = await waitForCount(async () => taken, load.sent, { stallMs: 5000 });
    const proc = figures(sampler.stop());
    const seconds = (done.at - load.startedAt) / 1000;
    const r: FloorResult = {
      library: o.library,
      via,
      qos: 1,
      messages: load.sent,
      taken: done.count,
      seconds: round(seconds, 2),
      messagesPerSecond: Math.round(done.count / seconds),
      process: proc,
      messagesPerCore: proc.cpuSeconds > 0 ? Math.round(done.count / proc.cpuSeconds) : 0,
      microsPerMessage: done.count > 0 ? round((proc.cpuSeconds / done.count) * 1e6, 2) : 0,
    };
    ctx.log(`${o.library} alone: ${r.messagesPerSecond} messages/s, ${r.taken}/${r.messages} taken, ${proc.cores} cores, ${r.microsPerMessage} µs CPU per message`);
    return r;
  } finally {
    await m.stop();
  }
}
