/**
 * The whole configuration: one zod schema per component, composed here. This is the single source
 * of validation and defaults; the README's configuration reference follows it.
 */
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { bufferSchema } from '../buffer/config.js';
import { deadLettersSchema } from '../deadletters/config.js';
import { cardinalitySchema } from '../processors/cardinality/config.js';
import { guardSchema } from '../processors/guard/config.js';
import { indicatorsSchema } from '../indicators/config.js';
import { influxSchema } from '../sinks/influxdb/config.js';
import { mqttSchema } from '../sources/mqtt/config.js';
import { opcuaSchema } from '../sources/opcua/config.js';
import { sparkplugSchema } from '../sources/sparkplug/config.js';
import { httpSchema } from '../status/config.js';

export const configSchema = z
  .strictObject({
    http: httpSchema.default({ listen: { host: '127.0.0.1', port: 8080 } }),
    influx: influxSchema,
    mqtt: mqttSchema.default({ clients: [], routes: [] }),
    /** OPC UA servers to subscribe to. */
    opcua: opcuaSchema.default({ applicationName: 'plantgate', endpoints: [] }),
    /** Sparkplug B host on the embedded broker and every MQTT client; omit to disable. */
    sparkplug: sparkplugSchema.optional(),
    buffer: bufferSchema.default(bufferSchema.parse({ dir: './data/buffer' })),
    deadLetters: deadLettersSchema.default({ maxBytes: 64 * 1024 * 1024, keepLatest: 50 }),
    guard: guardSchema.default({ maxFuture: 3_600_000, maxAge: 0 }),
    /** Series budgets against tag explosions. */
    cardinality: cardinalitySchema.default(cardinalitySchema.parse({})),
    /** Measured indicators against the plan's targets; omit to disable. */
    indicators: indicatorsSchema.optional(),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** JSON lines for machines; `pretty` for people (pino-pretty); `auto`: pretty on a terminal. */
        format: z.enum(['auto', 'json', 'pretty']).default('auto'),
      })
      .default({ level: 'info', format: 'auto' }),
  })
  .transform((c) => ({
    ...c,
    deadLetters: { ...c.deadLetters, file: c.deadLetters.file ?? join(dirname(c.buffer.dir), 'deadletters.jsonl') },
    opcua: { ...c.opcua, pkiDir: c.opcua.pkiDir ?? join(dirname(c.buffer.dir), 'pki') },
    sparkplug: c.sparkplug && { ...c.sparkplug, stateFile: c.sparkplug.stateFile ?? join(dirname(c.buffer.dir), 'sparkplug-state.json') },
  }))
  .superRefine((c, ctx) => {
    if (c.mqtt.routes.length === 0 && !c.sparkplug && (c.mqtt.broker || c.mqtt.clients.length)) {
      ctx.addIssue({ code: 'custom', path: ['mqtt', 'routes'], message: 'at least one route (or the sparkplug host) is needed to turn MQTT messages into points' });
    }
    if (c.sparkplug && !c.mqtt.broker && c.mqtt.clients.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['sparkplug'], message: 'the Sparkplug host needs the embedded broker (mqtt.broker) or at least one MQTT client (mqtt.clients)' });
    }
    const names = new Set<string>(c.opcua.endpoints.map((e) => e.name));
    c.mqtt.clients.forEach((cl, i) => {
      const name = cl.name ?? cl.clientId;
      if (names.has(name)) ctx.addIssue({ code: 'custom', path: ['mqtt', 'clients', i, 'name'], message: `duplicate client name ${JSON.stringify(name)}` });
      names.add(name);
    });
  });

export type PlantgateConfig = z.output<typeof configSchema>;
