/**
 * Structures the client decodes on the fly. A value whose structure type the client has not
 * compiled in (a companion specification's, such as the CNC's CncPositionDataType) arrives as an
 * OpaqueStructure, and node-opcua 2.182 decodes it in ClientSubscriptionImpl.onNotificationMessage
 * by reading the type's definition from the server, with `promote(...).then(process)` and no catch:
 * when that read fails, the whole notification message, every value in it, is never processed,
 * although it has been acknowledged (Republish cannot bring it back), and the rejection reaches
 * nobody. Here the decoding runs first, with a catch: what stays undecodable is marked so that the
 * value mapping refuses it with `unsupported_type` (a dead letter naming the field), the rest of
 * the message goes on as usual, and messages keep their order.
 */
import { type ClientSession, type ClientSubscription, DataChangeNotification, DataType, EventNotificationList, extractDataValueToPromote, type NotificationMessage, promoteOpaqueStructureInNotificationData, type Variant, VariantArrayType } from 'node-opcua';

/** The ExtensionObject values of a message that are still opaque. */
function opaqueValues(m: NotificationMessage): Variant[] {
  const out: Array<{ value: Variant }> = [];
  for (const n of m.notificationData ?? []) {
    if (n instanceof DataChangeNotification) {
      for (const item of n.monitoredItems ?? []) if (item.value.value?.dataType === DataType.ExtensionObject) out.push({ value: item.value.value });
    } else if (n instanceof EventNotificationList) {
      for (const e of n.events ?? []) for (const f of e.eventFields ?? []) if (f.dataType === DataType.ExtensionObject) out.push({ value: f });
    }
  }
  return out.length ? extractDataValueToPromote(out).map((d) => d.value) : [];
}

/**
 * An undecodable structure becomes a value without a definition, which the mapping refuses with
 * `unsupported_type`, and which node-opcua no longer tries to decode (it is not opaque any more).
 */
function markUndecodable(v: Variant): void {
  if (v.arrayType === VariantArrayType.Scalar) v.value = {};
  else v.value = Array.from(v.value as ArrayLike<unknown>, () => ({}));
}

/**
 * Wraps the subscription's notification entry point (also what Republish feeds, resume.ts):
 * messages without opaque structures go straight through, as before, unless an earlier message
 * is still being decoded, in which case they wait their turn. `received` hears of each message at
 * once: the sequence numbers a resume republishes from must be those received, not those
 * processed, or a cut while one waits would republish from a number the server has let go.
 */
export function decodeStructuresFirst(
  sub: ClientSubscription,
  session: ClientSession,
  on: {
    /** Every message as it arrives, before any decoding: what the server has sent (and node-opcua acknowledges) so far. */
    received(m: NotificationMessage): void;
    undecodable(values: number, err: Error): void;
    error(err: unknown): void;
  },
): void {
  const target = sub as unknown as { onNotificationMessage?: (m: NotificationMessage) => void };
  const original = target.onNotificationMessage;
  if (typeof original !== 'function') throw new Error('node-opcua changed: ClientSubscription.onNotificationMessage is missing');
  let queue: Promise<void> | undefined;
  target.onNotificationMessage = (m: NotificationMessage) => {
    on.received(m);
    const opaque = opaqueValues(m);
    if (!queue && opaque.length === 0) return original.call(sub, m);
    const step = (queue ?? Promise.resolve())
      .then(async () => {
        if (opaque.length === 0) return;
        try {
          await promoteOpaqueStructureInNotificationData(session, (m.notificationData ?? []) as Parameters<typeof promoteOpaqueStructureInNotificationData>[1]);
        } catch (err) {
          const left = opaque.filter((v) => extractDataValueToPromote([{ value: v }]).length > 0);
          for (const v of left) markUndecodable(v);
          on.undecodable(left.length, err as Error);
        }
      })
      .then(() => original.call(sub, m))
      .catch((err: unknown) => on.error(err))
      .finally(() => {
        if (queue === step) queue = undefined;
      });
    queue = step;
  };
}
