import { resolve } from 'node:path';
import { defineFactory } from '../../core/factory.js';
import type { SourceContext } from '../source.js';
import { sparkplugSchema } from './config.js';
import { SparkplugHost } from './host.js';

export const sparkplugHostFactory = defineFactory({
  type: 'sparkplug-host',
  schema: sparkplugSchema,
  create: (name, config, deps: { stateFile: string; ctx: SourceContext }) => new SparkplugHost(name, { ...config, stateFile: resolve(deps.stateFile) }, deps.ctx),
  // a new mode, host id or group list changes STATE, wills and subscriptions: the host restarts
  // (its alias maps persist across it) and so do the MQTT clients it publishes through
  reconfigure: () => false,
});
