/**
 * Pipelined acknowledgements for a connection to an external broker. mqtt.js hands us one PUBLISH
 * at a time and reads the next only when we call back; waiting for each message to be durable
 * before taking the next held one client to one buffer commit per message (~4,000 messages/s),
 * and a backlog in the socket delayed the broker's PINGRESP until mqtt.js gave the connection up.
 *
 * Here the next message is taken at once while up to `limit` messages wait for their commit; each
 * PUBACK is sent only once its message is durable (spec rule 1) and in the order the messages
 * arrived (MQTT-4.6.0-2), so the group commit covers many messages of one client. If a message
 * cannot be made durable, no later PUBACK of that connection is sent and the connection is dropped:
 * the broker redelivers everything unacknowledged.
 */
export class AckPipeline {
  private chain: Promise<void> = Promise.resolve();
  private inflight = 0;
  private readonly waiting: (() => void)[] = [];
  /** Connections (streams) on which an acknowledgement failed: nothing more is sent on them. */
  private readonly failed = new WeakSet<object>();

  constructor(private readonly limit: number, private readonly onFailure: (err: unknown, stream: object) => void) {}

  get pending(): number {
    return this.inflight;
  }

  /**
   * `durable` resolves when the message is in the buffer; `ack` sends its acknowledgement (a no-op
   * for QoS 0) and runs only if every earlier message of `stream` was acknowledged; `next` lets
   * mqtt.js read the next packet, at once while fewer than `limit` messages wait.
   */
  admit(stream: object, durable: Promise<void>, ack: () => void, next: () => void): void {
    this.inflight++;
    this.chain = this.chain.then(
      () =>
        durable.then(
          () => {
            if (!this.failed.has(stream)) ack();
          },
          (err: unknown) => {
            if (!this.failed.has(stream)) {
              this.failed.add(stream);
              this.onFailure(err, stream);
            }
          },
        ),
    ).finally(() => {
      this.inflight--;
      this.waiting.shift()?.();
    });
    if (this.inflight <= this.limit) next();
    else this.waiting.push(next);
  }
}
