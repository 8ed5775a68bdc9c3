import { defineFactory } from '../../core/factory.js';
import type { SourceContext } from '../source.js';
import { BrokerClient } from './broker-client.js';
import { brokerSchema, type ClientConfig, clientSchema } from './config.js';
import { EmbeddedBroker } from './embedded-broker.js';
import type { TopicRouter } from './router.js';

/** What both MQTT transports are handed: the routes all of them share, and the pipeline. */
export interface MqttDeps {
  router: TopicRouter;
  ctx: SourceContext;
}

export const embeddedBrokerFactory = defineFactory({
  type: 'mqtt-broker',
  schema: brokerSchema,
  create: (name, config, deps: MqttDeps) => new EmbeddedBroker(name, config, deps.router, deps.ctx),
  reconfigure: (broker, next) => broker.reconfigure(next),
});

export const brokerClientFactory = defineFactory({
  type: 'mqtt-client',
  schema: clientSchema,
  // the root schema gives every client its id (from `instance` when none is set)
  create: (name, config, deps: MqttDeps) => new BrokerClient(name, config as ClientConfig, deps.router, deps.ctx),
  // a new URL, client id, credentials or subscription list is a new connection
  reconfigure: () => false,
});
