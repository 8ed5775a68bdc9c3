import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { changedKeys, defineFactory } from '../core/factory.js';
import { bufferSchema } from './config.js';
import { DiskBuffer } from './disk-buffer.js';

export const bufferFactory = defineFactory({
  type: 'disk-buffer',
  schema: bufferSchema,
  create: (name, config, deps: { sinks: string[]; log: Logger }) => new DiskBuffer(name, { ...config, dir: resolve(config.dir) }, deps.sinks, deps.log),
  // its segments, cursors and limits are opened once: a reload never touches the data in it
  fixed: (prev, next) => {
    const keys = changedKeys(prev, next);
    return keys.length ? `buffer.${keys.join(', buffer.')} apply at the next start (the buffer and its data are never reopened while running)` : undefined;
  },
});
