/**
 * The running gateway: built from a validated configuration through the registry of kinds
 * (kinds.ts), and changed while it runs by `reload()`. A reload reads and validates everything
 * first (configuration, registry, targets); an invalid or refused one changes nothing. A valid one
 * is diffed by component name: removed components stop, added ones start, changed ones are
 * changed in place where their factory can, else restarted alone; an unchanged component is not
 * touched (same OPC UA session, same MQTT connection). The buffer, and the data in it, is never
 * reopened. docs/operations.md lists what each section does on a reload.
 *
 * Longer than ~400 lines: start, stop, reload and the cluster's ownership changes all work on
 * the same running set of components, through one diff and one executor; what each kind does is
 * in kinds.ts, the HTTP side in status/.
 */
import { createHash } from 'node:crypto';
import { unwatchFile, watchFile } from 'node:fs';
import { resolve } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import type { DiskBuffer } from '../buffer/disk-buffer.js';
import { bufferFactory } from '../buffer/factory.js';
import type { PlantgateConfig } from '../config/schema.js';
import type { ClusterMember } from '../cluster/member.js';
import type { Component } from '../core/component.js';
import { ConfigError, type ConfigProblem, PlantgateError } from '../core/errors.js';
import { canonical } from '../core/factory.js';
import { holdHeapTarget } from '../core/heap-target.js';
import { isLoopback } from '../core/net.js';
import type { DeadLetters } from '../deadletters/dead-letters.js';
import { deadLettersFactory } from '../deadletters/factory.js';
import type { IndicatorEngine } from '../indicators/engine.js';
import { loadIndicatorsUnit } from '../indicators/factory.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { LOG_REDACT_PATHS } from '../security/secrets.js';
import { sinkName } from '../sinks/influxdb/factory.js';
import type { EmbeddedBroker } from '../sources/mqtt/embedded-broker.js';
import { TopicRouter } from '../sources/mqtt/router.js';
import type { OpcuaCertificates } from '../sources/opcua/factory.js';
import type { SourceContext } from '../sources/source.js';
import type { SparkplugHost } from '../sources/sparkplug/host.js';
import type { ConfigReport, GatewayControl, ReloadChange, ReloadOptions, ReloadReport } from '../status/control.js';
import type { StatusServer } from '../status/server.js';
import { type Inputs, type Kind, KINDS, type Runtime, sectionChanges } from './kinds.js';

/**
 * The one root logger; components log through children that carry `component`. JSON lines by
 * default (for journald, Docker and log shippers); `pretty` renders them for a person with
 * pino-pretty, which `auto` picks when standard output is a terminal.
 */
