/** OPC UA values to plantgate points (types follow the node's data type: values.ts). */
import { type DataValue, StatusCodes } from 'node-opcua';
import type { FieldValue, Point } from '../../core/point.js';
import type { EndpointConfig } from './config.js';
import type { Item, MonitoredItems } from './items.js';
import { convertVariant, plainNumber, qualityOf } from './values.js';
import type { DropReason } from '../../core/reasons.js';

const REMOVED_CODES = new Set([StatusCodes.BadNodeIdUnknown.value, StatusCodes.BadNodeIdInvalid.value]);

/** The values of one notification, read response or history batch, by index. */
export interface ValueBatch {
  readonly length: number;
  item(i: number): Item | undefined;
  value(i: number): DataValue;
}

/** Pairs of item and value as a batch (reads and history, where the pairs exist anyway). */
export function pairs(values: ReadonlyArray<readonly [Item | undefined, DataValue]>): ValueBatch {
  return { length: values.length, item: (i) => values[i]![0], value: (i) => values[i]![1] };
}

/**
 * Values to points: one point per series, time and quality, so equal-time values share a line.
 * Marks each item's status on the way; what the configuration does not accept, and what cannot
 * be a field, is handed to `drop` and `reject` with its reason.
 * A subscription delivers 100,000 values a second: per value this allocates nothing but the
 * field (a plain number goes straight into its point, values.ts plainNumber), and the point is
 * looked up by its key only when a value does not belong to the point of the value before it.
 */
export function valuesToPoints(
  values: ValueBatch,
  c: EndpointConfig,
  source: string,
  items: MonitoredItems,
  out: { drop(reason: DropReason): void; reject(reason: DropReason, message: string, node: string): void },
  receivedAt = Date.now(),
): { points: Point[]; changed: boolean; values: number } {
  const points = new Map<string, Point>();
  let last: Point | undefined;
  let lastSeries = '';
  let changed = false;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const item = values.item(i);
    if (!item) continue;
    const dv = values.value(i);
    const quality = qualityOf(dv.statusCode);
    const code = dv.statusCode.name;
    if (REMOVED_CODES.has(dv.statusCode.value)) {
      // a node that is not there has no value: no point (not even its status), it is shown as removed
      changed = items.markNode(item, 'removed', code) || changed;
      continue;
    } else if (quality === 'bad') changed = items.markNode(item, 'bad', code) || changed;
    else changed = items.markNode(item, 'ok', quality === 'good' ? 'Good' : code) || changed;
    item.values++;
    count++;
    if (!c.accept.includes(quality)) {
      out.drop(`quality_${quality}`);
      continue;
    }
    const x = plainNumber(dv.value, item.declared);
    let fields: Record<string, FieldValue> | undefined;
    if (x === undefined) {
      const conv = convertVariant(item.field, dv.value, c.maxArrayLength, item.declared);
      if (!conv.ok) {
        out.drop(conv.reason);
        out.reject(conv.reason, `${item.nodeText}: ${conv.detail}`, item.nodeText);
        continue;
      }
      fields = conv.fields;
      // a value without fields (null) is still written when its status is: the status field
      if (quality === 'good' && Object.keys(fields).length === 0) continue;
    }
    const time = timeOf(c, dv, receivedAt);
    if (time > item.lastTime) item.lastTime = time;
    let p = last;
    if (!p || lastSeries !== item.seriesKey || p.time !== time || p.quality !== quality) {
      const key = `${item.seriesKey}\u0000${time}\u0000${quality}`;
      p = points.get(key);
      if (!p) {
        const tags = c.qualityTag ? { ...item.tags, [c.qualityTag]: quality } : { ...item.tags };
        p = { measurement: item.measurement, tags, fields: {}, time, receivedAt, quality, source, origin: { endpoint: source } };
        if (quality !== 'good') p.qualityCode = code;
        points.set(key, p);
      }
      last = p;
      lastSeries = item.seriesKey;
    }
    if (fields) Object.assign(p.fields, fields);
    else p.fields[item.field] = x!;
    if (quality !== 'good') p.fields[`${item.field}.status`] = code;
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
