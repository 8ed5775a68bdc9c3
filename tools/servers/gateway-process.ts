/**
 * The gateway as its own process (`plantgate run`), for tests that kill it and for the benchmarks,
 * which measure its CPU and memory from outside.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rssBytes } from '../bench/proc-stats.js';
import { freePort, launch, waitFor, type Managed } from './process.js';

/** The `plantgate` command, run with this Node.js: the gateway, and the bench's own helper processes. */
export const PLANTGATE_BIN = join(import.meta.dirname, '..', '..', 'bin', 'plantgate.js');
/** Preloaded into a bench gateway by PLANTGATE_PROMOTED (docs/benchmarks.md). */
export const PROMOTED_PROFILER = join(import.meta.dirname, '..', 'bench', 'promoted-profile.cjs');

/** What bin/plantgate.js's shebang gives the gateway (a larger young generation: see there). */
export const GATEWAY_NODE_FLAGS = ['--max-semi-space-size=32'];

export interface GatewayProcess {
  httpUrl: string;
  /** The configuration file it runs on (rewrite it and reload). */
  file: string;
  /** Sends a signal and returns (SIGHUP: reload). */
  signal(signal: NodeJS.Signals): void;
  pid(): number | undefined;
  /** Current resident set size in bytes, from /proc. */
  rss(): number;
  start(readyTimeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  output(): string;
}

export async function gatewayProcess(dir: string, yaml: (httpPort: number) => string, opts: { args?: string[] } = {}): Promise<GatewayProcess> {
  const httpPort = await freePort();
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, yaml(httpPort));
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  let m: Managed | undefined;
  return {
    httpUrl,
    file,
    signal: (signal) => void m?.proc.kill(signal),
    pid: () => m?.proc.pid,
    rss() {
      const pid = m?.proc.pid;
      return pid ? rssBytes(pid) : 0;
    },
    async start(readyTimeoutMs = 30_000) {
      // PLANTGATE_PROFILE=DIR: the gateway writes a V8 CPU profile there when it stops (docs/benchmarks.md)
      const profile = process.env.PLANTGATE_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PLANTGATE_PROFILE}`] : [];
      // PLANTGATE_HEAP=DIR: `kill -USR2 <gateway pid>` writes a heap snapshot there (docs/benchmarks.md)
      if (process.env.PLANTGATE_HEAP) profile.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${process.env.PLANTGATE_HEAP}`);
      // PLANTGATE_PROMOTED=DIR: what survives the young generation, sampled (tools/bench/promoted-profile.cjs)
      if (process.env.PLANTGATE_PROMOTED) profile.push('--require', PROMOTED_PROFILER);
      m = launch(process.execPath, [...profile, ...GATEWAY_NODE_FLAGS, PLANTGATE_BIN, 'run', '--config', file, ...(opts.args ?? [])], { ...process.env, PLANTGATE_LOG: 'warn' });
      await waitFor('gateway ready', async () => (await fetch(`${httpUrl}/readyz`)).ok, readyTimeoutMs, m);
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      await m?.stop(signal);
    },
    output: () => m?.output() ?? '',
  };
}
