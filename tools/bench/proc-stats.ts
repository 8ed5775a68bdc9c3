/**
 * CPU time and memory of another process, read from /proc (Linux): what the benchmarks report for
 * the gateway, Node-RED and the simulators, each measured from outside the process itself.
 */
import { readFileSync } from 'node:fs';

/** Kernel clock ticks per second for utime/stime; 100 on every Linux this runs on. */
const CLK_TCK = 100;

/** User + system CPU seconds the process has used so far (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name, which may itself contain spaces and parentheses
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Resident set size in bytes (0 once the process is gone). */
export function rssBytes(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a process's RSS while running; `cpu()` is CPU seconds since `start()`. */
export class ProcSampler {
  private timer?: NodeJS.Timeout;
  private cpu0 = 0;
  private t0 = 0;
  peakRss = 0;
  private samples = 0;
  private rssSum = 0;

  constructor(readonly pid: number, private readonly everyMs = 250) {}

  start(): this {
    this.cpu0 = cpuSeconds(this.pid);
    this.t0 = performance.now();
    this.peakRss = 0;
    this.samples = this.rssSum = 0;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  private sample(): void {
    const r = rssBytes(this.pid);
    if (r === 0) return;
    this.samples++;
    this.rssSum += r;
    if (r > this.peakRss) this.peakRss = r;
  }

  /** CPU seconds, wall seconds, CPU share (1 = one core busy), peak and mean RSS since start(). */
  stop(): { cpuSeconds: number; wallSeconds: number; cores: number; peakRssBytes: number; meanRssBytes: number } {
    clearInterval(this.timer);
    this.sample();
    const cpu = cpuSeconds(this.pid) - this.cpu0;
    const wall = (performance.now() - this.t0) / 1000;
    return { cpuSeconds: cpu, wallSeconds: wall, cores: wall > 0 ? cpu / wall : 0, peakRssBytes: this.peakRss, meanRssBytes: this.samples ? this.rssSum / this.samples : 0 };
  }
}
