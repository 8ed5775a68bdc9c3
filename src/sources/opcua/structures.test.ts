import { type ClientSession, type ClientSubscription, DataChangeNotification, DataType, DataValue, MonitoredItemNotification, NotificationMessage, resolveNodeId, Variant } from 'node-opcua';
import { OpaqueStructure } from 'node-opcua-extension-object';
import { describe, expect, it } from 'vitest';
import { decodeStructuresFirst } from './structures.js';
import { convertVariant } from './values.js';

/** A message with one opaque structure (handle 1) and one double (handle 2). */
function message(seq: number): NotificationMessage {
  const opaque = new OpaqueStructure(resolveNodeId('ns=2;i=5001'), Buffer.from([1, 2, 3, 4]));
  return new NotificationMessage({
    sequenceNumber: seq,
    notificationData: [
      new DataChangeNotification({
        monitoredItems: [
          new MonitoredItemNotification({ clientHandle: 1, value: new DataValue({ value: new Variant({ dataType: DataType.ExtensionObject, value: opaque }) }) }),
          new MonitoredItemNotification({ clientHandle: 2, value: new DataValue({ value: new Variant({ dataType: DataType.Double, value: seq }) }) }),
        ],
      }),
    ],
  });
}

describe('structures decoded before the message is processed', () => {
  it('a server that cannot answer for a structure costs that value only, in order, and is reported', async () => {
    const processed: NotificationMessage[] = [];
    const sub = { onNotificationMessage: (m: NotificationMessage) => void processed.push(m) };
    // the session is gone: every request for the type's definition fails, as it does in node-opcua after a close
    const gone = () => Promise.reject(new Error('Session has been closed and should not be used to perform a transaction anymore'));
    const session = { read: gone, browse: gone, readNamespaceArray: gone } as unknown as ClientSession;
    const reported: Array<{ values: number; err: string }> = [];
    const errors: unknown[] = [];
    const received: number[] = [];
    decodeStructuresFirst(sub as unknown as ClientSubscription, session, { received: (m) => received.push(m.sequenceNumber), undecodable: (values, err) => reported.push({ values, err: err.message }), error: (e) => errors.push(e) });

    const plain = new NotificationMessage({ sequenceNumber: 3, notificationData: [new DataChangeNotification({ monitoredItems: [new MonitoredItemNotification({ clientHandle: 2, value: new DataValue({ value: new Variant({ dataType: DataType.Double, value: 3 }) }) })] })] });
    const target = sub as unknown as { onNotificationMessage(m: NotificationMessage): void };
    target.onNotificationMessage(message(1));
    target.onNotificationMessage(message(2));
    // a message without structures waits behind them: order is kept
    target.onNotificationMessage(plain);
    // heard of at once, before any of them is processed
    expect(received).toEqual([1, 2, 3]);
    expect(processed).toEqual([]);
    await expect.poll(() => processed.length).toBe(3);
    expect(processed.map((m) => m.sequenceNumber)).toEqual([1, 2, 3]);
    expect(reported).toHaveLength(2);
    expect(reported[0]).toMatchObject({ values: 1, err: expect.stringContaining('Session has been closed') });
    expect(errors).toEqual([]);
    // the structure is no longer opaque (node-opcua will not try again) and is refused by the mapping; the double is intact
    const items = (processed[0]!.notificationData![0] as DataChangeNotification).monitoredItems!;
    expect(convertVariant('pos', items[0]!.value.value, 64)).toMatchObject({ ok: false, reason: 'unsupported_type' });
    expect(convertVariant('x', items[1]!.value.value, 64)).toEqual({ ok: true, fields: { x: 1 } });

    // once nothing waits, a message without structures goes straight through
    processed.length = 0;
    target.onNotificationMessage(plain);
    expect(processed).toHaveLength(1);
  });
});
