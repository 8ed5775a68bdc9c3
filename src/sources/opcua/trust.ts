/**
 * Certificate trust of one OPC UA endpoint, both ways. A server that refuses plantgate's client
 * certificate is explained (with the thumbprint and file to give its administrator); a server
 * certificate plantgate does not trust yet is named once, with the command that trusts it, and
 * the endpoint tries again as soon as an operator has trusted it (`plantgate pki trust` in another
 * process, or the status page), not after its backoff, which may be `reconnect.maxDelay`.
 */
import { type FSWatcher, statSync, watch } from 'node:fs';
import type { OPCUACertificateManager } from 'node-opcua';
import { makeSHA1Thumbprint, readCertificate } from 'node-opcua-crypto';
import type { Logger } from 'pino';
import { sleep } from '../../core/retry.js';
import { listCertificates } from './pki.js';
import type { Security } from './security.js';

export interface Untrusted {
  thumbprint: string;
  subject?: string;
  since: number;
  /** The command that trusts it. */
  trust: string;
}

export class ServerTrust {
  /** The server's certificate this gateway does not trust yet (refused until an operator trusts it). */
  untrusted?: Untrusted;
  private untrustedDer?: Buffer;
  private watcher?: FSWatcher;
  private polling = false;
  private stopped = new AbortController();

  constructor(
    private readonly manager: OPCUACertificateManager,
    private readonly endpoint: string,
    private readonly url: string,
    private readonly log: Logger,
    private readonly retryNow: () => void,
  ) {}

  /** A connection succeeded: whatever was refused is trusted now. */
  connected(): void {
    this.untrusted = undefined;
    this.unwatch();
  }

  stop(): void {
    this.stopped.abort();
    this.stopped = new AbortController();
    this.unwatch();
  }

  /**
   * The server closing a secure channel it would not open says little by itself ("rejected by
   * server: BadSecurityChecksFailed", or from other stacks "socket has been disconnected by third
   * party"). Almost always the server does not trust our client certificate yet: say so, with
   * the thumbprint and file an operator gives the server's administrator.
   */
  explainRefusal(message: string, security: Security | undefined): string {
    if (security?.mode === 'None' || !/rejected by server|disconnected by third party/i.test(message)) return message;
    const file = `${this.manager.rootDir}/own/certs/client_certificate.pem`;
    let thumbprint = '?';
    try {
      thumbprint = makeSHA1Thumbprint(readCertificate(file)).toString('hex');
    } catch {
      /* no certificate yet: the file name says where it will be */
    }
    return `${message}: the server refused the secure channel, most likely because it does not trust plantgate's client certificate yet (thumbprint ${thumbprint}, ${file}); add it to the server's trusted certificates`;
  }

  /**
   * A refusal of the server's certificate is explained once per certificate: its thumbprint and
   * subject, and the command that trusts it (the dashboard offers the same as an admin action).
   * `offered`: the certificate the server presented (the last client's, or its endpoints').
   */
  noteUntrusted(reason: string, offered: Buffer | Buffer[] | undefined): void {
    // the server refusing our certificate is the other way round (explainRefusal)
    if (!/BadCertificateUntrusted|certificate/i.test(reason) || /the server refused the secure channel/.test(reason)) return;
    let der = Array.isArray(offered) ? offered[0] : offered;
    // without either, the certificate node-opcua has just put into rejected/
    der ??= newestRejected(this.manager.rootDir);
    if (!der) return;
    const thumbprint = makeSHA1Thumbprint(der).toString('hex');
    if (this.untrusted?.thumbprint === thumbprint) return;
    const pki = this.manager.rootDir;
    const subject = listCertificates(pki).find((c) => c.thumbprint === thumbprint)?.subject;
    const trust = `plantgate pki trust ${thumbprint.slice(0, 12)} --pki ${pki}`;
    this.untrusted = { thumbprint, subject, since: Date.now(), trust };
    this.watch();
    this.untrustedDer = der;
    this.log.warn({ code: 'PG_ERR_OPCUA_UNTRUSTED', endpoint: this.endpoint, url: this.url, thumbprint, subject }, `the server's certificate is not trusted (${subject ?? 'subject unknown'}, thumbprint ${thumbprint}); check it and trust it with: ${trust}`);
  }

  /**
   * Trusts the server certificate the last attempt refused, in this gateway's own certificate
   * manager (whose trust list the next attempt reads at once), and retries now.
   */
  async trustRefused(): Promise<{ thumbprint: string; subject?: string }> {
    const u = this.untrusted;
    if (!u || !this.untrustedDer) throw new Error(`endpoint ${this.endpoint} has not refused a server certificate`);
    await this.manager.trustCertificate(this.untrustedDer);
    this.log.info({ code: 'PG_ERR_OPCUA_UNTRUSTED', endpoint: this.endpoint, thumbprint: u.thumbprint, subject: u.subject }, 'server certificate trusted by an operator (status page)');
    this.retryNow();
    return { thumbprint: u.thumbprint, subject: u.subject };
  }

  /** While a server certificate is refused: watch the trusted folder, where `plantgate pki trust` puts it. */
  private watch(): void {
    if (this.watcher) return;
    const dir = `${this.manager.rootDir}/trusted/certs`;
    try {
      this.watcher = watch(dir, () => void this.retryWhenTrusted());
      this.watcher.on('error', () => this.unwatch());
      this.watcher.unref();
    } catch {
      /* a folder that cannot be watched: the backoff still retries */
    }
  }

  /**
   * A file arrived in trusted/: once the certificate manager's own index (kept by its file
   * watchers, a moment behind the folder) says the refused certificate is trusted, try at once.
   */
  private async retryWhenTrusted(): Promise<void> {
    const der = this.untrustedDer;
    if (!der || this.polling) return;
    this.polling = true;
    const { signal } = this.stopped;
    try {
      for (let i = 0; i < 40 && this.untrustedDer === der && !signal.aborted; i++) {
        if ((await this.manager.isCertificateTrusted(der).catch(() => 'no')) === 'Good') return this.retryNow();
        await sleep(250, signal);
      }
    } finally {
      this.polling = false;
    }
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}

/** The certificate node-opcua put into rejected/ in the last minute, if any. */
function newestRejected(pki: string): Buffer | undefined {
  const newest = listCertificates(pki)
    .filter((c) => c.store === 'rejected')
    .map((c) => ({ c, at: statSync(c.file).mtimeMs }))
    .sort((a, b) => b.at - a.at)[0];
  return newest && newest.at > Date.now() - 60_000 ? readCertificate(newest.c.file) : undefined;
}
