/**
 * A person's second factors together: passkeys, the authenticator app (TOTP) and recovery codes,
 * over one credential record each (credentials.ts). What sign-in asks and what operators see.
 */
import type { Sealer } from '../keyring/sealing.js';
import type { Kv } from '../store/kv.js';
import type { Account, Accounts } from './accounts.js';
import { CredentialRecords, credentialsOf, holdsFactor, type StoredCredentials } from './credentials.js';
import { SECOND_FACTORS_PREFIX } from '../store/keys.js';
import { Passkeys } from './passkeys.js';
import { RecoveryCodes } from './recovery-codes.js';
import { TotpCredentials } from './totp.js';

/** What a person has enrolled, without any secret: for sign-in, the account page and operators. */
export interface SecondFactorSummary {
  readonly passkeys: readonly { id: string; name: string; createdAt: number; lastUsedAt?: number }[];
  readonly totp: { createdAt: number; lastUsedAt?: number } | undefined;
  /** How many unused recovery codes are left (0 when none were made). */
  readonly recoveryCodesLeft: number;
}

/** True when a password alone is not enough for this person: they have a passkey or an authenticator app. */
export const hasSecondFactor = (summary: SecondFactorSummary) => summary.passkeys.length > 0 || summary.totp !== undefined;

/** What a record holds, without any secret. */
function summaryOf(record: StoredCredentials): SecondFactorSummary {
  const { passkeys, totp, recovery } = record;
  return {
    passkeys: passkeys.map(({ id, name, createdAt, lastUsedAt }) => ({ id, name, createdAt, ...(lastUsedAt ? { lastUsedAt } : {}) })),
    totp: totp ? { createdAt: totp.createdAt, ...(totp.lastUsedAt ? { lastUsedAt: totp.lastUsedAt } : {}) } : undefined,
    // Codes a record kept from before they went with the last factor (credentials.ts) sign nobody in: none left.
    recoveryCodesLeft: holdsFactor(record) ? (recovery?.hashes.length ?? 0) : 0,
  };
}

/**
 * The account named `username` and its second factors (whether the person has one decides what
 * follows a right password), read with the username's index: one round trip where the store can
 * (Accounts.findByUsernameWith). Undefined for a username nobody has.
 */
export async function findWithSecondFactors(accounts: Accounts, username: string): Promise<{ account: Account | undefined; factors: SecondFactorSummary } | undefined> {
  const found = await accounts.findByUsernameWith(username, [SECOND_FACTORS_PREFIX]);
  return found && { account: found.account, factors: summaryOf(credentialsOf(found.values[0])) };
}

export class SecondFactors {
  readonly records: CredentialRecords;
  readonly totp: TotpCredentials;
  readonly passkeys: Passkeys;
  readonly recoveryCodes: RecoveryCodes;

  constructor(kv: Kv, sealer: Sealer, issuer: string) {
    this.records = new CredentialRecords(kv);
    this.totp = new TotpCredentials(kv, this.records, sealer, new URL(issuer).host);
    this.passkeys = new Passkeys(kv, this.records, issuer, sealer);
    this.recoveryCodes = new RecoveryCodes(this.records);
  }

  async summary(sub: string): Promise<SecondFactorSummary> {
    return summaryOf(await this.records.read(sub));
  }

  /** Removes every second factor (a lost phone): the person signs in with their password again. */
  async reset(sub: string): Promise<void> {
    await this.records.remove(sub);
  }
}
