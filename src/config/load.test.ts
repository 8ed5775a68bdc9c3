import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatProblem } from '../core/errors.js';
import { parseConfig } from './load.js';
import { configProblems } from '../../tests/helpers/config.js';

const GOOD = `
http: { listen: 127.0.0.1:8080 }
influx: { url: http://127.0.0.1:8086, api: v1, database: factory }
mqtt:
  broker: { listen: 127.0.0.1:1883, allowAnonymous: true }
  routes:
    - topic: factory/{site}/{line}/{machine}/telemetry
      measurement: cnc
      format: json
buffer: { dir: ./data/buffer }
`;

const problems = configProblems;

describe('configuration', () => {
  it('accepts the documented example and fills defaults', () => {
    const c = parseConfig(GOOD, 'plant.yaml', {});
    expect(c.http.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.influx).toMatchObject({ api: 'v1', database: 'factory', batchSize: 5000, flushInterval: 1000 });
    expect(c.mqtt.broker?.listen.port).toBe(1883);
    expect(c.buffer).toMatchObject({ whenFull: 'block', maxBytes: 1024 ** 3, fsync: true });
    expect(c.deadLetters.file).toMatch(/data\/deadletters\.jsonl$/);
  });

  it('gives the instance to client ids, and refuses a Sparkplug host on a shared client, saying why', () => {
    const shared = `
instance: gw-7
influx: { url: http://127.0.0.1:8086, database: f }
mqtt:
  clients: [{ url: "mqtt://127.0.0.1:1883", shareGroup: plantgate }, { url: "mqtt://127.0.0.1:1884" }]
  routes: [{ topic: "a/{b}", measurement: a }]
`;
    const c = parseConfig(shared, 'plant.yaml', {});
    expect(c.instance).toBe('gw-7');
    expect(c.mqtt.clients.map((x) => [x.clientId, x.shareGroup])).toEqual([['gw-7', 'plantgate'], ['gw-7-2', undefined]]);
    expect(parseConfig(shared.replace('instance: gw-7\n', ''), 'plant.yaml', {}).instance).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
    expect(problems(`${shared}sparkplug: {}\n`)).toEqual([expect.stringMatching(/^mqtt\.clients\[0\]\.shareGroup: the Sparkplug host cannot share its subscriptions: one edge node's messages would be split over several hosts/)]);
    expect(problems(shared.replace('shareGroup: plantgate }', 'subscriptions: [{ topic: "$$share/g/a/#" }] }'))).toEqual([expect.stringMatching(/^mqtt\.clients\[0\]\.subscriptions\[0\]\.topic: give the plain filter and shareGroup/)]);
  });

  it('rejects an unknown key, naming it with its path', () => {
    expect(problems(GOOD.replace('format: json', 'format: json\n      colour: red'))).toEqual([
      'mqtt.routes[0].colour: unknown key; expected one of topic, measurement, format, tags, staticTags, fields, ignore, timeKey, maxDepth, maxFields, maxPoints, maxExpansion, maxLineBytes',
    ]);
    expect(problems(`${GOOD}\nextra: 1\n`)[0]).toMatch(/^extra: unknown key; expected one of .*\bmqtt\b/);
  });

  it('points at the line and column, and suggests the key meant', () => {
    const text = GOOD.replace('format: json', 'format: json\n      measurment: x');
    let err: ConfigError | undefined;
    try {
      parseConfig(text, 'plant.yaml', {});
    } catch (e) {
      err = e as ConfigError;
    }
    const line = text.split('\n').findIndex((l) => l.includes('measurment')) + 1;
    expect(err!.problems.map(formatProblem)).toEqual([`plant.yaml:${line}:7: mqtt.routes[0].measurment: unknown key; did you mean measurement?`]);
    // through the union of influx v1 / v2 too
    expect(problems(GOOD.replace('database: factory', 'database: factory, databse: f'))).toEqual(['influx.databse: unknown key; did you mean database?']);
  });

  it('rejects a wrong type, naming the key and what was expected', () => {
    const p = problems(GOOD.replace('database: factory', 'database: 42'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^influx\.database: expected string, received number/);
  });

  it('rejects a missing url', () => {
    const p = problems(GOOD.replace('url: http://127.0.0.1:8086, ', ''));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^influx\.url: /);
  });

  it('rejects a bad topic template with the reason', () => {
    expect(problems(GOOD.replace('factory/{site}/{line}', 'factory/{site/{line}'))[0]).toMatch(/^mqtt\.routes\[0\]\.topic: bad topic template: level 2 "\{site" must be \{name\}/);
    expect(problems(GOOD.replace('factory/{site}/{line}', 'factory/#/{line}'))[0]).toMatch(/"#" must be the last level/);
    expect(problems(GOOD.replace('factory/{site}/{line}', 'factory/{site}/{site}'))[0]).toMatch(/placeholder \{site\} appears twice/);
    expect(problems(GOOD.replace('factory/{site}/{line}', 'factory/x{site}/{line}'))[0]).toMatch(/must be \{name\}/);
  });

  it('lists every problem at once', () => {
    const p = problems(GOOD.replace('database: factory', 'database: 42').replace('format: json', 'format: xml').replace('127.0.0.1:1883', 'nowhere'));
    expect(p).toHaveLength(3);
    expect(p.map((x) => x.split(':')[0])).toEqual(['influx.database', 'mqtt.broker.listen', 'mqtt.routes[0].format']);
  });

  it('interpolates ${VAR} and ${VAR:-default} in strings, and numbers from strings', () => {
    const c = parseConfig(GOOD.replace('http://127.0.0.1:8086', '"${INFLUX_URL}"').replace('127.0.0.1:8080', '"${HTTP:-127.0.0.1:9090}"').replace('database: factory', 'database: factory, batchSize: "${BATCH}"'), 'f', {
      INFLUX_URL: 'http://10.0.0.5:8086',
      BATCH: '250',
    });
    expect(c.influx.url).toBe('http://10.0.0.5:8086');
    expect(c.http.listen.port).toBe(9090);
    expect(c.influx.batchSize).toBe(250);
  });

  it('names an unset variable that has no default', () => {
    expect(problems(GOOD.replace('http://127.0.0.1:8086', '"${NOPE}"'))).toEqual(['influx.url: environment variable NOPE is not set (use ${NOPE:-default} for a default)']);
  });

  it('checks api v2 needs org, bucket and token', () => {
    const p = problems(GOOD.replace('api: v1, database: factory', 'api: v2, org: plant'));
    expect(p.sort()).toEqual(['influx.bucket: expected string, received undefined']);
    expect(problems(GOOD.replace('api: v1, database: factory', 'api: v2, org: plant, bucket: b'))).toEqual(['influx.token: api v2 needs a token (or tokenFile)']);
  });

  it('reads secrets from files, and refuses both the secret and its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-secret-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'tok-from-file\n');
    const c = parseConfig(GOOD.replace('api: v1, database: factory', `api: v2, org: plant, bucket: b, tokenFile: ${file}`), 'test.yaml', {});
    expect(c.influx).toMatchObject({ api: 'v2', token: 'tok-from-file' });
    expect('tokenFile' in c.influx).toBe(false);
    expect(problems(GOOD.replace('api: v1, database: factory', `api: v2, org: plant, bucket: b, token: t, tokenFile: ${file}`))).toEqual(['influx.tokenFile: give token or tokenFile, not both']);
    expect(problems(GOOD.replace('api: v1, database: factory', `api: v1, database: d, passwordFile: ${dir}/missing`))).toEqual([`influx.passwordFile: cannot read ${dir}/missing: ENOENT`]);
    rmSync(dir, { recursive: true });
  });

  it('reports YAML syntax errors with line and column', () => {
    const p = problems('influx: { url: x\n');
    expect(p[0]).toMatch(/YAML: .*line \d+, column \d+/);
  });

  it('hints that ${VAR} inside a flow mapping must be quoted', () => {
    const p = problems(GOOD.replace('http://127.0.0.1:8086', '${INFLUX_URL}'), { INFLUX_URL: 'http://x:1' });
    expect(p.length).toBeLessThanOrEqual(4);
    expect(p[p.length - 1]).toMatch(/must be quoted/);
  });

  it('refuses a buffer segment larger than half the limit', () => {
    expect(problems(GOOD.replace('dir: ./data/buffer', 'dir: ./b, maxBytes: 1MiB, segmentBytes: 1MiB'))[0]).toMatch(/^buffer\.segmentBytes: must be at most half of maxBytes/);
  });
});

describe('shipped configuration files', () => {
  const dir = new URL('../../config/', import.meta.url);
  for (const name of ['example.yaml', 'demo.yaml', 'docker.yaml']) {
    it(`config/${name} is valid`, async () => {
      const { loadConfigFile } = await import('./load.js');
      expect(() => loadConfigFile(new URL(name, dir).pathname, { INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_TOKEN: 't', PLANTGATE_DATA: '/tmp/pg' })).not.toThrow();
    });
  }
  it('the credentials files are valid; the docker demo password matches its hash', async () => {
    const { loadYamlWith } = await import('../core/yaml-config.js');
    const { credentialsFileSchema } = await import('../sources/mqtt/config.js');
    const { verifyPassword } = await import('../security/passwords.js');
    expect(loadYamlWith(credentialsFileSchema, new URL('credentials.yaml', dir).pathname).users).toEqual([]);
    const demo = loadYamlWith(credentialsFileSchema, new URL('credentials.demo.yaml', dir).pathname).users;
    const compose = readFileSync(new URL('../docker-compose.yml', dir), 'utf8');
    const password = /SIM_PASSWORD: (\S+)/.exec(compose)![1]!;
    expect(await verifyPassword(password, demo[0]!.passwordHash!)).toBe(true);
  });
});

describe('security configuration mistakes', () => {
  const HASH = 'scrypt$15$8$1$ZXhhbXBsZS1zYWx0LTEyMw==$n0tArEaLhAsHjUsTtHeFoRmAtOfOnE+eXaMpLeS0000=';
  const withBroker = (broker: string) => GOOD.replace('broker: { listen: 127.0.0.1:1883, allowAnonymous: true }', `broker: ${broker}`);
  const cases: [string, string, RegExp][] = [
    ['a broker nobody could log in to', withBroker('{ listen: 127.0.0.1:1883 }'), /^mqtt\.broker\.users: no device could connect: add users/],
    ['a password where its hash belongs', withBroker('{ listen: 127.0.0.1:1883, users: [{ username: a, passwordHash: "secret123" }] }'), /^mqtt\.broker\.users\[0\]\.passwordHash: expected a hash made by `plantgate hash-password`/],
    ['a user without any way to log in', withBroker('{ listen: 127.0.0.1:1883, users: [{ username: a }] }'), /^mqtt\.broker\.users\[0\]\.passwordHash: a user needs a passwordHash, certificate: true, or both/],
    ['a bad ACL filter', withBroker(`{ listen: 127.0.0.1:1883, users: [{ username: a, passwordHash: "${HASH}", publish: ["factory/#/x"] }] }`), /^mqtt\.broker\.users\[0\]\.publish\[0\]: '#' must be a whole level and the last one/],
    ['certificate users without client certificates', withBroker('{ listen: 127.0.0.1:1883, users: [{ username: a, certificate: true }] }'), /^mqtt\.broker\.tls: users with certificate: true need tls with a ca/],
    ['a duplicate user', withBroker(`{ listen: 127.0.0.1:1883, users: [{ username: a, passwordHash: "${HASH}" }, { username: a, passwordHash: "${HASH}" }] }`), /^mqtt\.broker\.users\[1\]\.username: duplicate user "a"/],
    ['a missing certificate file', withBroker('{ listen: 127.0.0.1:1883, allowAnonymous: true, tls: { cert: /nonexistent/broker.crt, key: /nonexistent/broker.key } }'), /^mqtt\.broker\.tls\.cert: cannot read \/nonexistent\/broker\.crt: ENOENT/],
    ['required client certificates without a CA', withBroker(`{ listen: 127.0.0.1:1883, allowAnonymous: true, tls: { cert: ${process.execPath}, key: ${process.execPath}, clientCertificates: required } }`), /^mqtt\.broker\.tls\.ca: clientCertificates required needs the CA/],
    ['a packet limit below the payload limit', withBroker('{ listen: 127.0.0.1:1883, allowAnonymous: true, maxPayloadBytes: 1000, maxPacketBytes: 500 }'), /^mqtt\.broker\.maxPacketBytes: must be larger than maxPayloadBytes/],
    ['a short HTTP token', GOOD.replace('http: { listen: 127.0.0.1:8080 }', 'http: { listen: 127.0.0.1:8080, auth: { token: short } }'), /^http\.auth\.token: a token of at least 16 characters/],
    ['http.auth without token or users', GOOD.replace('http: { listen: 127.0.0.1:8080 }', 'http: { listen: 127.0.0.1:8080, auth: { readAccess: authenticated } }'), /^http\.auth\.token: give a token \(or tokenFile\), users, or both/],
    ['a client certificate without its key', GOOD.replace('influx: { url: http://127.0.0.1:8086, api: v1, database: factory }', `influx: { url: http://127.0.0.1:8086, api: v1, database: factory, tls: { cert: ${process.execPath} } }`), /^influx\.tls\.key: cert and key go together/],
  ];
  for (const [what, yaml, expected] of cases) {
    it(what, () => {
      const p = problems(yaml);
      expect(p.some((x) => expected.test(x)), p.join('\n')).toBe(true);
    });
  }
});
