import type { Server } from 'node:net';
import { PlantgateError } from './errors.js';

const WHY: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another program, or another plantgate, listens there)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'no network interface has that address',
};

/** Listens and resolves with the bound port (useful with port 0); a bind error names the address and the cause. */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      const why = WHY[err.code ?? ''] ?? err.message;
      reject(new PlantgateError('PG_ERR_LISTEN', `cannot listen on ${host}:${port}: ${why}${err.code ? ` (${err.code})` : ''}`, false, { cause: err }));
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** Whether a listen address is reachable from this host only (what the defaults use). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
