/**
 * The registry of kinds: which components a configuration asks for, built by their factories, and
 * how each kind enters the pipeline and leaves it. The gateway builds itself from this list at
 * start, and a reload diffs the same list by component name (see gateway.ts), so a kind added here
 * is built, stopped, restarted or changed in place without a branch anywhere else.
 *
 * The order is the start order: the sink before the processors before the sources (nothing
 * arrives before it can be kept), the Sparkplug host before the MQTT transports that feed it, the
 * indicators after every source, the status server, then the cluster membership (it starts the
 * units it owns through the gateway, so everything they feed must be there).
 */
import type { Logger } from 'pino';
import { advertiseUrl, clusterMemberFactory } from '../cluster/factory.js';
import type { ClusterMember } from '../cluster/member.js';
import type { DiskBuffer } from '../buffer/disk-buffer.js';
import { bufferFactory } from '../buffer/factory.js';
import type { PlantgateConfig } from '../config/schema.js';
import type { Component } from '../core/component.js';
import { canonical, changedKeys } from '../core/factory.js';
import { holdHeapTarget } from '../core/heap-target.js';
import type { DeadLetters } from '../deadletters/dead-letters.js';
import { deadLettersFactory } from '../deadletters/factory.js';
import type { IndicatorEngine } from '../indicators/engine.js';
import { indicatorEngineFactory, type IndicatorsUnit } from '../indicators/factory.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { cardinalityFactory } from '../processors/cardinality/factory.js';
import { guardFactory } from '../processors/guard/factory.js';
import type { Processor } from '../processors/processor.js';
import { influxSinkFactory, sinkName, targetChanges } from '../sinks/influxdb/factory.js';
import type { BrokerClient } from '../sources/mqtt/broker-client.js';
import type { EmbeddedBroker } from '../sources/mqtt/embedded-broker.js';
import { brokerClientFactory, embeddedBrokerFactory } from '../sources/mqtt/factory.js';
import type { MqttSource } from '../sources/mqtt/mqtt-source.js';
import type { TopicRouter } from '../sources/mqtt/router.js';
import { opcuaEndpointFactory, opcuaIdentityFixed, type OpcuaCertificates } from '../sources/opcua/factory.js';
import type { Source, SourceContext } from '../sources/source.js';
import { sparkplugHostFactory } from '../sources/sparkplug/factory.js';
import type { SparkplugHost } from '../sources/sparkplug/host.js';
import type { GatewayControl, ReloadOptions } from '../status/control.js';
import { statusServerFactory } from '../status/factory.js';
import type { StatusServer } from '../status/server.js';

/** What the kinds are handed: the parts every component shares. */
export interface Runtime {
  log: Logger;
  pipeline: Pipeline;
  buffer: DiskBuffer;
  deadLetters: DeadLetters;
  router: TopicRouter;
  control: GatewayControl;
  /** The configuration being built or applied. */
  config(): PlantgateConfig;
  /** What the reload being applied was asked to allow. */
  reloadOptions(): ReloadOptions;
  /** The running Sparkplug host, if any (the MQTT transports publish through it). */
  sparkplug(): SparkplugHost | undefined;
  /** The OPC UA client identity, opened with the first endpoint. */
  certificates(): Promise<OpcuaCertificates>;
  ctx(name: string): SourceContext;
  /** Components of a kind that run now, by name. */
  running<T>(kind: string): Map<string, T>;
  /** The port the status server listens on (bound: the configured one may be 0). */
  httpPort(): number;
  /** In a cluster: read exactly these units (the member calls it as leases move). */
  setOwned(owned: ReadonlySet<string>): Promise<number>;
}

/** What a configuration holds beyond itself: the master data the indicators' files name. */
export interface Inputs {
  config: PlantgateConfig;
  indicators?: IndicatorsUnit;
  /** In a cluster: the units whose lease this gateway holds; only they are built. Undefined: no cluster, every unit. */
  owned?: ReadonlySet<string>;
}

/**
 * The units of work a cluster shares out, each read by exactly one member: every OPC UA endpoint
 * (a server must not get two sessions) and every Sparkplug group (one node's seq numbers must
 * reach one host). MQTT JSON routes are not units: a shared subscription spreads those.
 */
export function clusterUnits(config: PlantgateConfig): string[] {
  if (!config.cluster) return [];
  return [...config.opcua.endpoints.map((e) => `opcua/${e.name}`), ...(config.sparkplug?.groups ?? []).map((g) => `sparkplug/${g}`)];
}

