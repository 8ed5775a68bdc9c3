import { z } from 'zod';
import { int } from '../../core/config-types.js';

/**
 * Series budgets. A series is a measurement with one set of tag values; InfluxDB keeps an index
 * entry per series for as long as the data is retained, so a device that puts a timestamp or a
 * serial number into a tag grows it without bound. Over budget, points of *new* series are
 * dead-lettered (reason `series_budget_exceeded`); series already seen keep flowing.
 */
export const cardinalitySchema = z.strictObject({
  maxSeriesPerMeasurement: int().pipe(z.number().min(1)).default(100_000).describe('Distinct series per measurement.'),
  maxSeriesPerSource: int().pipe(z.number().min(1)).default(10_000).describe('Distinct series one source may create: a device (MQTT client id), an OPC UA endpoint, a broker connection.'),
  maxSeries: int().pipe(z.number().min(1)).default(1_000_000).describe('Distinct series in all (bounds the limit\'s own memory too).'),
});
export type CardinalityConfig = z.output<typeof cardinalitySchema>;
