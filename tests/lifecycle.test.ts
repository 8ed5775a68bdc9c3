/**
 * The conformance suite every component type runs (docs/components.md): stop() is safe without
 * start() and twice, start/stop/start works, a stop issued while it is still starting wins, and
 * the status has the same shape everywhere, with counters that only grow. New component types
 * are added to this table.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { bufferSchema } from '../src/buffer/config.js';
import { DiskBuffer } from '../src/buffer/disk-buffer.js';
import type { Component } from '../src/core/component.js';
import { deadLettersSchema } from '../src/deadletters/config.js';
import { DeadLetters, type Rejection } from '../src/deadletters/dead-letters.js';
import { guardSchema } from '../src/processors/guard/config.js';
import { Guard } from '../src/processors/guard/guard.js';
import { influxSchema } from '../src/sinks/influxdb/config.js';
import { InfluxSink } from '../src/sinks/influxdb/influx-sink.js';
import { brokerSchema, clientSchema, routeSchema } from '../src/sources/mqtt/config.js';
import { SparkplugHost } from '../src/sources/sparkplug/host.js';
import { sparkplugSchema } from '../src/sources/sparkplug/config.js';
import { BrokerClient } from '../src/sources/mqtt/broker-client.js';
import { EmbeddedBroker } from '../src/sources/mqtt/embedded-broker.js';
import { TopicRouter } from '../src/sources/mqtt/router.js';
import { tempDir } from './helpers/servers.js';
import { indicatorsSchema } from '../src/indicators/config.js';
import { IndicatorEngine } from '../src/indicators/engine.js';
import { registrySchema, targetsSchema } from '../src/indicators/registry.js';
import { endpointSchema } from '../src/sources/opcua/config.js';
import { OpcuaEndpointSource } from '../src/sources/opcua/opcua-source.js';
import { openCertificateManager } from '../src/sources/opcua/pki.js';

function make(): Record<string, () => Component> {
  const dir = tempDir('life').path;
  const dl = new DeadLetters(`${dir}/dl.jsonl`, deadLettersSchema.parse({}));
  const buffer = () => new DiskBuffer('buffer', bufferSchema.parse({ dir: `${dir}/buf-${Math.random()}` }), ['sink']);
  const router = new TopicRouter([routeSchema.parse({ topic: 'a/{b}', measurement: 'm' })]);
  const ctx = { ingest: async () => undefined, reject: (r: Rejection) => dl.add(r), log: pino({ level: 'silent' }) };
  return {
    'disk buffer': buffer,
    guard: () => new Guard('guard', guardSchema.parse({})),
    'influxdb sink': () => new InfluxSink('sink', influxSchema.parse({ url: 'http://127.0.0.1:9', database: 'x' }), buffer(), (r) => dl.add(r)),
    'embedded broker': () => new EmbeddedBroker('broker', brokerSchema.parse({ listen: '127.0.0.1:0', allowAnonymous: true }), router, ctx),
    'opcua endpoint': () =>
      new OpcuaEndpointSource('opc', endpointSchema.parse({ name: 'opc', url: 'opc.tcp://127.0.0.1:9', nodes: [{ nodeId: 'i=2258', field: 't' }] }), { manager: openCertificateManager(`${dir}/pki`), applicationName: 'test' }, ctx),
    'mqtt client': () => new BrokerClient('client', { ...clientSchema.parse({ url: 'mqtt://127.0.0.1:9' }), clientId: 'x' }, router, ctx),
    'sparkplug host': () => new SparkplugHost('sparkplug', { ...sparkplugSchema.parse({ mode: 'primary' }), stateFile: `${dir}/sparkplug-state.json` }, ctx),
    'indicator engine': () =>
      new IndicatorEngine(
        'indicators',
        indicatorsSchema.parse({ registry: 'r', targets: 't', publishInterval: 10 }),
        registrySchema.parse({ region: { name: 'r' }, enterprises: [] }),
        targetsSchema.parse({ source: 's', year: 2023, targets: { ncRateKeyProcesses: 0.7, robotsPer10k: 160, industrialInternetAccess: 0.56, keyLinksDigitalised: 0.43, rdDesignTools: 0.84, networkedCollaboration: 0.35 } }),
        ctx,
      ),
  };
}

/** The sink reads from a buffer that must run first. */
async function prepare(name: string, c: Component): Promise<void> {
  if (name === 'influxdb sink') await (c as unknown as { buffer: DiskBuffer }).buffer.start();
}

describe('component conformance', () => {
  for (const [name, factory] of Object.entries(make())) {
    it(`${name}: a stop issued while it starts leaves it stopped, and it starts again`, async () => {
      const c = factory();
      await prepare(name, c);
      const starting = c.start().catch(() => undefined);
      await c.stop();
      await starting;
      expect(c.status().state).toBe('stopped');
      await c.start();
      expect(['running', 'reconnecting']).toContain(c.status().state);
      const before = c.status().counters;
      await c.stop();
      const after = c.status().counters;
      // counters only grow, through stops and starts
      for (const k of ['received', 'written', 'errors'] as const) expect(after[k]).toBeGreaterThanOrEqual(before[k]);
      for (const [reason, n] of Object.entries(before.dropped)) expect(after.dropped[reason]).toBeGreaterThanOrEqual(n);
      expect(c.status().state).toBe('stopped');
    }, 60_000);

    it(`${name}: stop without start, stop twice, restart`, async () => {
      const c = factory();
      await c.stop();
      expect(c.status().state).toBe('stopped');
      await prepare(name, c);
      await c.start();
      expect(['running', 'reconnecting']).toContain(c.status().state);
      await Promise.all([c.stop(), c.stop()]);
      await c.stop();
      expect(c.status().state).toBe('stopped');
      await c.start();
      await c.stop();
      expect(c.status().state).toBe('stopped');
      expect(c.status()).toMatchObject({ name: expect.any(String), kind: expect.any(String), type: expect.any(String), counters: { received: expect.any(Number), written: expect.any(Number), errors: expect.any(Number), dropped: {} } });
    });
  }
});
