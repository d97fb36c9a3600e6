/**
 * Passkeys (WebAuthn, through @simplewebauthn/server): registration on the account page, and
 * authentication on the login page, with discoverable credentials (the authenticator names the
 * person: the user handle is their sub) or, as a second factor, the person's own credentials.
 * The relying-party ID and origin are the issuer's host and origin. User verification is required,
 * so a passkey alone is two factors (possession and the PIN or biometric that unlocked it).
 *
 * Every challenge is single-use and lives CHALLENGE_TTL: it is consumed (atomically) before the
 * response is verified. None is written anywhere: it is sealed (keys.secrets, keyring/sealing.ts)
 * with its expiry and 16 random bytes, bound to its ceremony (a sign-in's: the interaction's uid, the
 * login page's at every view of it and the second-factor page's; a registration's: the person), so it
 * opens only for that ceremony and before it expires; its use writes a marker of its random bytes
 * (set-if-absent, living past its expiry), and a second use finds the marker. A registration's was
 * kept in the store under the person until the eighteenth passes (h14): every view of the account
 * page replaced it, so a passkey made in a tab or on a device that showed the page before another was
 * refused after the authenticator had made it.
 *
 * A credential id belongs to one person: registration claims it in an index (credential id → sub,
 * set-if-absent) and refuses an id already known, to this person or another (WebAuthn L3 §7.1 step
 * 26), so nobody can attach someone else's credential id (they appear in allowCredentials lists) to
 * their own account. The claim is made for CLAIM_TTL before the record is written, and durable once
 * the record holds the passkey; when the passkey is removed it is released once the record no
 * longer holds the passkey (never before, nor made to expire before: a passkey held unclaimed could
 * be claimed by another person). One left behind by a reset, a removed account or a removal cut off
 * is taken over once its owner's record no longer holds the passkey. A claim not made durable (passkeys registered before the index
 * existed; a registration cut off by the store between the two writes) is made so at the passkey's
 * next sign-in. Before the thirteenth blips pass the claim was durable from the start, and a
 * registration cut off before its record's write left it for ever, naming a passkey nobody holds.
 */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { decodeClientDataJSON } from '@simplewebauthn/server/helpers';
import { randomBytes } from 'node:crypto';
import type { Sealer } from '../keyring/sealing.js';
import type { Kv } from '../store/kv.js';
import { epochSeconds, type CredentialRecords, type StoredPasskey } from './credentials.js';
import { passkeyOwnerKey, usedPasskeyChallengeKey } from '../store/keys.js';

const CHALLENGE_TTL = 300;
/**
 * How long a registration's claim of a credential id lives until the record holds the passkey: what
 * a registration cut off before that write leaves expires. Long, as a claim the store's blip kept
 * from being made durable lives this long, unless the passkey signs in first.
 */
const CLAIM_TTL = 7 * 24 * 3600;
const MAX_NAME_LENGTH = 64;
/**
 * The most passkeys one person holds: each is kept in their credential record (read at every
 * sign-in with a passkey and listed to the browser at a second factor) and claims a durable owner
 * key. Before the third store-growth pass a session could add them without end.
 */
export const MAX_PASSKEYS = 20;
/** How long a used challenge's marker outlives its expiry: instances' clocks may differ by this much. */
const CLOCK_SKEW = 60;
/**
 * The transports WebAuthn names (L3 §5.8.4 AuthenticatorTransport, with the library's `cable`): a
 * registration's list is the browser's word, kept only for the hints it gives later ceremonies.
 */
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
/** What a registration said (or a record holds) of the authenticator's transports, as a list of known names; undefined for none. */
function transportsOf(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const known = [...new Set(value.filter((transport): transport is string => typeof transport === 'string' && TRANSPORTS.has(transport)))];
  return known.length ? known : undefined;
}
/** A stored passkey as a credential descriptor for allowCredentials and excludeCredentials. */
const descriptor = ({ id, transports }: StoredPasskey) => {
  const known = transportsOf(transports);
  return known ? { id, transports: known } : { id };
};

