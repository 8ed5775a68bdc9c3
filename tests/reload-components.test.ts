/**
 * Issue 21: the reload paths the load test does not take. A changed Sparkplug host restarts with
 * the MQTT clients whose wills and subscriptions come from it, and then follows the groups its new
 * section names; the status page moves to a new address without going dark (the new listener is
 * open before the old one closes); a change of the indicators' scope, or (scope fleet) of the
 * InfluxDB they read, builds the engine again.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparkplugEdgeNode } from '../simulators/sparkplug-edge.js';
import { loadConfigFile } from '../src/config/load.js';
import { createLogger, Gateway, inputsOf } from '../src/gateway/gateway.js';
import type { ReloadReport } from '../src/status/control.js';
import { freePort } from '../tools/servers/process.js';
import { eventually, mosquitto, tempDir, useInfluxd, type InfluxdHandle } from './helpers/servers.js';
import { targetsYaml } from './helpers/targets.js';

const TOKEN = 'reload-components-token-0123';

describe('reloading the Sparkplug host, the status page and the indicators', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let broker: Awaited<ReturnType<typeof mosquitto>>;
  const dir = tempDir('reload-comp');
  const file = join(dir.path, 'plantgate.yaml');
  let gw: Gateway;
  let edge: SparkplugEdgeNode | undefined;
  const yaml = (o: { groups: string; port: number; scope?: string; database?: string }) => `
http: { listen: 127.0.0.1:${o.port}, auth: { token: ${TOKEN} } }
influx: { url: ${db.url}, database: ${o.database ?? 'reload_comp'}, flushInterval: 100ms }
buffer: { dir: ${dir.path}/buffer }
mqtt:
  clients: [{ name: plant-broker, url: "${broker.url}", clientId: reload-comp }]
sparkplug: { mode: active, groups: [${o.groups}], reorderTimeout: 300ms }
indicators: { registry: ${dir.path}/registry.yaml, targets: ${dir.path}/targets.yaml, window: 5s, scope: ${o.scope ?? 'local'} }
`;
  const reload = async (port: number) => (await (await fetch(`http://127.0.0.1:${port}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).json()) as ReloadReport;
  const nodes = () => ((gw.sparkplug!.status().details!.nodes ?? []) as { group: string; edge: string; online: boolean }[]).map((n) => `${n.group}/${n.edge}:${n.online ? 'online' : 'offline'}`);

  beforeAll(async () => {
    broker = await mosquitto();
    writeFileSync(join(dir.path, 'registry.yaml'), 'region: { name: T }\nenterprises: []\n');
    writeFileSync(join(dir.path, 'targets.yaml'), targetsYaml());
  }, 60_000);
  afterAll(async () => {
    await edge?.stop();
    await gw?.stop();
    await broker?.stop();
    broker?.remove();
    dir.remove();
  }, 60_000);

  it('restarts the host with its clients for a new group list, moves the page, and rebuilds the engine for a new scope', async () => {
    const port1 = await freePort();
    writeFileSync(file, yaml({ groups: 'g1', port: port1 }));
    gw = await Gateway.start(inputsOf(loadConfigFile(file)), { load: () => loadConfigFile(file), file, log: createLogger('silent') });
    const client = () => gw.pipeline.sources.find((s) => s.name === 'plant-broker')!.status().details as { subscriptions: string[]; connects: number };
    await eventually('subscribed to g1', async () => client(), (c) => c.subscriptions.includes('spBv1.0/g1/#'), 10_000);

    // group g2 is not followed yet
    edge = new SparkplugEdgeNode({ url: broker.url, group: 'g2', edge: 'e1', devices: [{ id: 'robot-001', kind: 'robot' }], intervalMs: 0 });
    await edge.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(nodes()).toEqual([]);

    writeFileSync(file, yaml({ groups: 'g1, g2', port: port1 }));
    const r1 = await reload(port1);
    expect(r1.outcome).toBe('applied');
    expect(r1.changes.map((c) => `${c.action} ${c.component}`)).toEqual(['restarted sparkplug', 'restarted plant-broker']);
    await eventually('subscribed to g2 on the new connection', async () => client(), (c) => c.subscriptions.includes('spBv1.0/g2/#') && c.connects === 1, 10_000);
    // the new host asks the node it sees data from without a birth for one, and follows it
    await edge.publishData();
    await eventually('g2/e1 followed', async () => nodes(), (n) => n.includes('g2/e1:online'), 15_000);

    // the page moves: the new address answers before the old one is closed
    const port2 = await freePort();
    writeFileSync(file, yaml({ groups: 'g1, g2', port: port2 }));
    const r2 = await reload(port1);
    expect(r2.changes.map((c) => `${c.action} ${c.component}`)).toEqual(['updated http']);
    expect((await fetch(`http://127.0.0.1:${port2}/healthz`)).ok).toBe(true);
    await eventually('the old address closed', async () => fetch(`http://127.0.0.1:${port1}/healthz`).then(() => 'open', () => 'closed'), (s) => s === 'closed', 10_000);

    // a new scope builds the engine again (a fleet view is part of it)
    writeFileSync(file, yaml({ groups: 'g1, g2', port: port2, scope: 'fleet' }));
    const r3 = await reload(port2);
    expect(r3.changes.map((c) => `${c.action} ${c.component}`)).toEqual(['restarted indicators']);
    expect(gw.indicators!.scope).toBe('fleet');

    // with scope fleet the engine reads the sink's InfluxDB: a new target rebuilds it with the sink
    // (refused while the buffer still holds lines for the old target, so tried until it has none)
    writeFileSync(file, yaml({ groups: 'g1, g2', port: port2, scope: 'fleet', database: 'reload_comp2' }));
    const r4 = await eventually('the new target applied', () => reload(port2), (r) => r.outcome === 'applied', 10_000);
    expect(r4.changes.map((c) => `${c.action} ${c.component}`)).toEqual(['restarted influx-v1', 'restarted indicators']);
    // while a new batch size changes the sink alone
    writeFileSync(file, yaml({ groups: 'g1, g2', port: port2, scope: 'fleet', database: 'reload_comp2' }).replace('flushInterval: 100ms', 'flushInterval: 100ms, batchSize: 100'));
    expect((await reload(port2)).changes.map((c) => `${c.action} ${c.component}`)).toEqual(['restarted influx-v1']);
  }, 90_000);
});
