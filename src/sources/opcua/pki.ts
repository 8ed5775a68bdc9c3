/**
 * The OPC UA PKI folder (node-opcua-pki layout):
 *   own/certs/client_certificate.pem, own/private/private_key.pem  - plantgate's identity, made on first start
 *   trusted/certs/   server certificates we accept
 *   rejected/        server certificates seen and refused; `plantgate pki trust` moves them to trusted
 *   issuers/         CA certificates and CRLs
 * Trust is explicit: an unknown server certificate is refused and lands in rejected/. The running
 * gateway watches trusted/ while a certificate is refused, so a trust given by command (another
 * process) is tried at once, not after the reconnect backoff.
 */
import { existsSync, readdirSync } from 'node:fs';
import { PlantgateError } from '../../core/errors.js';
import { join, resolve } from 'node:path';
import { OPCUACertificateManager, OPCUAClient, setDefaultCertificateSubject } from 'node-opcua';
import { exploreCertificate, makeSHA1Thumbprint, readCertificate } from 'node-opcua-crypto';

// Certificates plantgate makes carry its own organisation, not the library's default (O=Sterfive,
// L=Orleans, C=FR), which a plant's OT team would not recognise in a server's trust list.
setDefaultCertificateSubject('/O=plantgate');

export function openCertificateManager(dir: string): OPCUACertificateManager {
  return new OPCUACertificateManager({ rootFolder: resolve(dir), automaticallyAcceptUnknownCertificate: false });
}

const ready = new WeakMap<OPCUACertificateManager, Promise<void>>();

/**
 * Initialises the PKI folder and makes plantgate's client certificate once, before any endpoint
 * connects: left to each client, twenty endpoints would race for the same file lock on first start
 * (seen: 30 s before the last one connected).
 */
export function ensureClientCertificate(manager: OPCUACertificateManager, applicationName: string): Promise<void> {
  let p = ready.get(manager);
  if (!p) {
    p = (async () => {
      await manager.initialize();
      await OPCUAClient.create({ applicationName, clientCertificateManager: manager }).createDefaultCertificate();
    })();
    ready.set(manager, p);
    p.catch(() => ready.delete(manager));
  }
  return p;
}

export interface CertificateEntry {
  store: 'trusted' | 'rejected';
  file: string;
  thumbprint: string;
  subject: string;
  applicationUri?: string;
  notAfter: string;
}

/** The short names of distinguished-name attributes, as openssl and every certificate viewer print them. */
const SHORT_NAMES: Record<string, string> = { commonName: 'CN', organizationName: 'O', organizationalUnitName: 'OU', localityName: 'L', stateOrProvinceName: 'ST', countryName: 'C', domainComponent: 'DC' };

/** A distinguished-name value as text: node-opcua-crypto gives strings, or objects and arrays of them. */
function nameValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(nameValue).join('+');
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return nameValue(o.value ?? o.text ?? Object.values(o).find((x) => typeof x === 'string') ?? JSON.stringify(o));
  }
  return String(v);
}

function describe(store: CertificateEntry['store'], file: string): CertificateEntry | undefined {
  try {
    const der = readCertificate(file);
    const info = exploreCertificate(der);
    const subject = Object.entries(info.tbsCertificate.subject ?? {})
      .filter(([k]) => k !== 'entries') // the same attributes again, as a list
      .map(([k, v]) => `${SHORT_NAMES[k] ?? k}=${nameValue(v)}`)
      .join(', ');
    return {
      store,
      file,
      thumbprint: makeSHA1Thumbprint(der).toString('hex'),
      subject,
      applicationUri: info.tbsCertificate.extensions?.subjectAltName?.uniformResourceIdentifier?.[0],
      notAfter: info.tbsCertificate.validity.notAfter.toISOString(),
    };
  } catch {
    return undefined; // not a certificate (a stray file in the folder)
  }
}

export function listCertificates(dir: string): CertificateEntry[] {
  const out: CertificateEntry[] = [];
  const stores: Array<[CertificateEntry['store'], string]> = [
    ['trusted', join(dir, 'trusted', 'certs')],
    ['rejected', join(dir, 'rejected')],
  ];
  for (const [store, folder] of stores) {
    let names: string[] = [];
    try {
      names = readdirSync(folder).filter((n) => /\.(pem|der)$/i.test(n));
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      const e = describe(store, join(folder, n));
      if (e) out.push(e);
    }
  }
  return out;
}

/**
 * Trusts a certificate given by thumbprint (or a unique prefix of at least 4 hex digits) among the
 * rejected ones, or by a certificate file anywhere. Returns what was trusted.
 */
export async function trustCertificate(dir: string, selector: string): Promise<CertificateEntry> {
  let entry: CertificateEntry | undefined;
  if (/^[0-9a-f]{4,40}$/i.test(selector) && !existsSync(selector)) {
    const matches = listCertificates(dir).filter((c) => c.store === 'rejected' && c.thumbprint.startsWith(selector.toLowerCase()));
    if (matches.length === 0) throw new PlantgateError('PG_ERR_PKI', `no rejected certificate has a thumbprint starting with ${selector} (in ${dir}; see plantgate pki list)`);
    if (matches.length > 1) throw new PlantgateError('PG_ERR_PKI', `${selector} is ambiguous: ${matches.length} rejected certificates start with it (${matches.map((m) => m.thumbprint.slice(0, 12)).join(', ')}); give more digits`);
    entry = matches[0];
  } else {
    entry = describe('rejected', resolve(selector));
    if (!entry) throw new PlantgateError('PG_ERR_PKI', `${selector} is neither a thumbprint (4 to 40 hex digits) nor a readable certificate file`);
  }
  const cm = openCertificateManager(dir);
  try {
    await cm.initialize();
    await cm.trustCertificate(readCertificate(entry!.file));
  } finally {
    await cm.dispose();
  }
  return { ...entry!, store: 'trusted' };
}
