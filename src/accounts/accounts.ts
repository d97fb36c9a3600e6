/**
 * Users: a stable opaque `sub`, a case-insensitive unique username, an argon2id password hash and
 * standard claims. The only module that hashes or verifies passwords.
 *
 * Layout: account:<sub> (JSON), account:name:<normalized username> → sub, accounts (set of subs).
 * All durable (no TTL).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import type { Kv } from '../store/kv.js';

export interface Argon2Settings {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

export interface Claims {
  name?: string;
  given_name?: string;
  family_name?: string;
  email?: string;
  email_verified?: boolean;
  locale?: string;
}

export interface Account {
  readonly sub: string;
  readonly username: string;
  readonly passwordHash: string;
  readonly disabled: boolean;
  readonly claims: Claims;
  /** Epoch seconds of the last change to the profile (the `updated_at` claim). */
  readonly updatedAt: number;
}

export class AccountError extends Error {
  override name = 'AccountError';
}

/** The longest password we hash; longer input is rejected before argon2 sees it. */
export const MAX_PASSWORD_LENGTH = 1024;
export const MAX_USERNAME_LENGTH = 128;

const accountKey = (sub: string) => `account:${sub}`;
const nameKey = (username: string) => `account:name:${normalizeUsername(username)}`;
const ACCOUNTS_KEY = 'accounts';
const now = () => Math.floor(Date.now() / 1000);

/** Usernames compare case-insensitively and by Unicode compatibility form (NFKC). */
export function normalizeUsername(username: string): string {
  return username.normalize('NFKC').toLowerCase();
}

export function validateUsername(username: string): string | undefined {
  const trimmed = username.trim();
  if (!trimmed) return 'a username is required';
  if (trimmed !== username) return 'a username cannot start or end with spaces';
  if ([...username].length > MAX_USERNAME_LENGTH) return `a username has at most ${MAX_USERNAME_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(username)) return 'a username cannot contain control characters';
  return undefined;
}

export function validatePassword(password: string): string | undefined {
  if (password.length < 8) return 'a password has at least 8 characters';
  if (password.length > MAX_PASSWORD_LENGTH) return `a password has at most ${MAX_PASSWORD_LENGTH} characters`;
  return undefined;
}

export class Accounts {
  readonly #options: argon2.HashOptions & { raw: false };
  /** Verified against when the username is unknown, so both failures cost the same. */
  readonly #dummyHash: Promise<string>;

  constructor(
    private readonly kv: Kv,
    settings: Argon2Settings,
  ) {
    this.#options = { type: argon2.argon2id, ...settings, raw: false };
    this.#dummyHash = argon2.hash(randomBytes(32).toString('hex'), this.#options);
  }

  async create(username: string, password: string, claims: Claims = {}): Promise<Account> {
    const problem = validateUsername(username) ?? validatePassword(password);
    if (problem) throw new AccountError(problem);
    const sub = randomUUID();
    if (!(await this.kv.set(nameKey(username), sub, { onlyIfAbsent: true }))) {
      throw new AccountError(`the username "${username}" is taken`);
    }
    const account: Account = {
      sub,
      username,
      passwordHash: await argon2.hash(password, this.#options),
      disabled: false,
      claims,
      updatedAt: now(),
    };
    await this.#save(account);
    await this.kv.addToSet(ACCOUNTS_KEY, sub);
    return account;
  }

  async find(sub: string): Promise<Account | undefined> {
    const json = await this.kv.get(accountKey(sub));
    return json ? (JSON.parse(json) as Account) : undefined;
  }

  async findByUsername(username: string): Promise<Account | undefined> {
    if (validateUsername(username)) return undefined;
    const sub = await this.kv.get(nameKey(username));
    return sub ? this.find(sub) : undefined;
  }

  async list(): Promise<Account[]> {
    const subs = await this.kv.members(ACCOUNTS_KEY);
    const accounts = await Promise.all(subs.map((sub) => this.find(sub)));
    return accounts.filter((a): a is Account => !!a).sort((a, b) => a.username.localeCompare(b.username));
  }

  /**
   * Checks a username and password. Unknown users, wrong passwords and disabled accounts all
   * cost one argon2 verification. Re-hashes when the configured parameters have grown.
   */
  async verify(username: string, password: string): Promise<Account | undefined> {
    if (password.length > MAX_PASSWORD_LENGTH) return undefined;
    const account = await this.findByUsername(username);
    const hash = account?.passwordHash ?? (await this.#dummyHash);
    const ok = await argon2.verify(hash, password);
    if (!account || !ok || account.disabled) return undefined;
    if (this.#weakerThanConfigured(account.passwordHash)) {
      const upgraded = { ...account, passwordHash: await argon2.hash(password, this.#options) };
      await this.#save(upgraded);
      return upgraded;
    }
    return account;
  }

  /** True for a hash made with less memory, fewer passes or fewer lanes than configured (never downgrade). */
  #weakerThanConfigured(hash: string): boolean {
    // PHC string: $argon2id$v=19$m=19456,p=1,t=2$salt$hash
    const [, type, , params = ''] = hash.split('$');
    const { m = 0, t = 0, p = 0 } = Object.fromEntries(params.split(',').map((pair) => pair.split('=')));
    const { memoryCost = 0, timeCost = 0, parallelism = 0 } = this.#options;
    return type !== 'argon2id' || +m < memoryCost || +t < timeCost || +p < parallelism;
  }

  async setPassword(username: string, password: string): Promise<Account> {
    const problem = validatePassword(password);
    if (problem) throw new AccountError(problem);
    const account = await this.#require(username);
    const updated = { ...account, passwordHash: await argon2.hash(password, this.#options) };
    await this.#save(updated);
    return updated;
  }

  async setDisabled(username: string, disabled: boolean): Promise<Account> {
    const account = await this.#require(username);
    const updated = { ...account, disabled };
    await this.#save(updated);
    return updated;
  }

  async remove(username: string): Promise<Account> {
    const account = await this.#require(username);
    await this.kv.del([accountKey(account.sub), nameKey(account.username)]);
    await this.kv.removeFromSet(ACCOUNTS_KEY, account.sub);
    return account;
  }

  async #require(username: string): Promise<Account> {
    const account = await this.findByUsername(username);
    if (!account) throw new AccountError(`no user "${username}"`);
    return account;
  }

  async #save(account: Account) {
    await this.kv.set(accountKey(account.sub), JSON.stringify(account));
  }
}

/** The claims released for a set of granted scopes (OIDC Core §5.4), always with `sub`. */
export function claimsFor(account: Account): { sub: string } & Claims & { updated_at: number } {
  return { sub: account.sub, ...account.claims, updated_at: account.updatedAt };
}
