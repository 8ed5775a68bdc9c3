/**
 * OPC UA commands: `browse` (write node lists without another tool), `pki` (trust server
 * certificates without editing folders by hand) and the CNC / PLC simulators.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AttributeIds, MessageSecurityMode, OPCUAClient, readNamespaceArray, SecurityPolicy, UserTokenType } from 'node-opcua';
import { PlantgateError } from '../core/errors.js';
import { CncMachine, cncFleet } from '../../simulators/opcua-cnc.js';
import { PlcMachine, plcFleet } from '../../simulators/opcua-plc.js';
import { scaleFleet } from '../../simulators/opcua-scale.js';
import type { SimServer, SimSecurity } from '../../simulators/opcua-server.js';
import { loadConfigFile } from '../config/load.js';
import { duration } from '../core/config-types.js';
import { browseTree, nsuString, resolveTarget } from '../sources/opcua/browse.js';
import { securityModes, securityPolicies } from '../sources/opcua/config.js';
import { strongest } from '../sources/opcua/security.js';
import { listCertificates, openCertificateManager, trustCertificate } from '../sources/opcua/pki.js';
import { routeOpcuaLogsToStderr } from '../sources/opcua/logging.js';
import { UsageError } from './usage.js';

routeOpcuaLogsToStderr();


/** The PKI folder: --pki, else the one a --config file implies, else ./data/pki. */
function pkiDir(values: { pki?: string; config?: string }): string {
  if (values.pki) return resolve(values.pki);
  if (values.config) return resolve(loadConfigFile(values.config).opcua.pkiDir!);
  return resolve('data/pki');
}

