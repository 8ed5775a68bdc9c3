/**
 * Who may connect to the embedded broker and what each connection may do.
 *
 * A connection proves its identity with a client certificate (TLS, signed by the broker's CA, CN =
 * username) or a username and password (checked against a scrypt hash); anonymous connections
 * only when the configuration allows them. The result carries the identity and its ACL rules,
 * which the broker then applies to every publish and subscribe of that connection.
 */
import { statSync } from 'node:fs';
import { loadYamlWith } from '../../core/yaml-config.js';
import { hashPassword, verifyPassword } from '../../security/passwords.js';
import type { Identity } from './acl.js';
import type { Peer } from './connection-limits.js';
import { type BrokerConfig, type BrokerUser, credentialsFileSchema } from './config.js';
import type { RefusalReason } from '../../core/reasons.js';

export interface Grant {
  identity: Identity;
  method: 'certificate' | 'password' | 'anonymous';
  publish: readonly string[];
  subscribe: readonly string[];
  /** May publish retained messages. */
  retain: boolean;
}

/** MQTT 3.1.1 CONNACK codes: 4 bad user name or password, 5 not authorized. */
export type Refusal = { reason: RefusalReason; detail: string; returnCode: 4 | 5 };

// a wrong username costs the same scrypt work as a wrong password, so timing tells nothing
const dummyHash = hashPassword('plantgate-no-such-user');

export class BrokerAuth {
  private fileUsers = new Map<string, BrokerUser>();
  private fileMtime = -1;
  private readonly inline: Map<string, BrokerUser>;
  /** Last problem with the credentials file (kept users stay in force meanwhile). */
  fileError?: string;

  constructor(private readonly config: BrokerConfig) {
    this.inline = new Map(config.users.map((u) => [u.username, u]));
    this.reload();
  }

  get userCount(): number {
    return this.inline.size + this.fileUsers.size;
  }

  user(name: string): BrokerUser | undefined {
    this.reload();
    return this.inline.get(name) ?? this.fileUsers.get(name);
  }

  /** Re-reads the credentials file when its modification time changed. */
  reload(): void {
    const file = this.config.credentialsFile;
    if (!file) return;
    let mtime: number;
    try {
      mtime = statSync(file).mtimeMs;
    } catch (err) {
      this.fileError = `cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`;
      return;
    }
    if (mtime === this.fileMtime) return;
    this.fileMtime = mtime;
    try {
      const { users } = loadYamlWith(credentialsFileSchema, file, {});
      this.fileUsers = new Map(users.filter((u) => !this.inline.has(u.username)).map((u) => [u.username, u]));
      const dup = users.filter((u) => this.inline.has(u.username)).map((u) => u.username);
      this.fileError = dup.length ? `${file}: ignored users also defined in the configuration: ${dup.join(', ')}` : undefined;
    } catch (err) {
      this.fileError = (err as Error).message;
    }
  }

  async authenticate(clientId: string, username: string | undefined, password: Buffer | undefined, peer: Peer): Promise<Grant | Refusal> {
    const tls = peer.tls;
    const cert = tls?.getPeerCertificate();
    if (tls && cert && Object.keys(cert).length > 0) {
      if (!tls.authorized) return { reason: 'certificate_refused', detail: `client certificate not accepted: ${String(tls.authorizationError)}`, returnCode: 5 };
      const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
      const user = cn ? this.user(cn) : undefined;
      if (!cn || !user?.certificate) return { reason: 'unknown_certificate', detail: `no user with certificate: true for CN ${JSON.stringify(cn ?? '')}`, returnCode: 5 };
      if (username !== undefined && username !== cn) return { reason: 'certificate_username_mismatch', detail: `username ${JSON.stringify(username)} but certificate CN ${JSON.stringify(cn)}`, returnCode: 5 };
      return { identity: { clientId, username: cn }, method: 'certificate', publish: user.publish, subscribe: user.subscribe, retain: user.retain };
    }
    if (username !== undefined) {
      const user = this.user(username);
      const hash = user?.passwordHash;
      const ok = await verifyPassword(password ?? Buffer.alloc(0), hash ?? (await dummyHash));
      if (!hash || !ok) return { reason: 'bad_credentials', detail: `wrong password or unknown user ${JSON.stringify(username)}`, returnCode: 4 };
      return { identity: { clientId, username }, method: 'password', publish: user!.publish, subscribe: user!.subscribe, retain: user!.retain };
    }
    if (!this.config.allowAnonymous) return { reason: 'anonymous_refused', detail: 'no username and no client certificate (allowAnonymous is off)', returnCode: 5 };
    return { identity: { clientId }, method: 'anonymous', publish: this.config.anonymous.publish, subscribe: this.config.anonymous.subscribe, retain: this.config.anonymous.retain };
  }
}
