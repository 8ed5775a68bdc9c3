import { defineFactory } from '../../core/factory.js';
import { guardSchema } from './config.js';
import { Guard } from './guard.js';

export const guardFactory = defineFactory({
  type: 'guard',
  schema: guardSchema,
  /** `unsigned`: how UInt64 values are written, which follows the sink's API (fixed while running). */
  create: (name, config, deps: { unsigned: 'native' | 'integer' }) => new Guard(name, config, deps.unsigned),
  reconfigure: (guard, next) => {
    guard.reconfigure(next);
    return true;
  },
});
