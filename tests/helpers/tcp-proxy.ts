/**
 * A TCP relay in front of a server that can cut every connection at once: a network outage
 * while the server (and its sessions) stay up, which a server restart does not show.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { listen } from '../../src/core/net.js';

export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private refusing = false;
  private readonly stalled = new Set<Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.refusing) return void client.destroy();
      this.stalled.clear();
      const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    this.port = await listen(this.server, '127.0.0.1', 0);
  }

  /** Drops every open connection and refuses new ones for `ms` (without it: until `heal()`). */
  cut(ms?: number): void {
    this.refusing = true;
    for (const s of this.sockets) s.destroy();
    if (ms !== undefined) setTimeout(() => (this.refusing = false), ms);
  }

  heal(): void {
    this.refusing = false;
  }

  /**
   * A cable cut without a reset: the open connections stay open at both ends but nothing passes
   * any more (each side sees only silence, as behind a dead switch); new connections work.
   */
  stallOpen(): void {
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
      this.stalled.add(s);
    }
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
