/**
 * The command line as a user meets it: every command answers --help on its own, `check` points at
 * the line and suggests the key meant, and a `buffer:` block without `dir` takes the documented default.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PLANTGATE_BIN } from '../tools/servers/gateway-process.js';
import { tempDir } from './helpers/servers.js';

const run = promisify(execFile);
const dir = tempDir('cli');
afterAll(() => dir.remove());
const plantgate = (...args: string[]) => run(process.execPath, [PLANTGATE_BIN, ...args], { timeout: 30_000 }).catch((e: { code: number; stdout: string; stderr: string }) => e);

describe('plantgate command line', () => {
  it.each([['run'], ['bench'], ['sim', 'devices'], ['sim', 'cnc'], ['check'], ['pki']])('plantgate %s %s --help prints its own usage', async (...words) => {
    const r = await plantgate(...words.filter(Boolean), '--help');
    expect((r as { code?: number }).code ?? 0).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage:\\n  plantgate ${words.filter(Boolean).join(' ')}`));
    expect(r.stderr).toBe('');
  });

  it('check names file, line and column, and the key meant', async () => {
    const file = join(dir.path, 'typo.yaml');
    writeFileSync(file, 'influx: { url: "http://127.0.0.1:8086", database: f }\nmqtt:\n  broker: { listen: 127.0.0.1:1883, allowAnonymous: true }\n  routes:\n    - topic: "a/{m}"\n      measurment: x\n');
    const r = await plantgate('check', '--config', file);
    expect((r as { code: number }).code).toBe(1);
    expect(r.stderr).toContain(`${file}:6:7: mqtt.routes[0].measurment: unknown key; did you mean measurement?`);
  });

  it('OPC UA commands do not open with node-opcua\'s PKCS#1 note', async () => {
    const r = await plantgate('pki', 'list', '--pki', join(dir.path, 'pki'));
    expect(r.stdout).toMatch(/no server certificates/);
    expect(r.stderr).not.toMatch(/CVE-2023-46809|NODE-OPCUA-W27/);
  });

  it('logs JSON lines for machines with the component once, and pretty lines for people', async () => {
    const { freePort } = await import('../tools/servers/process.js');
    const file = join(dir.path, 'run.yaml');
    writeFileSync(file, `http: { listen: 127.0.0.1:${await freePort()} }\ninflux: { url: "http://127.0.0.1:9", database: f }\nmqtt:\n  broker: { listen: 127.0.0.1:${await freePort()}, allowAnonymous: true }\n  routes: [{ topic: "a/{m}", measurement: x }]\nbuffer: { dir: "${dir.path}/buf" }\n`);
    const runFor = (format: string) =>
      new Promise<string>((resolve) => {
        const p = execFile(process.execPath, [PLANTGATE_BIN, 'run', '--config', file, '--log-format', format], () => undefined);
        let out = '';
        p.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (/plantgate running/.test(out)) p.kill('SIGINT');
        });
        p.on('exit', () => resolve(out));
      });
    const json = await runFor('json');
    const lines = json.trim().split('\n');
    expect(lines.every((l) => JSON.parse(l) && true)).toBe(true);
    for (const l of lines) expect(l.split('"component"').length - 1, l).toBeLessThanOrEqual(1);
    expect(lines.some((l) => (JSON.parse(l) as { component?: string }).component === 'mqtt-broker')).toBe(true);
    const pretty = await runFor('pretty');
    expect(pretty).toMatch(/^\[?\d\d:\d\d:\d\d\.\d{3}\]? INFO.*embedded MQTT broker listening/m);
    expect(pretty).not.toMatch(/^\{"level"/m);
  });

  it('a buffer block without dir takes the default', async () => {
    const file = join(dir.path, 'buffer.yaml');
    writeFileSync(file, 'influx: { url: "http://127.0.0.1:8086", database: f }\nmqtt:\n  broker: { listen: 127.0.0.1:1883, allowAnonymous: true }\n  routes: [{ topic: "a/{m}", measurement: x }]\nbuffer: { maxBytes: 1GiB }\n');
    const r = await plantgate('check', '--config', file);
    expect(r.stdout).toBe(`${file}: OK\n`);
  });
});
