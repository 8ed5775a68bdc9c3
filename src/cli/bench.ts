/**
 * `plantgate bench` (the benchmark suite, `npm run bench`) and `plantgate loadgen` (its MQTT load
 * generator, also useful against any broker).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type PayloadShape, runLoad, SHAPES } from '../../tools/bench/loadgen.js';
import { writeMarkdown } from '../../tools/bench/report.js';
import { runBench, type Scenario, SCENARIOS } from '../../tools/bench/run.js';
import { UsageError } from './usage.js';

const ROOT = join(import.meta.dirname, '..', '..');

export async function bench(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      doc: { type: 'string' },
    },
  });
  const only = values.only?.split(',').map((s) => s.trim()) as Scenario[] | undefined;
  for (const s of only ?? []) if (!SCENARIOS.includes(s)) throw new UsageError(`--only: unknown scenario ${JSON.stringify(s)}; available: ${SCENARIOS.join(', ')}`);
  // a smoke run writes next to its results, never over the committed figures
  const out = resolve(values.out ?? (values.smoke ? 'bench-smoke.json' : join(ROOT, 'bench', 'results.json')));
  const doc = values.doc ? resolve(values.doc) : values.smoke ? undefined : join(ROOT, 'docs', 'benchmarks.md');
  const command = ['plantgate bench', ...args].join(' ');
  const results = await runBench({ smoke: values.smoke!, only, command, log: (m) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`) });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`results: ${out}\n`);
  if (doc) {
    writeMarkdown(doc, results);
    process.stdout.write(`tables: ${doc}\n`);
  }
  return 0;
}

export async function loadgen(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
      devices: { type: 'string', default: '100' },
      messages: { type: 'string', default: '1000' },
      qos: { type: 'string', default: '1' },
      rate: { type: 'string', default: '0' },
      run: { type: 'string', default: `run-${Date.now().toString(36)}` },
      prefix: { type: 'string', default: 'bench' },
      window: { type: 'string', default: '10' },
      'probe-rate': { type: 'string', default: '0' },
      shape: { type: 'string', default: 'basic' },
      username: { type: 'string' },
      'password-env': { type: 'string' },
    },
  });
  const u = new URL(values.url!);
  if (u.protocol !== 'mqtt:') throw new UsageError('--url must be mqtt://host:port (the load generator speaks plain MQTT)');
  const count = (v: string, name: string, min = 1) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min) throw new UsageError(`${name} must be a number of at least ${min}, got ${JSON.stringify(v)}`);
    return x;
  };
  const qos = Number(values.qos);
  if (qos !== 0 && qos !== 1) throw new UsageError('--qos must be 0 or 1');
  const shape = values.shape as PayloadShape;
  if (!Object.hasOwn(SHAPES, shape)) throw new UsageError(`--shape must be one of ${Object.keys(SHAPES).join(', ')}, got ${JSON.stringify(values.shape)}`);
  const envName = values['password-env'];
  if (envName !== undefined && process.env[envName] === undefined) throw new UsageError(`--password-env ${envName}: that environment variable is not set`);
  const result = await runLoad({
    host: u.hostname,
    port: Number(u.port || 1883),
    devices: Math.floor(count(values.devices!, '--devices')),
    messages: Math.floor(count(values.messages!, '--messages')),
    qos,
    rate: count(values.rate!, '--rate', 0),
    run: values.run!,
    prefix: values.prefix,
    window: Math.floor(count(values.window!, '--window')),
    probeRate: count(values['probe-rate']!, '--probe-rate', 0),
    shape,
    username: values.username,
    password: envName !== undefined ? process.env[envName] : undefined,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.failures.length ? 1 : 0;
}
