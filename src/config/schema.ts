/**
 * The whole configuration: one zod schema per component, composed here. This is the single source
 * of validation and defaults; the README's configuration reference follows it.
 */
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { byteSize, componentName } from '../core/config-types.js';
import { bufferSchema } from '../buffer/config.js';
import { clusterSchema } from '../cluster/config.js';
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
    instance: componentName.optional().describe('This gateway\'s name, unique in a fleet: in client ids, the status and the indicators\' presence records. Default: the host name (a StatefulSet pod\'s name is stable); `${VAR}` works.'),
    // .prefault({}): a section left out is validated as an empty one, so its defaults are only the
    // ones its own schema writes
    http: httpSchema.prefault({}).describe('The status page, its API and /metrics.'),
    influx: influxSchema.describe('The InfluxDB every point is written to (through the buffer).'),
    mqtt: mqttSchema.prefault({}).describe('MQTT: the embedded broker, external brokers, and the routes that turn topics into points.'),
    opcua: opcuaSchema.prefault({}).describe('OPC UA servers to subscribe to.'),
    sparkplug: sparkplugSchema.optional().describe('Sparkplug B host on the embedded broker and every MQTT client; omit to disable.'),
    buffer: bufferSchema.prefault({}).describe('The durable on-disk buffer between intake and InfluxDB.'),
    deadLetters: deadLettersSchema.prefault({}).describe('Where refused payloads and lines are kept, with their reason.'),
    guard: guardSchema.prefault({}).describe('Checks on every point before it is buffered.'),
    cardinality: cardinalitySchema.prefault({}).describe('Series budgets against tag explosions.'),
    cluster: clusterSchema.optional().describe('A fleet that shares OPC UA endpoints and Sparkplug groups through leases in etcd: each is read by exactly one member, and taken over when that member dies. Omit: this gateway reads all of them.'),
    indicators: indicatorsSchema.optional().describe('Measured indicators against the plan\'s targets; omit to disable.'),
    memory: z
      .strictObject({
        heapTarget: byteSize.optional().describe('Size the V8 heap should stay under (e.g. `256MiB`): after each full GC the heap may grow to this, never less than 1.5x and never more than 4x what survived (V8 alone grows it up to 4x). When the live set jumps (a gateway subscribing to its items), one full GC is run at once so that the limit V8 has just set from the old factor is set again (at most once a minute). A target, not a limit: a live set above it is logged, not cut. Omit: V8\'s own schedule. Changes in place.'),
      })
      .optional()
      .describe('Process memory; omit for V8\'s own schedule.'),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Lowest level logged (a reload changes it in place).'),
        format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('JSON lines for machines; `pretty` for people (pino-pretty); `auto`: pretty on a terminal.'),
      })
      .prefault({})
      .describe('Logs: JSON lines on standard output.'),
  })
  .transform((c) => ({
    ...c,
    instance: c.instance ?? defaultInstance(),
    mqtt: { ...c.mqtt, clients: c.mqtt.clients.map((cl, i) => ({ ...cl, clientId: cl.clientId ?? `${c.instance ?? defaultInstance()}${i ? `-${i + 1}` : ''}` })) },
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
    if (c.sparkplug) {
      c.mqtt.clients.forEach((cl, i) => {
        if (cl.shareGroup) {
          ctx.addIssue({ code: 'custom', path: ['mqtt', 'clients', i, 'shareGroup'], message: 'the Sparkplug host cannot share its subscriptions: one edge node\'s messages would be split over several hosts, which then see seq gaps and ask for rebirths. Give the shared client no Sparkplug host (run the host on a gateway of its own), or leave shareGroup out' });
        }
      });
    }
    if (c.cluster && c.sparkplug) {
      if (c.sparkplug.groups.length === 0) ctx.addIssue({ code: 'custom', path: ['sparkplug', 'groups'], message: 'in a cluster every Sparkplug group is a unit with one owner: list the groups (a member subscribes only to the groups it owns, so it cannot discover new ones from births)' });
      if (c.mqtt.broker) ctx.addIssue({ code: 'custom', path: ['mqtt', 'broker'], message: 'in a cluster the Sparkplug host follows the groups it owns on an external broker (mqtt.clients); edge nodes on this gateway\'s embedded broker would be ignored whenever another member owns their group. Use the plant\'s broker, or run this gateway without cluster' });
    }
    const names = new Set<string>(c.opcua.endpoints.map((e) => e.name));
    c.mqtt.clients.forEach((cl, i) => {
      const name = cl.name ?? cl.clientId;
      if (names.has(name)) ctx.addIssue({ code: 'custom', path: ['mqtt', 'clients', i, 'name'], message: `duplicate client name ${JSON.stringify(name)}` });
      names.add(name);
    });
  });

export type PlantgateConfig = z.output<typeof configSchema>;

/** The host name, made a valid component name (a fleet member's default identity). */
function defaultInstance(): string {
  return hostname().replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64) || 'plantgate';
}
