/**
 * Authenticator apps (TOTP, RFC 6238, through `otpauth`): SHA-1, 6 digits, 30 s, as every app
 * understands. The secret is sealed at rest like the signing keys (keyring/sealing.ts), with the
 * person's sub as its additional data, so a sealed secret cannot be moved to another person.
 *
 * Enrolment is two steps: begin() makes a secret kept (sealed, for ENROLMENT_TTL) until the person
 * proves with a code that their app has it (confirm()). The pending secret belongs to the ceremony
 * that began it (the account page's session): another session of the same person, say a stale one
 * whose cookie was stolen, neither sees it nor confirms it. A code is accepted one step either side of
 * now (clock drift) and only once: its time step is marked used in the store for as long as it
 * could still be accepted (RFC 6238 §5.2), and with it the earlier steps: no code older than one
 * accepted is accepted after it.
 */
import { Secret, TOTP } from 'otpauth';
import { SealError, type Sealer } from '../keyring/sealing.js';
import type { Kv } from '../store/kv.js';
import { totpPendingKey, usedTotpStepKey } from '../store/keys.js';
import { enrolmentStamp, epochSeconds, newEnrolment, type CredentialRecords } from './credentials.js';

const PERIOD = 30;
const WINDOW = 1;
/** How long a person has to type the first code after the QR code is shown. */
export const ENROLMENT_TTL = 600;

/** A pending secret, per person and per ceremony that began it. */
const aad = (sub: string) => `totp:${sub}`;

/**
 * `ok` with the stamp of the enrolment the code fitted (credentials.ts enrolmentStamp); `unreadable`:
 * the secret was sealed under a secret no longer in keys.secrets (an operator must reset it).
 */
export type TotpOutcome = { readonly outcome: 'ok'; readonly enrolment: string } | { readonly outcome: 'wrong' | 'replayed' | 'unreadable' };

export class TotpCredentials {
  constructor(
    private readonly kv: Kv,
    private readonly records: CredentialRecords,
    private readonly sealer: Sealer,
    /** What authenticator apps show the entry as (the issuer's host). */
    private readonly label: string,
  ) {}

