/**
 * Address-space helpers shared by the source (node resolution, discovery under a browse root) and
 * by `plantgate browse`. Node ids are printed and accepted with namespace URIs (`nsu=`), because
 * namespace indexes may change when a server restarts or is upgraded; URIs do not.
 */
import {
  AttributeIds,
  BrowseDirection,
  type ClientSession,
  coerceNodeId,
  DataType,
  makeBrowsePath,
  NodeClass,
  NodeClassMask,
  type NodeId,
  type ReferenceDescription,
  resolveNodeId,
  browseAll,
} from 'node-opcua';

const HasProperty = resolveNodeId('HasProperty');
const HierarchicalReferences = resolveNodeId('HierarchicalReferences');
const ObjectsFolder = resolveNodeId('ObjectsFolder');
/** Browse requests are sent in slices; servers limit nodes per call (MaxNodesPerBrowse). */
const BROWSE_SLICE = 200;

export function nsuString(id: NodeId, namespaceArray: string[]): string {
  return id.namespace === 0 ? id.toString() : id.toString({ namespaceArray });
}

/**
 * A node id (`nsu=`, `ns=`, or standard names like `ObjectsFolder`) or a browse path from the
 * Objects folder such as `/cnc:Machine01/cnc:CncAxisList`, where prefixes are namespace indexes or
 * aliases from the endpoint's `namespaces` map. Throws with a message naming what failed.
 */
export async function resolveTarget(session: ClientSession, text: string, namespaceArray: string[], aliases: Record<string, string> = {}): Promise<NodeId> {
  if (!text.startsWith('/')) {
    if (text.startsWith('nsu=')) {
      const uri = text.slice(4, text.indexOf(';'));
      if (!namespaceArray.includes(uri)) throw new Error(`namespace ${uri} is not on the server`);
    }
    return coerceNodeId(text.startsWith('nsu=') || text.startsWith('ns=') || /^[ibgs]=/.test(text) ? text : resolveNodeId(text), { namespaceArray });
  }
  const path = text.replace(/\/([^/:]+):/g, (_m, prefix: string) => {
    if (/^\d+$/.test(prefix)) return `/${prefix}:`;
    const uri = aliases[prefix];
    if (!uri) throw new Error(`unknown namespace alias ${JSON.stringify(prefix)} in browse path ${text} (declare it under namespaces)`);
    const index = namespaceArray.indexOf(uri);
    if (index < 0) throw new Error(`namespace ${uri} (alias ${prefix}) is not on the server`);
    return `/${index}:`;
  });
  const [result] = await session.translateBrowsePath([makeBrowsePath(ObjectsFolder, path)]);
  const target = result?.targets?.[0];
  if (!result?.statusCode.isGood() || !target) throw new Error(`browse path ${text}: ${result?.statusCode.name ?? 'no result'}`);
  return coerceNodeId(target.targetId.toString());
}

export interface DiscoveredVariable {
  nodeId: NodeId;
  /** Browse names from the root, without namespace prefixes. */
  path: string[];
}

/** Every variable below root (objects and variables are descended into), breadth first. */
export async function discoverVariables(session: ClientSession, root: NodeId, opts: { properties: boolean; maxDepth: number }): Promise<DiscoveredVariable[]> {
  const found: DiscoveredVariable[] = [];
  const seen = new Set<string>([root.toString()]);
  let level: Array<{ id: NodeId; path: string[] }> = [{ id: root, path: [] }];
  for (let depth = 0; depth < opts.maxDepth && level.length; depth++) {
    const next: typeof level = [];
    for (let i = 0; i < level.length; i += BROWSE_SLICE) {
      const slice = level.slice(i, i + BROWSE_SLICE);
      const results = await browseAll(
        session,
        slice.map((n) => ({
          nodeId: n.id,
          browseDirection: BrowseDirection.Forward,
          referenceTypeId: HierarchicalReferences,
          includeSubtypes: true,
          nodeClassMask: NodeClassMask.Object | NodeClassMask.Variable,
          resultMask: 63,
        })),
      );
      results.forEach((r, k) => {
        for (const ref of r.references ?? []) {
          const key = ref.nodeId.toString();
          if (seen.has(key)) continue;
          seen.add(key);
          const isProperty = ref.referenceTypeId.toString() === HasProperty.toString();
          if (isProperty && !opts.properties) continue;
          const id = coerceNodeId(key);
          const path = [...slice[k]!.path, ref.browseName.name ?? key];
          if (ref.nodeClass === NodeClass.Variable) found.push({ nodeId: id, path });
          next.push({ id, path });
        }
      });
    }
    level = next;
  }
  return found;
}

