/**
 * Runs Debian's `influxd` (InfluxDB 1.x) with a data folder of its own on free loopback ports:
 * used by `plantgate demo` and by the integration tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { findBinary, freePort, launch, waitFor } from './process.js';

export interface Influxd {
  url: string;
  port: number;
  dataDir: string;
  /** Process id (the benchmarks read its CPU time). */
  pid: number;
  stop(): Promise<void>;
}

export const INFLUXD_MISSING =
  'influxd (InfluxDB 1.x) is not on the PATH. On Debian or Ubuntu: sudo apt-get install influxdb ' +
  '(or point plantgate at an existing server with INFLUX_URL=http://host:8086).';

/** `https`: serve HTTPS with this certificate and key; `auth`: require users (create the first admin before writing). */
export async function startInfluxd(opts: { dataDir: string; port?: number; https?: { cert: string; key: string }; auth?: boolean }): Promise<Influxd> {
  const bin = findBinary('influxd');
  if (!bin) throw new Error(INFLUXD_MISSING);
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const rpcPort = await freePort();
  const conf = join(dataDir, 'influxd.conf');
  writeFileSync(
    conf,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${rpcPort}"`,
      '[meta]',
      `  dir = "${join(dataDir, 'meta')}"`,
      '[data]',
      `  dir = "${join(dataDir, 'data')}"`,
      `  wal-dir = "${join(dataDir, 'wal')}"`,
      '  query-log-enabled = false',
      '[monitor]',
      '  store-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${port}"`,
      '  log-enabled = false',
      '  max-body-size = 0',
      ...(opts.https ? ['  https-enabled = true', `  https-certificate = "${opts.https.cert}"`, `  https-private-key = "${opts.https.key}"`] : []),
      ...(opts.auth ? ['  auth-enabled = true'] : []),
      '[continuous_queries]',
      '  enabled = false',
      '',
    ].join('\n'),
  );
  const m = launch(bin, ['run', '-config', conf]);
  const url = `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}`;
  await waitFor(`influxd on ${url}`, async () => (await ping(url)) === 204, 30_000, m);
  return { url, port, dataDir, pid: m.proc.pid!, stop: () => m.stop() };
}

/** /ping status; over HTTPS without checking the certificate (this only asks whether it is up). */
function ping(url: string): Promise<number> {
  if (url.startsWith('http:')) return fetch(`${url}/ping`).then((r) => r.status);
  return new Promise((resolve, reject) => {
    const req = request(`${url}/ping`, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
