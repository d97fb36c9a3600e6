/**
 * How a sign-in was made, as the ID token says it: `amr` (RFC 8176 values) and `acr`, one of three
 * levels, weakest first:
 *
 * - `pwd`: one factor: a password, or a sign-in through an upstream provider (`fed`: one factor
 *   Latchkey can vouch for, whatever the upstream did);
 * - `mfa`: two factors, at least one of them phishable (password and an authenticator-app code or a
 *   recovery code);
 * - `phr`: phishing-resistant: a passkey was used (alone, with user verification, or after a
 *   password). A passkey is bound to our origin, so it cannot be relayed by a look-alike site. A
 *   device's grant, which is such a relay by design, says `mfa` at most (provider/patches/step-up.ts
 *   deviceGrantsBelowPhr).
 *
 * An app asks for a level with `acr_values` (the lowest level it lists is what it needs); an
 * operator requires `mfa` per client (`require_mfa`) or everywhere (accounts.mfa.required).
 */
export const ACR_VALUES = ['pwd', 'mfa', 'phr'] as const;
export type Acr = (typeof ACR_VALUES)[number];

/** A first factor: a password, or a sign-in through an upstream provider (interactions/upstream.ts). */
export type FirstFactor = 'password' | 'federated';
export type Method = FirstFactor | 'totp' | 'recovery-code' | 'passkey-device-bound' | 'passkey-synced';

const rank = (acr: string | undefined) => ACR_VALUES.indexOf(acr as Acr);

export function assurance(methods: readonly Method[]): { acr: Acr; amr: string[] } {
  const amr = new Set<string>();
  for (const method of methods) {
    if (method === 'password') amr.add('pwd');
    if (method === 'federated') amr.add('fed');
    if (method === 'totp') amr.add('otp');
    // RFC 8176 `hwk` is a hardware-secured key. Passkeys are registered with "none" attestation, so
    // whether one is device-bound (its backup flags) is the authenticator's own unsigned word, which a
    // software authenticator says as readily: every passkey is `swk`, proof of possession of a key,
    // never more than we can vouch for. Its level (`phr`) holds either way: the key is origin-bound.
    if (method === 'passkey-device-bound' || method === 'passkey-synced') amr.add('swk');
  }
  const passkey = amr.has('swk');
  // A passkey is verified with the person's PIN or biometric (user verification is required): two factors.
  const factors = methods.length + (passkey ? 1 : 0);
  if (factors >= 2) amr.add('mfa');
  return { acr: passkey ? 'phr' : factors >= 2 ? 'mfa' : 'pwd', amr: [...amr] };
}

/** The level a request needs: the lowest known one in its acr_values, raised to `mfa` when required. */
export function requiredAcr(acrValues: unknown, mfaRequired: boolean): Acr {
  const asked = typeof acrValues === 'string' ? acrValues.split(' ').filter((value) => rank(value) >= 0) : [];
  const fromApp = asked.length ? ACR_VALUES[Math.min(...asked.map(rank))]! : 'pwd';
  return mfaRequired && rank(fromApp) < rank('mfa') ? 'mfa' : fromApp;
}

export const satisfies = (acr: unknown, required: Acr) => required === 'pwd' || rank(typeof acr === 'string' ? acr : undefined) >= rank(required);
