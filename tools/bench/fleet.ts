/**
 * The fleet scenario: 1, 2 and 3 gateways sharing one subscription (`shareGroup`) on the same
 * mosquitto, on the same QoS 1 load. Reports points per second, each instance's CPU and the loss,
 * in one run, so the table in docs/benchmarks.md shows what a second and a third gateway add on
 * this machine (whose two cores they share with mosquitto, influxd and the load generator).
 */
import { BenchGateway, type BenchContext, figures, type ProcFigures, round, runLoadProcess, waitForCount } from './harness.js';
import { countRun } from './influx.js';
import { DB, MEASUREMENT, runId } from './mqtt.js';

export interface FleetResult {
  gateways: number;
  sent: number;
  stored: number;
  lost: number;
  seconds: number;
  pointsPerSecond: number;
  /** Each instance's CPU over the run, in instance order. */
  instances: ProcFigures[];
  /** Points per CPU-second of all gateways together. */
  perCore: number;
}

function yaml(o: { instance: string; share: string; mosquittoPort: number; dir: string; influxUrl: string }, httpPort: number): string {
  return `instance: ${o.instance}
http: { listen: 127.0.0.1:${httpPort} }
influx: { url: ${o.influxUrl}, api: v1, database: ${DB} }
buffer: { dir: ${o.dir}/buffer, maxBytes: 16GiB }
mqtt:
  clients:
    - { name: mosquitto, url: "mqtt://127.0.0.1:${o.mosquittoPort}", shareGroup: ${o.share}, subscriptions: [{ topic: "bench/#", qos: 1 }] }
  routes:
    - { topic: "bench/{run}/{device}/telemetry", measurement: ${MEASUREMENT} }
log: { level: warn }
`;
}

export async function fleet(ctx: BenchContext, o: { gateways: number; mosquittoPort: number }): Promise<FleetResult> {
  const run = runId(`fleet-${o.gateways}`);
  const gws: BenchGateway[] = [];
  try {
    for (let i = 1; i <= o.gateways; i++) {
      const dir = ctx.folder(`${run}-gw-${i}`);
      // a share group and client ids of this run's own: the persistent sessions of an earlier run's
      // members stay members of their group, and mosquitto would go on giving them a share
      // (docs/scaling.md)
      gws.push(await BenchGateway.start(dir, (http) => yaml({ instance: `${run}-${i}`, share: run, mosquittoPort: o.mosquittoPort, dir, influxUrl: ctx.influx.url }, http)));
    }
    const samplers = gws.map((g) => g.sampler().start());
    const load = await runLoadProcess({ host: '127.0.0.1', port: o.mosquittoPort, devices: ctx.sizes.devices, messages: ctx.sizes.messages, qos: 1, rate: 0, run });
    const done = await waitForCount(async () => (await Promise.all(gws.map((g) => g.written()))).reduce((a, b) => a + b, 0), load.acked);
    const instances = samplers.map((s) => figures(s.stop()));
    const stored = await countRun(ctx.influx.url, DB, MEASUREMENT, run);
    const seconds = (done.at - load.startedAt) / 1000;
    const cpu = instances.reduce((a, p) => a + p.cpuSeconds, 0);
    const r: FleetResult = { gateways: o.gateways, sent: load.sent, stored, lost: load.sent - stored, seconds: round(seconds, 2), pointsPerSecond: Math.round(stored / seconds), instances, perCore: cpu > 0 ? Math.round(stored / cpu) : 0 };
    ctx.log(`fleet of ${o.gateways}: ${r.pointsPerSecond} points/s, ${stored}/${load.sent} stored, instances ${instances.map((p) => `${p.cores} cores`).join(', ')}`);
    return r;
  } finally {
    await Promise.all(gws.map((g) => g.stop()));
  }
}
