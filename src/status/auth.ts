/**
 * Who may use the HTTP API beyond reading. A bearer token (scripts) or a user with a password
 * (browsers, HTTP basic authentication) authenticates a request. A password is checked with
 * scrypt once and then remembered for five minutes by a SHA-256 of the credentials, so a
 * dashboard's requests do not each cost a scrypt run.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { verifyPassword } from '../security/passwords.js';
import type { HttpAuthConfig } from './config.js';

const REMEMBER_MS = 5 * 60_000;

export type AuthOutcome = { ok: true; who: string } | { ok: false; why: 'missing' | 'wrong' };

export class HttpAuth {
  private readonly users: Map<string, string>;
  private readonly tokenDigest?: Buffer;
  private readonly remembered = new Map<string, { who: string; until: number }>();

  constructor(config: HttpAuthConfig) {
    this.users = new Map(config.users.map((u) => [u.username, u.passwordHash]));
    this.tokenDigest = config.token ? sha256(config.token) : undefined;
  }

  async check(req: IncomingMessage): Promise<AuthOutcome> {
    const header = req.headers.authorization;
    if (!header) return { ok: false, why: 'missing' };
    const [scheme, value = ''] = header.split(/\s+/, 2) as [string, string?];
    if (/^bearer$/i.test(scheme)) {
      // equal-length digests, so the comparison time says nothing about the token
      if (this.tokenDigest && timingSafeEqual(sha256(value), this.tokenDigest)) return { ok: true, who: 'token' };
      return { ok: false, why: 'wrong' };
    }
    if (/^basic$/i.test(scheme)) {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i < 0) return { ok: false, why: 'wrong' };
      const user = decoded.slice(0, i);
      const key = sha256(decoded).toString('base64');
      const now = Date.now();
      const hit = this.remembered.get(key);
      if (hit && hit.until > now) return { ok: true, who: hit.who };
      const hash = this.users.get(user);
      if (!hash || !(await verifyPassword(decoded.slice(i + 1), hash))) return { ok: false, why: 'wrong' };
      if (this.remembered.size > 1000) this.remembered.clear();
      this.remembered.set(key, { who: user, until: now + REMEMBER_MS });
      return { ok: true, who: user };
    }
    return { ok: false, why: 'wrong' };
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
