/**
 * node-opcua prints its warnings and errors straight to the console, in boxes over many lines
 * (an untrusted certificate gives twenty). Operators read plantgate's own log instead, where the
 * source reports what matters (connection lost, node bad, certificate refused) once, as JSON; the
 * library's text goes to the same log at debug level so it is there when someone needs it.
 */
import { format } from 'node:util';
import { setErrorLogger, setWarningLogger } from 'node-opcua-debug';
import type { Logger } from 'pino';

/**
 * For the OPC UA commands (browse, pki, simulators): node-opcua's warnings go to standard error as
 * one line each, except its start-up self-test note about PKCS#1 v1.5 on Node 20
 * (NODE-OPCUA-W27, CVE-2023-46809), which concerns only the Basic128Rsa15 policy and would
 * otherwise open every command's output.
 */
export function routeOpcuaLogsToStderr(): void {
  const print = (...args: unknown[]) => {
    const text = format(...args).replace(/\s+/g, ' ').trim();
    if (/NODE-OPCUA-W27|CVE-2023-46809/.test(text) || !text) return;
    process.stderr.write(`node-opcua: ${text.slice(0, 500)}\n`);
  };
  setWarningLogger(print);
  setErrorLogger(print);
}

export function routeOpcuaLogs(log: Logger): void {
  const lib = log.child({ component: 'node-opcua' });
  const print = (...args: unknown[]) => lib.debug(format(...args).replace(/\s+/g, ' ').slice(0, 2000));
  setWarningLogger(print);
  setErrorLogger(print);
}
