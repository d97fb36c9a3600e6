/**
 * A person's second-factor credentials: one durable record per person (`mfa:<sub>`), changed only
 * by compare-and-set, so that concurrent sign-ins cannot both spend one recovery code or roll a
 * passkey's sign counter back. The TOTP secret in it is sealed (see totp.ts); recovery codes are
 * hashes (recovery-codes.ts); passkeys hold only public keys.
 */
import { randomUUID } from 'node:crypto';
import type { Kv } from '../store/kv.js';
import { secondFactorsKey } from '../store/keys.js';

export interface StoredPasskey {
  /** The credential id, base64url. */
  readonly id: string;
  /** The COSE public key, base64url. */
  readonly publicKey: string;
  readonly counter: number;
  readonly transports?: string[];
  readonly name: string;
  /** singleDevice (bound to one authenticator) or multiDevice (synced), as the authenticator says (no attestation): `swk` in amr either way (assurance.ts). */
  readonly deviceType: 'singleDevice' | 'multiDevice';
  readonly createdAt: number;
  readonly lastUsedAt?: number;
  /** The uid of the session that added it on the account page (page/account-page.ts asStrongAsNow). */
  readonly addedIn?: string;
}

/** One enrolment of an authenticator app, or one set of recovery codes. */
export interface Enrolment {
  /** Random, new at each enrolment (records made before 2026-11-30 have none: their createdAt stands in). */
  readonly id?: string;
  readonly createdAt: number;
  /** The uid of the session that added it on the account page (an authenticator app's: page/account-page.ts asStrongAsNow). */
  readonly addedIn?: string;
}

export interface StoredCredentials {
  readonly totp?: Enrolment & { readonly sealed: string; readonly lastUsedAt?: number };
  readonly passkeys: readonly StoredPasskey[];
  readonly recovery?: Enrolment & {
    readonly hashes: readonly string[];
    /** The code spent last and the sign-in that spent it (recovery-codes.ts use). */
    readonly spent?: { readonly hash: string; readonly by: string };
  };
}

const EMPTY: StoredCredentials = { passkeys: [] };

/** A record as read (its JSON, or nothing: no second factor). */
export const credentialsOf = (json: string | undefined): StoredCredentials => (json ? (JSON.parse(json) as StoredCredentials) : EMPTY);

export const epochSeconds = () => Math.floor(Date.now() / 1000);

export const newEnrolment = (): Enrolment => ({ id: randomUUID(), createdAt: epochSeconds() });

/**
 * Which enrolment a sign-in used, for its resume to tell whether it is still the person's: an
 * authenticator app removed and set up again, or recovery codes made anew, while the sign-in waited
 * is another enrolment (session-credentials.ts). Undefined when there is none.
 */
export const enrolmentStamp = (enrolment: Enrolment | undefined): string | undefined => enrolment && (enrolment.id ?? `t${enrolment.createdAt}`);

/** Whether a record holds a second factor recovery codes can stand in for: a passkey or an authenticator app. */
export const holdsFactor = (record: StoredCredentials): boolean => record.passkeys.length > 0 || record.totp !== undefined;

/**
 * Recovery codes stand in for a passkey or an authenticator app, so they go with the last of those,
 * by whichever path it goes (the account page, an operator's reset, the account's removal): kept,
 * they worked again, unseen, beside the next factor added (a thief's codes, made while the phone
 * they took was enrolled). Codes a record kept from before this rule (no factor beside them) are
 * dropped at its next write, the enrolment of a factor included, unless that write makes new ones.
 * Eleventh pass over the left-open list.
 */
function withoutStrandedCodes(current: StoredCredentials, next: StoredCredentials): StoredCredentials {
  if (!next.recovery || (holdsFactor(next) && (holdsFactor(current) || next.recovery !== current.recovery))) return next;
  const { recovery: _dropped, ...rest } = next;
  return rest;
}

export class CredentialRecords {
  constructor(private readonly kv: Kv) {}

  async read(sub: string): Promise<StoredCredentials> {
    return credentialsOf(await this.kv.get(secondFactorsKey(sub)));
  }

  /**
   * Applies `change` to the current record and writes it only if nobody changed it meanwhile
   * (retrying on a race). `change` returns undefined to write nothing; update returns what it did.
   */
  async update<T>(sub: string, change: (current: StoredCredentials) => { next: StoredCredentials; result: T } | undefined): Promise<T | undefined> {
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const json = await this.kv.get(secondFactorsKey(sub));
      const current = json ? (JSON.parse(json) as StoredCredentials) : EMPTY;
      const outcome = change(current);
      if (!outcome) return undefined;
      const next = withoutStrandedCodes(current, outcome.next);
      // Bounded: a write Redis runs after this request answered 503 (paused past the command timeout)
      // is not made: new recovery codes never shown do not replace the ones the person holds, an
      // authenticator app said not set up is not (its confirmation sent again sets it up).
      if (await this.kv.compareAndSet(secondFactorsKey(sub), json, JSON.stringify(next), undefined, { bounded: true })) return outcome.result;
    }
    throw new Error('second-factor record kept changing; try again');
  }

  /** Forgets every second factor of a person (an operator's reset, or the account's removal). */
  async remove(sub: string): Promise<void> {
    await this.kv.del([secondFactorsKey(sub)]);
  }
}
