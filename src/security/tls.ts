/**
 * TLS settings shared by every listener (embedded broker, WebSocket, HTTP) and every client
 * (external brokers, InfluxDB). Paths are checked when the configuration is loaded, so
 * `plantgate check` names a missing or unreadable file; contents are read when the component
 * starts (a renewed certificate is picked up by a restart, without a configuration change).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { z } from 'zod';
import { bool } from '../core/config-types.js';

export const readableFile = z.string().min(1).superRefine((f, ctx) => {
  try {
    accessSync(f, constants.R_OK);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
  }
});

export const tlsServerSchema = z
  .strictObject({
    cert: readableFile.describe('PEM certificate chain and private key this listener presents.'),
    key: readableFile.describe('Its private key (PEM).'),
    ca: readableFile.optional().describe('PEM CA bundle that signs the client certificates this listener accepts.'),
    clientCertificates: z.enum(['none', 'optional', 'required']).optional().describe('`required`: the TLS handshake refuses a client without a certificate signed by `ca`; `optional`: a client may log in with a password instead, but a certificate it does present must be valid; `none`: no client certificates asked for.'),
  })
  .transform((t) => ({ ...t, clientCertificates: t.clientCertificates ?? (t.ca ? ('optional' as const) : ('none' as const)) }))
  .superRefine((t, ctx) => {
    if (t.clientCertificates !== 'none' && !t.ca) ctx.addIssue({ code: 'custom', path: ['ca'], message: `clientCertificates ${t.clientCertificates} needs the CA that signs them (ca)` });
  });
export type TlsServerConfig = z.output<typeof tlsServerSchema>;

export const tlsClientSchema = z.strictObject({
  ca: readableFile.optional().describe('PEM CA bundle to trust instead of the system\'s (a plant\'s own CA).'),
  cert: readableFile.optional().describe('Client certificate and key, for servers that authenticate clients by certificate.'),
  key: readableFile.optional().describe('The client certificate\'s private key (PEM).'),
  rejectUnauthorized: bool().default(true).describe('false accepts any server certificate: for a first test only, never in production.'),
  servername: z.string().min(1).optional().describe('Name to check the server certificate against, when it differs from the URL\'s host.'),
}).superRefine((t, ctx) => {
  if (!!t.cert !== !!t.key) ctx.addIssue({ code: 'custom', path: [t.cert ? 'key' : 'cert'], message: 'cert and key go together' });
});
export type TlsClientConfig = z.output<typeof tlsClientSchema>;

/** Options for tls.createServer / https.createServer. */
export function serverTlsOptions(t: TlsServerConfig) {
  return {
    cert: readFileSync(t.cert),
    key: readFileSync(t.key),
    ca: t.ca ? readFileSync(t.ca) : undefined,
    requestCert: t.clientCertificates !== 'none',
    // `optional` lets the handshake finish so that a password login can follow; the broker then
    // refuses a presented certificate that did not verify (see the broker's authentication)
    rejectUnauthorized: t.clientCertificates === 'required',
    minVersion: 'TLSv1.2' as const,
  };
}

/** Options for tls.connect / https.request (and mqtt.js, which passes them through). */
export function clientTlsOptions(t: TlsClientConfig | undefined) {
  if (!t) return {};
  return {
    ca: t.ca ? readFileSync(t.ca) : undefined,
    cert: t.cert ? readFileSync(t.cert) : undefined,
    key: t.key ? readFileSync(t.key) : undefined,
    rejectUnauthorized: t.rejectUnauthorized,
    servername: t.servername,
  };
}
