/**
 * The operators' HTTP server, read-only:
 *   /                 the live dashboard (static files in ./web, uPlot from node_modules)
 *   /api/status       every component's state and counters, live rates, dead letters, readiness
 *   /api/events       the same, pushed once per second (server-sent events)
 *   /api/indicators   indicator values (when indicators are configured)
 *   /api/devices      every device a source knows (MQTT clients connected and gone, Sparkplug
 *                     nodes and devices, OPC UA endpoints), filtered by ?q= and ?state=, at most ?limit=
 *   /api/deadletters  the dead-letter file, as a download
 *   /healthz          the process answers
 *   /readyz           200 when sources are connected and sinks writing or buffering within
 *                     limits; 503 with the reasons otherwise
 *   /metrics          Prometheus text format
 * Admin actions (POST, always authenticated; refused when http.auth is not configured):
 *   /api/sparkplug/rebirth?node=GROUP/EDGE   ask an edge node for a new birth
 *   /api/buffer/losses/acknowledge            the operator has seen the buffer's reported losses
 *   /api/opcua/trust?endpoint=NAME            trust the server certificate that endpoint refused
 *   /api/reload[?moveBuffered=true]           read the configuration again and apply what changed
 * Reading is open unless http.auth.readAccess is `authenticated` (then only /healthz and /readyz
 * answer without credentials). Responses carry security headers; no secret is ever part of a
 * response (components show URLs without user info, configuration is never echoed).
 */
import { ofKind, ofType } from './details.js';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonical } from '../core/factory.js';
import { listen } from '../core/net.js';
import type { IndicatorEngine } from '../indicators/engine.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { serverTlsOptions } from '../security/tls.js';
import { HttpAuth } from './auth.js';
import type { HttpConfig } from './config.js';
import type { GatewayControl } from './control.js';
import { LiveFeed } from './live.js';
import { Metrics } from './metrics.js';

interface DeviceListRow {
  source: string;
  id: string;
  state: string;
  since: number;
  lastSeenAt?: number;
  messages: number;
  user?: string;
  address?: string;
}

