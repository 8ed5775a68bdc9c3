/**
 * Starting real servers (influxd for the demo and the tests; mosquitto and victoria-metrics for the
 * tests) on free loopback ports, and stopping them. Only loopback addresses are ever used.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The first of `n` consecutive ports that are all free now, for programs that take a base port
 * and count up from it (the demo's fleet dashboards, simulator fleets). A single free port is no
 * proof that the ones after it are: another server, or a client's ephemeral port, may hold them.
 */
export async function freePortRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + n > 65535) continue;
    const held: ReturnType<typeof createServer>[] = [];
    let ok = true;
    for (let i = 1; i < n && ok; i++) {
      const s = createServer();
      ok = await new Promise<boolean>((resolve) => {
        s.once('error', () => resolve(false));
        s.listen(base + i, '127.0.0.1', () => resolve(true));
      });
      if (ok) held.push(s);
    }
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free loopback ports found in 50 attempts`);
}

/** Absolute path of a binary on PATH (or in sbin, where Debian puts mosquitto), or undefined. */
export function findBinary(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name} || ls /usr/sbin/${name} /usr/local/sbin/${name} 2>/dev/null | head -1`], { encoding: 'utf8' });
  const out = r.stdout.trim().split('\n')[0];
  return out ? out : undefined;
}

export interface Managed {
  proc: ChildProcess;
  /** Last lines the process printed, for error messages. */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function launch(bin: string, args: string[], env: NodeJS.ProcessEnv = process.env): Managed {
  const proc = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (b: Buffer) => {
    tail = (tail + b.toString()).slice(-4000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.on('error', (err) => keep(Buffer.from(String(err))));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    output: () => tail,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Polls `check` until it resolves true, or throws after timeoutMs with `what` and the process output. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, m?: Managed): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (m && (m.proc.exitCode !== null || m.proc.signalCode !== null)) break;
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up within ${timeoutMs} ms${m ? `; its output:\n${m.output()}` : ''}`);
}
