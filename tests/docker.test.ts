/**
 * docker-compose.yml and the Dockerfile, checked as far as a machine without a Docker engine can:
 * the compose file parses; every plantgate service runs a command plantgate has, with options it
 * takes (each simulator is started for a few seconds on loopback ports and must not refuse its
 * arguments); the gateway's configuration passes `plantgate check` with the compose environment;
 * every simulator logs in with a user and password the credentials file accepts, and may publish
 * what it sends; the OPC UA endpoints point at the compose services on the ports they serve; the
 * image copies what the configuration needs, runs as a user, has a health check and the V8 flag.
 * Not run here: building the image and `docker compose up` itself.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../src/config/load.js';
import { verifyPassword } from '../src/security/passwords.js';
import { GATEWAY_NODE_FLAGS, PLANTGATE_BIN } from '../tools/servers/gateway-process.js';
import { freePort } from '../tools/servers/process.js';
import { mayPublish } from '../src/sources/mqtt/acl.js';
import { mosquitto, tempDir } from './helpers/servers.js';

const ROOT = join(import.meta.dirname, '..');
interface Service { build?: string; command?: string[]; environment?: Record<string, string>; image?: string; healthcheck?: unknown }
const compose = parseDocument(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }).toJS() as { services: Record<string, Service> };
const built = Object.entries(compose.services).filter(([, s]) => s.build);
const gateway = compose.services.gateway!;
const env = { ...process.env, ...gateway.environment };
const option = (cmd: string[], name: string) => cmd[cmd.indexOf(name) + 1];

/** Runs a plantgate command for `ms`, then stops it; `early` when it ended by itself before that. */
function runFor(args: string[], ms: number, extraEnv: Record<string, string> = {}): Promise<{ early: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [PLANTGATE_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let stopped = false;
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      stopped = true;
      p.kill('SIGINT');
    }, ms);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ early: !stopped, code, stderr });
    });
  });
}

describe('docker-compose.yml and the Dockerfile', () => {
  it('runs the demo\'s inputs: MQTT machines and robots, Sparkplug, OPC UA CNC and PLC, with the indicators', () => {
    const commands = built.map(([, s]) => s.command!.slice(0, 2).join(' '));
    for (const c of ['run --config', 'sim devices', 'sim robots', 'sim sparkplug', 'sim cnc', 'sim plc']) expect(commands).toContain(c);
    expect(compose.services.influxdb!.image).toMatch(/^influxdb:2/);
    for (const [name, s] of built) if (name !== 'gateway') expect(s.healthcheck, `${name} disables the gateway's health check`).toEqual({ disable: true });
  });

  it('the gateway configuration passes check with the compose environment, and its OPC UA endpoints are the compose services', () => {
    const file = join(ROOT, option(gateway.command!, '--config')!);
    const config = loadConfigFile(file, env);
    expect(config.influx.api).toBe('v2');
    expect(config.indicators).toBeDefined();
    expect(config.sparkplug).toBeDefined();
    expect(existsSync(join(ROOT, config.indicators!.registry))).toBe(true);
    for (const e of config.opcua.endpoints) {
      const [, host, port] = /^opc\.tcp:\/\/([^:]+):(\d+)/.exec(e.url)!;
      const sim = compose.services[host!];
      expect(sim, `${e.name}: ${host} is a compose service`).toBeDefined();
      expect(option(sim!.command!, '--port')).toBe(port);
    }
  });

  it('every simulator logs in with a user of the credentials file, and may publish what it sends', async () => {
    const users = (parse(readFileSync(join(ROOT, env.PLANTGATE_CREDENTIALS!), 'utf8')) as { users: { username: string; passwordHash: string; publish: string[] }[] }).users;
    const sends: Record<string, string> = { devices: 'factory/sy-machine-tool/line-1/cnc-001/telemetry', robots: 'factory/dl-auto/cell-1/robot-001/robot', sparkplug: 'spBv1.0/as-metallurgical-equipment/DDATA/edge-01/robot-001' };
    for (const [name, s] of built.filter(([, x]) => x.command![0] === 'sim' && ['devices', 'robots', 'sparkplug'].includes(x.command![1]!))) {
      const user = users.find((u) => u.username === option(s.command!, '--username'));
      expect(user, `${name}: user`).toBeDefined();
      const password = s.environment![option(s.command!, '--password-env')!]!;
      expect(await verifyPassword(password, user!.passwordHash), `${name}: password`).toBe(true);
      expect(mayPublish(user!.publish, { clientId: 'x', username: user!.username }, sends[s.command![1]!]!), `${name}: ACL`).toBe(true);
    }
  });

  it('every simulator takes its options (run for a few seconds on loopback ports, a real mosquitto as the broker)', async () => {
    const data = tempDir('compose-sims');
    const broker = await mosquitto();
    try {
      for (const [name, s] of built.filter(([, x]) => x.command![0] === 'sim')) {
        const args = [...s.command!];
        if (args.includes('--url')) args[args.indexOf('--url') + 1] = broker.url;
        if (args.includes('--port')) args[args.indexOf('--port') + 1] = String(await freePort());
        if (args.includes('--pki')) args[args.indexOf('--pki') + 1] = join(data.path, name);
        const r = await runFor(args, 4000, s.environment ?? {});
        expect(r.early, `${name} ended by itself (${r.code}): ${r.stderr}`).toBe(false);
        expect(r.stderr, name).not.toMatch(/^plantgate: /m);
      }
    } finally {
      await broker.stop();
      broker.remove();
      data.remove();
    }
  }, 60_000);

  it('the image copies what the configuration needs, runs as a user, checks its health, and has the V8 flag', () => {
    const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    for (const m of df.matchAll(/^COPY (\S+)/gm)) expect(existsSync(join(ROOT, m[1]!)), m[1]).toBe(true);
    for (const needed of ['seeds', 'config', 'src', 'simulators', 'bin']) expect(df).toMatch(new RegExp(`^COPY ${needed} `, 'm'));
    expect(df).toMatch(/^USER node$/m);
    expect(df).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    const entry = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(df)![1]!) as string[];
    expect(entry.slice(1, 1 + GATEWAY_NODE_FLAGS.length)).toEqual(GATEWAY_NODE_FLAGS);
  });
});
