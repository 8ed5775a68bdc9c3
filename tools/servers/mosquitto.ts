/**
 * Runs Debian's `mosquitto` with a folder of its own on a free loopback port: the external broker
 * of the integration tests and of the benchmarks.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { findBinary, freePort, launch, waitFor, type Managed } from './process.js';

export interface Mosquitto {
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export const MOSQUITTO_MISSING = 'mosquitto is not installed: apt-get install mosquitto (.ci/run does this)';

/** `tls`: an MQTT over TLS listener that requires client certificates signed by `ca` (CN = username). */
export async function startMosquitto(opts: { dir: string; tls?: { ca: string; cert: string; key: string } }): Promise<Mosquitto> {
  const bin = findBinary('mosquitto');
  if (!bin) throw new Error(MOSQUITTO_MISSING);
  const dir = resolve(opts.dir);
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...(opts.tls
        ? [
            // started as root, mosquitto drops to its own user before reading certificates; the test folders are root's
            ...(process.getuid?.() === 0 ? ['user root'] : []),
            `cafile ${opts.tls.ca}`, `certfile ${opts.tls.cert}`, `keyfile ${opts.tls.key}`, 'require_certificate true', 'use_identity_as_username true', 'allow_anonymous false',
          ]
        : ['allow_anonymous true']),
      'persistence true',
      `persistence_location ${join(dir, 'data')}/`,
      'max_queued_messages 1000000',
      'max_inflight_messages 100',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  let m: Managed;
  const start = async () => {
    m = launch(bin, ['-c', conf]);
    await waitFor(`mosquitto on port ${port}`, () => tcpOpen(port), 15_000, m);
  };
  await start();
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    stop: () => m.stop(),
    async restart() {
      await m.stop();
      await start();
    },
  };
}

export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
