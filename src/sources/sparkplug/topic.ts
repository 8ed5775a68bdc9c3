/**
 * Sparkplug topics (spec chapter 4): `spBv1.0/group_id/message_type/edge_node_id[/device_id]` and
 * the host's `spBv1.0/STATE/host_id`.
 */
import { RejectedInput } from '../../core/errors.js';

export const NAMESPACE = 'spBv1.0';

export type NodeMessageType = 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD';
export type DeviceMessageType = 'DBIRTH' | 'DDEATH' | 'DDATA' | 'DCMD';

export type SparkplugTopic =
  | { kind: 'node'; group: string; type: NodeMessageType; edge: string }
  | { kind: 'device'; group: string; type: DeviceMessageType; edge: string; device: string }
  | { kind: 'state'; hostId: string };

const NODE = new Set(['NBIRTH', 'NDEATH', 'NDATA', 'NCMD']);
const DEVICE = new Set(['DBIRTH', 'DDEATH', 'DDATA', 'DCMD']);

export function isSparkplugTopic(topic: string): boolean {
  return topic.startsWith(`${NAMESPACE}/`);
}

/** [tck-id-topic-structure]; ids are non-empty and free of `+ / #` by construction of the split. */
export function parseTopic(topic: string): SparkplugTopic {
  const parts = topic.split('/');
  const fail = (why: string) => new RejectedInput('sparkplug_topic', `not a Sparkplug B topic (${why}): ${topic}`);
  if (parts[0] !== NAMESPACE) throw fail(`namespace must be ${NAMESPACE}`);
  if (parts[1] === 'STATE') {
    if (parts.length !== 3 || !parts[2]) throw fail('expected spBv1.0/STATE/host_id');
    return { kind: 'state', hostId: parts[2] };
  }
  if (parts.length < 4 || parts.length > 5) throw fail('expected spBv1.0/group_id/message_type/edge_node_id[/device_id]');
  const [, group, type, edge, device] = parts as [string, string, string, string, string | undefined];
  if (!group || !edge || device === '') throw fail('empty id');
  for (const id of [group, edge, device]) if (id && /[+#]/.test(id)) throw fail(`reserved character in ${JSON.stringify(id)}`);
  if (device === undefined) {
    if (!NODE.has(type)) throw fail(`${JSON.stringify(type)} is not an edge node message type${DEVICE.has(type) ? ' (device messages need a device_id)' : ''}`);
    return { kind: 'node', group, type: type as NodeMessageType, edge };
  }
  if (!DEVICE.has(type)) throw fail(`${JSON.stringify(type)} is not a device message type`);
  return { kind: 'device', group, type: type as DeviceMessageType, edge, device };
}

export function nodeTopic(group: string, type: NodeMessageType, edge: string): string {
  return `${NAMESPACE}/${group}/${type}/${edge}`;
}

export function deviceTopic(group: string, type: DeviceMessageType, edge: string, device: string): string {
  return `${NAMESPACE}/${group}/${type}/${edge}/${device}`;
}

export function stateTopic(hostId: string): string {
  return `${NAMESPACE}/STATE/${hostId}`;
}
