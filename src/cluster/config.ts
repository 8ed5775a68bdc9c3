import { z } from 'zod';
import { duration } from '../core/config-types.js';
import { secretFromFile } from '../security/secrets.js';
import { readableFile, tlsClientSchema } from '../security/tls.js';

const etcdSchema = z
  .strictObject({
    endpoints: z.array(z.url({ protocol: /^https?$/ })).min(1).describe('etcd members (http:// or https://); calls go to the next one when one is down.').meta({ examples: [['http://etcd-0:2379', 'http://etcd-1:2379', 'http://etcd-2:2379']] }),
    prefix: z.string().regex(/^\/.*\/$/, 'expected a key prefix that starts and ends with /, such as /plantgate/').default('/plantgate/').describe('Key prefix of this fleet: members under `<prefix>members/`, owners under `<prefix>units/`. One prefix per fleet.'),
    username: z.string().min(1).optional().describe('etcd user (with read-write on the prefix).'),
    password: z.string().optional().describe('Password of the etcd user (or passwordFile).'),
    passwordFile: readableFile.optional().describe('File holding the password; instead of `password`.'),
    tls: tlsClientSchema.optional().describe('TLS to etcd (https:// endpoints): the CA, and a client certificate when etcd asks for one.'),
  })
  .superRefine((c, ctx) => {
    if (c.tls && !c.tls.rejectUnauthorized) ctx.addIssue({ code: 'custom', path: ['tls', 'rejectUnauthorized'], message: 'the etcd client (gRPC) always checks the server certificate: give the CA that signed it in tls.ca' });
  })
  .transform((c, ctx) => secretFromFile(c, 'password', ctx));

export const clusterSchema = z.strictObject({
  etcd: etcdSchema.describe('The etcd cluster that holds the fleet\'s members and leases.'),
  leaseTtl: duration.pipe(z.number().min(2000, 'at least 2s: below that a busy gateway loses its lease').max(300_000)).default(10_000).describe('How long a member that stopped answering keeps its endpoints and groups before the others take them over (a dead member\'s endpoints are dark this long plus one reconnect). A member cut off from etcd gives its units up within 60% of it.'),
  advertise: z.url({ protocol: /^https?$/ }).optional().describe('URL of this gateway\'s status server as the other members reach it. A member that loses etcd asks its peers there whether they still reach it, to tell being cut off (give the units up) from an etcd outage (keep reading). Default: http://<instance>:<http port>, or the http.listen address when it is not 0.0.0.0.'),
});
export type ClusterConfig = z.output<typeof clusterSchema>;