/** What a challenge is sealed under: its ceremony, so it opens for no other (a sign-in's uid, or a registration's person). */
const challengeLabel = (ceremony: string) => `passkey-challenge:signin:${ceremony}`;
const registrationLabel = (sub: string) => `passkey-challenge:register:${sub}`;

/** Why a registration was refused: it did not verify, the credential is registered already, or the person holds MAX_PASSKEYS. */
export type PasskeyRefusal = 'unverified' | 'already-registered' | 'too-many';

export interface PasskeySignIn {
  readonly sub: string;
  readonly passkey: StoredPasskey;
}

/**
 * Whether a ceremony's response says it ran in a frame of another origin (clientDataJSON's
 * crossOrigin; a response that cannot say counts as one). Latchkey's pages refuse to be framed
 * (frame-ancestors 'none'), so no browser answers them so: WebAuthn L3 §7.1 step 10 and §7.2 step 13
 * have a relying party that expects no framing refuse it (the library checks only a topOrigin given).
 */
function ranInAFrame(response: Record<string, unknown>): boolean {
  const clientData = isObject(response.response) ? response.response.clientDataJSON : undefined;
  if (typeof clientData !== 'string') return true;
  try {
    // A boolean (WebAuthn L3 §5.8.1): anything but false, or its absence, is refused ("true", 1: red team).
    const { crossOrigin } = decodeClientDataJSON(clientData) as { crossOrigin?: unknown };
    return crossOrigin !== undefined && crossOrigin !== false;
  } catch {
    return true;
  }
}

export class Passkeys {
  readonly #rpId: string;
  readonly #origin: string;

  constructor(
    private readonly kv: Kv,
    private readonly records: CredentialRecords,
    issuer: string,
    private readonly sealer: Sealer,
  ) {
    const url = new URL(issuer);
    this.#rpId = url.hostname;
    this.#origin = url.origin;
  }

