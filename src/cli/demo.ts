/**
 * `plantgate demo`: everything for a first look, on this machine, in one command:
 * an InfluxDB 1.x (influxd from the PATH, data under PLANTGATE_DATA) unless INFLUX_URL is set,
 * the gateway with its embedded broker (config/demo.yaml), and simulated CNC machines, PLCs and
 * robots over MQTT JSON, Sparkplug B and OPC UA.
 * `plantgate demo --fleet`: the same machines and robots published to a mosquitto, read by three
 * gateways that share one subscription and compute the indicators for the whole fleet
 * (config/demo-fleet.yaml; dashboards on 8081, 8082, 8083).
 */
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, formatProblem, PlantgateError } from '../core/errors.js';
import { startGateway } from '../gateway/gateway.js';
import { INFLUXD_MISSING, startInfluxd, type Influxd } from '../../tools/servers/influxd.js';
import { MOSQUITTO_MISSING, startMosquitto } from '../../tools/servers/mosquitto.js';
import { findBinary } from '../../tools/servers/process.js';
import { startDeviceFleet } from '../../simulators/mqtt-devices.js';
import { startRobotFleet } from '../../simulators/mqtt-robots.js';
import { cncFleet } from '../../simulators/opcua-cnc.js';
import { plcFleet } from '../../simulators/opcua-plc.js';
import { startSparkplugFleet } from '../../simulators/sparkplug-edge.js';
import { guardRejections } from './process-guard.js';
import { untilSignal } from './signals.js';

