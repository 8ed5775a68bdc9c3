/**
 * OPC UA scale: several simulator servers (`plantgate sim scale`, each a process of its own) with
 * machines of plain Double tags that change every interval; the gateway subscribes to every tag
 * (browse roots per machine) and writes into the real influxd. Measured over a steady window after
 * every monitored item has reported: values per second received, values missed against what the
 * servers produced, items that never reported, gateway CPU and RSS, and the simulators' CPU (on a
 * 2-core machine they compete with the gateway and with influxd).
 */
import { BenchGateway, type BenchContext, bufferQueue, figures, type ProcFigures, round, sinkWritten } from './harness.js';
import { PLANTGATE_BIN } from '../servers/gateway-process.js';
import { freePort, launch, waitFor, type Managed } from '../servers/process.js';
import { join } from 'node:path';
import { ProcSampler } from './proc-stats.js';
import { SCALE_NAMESPACE, scaleMachineName } from '../../simulators/opcua-scale.js';

export interface OpcuaScaleResult {
  items: number;
  /** `memory.heapTarget` the gateway ran with (none: V8's own schedule). */
  heapTarget?: string;
  servers: number;
  intervalMs: number;
  /** Seconds from gateway start until every item had reported. */
  setupSeconds: number;
  seconds: number;
  expectedValuesPerSecond: number;
  valuesPerSecond: number;
  /** Values the servers produced in the window that the gateway did not receive. */
  valuesMissed: number;
  /** Items that had not reported a value by the end of the window. */
  itemsSilent: number;
  itemsFailed: number;
  linesWritten: number;
  bufferBacklogLines: number;
  gateway: ProcFigures;
  simulatorsCores: number;
}

export async function opcuaScale(ctx: BenchContext, o: { name: string; tags: number; intervalMs: number; heapTarget?: string }): Promise<OpcuaScaleResult> {
  const { servers, machines, seconds } = ctx.sizes.opcua;
  const dir = ctx.folder(o.name);
  const sims: Managed[] = [];
  const ports: number[] = [];
  let gw: BenchGateway | undefined;
  try {
    for (let s = 0; s < servers; s++) {
      const port = await freePort();
      ports.push(port);
      const m = launch(process.execPath, [PLANTGATE_BIN, 'sim', 'scale', '--port', String(port), '--machines', String(machines), '--tags', String(o.tags), '--interval', String(o.intervalMs), '--pki', join(dir, 'sim-pki')]);
      sims.push(m);
    }
    for (const [i, m] of sims.entries()) await waitFor(`scale simulator on ${ports[i]}`, async () => m.output().includes(`opc.tcp://127.0.0.1:${ports[i]}`), 300_000, m);
    const items = servers * machines * o.tags;
    const t0 = Date.now();
    gw = await BenchGateway.start(dir, (http) => opcuaYaml(ctx, dir, http, ports, machines, o.intervalMs, o.heapTarget), 600_000);
    // every item reported at least once
    const nodes = async () => {
      const st = await gw!.status();
      let ok = 0;
      let failed = 0;
      let received = 0;
      for (const c of st.components) {
        if (c.kind !== 'source') continue;
        const n = c.details?.nodes as { ok: number; failed: number } | undefined;
        ok += n?.ok ?? 0;
        failed += n?.failed ?? 0;
        received += Number((c.details as { valuesReceived?: number } | undefined)?.valuesReceived ?? 0);
      }
      return { ok, failed, received, written: sinkWritten(st), queued: bufferQueue(st).lines };
    };
    const setupDeadline = Date.now() + 600_000;
    let n = await nodes();
    while (n.ok + n.failed < items && Date.now() < setupDeadline) {
      await new Promise((r) => setTimeout(r, 1000));
      n = await nodes();
    }
    const setupSeconds = (Date.now() - t0) / 1000;
    // let the first full publish cycles pass before the window starts
    await new Promise((r) => setTimeout(r, Math.max(3000, 3 * o.intervalMs)));
    const gwSampler = gw.sampler().start();
    const simSamplers = sims.map((m) => new ProcSampler(m.proc.pid!).start());
    const start = await nodes();
    const tStart = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const end = await nodes();
    const wall = (performance.now() - tStart) / 1000;
    const proc = figures(gwSampler.stop());
    const simCores = simSamplers.reduce((a, s) => a + s.stop().cores, 0);
    const expected = (items * 1000) / o.intervalMs;
    const received = end.received - start.received;
    const r: OpcuaScaleResult = {
      items,
      ...(o.heapTarget ? { heapTarget: o.heapTarget } : {}),
      servers,
      intervalMs: o.intervalMs,
      setupSeconds: round(setupSeconds, 1),
      seconds: round(wall, 1),
      expectedValuesPerSecond: Math.round(expected),
      valuesPerSecond: Math.round(received / wall),
      valuesMissed: Math.max(0, Math.round(expected * wall - received)),
      itemsSilent: items - end.ok - end.failed,
      itemsFailed: end.failed,
      linesWritten: end.written - start.written,
      bufferBacklogLines: end.queued,
      gateway: proc,
      simulatorsCores: round(simCores, 2),
    };
    ctx.log(`${o.name}: ${items} items at ${o.intervalMs} ms: ${r.valuesPerSecond}/${r.expectedValuesPerSecond} values/s, ${r.itemsSilent} silent, ${r.itemsFailed} failed, gateway ${proc.cores} cores, peak RSS ${proc.peakRssMB} MB, simulators ${r.simulatorsCores} cores`);
    return r;
  } finally {
    await gw?.stop();
    for (const m of sims) await m.stop();
  }
}

function opcuaYaml(ctx: BenchContext, dir: string, httpPort: number, ports: number[], machines: number, intervalMs: number, heapTarget?: string): string {
  const lines = ['http:', `  listen: 127.0.0.1:${httpPort}`, 'influx:', `  url: ${ctx.influx.url}`, '  api: v1', '  database: bench', 'buffer:', `  dir: ${dir}/buffer`, '  maxBytes: 16GiB', 'opcua:', `  pkiDir: ${dir}/pki`, '  endpoints:'];
  ports.forEach((port, s) => {
    lines.push(
      `    - name: scale-${s + 1}`,
      `      url: opc.tcp://127.0.0.1:${port}`,
      '      securityMode: None',
      '      securityPolicy: None',
      '      measurement: scale',
      `      tags: { server: s${s + 1} }`,
      `      samplingInterval: ${intervalMs}`,
      `      publishingInterval: ${intervalMs}`,
      '      browse:',
    );
    for (let m = 0; m < machines; m++) {
      const name = scaleMachineName(m);
      lines.push(`        - { root: "nsu=${SCALE_NAMESPACE};s=${name}", maxDepth: 1, tags: { machine: ${name} } }`);
    }
  });
  if (heapTarget) lines.push('memory:', `  heapTarget: ${heapTarget}`);
  lines.push('log:', '  level: warn', '');
  return lines.join('\n');
}
