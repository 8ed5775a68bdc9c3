import { defineFactory } from '../core/factory.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { httpSchema } from './config.js';
import type { GatewayControl } from './control.js';
import { StatusServer } from './server.js';

export const statusServerFactory = defineFactory({
  type: 'status-server',
  schema: httpSchema,
  create: (_name, config, deps: { pipeline: Pipeline; control: GatewayControl }) => new StatusServer(config, deps.pipeline, deps.control),
  // in place: a new address opens before the old one closes (see StatusServer.reconfigure)
  reconfigure: async (server, next) => {
    await server.reconfigure(next);
    return true;
  },
});
