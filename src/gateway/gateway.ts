/**
 * Builds a running gateway from a validated configuration: one place that knows every component
 * factory, so the pipeline itself only knows the component interfaces.
 */
import { resolve } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { DiskBuffer } from '../buffer/disk-buffer.js';
import { PlantgateError } from '../core/errors.js';
import { isLoopback } from '../core/net.js';
import { CardinalityGuard } from '../processors/cardinality/cardinality.js';
import { LOG_REDACT_PATHS } from '../security/secrets.js';
import type { PlantgateConfig } from '../config/schema.js';
import { DeadLetters } from '../deadletters/dead-letters.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { Guard } from '../processors/guard/guard.js';
import { InfluxSink } from '../sinks/influxdb/influx-sink.js';
import { BrokerClient } from '../sources/mqtt/broker-client.js';
import { EmbeddedBroker } from '../sources/mqtt/embedded-broker.js';
import { TopicRouter } from '../sources/mqtt/router.js';
import { SparkplugHost } from '../sources/sparkplug/host.js';
import { StatusServer } from '../status/server.js';
import { IndicatorEngine } from '../indicators/engine.js';
import { loadRegistry, loadTargets } from '../indicators/registry.js';

export interface Gateway {
  config: PlantgateConfig;
  pipeline: Pipeline;
  http: StatusServer;
  broker?: EmbeddedBroker;
  sparkplug?: SparkplugHost;
  indicators?: IndicatorEngine;
  log: Logger;
  stop(): Promise<void>;
}

/**
 * The one root logger; components log through children that carry `component`. JSON lines by
 * default (for journald, Docker and log shippers); `pretty` renders them for a person with
 * pino-pretty, which `auto` picks when standard output is a terminal.
 */
