/**
 * Users: a stable opaque `sub`, a unique username, an argon2id password hash and standard
 * claims. The only module that hashes or verifies passwords.
 *
 * Usernames are compared in their PRECIS UsernameCaseMapped form (RFC 8265) and a new one is
 * refused when it looks like an existing one (TR 39 skeleton); see usernames.ts.
 *
 * Layout: account:<sub> (JSON), account:name:<enforced username> → sub,
 * account:skeleton:<skeleton> → sub, accounts (set of subs). All durable (no TTL).
 * Accounts made before PRECIS are keyed account:name:<NFKC, lowercase>; lookups fall back to
 * that form, and their skeletons are indexed once (accounts:skeletons marks it done).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { domainToASCII, domainToUnicode } from 'node:url';
import argon2 from 'argon2';
import { epochSeconds as now, untilSecond } from '../clock.js';
import { getViaInTurn, holding, STILL_HELD, type Kv } from '../store/kv.js';
import { ACCOUNT_PREFIX, ACCOUNTS_KEY, accountKey, emailClaimKey, emailLookKey, EMAILS_INDEXED_KEY, SKELETONS_INDEXED_KEY, usernameKey, usernameMakingKey, usernameSkeletonKey } from '../store/keys.js';
import type { KeepsOwed } from '../store/due-endings.js';
import { processArgon2Slots, type Argon2Slots } from './argon2-slots.js';
import { enforceUsername, legacyUsernameForm, MAX_USERNAME_LENGTH, nonAscii, usernameSkeleton, usernameSkeletons } from './usernames.js';
import { weakPassword } from './weak-passwords.js';

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
  /** Empty for an account made by an upstream sign-in, until a password is set. */
  readonly passwordHash: string;
  readonly disabled: boolean;
  readonly claims: Claims;
  /** Epoch seconds of the last change to the profile (the `updated_at` claim). */
  readonly updatedAt: number;
  /**
   * Epoch seconds up to which everything issued to the person has ended: every token, code, device
   * code and refresh token issued, and every session signed in, at or before it (the person was
   * disabled, or an operator set their password). Checked wherever the account is read for one
   * (provider.ts findAccount, sessions.ts signedIn), so it costs no read of its own.
   */
  readonly endedAt?: number;
  /**
   * Epoch seconds up to which every token, code and refresh token issued to the person has ended,
   * their sessions kept (an operator revoked every grant they gave: `latchkey grants revoke --user`).
   */
  readonly grantsEndedAt?: number;
  /**
   * Per client id, epoch seconds up to which every token, code and refresh token issued to the person
   * for that client has ended, and every consent they gave it, their sessions kept (the person
   * withdrew the app's access on the account page, or an operator ran `latchkey grants revoke --user
   * --client`). Kept as long as a grant could live after it, then dropped at the next such write.
   */
  readonly clientGrantsEndedAt?: Readonly<Record<string, number>>;
  /**
   * For an account an upstream's first sign-in made: that identity (links.ts identityMark, a digest of
   * the upstream's id, issuer and the person's sub there), so that a sign-in of it finds the account
   * when the link was never written (the first sign-in cut off between the two writes); dropped when
   * a link of the account is removed (forgetMadeFor).
   */
  readonly madeFor?: string;
}

/** What records, before anything else, that every token issued to a person up to now has ended (revocation/list.ts). */
export interface SubjectEndings {
  revokeSubject(sub: string): Promise<unknown>;
  /** Keeps the ending owed while the account's write between its two entries runs (OwedPersonEnding). */
  readonly owed?: KeepsOwed | undefined;
}

/** What records, before anything else, that every token issued to a person for one client up to now has ended (revocation/list.ts). */
export interface ClientGrantEndings {
  revokeWithdrawn(sub: string, clientId: string): Promise<unknown>;
  readonly owed?: KeepsOwed | undefined;
}

/**
 * A person's ending (every token of theirs, or of theirs for one client: `withdrawnFrom`) kept owed
 * while the account's write between its two revocation-list entries runs: cut off after the write
 * (503), a token issued between the two entries was on no entry, and a change sent again may find
 * nothing to do (a password already set, grants already revoked). The sweep writes the entry once
 * more (finishPersonEnding); had the write not been made, that ends their tokens up to then: more,
 * never less.
 */
export interface OwedPersonEnding {
  readonly personEnded: string;
  readonly withdrawnFrom?: string;
}

/** An owed person's ending, finished: the revocation list's entry written once more, up to now. */
export function finishPersonEnding(endings: SubjectEndings & ClientGrantEndings, { personEnded, withdrawnFrom }: OwedPersonEnding): Promise<unknown> {
  return withdrawnFrom === undefined ? endings.revokeSubject(personEnded) : endings.revokeWithdrawn(personEnded, withdrawnFrom);
}

/** The person's cutoff for one client's tokens, consents and grants (clientGrantsEndedAt), if any. */
function clientCutoff(account: Pick<Account, 'clientGrantsEndedAt'>, clientId: unknown): number | undefined {
  const ends = account.clientGrantsEndedAt;
  return typeof clientId === 'string' && ends && Object.hasOwn(ends, clientId) ? ends[clientId] : undefined;
}

