/**
 * Issue 3, done-when: an untrusted server certificate is refused until trusted with
 * `plantgate pki trust`, and `plantgate browse` lists a simulator's CNC structure with namespace
 * URIs. Both commands run as real processes, the way an operator runs them.
 */
import { execFile } from 'node:child_process';
import { exploreCertificate, makeSHA1Thumbprint, readCertificate } from 'node-opcua-crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cncFleet, CNC_NAMESPACE } from '../simulators/opcua-cnc.js';
import type { SimServer } from '../simulators/opcua-server.js';
import { freePort } from '../tools/servers/process.js';
import type { OpcuaEndpointSource } from '../src/sources/opcua/opcua-source.js';
import { listCertificates, trustCertificate } from '../src/sources/opcua/pki.js';
import { testGateway } from './helpers/gateway.js';
import { logCapture } from './helpers/logs.js';
import { eventually, tempDir } from './helpers/servers.js';

const run = promisify(execFile);
const plantgate = (...args: string[]) => run(process.execPath, ['bin/plantgate.js', ...args], { timeout: 60_000 });

describe('OPC UA certificate trust and browse', () => {
  let sim: SimServer;
  let gw: Awaited<ReturnType<typeof testGateway>>;
  const dir = tempDir('opcua-trust');
  const pki = `${dir.path}/gw-pki`;

  beforeAll(async () => {
    sim = cncFleet({ servers: 1, machinesPerServer: 1, basePort: await freePort(), pkiDir: `${dir.path}/sim`, security: 'secure', intervalMs: 250, timeScale: 20 })[0]!;
    await sim.start();
    gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: http://127.0.0.1:9, database: none }
buffer: { dir: "\${DATA}/buffer" }
opcua:
  pkiDir: ${pki}
  endpoints:
    - name: secure
      url: ${sim.url}
      # no securityMode: the strongest the server offers (issue 9)
      reconnect: { initialDelay: 200ms, maxDelay: 1s }
      nodes: [{ nodeId: "nsu=${CNC_NAMESPACE};s=cnc-01.S1-ActLoad", field: load }]
`);
  }, 60_000);

  afterAll(async () => {
    await gw?.cleanup();
    await sim?.stop();
    dir.remove();
  }, 30_000);

  it('refuses an unknown server certificate, records it, and connects once trusted by command', async () => {
    const source = gw.pipeline.sources.find((s) => s.name === 'secure') as OpcuaEndpointSource;
    // plantgate made its own client certificate on first start
    expect(existsSync(`${pki}/own/certs/client_certificate.pem`)).toBe(true);
    // with plantgate's organisation, not the library's
    const subject = exploreCertificate(readCertificate(`${pki}/own/certs/client_certificate.pem`)).tbsCertificate.subject as unknown as Record<string, string>;
    expect(subject).toMatchObject({ commonName: expect.stringMatching(/^plantgate/), organizationName: 'plantgate' });
    expect(JSON.stringify(subject)).not.toMatch(/Sterfive|Orleans/);
    const rejected = await eventually('server certificate in rejected/', async () => listCertificates(pki).filter((c) => c.store === 'rejected'), (r) => r.length === 1, 20_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(source.status().state).toBe('reconnecting');
    expect(source.status().counters.received).toBe(0);
    expect(source.status().lastError?.message).toMatch(/certificate/i);

    const listed = await plantgate('pki', 'list', '--pki', pki);
    expect(listed.stdout).toContain(`rejected  ${rejected[0]!.thumbprint}`);
    expect(listed.stdout).not.toContain('[object Object]');
    expect(listed.stdout).toMatch(/CN=\S/);
    const trusted = await plantgate('pki', 'trust', rejected[0]!.thumbprint.slice(0, 12), '--pki', pki);
    expect(trusted.stdout).toContain(`trusted ${rejected[0]!.thumbprint}`);
    expect(listCertificates(pki).map((c) => c.store)).toEqual(['trusted']);

    // the running gateway picks the trust up at its next attempt, no restart
    await eventually('values over SignAndEncrypt', async () => source.status().counters.received, (n) => n > 3, 30_000);
    expect(source.status().state).toBe('running');
    // the simulator offers Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss, Sign and SignAndEncrypt
    expect(source.status().details!.security).toBe('SignAndEncrypt/Aes256_Sha256_RsaPss (auto)');
  }, 90_000);

  it('auto security with a password: refuses a server that offers no encryption, before sending anything', async () => {
    const plain = cncFleet({ servers: 1, machinesPerServer: 1, basePort: await freePort(), pkiDir: `${dir.path}/sim-plain`, security: 'none', intervalMs: 250 })[0]!;
    await plain.start();
    const g = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: http://127.0.0.1:9, database: none }
buffer: { dir: "\${DATA}/buffer" }
opcua:
  pkiDir: ${dir.path}/gw-pki-plain
  endpoints:
    - name: plain
      url: ${plain.url}
      auth: { type: username, username: operator, password: never-sent }
      reconnect: { initialDelay: 200ms, maxDelay: 1s }
      nodes: [{ nodeId: "nsu=${CNC_NAMESPACE};s=cnc-01.S1-ActLoad", field: load }]
`);
    try {
      const source = g.pipeline.sources.find((x) => x.name === 'plain') as OpcuaEndpointSource;
      await eventually('refused', async () => source.status().lastError?.message ?? '', (m) => m.includes('a password would be readable'), 20_000);
      expect(source.status().state).toBe('reconnecting');
      expect(source.status().counters.received).toBe(0);
    } finally {
      await g.cleanup();
      await plain.stop();
    }
  }, 60_000);

  it('plantgate pki trust explains a thumbprint it does not know', async () => {
    const err = await plantgate('pki', 'trust', 'deadbeefdeadbeef', '--pki', pki).catch((e: { stderr: string; code: number }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toContain('no rejected certificate has a thumbprint starting with deadbeefdeadbeef');
    // a short prefix is a thumbprint too, and a failure is one line, not a stack trace
    const short = await plantgate('pki', 'trust', '3a74', '--pki', pki).catch((e: { stderr: string; code: number }) => e);
    expect((short as { stderr: string }).stderr.trim().split('\n')).toEqual([expect.stringContaining('no rejected certificate has a thumbprint starting with 3a74')]);
  }, 60_000);

  it('plantgate browse lists the CNC structure with namespace URIs, data types and access levels', async () => {
    const { stdout } = await plantgate('browse', sim.url, '--node', `nsu=${CNC_NAMESPACE};s=cnc-01`, '--depth', '4', '--security-mode', 'SignAndEncrypt', '--security-policy', 'Basic256Sha256', '--pki', pki);
    expect(stdout).toContain('http://opcfoundation.org/UA/CNC');
    expect(stdout).toContain(`nsu=${CNC_NAMESPACE};s=cnc-01`);
    for (const name of ['CncAxisList', 'CncSpindleList', 'CncChannelList', 'ActProgramName', 'PartCount']) expect(stdout).toContain(name);
    expect(stdout).toMatch(/ActLoad\s+\[Variable\]\s+nsu=urn:plantgate:sim:cnc;s=cnc-01\.S1-ActLoad\s+Double\s+read/);
    expect(stdout).toMatch(/ActProgramStatus\s+\[Variable\].*CncChannelProgramStatus/);
    // 64-bit integers as the numbers they are, not node-opcua's [high, low] words
    expect(stdout).toMatch(/EnergyTotal\s+\[Variable\].*Int64\s+\S+\s+= \d+$/m);
  }, 60_000);

  it('plantgate browse --user sends a password only over an encrypted channel, as the gateway', async () => {
    const env = { ...process.env, PW: 'secret' };
    const browseAs = (...args: string[]) => run(process.execPath, ['bin/plantgate.js', 'browse', ...args, '--user', 'operator', '--password-env', 'PW', '--pki', pki], { timeout: 60_000, env }).catch((e: { stderr: string; code: number }) => e);
    const plain = cncFleet({ servers: 1, machinesPerServer: 1, basePort: await freePort(), pkiDir: `${dir.path}/sim-plain-browse`, security: 'none', intervalMs: 250, timeScale: 20, users: [{ username: 'operator', password: 'secret' }] })[0]!;
    await plain.start();
    try {
      // asked for None by name: refused before connecting
      const none = (await browseAs(plain.url, '--security-mode', 'None')) as { code: number; stderr: string };
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/refused: a password over a None channel is readable on the network/);
      // the default with --user is the strongest endpoint; a server with none refuses it
      const auto = (await browseAs(plain.url)) as { code: number; stderr: string };
      expect(auto.code).toBe(1);
      expect(auto.stderr).toMatch(/refused: the server offers at best None\/None: a password would be readable/);
      expect(plain.activeSessions()).toBe(0);
      // asked for by name, plantgate lets it through (this simulator then has no user login on None)
      const asked = (await browseAs(plain.url, '--security-mode', 'None', '--allow-password-over-insecure-channel', '--depth', '1')) as { stdout: string; stderr: string };
      expect(asked.stderr).not.toMatch(/refused/);
      expect(`${asked.stdout}${asked.stderr}`).toMatch(/Namespaces:|USERNAME user token policy/);
    } finally {
      await plain.stop();
    }
    // the secure simulator: auto picks SignAndEncrypt and the password goes inside it
    const secure = (await browseAs(sim.url, '--node', `nsu=${CNC_NAMESPACE};s=cnc-01`, '--depth', '1')) as { stdout?: string; stderr?: string };
    expect(secure.stderr ?? '').not.toMatch(/refused/);
    // it reached the session (this simulator knows no users, so the login itself may be denied)
    expect(`${secure.stdout ?? ''}${secure.stderr ?? ''}`).toMatch(/Namespaces:|BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid/);
  }, 60_000);

  it('plantgate browse says when the node does not exist, and exits 1', async () => {
    const err = await plantgate('browse', sim.url, '--node', 'ns=1;s=Nope', '--security-mode', 'SignAndEncrypt', '--security-policy', 'Basic256Sha256', '--pki', pki).catch((e: { stderr: string; code: number }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/ns=1;s=Nope: BadNodeIdUnknown/);
  }, 60_000);
});

describe('OPC UA: an untrusted server explained and trusted from the status page', () => {
  it('names thumbprint, subject and command in the log and the status, and an admin trust connects at once', async () => {
    const dir = tempDir('opcua-trust-page');
    const sim = cncFleet({ servers: 1, machinesPerServer: 1, basePort: await freePort(), pkiDir: `${dir.path}/sim`, security: 'secure', intervalMs: 250, timeScale: 20 })[0]!;
    await sim.start();
    const { logs, stream } = logCapture();
    const token = 'admin-token-0123456789';
    const gw = await testGateway(
      `
http: { listen: 127.0.0.1:0, auth: { token: ${token} } }
influx: { url: http://127.0.0.1:9, database: none }
buffer: { dir: "\${DATA}/buffer" }
opcua:
  pkiDir: ${dir.path}/gw-pki
  endpoints:
    - name: secure
      url: ${sim.url}
      # long backoff: a connection within seconds of the trust shows the retry came at once
      reconnect: { initialDelay: 15s, maxDelay: 30s }
      nodes: [{ nodeId: "nsu=${CNC_NAMESPACE};s=cnc-01.S1-ActLoad", field: load }]
`,
      {},
      { logTo: stream },
    );
    try {
      const source = gw.pipeline.sources.find((s) => s.name === 'secure') as OpcuaEndpointSource;
      const untrusted = (await eventually('untrusted server shown', async () => source.status().details!.untrustedServer as { thumbprint: string; subject?: string; trust: string } | undefined, (u) => !!u, 20_000))!;
      expect(untrusted.trust).toBe(`plantgate pki trust ${untrusted.thumbprint.slice(0, 12)} --pki ${dir.path}/gw-pki`);
      expect(untrusted.subject).toMatch(/CN=/);
      const line = logs.find((l) => l.code === 'PG_ERR_OPCUA_UNTRUSTED')!;
      expect(line.thumbprint).toBe(untrusted.thumbprint);
      expect(String(line.msg)).toContain(untrusted.trust);
      const base = `http://127.0.0.1:${gw.http.port}`;
      expect((await fetch(`${base}/api/opcua/trust?endpoint=secure`, { method: 'POST' })).status).toBe(401);
      const r = await fetch(`${base}/api/opcua/trust?endpoint=secure`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { thumbprint: string }).thumbprint).toBe(untrusted.thumbprint);
      const t0 = Date.now();
      await eventually('values after the trust', async () => source.status().counters.received, (n) => n > 0, 10_000);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(source.status().details!.untrustedServer).toBeUndefined();
    } finally {
      await gw.cleanup();
      await sim.stop();
      dir.remove();
    }
  }, 90_000);
});

