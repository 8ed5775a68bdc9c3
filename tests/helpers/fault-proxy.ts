/**
 * An HTTP proxy in front of a real server that can be told to answer with a fault instead
 * (429/503 with Retry-After, 401, or a dropped connection) for the next N requests. It records
 * when each request arrived, so tests can check backoff and Retry-After.
 */
import { createServer, request, type Server } from 'node:http';
import { listen } from '../../src/core/net.js';

export interface Fault {
  status?: number;
  body?: string;
  retryAfterSeconds?: number;
  /** Destroy the socket instead of answering. */
  drop?: boolean;
}

export class FaultProxy {
  private server?: Server;
  private faults: Fault[] = [];
  private sticky?: Fault;
  readonly arrivals: { at: number; path: string; faulted: boolean }[] = [];
  port = 0;

  constructor(private readonly target: string) {}

  /** Answer the next `times` requests with `fault`. */
  inject(fault: Fault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push(fault);
  }

  /** Answer every request with `fault` until cleared. */
  always(fault: Fault | undefined): void {
    this.sticky = fault;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const target = new URL(this.target);
    this.server = createServer((req, res) => {
      const fault = this.sticky ?? this.faults.shift();
      this.arrivals.push({ at: Date.now(), path: req.url ?? '', faulted: !!fault });
      if (fault) {
        req.resume();
        if (fault.drop) return req.socket.destroy();
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
        res.writeHead(fault.status ?? 503, headers);
        return res.end(fault.body ?? JSON.stringify({ error: `injected ${fault.status ?? 503}` }));
      }
      const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    this.port = await listen(this.server as unknown as import('node:net').Server, '127.0.0.1', 0);
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (s) await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
  }
}