/**
 * The person's cutoff for a token (`endedAt` or `grantsEndedAt`, the later; with `clientId`, that
 * client's `clientGrantsEndedAt` too) or for a session (`endedAt`).
 */
function cutoff(account: Pick<Account, 'endedAt' | 'grantsEndedAt' | 'clientGrantsEndedAt'>, what: 'token' | 'session', clientId?: unknown): number | undefined {
  const ends = [account.endedAt, ...(what === 'token' ? [account.grantsEndedAt, clientCutoff(account, clientId)] : [])].filter((at): at is number => at !== undefined);
  return ends.length ? Math.max(...ends) : undefined;
}

/**
 * Whether a token, code or consent issued at `issuedAt` (its `iat`, epoch seconds), or with `what`
 * 'session' a session signed in then (its `loginTs`), ended with the person (`endedAt`,
 * `grantsEndedAt`; for a token of `clientId`, the person's cutoff for that client too,
 * `clientGrantsEndedAt`). Something of the same second ends too (whether it came before cannot be
 * told): see untilEndingPassed.
 */
export function endedWithPerson(account: Pick<Account, 'endedAt' | 'grantsEndedAt' | 'clientGrantsEndedAt'>, issuedAt: unknown, what: 'token' | 'session' = 'token', clientId?: unknown): boolean {
  const at = cutoff(account, what, clientId);
  return at !== undefined && (typeof issuedAt !== 'number' || issuedAt <= at);
}

/**
 * Resolves once the second of the person's cutoff, and the second it is called in, have passed (at
 * most a second, once, for an operator's action): what they are issued after the command answers
 * (signed in again with the new password, enabled again) is then of a later second than the cutoff
 * and than every revocation list entry written with it before the call (the entry written after
 * the account may be of the next second: `iat` at or before it would be refused).
 */
export async function untilEndingPassed(account: Pick<Account, 'endedAt' | 'grantsEndedAt'>): Promise<void> {
  const at = cutoff(account, 'token');
  if (at === undefined) return;
  await untilSecond(Math.max(at, now()) + 1);
}

/**
 * Which password the account has, without the hash: a digest of the stored hash, so that a sign-in
 * can say which password it verified and its resume can tell whether that password is still the
 * account's (a new password, even the same one, has a new salt and so a new stamp). Undefined
 * for an account without a password.
 */
export function passwordStamp(account: Pick<Account, 'passwordHash'>): string | undefined {
  return account.passwordHash ? createHash('sha256').update(account.passwordHash).digest('base64url').slice(0, 22) : undefined;
}

export class AccountError extends Error {
  override name = 'AccountError';
  constructor(
    message: string,
    /** The username is taken, or looks like one that is: a conflict, not bad input. */
    readonly conflict = false,
  ) {
    super(message);
  }
}

/** The longest password we hash; longer input is rejected before argon2 sees it. */
export const MAX_PASSWORD_LENGTH = 1024;

/** An account as stored (its JSON, or nothing). */
const accountOf = (json: string | undefined): Account | undefined => (json ? (JSON.parse(json) as Account) : undefined);
/** How many times an account write (#update) is tried against writes made in between. */
const UPDATE_ATTEMPTS = 8;
/**
 * An address's claim (withEmailClaimed): held at most this many seconds (a holder stopped half-way
 * lets go then), waited for at most EMAIL_CLAIM_WAIT ms (a sign-in or a creation takes well under it,
 * findByEmail's read of the accounts its index names included).
 */
const EMAIL_CLAIM_TTL = 30;
const EMAIL_CLAIM_WAIT = 10_000;
/**
 * A make's reservation of its username's skeletons (#reserving): held at most this many seconds (a
 * make cut off half-way lets go when it expires), waited for at most MAKING_WAIT ms.
 */
const MAKING_TTL = 30;
const MAKING_WAIT = 10_000;

/** Characters that change how text looks or reads without being seen themselves. */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Bidi_Control}\p{Join_Control}\p{Cf}]/gu;

/**
 * An email address as any app might compare it: NFKC (fullwidth "ｓａｍ" is "sam"), invisible and
 * text-direction characters dropped ("s<ZWSP>am" shows as "sam"), then case folded through both
 * directions, so that the Unicode case-mapping collisions ("ſ" upper-cases to "S", dotless "ı" to
 * "I", "ß" to "SS", the Kelvin sign lower-cases to "k") land on the same letters. Two addresses with
 * the same fold are one person's to an app that compares them in any of these ways; an upstream's
 * verified word for one must not make a second account with it (accounts/links.ts). Only for
 * comparing; never stored, never shown.
 */
export function emailFold(email: string): string {
  return withDomain(email.normalize('NFKC').replace(INVISIBLE, '').toUpperCase().toLowerCase().normalize('NFKC'), (ascii) => ascii);
}