export function createLogger(level: string, destination?: DestinationStream, format: 'auto' | 'json' | 'pretty' = 'json'): Logger {
  // secrets never reach the log, whatever object a component logs (see security/secrets.ts)
  const opts = { level, base: { app: 'plantgate' }, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } };
  if (destination) return pino(opts, destination);
  if (format === 'pretty' || (format === 'auto' && process.stdout.isTTY)) {
    return pino({ ...opts, base: undefined }, pretty({ colorize: process.stdout.isTTY, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', messageKey: 'msg', sync: true }));
  }
  return pino(opts);
}

export async function startGateway(config: PlantgateConfig, log: Logger = createLogger(config.log.level, undefined, config.log.format)): Promise<Gateway> {
  const sinkName = `influx-${config.influx.api}`;
  const sinkNames = [config.influx.name ?? sinkName];
  const buffer = new DiskBuffer('buffer', { ...config.buffer, dir: resolve(config.buffer.dir) }, sinkNames, log);
  const deadLetters = new DeadLetters(resolve(config.deadLetters.file), config.deadLetters, log);
  const sink = new InfluxSink(sinkNames[0]!, config.influx, buffer, deadLetters, log);
  const pipeline = new Pipeline(buffer, [new Guard('guard', config.guard, config.influx.api === 'v2' ? 'native' : 'integer'), new CardinalityGuard('cardinality', config.cardinality)], [sink], deadLetters, log);

  const router = new TopicRouter(config.mqtt.routes);
  // added before its transports: sources start in order, so its sessions are loaded before the
  // first message arrives, and stop in reverse, so it persists after the last one
  let sparkplug: SparkplugHost | undefined;
  if (config.sparkplug) {
    sparkplug = new SparkplugHost('sparkplug', { ...config.sparkplug, stateFile: resolve(config.sparkplug.stateFile!) }, { ...pipeline.sourceContext(), log: log.child({ component: 'sparkplug' }) });
    pipeline.addSource(sparkplug);
  }
  let broker: EmbeddedBroker | undefined;
  if (config.mqtt.broker) {
    broker = new EmbeddedBroker('mqtt-broker', config.mqtt.broker, router, { ...pipeline.sourceContext(), log: log.child({ component: 'mqtt-broker' }) });
    if (sparkplug) broker.useSparkplug(sparkplug);
    pipeline.addSource(broker);
  }
  for (const c of config.mqtt.clients) {
    const name = c.name ?? `mqtt-client-${c.clientId}`;
    const client = new BrokerClient(name, c, router, { ...pipeline.sourceContext(), log: log.child({ component: name }) });
    if (sparkplug) client.useSparkplug(sparkplug);
    pipeline.addSource(client);
  }

  // node-opcua is loaded only when an endpoint is configured: it is large, and on import it runs
  // a self-test that generates an RSA key, which MQTT-only gateways and `plantgate check` skip
  let certificates: { dispose(): Promise<void> } | undefined;
  if (config.opcua.endpoints.length) {
    const [{ OpcuaEndpointSource }, { openCertificateManager }, { routeOpcuaLogs }] = await Promise.all([
      import('../sources/opcua/opcua-source.js'),
      import('../sources/opcua/pki.js'),
      import('../sources/opcua/logging.js'),
    ]);
    routeOpcuaLogs(log);
    // one certificate manager for all endpoints: one client identity, one trust list
    const manager = openCertificateManager(resolve(config.opcua.pkiDir!));
    certificates = manager;
    for (const e of config.opcua.endpoints) {
      pipeline.addSource(new OpcuaEndpointSource(e.name, e, { manager, applicationName: config.opcua.applicationName }, { ...pipeline.sourceContext(), log: log.child({ component: e.name }) }));
    }
  }

  let indicators: IndicatorEngine | undefined;
  if (config.indicators) {
    // master data is read once at start; a bad registry stops the start with its errors
    const ic = config.indicators;
    indicators = new IndicatorEngine('indicators', ic, loadRegistry(resolve(ic.registry)), loadTargets(resolve(ic.targets)), { ...pipeline.sourceContext(), log: log.child({ component: 'indicators' }) });
    const engine = indicators;
    pipeline.addTap((points) => engine.observe(points));
    if (sparkplug) sparkplug.reportPresence((points) => engine.observe(points), Math.min(5000, ic.window / 3));
    pipeline.addSource(engine);
  }

  const http = new StatusServer(config.http, pipeline, indicators);
  http.sparkplug = sparkplug;
  if (config.opcua.endpoints.length) {
    http.trustOpcuaServer = async (endpoint) => {
      const source = pipeline.sources.find((s) => s.name === endpoint && s.type === 'opcua') as { trustServer(): Promise<{ thumbprint: string; subject?: string }> } | undefined;
      if (!source) throw new Error(`no OPC UA endpoint named ${JSON.stringify(endpoint)}`);
      return source.trustServer();
    };
  }
  const { host, port } = config.http.listen;
  if (!isLoopback(host) && (!config.http.auth || config.http.auth.readAccess === 'open')) {
    log.warn({ listen: `${host}:${port}` }, 'the status page is readable by anyone who can reach this address (http.auth.readAccess: authenticated to require credentials)');
  }
  try {
    await pipeline.start();
    await http.start().catch((err: Error) => {
      throw new PlantgateError(err instanceof PlantgateError ? err.code : 'PG_ERR_START', `status page (http) cannot start: ${err.message}`, false, { cause: err });
    });
  } catch (err) {
    await http.stop();
    await pipeline.stop();
    await certificates?.dispose();
    throw err;
  }
  log.info({ http: `${config.http.listen.host}:${http.port}`, sources: pipeline.sources.map((s) => s.name), sinks: sinkNames }, 'plantgate running');
  let stopping: Promise<void> | undefined;
  return {
    config,
    pipeline,
    http,
    broker,
    sparkplug,
    indicators,
    log,
    stop() {
      stopping ??= (async () => {
        await http.stop();
        await pipeline.stop();
        await certificates?.dispose();
      })();
      return stopping;
    },
  };
}
