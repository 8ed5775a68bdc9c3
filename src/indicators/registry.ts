/**
 * The registry: master data of the region's enterprises, their key processes and equipment, loaded
 * from a YAML file in seeds/. Telemetry never invents it (docs/indicators.md): an enterprise with no
 * connected device is still in every denominator it belongs to.
 */
import { z } from 'zod';
import { loadYamlWith } from '../core/yaml-config.js';

/** How telemetry identifies a piece of equipment; every given criterion must hold. */
export const bindingSchema = z
  .strictObject({
    /** MQTT client id of the publisher on the embedded broker. */
    clientId: z.string().min(1).optional(),
    /** Exact MQTT topic. */
    topic: z.string().min(1).optional(),
    /** OPC UA endpoint name (the `name` of an opcua endpoint in the configuration). */
    endpoint: z.string().min(1).optional(),
    /** Tags the point must carry, e.g. { site: shenyang, machine: cnc-001 } (topic levels, Sparkplug ids). */
    tags: z.record(z.string(), z.string()).optional(),
  })
  .refine((b) => b.clientId || b.topic || b.endpoint || (b.tags && Object.keys(b.tags).length), 'give at least one of clientId, topic, endpoint, tags');
export type Binding = z.output<typeof bindingSchema>;

const equipmentSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().optional(),
  /** cnc: CNC machine tool; plc: PLC/DCS controller; robot: industrial robot; other: any other production device. */
  class: z.enum(['cnc', 'plc', 'robot', 'other']),
  /** Digital equipment (networkable); the denominator of the networked share. */
  digital: z.boolean().default(true),
  /** Key process this equipment serves (id within the enterprise). */
  process: z.string().optional(),
  source: bindingSchema.optional(),
});

const enterpriseSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  city: z.string().min(1),
  /** Industry code (GB/T 4754), e.g. C342 metal-working machinery. */
  industry: z.string().min(1),
  /** Equipment manufacturing enterprise: counts in the NC rate of key processes. */
  equipmentManufacturing: z.boolean(),
  /** Regulated ("above designated size") industrial enterprise: counts in the access rate. */
  regulated: z.boolean(),
  /** Manufacturing employees: the robot density denominator. */
  employees: z.number().int().nonnegative(),
  /** What the enterprise declares for indicators telemetry cannot measure. */
  declared: z
    .strictObject({
      keyLinksDigitalised: z.boolean().optional(),
      rdDesignTools: z.boolean().optional(),
      networkedCollaboration: z.boolean().optional(),
    })
    .default({}),
  keyProcesses: z.array(z.strictObject({ id: z.string().min(1), name: z.string().min(1) })).default([]),
  equipment: z.array(equipmentSchema).default([]),
});

export const registrySchema = z
  .strictObject({
    region: z.strictObject({ name: z.string().min(1) }),
    enterprises: z.array(enterpriseSchema),
  })
  .superRefine((r, ctx) => {
    const ents = new Set<string>();
    const eqs = new Set<string>();
    r.enterprises.forEach((e, i) => {
      if (ents.has(e.id)) ctx.addIssue({ code: 'custom', path: ['enterprises', i, 'id'], message: `duplicate enterprise id ${JSON.stringify(e.id)}` });
      ents.add(e.id);
      const procs = new Set(e.keyProcesses.map((p) => p.id));
      if (procs.size !== e.keyProcesses.length) ctx.addIssue({ code: 'custom', path: ['enterprises', i, 'keyProcesses'], message: 'duplicate key process id' });
      e.equipment.forEach((q, j) => {
        if (eqs.has(q.id)) ctx.addIssue({ code: 'custom', path: ['enterprises', i, 'equipment', j, 'id'], message: `duplicate equipment id ${JSON.stringify(q.id)} (ids are unique across the registry)` });
        eqs.add(q.id);
        if (q.process !== undefined && !procs.has(q.process)) {
          ctx.addIssue({ code: 'custom', path: ['enterprises', i, 'equipment', j, 'process'], message: `no key process ${JSON.stringify(q.process)} in enterprise ${e.id} (has: ${[...procs].join(', ') || 'none'})` });
        }
      });
    });
  });
export type Registry = z.output<typeof registrySchema>;
export type Enterprise = Registry['enterprises'][number];
export type Equipment = Enterprise['equipment'][number];

/** Targets as fractions (0.7 for 70%) or per-10,000 figures; kept as data in seeds/. */
export const targetsSchema = z.strictObject({
  source: z.string().min(1),
  year: z.number().int(),
  targets: z.strictObject({
    ncRateKeyProcesses: z.number().min(0).max(1),
    robotsPer10k: z.number().nonnegative(),
    industrialInternetAccess: z.number().min(0).max(1),
    keyLinksDigitalised: z.number().min(0).max(1),
    rdDesignTools: z.number().min(0).max(1),
    networkedCollaboration: z.number().min(0).max(1),
  }),
});
export type Targets = z.output<typeof targetsSchema>;

export function loadRegistry(file: string): Registry {
  return loadYamlWith(registrySchema, file);
}

export function loadTargets(file: string): Targets {
  return loadYamlWith(targetsSchema, file);
}
