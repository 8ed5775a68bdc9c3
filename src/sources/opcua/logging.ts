/**
 * node-opcua prints its warnings and errors straight to the console, in boxes over many lines
 * (an untrusted certificate gives twenty). Operators read plantgate's own log instead, where the
 * source reports what matters (connection lost, node bad, certificate refused) once, as JSON; the
 * library's text goes to the same log at debug level so it is there when someone needs it.
 */
import { format } from 'node:util';
import { setErrorLogger, setWarningLogger } from 'node-opcua-debug';
import type { Logger } from 'pino';

export function routeOpcuaLogs(log: Logger): void {
  const lib = log.child({ component: 'node-opcua' });
  const print = (...args: unknown[]) => lib.debug(format(...args).replace(/\s+/g, ' ').slice(0, 2000));
  setWarningLogger(print);
  setErrorLogger(print);
}
