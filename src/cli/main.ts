/**
 * `plantgate` command line: the dispatcher and the help. Each command lives in its own module
 * (run.ts, config.ts, indicators.ts, sim.ts, opcua.ts, demo.ts, bench.ts, password.ts); argument parsing is node:util
 * parseArgs, strict, so a mistyped option is an error rather than silently ignored.
 */
import { readFileSync } from 'node:fs';
import { PlantgateError } from '../core/errors.js';
import { UsageError } from './usage.js';

const HELP = `plantgate: industrial telemetry gateway (OPC UA, MQTT JSON -> durable buffer -> InfluxDB)

Usage:
  plantgate run --config FILE [--watch] [--log-format auto|json|pretty]
                                     run the gateway (logs: JSON lines, pretty on a terminal);
                                     SIGHUP or POST /api/reload applies a changed configuration,
                                     --watch also when the file, registry or targets change
  plantgate check --config FILE      validate a configuration; lists every problem
  plantgate indicators --config FILE [--json]
                                     the fleet's indicators from the presence records in InfluxDB
  plantgate config example [--update config/example.yaml]
                                     the commented example configuration, from the schema
  plantgate config reference [--update docs/configuration.md]
                                     the configuration reference table (--update: between its markers)
  plantgate demo                     gateway + embedded broker + simulated machines + its own influxd
  plantgate sim devices [options]    simulated MQTT CNC machines publishing JSON telemetry
      --url mqtt://127.0.0.1:1883  --devices 10  --first 0  --interval 1000 (ms)  --qos 1  --site shenyang
      --username NAME --password-env VAR   (also for robots)
  plantgate sim robots [options]     simulated industrial robots (mode, stops, joint temperatures)
      --url mqtt://127.0.0.1:1883  --robots 5  --first 0  --interval 1000 (ms)  --site dalian
  plantgate sim cnc [options]        OPC UA servers of CNC machines (OPC 40502 CNC companion specification)
      --port 4840  --servers 1  --machines 2 (per server)  --security none|secure|both  --pki data/sim-pki
      --interval 1000  --time-scale 1  --user name:password  --restart-every 60s  --freeze-every 30s  --alarm-every 20s
      --bad-node cnc-01/CncSpindleList/S1/ActSpeed
  plantgate sim plc [options]        OPC UA servers of PLCs (conveyor, press, tank; every scalar type, arrays)
      --port 4850  --servers 1  --machines 2  --security both  --pki data/sim-pki  --interval 1000  --alarm-every 60s
      --historize (keeps every tag's history for HistoryRead, across restarts)
  plantgate sim scale [options]      OPC UA servers with many plain Double tags (the scale benchmark)
      --port 4860  --servers 1  --machines 2 (per server)  --tags 100 (per machine)  --interval 1000
  plantgate sim sparkplug [options]  Sparkplug B edge nodes with robots and machines (every data type)
      --url mqtt://127.0.0.1:1883  --group plant  --nodes 2  --robots 2  --machines 1 (per node)
      --interval 1000  --primary-host ID  --gap-every N  --reorder-every N  --unknown-alias-every N
      --username NAME --password-env VAR
  plantgate browse opc.tcp://HOST:PORT [--node ID] [--depth 6] [--security-mode SignAndEncrypt
      --security-policy Basic256Sha256] [--user NAME --password-env VAR] [--pki DIR | --config FILE]
                                     print the address space with nsu= node ids, data types, access;
                                     with --user the strongest endpoint (auto), and a password only
                                     over SignAndEncrypt unless --allow-password-over-insecure-channel
  plantgate pki list [--pki DIR | --config FILE]              trusted and rejected server certificates
  plantgate pki trust THUMBPRINT|FILE [--pki DIR | --config FILE]   trust a server certificate
  plantgate hash-password            read a password on standard input, print the hash to paste as
                                     passwordHash (mqtt.broker.users, http.auth.users)
  plantgate bench [--smoke] [--only mqtt,node-red,floor,payloads,pipeline,latency,outage,opcua,fleet] [--out FILE] [--doc FILE]
                                     the benchmark suite (npm run bench): results JSON and
                                     docs/benchmarks.md; see that file for what is measured
  plantgate loadgen [options]        MQTT load: --url mqtt://127.0.0.1:1883 --devices 100
      --messages 1000 (each) --qos 1 --rate 0 (msg/s, 0 = max) --run ID --window 10 --probe-rate 0
      --shape basic|cnc|batch10 (4 floats; a 25-field CNC status; 10 points per message)
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
      return (await import('./run.js')).check(rest);
    case 'run':
      return (await import('./run.js')).run(rest);
    case 'config':
      return (await import('./config.js')).configCommand(rest);
    case 'indicators':
      return (await import('./indicators.js')).indicatorsCommand(rest);
    case 'demo':
      return (await import('./demo.js')).runDemo(rest);
    case 'sim':
      return (await import('./sim.js')).sim(rest);
    case 'browse':
      return (await import('./opcua.js')).browse(rest);
    case 'pki':
      return (await import('./opcua.js')).pki(rest);
    case 'hash-password':
      return (await import('./password.js')).hashPasswordCommand(rest);
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
