import { describe, expect, it } from 'vitest';
import { strongest } from './security.js';

const uri = (p: string) => `http://opcfoundation.org/UA/SecurityPolicy#${p}`;
const ep = (mode: number, policy: string) => ({ securityMode: mode, securityPolicyUri: uri(policy) });

describe('OPC UA security, securityMode auto', () => {
  it('chooses SignAndEncrypt with the strongest policy offered, never a deprecated one', () => {
    expect(strongest([ep(1, 'None'), ep(2, 'Aes256_Sha256_RsaPss'), ep(3, 'Basic256Sha256'), ep(3, 'Aes128_Sha256_RsaOaep'), ep(3, 'Basic128Rsa15')])).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes128_Sha256_RsaOaep' });
    expect(strongest([ep(1, 'None'), ep(3, 'Basic256'), ep(3, 'Basic128Rsa15')])).toEqual({ mode: 'None', policy: 'None' });
    expect(strongest([ep(3, 'Basic256')])).toEqual({ refused: expect.stringMatching(/no endpoint with a security policy we choose \(offered: SignAndEncrypt\/Basic256\)/) });
  });

  it('refuses to go below what it chose before in the same run (a downgrade)', () => {
    const floor = { mode: 'SignAndEncrypt' as const, policy: 'Basic256Sha256' as const };
    expect(strongest([ep(1, 'None')], floor)).toEqual({ refused: expect.stringMatching(/at best None\/None, weaker than SignAndEncrypt\/Basic256Sha256 used before/) });
    expect(strongest([ep(3, 'Aes256_Sha256_RsaPss')], floor)).toEqual({ mode: 'SignAndEncrypt', policy: 'Aes256_Sha256_RsaPss' });
  });
});
