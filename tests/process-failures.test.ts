/**
 * A gateway that cannot start must die, not hang: run under systemd or Docker, the process is all
 * an operator's supervisor sees. Each case takes a port first, then runs the real `plantgate`
 * command and expects a non-zero exit within 10 s with one line naming the component, the
 * address and the cause, and no stack trace.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLANTGATE_BIN } from '../tools/servers/gateway-process.js';
import { freePort } from '../tools/servers/process.js';
import { tempDir } from './helpers/servers.js';

const dir = tempDir('procfail');
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  dir.remove();
});

async function takePort(): Promise<number> {
  const port = await freePort();
  const s = createServer();
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
  servers.push(s);
  return port;
}

function runPlantgate(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [PLANTGATE_BIN, ...args], { env: { ...process.env, PLANTGATE_LOG: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stderr, ms: Date.now() - t0 });
    });
  });
}

function config(name: string, mqttPort: number, httpPort: number): string {
  const file = join(dir.path, `${name}.yaml`);
  writeFileSync(
    file,
    `
http: { listen: 127.0.0.1:${httpPort} }
influx: { url: "http://127.0.0.1:9", database: x }
mqtt:
  broker: { listen: 127.0.0.1:${mqttPort}, allowAnonymous: true }
  routes: [{ topic: "f/{m}", measurement: m }]
log: { level: warn }
buffer: { dir: "${dir.path}/${name}-buffer" }
deadLetters: { file: "${dir.path}/${name}-dl.jsonl" }
`,
  );
  return file;
}

function expectOneLine(r: { code: number | null; stderr: string; ms: number }, ...parts: (string | RegExp)[]) {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull(); // it exited by itself, it was not killed
  expect(r.ms).toBeLessThan(10_000);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  for (const p of parts) expect(lines[0]).toMatch(p);
}

describe('a gateway that cannot start exits with one line', () => {
  it('the MQTT port is taken', async () => {
    const port = await takePort();
    const r = await runPlantgate(['run', '--config', config('mqtt', port, await freePort())]);
    expectOneLine(r, 'source mqtt-broker cannot start', `127.0.0.1:${port}`, /already in use.*\(EADDRINUSE\)/);
  });

  it('the HTTP port is taken', async () => {
    const port = await takePort();
    const r = await runPlantgate(['run', '--config', config('http', await freePort(), port)]);
    expectOneLine(r, 'status page (http) cannot start', `127.0.0.1:${port}`, /EADDRINUSE/);
  });

  it('the demo OPC UA port is taken', async () => {
    const port = await takePort();
    const r = await runPlantgate(['demo'], { PLANTGATE_OPCUA_PORT: String(port), INFLUX_URL: 'http://127.0.0.1:9', PLANTGATE_DATA: join(dir.path, 'demo') });
    expectOneLine(r, /OPC UA simulator opc\.tcp:\/\/[^ ]+:\d+ cannot start/, /PLANTGATE_OPCUA_PORT/);
  });
});