export async function runDemo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { interval: { type: 'string', default: '1000' }, fleet: { type: 'boolean', default: false } } });
  const dataDir = resolve(process.env.PLANTGATE_DATA ?? './data/demo');
  process.env.PLANTGATE_DATA = dataDir;
  process.env.PLANTGATE_HOME ??= fileURLToPath(new URL('../..', import.meta.url));
  process.env.PLANTGATE_OPCUA_PORT ??= '4840';
  process.env.PLANTGATE_OPCUA_PLC_PORT = String(Number(process.env.PLANTGATE_OPCUA_PORT) + 1);
  let influxd: Influxd | undefined;
  if (!process.env.INFLUX_URL) {
    if (!findBinary('influxd')) {
      process.stderr.write(`plantgate demo: ${INFLUXD_MISSING}\n`);
      return 1;
    }
    influxd = await startInfluxd({ dataDir: join(dataDir, 'influxdb'), port: Number(process.env.PLANTGATE_INFLUX_PORT ?? 0) || undefined });
    process.env.INFLUX_URL = influxd.url;
  }
  if (values.fleet) return runFleetDemo(dataDir, influxd, Number(values.interval));
  const configFile = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url));
  let config;
  try {
    config = loadConfigFile(configFile);
  } catch (err) {
    await influxd?.stop();
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n`);
      return 1;
    }
    throw err;
  }
  // OPC UA: two CNC machines and a heat-treatment PLC of the Anshan enterprise, on real servers
  // (started first, so the gateway's first connection finds them)
  const opcuaPort = Number(process.env.PLANTGATE_OPCUA_PORT);
  const opcua = [
    ...cncFleet({ servers: 1, machinesPerServer: 2, basePort: opcuaPort, pkiDir: join(dataDir, 'sim-pki'), security: 'both' }),
    ...plcFleet({ servers: 1, plcsPerServer: 1, basePort: opcuaPort + 1, pkiDir: join(dataDir, 'sim-pki'), security: 'both' }),
  ];
  // what has started is stopped again when something after it cannot start (else influxd and the
  // simulators would keep the process alive, serving nothing)
  const started: { stop(): Promise<void> }[] = influxd ? [influxd] : [];
  const unwind = async (err: unknown): Promise<never> => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw err;
  };
  for (const s of opcua) {
    await s.start().catch((err: Error) => unwind(new PlantgateError('PG_ERR_LISTEN', `OPC UA simulator ${s.url} cannot start: ${err.message} (PLANTGATE_OPCUA_PORT chooses another port)`, false, { cause: err })));
    started.push(s);
  }
  const gw = await startGateway(config).catch(unwind);
  guardRejections(gw.log);
  const mqttUrl = `mqtt://${config.mqtt.broker!.listen.host}:${gw.broker!.port}`;
  // Machines and robots of three of the registry's enterprises (seeds/liaoning-demo-registry.yaml);
  // the other enterprises stay unconnected, so the indicators are not trivially 100%.
  const intervalMs = Number(values.interval);
  const fleets = [
    ...(await demoPlants(mqttUrl, intervalMs)),
    // Sparkplug B: one edge node of the Anshan enterprise with two robots and a forging press
    await startSparkplugFleet({ url: mqttUrl, group: 'as-metallurgical-equipment', nodes: 1, robots: 2, machines: 1, intervalMs }),
  ];
  const http = `http://${config.http.listen.host}:${gw.http.port}`;
  process.stdout.write(
    [
      '',
      'plantgate demo is running:',
      `  dashboard   ${http}/   (JSON: ${http}/api/status, metrics: ${http}/metrics)`,
      `  MQTT broker ${mqttUrl}   (14 simulated CNC machines and 11 robots of 3 enterprises publishing)`,
      `  Sparkplug B group as-metallurgical-equipment, edge node edge-01 (2 robots, 1 machine) on the same broker`,
      `  OPC UA      ${opcua.map((s) => s.url).join(', ')}   (2 CNC machines, 1 PLC; try: npx plantgate browse ${opcua[0]!.url})`,
      `  indicators  ${http}/api/indicators   (registry: seeds/liaoning-demo-registry.yaml, window 1 min)`,
      `  InfluxDB    ${process.env.INFLUX_URL}   database "factory"${influxd ? `, data in ${influxd.dataDir}` : ''}`,
      `  try: curl -s '${process.env.INFLUX_URL}/query?db=factory' --data-urlencode 'q=SELECT count(*) FROM cnc'`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  await untilSignal();
  await Promise.all(fleets.map((f) => f.stop()));
  await gw.stop();
  for (const s of opcua) await s.stop();
  await influxd?.stop();
  return 0;
}

/** The machines and robots of three of the registry's enterprises, publishing to `url`. */
async function demoPlants(url: string, intervalMs: number) {
  return [
    await startDeviceFleet({ url, site: 'sy-machine-tool', devices: 8, intervalMs, qos: 1 }),
    await startDeviceFleet({ url, site: 'dl-marine', devices: 4, intervalMs, qos: 1 }),
    await startDeviceFleet({ url, site: 'dl-auto', devices: 2, intervalMs, qos: 1 }),
    await startRobotFleet({ url, site: 'sy-machine-tool', robots: 2, intervalMs }),
    await startRobotFleet({ url, site: 'dl-marine', robots: 3, intervalMs }),
    await startRobotFleet({ url, site: 'dl-auto', robots: 6, intervalMs }),
  ];
}

async function runFleetDemo(dataDir: string, influxd: Influxd | undefined, intervalMs: number): Promise<number> {
  if (!findBinary('mosquitto')) {
    await influxd?.stop();
    process.stderr.write(`plantgate demo --fleet: ${MOSQUITTO_MISSING}\n`);
    return 1;
  }
  const started: { stop(): Promise<void> }[] = influxd ? [influxd] : [];
  const unwind = async (err: unknown): Promise<never> => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    throw err;
  };
  const mosquitto = await startMosquitto({ dir: join(dataDir, 'mosquitto') }).catch(unwind);
  started.push(mosquitto);
  const configFile = fileURLToPath(new URL('../../config/demo-fleet.yaml', import.meta.url));
  const basePort = Number(process.env.PLANTGATE_FLEET_HTTP_PORT ?? 8081);
  const gateways = [];
  for (let i = 1; i <= 3; i++) {
    const env = { ...process.env, INSTANCE: `gw-${i}`, PLANTGATE_HTTP: `127.0.0.1:${basePort + i - 1}`, PLANTGATE_DATA: join(dataDir, `gw-${i}`), MQTT_URL: mosquitto.url };
    let config;
    try {
      config = loadConfigFile(configFile, env);
    } catch (err) {
      if (err instanceof ConfigError) process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n`);
      return unwind(err);
    }
    const gw = await startGateway(config).catch(unwind);
    started.push(gw);
    gateways.push(gw);
  }
  guardRejections(gateways[0]!.log);
  const plants = await demoPlants(mosquitto.url, intervalMs);
  process.stdout.write(
    [
      '',
      'plantgate demo --fleet is running: three gateways share one subscription on a mosquitto',
      ...gateways.map((g) => `  ${g.config.instance}   http://127.0.0.1:${g.http.port}/`),
      `  MQTT        ${mosquitto.url}   (14 simulated CNC machines and 11 robots publishing; each message goes to one gateway)`,
      `  indicators  fleet scope: every dashboard shows the same values, counted over all three gateways`,
      `  InfluxDB    ${process.env.INFLUX_URL}   database "factory" (presence records in indicator_presence)`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  await untilSignal();
  await Promise.all(plants.map((p) => p.stop()));
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  return 0;
}
