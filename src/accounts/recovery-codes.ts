/**
 * Recovery codes: ten one-time codes, shown once, stored as SHA-256 hashes. Each code is 80 random
 * bits, so (as for client secrets) a fast hash is right: there is no dictionary to try, and argon2
 * over ten codes per attempt would make sign-in slow. A code is spent by removing its hash from the
 * person's record with compare-and-set: of two concurrent uses exactly one succeeds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { enrolmentStamp, holdsFactor, newEnrolment, type CredentialRecords, type StoredCredentials } from './credentials.js';

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'; // no 0/o, 1/l/i: read from paper

function newCode(): string {
  // 16 characters from 31 symbols ≈ 79 bits; grouped by four for reading aloud or typing.
  const bytes = randomBytes(32);
  let code = '';
  for (const byte of bytes) {
    if (byte >= 248) continue; // 248 = 8 × 31: keeps the choice uniform
    code += ALPHABET[byte % ALPHABET.length];
    if (code.length === 16) break;
  }
  return code.length === 16 ? code.match(/.{4}/g)!.join('-') : newCode();
}

/** What a person types, in the form the hash is of: no spaces or dashes, lower case. */
const canonical = (code: string) => code.replace(/[\s-]/g, '').toLowerCase();
const hash = (code: string) => createHash('sha256').update(`latchkey recovery code:${canonical(code)}`).digest('base64url');

export class RecoveryCodes {
  constructor(private readonly records: CredentialRecords) {}

  /** Ten new codes (replacing any earlier ones): returned this once, stored only as hashes. */
  async generate(sub: string): Promise<string[]> {
    return (await this.#made(sub, () => true))!;
  }

  /**
   * Ten new codes in place of the set `stamp` names (enrolmentStamp; undefined: none), read before
   * the request did anything; undefined when another set replaced it meanwhile. Two requests at once
   * (two tabs, a double click) each showed its own codes, and only the last written worked: a person
   * keeping the other page's was left with none that worked.
   */
  async replace(sub: string, stamp: string | undefined): Promise<string[] | undefined> {
    return this.#made(sub, (current) => enrolmentStamp(current.recovery) === stamp);
  }

  async #made(sub: string, replaces: (current: StoredCredentials) => boolean): Promise<string[] | undefined> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newCode);
    const made = await this.records.update(sub, (current) =>
      replaces(current) ? { next: { ...current, recovery: { ...newEnrolment(), hashes: codes.map(hash) } }, result: true } : undefined,
    );
    return made ? codes : undefined;
  }

  /**
   * Spends a code for the sign-in `by` (its interaction): once per code, the stamp of the set it
   * belonged to (credentials.ts enrolmentStamp); undefined for anything else. The sign-in that spent
   * the code last may offer it again: when the store went away between the spend and the sign-in's
   * next write, its retry must not find the code gone (another sign-in still cannot use it).
   * Codes stand in for a passkey or an authenticator app: they go with the last of those
   * (credentials.ts), and ones a record kept from before that rule sign nobody in (read in the same
   * compare-and-set as the spend, so a removal meanwhile counts). Before, the enrolment prompt of an
   * app requiring a second factor took one posted to its second-factor step (tenth pass over today's
   * web pages).
   */
  async use(sub: string, code: string, by: string): Promise<string | undefined> {
    if (typeof code !== 'string' || canonical(code).length !== 16) return undefined;
    const offered = hash(code);
    return this.records.update(sub, (current) => {
      const { recovery } = current;
      if (!holdsFactor(current)) return undefined;
      if (recovery?.spent?.hash === offered && recovery.spent.by === by) return { next: current, result: enrolmentStamp(recovery) };
      if (!recovery?.hashes.includes(offered)) return undefined;
      return { next: { ...current, recovery: { ...recovery, hashes: recovery.hashes.filter((h) => h !== offered), spent: { hash: offered, by } } }, result: enrolmentStamp(recovery) };
    });
  }

  async remove(sub: string): Promise<void> {
    await this.records.update(sub, (current) => {
      if (!current.recovery) return undefined;
      const { recovery: _removed, ...rest } = current;
      return { next: rest, result: true };
    });
  }
}
