/**
 * Issue 19, events and alarms, against real node-opcua servers and a real influxd: the CNC
 * simulator raises and clears conditions of the CNC companion spec's CncAlarmType; every one
 * arrives as event points with its severity, message and states, the active ones are listed in
 * the status, and after a gateway restart ConditionRefresh brings them back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CNC_NAMESPACE, cncFleet, type CncMachine } from '../simulators/opcua-cnc.js';
import { plcFleet, type PlcMachine } from '../simulators/opcua-plc.js';
import type { SimServer } from '../simulators/opcua-server.js';
import { freePort } from '../tools/servers/process.js';
import type { OpcuaEndpointSource } from '../src/sources/opcua/opcua-source.js';
import { onPage } from './helpers/browser.js';
import { testGateway } from './helpers/gateway.js';
import { eventually, rows, tempDir, useInfluxd, type InfluxdHandle } from './helpers/servers.js';

interface EventDetails {
  entries: Array<{ status: string; statusCode: string; events: number }>;
  conditionRefresh: string;
  activeAlarms: Array<{ source: string; condition: string; type: string; severity: number; message: string; active: boolean; acked: boolean }>;
  activeAlarmsBySeverity: Record<string, number>;
}

describe('OPC UA: alarms and events', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let sim: SimServer;
  const pki = tempDir('opcua-events');
  let dir: string;
  let gw: Awaited<ReturnType<typeof testGateway>> | undefined;
  const machine = (i: number) => sim.models[i] as CncMachine;
  const yaml = () => `
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: events, flushInterval: 200ms }
buffer: { dir: "${dir}/buffer" }
opcua:
  pkiDir: ${pki.path}/gw
  endpoints:
    - name: cnc
      url: ${sim.url}
      namespaces: { cnc: "http://opcfoundation.org/UA/CNC" }
      publishingInterval: 200
      nodes:
        - { nodeId: "nsu=${CNC_NAMESPACE};s=cnc-01.Production.AlarmActive", field: alarm_active }
      events:
        - { types: [AlarmConditionType], fields: ["cnc:AlarmIdentifier"] }
        - { source: "nsu=${CNC_NAMESPACE};s=no-such-machine" }
`;
  const events = () => ((gw!.pipeline.sources.find((s) => s.name === 'cnc') as OpcuaEndpointSource).status().details as { events: EventDetails }).events;

  beforeAll(async () => {
    // timeScale 1: a machine's own alarms are rare and last 18 s; the test raises and resets them
    sim = cncFleet({ servers: 1, machinesPerServer: 2, basePort: await freePort(), pkiDir: pki.path, security: 'none', intervalMs: 200, timeScale: 1 })[0]!;
    await sim.start();
    dir = `${pki.path}/data`;
    gw = await testGateway(yaml(), {}, { reuseDir: dir });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await sim?.stop();
    pki.remove();
  }, 60_000);

  it('stores a raised and a cleared alarm with severity, message and states, and lists it while active', async () => {
    await eventually("events subscribed", async () => events().entries[0]!, (e) => e.status === "ok", 20_000);
    // a bad notifier is shown on its entry and leaves the rest running
    expect(events().entries[1]!.status).toBe('failed');
    expect(events().entries[1]!.statusCode).toMatch(/BadNodeIdUnknown|not on the server|Bad/);
    machine(0).raiseAlarm(Date.now(), 0); // 1010 Spindle overload, severity 800
    const active = await eventually('alarm active in the status', async () => events().activeAlarms, (a) => a.length === 1, 20_000);
    expect(active[0]).toMatchObject({ source: 'cnc-01', condition: 'CncAlarm', type: 'CncAlarmType', severity: 800, message: '1010 Spindle overload', active: true, acked: false });
    expect(events().activeAlarmsBySeverity.medium_high).toBe(1);
    // on the status page, in a real browser, and in /metrics
    const base = `http://127.0.0.1:${gw!.http.port}`;
    await onPage(base, async (page) => {
      await expect.poll(() => page.locator('#alarms tr[data-alarm="cnc/cnc-01/CncAlarm"]').textContent(), { timeout: 10_000 }).toMatch(/1010 Spindle overload.*active, unacknowledged/);
      expect(await page.locator('#alarms h3').textContent()).toBe('Active alarms (1)');
    });
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/plantgate_opcua_active_alarms\{component="cnc",severity="medium_high"\} 1/);
    machine(0).resetAlarm();
    await eventually('alarm cleared in the status', async () => events().activeAlarms.length, (n) => n === 0, 20_000);
    const stored = await eventually(
      'both events stored',
      async () => rows(await db.query(`SELECT * FROM opcua_events WHERE "source" = 'cnc-01' ORDER BY time`, 'events')),
      (r) => r.length >= 2,
      20_000,
    );
    const raised = stored.find((r) => r.active === true)!;
    const cleared = stored.find((r) => r.active === false)!;
    expect(raised).toMatchObject({ endpoint: 'cnc', condition: 'CncAlarm', event_type: 'CncAlarmType', severity_band: 'medium_high', message: '1010 Spindle overload', acked: false, retain: true, AlarmIdentifier: '1010' });
    expect(cleared).toMatchObject({ message: '1010 Spindle overload cleared', acked: true, retain: false });
    expect(Number(raised.severity)).toBe(800);
    expect(typeof raised.event_id).toBe('string');
  }, 60_000);

  it('brings the alarms still active back after a gateway restart (ConditionRefresh)', async () => {
    machine(1).raiseAlarm(Date.now(), 2); // 3102 Axis Z following error, 900
    await eventually('alarm active', async () => events().activeAlarms.length, (n) => n === 1, 20_000);
    await gw!.stop();
    gw = await testGateway(yaml(), {}, { reuseDir: dir });
    const back = await eventually('alarm back after the restart', async () => events(), (a) => a.activeAlarms.length === 1, 20_000).then((e) => e.activeAlarms);
    expect(back[0]).toMatchObject({ source: 'cnc-02', severity: 900, message: '3102 Axis Z following error', active: true });
    expect(events().conditionRefresh).toBe('ok');
    machine(1).resetAlarm();
    await eventually('alarm cleared', async () => events().activeAlarms.length, (n) => n === 0, 20_000);
  }, 60_000);
});

describe('OPC UA: a PLC limit alarm (ExclusiveLevelAlarmType)', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));
  let sim: SimServer;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  const pki = tempDir('opcua-plc-alarm');
  const plc = () => sim.models[0] as PlcMachine;

  beforeAll(async () => {
    sim = plcFleet({ servers: 1, plcsPerServer: 1, basePort: await freePort(), pkiDir: pki.path, security: 'none', intervalMs: 100 })[0]!;
    plc().levelOverride = 60;
    await sim.start();
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: ${db.url}, database: plcalarm, flushInterval: 200ms }
buffer: { dir: "\${DATA}/buffer" }
opcua:
  pkiDir: ${pki.path}/gw
  endpoints:
    - name: plc
      url: ${sim.url}
      publishingInterval: 200
      events:
        - { types: [ExclusiveLevelAlarmType], fields: [LimitState/CurrentState] }
    - name: plc-severe
      url: ${sim.url}
      publishingInterval: 200
      events:
        - { minSeverity: 800, measurement: severe_events }
`);
  }, 60_000);

  afterAll(async () => {
    await gw?.cleanup();
    await sim?.stop();
    pki.remove();
  }, 60_000);

  it('stores every transition of the tank level alarm the PLC raises, with its severity and message', async () => {
    const src = () => (gw.pipeline.sources.find((s) => s.name === 'plc') as OpcuaEndpointSource).status().details as { events: EventDetails };
    await eventually('events subscribed', async () => src().events.entries[0]!.status, (st) => st === 'ok', 20_000);
    const from = plc().alarmLog.length;
    for (const level of [95, 85, 60, 35, 25, 60]) {
      plc().levelOverride = level;
      await new Promise((r) => setTimeout(r, 700));
      if (level === 95) expect((await eventually('HighHigh active', async () => src().events.activeAlarms, (a) => a.length === 1, 10_000))[0]).toMatchObject({ source: 'PLC_01.Tank', condition: 'TankLevel', severity: 900 });
    }
    const raised = plc().alarmLog.slice(from);
    expect(raised.length).toBeGreaterThanOrEqual(5);
    const stored = await eventually(
      'every transition stored',
      async () => rows(await db.query(`SELECT message, severity, active, "LimitState.CurrentState" FROM opcua_events WHERE condition = 'TankLevel' ORDER BY time`, 'plcalarm')),
      (r) => r.length >= raised.length,
      20_000,
    );
    // every message the PLC raised is stored with its severity and state
    for (const a of raised) {
      const row = stored.find((r) => r.message === a.message);
      expect(row, a.message).toBeDefined();
      expect(Number(row!.severity)).toBe(a.severity);
      expect(row!.active).toBe(a.active);
    }
    expect(raised.map((a) => a.state)).toEqual(expect.arrayContaining(['HighHigh', 'High', 'Low', 'LowLow']));
    // a selected field of the event's own: the limit state machine's current state, as text
    // (node-opcua reports some transitions as BadStateNotActive there; the message has the state)
    expect(stored.map((r) => r['LimitState.CurrentState'])).toEqual(expect.arrayContaining(['HighHigh', 'Low']));
    await eventually('no alarm active at normal level', async () => src().events.activeAlarms.length, (n) => n === 0, 10_000);
    // the where clause: the other endpoint asked for severity 800 and up only
    const severe = rows(await db.query(`SELECT severity, message FROM severe_events WHERE condition = 'TankLevel'`, 'plcalarm'));
    expect(severe.map((r) => Number(r.severity)).sort()).toEqual(raised.filter((a) => a.severity >= 800).map((a) => a.severity).sort());
  }, 60_000);
});

