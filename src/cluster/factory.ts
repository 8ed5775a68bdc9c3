import { defineFactory } from '../core/factory.js';
import { clusterSchema } from './config.js';
import { ClusterMember, type MemberDeps } from './member.js';

export const clusterMemberFactory = defineFactory({
  type: 'cluster-member',
  schema: clusterSchema,
  create: (name, config, deps: MemberDeps) => new ClusterMember(name, config, deps),
  // new etcd endpoints, prefix or TTL: the member leaves (its units are handed back) and joins again
  reconfigure: () => false,
});

/** The status URL peers reach this gateway at: `advertise`, else the http listener, else the instance as a host name (a StatefulSet pod's DNS name). */
export function advertiseUrl(advertise: string | undefined, instance: string, listen: { host: string; port: number }, tls: boolean): string {
  if (advertise) return advertise;
  const scheme = tls ? 'https' : 'http';
  const host = listen.host === '0.0.0.0' || listen.host === '::' ? instance : listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `${scheme}://${host}:${listen.port}`;
}
