import { defineFactory } from '../../core/factory.js';
import { CardinalityLimit } from './cardinality.js';
import { cardinalitySchema } from './config.js';

export const cardinalityFactory = defineFactory({
  type: 'cardinality',
  schema: cardinalitySchema,
  create: (name, config) => new CardinalityLimit(name, config),
  reconfigure: (limit, next) => {
    limit.reconfigure(next);
    return true;
  },
});
