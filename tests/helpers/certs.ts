/**
 * A throwaway PKI made with the openssl command line: a CA, a server certificate for 127.0.0.1,
 * client certificates signed by the CA (valid or expired) and by a second, unknown CA.
 * EC P-256 keys, so making a dozen takes well under a second.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export class TestPki {
  readonly ca: string;
  private readonly caKey: string;

  constructor(readonly dir: string, name = 'ca') {
    mkdirSync(join(dir, name, 'newcerts'), { recursive: true });
    this.ca = join(dir, name, 'ca.crt');
    this.caKey = join(dir, name, 'ca.key');
    writeFileSync(join(dir, name, 'index.txt'), '');
    writeFileSync(join(dir, name, 'serial'), '1000\n');
    writeFileSync(
      join(dir, name, 'openssl.cnf'),
      `[ca]\ndefault_ca = d\n[d]\ndir = ${join(dir, name)}\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/newcerts\ncertificate = $dir/ca.crt\nprivate_key = $dir/ca.key\nserial = $dir/serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n[p]\ncommonName = supplied\n`,
    );
    openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', this.caKey, '-out', this.ca, '-days', '2', '-subj', `/CN=plantgate test ${name}`]);
  }

  /** A certificate signed by this CA; `expired` makes one whose validity ended in 2021. */
  issue(cn: string, opts: { expired?: boolean; ip?: string } = {}): CertFiles {
    const base = join(this.dir, `${cn}${opts.expired ? '-expired' : ''}-${Math.random().toString(36).slice(2, 8)}`);
    const key = `${base}.key`;
    const cert = `${base}.crt`;
    const ext = opts.ip ? ['-addext', `subjectAltName=IP:${opts.ip}`] : [];
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', `${base}.csr`, '-subj', `/CN=${cn}`, ...ext]);
    const dates = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20210101000000Z'] : ['-days', '2'];
    openssl(['ca', '-batch', '-notext', '-config', join(this.dir, this.ca.split('/').at(-2)!, 'openssl.cnf'), '-in', `${base}.csr`, '-out', cert, ...dates]);
    return { cert, key };
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
