/**
 * node-opcua 2.182 (the last release for Node 20) rejects promises of its own, which no caller
 * holds, when a session or channel closes under transactions in flight ("Session has been closed
 * and should not be used...", "Transaction has been canceled because client channel is being
 * closed", a server's BadSessionIdInvalid after a close: process-guard.ts lists them and says
 * where each comes from). The gateway logs them (cli/run.ts) and goes on; here they are kept from
 * failing the run. Every other unhandled rejection still reaches vitest and fails it.
 */
import { isNodeOpcuaClosed } from '../src/cli/process-guard.js';

const theirs = process.listeners('unhandledRejection');
process.removeAllListeners('unhandledRejection');
process.on('unhandledRejection', (reason, promise) => {
  if (isNodeOpcuaClosed(reason)) return;
  for (const l of theirs) l(reason, promise);
});