const WEB = join(dirname(fileURLToPath(import.meta.url)), 'web');
const UPLOT = dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: join(WEB, 'index.html'), type: 'text/html; charset=utf-8' },
  '/assets/app.js': { file: join(WEB, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/app.css': { file: join(WEB, 'app.css'), type: 'text/css; charset=utf-8' },
  '/assets/uplot.js': { file: join(UPLOT, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/uplot.css': { file: join(UPLOT, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};
/** Answer without credentials even when reading is authenticated: probes of orchestrators. */
// /api/cluster/peer: what another member asks when it cannot reach etcd (nothing else is in it)
const PROBES = new Set(['/healthz', '/readyz', '/api/cluster/peer']);
/** Buffer fill above which the gateway reports not ready (it is about to push back or drop). */
const BUFFER_READY_LIMIT = 0.9;

export class StatusServer {
  private server?: Server;
  port = 0;
  private readonly startedAt = Date.now();
  readonly live: LiveFeed;
  private readonly metrics: Metrics;
  private auth?: HttpAuth;

  constructor(
    private config: HttpConfig,
    private readonly pipeline: Pipeline,
    private readonly control: GatewayControl = {},
  ) {
    this.live = new LiveFeed(() => this.status());
    this.metrics = new Metrics({
      components: () => this.pipeline.components().map((c) => c.status()),
      deadLetters: () => this.pipeline.deadLetters.status(),
      indicators: () => this.indicators?.compute(),
      cluster: () => this.control.cluster?.()?.status(),
    });
    this.auth = config.auth ? new HttpAuth(config.auth) : undefined;
  }

  private get indicators(): IndicatorEngine | undefined {
    return this.control.indicators?.();
  }

  async start(): Promise<void> {
    this.server = await this.bind(this.config);
    this.live.start();
  }

  private async bind(config: HttpConfig): Promise<Server> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, { error: (err as Error).message }));
    };
    const server = config.tls ? (createHttpsServer(serverTlsOptions(config.tls), handler) as unknown as Server) : createServer(handler);
    this.port = await listen(server, config.listen.host, config.listen.port);
    return server;
  }

  /**
   * A changed http section. Credentials apply in place. A new address or certificate opens the new
   * listener before the old one closes (on the same port, after it), and a listener that cannot
   * open leaves the old one serving: the page never goes dark because of a typo in a port.
   */
  async reconfigure(next: HttpConfig): Promise<void> {
    const prev = this.config;
    if (canonical(prev.listen) === canonical(next.listen) && canonical(prev.tls) === canonical(next.tls)) {
      this.config = next;
      this.auth = next.auth ? new HttpAuth(next.auth) : undefined;
      return;
    }
    const old = this.server;
    const samePort = prev.listen.port === next.listen.port && next.listen.port !== 0;
    if (samePort && old) await closeServer(old, false);
    try {
      this.server = await this.bind(next);
    } catch (err) {
      if (samePort) this.server = await this.bind(prev);
      throw err;
    }
    this.config = next;
    this.auth = next.auth ? new HttpAuth(next.auth) : undefined;
    // requests in flight on the old listener (the reload request itself) finish first
    if (!samePort && old) void closeServer(old, false);
  }

  async stop(): Promise<void> {
    this.live.stop();
    const s = this.server;
    this.server = undefined;
    if (s) await closeServer(s, true);
  }

  /** Reasons the gateway is not ready; empty when it is. */
  notReady(components = this.pipeline.components().map((c) => c.status())): string[] {
    const reasons: string[] = [];
    const sinkAlerts = new Map(ofKind(components, 'sink').map((c) => [c.name, c.details.alert]));
    const buffers = new Map(ofKind(components, 'buffer').map((c) => [c.name, c.details]));
    for (const c of components) {
      if (c.state === 'stopped' || c.state === 'starting' || c.state === 'stopping') reasons.push(`${c.kind} ${c.name} is ${c.state}`);
      else if (c.kind === 'source' && c.state === 'reconnecting') reasons.push(`source ${c.name} is not connected${c.lastError ? `: ${c.lastError.message}` : ''}`);
      else if (c.kind === 'sink' && c.state === 'paused') reasons.push(`sink ${c.name} is paused: ${String(sinkAlerts.get(c.name) ?? c.lastError?.message ?? '')}`);
      else if (c.kind === 'sink' && c.state === 'retrying') reasons.push(`sink ${c.name} is retrying: ${c.lastError?.message ?? 'the last write failed'}`);
      else if (c.kind === 'buffer') {
        const b = buffers.get(c.name);
        const disk = b?.diskError;
        const fill = Number(b?.bytesOnDisk ?? 0) / Number(b?.maxBytes ?? Infinity);
        if (disk) reasons.push(`buffer ${c.name} cannot write to its disk (${disk.code === 'ENOSPC' ? 'disk full' : disk.code}) since ${new Date(disk.since).toISOString()}: intake is held back`);
        else if (c.state === 'full' || fill > BUFFER_READY_LIMIT) reasons.push(`buffer ${c.name} is ${Math.round(fill * 100)}% full`);
      }
    }
    const cluster = this.control.cluster?.()?.status();
    if (cluster) {
      if (cluster.lease.state === 'cut-off') reasons.push('cluster: cut off from etcd while other members reach it; this gateway reads no endpoint until it reaches etcd again');
      else if (cluster.units.owned.length === 0 && cluster.units.unowned.length > 0) reasons.push(`cluster: this gateway owns no unit while ${cluster.units.unowned.length} are unowned (lease ${cluster.lease.state})`);
    }
    return reasons;
  }

  status() {
    const { components, deadLetters } = this.pipeline.status();
    const reasons = this.notReady(components);
    return {
      instance: this.control.config?.().instance,
      startedAt: this.startedAt,
      now: Date.now(),
      ready: reasons.length === 0,
      notReady: reasons,
      components,
      deadLetters,
      rates: this.live?.latest()?.rates ?? {},
      config: this.control.config?.(),
      cluster: this.control.cluster?.()?.status(),
      indicators: this.indicators ? { window: this.indicators.window, scope: this.indicators.scope, contributors: this.indicators.contributors, values: this.indicators.compute().filter((v) => v.scope !== 'enterprise') } : undefined,
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('cross-origin-opener-policy', 'same-origin');
    res.setHeader('cross-origin-resource-policy', 'same-origin');
    res.setHeader('content-security-policy', "default-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    if (this.config.tls) res.setHeader('strict-transport-security', 'max-age=31536000');
    if (req.method === 'POST') return this.admin(req, res, url);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: `${req.method} is not allowed; reading is GET, admin actions are POST` });
    if (this.config.auth?.readAccess === 'authenticated' && !PROBES.has(url.pathname) && !(await this.authenticated(req, res))) return;
    try {
      const asset = ASSETS[url.pathname];
      if (asset) {
        res.writeHead(200, { 'content-type': asset.type });
        return void res.end(readFileSync(asset.file));
      }
      switch (url.pathname) {
        case '/healthz':
          return send(res, 200, { status: 'ok' });
        case '/readyz': {
          const reasons = this.notReady();
          return send(res, reasons.length ? 503 : 200, reasons.length ? { status: 'not ready', reasons } : { status: 'ready' });
        }
        case '/api/status':
          return send(res, 200, this.status());
        case '/api/cluster/peer': {
          const member = this.control.cluster?.();
          if (!member) return send(res, 404, { error: 'this gateway is not in a cluster' });
          return send(res, 200, member.peer());
        }
        case '/api/events':
          return this.live.subscribe(res, String(req.headers['accept-encoding'] ?? ''));
        case '/api/history':
          return send(res, 200, this.live.series());
        case '/api/devices':
          return send(res, 200, this.devices(url.searchParams));
        case '/api/indicators':
          if (!this.indicators) return send(res, 404, { error: 'indicators are not configured (see docs/indicators.md)' });
          return send(res, 200, this.indicators.snapshot());
        case '/api/deadletters': {
          const file = this.pipeline.deadLetters.file;
          res.writeHead(200, { 'content-type': 'application/x-ndjson', 'content-disposition': 'attachment; filename="deadletters.jsonl"' });
          if (!existsSync(file) || statSync(file).size === 0) return void res.end();
          return void createReadStream(file).pipe(res);
        }
        case '/metrics': {
          const text = await this.metrics.render();
          res.writeHead(200, { 'content-type': this.metrics.contentType });
          return void res.end(text);
        }
        default:
          return send(res, 404, { error: `no such endpoint: ${url.pathname}` });
      }
    } catch (err) {
      return send(res, 500, { error: (err as Error).message });
    }
  }

  /** The device list, whatever the fleet's size: filtered here, so a page gets only what it shows. */
  private devices(q: URLSearchParams) {
    const rows: DeviceListRow[] = [];
    for (const s of this.pipeline.sources) {
      const st = s.status();
      if ('deviceRows' in s && typeof s.deviceRows === 'function') rows.push(...(s.deviceRows() as DeviceListRow[]));
      else if (st.type === 'opcua') {
        const d = ofType([st], 'opcua')[0]?.details;
        rows.push({ source: st.name, id: String(d?.url ?? st.name), state: d?.connected ? 'connected' : 'disconnected', since: st.since, lastSeenAt: st.lastValueAt, messages: st.counters.received });
      } else if (st.type === 'sparkplug-host') {
        for (const n of ofType([st], 'sparkplug-host')[0]?.details.nodes ?? []) {
          rows.push({ source: st.name, id: `${n.group}/${n.edge}`, state: n.online ? 'online' : 'offline', since: n.since, lastSeenAt: n.lastMessageAt, messages: 0 });
          for (const d of n.devices) rows.push({ source: st.name, id: `${n.group}/${n.edge}/${d.device}`, state: d.online ? 'online' : 'offline', since: d.since, lastSeenAt: n.lastMessageAt, messages: 0 });
        }
      }
    }
    const text = (q.get('q') ?? '').toLowerCase();
    const state = q.get('state');
    const limit = Math.max(1, Math.min(1000, Number(q.get('limit') ?? 200) || 200));
    const matched = rows.filter((r) => (!state || r.state === state) && (!text || `${r.source} ${r.id} ${r.user ?? ''} ${r.address ?? ''}`.toLowerCase().includes(text)));
    const byState: Record<string, number> = {};
    for (const r of rows) byState[r.state] = (byState[r.state] ?? 0) + 1;
    return { total: rows.length, byState, matched: matched.length, devices: matched.slice(0, limit) };
  }

  /** POST admin actions: credentials always, and only from this origin (no cross-site requests). */
  private async admin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!this.auth) return send(res, 403, { error: 'admin actions are off: configure http.auth (a token or users) to use them' });
    const origin = req.headers.origin;
    if (origin && origin !== `${this.config.tls ? 'https' : 'http'}://${req.headers.host}`) return send(res, 403, { error: `cross-origin request from ${origin} refused` });
    if (!(await this.authenticated(req, res))) return;
    switch (url.pathname) {
      case '/api/sparkplug/rebirth': {
        const node = url.searchParams.get('node') ?? '';
        const [group, edge, ...extra] = node.split('/');
        if (!group || !edge || extra.length) return send(res, 400, { error: 'expected ?node=GROUP/EDGE_NODE' });
        const sparkplug = this.control.sparkplug?.();
        if (!sparkplug) return send(res, 404, { error: 'the Sparkplug host is not configured' });
        try {
          return send(res, 200, await sparkplug.operatorRebirth(group, edge));
        } catch (err) {
          if (err instanceof RangeError) return send(res, 409, { error: err.message });
          throw err;
        }
      }
      case '/api/opcua/trust': {
        const endpoint = url.searchParams.get('endpoint') ?? '';
        if (!this.control.trustOpcuaServer) return send(res, 404, { error: 'no OPC UA endpoint is configured' });
        try {
          return send(res, 200, await this.control.trustOpcuaServer(endpoint));
        } catch (err) {
          return send(res, 409, { error: (err as Error).message });
        }
      }
      case '/api/reload': {
        if (!this.control.reload) return send(res, 404, { error: 'this gateway was not started from a configuration file' });
        const report = await this.control.reload('api', { moveBuffered: url.searchParams.get('moveBuffered') === 'true' });
        // 200 when the new configuration runs (or nothing changed); 422 when it was invalid or refused
        return send(res, report.outcome === 'applied' || report.outcome === 'unchanged' ? 200 : 422, report);
      }
      case '/api/buffer/losses/acknowledge':
        return send(res, 200, { acknowledged: this.pipeline.buffer.acknowledgeLosses() });
      default:
        return send(res, 404, { error: `no such admin action: ${url.pathname}` });
    }
  }

  /** True when the request carries valid credentials; otherwise answers 401 and returns false. */
  private async authenticated(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const outcome = await this.auth!.check(req);
    if (outcome.ok) return true;
    res.setHeader('www-authenticate', 'Basic realm="plantgate", charset="UTF-8"');
    send(res, 401, { error: outcome.why === 'missing' ? 'credentials required' : 'wrong credentials' });
    return false;
  }
}

function closeServer(s: Server, now: boolean): Promise<void> {
  return new Promise<void>((r) => {
    s.close(() => r());
    // SSE streams never end by themselves; idle keep-alive sockets would hold close() open
    if (now) s.closeAllConnections();
    else s.closeIdleConnections();
    if (!now) setTimeout(() => s.closeAllConnections(), 2000).unref();
  });
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8' });
  res.end(text);
}