export function createLogger(level: string, destination?: DestinationStream, format: 'auto' | 'json' | 'pretty' = 'json'): Logger {
  // secrets never reach the log, whatever object a component logs (see security/secrets.ts)
  const opts = { level, base: { app: 'plantgate' }, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } };
  if (destination) return pino(opts, destination);
  if (format === 'pretty' || (format === 'auto' && process.stdout.isTTY)) {
    return pino({ ...opts, base: undefined }, pretty({ colorize: process.stdout.isTTY, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', messageKey: 'msg', sync: true }));
  }
  return pino(opts);
}


/** Reads the configuration and the master data it names; throws ConfigError with every problem. */
export type Loader = () => PlantgateConfig;

/** The configuration and its master data, validated together (a reload checks both before it touches anything). */
export function inputsOf(config: PlantgateConfig): Inputs {
  return { config, indicators: config.indicators ? loadIndicatorsUnit(config.indicators) : undefined };
}

function hashOf(inputs: Inputs): string {
  // what this gateway owns in a cluster is not configuration
  return createHash('sha256').update(canonical({ config: inputs.config, indicators: inputs.indicators })).digest('hex').slice(0, 16);
}

interface Live {
  kind: Kind;
  name: string;
  config: unknown;
  text: string;
  component?: Component | StatusServer;
}

/** One component a new configuration adds, removes or changes. */
interface Step {
  kind: Kind;
  name: string;
  key: string;
  prev?: Live;
  next?: { config: unknown; text: string };
}

export interface GatewayOptions {
  log?: Logger;
  /** Where reloads read the configuration from (without it, reload() reports that there is none). */
  load?: Loader;
  file?: string;
  /** Reload when the configuration file, the registry or the targets change. */
  watch?: boolean;
}

export class Gateway {
  readonly log: Logger;
  readonly pipeline: Pipeline;
  readonly buffer: DiskBuffer;
  readonly deadLetters: DeadLetters;
  private readonly router: TopicRouter;
  private inputs: Inputs;
  private readonly live = new Map<string, Live>();
  private certs?: Promise<OpcuaCertificates>;
  private hash: string;
  private loadedAt = Date.now();
  private reloads = 0;
  private lastReload?: ReloadReport;
  private reloading?: Promise<ReloadReport>;
  private reloadOptions: ReloadOptions = {};
  private watched: string[] = [];
  private stopping?: Promise<void>;
  private readonly rt: Runtime;
  /** What the status server may ask (reload, the configuration report, the current host and engine). */
  readonly control: GatewayControl;

  private constructor(inputs: Inputs, private readonly opts: GatewayOptions) {
    const config = inputs.config;
    // in a cluster nothing is owned until the member has claimed it in etcd
    this.inputs = { ...inputs, owned: config.cluster ? new Set() : undefined };
    this.hash = hashOf(inputs);
    this.log = opts.log ?? createLogger(config.log.level, undefined, config.log.format);
    const sinks = [sinkName(config.influx)];
    this.buffer = bufferFactory.create('buffer', config.buffer, { sinks, log: this.log });
    this.deadLetters = deadLettersFactory.create('dead-letters', config.deadLetters, { file: config.deadLetters.file!, log: this.log });
    this.pipeline = new Pipeline(this.buffer, [], [], this.deadLetters, this.log);
    this.router = new TopicRouter(config.mqtt.routes);
    const self = this;
    this.control = {
      indicators: () => this.indicators,
      sparkplug: () => this.sparkplug,
      trustOpcuaServer: (endpoint) => this.trustOpcuaServer(endpoint),
      reload: (trigger, options) => this.reload(trigger, options),
      config: () => this.report(),
      cluster: () => this.cluster,
    };
    this.rt = {
      log: this.log,
      pipeline: this.pipeline,
      buffer: this.buffer,
      deadLetters: this.deadLetters,
      router: this.router,
      control: this.control,
      config: () => self.inputs.config,
      reloadOptions: () => self.reloadOptions,
      sparkplug: () => self.sparkplug,
      certificates: () => (self.certs ??= import('../sources/opcua/factory.js').then((m) => m.openOpcuaCertificates(resolve(self.inputs.config.opcua.pkiDir!), self.inputs.config.opcua.applicationName, self.log))),
      ctx: (name) => ({ ...this.pipeline.sourceContext(), log: this.log.child({ component: name }) }) as SourceContext,
      httpPort: () => this.http.port,
      setOwned: (owned) => this.setOwned(owned),
      running: <T>(kind: string) => new Map([...this.live.values()].filter((l) => l.kind.key === kind && l.component).map((l) => [l.name, l.component as T])),
    };
  }

  static async start(inputs: Inputs, opts: GatewayOptions = {}): Promise<Gateway> {
    const gw = new Gateway(inputs, opts);
    await gw.build();
    return gw;
  }

  get config(): PlantgateConfig {
    return this.inputs.config;
  }
  get http(): StatusServer {
    return this.live.get('http/http')!.component as StatusServer;
  }
  get broker(): EmbeddedBroker | undefined {
    return this.live.get('mqtt-broker/mqtt-broker')?.component as EmbeddedBroker | undefined;
  }
  get sparkplug(): SparkplugHost | undefined {
    return this.live.get('sparkplug/sparkplug')?.component as SparkplugHost | undefined;
  }
  get cluster(): ClusterMember | undefined {
    return this.live.get('cluster/cluster')?.component as ClusterMember | undefined;
  }
  get indicators(): IndicatorEngine | undefined {
    return this.live.get('indicators/indicators')?.component as IndicatorEngine | undefined;
  }

  private async build(): Promise<void> {
    const { config } = this.inputs;
    for (const kind of KINDS) {
      for (const inst of kind.instances(this.inputs)) {
        const component = kind.create ? await kind.create(inst.name, inst.config, this.rt) : undefined;
        if (component && kind.attach) kind.attach(component, this.rt);
        this.live.set(`${kind.key}/${inst.name}`, { kind, name: inst.name, config: inst.config, text: canonical(inst.config), component: component as Component });
      }
    }
    const { host, port } = config.http.listen;
    if (!isLoopback(host) && (!config.http.auth || config.http.auth.readAccess === 'open')) {
      this.log.warn({ listen: `${host}:${port}` }, 'the status page is readable by anyone who can reach this address (http.auth.readAccess: authenticated to require credentials)');
    }
    // process-wide, like the log level; a reload changes it through the memory kind's apply
    holdHeapTarget(config.memory?.heapTarget, this.log);
    try {
      await this.pipeline.start();
      await this.http.start().catch((err: Error) => {
        throw new PlantgateError(err instanceof PlantgateError ? err.code : 'PG_ERR_START', `status page (http) cannot start: ${err.message}`, false, { cause: err });
      });
      // last: the units it claims start through setOwned, into everything built above
      await this.cluster?.start();
    } catch (err) {
      await this.cluster?.stop();
      await this.http.stop();
      await this.pipeline.stop();
      await (await this.certs?.catch(() => undefined))?.dispose();
      throw err;
    }
    if (this.opts.watch) this.watch();
    this.log.info({ http: `${host}:${this.http.port}`, sources: this.pipeline.sources.map((s) => s.name), sinks: this.pipeline.sinks.map((s) => s.name), config: this.hash }, 'plantgate running');
  }

  private async trustOpcuaServer(endpoint: string): Promise<{ thumbprint: string; subject?: string }> {
    const source = this.pipeline.sources.find((s) => s.name === endpoint && s.type === 'opcua') as { trustServer(): Promise<{ thumbprint: string; subject?: string }> } | undefined;
    if (!source) throw new Error(`no OPC UA endpoint named ${JSON.stringify(endpoint)}`);
    return source.trustServer();
  }

  /** The configuration now running: its hash, when it was loaded, and the last reload's outcome. */
  report(): ConfigReport {
    return { instance: this.inputs.config.instance, file: this.opts.file, hash: this.hash, loadedAt: this.loadedAt, reloads: this.reloads, lastReload: this.lastReload, watching: this.watched };
  }

  // ---- reload ---------------------------------------------------------------------------------

  /** Reads the configuration again and applies what changed. One at a time: a second request waits, then reads the files again. */
  reload(trigger: ReloadReport['trigger'], options: ReloadOptions = {}): Promise<ReloadReport> {
    const run = (this.reloading ?? Promise.resolve())
      .catch(() => undefined)
      .then(async () => {
        this.reloadOptions = options;
        try {
          return await this.apply(trigger);
        } finally {
          this.reloadOptions = {};
        }
      });
    this.reloading = run;
    return run;
  }

  private async apply(trigger: ReloadReport['trigger']): Promise<ReloadReport> {
    const started = Date.now();
    const file = this.opts.file ?? '';
    const finish = (outcome: ReloadReport['outcome'], changes: ReloadChange[], problems: ConfigProblem[]): ReloadReport => {
      const report: ReloadReport = { at: started, trigger, outcome, durationMs: Date.now() - started, hash: this.hash, changes, failed: changes.filter((c) => c.error).length, problems };
      this.reloads++;
      this.lastReload = report;
      const fields = { trigger, outcome, config: this.hash, durationMs: report.durationMs, changes: changes.map((c) => `${c.action} ${c.component}${c.error ? ` (failed: ${c.error})` : ''}`), problems: problems.length ? problems.map((p) => `${p.path ? `${p.path}: ` : ''}${p.message}${p.line ? ` (line ${p.line}, column ${p.column})` : ''}`) : undefined };
      if (outcome === 'invalid' || outcome === 'refused') this.log.error({ code: 'PG_ERR_RELOAD', ...fields }, `reload ${outcome}: the running configuration is kept`);
      else if (report.failed) this.log.error({ code: 'PG_ERR_RELOAD', ...fields }, 'reload applied, but some components did not start');
      else this.log.info(fields, outcome === 'unchanged' ? 'reload: nothing changed' : 'reload applied');
      return report;
    };
    if (this.stopping) return finish('refused', [], [{ file, path: '', message: 'the gateway is stopping' }]);
    if (!this.opts.load) return finish('refused', [], [{ file, path: '', message: 'this gateway was not started from a configuration file, so there is nothing to read again' }]);
    let next: Inputs;
    try {
      next = inputsOf(this.opts.load());
      next.owned = next.config.cluster ? (this.inputs.owned ?? new Set()) : undefined;
    } catch (err) {
      if (err instanceof ConfigError) return finish('invalid', [], err.problems);
      return finish('invalid', [], [{ file, path: '', message: (err as Error).message }]);
    }

    const steps = this.diff(next);
    const refusals = steps.flatMap((s) => (s.prev && s.next && s.kind.fixed ? [s.kind.fixed(s.prev.config, s.next.config, this.rt)] : [])).filter((m): m is string => !!m);
    if (refusals.length) return finish('refused', [], refusals.map((message) => ({ file, path: '', message })));
    if (steps.length === 0) return finish('unchanged', [], []);
    const changes = await this.execute(steps, next);
    this.hash = hashOf(next);
    this.loadedAt = Date.now();
    if (this.opts.watch) this.watch();
    return finish('applied', changes, []);
  }


  /** The components that differ between what runs and `next`, by name. */
  private diff(next: Inputs): Step[] {
    const steps: Step[] = [];
    for (const kind of KINDS) {
      const wanted = new Map(kind.instances(next).map((i) => [i.name, i.config]));
      for (const [key, l] of this.live) if (l.kind === kind && !wanted.has(l.name)) steps.push({ kind, name: l.name, key, prev: l });
      for (const [name, config] of wanted) {
        const key = `${kind.key}/${name}`;
        const prev = this.live.get(key);
        const text = canonical(config);
        if (prev?.text !== text) steps.push({ kind, name, key, prev, next: { config, text } });
      }
    }
    return steps;
  }

  /** Stops, starts, changes and restarts what `steps` say; `next` is what the kinds build from from now on. */
  private async execute(steps: Step[], next: Inputs): Promise<ReloadChange[]> {
    this.inputs = next; // what the kinds build from now on
    const changes: ReloadChange[] = [];
    const change = (s: Step, action: ReloadChange['action'], extra: Partial<ReloadChange> = {}) => changes.push({ component: s.name, type: s.kind.key, action, ...extra });
    // removals first, in reverse start order (intake before what it feeds)
    for (const s of [...steps].reverse()) {
      if (s.next || !s.prev) continue;
      await this.remove(s.prev);
      this.live.delete(s.key);
      change(s, 'removed');
    }
    const restarted = new Set<string>();
    // components of a kind that says they are independent (OPC UA endpoints: one session each)
    // start together: a failover of ten endpoints costs one connect, not ten
    const together = steps.filter((s) => s.next && !s.prev && s.kind.independent);
    const started = new Map(await Promise.all(together.map(async (s) => [s, await this.add(s.kind, s.name, s.next!.config, s.next!.text)] as const)));
    for (const s of steps) {
      if (!s.next) continue;
      if (!s.prev) {
        const error = started.has(s) ? started.get(s) : await this.add(s.kind, s.name, s.next.config, s.next.text);
        if (s.kind.create) restarted.add(s.kind.key);
        change(s, 'added', error ? { error } : {});
        continue;
      }
      const keys = sectionChanges(s.prev.config, s.next.config);
      const prevConfig = s.prev.config;
      if (!s.kind.create) {
        s.kind.apply?.(s.next.config, prevConfig, this.rt);
        Object.assign(s.prev, s.next);
        change(s, 'updated', { keys });
        continue;
      }
      let inPlace = false;
      try {
        inPlace = (await s.kind.reconfigure?.(s.prev.component, s.next.config, prevConfig, this.rt)) ?? false;
      } catch (err) {
        // an in-place change that failed leaves the component as it was (a port already taken)
        change(s, 'updated', { keys, error: (err as Error).message });
        continue;
      }
      if (inPlace) {
        Object.assign(s.prev, s.next);
        change(s, 'updated', { keys });
        continue;
      }
      const error = await this.restart(s.prev, s.next.config, s.next.text);
      restarted.add(s.kind.key);
      change(s, 'restarted', error ? { keys, error } : { keys });
    }
    // components whose wills and subscriptions come from a kind that was restarted go with it
    for (const l of [...this.live.values()]) {
      if (!l.kind.follows || !restarted.has(l.kind.follows) || changes.some((c) => c.type === l.kind.key && c.component === l.name)) continue;
      const error = await this.restart(l, l.config, l.text);
      changes.push({ component: l.name, type: l.kind.key, action: 'restarted', keys: [`(${l.kind.follows} changed)`], ...(error ? { error } : {}) });
    }
    return changes;
  }

  /**
   * In a cluster: read exactly the units in `owned` (the member calls this as leases move). The
   * same diff as a reload, on the configuration that runs: only the endpoints and Sparkplug groups
   * gained or lost change; every other component is not touched. Queued behind a running reload.
   */
  setOwned(owned: ReadonlySet<string>): Promise<number> {
    const run = (this.reloading ?? Promise.resolve())
      .catch(() => undefined)
      .then(async () => {
        if (this.stopping && owned.size) return 0;
        const next: Inputs = { ...this.inputs, owned: new Set(owned) };
        const changes = await this.execute(this.diff(next), next);
        const failed = changes.filter((x) => x.error);
        for (const c of failed) this.log.error({ code: 'PG_ERR_CLUSTER', component: c.component, err: c.error }, 'an owned unit did not start; it stays ours and is tried again next round');
        return failed.length;
      });
    this.reloading = run.then(() => this.lastReload!);
    return run;
  }

  private async remove(l: Live): Promise<void> {
    const c = l.component as Component | undefined;
    if (!c) return;
    l.kind.detach?.(c, this.rt);
    await c.stop().catch((err: unknown) => this.log.error({ err, component: l.name }, 'stop failed'));
  }

  /** Builds, attaches and starts one component; returns why it could not (it is then not running). */
  private async add(kind: Kind, name: string, config: unknown, text: string): Promise<string | undefined> {
    const key = `${kind.key}/${name}`;
    if (!kind.create) {
      kind.apply?.(config, undefined, this.rt);
      this.live.set(key, { kind, name, config, text });
      return undefined;
    }
    let component: Component | undefined;
    try {
      component = (await kind.create(name, config, this.rt)) as Component;
      kind.attach?.(component, this.rt);
      await component.start();
      this.live.set(key, { kind, name, config, text, component });
      return undefined;
    } catch (err) {
      if (component) {
        kind.detach?.(component, this.rt);
        await component.stop().catch(() => undefined);
      }
      return (err as Error).message;
    }
  }

  /**
   * Stops one component and builds it again from `config`. When the new one cannot start, the old
   * section is started again, so a typo costs nothing but the reload (which reports it); the
   * running section is kept as the one to compare with, so the next reload tries again.
   */
  private async restart(l: Live, config: unknown, text: string): Promise<string | undefined> {
    await this.remove(l);
    const key = `${l.kind.key}/${l.name}`;
    const prev = { config: l.config, text: l.text };
    this.live.delete(key);
    const error = await this.add(l.kind, l.name, config, text);
    if (!error) return undefined;
    const again = await this.add(l.kind, l.name, prev.config, prev.text);
    this.log.error({ code: 'PG_ERR_RELOAD', component: l.name, err: error, restored: !again }, again ? 'the changed component cannot start, nor can its previous configuration: it is not running' : 'the changed component cannot start: it runs on its previous configuration');
    return again ? `${error}; its previous configuration cannot start either (${again})` : `${error} (runs on its previous configuration)`;
  }

  /** With --watch: the configuration file and the master data it names, polled (editors replace files rather than write them). */
  private watch(): void {
    const files = [this.opts.file, this.inputs.config.indicators?.registry, this.inputs.config.indicators?.targets].filter((f): f is string => !!f).map((f) => resolve(f));
    for (const f of this.watched) if (!files.includes(f)) unwatchFile(f);
    let timer: NodeJS.Timeout | undefined;
    for (const f of files) {
      if (this.watched.includes(f)) continue;
      watchFile(f, { interval: 1000, persistent: false }, (cur, prev) => {
        if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
        clearTimeout(timer);
        // an editor writes in steps: wait until the file has been quiet for a moment
        timer = setTimeout(() => void this.reload('watch'), 300);
      });
    }
    this.watched = files;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const f of this.watched) unwatchFile(f);
      await this.reloading?.catch(() => undefined);
      // no hand-over starts now; the units stop with the pipeline, and only then are they given back
      await this.cluster?.halt();
      await this.http.stop();
      await this.pipeline.stop();
      await this.cluster?.stop();
      await (await this.certs?.catch(() => undefined))?.dispose();
      if (this.inputs.config.memory?.heapTarget !== undefined) holdHeapTarget(undefined);
    })();
    return this.stopping;
  }
}

/** Starts a gateway on a validated configuration (its registry and targets are read here). */
export async function startGateway(config: PlantgateConfig, log?: Logger, opts: Omit<GatewayOptions, 'log'> = {}): Promise<Gateway> {
  return Gateway.start(inputsOf(config), { ...opts, log: log ?? createLogger(config.log.level, undefined, config.log.format) });
}
