import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { configProblems } from '../../tests/helpers/config.js';

const base = (cluster: string, rest = '') => `
instance: gw-1
influx: { url: http://127.0.0.1:8086, database: f }
buffer: { dir: /var/lib/plantgate/buffer }
cluster: ${cluster}
${rest}
`;

const problems = configProblems;

describe('cluster configuration', () => {
  it('defaults: prefix /plantgate/, a 10 s lease', () => {
    const c = parseConfig(base('{ etcd: { endpoints: [http://127.0.0.1:2379] } }'), 'plant.yaml', {});
    expect(c.cluster).toEqual({ etcd: { endpoints: ['http://127.0.0.1:2379'], prefix: '/plantgate/' }, leaseTtl: 10_000 });
  });

  it('names every mistake with its path', () => {
    expect(problems(base('{ etcd: { endpoints: [] } }'))).toEqual(['cluster.etcd.endpoints: Too small: expected array to have >=1 items']);
    expect(problems(base('{ etcd: { endpoints: [etcd:2379] } }'))[0]).toMatch(/^cluster\.etcd\.endpoints\[0\]: /);
    expect(problems(base('{ etcd: { endpoints: [http://e:2379], prefix: plantgate } }'))).toEqual(['cluster.etcd.prefix: expected a key prefix that starts and ends with /, such as /plantgate/']);
    expect(problems(base('{ etcd: { endpoints: [http://e:2379] }, leaseTtl: 500ms }'))).toEqual(['cluster.leaseTtl: at least 2s: below that a busy gateway loses its lease']);
    expect(problems(base('{ etcd: { endpoints: [https://e:2379], tls: { rejectUnauthorized: false } } }'))).toEqual(['cluster.etcd.tls.rejectUnauthorized: the etcd client (gRPC) always checks the server certificate: give the CA that signed it in tls.ca']);
    expect(problems(base('{ etcd: { endpoints: [http://e:2379] }, ttl: 5s }'))).toEqual(['cluster.ttl: unknown key; expected one of etcd, leaseTtl, advertise']);
  });

  it('refuses a Sparkplug host without listed groups, or on the embedded broker', () => {
    const cluster = '{ etcd: { endpoints: [http://e:2379] } }';
    expect(problems(base(cluster, 'mqtt: { clients: [{ url: "mqtt://b:1883" }] }\nsparkplug: {}'))).toEqual([
      'sparkplug.groups: in a cluster every Sparkplug group is a unit with one owner: list the groups (a member subscribes only to the groups it owns, so it cannot discover new ones from births)',
    ]);
    expect(problems(base(cluster, 'mqtt: { broker: { listen: 127.0.0.1:1883, allowAnonymous: true } }\nsparkplug: { groups: [line-a] }'))[0]).toMatch(/^mqtt\.broker: in a cluster the Sparkplug host follows the groups it owns on an external broker/);
    expect(problems(base(cluster, 'mqtt: { clients: [{ url: "mqtt://b:1883" }] }\nsparkplug: { groups: [line-a] }'))).toEqual([]);
  });
});
