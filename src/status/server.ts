/**
 * The status HTTP server: `/healthz` (the process answers), `/readyz` (sources and sinks are
 * connected or buffering within limits), `/api/status` (every component's state and counters,
 * and the dead letters). Read-only: nothing here changes the gateway.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ComponentStatus } from '../core/component.js';
import { listen } from '../core/net.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { HttpConfig } from './config.js';

export class StatusServer {
  private server?: Server;
  port = 0;
  private readonly startedAt = Date.now();

  /** `extra`: more read-only JSON endpoints (path -> body), e.g. /api/indicators. */
  constructor(private readonly config: HttpConfig, private readonly pipeline: Pipeline, private readonly extra: Record<string, () => unknown> = {}) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    this.port = await listen(server, this.config.listen.host, this.config.listen.port);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
  }

  /** Reasons the gateway is not ready; empty when it is. */
  notReady(): string[] {
    const reasons: string[] = [];
    for (const c of this.pipeline.components()) {
      if (c.status().state === 'stopped' || c.status().state === 'starting') reasons.push(`${c.kind} ${c.name} is ${c.status().state}`);
    }
    return reasons;
  }

  status() {
    const { components, deadLetters } = this.pipeline.status();
    return { startedAt: this.startedAt, now: Date.now(), ready: this.notReady().length === 0, components, deadLetters };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('cache-control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'read-only endpoint' });
    switch (url.pathname) {
      case '/healthz':
        return send(res, 200, { status: 'ok' });
      case '/readyz': {
        const reasons = this.notReady();
        return send(res, reasons.length ? 503 : 200, reasons.length ? { status: 'not ready', reasons } : { status: 'ready' });
      }
      case '/api/status':
        return send(res, 200, this.status());
      default: {
        const extra = this.extra[url.pathname];
        if (extra) return send(res, 200, extra());
        return send(res, 404, { error: `no such endpoint: ${url.pathname}` });
      }
    }
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8' });
  res.end(text);
}

export type { ComponentStatus };