/** A secure simulator and a gateway reading it with SignAndEncrypt, in a folder of their own. */
async function secureEndpoint(name: string, o: { rejectUnknownClients?: boolean; trustServer?: boolean; reconnect: string }) {
  const dir = tempDir(name);
  const sim = cncFleet({ servers: 1, machinesPerServer: 1, basePort: await freePort(), pkiDir: `${dir.path}/sim`, security: 'secure', intervalMs: 250, timeScale: 20 })[0]!;
  sim.options.rejectUnknownClients = o.rejectUnknownClients;
  await sim.start();
  const pki = `${dir.path}/gw`;
  if (o.trustServer) await trustCertificate(pki, sim.certificateFile);
  const gw = await testGateway(`
http: { listen: 127.0.0.1:0 }
influx: { url: http://127.0.0.1:9, database: none }
buffer: { dir: "\${DATA}/buffer" }
opcua:
  pkiDir: ${pki}
  endpoints:
    - { name: s, url: ${sim.url}, securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256, reconnect: ${o.reconnect}, nodes: [{ nodeId: "nsu=${CNC_NAMESPACE};s=cnc-01.S1-ActLoad", field: load }] }
`);
  return {
    sim,
    pki,
    source: gw.pipeline.sources.find((x) => x.name === 's') as OpcuaEndpointSource,
    async cleanup() {
      await gw.cleanup();
      await sim.stop();
      dir.remove();
    },
  };
}