const owns = (inputs: Inputs, unit: string) => !inputs.config.cluster || !inputs.owned || inputs.owned.has(unit);

export interface Instance {
  name: string;
  config: unknown;
}

/**
 * One kind. Components are `Component`s that the pipeline knows; settings (routes, log level, the
 * buffer's options) have no component of their own and only `apply` or `fixed`.
 */
export interface Kind<C = any, T = any> {
  key: string;
  instances(inputs: Inputs): { name: string; config: C }[];
  create?(name: string, config: C, rt: Runtime): T | Promise<T>;
  attach?(component: T, rt: Runtime): void;
  detach?(component: T, rt: Runtime): void;
  /** In place; false: only a restart of the component applies it. */
  reconfigure?(component: T, next: C, prev: C, rt: Runtime): boolean | Promise<boolean>;
  /** A setting without a component: make it so. */
  apply?(next: C, prev: C, rt: Runtime): void;
  /** Why this change needs a restart of the gateway (the whole reload is then refused). */
  fixed?(prev: C, next: C, rt: Runtime): string | undefined;
  /** Kinds whose restart restarts this kind's components too (their wills and subscriptions come from it). */
  follows?: string;
  /** Its components share nothing with each other: several added at once start concurrently. */
  independent?: boolean;
}

function one<C>(name: string, config: C | undefined): { name: string; config: C }[] {
  return config === undefined ? [] : [{ name, config }];
}

const sink: Kind<PlantgateConfig['influx'], Component> = {
  key: 'influxdb',
  instances: ({ config }) => one(sinkName(config.influx), config.influx),
  create: (name, config, rt) => influxSinkFactory.create(name, config, { buffer: rt.buffer, reject: rt.pipeline.reject, log: rt.log }),
  // the old sink is stopped before the new one starts: both read the same cursor
  attach: (s, rt) => {
    const old = rt.pipeline.sinks.find((x) => x.name === s.name);
    if (old) rt.pipeline.replaceSink(old, s);
    else rt.pipeline.sinks.push(s);
  },
  reconfigure: influxSinkFactory.reconfigure,
  fixed: (prev, next, rt) => {
    const fixed = influxSinkFactory.fixed!(prev, next);
    if (fixed) return fixed;
    const target = targetChanges(prev, next);
    // the buffered lines were accepted for the old target: they are written there first
    if (target.length && !rt.buffer.caughtUp(sinkName(prev)) && !rt.reloadOptions().moveBuffered) {
      return `influx.${target.join(', influx.')} changes where the data goes while the buffer still holds lines accepted for the old target: reload again once the sink has caught up, or reload with POST /api/reload?moveBuffered=true to write them to the new target`;
    }
    return undefined;
  },
};

const guard: Kind<PlantgateConfig['guard'], Processor> = {
  key: 'guard',
  instances: ({ config }) => one('guard', config.guard),
  // UInt64 values are written as InfluxDB's unsigned type on v2 only (the API is fixed while running)
  create: (name, config, rt) => guardFactory.create(name, config, { unsigned: rt.config().influx.api === 'v2' ? 'native' : 'integer' }),
  attach: (p, rt) => void rt.pipeline.processors.push(p),
  reconfigure: guardFactory.reconfigure,
};

const cardinality: Kind<PlantgateConfig['cardinality'], Processor> = {
  key: 'cardinality',
  instances: ({ config }) => one('cardinality', config.cardinality),
  create: (name, config) => cardinalityFactory.create(name, config, undefined as never),
  attach: (p, rt) => void rt.pipeline.processors.push(p),
  reconfigure: cardinalityFactory.reconfigure,
};

