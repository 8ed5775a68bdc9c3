/**
 * Password hashes for MQTT users and the HTTP API: scrypt with a random salt, stored as
 *   scrypt$<log2 N>$<r>$<p>$<salt, base64>$<hash, base64>
 * so the cost can be raised later without breaking hashes already pasted into configurations.
 * Verification runs in libuv's thread pool (crypto.scrypt), never on the event loop, and compares
 * in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const FORMAT = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/]{16,}={0,2})\$([A-Za-z0-9+/]{32,}={0,2})$/;
/** 2^15 x 8 x 128 bytes = 32 MiB and ~50-100 ms per check on these machines: slow for a guesser. */
const DEFAULT = { logN: 15, r: 8, p: 1 };
const KEY_BYTES = 32;

export function isPasswordHash(s: string): boolean {
  const m = FORMAT.exec(s);
  return !!m && Number(m[1]) >= 10 && Number(m[1]) <= 20 && Number(m[2]) >= 1 && Number(m[3]) >= 1;
}

export const PASSWORD_HASH_HINT = 'expected a hash made by `plantgate hash-password` (scrypt$15$8$1$<salt>$<hash>), never the password itself';

function derive(password: string | Buffer, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const opts: ScryptOptions = { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, cost = DEFAULT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, cost.logN, cost.r, cost.p);
  return `scrypt$${cost.logN}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** True when `password` matches `hash`; false for a wrong password or a malformed hash. */
export async function verifyPassword(password: string | Buffer, hash: string): Promise<boolean> {
  const m = FORMAT.exec(hash);
  if (!m || !isPasswordHash(hash)) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  const key = await derive(password, Buffer.from(m[4]!, 'base64'), Number(m[1]), Number(m[2]), Number(m[3]));
  return key.length === expected.length && timingSafeEqual(key, expected);
}
