/**
 * Runs a real etcd cluster (Debian's `etcd-server`) of `members` members on free loopback ports,
 * each with a data folder of its own: the store of the fleet tests. A member can be killed
 * (SIGKILL) and started again on the same data, as a machine that crashes and reboots.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findBinary, freePort, launch, waitFor, type Managed } from './process.js';

export const ETCD_MISSING = 'etcd is not installed: apt-get install etcd-server etcd-client (.ci/run does this)';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  running(): boolean;
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface EtcdCluster {
  endpoints: string[];
  members: EtcdMember[];
  stop(): Promise<void>;
}

export async function startEtcdCluster(opts: { dir: string; members?: number }): Promise<EtcdCluster> {
  const bin = findBinary('etcd');
  if (!bin) throw new Error(ETCD_MISSING);
  const n = opts.members ?? 3;
  const spec = [];
  for (let i = 1; i <= n; i++) spec.push({ name: `etcd-${i}`, client: await freePort(), peer: await freePort() });
  const initialCluster = spec.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const token = `plantgate-test-${process.pid}-${Date.now()}`;
  const members: EtcdMember[] = spec.map((s) => {
    const dataDir = resolve(join(opts.dir, s.name));
    mkdirSync(dataDir, { recursive: true });
    let m: Managed | undefined;
    const clientUrl = `http://127.0.0.1:${s.client}`;
    const args = [
      '--name', s.name, '--data-dir', dataDir,
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', `http://127.0.0.1:${s.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${s.peer}`,
      '--initial-cluster', initialCluster, '--initial-cluster-token', token, '--initial-cluster-state', 'new',
      // loopback: elections in a few hundred milliseconds, as on a LAN
      '--heartbeat-interval', '100', '--election-timeout', '1000', '--log-level', 'error',
    ];
    const member: EtcdMember = {
      name: s.name,
      clientUrl,
      running: () => !!m && m.proc.exitCode === null && m.proc.signalCode === null,
      async kill() {
        await m?.stop('SIGKILL');
        m = undefined;
      },
      async start() {
        m = launch(bin, args, { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' });
        // a lone member has no quorum: it listens, and /health says false until the others are up
        await waitFor(`etcd member ${s.name} on ${clientUrl}`, async () => (await fetch(`${clientUrl}/version`)).ok, 20_000, m);
      },
    };
    return member;
  });
  await Promise.all(members.map((m) => m.start()));
  await waitFor('etcd cluster healthy', async () => ((await (await fetch(`${members[0]!.clientUrl}/health`)).json()) as { health: string }).health === 'true', 20_000);
  return {
    endpoints: members.map((m) => m.clientUrl),
    members,
    async stop() {
      await Promise.all(members.map((m) => m.kill()));
    },
  };
}
