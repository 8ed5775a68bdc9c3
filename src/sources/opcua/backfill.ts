/**
 * Backfill of an OPC UA gap from the server's history (Part 11, HistoryRead of raw values): when
 * a session was lost (a server restart, a cut longer than the session timeout), the values each
 * historizing node had between the last one stored and the new subscription are read back, with
 * their source timestamps, and written through the buffer like live values. The overlap with the
 * live values is harmless: the same node at the same time is the same point.
 *
 * What cannot be read back (nodes that do not historize, a read that fails, values older than
 * `maxAge`) leaves the gap recorded, with the reason (opcua-source.ts).
 */
import { AttributeIds, type ClientSession, type DataValue, type HistoryData, HistoryReadRequest, ReadRawModifiedDetails, TimestampsToReturn } from 'node-opcua';
import { sleep } from '../../core/retry.js';
import type { Item } from './items.js';

/** Nodes per HistoryRead request, values per node and response, nodes per attribute read. */
const SLICE = 50;
const VALUES_PER_READ = 1000;
const ATTRIBUTE_SLICE = 1000;

export interface BackfillOptions {
  maxAge: number;
  maxValuesPerSecond: number;
  signal: AbortSignal;
}

export interface BackfillResult {
  /** Nodes the gap concerned, and how many of them the server historizes. */
  nodes: number;
  historizing: number;
  values: number;
  /** Every node's gap was read back in full. */
  complete: boolean;
  /** Why not, when not. */
  reason?: string;
}

/**
 * Reads each node's history from just after its last stored value (or `from`, and never before
 * `to - maxAge`) to `to`, handing values over per response in node order; paced to
 * `maxValuesPerSecond` so a long outage does not flood the server or the buffer.
 */
export async function backfill(session: ClientSession, items: Item[], from: number, to: number, o: BackfillOptions, onValues: (values: Array<readonly [Item, DataValue]>) => void): Promise<BackfillResult> {
  const nodes = items.filter((i) => i.nodeId && i.status !== 'failed' && i.status !== 'removed');
  const historizing: Item[] = [];
  for (let i = 0; i < nodes.length; i += ATTRIBUTE_SLICE) {
    const slice = nodes.slice(i, i + ATTRIBUTE_SLICE);
    const res = await session.read(slice.map((it) => ({ nodeId: it.nodeId!, attributeId: AttributeIds.Historizing })));
    res.forEach((dv, k) => {
      if (dv.statusCode.isGood() && dv.value.value === true) historizing.push(slice[k]!);
    });
  }
  const oldest = to - o.maxAge;
  let values = 0;
  let clipped = false;
  const failed: string[] = [];
  const started = Date.now();
  for (let i = 0; i < historizing.length && !o.signal.aborted; i += SLICE) {
    const slice = historizing.slice(i, i + SLICE);
    const starts = slice.map((it) => {
      const s = it.lastTime > 0 ? it.lastTime + 1 : from;
      if (s < oldest) clipped = true;
      return Math.max(s, oldest);
    });
    // nodes of one request share its details, so each distinct start time is its own request
    for (const start of [...new Set(starts)]) {
      const group = slice.filter((_it, k) => starts[k] === start);
      const continuation: Array<Buffer | null> = group.map(() => null);
      let pending = group.map((_it, k) => k);
      while (pending.length && !o.signal.aborted) {
        const res = await session.historyRead(
          new HistoryReadRequest({
            historyReadDetails: new ReadRawModifiedDetails({ isReadModified: false, startTime: new Date(start), endTime: new Date(to), numValuesPerNode: VALUES_PER_READ, returnBounds: false }),
            timestampsToReturn: TimestampsToReturn.Both,
            releaseContinuationPoints: false,
            nodesToRead: pending.map((k) => ({ nodeId: group[k]!.nodeId!, continuationPoint: continuation[k] ?? undefined })),
          }),
        );
        const next: number[] = [];
        const batch: Array<readonly [Item, DataValue]> = [];
        (res.results ?? []).forEach((r, j) => {
          const k = pending[j]!;
          const item = group[k]!;
          if (!r.statusCode.isGood() && r.statusCode.name !== 'GoodNoData' && r.statusCode.name !== 'GoodMoreData') {
            failed.push(`${item.nodeText}: ${r.statusCode.name}`);
            return;
          }
          for (const dv of (r.historyData as HistoryData | null)?.dataValues ?? []) batch.push([item, dv]);
          if (r.continuationPoint?.length) {
            continuation[k] = r.continuationPoint;
            next.push(k);
          }
        });
        pending = next;
        if (batch.length) {
          onValues(batch);
          values += batch.length;
          // paced: at most maxValuesPerSecond on average since the start
          const due = started + (values / o.maxValuesPerSecond) * 1000;
          if (due > Date.now()) await sleep(due - Date.now(), o.signal);
        }
      }
    }
  }
  const reasons: string[] = [];
  if (historizing.length < nodes.length) reasons.push(`${nodes.length - historizing.length} of ${nodes.length} nodes have no history on the server`);
  if (clipped) reasons.push(`values older than backfill.maxAge (${Math.round(o.maxAge / 1000)} s) not read`);
  if (failed.length) reasons.push(`history read failed for ${failed.slice(0, 3).join(', ')}${failed.length > 3 ? ` and ${failed.length - 3} more` : ''}`);
  if (o.signal.aborted) reasons.push('the connection ended during the backfill');
  return { nodes: nodes.length, historizing: historizing.length, values, complete: reasons.length === 0, reason: reasons.join('; ') || undefined };
}
