/**
 * Taking over a session a lost connection left on the server, and recovering what the server
 * sent into the dead connection (OPC UA Part 4, 6.7: after a reconnect the client calls
 * Republish from the next expected sequence number until BadMessageNotAvailable, and only then
 * resumes normal Publish handling). The pieces of node-opcua used here are public on its
 * implementation but not in its typings; each is looked up, not assumed.
 */
import { type ClientSession, type ClientSubscription, type NotificationMessage, type OPCUAClient, RepublishRequest, type RepublishResponse } from 'node-opcua';
import { withTimeout } from '../../core/retry.js';

/** How a connection ended when the server may still hold its session: resumed by the next connection. */
export const RESUMABLE = /^(connection (lost|closed)|no publish response|session keep-alive failed)/;

/** A session (and its subscription) a lost connection left on the server, for the next connection. */
export interface Kept {
  session: ClientSession;
  client: OPCUAClient;
  subscription?: ClientSubscription;
}

/** node-opcua's publish engine: suspended while a session waits to be resumed, and acknowledging republished messages. */
interface PublishEngine {
  suspend(on: boolean): void;
  acknowledge_notification(subscriptionId: number, sequenceNumber: number): void;
}

/** ClientSession.republish, in node-opcua's interface but not in its exported type. */
interface Republishing {
  republish(request: RepublishRequest): Promise<RepublishResponse>;
}

export function publishEngine(session: ClientSession): PublishEngine | undefined {
  const s = session as unknown as { getPublishEngine?: () => PublishEngine };
  return typeof s.getPublishEngine === 'function' ? s.getPublishEngine() : undefined;
}

/** Drops a client's secure channel without closing its sessions (node-opcua keeps them reactivatable). */
export async function abortChannel(client: OPCUAClient): Promise<void> {
  const channel = (client as unknown as { _secureChannel?: { abortConnection(cb: () => void): void } | null })._secureChannel;
  if (!channel) return;
  await withTimeout(new Promise<void>((r) => channel.abortConnection(() => r())), 2000).catch(() => undefined);
}

/**
 * Republish from `first` until the server has no more (BadMessageNotAvailable, as a ServiceFault
 * or as the RepublishResponse's result): each message goes through the subscription as if it had
 * arrived then, and is acknowledged. Returns how many there were. Any other answer (the server
 * lost the subscription) is thrown: the connection ends, and the next builds a new one.
 */
export async function republishFrom(session: ClientSession, sub: ClientSubscription, first: number): Promise<number> {
  const engine = publishEngine(session);
  let n = 0;
  for (let seq = first; ; seq++) {
    let message: NotificationMessage;
    try {
      const res = await withTimeout((session as ClientSession & Republishing).republish(new RepublishRequest({ subscriptionId: sub.subscriptionId, retransmitSequenceNumber: seq })), 10_000, 'republish timed out');
      if (!res.responseHeader.serviceResult.isGood()) throw new Error(res.responseHeader.serviceResult.name);
      message = res.notificationMessage;
    } catch (err) {
      if (/BadMessageNotAvailable/.test((err as Error).message)) break;
      throw new Error(`republish failed: ${(err as Error).message}`, { cause: err });
    }
    (sub as unknown as { onNotificationMessage(m: NotificationMessage): void }).onNotificationMessage(message);
    engine?.acknowledge_notification(sub.subscriptionId, message.sequenceNumber);
    n++;
  }
  return n;
}
