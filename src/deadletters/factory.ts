import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { changedKeys, defineFactory } from '../core/factory.js';
import { deadLettersSchema } from './config.js';
import { DeadLetters } from './dead-letters.js';

export const deadLettersFactory = defineFactory({
  type: 'dead-letters',
  schema: deadLettersSchema,
  create: (_name, config, deps: { file: string; log: Logger }) => new DeadLetters(resolve(deps.file), config, deps.log),
  // every component holds the same file open: it changes at the next start
  fixed: (prev, next) => {
    const keys = changedKeys(prev, next);
    return keys.length ? `deadLetters.${keys.join(', deadLetters.')} apply at the next start` : undefined;
  },
});
