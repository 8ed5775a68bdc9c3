import { defineFactory } from '../../core/factory.js';
import { CardinalityGuard } from './cardinality.js';
import { cardinalitySchema } from './config.js';

export const cardinalityFactory = defineFactory({
  type: 'cardinality',
  schema: cardinalitySchema,
  create: (name, config) => new CardinalityGuard(name, config),
  reconfigure: (guard, next) => {
    guard.reconfigure(next);
    return true;
  },
});
