/** `plantgate sim devices | robots | sparkplug | cnc | plc | scale`: the simulators, until a signal. */
import { parseArgs } from 'node:util';
import { startDeviceFleet } from '../../simulators/mqtt-devices.js';
import { startRobotFleet } from '../../simulators/mqtt-robots.js';
import { untilSignal } from './signals.js';
import { UsageError } from './usage.js';

export async function sim(args: string[]): Promise<number> {
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