/**
 * `email` with its domain in the form `form` makes of the domain's ASCII form (UTS #46, as WHATWG
 * URLs and mail software map it): "bücher.example" and "xn--bcher-kva.example" are one domain,
 * which an app converting domains takes for one (an upstream's verified word for one spelling made
 * a second person with the other: attacker pass of 2026-12-06). A domain IDNA refuses stays as it is.
 */
function withDomain(email: string, form: (ascii: string) => string): string {
  const at = email.lastIndexOf('@');
  const ascii = at < 0 ? '' : domainToASCII(email.slice(at + 1));
  return ascii ? `${email.slice(0, at + 1)}${form(ascii)}` : email;
}

/** How an address looks to a person: the TR 39 skeleton of its fold, the domain as Unicode (a person reads "xn--" as what it spells). Only for comparing. */
function emailLook(email: string): string {
  return usernameSkeleton(withDomain(emailFold(email), domainToUnicode));
}

/** The form usernames compare in: the PRECIS enforced form, or (for names it refuses) the old one. */
export function normalizeUsername(username: string): string {
  const enforced = enforceUsername(username);
  return enforced.ok ? enforced.username : legacyUsernameForm(username);
}

/** Why `password` may not be chosen, or undefined; `username`: whose it would be (a context-specific word, weak-passwords.ts). */
export function validatePassword(password: string, username?: string): string | undefined {
  if (password.length < 8) return 'a password has at least 8 characters';
  if (password.length > MAX_PASSWORD_LENGTH) return `a password has at most ${MAX_PASSWORD_LENGTH} characters`;
  return weakPassword(password, username === undefined ? [] : [username]);
}

export class Accounts {
  readonly #options: argon2.HashOptions & { raw: false };
  /**
   * Verified against when the username is unknown, so both failures cost the same. Made at the
   * first verification, not with the object: most holders never verify (every CLI command that
   * touches people or builds a provider, a test's helpers), and each paid a whole argon2 hash on
   * the thread pool, which the process then waited for before it could exit.
   */
  #dummyHash: Promise<string> | undefined;

  constructor(
    private readonly kv: Kv,
    settings: Argon2Settings,
    private readonly slots: Argon2Slots = processArgon2Slots,
  ) {
    this.#options = { type: argon2.argon2id, ...settings, raw: false };
  }

  #hash(password: string): Promise<string> {
    return this.slots.run(() => argon2.hash(password, this.#options));
  }

  #verify(hash: string, password: string): Promise<boolean> {
    return this.slots.run(() => argon2.verify(hash, password));
  }