type SparkplugSection = NonNullable<PlantgateConfig['sparkplug']> & { owned?: string[] };
const sparkplug: Kind<SparkplugSection, SparkplugHost> = {
  key: 'sparkplug',
  // in a cluster the host runs on every member, following the groups this member owns
  instances: (inputs) => {
    const sp = inputs.config.sparkplug;
    return one('sparkplug', sp && inputs.config.cluster ? { ...sp, owned: sp.groups.filter((g) => owns(inputs, `sparkplug/${g}`)) } : sp);
  },
  create: (name, { owned, ...config }, rt) => {
    const host = sparkplugHostFactory.create(name, config, { stateFile: config.stateFile!, ctx: rt.ctx(name) });
    if (owned) host.setOwnedGroups(owned);
    return host;
  },
  // first: its sessions are loaded before the first message arrives, and it persists after the last
  attach: (h, rt) => {
    rt.pipeline.addSource(h, 'first');
    for (const t of rt.running<MqttSource>('mqtt-broker').values()) t.useSparkplug(h);
    const engine = rt.running<IndicatorEngine>('indicators').get('indicators');
    if (engine) h.reportPresence((points) => engine.observe(points), Math.min(5000, engine.window / 3));
  },
  detach: (h, rt) => {
    rt.pipeline.removeSource(h);
    for (const t of rt.running<MqttSource>('mqtt-broker').values()) t.useSparkplug(undefined);
  },
  // a hand-over of groups changes subscriptions on the same connections; anything else restarts the host
  reconfigure: (host, next, prev) => {
    if (canonical({ ...next, owned: undefined }) !== canonical({ ...prev, owned: undefined })) return false;
    host.setOwnedGroups(next.owned);
    return true;
  },
};

const broker: Kind<NonNullable<PlantgateConfig['mqtt']['broker']>, EmbeddedBroker> = {
  key: 'mqtt-broker',
  instances: ({ config }) => one('mqtt-broker', config.mqtt.broker),
  create: (name, config, rt) => embeddedBrokerFactory.create(name, config, { router: rt.router, ctx: rt.ctx(name) }),
  attach: (b, rt) => {
    b.useSparkplug(rt.sparkplug());
    rt.pipeline.addSource(b);
  },
  detach: (b, rt) => {
    b.useSparkplug(undefined);
    rt.pipeline.removeSource(b);
  },
  reconfigure: embeddedBrokerFactory.reconfigure,
};

const clients: Kind<PlantgateConfig['mqtt']['clients'][number], BrokerClient> = {
  key: 'mqtt-client',
  instances: ({ config }) => config.mqtt.clients.map((c) => ({ name: c.name ?? `mqtt-client-${c.clientId}`, config: c })),
  create: (name, config, rt) => brokerClientFactory.create(name, config, { router: rt.router, ctx: rt.ctx(name) }),
  attach: (c, rt) => {
    c.useSparkplug(rt.sparkplug());
    rt.pipeline.addSource(c);
  },
  detach: (c, rt) => {
    c.useSparkplug(undefined);
    rt.pipeline.removeSource(c);
  },
  reconfigure: brokerClientFactory.reconfigure,
  follows: 'sparkplug',
};

/** Not a component: the route table every MQTT transport shares, replaced in place. */
const routes: Kind<PlantgateConfig['mqtt']['routes']> = {
  key: 'routes',
  instances: ({ config }) => one('mqtt.routes', config.mqtt.routes),
  apply: (next, _prev, rt) => {
    rt.router.setRoutes(next);
    for (const c of rt.running<BrokerClient>('mqtt-client').values()) c.refreshSubscriptions();
  },
};

/** Not a component: the client identity every endpoint shares (its endpoints are their own kind). */
const opcuaIdentity: Kind<Pick<PlantgateConfig['opcua'], 'pkiDir' | 'applicationName'>> = {
  key: 'opcua-identity',
  instances: ({ config }) => one('opcua', { pkiDir: config.opcua.pkiDir, applicationName: config.opcua.applicationName }),
  fixed: opcuaIdentityFixed,
};

const opcua: Kind<PlantgateConfig['opcua']['endpoints'][number], Source> = {
  key: 'opcua',
  instances: (inputs) => inputs.config.opcua.endpoints.filter((e) => owns(inputs, `opcua/${e.name}`)).map((e) => ({ name: e.name, config: e })),
  create: (name, config, rt) => opcuaEndpointFactory.create(name, config, { certificates: rt.certificates, ctx: rt.ctx(name) }),
  attach: (s, rt) => rt.pipeline.addSource(s),
  detach: (s, rt) => rt.pipeline.removeSource(s),
  // a new URL, security or node list is a new session (the other endpoints keep theirs)
  reconfigure: () => false,
  independent: true,
};

const untaps = new WeakMap<IndicatorEngine, () => void>();
/** With scope fleet: where the engine reads the presence records back (the sink's InfluxDB). */
function fleetRead(config: PlantgateConfig, unit: IndicatorsUnit): Partial<PlantgateConfig['influx']> | undefined {
  if (unit.settings.scope !== 'fleet') return undefined;
  const { batchSize: _b, flushInterval: _f, gzipThreshold: _g, timeout: _t, retryMin: _r1, retryMax: _r2, name: _n, ...read } = config.influx;
  return read;
}

