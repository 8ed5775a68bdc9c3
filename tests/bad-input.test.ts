/**
 * Bad payloads each become a dead letter with topic and reason, and never disturb the gateway:
 * good messages published between them all arrive. Bad config files make `plantgate check` fail
 * with the key named.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { testGateway } from './helpers/gateway.js';
import { eventually, type InfluxdHandle, useInfluxd, rows, tempDir } from './helpers/servers.js';

const run = promisify(execFile);

describe('bad payloads', () => {
  let db: InfluxdHandle;
  useInfluxd((d) => (db = d));

  it('dead-letters each bad payload with its reason and keeps ingesting', async () => {
    const gw = await testGateway(`
influx: { url: ${db.url}, database: bad, flushInterval: 100ms }
http: { listen: 127.0.0.1:0 }
mqtt:
  broker: { listen: 127.0.0.1:0, allowAnonymous: true, maxPayloadBytes: 10000 }
  routes:
    - { topic: "factory/{site}/{machine}/telemetry", measurement: cnc }
buffer: { dir: "\${DATA}/buffer" }
`);
    try {
      const bad: [string, string | Buffer][] = [
        ['invalid_json', '{"speed": 12'],
        ['not_an_object', '42'],
        ['no_fields', '{"note": null}'],
        ['invalid_utf8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])],
        ['too_deep', `${'{"a":'.repeat(50)}1${'}'.repeat(50)}`],
        ['bad_timestamp', '{"ts": "soon", "v": 1}'],
        ['timestamp_in_future', `{"ts": ${Date.now() + 10 * 86_400_000}, "v": 1}`],
        ['payload_too_large', `{"v": "${'x'.repeat(20_000)}"}`],
        ['non_finite_float', '{"v": 1e999}'],
        ['empty_name', '{"": 1}'],
      ];
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.broker!.port}`, { clientId: 'bad-device' });
      let good = 0;
      for (const [, payload] of bad) {
        await client.publishAsync('factory/dalian/m1/telemetry', payload, { qos: 1 });
        await client.publishAsync('factory/dalian/m1/telemetry', JSON.stringify({ ts: 1_700_000_000_000 + good, v: good }), { qos: 1 });
        good++;
      }
      // a topic that matches no route is counted, not dead-lettered (brokers carry commands too)
      await client.publishAsync('elsewhere/x', 'hello', { qos: 1 });
      await client.endAsync();

      const dl = gw.pipeline.status().deadLetters;
      expect(dl.total).toBe(bad.length);
      for (const [reason] of bad) expect(dl.byReason[reason], reason).toBe(1);
      const latest = dl.latest.find((d) => d.reason === 'invalid_json')!;
      expect(latest).toMatchObject({ topic: 'factory/dalian/m1/telemetry', payload: '{"speed": 12', source: 'mqtt-broker' });
      expect(dl.latest.find((d) => d.reason === 'invalid_utf8')!.payloadEncoding).toBe('base64');
      // the dead-letter file holds the same entries, one JSON object per line
      const file = readFileSync(dl.file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string });
      expect(file.map((d) => d.reason).sort()).toEqual(bad.map(([r]) => r).sort());

      await eventually('all good messages stored', async () => rows(await db.query('SELECT count(v) FROM cnc', 'bad'))[0]?.count, (n) => n === good);
      const broker = gw.pipeline.status().components.find((c) => c.name === 'mqtt-broker')!;
      expect(broker.state).toBe('running');
      expect(broker.details!.unroutedMessages).toBe(1);
      expect(Object.values(broker.counters.dropped).reduce((a, b) => a + b, 0) + gw.pipeline.status().components.find((c) => c.name === 'guard')!.counters.dropped.timestamp_in_future!).toBeGreaterThan(0);
    } finally {
      await gw.cleanup();
    }
  });
});

describe('plantgate check', () => {
  const bin = join(import.meta.dirname, '..', 'bin', 'plantgate.js');
  const dir = tempDir('check');
  afterAll(() => dir.remove());

  async function check(yaml: string): Promise<{ code: number; out: string }> {
    const file = join(dir.path, `c${Math.random()}.yaml`);
    writeFileSync(file, yaml);
    try {
      const r = await run('node', [bin, 'check', '--config', file]);
      return { code: 0, out: r.stdout + r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  }

  const good = readFileSync(join(import.meta.dirname, '..', 'config', 'example.yaml'), 'utf8');

  it('exits 0 on the example configuration', async () => {
    const r = await check(good);
    expect(r.out).toMatch(/OK/);
    expect(r.code).toBe(0);
  });

  it.each([
    ['an unknown key', good.replace('database: factory', 'database: factory\n  colour: blue'), /influx\.colour: unknown key/],
    ['a wrong type', good.replace('batchSize: 5000', 'batchSize: lots'), /influx\.batchSize: expected number/],
    ['a missing url', good.replace(/^  url: .*$/m, ''), /influx\.url: /],
    ['a bad topic template', good.replace('factory/{site}/{line}/{machine}/telemetry', 'factory/{site}/#/x'), /mqtt\.routes\[0\]\.topic: bad topic template: "#" must be the last level/],
  ])('exits 1 naming the key for %s', async (_what, yaml, msg) => {
    const r = await check(yaml);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(msg);
    expect(r.out).toMatch(/c[\d.]+\.yaml:\d+:\d+: /); // the file is named, with the line and column
  });

  it('hash-password reads the password on standard input and prints only a hash that verifies', async () => {
    const { spawn } = await import('node:child_process');
    const { verifyPassword } = await import('../src/security/passwords.js');
    const hashOf = (input: string) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        const p = spawn('node', [bin, 'hash-password'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
        p.stdin.end(input);
      });
    const r = await hashOf('press-01 s3cret\n'); // echo's newline is not part of the password
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^scrypt\$15\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\n$/);
    expect(r.out + r.err).not.toContain('s3cret');
    expect(await verifyPassword('press-01 s3cret', r.out.trim())).toBe(true);
    expect(await verifyPassword('press-01 s3cret\n', r.out.trim())).toBe(false);
    // an empty password is a usage error
    expect((await hashOf('')).code).toBe(2);
  });

  it('prints help', async () => {
    const r = await run('node', [bin, '--help']);
    expect(r.stdout).toMatch(/plantgate run --config FILE/);
  });
});
