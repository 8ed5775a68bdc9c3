/**
 * What the gateway process does with a promise rejection nobody handles. node-opcua 2.182 (the
 * last release for Node 20) rejects promises of its own, which no caller holds, when a session or
 * channel closes under transactions in flight; the connection supervisor has already seen the
 * close and reconnects, so those are logged and the gateway goes on. Any other one is a bug of
 * ours or of a library: the process ends with one line and exit 1 (the buffer keeps what was
 * acknowledged, and systemd or Docker start it again), rather than run on in an unknown state.
 */
import type { Logger } from 'pino';

/**
 * node-opcua's own rejections after a session or channel closed (also filtered by the test setup).
 * "Connection has been closed by client" and "Invalid Channel" come from requests in flight on a
 * channel the OPC UA source aborts after a publish timeout (so that its session can be moved to the
 * next connection and closed there); "Cannot recreate session" from a transaction of an endpoint
 * stopped while it ran (a cluster hand-over or a reload), which node-opcua tries to replay on a
 * client that is gone. A server's "BadSessionIdInvalid" / "BadSessionClosed" answer, and "Session
 * has been closed", reach no caller when a notification carrying a structure the client decodes
 * on the fly (OpaqueStructure: the CNC's CncPositionDataType) arrives just before the session
 * closes: ClientSubscriptionImpl.onNotificationMessage reads the type definitions with
 * promoteOpaqueStructureInNotificationData(...).then(...) and no catch (traced to that line with a
 * promise-creation hook; a cluster rebalance, which stops endpoints seconds after their first
 * values, ended a gateway with it in CI). The OPC UA source now decodes structures before that
 * line runs (sources/opcua/structures.ts); these stay listed for node-opcua's other paths.
 */
export const NODE_OPCUA_CLOSED =
  /^\s*(Session has been closed and should not be used to perform a transaction anymore|Transaction has been canceled because client channel\b|Connection has been closed by client , but this transaction cannot be honored|Invalid Channel BadConnectionClosed|Cannot recreate session\b|serviceResult = Bad(SessionIdInvalid|SessionClosed) \()/;
const LOG_EVERY_MS = 60_000;

/** Whether `err` is one of those, thrown from node-opcua's code. */
export function isNodeOpcuaClosed(err: unknown): boolean {
  return err instanceof Error && NODE_OPCUA_CLOSED.test(err.message) && /node-opcua/.test(err.stack ?? '');
}

export function guardRejections(log: Logger): void {
  let lastLogged = 0;
  process.on('unhandledRejection', (reason) => {
    const err = reason instanceof Error ? reason : new Error(String(reason));
    if (isNodeOpcuaClosed(err)) {
      if (Date.now() - lastLogged > LOG_EVERY_MS) {
        lastLogged = Date.now();
        log.warn({ code: 'PG_ERR_INTERNAL', component: 'node-opcua', err: err.message }, 'node-opcua dropped a transaction of a closed session (the endpoint reconnects by itself)');
      }
      return;
    }
    log.fatal({ code: 'PG_ERR_INTERNAL', err: err.stack ?? err.message }, 'unhandled promise rejection: stopping');
    process.stderr.write(`plantgate: internal error (PG_ERR_INTERNAL): ${err.message}\n`, () => process.exit(1));
  });
}