  async create(username: string, password: string, claims: Claims = {}): Promise<Account> {
    const problem = validatePassword(password, username);
    if (problem) throw new AccountError(problem);
    const passwordHash = await this.#hash(password);
    const { email } = claims;
    if (email === undefined || claims.email_verified !== true) return this.#make(username, passwordHash, claims);
    // An operator's person (CLI, admin API) does not get as verified an address another account holds
    // verified, under any spelling apps take for the same (findByEmail): an upstream's account that took
    // it first, say. Apps keying people by email, and a login_hint of it, would take one for the other;
    // an upstream's first sign-in is refused the same (links.ts signIn). One held unverified is no
    // conflict: the upstream's later word no longer verifies it beside this one (links.ts #refreshed).
    // Checked and made with the address claimed: an upstream's first sign-in bringing it at the same
    // moment reads the accounts after this one is made, or this one after that one's.
    const made = await this.withEmailClaimed(email, async () => {
      // A holder (verified) no name finds is a make cut off half-way (every make giving an account an
      // address verified holds its claim, as this one does now): it is taken back, not "holding" it for
      // ever. Only a verified one: a make giving the address unverified does not hold its claim, so one
      // no name finds yet may be in progress (the third review of the twelfth passes' changes: it was
      // erased mid-make, and its add answered 201 for a person who did not exist).
      let holder: Account | undefined;
      for (const other of await this.findByEmail(email)) {
        if (other.claims.email_verified === true && !(await this.#halfMade(other))) {
          holder = other;
          break;
        }
      }
      if (holder) throw new AccountError(`the email address ${email} is held, verified, by the account "${holder.username}": apps would take one person for the other; change or remove that account first, or add this one with the address unverified`, true);
      return this.#make(username, passwordHash, claims);
    });
    if (made === STILL_HELD) throw new AccountError(`the email address ${email} is being given to another account at this moment; try again`, true);
    return made;
  }

  /**
   * Runs `work` with `email` claimed, as apps and people compare it (emailLook: one claim for every
   * spelling findByEmail takes for it): whatever reads the accounts holding an address (findByEmail)
   * and then gives an account that address (a new account, an upstream's claims) does it under the
   * claim, so of two at the same moment the second reads after the first wrote (two first sign-ins
   * with one new address made two accounts with it before the ninth fresh-eyes passes of
   * 2026-12-06). STILL_HELD when another held it all the while this waited.
   */
  withEmailClaimed<T>(email: string, work: () => Promise<T>): Promise<T | typeof STILL_HELD> {
    return holding(this.kv, emailClaimKey(emailLook(email)), work, { ttl: EMAIL_CLAIM_TTL, wait: EMAIL_CLAIM_WAIT });
  }

  /** An account without a password, for a person who signs in through an upstream provider (links.ts). */
  /** An account without a password; `madeFor`: the upstream identity whose first sign-in makes it (Account.madeFor). */
  async createWithoutPassword(username: string, claims: Claims, madeFor?: string): Promise<Account> {
    return this.#make(username, '', claims, madeFor);
  }

  async #make(username: string, passwordHash: string, claims: Claims, madeFor?: string): Promise<Account> {
    const enforced = enforceUsername(username);
    if (!enforced.ok) throw new AccountError(enforced.problem);
    await this.#indexSkeletons();
    // The record is written first, so that a skeleton or name key always names a stored account
    // (or one being made); a key whose account is gone is stale (see #claimSkeleton).
    const account: Account = {
      sub: randomUUID(),
      username,
      passwordHash,
      disabled: false,
      claims,
      updatedAt: now(),
      ...(madeFor !== undefined && { madeFor }),
    };
    // Its address's index entry before the record: an entry whose account is not (yet) there is skipped (findByEmail).
    await this.#indexEmail(account.sub, claims.email);
    // Listed before the record too (list and every reader of the set skip a sub with no account): listed
    // after its name was taken, a make cut off at the listing (503) left a person no list showed, whose
    // name was taken for ever (twelfth fresh-eyes passes).
    // With the username's skeletons reserved (#reserving), so that a skeleton found held by an
    // account no name finds is a make cut off half-way, not one in progress (#claimSkeleton).
    const made = await this.#reserving(username, async () => {
      await this.kv.addToSet(ACCOUNTS_KEY, account.sub);
      await this.#save(account);
      try {
        await this.#claimUsername(account.sub, username, enforced.username);
      } catch (error) {
        await this.kv.del([accountKey(account.sub)]);
        await this.#unindexEmail(account.sub, claims.email);
        await this.kv.removeFromSet(ACCOUNTS_KEY, account.sub);
        throw error;
      }
      return account;
    });
    if (made === STILL_HELD) throw new AccountError(`the username "${username}" (or one like it) is being given to another account at this moment; try again`, true);
    return made;
  }

  /**
   * Runs `work` (a make) with each of `username`'s skeletons reserved (set-if-absent with a TTL, in
   * one order for every make). A make holds them from before its record to after its name key, so
   * a skeleton held by an account no name finds, found by a make that holds that skeleton's
   * reservation, is one whose make was cut off (its taking back lost too: a connection cut after a
   * write), not one in progress: it is taken back (#claimSkeleton). Before the twelfth fresh-eyes
   * passes' leftovers, such a make left the username "taken" for ever, by a record no name found.
   */
  async #reserving<T>(username: string, work: () => Promise<T>): Promise<T | typeof STILL_HELD> {
    const keys = [...new Set(usernameSkeletons(username))].sort().map(usernameMakingKey);
    const from = (index: number): Promise<T | typeof STILL_HELD> =>
      index === keys.length ? work() : holding(this.kv, keys[index]!, () => from(index + 1), { ttl: MAKING_TTL, wait: MAKING_WAIT });
    return from(0);
  }

  /**
   * Whether `account` is a make cut off half-way: its record written, its name (the last write of a
   * make) not naming it. Only for a caller that holds what that make held (its skeletons'
   * reservations, or its address's claim): otherwise it may be a make in progress.
   */
  async #halfMade(account: Account): Promise<boolean> {
    if ((await this.findByUsername(account.username))?.sub === account.sub) return false;
    await this.#erase(account);
    return true;
  }

  /** Takes the username's skeletons and its name for `sub`, or explains whose they are. */
  async #claimUsername(sub: string, username: string, enforced: string): Promise<void> {
    const taken = () => new AccountError(`the username "${username}" is taken`, true);
    if (enforced !== legacyUsernameForm(username)) {
      const legacy = await this.kv.get(usernameKey(legacyUsernameForm(username)));
      if (legacy && (await this.find(legacy))) throw taken();
    }
    const skeletons = usernameSkeletons(username).map(usernameSkeletonKey);
    const release = () => Promise.all(skeletons.map((key) => this.kv.deleteIfEquals(key, sub)));
    for (const key of skeletons) {
      if (await this.#claimSkeleton(key, sub)) continue;
      await release();
      const holder = await this.find((await this.kv.get(key)) ?? '');
      if (holder && normalizeUsername(holder.username) === enforced) throw taken();
      const differs = nonAscii(username);
      throw new AccountError(
        `the username "${username}" looks like the existing username "${holder?.username ?? ''}"${differs.length ? ` (it has ${differs.join(', ')})` : ''}; choose one that does not`,
        true,
      );
    }
    // A name key left by an account that is gone is free again, as a skeleton is: one whose make
    // was answered 503 at this write wrote it once Redis resumed, after the make had taken its record
    // back, and the name was "taken" for ever by no one (bad input and blips, ninth pass).
    if (!(await this.#claimSkeleton(usernameKey(enforced), sub))) {
      await release();
      throw taken();
    }
  }

  /** Takes a skeleton (or the name key) for `sub`; false when an account that still exists holds it. */
  async #claimSkeleton(key: string, sub: string): Promise<boolean> {
    if (await this.kv.set(key, sub, { onlyIfAbsent: true })) return true;
    const holder = await this.kv.get(key);
    if (holder === undefined) return false;
    // A skeleton left behind by an account that is gone (e.g. removal interrupted) is free again, and
    // so is one held by a make cut off half-way (taken back: this make holds its reservation).
    const account = await this.find(holder);
    if (account && !(await this.#halfMade(account))) return false;
    return this.kv.compareAndSet(key, holder, sub);
  }

  #skeletonsIndexed: Promise<void> | undefined;

  /**
   * Accounts made before skeletons were indexed get theirs (and the key of their enforced form)
   * once, so a lookalike of an old username is refused too. Idempotent: instances racing to do
   * it write the same keys.
   */
  #indexSkeletons(): Promise<void> {
    this.#skeletonsIndexed ??= (async () => {
      if (await this.kv.get(SKELETONS_INDEXED_KEY)) return;
      for (const sub of await this.kv.members(ACCOUNTS_KEY)) {
        const account = await this.find(sub);
        if (!account) continue;
        for (const skeleton of usernameSkeletons(account.username)) await this.kv.set(usernameSkeletonKey(skeleton), sub, { onlyIfAbsent: true });
        await this.kv.set(usernameKey(normalizeUsername(account.username)), sub, { onlyIfAbsent: true });
      }
      await this.kv.set(SKELETONS_INDEXED_KEY, '1');
    })().catch((error: unknown) => {
      this.#skeletonsIndexed = undefined;
      throw error;
    });
    return this.#skeletonsIndexed;
  }

  /**
   * Starts reading an account the request in progress is about to look up (store/read-ahead.ts).
   * `request`: its Koa context, when called in front of oidc-provider (see Kv.readAhead).
   */
  readAhead(sub: string, request?: object): void {
    this.kv.readAhead?.({ strings: [accountKey(sub)] }, request);
  }

  async find(sub: string): Promise<Account | undefined> {
    return accountOf(await this.kv.get(accountKey(sub)));
  }

  /** By the enforced form, else by the pre-PRECIS form that accounts made before it are keyed by. */
  async findByUsername(username: string): Promise<Account | undefined> {
    const sub = await this.#viaUsername(username, (index) => this.kv.get(index));
    return sub ? this.find(sub) : undefined;
  }

  /**
   * What `read` finds at the username's index: by the enforced form, else by the pre-PRECIS form
   * that accounts made before it are keyed by. Undefined for a username that cannot be one.
   */
  async #viaUsername<T>(username: string, read: (index: string) => Promise<T | undefined>): Promise<T | undefined> {
    if (typeof username !== 'string' || !username || [...username].length > MAX_USERNAME_LENGTH) return undefined;
    const enforced = enforceUsername(username);
    return (enforced.ok ? await read(usernameKey(enforced.username)) : undefined) ?? (await read(usernameKey(legacyUsernameForm(username))));
  }

  /**
   * The account named `username` (as findByUsername finds it) with the strings at each of
   * `alongside` + its sub (the person's other records), read with the username's index in one round
   * trip where the store can (Kv.getVia). Undefined for a username nobody has (nothing else read).
   */
  async findByUsernameWith(username: string, alongside: readonly string[]): Promise<{ sub: string; account: Account | undefined; values: (string | undefined)[] } | undefined> {
    return this.#viaUsername(username, async (index) => {
      const prefixes = [ACCOUNT_PREFIX, ...alongside];
      const found = await (this.kv.getVia ? this.kv.getVia(index, prefixes) : getViaInTurn(this.kv, index, prefixes));
      if (!found) return undefined;
      const [json, ...values] = found.values;
      return { sub: found.id, account: accountOf(json), values };
    });
  }

  /** Every account's sub (without reading the accounts). */
  subs(): Promise<string[]> {
    return this.kv.members(ACCOUNTS_KEY);
  }

  /**
   * Every person, by username: each account its username finds (findByUsername). A record whose make
   * was cut off before its name was taken, and whose taking back failed too (the store away), is
   * listed by its sub (#make lists it first) but is no one's: not shown, as findByUsername finds none.
   */
  async list(): Promise<Account[]> {
    const subs = await this.kv.members(ACCOUNTS_KEY);
    const accounts = await Promise.all(subs.map((sub) => this.find(sub)));
    const named = await Promise.all(accounts.map((account) => account && this.#viaUsername(account.username, (index) => this.kv.get(index))));
    return accounts.filter((a, at): a is Account => !!a && named[at] === a.sub).sort((a, b) => a.username.localeCompare(b.username));
  }

  /**
   * Checks a username and password. Unknown users, wrong passwords and disabled accounts all
   * cost one argon2 verification. Re-hashes when the configured parameters have grown.
   */
  async verify(username: string, password: string): Promise<Account | undefined> {
    if (password.length > MAX_PASSWORD_LENGTH) return undefined;
    return this.verifyFound(await this.findByUsername(username), password);
  }

  /**
   * verify, for a caller that looked the account up itself (findByUsername, alongside its other
   * reads; undefined for an unknown username). The same single argon2 verification, whatever it is given.
   */
  async verifyFound(account: Account | undefined, password: string): Promise<Account | undefined> {
    if (password.length > MAX_PASSWORD_LENGTH) return undefined;
    // Waited for whoever signs in, so the first verification costs the same for a known and an unknown username.
    const dummyHash = await (this.#dummyHash ??= this.#hash(randomBytes(32).toString('hex')));
    // An account without a password (made by an upstream sign-in) costs the same and never matches.
    const hash = account?.passwordHash || dummyHash;
    const ok = await this.#verify(hash, password);
    if (!account?.passwordHash || !ok || account.disabled) return undefined;
    if (this.#weakerThanConfigured(account.passwordHash)) {
      const passwordHash = await this.#hash(password);
      // Onto the account as it is now: a person disabled, or given another password, while the hash
      // was made is not signed in (and their account is left as the operator wrote it).
      const upgraded = await this.#update(account.sub, (stored) => (stored.passwordHash === account.passwordHash && !stored.disabled ? { ...stored, passwordHash } : undefined));
      if (!upgraded || upgraded.written) return upgraded?.account;
      // Another hash stored meanwhile: another sign-in's re-hash of this password (it verifies), or
      // an operator's new password (it does not).
      const stored = upgraded.account;
      return stored.passwordHash && !stored.disabled && (await this.#verify(stored.passwordHash, password)) ? stored : undefined;
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

  /**
   * A person changing their own password: `current` must be theirs (one argon2id verification, as
   * at sign-in). False when it is not (or the account is gone or disabled); AccountError when the
   * new password is not acceptable, checked first so that no verification is spent on it.
   * `beforeWrite` runs once `current` is verified and before the new password is written: what
   * must end with the old password ends there, so that a failure half-way leaves the old password
   * in place, to be typed again by a retry that then ends it all (once the new one is written,
   * the person can no longer retry with the old one).
   */
  async changePassword(sub: string, current: string, next: string, beforeWrite?: () => Promise<unknown>): Promise<boolean> {
    const problem = validatePassword(next);
    if (problem) throw new AccountError(problem);
    const account = await this.find(sub);
    if (!account?.passwordHash || account.disabled || current.length > MAX_PASSWORD_LENGTH) return false;
    // The username is a word the new password may not be (a read, still before any verification).
    const weak = weakPassword(next, [account.username]);
    if (weak) throw new AccountError(weak);
    if (!(await this.#verify(account.passwordHash, current))) return false;
    await beforeWrite?.();
    const passwordHash = await this.#hash(next);
    // Only onto the account as it was verified: an operator who disabled the person, set a password
    // or ended everything of theirs meanwhile (the old password may be a thief's, changing it now)
    // is not undone; the change is refused instead.
    const unchanged = (stored: Account) => stored.passwordHash === account.passwordHash && !stored.disabled && stored.endedAt === account.endedAt;
    return (await this.#update(sub, (stored) => (unchanged(stored) ? { ...stored, passwordHash } : undefined)))?.written === true;
  }

  /**
   * An operator sets a password. With `endings` (the old password may be a thief's), everything
   * issued to the person up to now ends in the same write (endedAt; #endingEverything).
   */
  async setPassword(username: string, password: string, endings?: SubjectEndings): Promise<Account> {
    const problem = validatePassword(password, username);
    if (problem) throw new AccountError(problem);
    const account = await this.#require(username);
    const passwordHash = await this.#hash(password);
    return this.#endingEverything(account, endings, (stored, endedAt) => ({ ...stored, passwordHash, ...(endedAt !== undefined && { endedAt }) }));
  }

  /**
   * A person without a password (an account an upstream made) sets their first one: written only
   * while the account still has none and is enabled, so that two first passwords set at once (two
   * of their sessions) do not leave the second replacing the first with what the first signed in
   * still signed in (a password is replaced only by changePassword, or by an operator). False when
   * the account has a password (or is gone or disabled); AccountError when the password is not
   * acceptable.
   */
  async setFirstPassword(sub: string, password: string): Promise<boolean> {
    const account = await this.find(sub);
    if (!account || account.passwordHash || account.disabled) return false;
    const problem = validatePassword(password, account.username);
    if (problem) throw new AccountError(problem);
    const passwordHash = await this.#hash(password);
    return (await this.#update(sub, (stored) => (stored.passwordHash || stored.disabled ? undefined : { ...stored, passwordHash })))?.written === true;
  }

  /**
   * Drops the account's madeFor, as a link of it is removed (links.ts remove): the identity it was made
   * for then signs in afresh, as the removal says, instead of being linked to it again.
   */
  async forgetMadeFor(sub: string): Promise<void> {
    await this.#update(sub, (stored) => {
      if (stored.madeFor === undefined) return undefined;
      const { madeFor: _dropped, ...rest } = stored;
      return rest;
    });
  }

  /** Replaces the claims (e.g. those an upstream sends at each sign-in); a no-op when they are the same. */
  async updateClaims(sub: string, claims: Claims): Promise<Account | undefined> {
    const wanted = JSON.stringify(claims);
    // The new address's index entry before the write (findByEmail finds the account as soon as it holds it), the old one's after.
    await this.#indexEmail(sub, claims.email);
    let previous: string | undefined;
    const updated = await this.#update(sub, (stored) => {
      previous = stored.claims.email;
      return JSON.stringify(stored.claims) === wanted ? undefined : { ...stored, claims, updatedAt: now() };
    });
    if (updated?.written) {
      // Again after the write: a crossing change's #unindexEmail may have taken the entry out since (see there).
      await this.#indexEmail(sub, claims.email);
      await this.#unindexEmail(sub, previous);
    }
    return updated?.account;
  }

  /**
   * The accounts whose email an app could take for this one (emailFold: case-insensitive, and alike
   * after compatibility, full case folding and invisible characters), or a person reading it could
   * (the fold's TR 39 skeleton, as for usernames: Cyrillic "ѕаm" for "sam"). Used at an upstream
   * sign-in that would give an account a new address, and an operator's new person with a verified
   * one. Reads the accounts the index of looks names (emailLookKey), each checked against its
   * address as stored: before the eleventh pass over the left-open list it read every account, so
   * the address's claim (30 s) could lapse on a store large enough.
   */
  async findByEmail(email: string): Promise<Account[]> {
    await this.#indexEmails();
    const wanted = emailLook(email);
    const accounts = await Promise.all((await this.kv.members(emailLookKey(wanted))).map((sub) => this.find(sub)));
    return accounts.filter((account): account is Account => account?.claims.email !== undefined && emailLook(account.claims.email) === wanted);
  }

  /** Adds `sub` to the index of the look of `email` (none for no address). */
  async #indexEmail(sub: string, email: string | undefined): Promise<void> {
    if (typeof email === 'string') await this.kv.addToSet(emailLookKey(emailLook(email)), sub);
  }

  /**
   * Takes `sub` out of the index of the look of `email`, unless the account (read again) still holds
   * an address that looks like it. A change of its claims crossing this one may give that address
   * back between the read and the removal: the account is read once more after it, and a change
   * writing later indexes its address again after its write (updateClaims), so neither loses it.
   */
  async #unindexEmail(sub: string, email: string | undefined): Promise<void> {
    if (typeof email !== 'string') return;
    const look = emailLook(email);
    const holds = async () => {
      const held = (await this.find(sub))?.claims.email;
      return typeof held === 'string' && emailLook(held) === look;
    };
    if (await holds()) return;
    await this.kv.removeFromSet(emailLookKey(look), sub);
    if (await holds()) await this.kv.addToSet(emailLookKey(look), sub);
  }

  #emailsIndexed: Promise<void> | undefined;

  /**
   * Accounts made before the index of email looks existed get their entry, once (as #indexSkeletons
   * does for usernames). Idempotent: instances racing to do it write the same entries, and an
   * account made meanwhile writes its own.
   */
  #indexEmails(): Promise<void> {
    this.#emailsIndexed ??= (async () => {
      if (await this.kv.get(EMAILS_INDEXED_KEY)) return;
      for (const sub of await this.kv.members(ACCOUNTS_KEY)) await this.#indexEmail(sub, (await this.find(sub))?.claims.email);
      await this.kv.set(EMAILS_INDEXED_KEY, '1');
    })().catch((error: unknown) => {
      this.#emailsIndexed = undefined;
      throw error;
    });
    return this.#emailsIndexed;
  }

  /**
   * Disables (or enables) a person. Disabling with `endings` also ends everything issued to them up
   * to now, in the same write (endedAt; #endingEverything): their grants, sessions and consents are
   * then ended one by one by the caller, and a store failure half-way through leaves nothing of
   * theirs working, enabled again or not.
   */
  async setDisabled(username: string, disabled: boolean, endings?: SubjectEndings): Promise<Account> {
    const account = await this.#require(username);
    return this.#endingEverything(account, disabled ? endings : undefined, (stored, endedAt) => ({ ...stored, disabled, ...(endedAt !== undefined && { endedAt }) }));
  }

  /**
   * Every token, code and refresh token issued to the person up to now ends, their sessions kept
   * (an operator revokes every grant they gave): one cutoff, `grantsEndedAt`, with the revocation
   * list's entry before and after, as #endingEverything writes. The caller revokes their grants one
   * by one afterwards; a failure half-way leaves none of them working. Undefined for no such person.
   */
  async endGrants(sub: string, endings: SubjectEndings): Promise<Account | undefined> {
    const owed = await endings.owed?.owe({ personEnded: sub } satisfies OwedPersonEnding);
    await endings.revokeSubject(sub);
    const ended = await this.#update(sub, (stored) => ({ ...stored, grantsEndedAt: Math.max(now(), stored.grantsEndedAt ?? 0) }));
    if (ended) await endings.revokeSubject(sub);
    await endings.owed?.drop(owed);
    return ended?.account;
  }

  /**
   * Every token, code and refresh token issued to the person for one client up to now ends, and every
   * consent they gave it, their sessions and other apps kept (the person withdraws the app's access,
   * or an operator revokes that person's grants to it): one cutoff, `clientGrantsEndedAt[clientId]`,
   * with the revocation list's entry before and after, as endGrants writes. The caller forgets the
   * consent and revokes the grants afterwards; a failure half-way leaves none of them working.
   * `keep`: seconds a grant may live (ttl.grant): older cutoffs of other clients are dropped. The
   * cutoff's epoch seconds (for untilEndingPassed), undefined for no such person.
   */
  async endClientGrants(sub: string, clientId: string, endings: ClientGrantEndings, keep: number): Promise<number | undefined> {
    const owed = await endings.owed?.owe({ personEnded: sub, withdrawnFrom: clientId } satisfies OwedPersonEnding);
    await endings.revokeWithdrawn(sub, clientId);
    const at = now();
    const ended = await this.#update(sub, (stored) => {
      const kept = Object.entries(stored.clientGrantsEndedAt ?? {}).filter(([id, when]) => id !== clientId && when + keep >= at);
      return { ...stored, clientGrantsEndedAt: Object.fromEntries([...kept, [clientId, Math.max(at, clientCutoff(stored, clientId) ?? 0)]]) };
    });
    if (ended) await endings.revokeWithdrawn(sub, clientId);
    await endings.owed?.drop(owed);
    return ended ? clientCutoff(ended.account, clientId) : undefined;
  }

  /**
   * Writes `updated(endedAt)`: with `endings`, endedAt is now, and the revocation list's entry for
   * the person is written before (so JWT access tokens, which carry no account read, end first: a
   * failure after it has ended more, never less) and once more after (for those issued meanwhile).
   */
  async #endingEverything(account: Account, endings: SubjectEndings | undefined, updated: (stored: Account, endedAt: number | undefined) => Account): Promise<Account> {
    const write = async (endedAt: (stored: Account) => number | undefined) => {
      const written = await this.#update(account.sub, (stored) => updated(stored, endedAt(stored)));
      if (!written) throw new AccountError(`no user "${account.username}"`);
      return written.account;
    };
    if (!endings) {
      // Enabled again (or a password kept with its sessions) in the second of a cutoff whose command
      // failed before it waited: what the person then gets must be of a later second.
      await untilEndingPassed(account);
      return write(() => undefined);
    }
    const owed = await endings.owed?.owe({ personEnded: account.sub } satisfies OwedPersonEnding);
    await endings.revokeSubject(account.sub);
    const next = await write((stored) => Math.max(now(), stored.endedAt ?? 0));
    await endings.revokeSubject(account.sub);
    await endings.owed?.drop(owed);
    return next;
  }

  /**
   * Writes `change` of the account as stored now, only if no one wrote it in between (a
   * compare-and-set of its stored text, tried again with what the other wrote): a slow writer (a
   * password verified and hashed, an upstream's claims) never writes back a copy read before an
   * operator disabled the person, ended everything of theirs or set their password. `change`
   * answers undefined to write nothing (the account as stored is answered, not written). Undefined
   * when there is no such account.
   */
  async #update(sub: string, change: (stored: Account) => Account | undefined): Promise<{ account: Account; written: boolean } | undefined> {
    const key = accountKey(sub);
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt += 1) {
      const text = await this.kv.get(key);
      if (text === undefined) return undefined;
      const stored = JSON.parse(text) as Account;
      const next = change(stored);
      if (!next) return { account: stored, written: false };
      // Bounded: a write Redis runs after this request answered 503 (paused past the command timeout)
      // is not made, so a password change said not done is not done (the person retries with the
      // password they hold as current).
      if (await this.kv.compareAndSet(key, text, JSON.stringify(next), undefined, { bounded: true })) return { account: next, written: true };
    }
    throw new Error(`the account ${sub} changed ${UPDATE_ATTEMPTS} times while it was being written`);
  }

  async remove(username: string): Promise<Account> {
    const account = await this.#require(username);
    await this.#erase(account);
    return account;
  }

  /** Takes `account` away: its record, then its address's index entry, its names and skeletons, its listing. */
  async #erase(account: Account): Promise<void> {
    const forms = new Set([normalizeUsername(account.username), legacyUsernameForm(account.username)]);
    await this.kv.del([accountKey(account.sub)]);
    await this.#unindexEmail(account.sub, account.claims.email);
    for (const form of forms) await this.kv.deleteIfEquals(usernameKey(form), account.sub);
    for (const skeleton of usernameSkeletons(account.username)) await this.kv.deleteIfEquals(usernameSkeletonKey(skeleton), account.sub);
    await this.kv.removeFromSet(ACCOUNTS_KEY, account.sub);
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
