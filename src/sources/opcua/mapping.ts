/** OPC UA values to plantgate points (types follow the node's data type: values.ts). */
import { type DataValue, StatusCodes } from 'node-opcua';
import type { FieldValue, Point } from '../../core/point.js';
import type { EndpointConfig } from './config.js';
import type { Item, MonitoredItems } from './items.js';
import { convertVariant, qualityOf } from './values.js';
import type { DropReason } from '../../core/reasons.js';

const REMOVED_CODES = new Set([StatusCodes.BadNodeIdUnknown.value, StatusCodes.BadNodeIdInvalid.value]);

/**
 * Values to points: one point per series, time and quality, so equal-time values share a line.
 * Marks each item's status on the way; what the configuration does not accept, and what cannot
 * be a field, is handed to `drop` and `reject` with its reason.
 */
export function valuesToPoints(
  values: ReadonlyArray<readonly [Item | undefined, DataValue]>,
  c: EndpointConfig,
  source: string,
  items: MonitoredItems,
  out: { drop(reason: DropReason): void; reject(reason: DropReason, message: string, node: string): void },
  receivedAt = Date.now(),
): { points: Point[]; changed: boolean; values: number } {
  const points = new Map<string, Point>();
  let changed = false;
  let count = 0;
  for (const [item, dv] of values) {
    if (!item) continue;
    const quality = qualityOf(dv.statusCode);
    const code = dv.statusCode.name;
    if (REMOVED_CODES.has(dv.statusCode.value)) {
      // a node that is not there has no value: no point (not even its status), it is shown as removed
      changed = items.markNode(item, 'removed', code) || changed;
      continue;
    } else if (quality === 'bad') changed = items.markNode(item, 'bad', code) || changed;
    else changed = items.markNode(item, 'ok', quality === 'good' ? 'Good' : code) || changed;
    item.values++;
    item.lastValueAt = receivedAt;
    count++;
    if (!c.accept.includes(quality)) {
      out.drop(`quality_${quality}`);
      continue;
    }
    const conv = convertVariant(item.field, dv.value, c.maxArrayLength, item.declared);
    if (!conv.ok) {
      out.drop(conv.reason);
      out.reject(conv.reason, `${item.nodeText}: ${conv.detail}`, item.nodeText);
      continue;
    }
    const fields: Record<string, FieldValue> = conv.fields;
    if (quality !== 'good') fields[`${item.field}.status`] = code;
    if (Object.keys(fields).length === 0) continue;
    const time = timeOf(c, dv, receivedAt);
    if (item.lastTime === undefined || time > item.lastTime) item.lastTime = time;
    const key = `${item.seriesKey}\u0000${time}\u0000${quality}`;
    let p = points.get(key);
    if (!p) {
      const tags = c.qualityTag ? { ...item.tags, [c.qualityTag]: quality } : { ...item.tags };
      p = { measurement: item.measurement, tags, fields: {}, time, receivedAt, quality, source, origin: { endpoint: source } };
      if (quality !== 'good') p.qualityCode = code;
      points.set(key, p);
    }
    Object.assign(p.fields, fields);
  }
  return { points: [...points.values()], changed, values: count };
}

/** The point's time, as `timestamp` says: source, then server, then arrival. */
function timeOf(c: EndpointConfig, dv: DataValue, receivedAt: number): number {
  const ts = c.timestamp;
  if (ts === 'gateway') return receivedAt;
  const first = ts === 'source' ? dv.sourceTimestamp : dv.serverTimestamp;
  const second = ts === 'source' ? dv.serverTimestamp : undefined;
  return first?.getTime() || second?.getTime() || receivedAt;
}