const indicators: Kind<IndicatorsUnit & { fleetRead?: unknown }, IndicatorEngine> = {
  key: 'indicators',
  instances: ({ config, indicators }) => (config.indicators && indicators ? one('indicators', { ...indicators, fleetRead: fleetRead(config, indicators) }) : []),
  create: (name, unit, rt) => indicatorEngineFactory.create(name, unit.settings, { registry: unit.registry, targets: unit.targets, ctx: rt.ctx(name), influx: rt.config().influx, instance: rt.config().instance }),
  attach: (engine, rt) => {
    untaps.set(engine, rt.pipeline.addTap((points) => engine.observe(points)));
    rt.sparkplug()?.reportPresence((points) => engine.observe(points), Math.min(5000, engine.window / 3));
    rt.pipeline.addSource(engine);
  },
  detach: (engine, rt) => {
    untaps.get(engine)?.();
    rt.pipeline.removeSource(engine);
  },
  // in place: the equipment already heard from keeps counting under the new registry
  reconfigure: (engine, next, prev) => {
    // a fleet view, and the InfluxDB it reads, are built with the engine
    if (next.settings.scope !== engine.scope || canonical(next.fleetRead) !== canonical(prev.fleetRead)) return false;
    engine.reconfigure(next.settings, next.registry, next.targets);
    return true;
  },
};

const http: Kind<PlantgateConfig['http'], StatusServer> = {
  key: 'http',
  instances: ({ config }) => one('http', config.http),
  create: (name, config, rt) => statusServerFactory.create(name, config, { pipeline: rt.pipeline, control: rt.control }),
  reconfigure: statusServerFactory.reconfigure,
};

/** The fleet membership: holds this gateway's lease in etcd and hands the units it owns to the gateway. */
const cluster: Kind<NonNullable<PlantgateConfig['cluster']>, ClusterMember> = {
  key: 'cluster',
  instances: ({ config }) => one('cluster', config.cluster),
  create: (name, config, rt) => {
    const c = rt.config();
    return clusterMemberFactory.create(name, config, {
      instance: c.instance,
      advertise: () => advertiseUrl(config.advertise, c.instance, { host: rt.config().http.listen.host, port: rt.httpPort() }, !!rt.config().http.tls),
      units: () => clusterUnits(rt.config()),
      apply: (owned) => rt.setOwned(owned),
      log: rt.log.child({ component: name }),
    });
  },
  reconfigure: clusterMemberFactory.reconfigure,
};

const log: Kind<PlantgateConfig['log']> = {
  key: 'log',
  instances: ({ config }) => one('log', config.log),
  apply: (next, _prev, rt) => {
    rt.log.level = next.level;
  },
  fixed: (prev, next) => (prev.format !== next.format ? 'log.format applies at the next start (the log stream is opened once)' : undefined),
};

const memory: Kind<NonNullable<PlantgateConfig['memory']>> = {
  key: 'memory',
  // always one instance, so that removing the section is a change too (back to V8's schedule)
  instances: ({ config }) => [{ name: 'memory', config: config.memory ?? {} }],
  apply: (next, _prev, rt) => holdHeapTarget(next.heapTarget, rt.log),
};

const buffer: Kind<PlantgateConfig['buffer']> = {
  key: 'buffer',
  instances: ({ config }) => one('buffer', config.buffer),
  fixed: (prev, next) => bufferFactory.fixed!(prev, next),
};

const deadLetters: Kind<PlantgateConfig['deadLetters']> = {
  key: 'deadLetters',
  instances: ({ config }) => one('deadLetters', config.deadLetters),
  fixed: (prev, next) => deadLettersFactory.fixed!(prev, next),
};

/** Every kind, in start order. */
export const KINDS: readonly Kind[] = [buffer, deadLetters, log, memory, sink, guard, cardinality, routes, sparkplug, broker, clients, opcuaIdentity, opcua, indicators, http, cluster];

/** Keys of a section that changed, for the reload report. */
export function sectionChanges(prev: unknown, next: unknown): string[] {
  if (prev && next && typeof prev === 'object' && typeof next === 'object' && !Array.isArray(prev)) return changedKeys(prev, next);
  return [];
}