export interface TreeLine {
  depth: number;
  ref: ReferenceDescription;
  nodeId: string;
  nodeClass: string;
  dataType?: string;
  access?: string;
  value?: string;
}

const ACCESS = ['read', 'write', 'history-read', 'history-write', 'semantic-change', 'status-write', 'timestamp-write'];

/** The tree below a node for `plantgate browse`: each node with class, data type, access level and value. */
export async function browseTree(session: ClientSession, root: NodeId, maxDepth: number, namespaceArray: string[]): Promise<TreeLine[]> {
  const out: TreeLine[] = [];
  const seen = new Set<string>();
  async function visit(id: NodeId, depth: number): Promise<void> {
    if (depth >= maxDepth) return;
    const [r] = await browseAll(session, [
      { nodeId: id, browseDirection: BrowseDirection.Forward, referenceTypeId: HierarchicalReferences, includeSubtypes: true, nodeClassMask: 0, resultMask: 63 },
    ]);
    for (const ref of r?.references ?? []) {
      const key = ref.nodeId.toString();
      if (seen.has(key)) continue;
      seen.add(key);
      const child = coerceNodeId(key);
      const line: TreeLine = { depth, ref, nodeId: nsuString(child, namespaceArray), nodeClass: NodeClass[ref.nodeClass] ?? String(ref.nodeClass) };
      if (ref.nodeClass === NodeClass.Variable) {
        const [dt, al, val] = await session.read([
          { nodeId: child, attributeId: AttributeIds.DataType },
          { nodeId: child, attributeId: AttributeIds.AccessLevel },
          { nodeId: child, attributeId: AttributeIds.Value },
        ]);
        const dtId = dt?.value.value as NodeId | undefined;
        line.dataType = dtId ? (dtId.namespace === 0 && DataType[dtId.value as number] ? DataType[dtId.value as number] : await dataTypeName(session, dtId)) : '?';
        const bits = Number(al?.value.value ?? 0);
        line.access = ACCESS.filter((_n, i) => bits & (1 << i)).join(',') || 'none';
        line.value = val?.statusCode.isGood() ? shortValue(val.value.value, val.value.dataType) : val?.statusCode.name;
      }
      out.push(line);
      await visit(child, depth + 1);
    }
  }
  await visit(root, 0);
  return out;
}

const typeNames = new Map<string, string>();
async function dataTypeName(session: ClientSession, id: NodeId): Promise<string> {
  const key = id.toString();
  if (!typeNames.has(key)) {
    const dv = await session.read({ nodeId: id, attributeId: AttributeIds.BrowseName });
    typeNames.set(key, (dv.value.value as { name?: string } | null)?.name ?? key);
  }
  return typeNames.get(key)!;
}

/** node-opcua's [high, low] 32-bit words of an Int64 / UInt64 as the number they are. */
function int64Text(v: unknown, type: DataType): string | undefined {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'number' || typeof v[1] !== 'number') return undefined;
  const raw = (BigInt(v[0] >>> 0) << 32n) | BigInt(v[1] >>> 0);
  return String(type === DataType.Int64 ? BigInt.asIntN(64, raw) : raw);
}

function shortValue(v: unknown, type?: DataType): string {
  let s: string;
  const wide = type === DataType.Int64 || type === DataType.UInt64;
  if (wide && int64Text(v, type) !== undefined) s = int64Text(v, type)!;
  else if (wide && Array.isArray(v)) s = `[${v.slice(0, 8).map((x) => int64Text(x, type) ?? String(x)).join(', ')}${v.length > 8 ? ', ...' : ''}]`;
  else if (v instanceof Date) s = v.toISOString();
  else if (ArrayBuffer.isView(v) || Array.isArray(v)) s = `[${Array.from(v as ArrayLike<unknown>).slice(0, 8).join(', ')}${(v as ArrayLike<unknown>).length > 8 ? ', ...' : ''}]`;
  else if (v !== null && typeof v === 'object') s = JSON.stringify(v);
  else s = String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
