/**
 * What the status server may ask of the running gateway, and the shape of the configuration and
 * reload reports it shows. Declared here, where they are read, so the server needs nothing from the
 * gateway that builds it.
 */
import type { ClusterStatus } from '../cluster/member.js';
import type { ConfigProblem } from '../core/errors.js';
import type { IndicatorEngine } from '../indicators/engine.js';
import type { SparkplugHost } from '../sources/sparkplug/host.js';

/** What a reload did to one component. */
export interface ReloadChange {
  component: string;
  type: string;
  /** added and removed: started and stopped; restarted: stopped and built again from the new section; updated: changed in place (same connections). */
  action: 'added' | 'removed' | 'restarted' | 'updated';
  /** What changed, as keys of its section. */
  keys?: string[];
  /** Set when the change could not be carried out (the component kept or lost, as `action` says). */
  error?: string;
}

export interface ReloadReport {
  at: number;
  /** What asked for it: a signal, the API, a changed file. */
  trigger: 'signal' | 'api' | 'watch';
  /**
   * applied: the new configuration runs (see `changes`; `failed` counts changes that did not start);
   * unchanged: nothing differed; invalid: it did not validate, nothing was touched; refused: it
   * validated but asks for something only a restart can do, nothing was touched.
   */
  outcome: 'applied' | 'unchanged' | 'invalid' | 'refused';
  durationMs: number;
  /** Hash of the configuration now running. */
  hash: string;
  changes: ReloadChange[];
  failed: number;
  /** Why it was invalid (each with file, key path and, where known, line and column) or refused. */
  problems: ConfigProblem[];
}

export interface ReloadOptions {
  /**
   * A new sink target while the buffer still holds lines for the old one: write them to the new
   * target (the operator says so; without it such a reload is refused).
   */
  moveBuffered?: boolean;
}

export interface ConfigReport {
  /** This gateway's name in a fleet (`instance`). */
  instance: string;
  file?: string;
  /** SHA-256 of the validated configuration and the master data it names (first 16 hex digits). */
  hash: string;
  loadedAt: number;
  reloads: number;
  lastReload?: ReloadReport;
  /** Files a change of which reloads (with `run --watch`). */
  watching: string[];
}

export interface GatewayControl {
  indicators?(): IndicatorEngine | undefined;
  sparkplug?(): SparkplugHost | undefined;
  trustOpcuaServer?(endpoint: string): Promise<{ thumbprint: string; subject?: string }>;
  reload?(trigger: ReloadReport['trigger'], options?: ReloadOptions): Promise<ReloadReport>;
  config?(): ConfigReport;
  /** In a cluster: this member's view (status) and what peers ask when they lose etcd (peer). */
  cluster?(): { status(): ClusterStatus; peer(): { instance: string; etcdReachable: boolean; lastContactAt: number } } | undefined;
}