  #totp(secret: string, account = ''): TOTP {
    return new TOTP({ issuer: this.label, label: account, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secret) });
  }

  #seal(sub: string, secret: string): string {
    return this.sealer.seal(aad(sub), { kty: 'oct', k: secret });
  }

  #open(sub: string, sealed: string): string {
    return String(this.sealer.open(aad(sub), sealed).k);
  }

  /**
   * A new secret for `sub`, pending until confirmed in the same `ceremony` (the account page's
   * session uid): its otpauth:// URI (for the QR code) and base32 text.
   */
  async begin(sub: string, username: string, ceremony: string): Promise<{ uri: string; secret: string }> {
    const secret = new Secret({ size: 20 }).base32;
    await this.kv.set(totpPendingKey(sub, ceremony), this.#seal(sub, secret), { ttl: ENROLMENT_TTL });
    return { uri: this.#totp(secret, username).toString(), secret };
  }

  /** The secret `ceremony` began, as its otpauth:// URI and text again (a page reload), or undefined. */
  async pending(sub: string, username: string, ceremony: string): Promise<{ uri: string; secret: string } | undefined> {
    const sealed = await this.kv.get(totpPendingKey(sub, ceremony));
    if (!sealed) return undefined;
    const secret = this.#open(sub, sealed);
    return { uri: this.#totp(secret, username).toString(), secret };
  }

  /**
   * Makes the secret `ceremony` began the person's when `code` fits it; false when it does not (or
   * nothing is pending there), and when the person has an authenticator app already: a setup never
   * replaces one (a crafted confirm, or a setup begun before another session set one up). Replacing
   * it would leave signed in what the old one signed in, which only its removal ends; so the person
   * removes it first. Checked before the code's step is spent (the step is the person's, and their
   * app's code in it would be refused as a replay) and again in the write (two setups confirmed at
   * once: one wins). A refused setup's pending secret is dropped.
   */
  async confirm(sub: string, code: string, ceremony: string): Promise<boolean> {
    const [sealed, record] = await Promise.all([this.kv.get(totpPendingKey(sub, ceremony)), this.records.read(sub)]);
    if (!sealed) return false;
    if (record.totp) {
      await this.kv.del([totpPendingKey(sub, ceremony)]);
      return false;
    }
    const step = this.#matchingStep(this.#open(sub, sealed), code);
    if (step === undefined || !(await this.#spend(sub, step, ceremony))) return false;
    const added = await this.records.update(sub, (current) => (current.totp ? undefined : { next: { ...current, totp: { ...newEnrolment(), sealed, addedIn: ceremony } }, result: true }));
    await this.kv.del([totpPendingKey(sub, ceremony)]);
    return added === true;
  }

  /** Checks `code` for the sign-in `by` (its interaction), which may offer a code it spent again (see #spend). */
  async verify(sub: string, code: string, by: string): Promise<TotpOutcome> {
    const { totp } = await this.records.read(sub);
    if (!totp) return { outcome: 'wrong' };
    let secret: string;
    try {
      secret = this.#open(sub, totp.sealed);
    } catch (error) {
      if (error instanceof SealError) return { outcome: 'unreadable' };
      throw error;
    }
    const step = this.#matchingStep(secret, code);
    if (step === undefined) return { outcome: 'wrong' };
    if (!(await this.#spend(sub, step, by))) return { outcome: 'replayed' };
    // A secret sealed under an older keys.secrets entry is sealed again under the first one, so the
    // old entry can be retired once every person has signed in (as the key ring is re-sealed).
    // Only onto the enrolment the code fitted: one made meanwhile keeps its own secret.
    const enrolment = enrolmentStamp(totp)!;
    const sealed = this.sealer.isCurrent(totp.sealed) ? totp.sealed : this.#seal(sub, secret);
    await this.records.update(sub, (current) =>
      current.totp && enrolmentStamp(current.totp) === enrolment
        ? { next: { ...current, totp: { ...current.totp, sealed, lastUsedAt: epochSeconds() } }, result: true }
        : undefined,
    );
    return { outcome: 'ok', enrolment };
  }

  /**
   * Seals the person's authenticator-app secret again under the first of keys.secrets when it is
   * sealed under another of them (KEYS_SECRETS rotated), without waiting for their next sign-in
   * (verify does it then), so that the old secret can be dropped. Compare-and-set, onto the
   * enrolment read: one made meanwhile keeps its own. A secret no configured secret opens is left
   * as it is. Whether it was sealed again.
   */
  async reseal(sub: string): Promise<boolean> {
    const resealed = await this.records.update(sub, (current) => {
      const { totp } = current;
      if (!totp || this.sealer.isCurrent(totp.sealed)) return undefined;
      let secret: string;
      try {
        secret = this.#open(sub, totp.sealed);
      } catch (error) {
        if (error instanceof SealError) return undefined;
        throw error;
      }
      return { next: { ...current, totp: { ...totp, sealed: this.#seal(sub, secret) } }, result: true };
    });
    return resealed ?? false;
  }

  async remove(sub: string): Promise<void> {
    await this.records.update(sub, (current) => {
      if (!current.totp) return undefined;
      const { totp: _removed, ...rest } = current;
      return { next: rest, result: true };
    });
  }

  /**
   * The time step the code belongs to (within the window), or undefined. The match and the step it
   * is counted from are read at one moment: read apart, a code checked as its step ended was counted
   * one step late, and that later step (the person's next code) was spent with it.
   */
  #matchingStep(secret: string, code: string): number | undefined {
    const token = code.replace(/\s/g, '');
    if (!/^\d{6}$/.test(token)) return undefined;
    const timestamp = Date.now();
    const delta = this.#totp(secret).validate({ token, timestamp, window: WINDOW });
    return delta === null ? undefined : TOTP.counter({ period: PERIOD, timestamp }) + delta;
  }

  /**
   * Marks the time step used; false when it already was (a replay). Kept while the code could be
   * accepted. The earlier steps still inside the window are marked with it: once a code is accepted,
   * an older one (shown on the person's app a moment before, and seen over their shoulder, or
   * relayed) no longer is, as the verifier keeps the last step it accepted and takes only later
   * ones (RFC 6238 §5.2 forbids the same code twice; this forbids going back too). Two codes of
   * different steps sent at the same moment may both pass: each is still used once.
   * The mark names who spent the step (`by`: a sign-in's interaction, an enrolment's session), who
   * may offer its code again: when the store went away between the spend and the sign-in's next
   * write, the person's retry must not be told "already used" (as recovery codes' `spent`); no other
   * sign-in can use it.
   */
  async #spend(sub: string, step: number, by: string): Promise<boolean> {
    const ttl = PERIOD * (2 * WINDOW + 2);
    const key = usedTotpStepKey(sub, step);
    if (!(await this.kv.set(key, by, { ttl, onlyIfAbsent: true })) && (await this.kv.get(key)) !== by) return false;
    await Promise.all(Array.from({ length: 2 * WINDOW }, (_, i) => this.kv.set(usedTotpStepKey(sub, step - 1 - i), '1', { ttl })));
    return true;
  }
}
