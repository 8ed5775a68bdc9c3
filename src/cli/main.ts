/**
 * `plantgate` command line. Each command lives in its own function; argument parsing is
 * node:util parseArgs, strict, so a mistyped option is an error rather than silently ignored.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { ConfigError, formatProblem, PlantgateError } from '../core/errors.js';
import { startGateway } from '../gateway.js';
import { untilSignal } from './signals.js';
import { UsageError } from './usage.js';
import { startDeviceFleet } from '../../simulators/mqtt-devices.js';
import { startRobotFleet } from '../../simulators/mqtt-robots.js';
import { loadRegistry, loadTargets } from '../indicators/registry.js';

const HELP = `plantgate: industrial telemetry gateway (OPC UA, MQTT JSON -> durable buffer -> InfluxDB)

Usage:
  plantgate run --config FILE [--log-format auto|json|pretty]
                                     run the gateway (logs: JSON lines, pretty on a terminal)
  plantgate check --config FILE      validate a configuration; lists every problem
  plantgate demo                     gateway + embedded broker + simulated machines + its own influxd
  plantgate sim devices [options]    simulated MQTT CNC machines publishing JSON telemetry
      --url mqtt://127.0.0.1:1883  --devices 10  --first 0  --interval 1000 (ms)  --qos 1  --site shenyang
      --username NAME --password-env VAR   (also for robots)
  plantgate sim robots [options]     simulated industrial robots (mode, stops, joint temperatures)
      --url mqtt://127.0.0.1:1883  --robots 5  --first 0  --interval 1000 (ms)  --site dalian
  plantgate sim cnc [options]        OPC UA servers of CNC machines (OPC 40502 CNC companion specification)
      --port 4840  --servers 1  --machines 2 (per server)  --security none|secure|both  --pki data/sim-pki
      --interval 1000  --time-scale 1  --user name:password  --restart-every 60s  --freeze-every 30s
      --bad-node cnc-01/CncSpindleList/S1/ActSpeed
  plantgate sim plc [options]        OPC UA servers of PLCs (conveyor, press, tank; every scalar type, arrays)
      --port 4850  --servers 1  --machines 2  --security both  --pki data/sim-pki  --interval 1000
  plantgate sim scale [options]      OPC UA servers with many plain Double tags (the scale benchmark)
      --port 4860  --servers 1  --machines 2 (per server)  --tags 100 (per machine)  --interval 1000
  plantgate sim sparkplug [options]  Sparkplug B edge nodes with robots and machines (every data type)
      --url mqtt://127.0.0.1:1883  --group plant  --nodes 2  --robots 2  --machines 1 (per node)
      --interval 1000  --primary-host ID  --gap-every N  --reorder-every N  --unknown-alias-every N
      --username NAME --password-env VAR
  plantgate browse opc.tcp://HOST:PORT [--node ID] [--depth 6] [--security-mode SignAndEncrypt
      --security-policy Basic256Sha256] [--user NAME --password-env VAR] [--pki DIR | --config FILE]
                                     print the address space with nsu= node ids, data types, access
  plantgate pki list [--pki DIR | --config FILE]              trusted and rejected server certificates
  plantgate pki trust THUMBPRINT|FILE [--pki DIR | --config FILE]   trust a server certificate
  plantgate hash-password            read a password on standard input, print the hash to paste as
                                     passwordHash (mqtt.broker.users, http.auth.users)
  plantgate bench [--smoke] [--only mqtt,node-red,pipeline,latency,outage,opcua] [--out FILE] [--doc FILE]
                                     the benchmark suite (npm run bench): results JSON and
                                     docs/benchmarks.md; see that file for what is measured
  plantgate loadgen [options]        MQTT load: --url mqtt://127.0.0.1:1883 --devices 100
      --messages 1000 (each) --qos 1 --rate 0 (msg/s, 0 = max) --run ID --window 10 --probe-rate 0
  plantgate --help | --version

Environment: PLANTGATE_HTTP (status listen address), PLANTGATE_DATA (data folder),
INFLUX_URL (demo: use this InfluxDB instead of starting influxd). See README.md.
`;

/** The lines of HELP about one command (`run`, `sim devices`, ...): its usage line and what is indented under it. */
export function commandHelp(words: string[]): string | undefined {
  const lines = HELP.split('\n');
  for (let n = words.length; n > 0; n--) {
    const head = `  plantgate ${words.slice(0, n).join(' ')}`;
    const out: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] !== head && !lines[i]!.startsWith(`${head} `)) continue;
      out.push(lines[i]!);
      while (i + 1 < lines.length && /^ {4,}/.test(lines[i + 1]!)) out.push(lines[++i]!);
    }
    if (out.length) return `Usage:\n${out.join('\n')}\n`;
  }
  return undefined;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  // every command answers --help itself, before it parses (and would refuse) anything else
  if (cmd && (rest.includes('--help') || rest.includes('-h'))) {
    const help = commandHelp([cmd, ...rest.filter((a) => !a.startsWith('-')).slice(0, 1)]);
    if (help) {
      process.stdout.write(help);
      return 0;
    }
  }
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case '-v':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return 0;
    case 'check':
      return check(rest);
    case 'run':
      return run(rest);
    case 'demo':
      return (await import('./demo.js')).runDemo(rest);
    case 'sim':
      return sim(rest);
    case 'browse':
      return (await import('./opcua.js')).browse(rest);
    case 'pki':
      return (await import('./opcua.js')).pki(rest);
    case 'hash-password':
      return hashPasswordCommand(rest);
    case 'bench':
      return (await import('./bench.js')).bench(rest);
    case 'loadgen':
      return (await import('./bench.js')).loadgen(rest);
    default:
      process.stderr.write(`plantgate: unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
      return 2;
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function configArg(args: string[]): string {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) throw new UsageError('--config FILE is required');
  return values.config;
}


/**
 * Reads the password from standard input: piped (one trailing newline dropped, as echo adds it)
 * or typed at a terminal without echo, twice. Only the hash is printed.
 */
async function hashPasswordCommand(args: string[]): Promise<number> {
  parseArgs({ args, options: {}, strict: true });
  const { hashPassword } = await import('../security/passwords.js');
  let password: string;
  if (process.stdin.isTTY) {
    password = await readHidden('Password: ');
    if ((await readHidden('Again: ')) !== password) throw new UsageError('the two passwords differ');
  } else {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (!password) throw new UsageError('empty password (pipe it in: echo -n "..." | plantgate hash-password)');
  if (password.length < 8) process.stderr.write('plantgate: warning: a password shorter than 8 characters is easy to guess\n');
  process.stdout.write(`${await hashPassword(password)}\n`);
  return 0;
}

function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    process.stderr.write(prompt);
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.resume();
    let s = '';
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UsageError('cancelled'));
        if (ch === '\u007f') s = s.slice(0, -1);
        else s += ch;
      }
    };
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(s);
    };
    stdin.on('data', onData);
  });
}

function check(args: string[]): number {
  const file = configArg(args);
  try {
    const config = loadConfigFile(file);
    if (config.indicators) {
      // master data is part of what a start needs: check it too
      loadRegistry(resolve(config.indicators.registry));
      loadTargets(resolve(config.indicators.targets));
    }
    process.stdout.write(`${file}: OK\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n${err.problems.length} problem(s) found\n`);
      return 1;
    }
    throw err;
  }
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, 'log-format': { type: 'string' } }, strict: true });
  if (!values.config) throw new UsageError('--config FILE is required');
  const file = values.config;
  const format = values['log-format'];
  if (format !== undefined && !['auto', 'json', 'pretty'].includes(format)) throw new UsageError(`--log-format must be auto, json or pretty, got ${JSON.stringify(format)}`);
  let config;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.problems.map(formatProblem).join('\n')}\n`);
      return 1;
    }
    throw err;
  }
  if (format) config.log.format = format as 'auto' | 'json' | 'pretty';
  const gw = await startGateway(config);
  await untilSignal();
  gw.log.info('stopping: intake first, then flushing the buffer');
  await gw.stop();
  return 0;
}

