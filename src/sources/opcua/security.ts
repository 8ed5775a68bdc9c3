/**
 * The security of an OPC UA connection when the configuration leaves it to us (`securityMode:
 * auto`): the strongest endpoint the server offers. GetEndpoints is answered over an unsecured
 * channel, so a man in the middle could hide the secure endpoints; the source therefore never
 * accepts less than it chose before in the same run (`floor`), and says so.
 */
import type { securityModes, securityPolicies } from './config.js';

export type Mode = (typeof securityModes)[number];
export type Policy = (typeof securityPolicies)[number];
export interface Security {
  mode: Mode;
  policy: Policy;
}

const MODE_RANK: Record<Mode, number> = { None: 0, Sign: 1, SignAndEncrypt: 2 };
/** Deprecated by OPC UA 1.04 (SHA-1, RSA PKCS#1 v1.5): usable when configured, never chosen. */
const POLICY_RANK: Partial<Record<Policy, number>> = { None: 0, Basic256Sha256: 1, Aes128_Sha256_RsaOaep: 2, Aes256_Sha256_RsaPss: 3 };

export function rank(s: Security): number {
  return MODE_RANK[s.mode] * 10 + (POLICY_RANK[s.policy] ?? -1);
}

/** Endpoint descriptions as node-opcua gives them: mode as 1/2/3, policy as its URI. */
export interface OfferedEndpoint {
  securityMode: number;
  securityPolicyUri: string | null;
}

const MODE_BY_NUMBER: Record<number, Mode> = { 1: 'None', 2: 'Sign', 3: 'SignAndEncrypt' };

export function offered(endpoints: readonly OfferedEndpoint[]): Security[] {
  const out: Security[] = [];
  for (const e of endpoints) {
    const mode = MODE_BY_NUMBER[e.securityMode];
    const policy = (e.securityPolicyUri ?? '').split('#')[1] as Policy | undefined;
    if (mode && policy && POLICY_RANK[policy] !== undefined && (mode === 'None') === (policy === 'None')) out.push({ mode, policy });
  }
  return out;
}

/** The strongest of `endpoints`, or why none will do. */
export function strongest(endpoints: readonly OfferedEndpoint[], floor?: Security): Security | { refused: string } {
  const all = offered(endpoints).sort((a, b) => rank(b) - rank(a));
  const best = all[0];
  if (!best) return { refused: `the server offers no endpoint with a security policy we choose (offered: ${endpoints.map((e) => `${MODE_BY_NUMBER[e.securityMode] ?? e.securityMode}/${(e.securityPolicyUri ?? '').split('#')[1]}`).join(', ') || 'none'}); configure securityMode and securityPolicy` };
  if (floor && rank(best) < rank(floor)) {
    return { refused: `the server now offers at best ${best.mode}/${best.policy}, weaker than ${floor.mode}/${floor.policy} used before: refused as a possible downgrade (configure securityMode to accept it)` };
  }
  return best;
}