  /** A new challenge sealed under `label`, unexpired for CHALLENGE_TTL. */
  #seal(label: string): string {
    return this.sealer.sealValue(label, { n: randomBytes(16).toString('base64url'), exp: Math.floor(Date.now() / 1000) + CHALLENGE_TTL });
  }

  /** Options for navigator.credentials.create(), for a new passkey of `sub`; none when they hold MAX_PASSKEYS. */
  async registrationOptions(sub: string, username: string): Promise<PublicKeyCredentialCreationOptionsJSON | undefined> {
    const { passkeys } = await this.records.read(sub);
    if (passkeys.length >= MAX_PASSKEYS) return undefined;
    const options = await generateRegistrationOptions({
      rpName: 'Latchkey',
      rpID: this.#rpId,
      userName: username,
      userID: new TextEncoder().encode(sub),
      attestationType: 'none',
      excludeCredentials: passkeys.map(descriptor),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
      // Sealed, not stored: each view of the account page (tabs, devices) offers one of its own.
      challenge: this.#seal(registrationLabel(sub)),
    });
    return options;
  }

  /** Verifies and stores a new passkey (`addedIn`: the uid of the session adding it); or why not. */
  async register(sub: string, name: string, response: unknown, addedIn?: string): Promise<StoredPasskey | PasskeyRefusal> {
    const expectedChallenge = await this.#spendSealed(registrationLabel(sub), response);
    if (!expectedChallenge || !isObject(response) || ranInAFrame(response)) return 'unverified';
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response: response as unknown as RegistrationResponseJSON,
        expectedChallenge,
        expectedOrigin: this.#origin,
        expectedRPID: this.#rpId,
        requireUserVerification: true,
      });
    } catch {
      return 'unverified';
    }
    if (!verified.verified) return 'unverified';
    const { credential, credentialDeviceType } = verified.registrationInfo;
    // The library passes the response's transports on unchecked: a number was a 500 (spread), a string its letters.
    const transports = transportsOf(credential.transports);
    if ((await this.records.read(sub)).passkeys.length >= MAX_PASSKEYS) return 'too-many';
    if (!(await this.#claim(credential.id, sub))) return 'already-registered';
    const passkey: StoredPasskey = {
      id: credential.id,
      publicKey: Buffer.from(credential.publicKey).toString('base64url'),
      counter: credential.counter,
      ...(transports && { transports }),
      name: name.trim().slice(0, MAX_NAME_LENGTH) || 'Passkey',
      deviceType: credentialDeviceType,
      createdAt: epochSeconds(),
      ...(addedIn !== undefined && { addedIn }),
    };
    // The cap checked again as the record is written: registrations at once do not pass it together.
    let refusal = 'already-registered' as PasskeyRefusal;
    const added = await this.records.update(sub, (current) => {
      if (current.passkeys.some((p) => p.id === passkey.id)) return undefined;
      if (current.passkeys.length < MAX_PASSKEYS) return { next: { ...current, passkeys: [...current.passkeys, passkey] }, result: passkey };
      refusal = 'too-many';
      return undefined;
    });
    if (added) {
      await this.kv.compareAndSet(passkeyOwnerKey(passkey.id), sub, sub);
      return added;
    }
    // Not theirs after all: the claim goes (they do not hold the passkey).
    if (refusal === 'too-many') await this.kv.deleteIfEquals(passkeyOwnerKey(passkey.id), sub);
    return refusal;
  }

  /**
   * Makes `sub` the owner of a credential id, for CLAIM_TTL (register makes it durable): true when
   * it is theirs now (newly, or already), false when another person's record holds it. A claim whose
   * owner no longer holds the passkey (reset, account removed) is taken over.
   */
  async #claim(credentialId: string, sub: string): Promise<boolean> {
    const key = passkeyOwnerKey(credentialId);
    if (await this.kv.set(key, sub, { onlyIfAbsent: true, ttl: CLAIM_TTL })) return true;
    const owner = await this.kv.get(key);
    if (owner === undefined) return this.#claim(credentialId, sub);
    if (owner === sub) return true;
    if ((await this.records.read(owner)).passkeys.some((p) => p.id === credentialId)) return false;
    return (await this.kv.compareAndSet(key, owner, sub, CLAIM_TTL)) || this.#claim(credentialId, sub);
  }

  /**
   * Options for navigator.credentials.get() in a sign-in ceremony `ceremony` (an interaction's uid):
   * without `sub`, any discoverable credential (the login page); with it, only theirs (second factor).
   */
  async authenticationOptions(ceremony: string, sub?: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const allowCredentials = sub ? (await this.records.read(sub)).passkeys.map(descriptor) : undefined;
    // Sealed, not stored: the login page shows a new one at every view without writing anything.
    const challenge = this.#seal(challengeLabel(ceremony));
    return generateAuthenticationOptions({ rpID: this.#rpId, userVerification: 'required', challenge, ...(allowCredentials ? { allowCredentials } : {}) });
  }

  /**
   * The challenge a response answers, if it is one sealed under `label` (its ceremony), unexpired
   * and not used before; used now (atomically, before anything is verified).
   */
  async #spendSealed(label: string, response: unknown): Promise<string | undefined> {
    const clientData = isObject(response) && isObject(response.response) ? response.response.clientDataJSON : undefined;
    if (typeof clientData !== 'string' || clientData.length > 4096) return undefined;
    let challenge: unknown;
    let opened: unknown;
    try {
      challenge = decodeClientDataJSON(clientData).challenge;
      if (typeof challenge !== 'string') return undefined;
      opened = this.sealer.openValue(label, Buffer.from(challenge, 'base64url').toString('utf8'), 'passkey challenge');
    } catch {
      return undefined; // not JSON, not sealed by us, or for another ceremony
    }
    if (!isObject(opened) || typeof opened.n !== 'string' || typeof opened.exp !== 'number') return undefined;
    const left = opened.exp - Math.floor(Date.now() / 1000);
    if (left <= 0) return undefined;
    // Bounded: a mark Redis writes after this request answered 503 (paused past the command
    // timeout) would refuse the browser's retry of the same assertion.
    const fresh = await this.kv.set(usedPasskeyChallengeKey(opened.n), '1', { ttl: left + CLOCK_SKEW, onlyIfAbsent: true, bounded: true });
    return fresh ? challenge : undefined;
  }

  /**
   * Verifies a sign-in assertion for the ceremony; with `sub`, only that person's passkey counts.
   * Records the new sign counter and the time of use. Undefined when it does not verify.
   */
  async authenticate(ceremony: string, response: unknown, sub?: string): Promise<PasskeySignIn | undefined> {
    const expectedChallenge = await this.#spendSealed(challengeLabel(ceremony), response);
    if (!expectedChallenge || !isObject(response) || ranInAFrame(response)) return undefined;
    const assertion = response as unknown as AuthenticationResponseJSON;
    const owner = sub ?? userHandleSub(assertion);
    if (!owner || typeof assertion.id !== 'string') return undefined;
    // The person was known before the ceremony (a second factor): a user handle, when the
    // authenticator gives one, must be theirs too (WebAuthn L3 §7.2 step 6).
    if (sub && assertion.response?.userHandle !== undefined && assertion.response.userHandle !== null && userHandleSub(assertion) !== sub) return undefined;
    const passkey = (await this.records.read(owner)).passkeys.find((p) => p.id === assertion.id);
    if (!passkey) return undefined;
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response: assertion,
        expectedChallenge,
        expectedOrigin: this.#origin,
        expectedRPID: this.#rpId,
        credential: { id: passkey.id, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: passkey.counter },
        requireUserVerification: true,
      });
    } catch {
      return undefined; // a cloned authenticator's counter going backwards lands here too
    }
    if (!verified.verified) return undefined;
    const used = await this.records.update(owner, (current) => {
      const stored = current.passkeys.find((p) => p.id === passkey.id);
      // Removed meanwhile, or another sign-in moved the counter past this one: refused.
      if (!stored || (stored.counter > 0 && verified.authenticationInfo.newCounter <= stored.counter)) return undefined;
      const updated: StoredPasskey = { ...stored, counter: verified.authenticationInfo.newCounter, lastUsedAt: epochSeconds() };
      return { next: { ...current, passkeys: current.passkeys.map((p) => (p.id === stored.id ? updated : p)) }, result: updated };
    });
    if (!used) return undefined;
    // The claim made durable (a registration cut off before it did), or made: a passkey registered
    // before the owner index existed, or whose claim expired so.
    const claim = passkeyOwnerKey(used.id);
    if (!(await this.kv.compareAndSet(claim, owner, owner))) await this.kv.set(claim, owner, { onlyIfAbsent: true });
    return { sub: owner, passkey: used };
  }

  /** Removes one of the person's passkeys; false when they have none with that id. */
  async remove(sub: string, id: string): Promise<boolean> {
    // The claim let go only after the record (a passkey held unclaimed could be registered by anyone:
    // review of the thirteenth passes), and left durable until then: one made to expire first ran
    // out under a passkey still held when the record's write was cut off. Cut off after the record,
    // a durable claim of nothing is left, which #claim takes over (as one a reset leaves).
    const claim = passkeyOwnerKey(id);
    const removed = await this.records.update(sub, (current) =>
      current.passkeys.some((p) => p.id === id) ? { next: { ...current, passkeys: current.passkeys.filter((p) => p.id !== id) }, result: true } : undefined,
    );
    if (removed !== true) return false;
    await this.kv.deleteIfEquals(claim, sub);
    return true;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The sub a discoverable credential's user handle names (the userID set at registration). */
function userHandleSub(assertion: AuthenticationResponseJSON): string | undefined {
  const handle = assertion.response?.userHandle;
  if (typeof handle !== 'string' || !/^[\w-]{1,200}$/.test(handle)) return undefined;
  return Buffer.from(handle, 'base64url').toString('utf8');
}