async function sim(args: string[]): Promise<number> {
  const [kind, ...rest] = args;
  if (kind === 'cnc' || kind === 'plc' || kind === 'scale') return (await import('./opcua.js')).simOpcua(kind, rest, untilSignal);
  if (kind === 'sparkplug') return simSparkplug(rest);
  if (kind !== 'devices' && kind !== 'robots') throw new UsageError(`unknown simulator ${JSON.stringify(kind ?? '')}; available: devices, robots, cnc, plc, scale, sparkplug`);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
      devices: { type: 'string', default: '10' },
      robots: { type: 'string', default: '5' },
      first: { type: 'string', default: '0' },
      interval: { type: 'string', default: '1000' },
      qos: { type: 'string', default: '1' },
      site: { type: 'string' },
      username: { type: 'string' },
      'password-env': { type: 'string' },
    },
  });
  const password = passwordFromEnv(values['password-env']);
  const common = { url: values.url!, intervalMs: positive(values.interval!, '--interval'), first: Number(values.first), qos: Number(values.qos) as 0 | 1, username: values.username, password };
  const fleet =
    kind === 'devices'
      ? await startDeviceFleet({ ...common, devices: positive(values.devices!, '--devices'), site: values.site ?? 'shenyang' })
      : await startRobotFleet({ ...common, robots: positive(values.robots!, '--robots'), site: values.site ?? 'dalian' });
  process.stdout.write(`simulating ${kind === 'devices' ? values.devices : values.robots} ${kind} on ${values.url}; Ctrl-C to stop\n`);
  await untilSignal();
  await fleet.stop();
  process.stdout.write(`sent ${fleet.sent()} messages\n`);
  return 0;
}