describe('OPC UA: trust, both ways, without waiting for the backoff', () => {
  it('says the server does not trust our client certificate (with its thumbprint), and connects once it does', async () => {
    const { sim, pki: gwPki, source, cleanup } = await secureEndpoint('opcua-client-trust', { rejectUnknownClients: true, trustServer: true, reconnect: '{ initialDelay: 200ms, maxDelay: 1s }' });
    try {
      const own = `${gwPki}/own/certs/client_certificate.pem`;
      const thumbprint = makeSHA1Thumbprint(readCertificate(own)).toString('hex');
      const msg = await eventually('refusal explained', async () => source.status().lastError?.message ?? '', (m) => m.includes('does not trust'), 20_000);
      expect(msg).toContain(`does not trust plantgate's client certificate yet (thumbprint ${thumbprint}, ${own})`);
      // not mistaken for the other way round: no server certificate to trust on the page
      expect((source.status().details as { untrustedServer?: unknown }).untrustedServer).toBeUndefined();
      // the server's administrator trusts it
      await sim.trustClient(readCertificate(own));
      await eventually('connected', async () => source.status().state, (s) => s === 'running' || s === 'degraded', 20_000);
    } finally {
      await cleanup();
    }
  }, 60_000);

  it('connects at once after plantgate pki trust in another process, not after the backoff', async () => {
    const { pki: gwPki, source, cleanup } = await secureEndpoint('opcua-trust-now', { reconnect: '{ initialDelay: 30s, maxDelay: 30s }' });
    try {
      const u = await eventually('refused', async () => (source.status().details as { untrustedServer?: { thumbprint: string } }).untrustedServer, (x) => !!x, 20_000);
      await plantgate('pki', 'trust', u!.thumbprint.slice(0, 12), '--pki', gwPki);
      const trustedAt = Date.now();
      await eventually('connected', async () => source.status().state, (s) => s === 'running' || s === 'degraded', 15_000);
      // the backoff alone would have waited up to 30 s
      expect(Date.now() - trustedAt).toBeLessThan(10_000);
    } finally {
      await cleanup();
    }
  }, 60_000);
});