export async function browse(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      node: { type: 'string', default: 'ObjectsFolder' },
      depth: { type: 'string', default: '6' },
      // auto: the strongest endpoint the server offers, as the gateway's securityMode auto. The
      // default with --user (a password must not cross the network readable), else None
      'security-mode': { type: 'string' },
      'security-policy': { type: 'string' },
      user: { type: 'string' },
      'allow-password-over-insecure-channel': { type: 'boolean', default: false },
      'password-env': { type: 'string' },
      pki: { type: 'string' },
      config: { type: 'string' },
    },
  });
  const url = positionals[0];
  if (!url || !/^opc\.tcp:\/\//.test(url)) throw new UsageError('usage: plantgate browse opc.tcp://host:port [--node ID] [--depth N] [--security-mode auto|M --security-policy P] [--user NAME --password-env VAR]');
  let mode = values['security-mode'] ?? (values.user ? 'auto' : 'None');
  let policy = values['security-policy'];
  if (mode === 'auto') {
    if (policy) throw new UsageError('--security-mode auto chooses the policy too: give --security-mode with --security-policy, or neither');
  } else {
    policy ??= 'None';
    if (!(securityModes as readonly string[]).includes(mode)) throw new UsageError(`--security-mode must be auto or one of ${securityModes.join(', ')}`);
    if (!(securityPolicies as readonly string[]).includes(policy)) throw new UsageError(`--security-policy must be one of ${securityPolicies.join(', ')}`);
  }
  // the gateway's rule: a password is sent only over an encrypted channel, unless asked for by name
  const insecurePassword = (m: string) => !!values.user && m !== 'SignAndEncrypt' && !values['allow-password-over-insecure-channel'];
  const refusePassword = (m: string, why = `a password over a ${m} channel is readable on the network`) => {
    process.stderr.write(`plantgate browse: ${url}: refused: ${why}; use --security-mode SignAndEncrypt (or auto, the strongest endpoint), or --allow-password-over-insecure-channel to send it anyway\n`);
    return 1;
  };
  if (mode !== 'auto' && insecurePassword(mode)) return refusePassword(mode);
  const depth = Number(values.depth);
  if (!Number.isInteger(depth) || depth < 1) throw new UsageError('--depth must be a positive whole number');
  const manager = openCertificateManager(pkiDir(values));
  await manager.initialize();
  if (mode === 'auto') {
    // GetEndpoints needs no security and no identity: nothing secret is sent here
    const probe = OPCUAClient.create({ applicationName: 'plantgate', clientCertificateManager: manager, endpointMustExist: false, connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 } });
    try {
      await probe.connect(url);
      const chosen = strongest(await probe.getEndpoints());
      if ('refused' in chosen) throw new Error(chosen.refused);
      [mode, policy] = [chosen.mode, chosen.policy];
    } catch (err) {
      process.stderr.write(`plantgate browse: ${url}: ${(err as Error).message.split('\n')[0]}\n`);
      await manager.dispose();
      return 1;
    } finally {
      await probe.disconnect().catch(() => undefined);
    }
    if (insecurePassword(mode)) {
      await manager.dispose();
      return refusePassword(mode, `the server offers at best ${mode}/${policy}: a password would be readable on the network`);
    }
  }
  const client = OPCUAClient.create({
    applicationName: 'plantgate',
    clientCertificateManager: manager,
    securityMode: MessageSecurityMode[mode as keyof typeof MessageSecurityMode],
    securityPolicy: SecurityPolicy[policy! as keyof typeof SecurityPolicy],
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
  });
  try {
    await client.connect(url);
    const password = values['password-env'] ? process.env[values['password-env']] : undefined;
    const session = await client.createSession(values.user ? { type: UserTokenType.UserName, userName: values.user, password: password ?? '' } : { type: UserTokenType.Anonymous });
    const namespaces = await readNamespaceArray(session);
    const out: string[] = ['Namespaces:'];
    namespaces.forEach((n, i) => out.push(`  ${i}  ${n}`));
    const root = await resolveTarget(session, values.node!, namespaces);
    // a node the server does not have would browse as an empty tree: say so instead
    const [cls] = await session.read([{ nodeId: root, attributeId: AttributeIds.NodeClass }]);
    if (!cls?.statusCode.isGood()) throw new PlantgateError('PG_ERR_OPCUA_NODE', `node ${values.node}: ${cls?.statusCode.name ?? 'no answer'} (the server has no such node)`);
    out.push('', `${nsuString(root, namespaces)}`);
    for (const l of await browseTree(session, root, depth, namespaces)) {
      const name = l.ref.browseName.name ?? '?';
      const ns = namespaces[l.ref.browseName.namespaceIndex] ?? '';
      const extra = l.nodeClass === 'Variable' ? `  ${l.dataType}  ${l.access}  = ${l.value ?? ''}` : '';
      out.push(`${'  '.repeat(l.depth + 1)}${name}  [${l.nodeClass}]  ${l.nodeId}${extra}${l.depth === 0 && ns ? `  (${ns})` : ''}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    await session.close();
    return 0;
  } catch (err) {
    const msg = (err as Error).message;
    process.stderr.write(`plantgate browse: ${url}: ${msg.split('\n')[0]}\n`);
    if (/certificate/i.test(msg)) process.stderr.write('  the server certificate may be untrusted: see plantgate pki list\n');
    return 1;
  } finally {
    await client.disconnect().catch(() => undefined);
    await manager.dispose();
  }
}

export async function pki(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { pki: { type: 'string' }, config: { type: 'string' } } });
  const dir = pkiDir(values);
  if (sub === 'list') {
    const certs = listCertificates(dir);
    if (certs.length === 0) process.stdout.write(`no server certificates in ${dir} yet\n`);
    for (const c of certs) process.stdout.write(`${c.store.padEnd(8)}  ${c.thumbprint}  ${c.subject}  ${c.applicationUri ?? ''}  valid until ${c.notAfter}\n`);
    return 0;
  }
  if (sub === 'trust') {
    if (positionals.length === 0) throw new UsageError('usage: plantgate pki trust <thumbprint | certificate file> [--pki DIR | --config FILE]');
    for (const sel of positionals) {
      const c = await trustCertificate(dir, sel);
      process.stdout.write(`trusted ${c.thumbprint}  ${c.subject}\n`);
    }
    return 0;
  }
  throw new UsageError('usage: plantgate pki list | trust <thumbprint | file> [--pki DIR | --config FILE]');
}

export async function simOpcua(kind: 'cnc' | 'plc' | 'scale', args: string[], untilSignal: () => Promise<void>): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      port: { type: 'string', default: kind === 'cnc' ? '4840' : kind === 'plc' ? '4850' : '4860' },
      tags: { type: 'string', default: '100' },
      servers: { type: 'string', default: '1' },
      machines: { type: 'string', default: '2' },
      security: { type: 'string', default: 'both' },
      pki: { type: 'string', default: 'data/sim-pki' },
      interval: { type: 'string', default: '1000' },
      'time-scale': { type: 'string', default: '1' },
      user: { type: 'string', multiple: true },
      'restart-every': { type: 'string' },
      'freeze-every': { type: 'string' },
      'alarm-every': { type: 'string' },
      historize: { type: 'boolean', default: false },
      'bad-node': { type: 'string', multiple: true },
    },
  });
  const security = values.security as SimSecurity;
  if (!['none', 'secure', 'both'].includes(security)) throw new UsageError('--security must be none, secure or both');
  const num = (v: string, name: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  // counts and ports are whole numbers; only --time-scale and --interval may be fractional
  const whole = (v: string, name: string) => {
    const n = num(v, name);
    if (!Number.isInteger(n)) throw new UsageError(`${name} must be a positive whole number, got ${JSON.stringify(v)}`);
    return n;
  };
  const dur = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const r = duration.safeParse(v);
    if (!r.success || r.data <= 0) throw new UsageError(`${name} expects a duration such as 30s`);
    return r.data;
  };
  const users = (values.user ?? []).map((u) => {
    const i = u.indexOf(':');
    if (i < 1) throw new UsageError('--user expects name:password');
    return { username: u.slice(0, i), password: u.slice(i + 1) };
  });
  const common = { servers: whole(values.servers!, '--servers'), basePort: whole(values.port!, '--port'), pkiDir: resolve(values.pki!), security, intervalMs: num(values.interval!, '--interval') };
  const fleet: SimServer[] =
    kind === 'cnc'
      ? cncFleet({ ...common, machinesPerServer: whole(values.machines!, '--machines'), timeScale: num(values['time-scale']!, '--time-scale'), users })
      : kind === 'plc'
        ? plcFleet({ ...common, plcsPerServer: whole(values.machines!, '--machines'), historize: values.historize })
        : scaleFleet({ ...common, machines: whole(values.machines!, '--machines'), tags: whole(values.tags!, '--tags') });
  for (const s of fleet) await s.start();
  for (const s of fleet) process.stdout.write(`${kind} simulator ${s.url}: ${s.models.map((m) => m.name).join(', ')} (certificate ${s.certificateFile})\n`);
  // fault injection on a schedule, for demos and soak tests
  for (const spec of values['bad-node'] ?? []) {
    const [model, path] = [spec.slice(0, spec.indexOf('/')), spec.slice(spec.indexOf('/') + 1)];
    for (const s of fleet) if (s.models.some((m) => m.name === model)) s.setBad(model, path);
  }
  const timers: NodeJS.Timeout[] = [];
  const restartEvery = dur(values['restart-every'], '--restart-every');
  if (restartEvery) timers.push(setInterval(() => void fleet[Math.floor(Math.random() * fleet.length)]!.restart(2000), restartEvery));
  const freezeEvery = dur(values['freeze-every'], '--freeze-every');
  if (freezeEvery) {
    let frozen = false;
    timers.push(setInterval(() => fleet.forEach((s) => s.freeze((frozen = !frozen))), freezeEvery));
  }
  const alarmEvery = dur(values['alarm-every'], '--alarm-every');
  if (alarmEvery) {
    if (kind === 'scale') throw new UsageError('--alarm-every: the scale simulator has no alarms (cnc and plc have)');
    // a CNC machine goes into its alarm phase (CncAlarmType condition, cleared when the phase ends);
    // a PLC's tank overflows past its HighHigh limit for a third of the period (ExclusiveLevelAlarm)
    timers.push(
      setInterval(() => {
        const models = fleet.flatMap((s) => s.models);
        const m = models[Math.floor(Math.random() * models.length)];
        if (m instanceof CncMachine) m.raiseAlarm();
        if (m instanceof PlcMachine) {
          m.levelOverride = 95;
          setTimeout(() => (m.levelOverride = undefined), alarmEvery / 3).unref();
        }
      }, alarmEvery),
    );
  }
  await untilSignal();
  timers.forEach(clearInterval);
  for (const s of fleet) await s.stop();
  return 0;
}
