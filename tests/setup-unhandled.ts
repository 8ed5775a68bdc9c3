/**
 * node-opcua 2.182 (the last release for Node 20) rejects promises of its own, which no caller
 * holds, when a session or channel closes under transactions in flight ("Session has been closed
 * and should not be used...", "Transaction has been canceled because client channel is being
 * closed"). The gateway logs them (cli/run.ts) and goes on; here they are kept from failing the
 * run. Every other unhandled rejection still reaches vitest and fails it.
 */
const KNOWN = /^(Session has been closed and should not be used to perform a transaction anymore|Transaction has been canceled because client channel\b)/;

const theirs = process.listeners('unhandledRejection');
process.removeAllListeners('unhandledRejection');
process.on('unhandledRejection', (reason, promise) => {
  if (reason instanceof Error && KNOWN.test(reason.message) && /node-opcua/.test(reason.stack ?? '')) return;
  for (const l of theirs) l(reason, promise);
});