async function simSparkplug(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
      group: { type: 'string', default: 'plant' },
      nodes: { type: 'string', default: '2' },
      robots: { type: 'string', default: '2' },
      machines: { type: 'string', default: '1' },
      interval: { type: 'string', default: '1000' },
      'primary-host': { type: 'string' },
      'gap-every': { type: 'string', default: '0' },
      'reorder-every': { type: 'string', default: '0' },
      'unknown-alias-every': { type: 'string', default: '0' },
      username: { type: 'string' },
      'password-env': { type: 'string' },
    },
  });
  const { startSparkplugFleet } = await import('../../simulators/sparkplug-edge.js');
  const fleet = await startSparkplugFleet({
    url: values.url!,
    group: values.group!,
    nodes: positive(values.nodes!, '--nodes'),
    robots: wholeNumber(values.robots!, '--robots'),
    machines: wholeNumber(values.machines!, '--machines'),
    intervalMs: positive(values.interval!, '--interval'),
    gapEvery: wholeNumber(values['gap-every']!, '--gap-every'),
    reorderEvery: wholeNumber(values['reorder-every']!, '--reorder-every'),
    unknownAliasEvery: wholeNumber(values['unknown-alias-every']!, '--unknown-alias-every'),
    username: values.username,
    password: passwordFromEnv(values['password-env']),
    ...(values['primary-host'] ? { primaryHost: values['primary-host'] } : {}),
  });
  process.stdout.write(`simulating ${values.nodes} Sparkplug edge nodes in group ${values.group} on ${values.url}; Ctrl-C to stop\n`);
  await untilSignal();
  await fleet.stop();
  const births = fleet.nodes.reduce((a, n) => a + n.stats.births, 0);
  const rebirths = fleet.nodes.reduce((a, n) => a + n.stats.rebirthRequests, 0);
  process.stdout.write(`sent ${fleet.nodes.reduce((a, n) => a + n.stats.messages, 0)} messages, ${births} births (${rebirths} on request)\n`);
  return 0;
}

/** The password from the environment, never from the command line (ps shows arguments). */
function passwordFromEnv(envName: string | undefined): string | undefined {
  if (envName !== undefined && process.env[envName] === undefined) throw new UsageError(`--password-env ${envName}: that environment variable is not set`);
  return envName !== undefined ? process.env[envName] : undefined;
}

function wholeNumber(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number (0 or more), got ${JSON.stringify(v)}`);
  return n;
}

function positive(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number, got ${JSON.stringify(v)}`);
  return n;
}


/**
 * Runs a command. A failure ends the process with a non-zero exit and one line (a stack trace
 * only for errors plantgate does not know, which are bugs), even when timers, sockets or child
 * processes of what had started would keep it alive: systemd and Docker must see it die.
 */
export async function cli(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const text = usage || err instanceof PlantgateError ? (err as Error).message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    const code = usage ? 2 : 1;
    process.exitCode = code;
    await new Promise<void>((resolve) => process.stderr.write(`plantgate: ${text}\n`, () => resolve()));
    process.exit(code);
  }
}
