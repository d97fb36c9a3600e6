/**
 * Accounts linked to an upstream identity (upstream id, upstream `sub`): the first sign-in through
 * an upstream makes the account (just in time) or, only when the upstream verified the email and
 * the upstream is configured to allow it, offers to link the local account with that email: the
 * link is made once the person signs in to that account itself (linkConfirmed, after its password
 * or passkey and second factor), never on the upstream's word alone ("nOAuth": whoever controls the
 * address at the upstream does not thereby get the local account). Later sign-ins update its claims
 * from the upstream's, but never to an email address another account holds. Any other email match is
 * refused, never merged silently; so is an address that apps would take for another account's
 * (accounts.ts emailFold: another case mapping, compatibility width, invisible characters).
 *
 * An upstream is named by its id, and its people by their sub there; an operator may remove an
 * upstream and add another under the same id (the same provider, its secret changed; or another
 * provider, whose subs may be the same strings as the first one's people's). A link records the
 * issuer that vouched for it, and a sign-in vouched for by another issuer under the id does not
 * follow it: the link is of the provider removed, and the sign-in starts afresh. Links made before
 * the issuer was recorded get the issuer of their upstream when it is removed (recordIssuer, called
 * by upstreams/removal.ts), so a provider added later under the id follows them only when it is the
 * same issuer (before the thirteenth endings pass, they followed any).
 *
 * Layout (durable): account:link:<upstream>:<upstream sub> → JSON {sub, how, at, iss};
 * account:links:<sub> → set of "<upstream>:<upstream sub>" (the account page lists and removes them);
 * account:linked:<upstream> → set of the subs ever linked through it (peopleLinkedTo: removing the
 * upstream finds what they were granted through it). That last one is a superset: a link removed
 * since, or an account removed, leaves its sub there (one needless look at their grants when the
 * upstream is removed; never a person missed). Links made before it existed are added to it once,
 * by the first peopleLinkedTo (account:linked-indexed marks that done). Both sets are written before
 * the link (#link), so a link is never without them; an entry of account:links:<sub> that no link
 * names (a link lost to another sign-in, or cut off before it was written) is skipped by list. An
 * account a first sign-in makes records the identity it is made for (Account.madeFor), so that one
 * whose link was never written (the sign-in cut off between the two) is linked by the next (#unlinked);
 * removing a link of the account drops that record (remove), so the removal is not undone so.
 */
import { createHash, randomUUID } from 'node:crypto';
import { AccountError, type Account, type Accounts, type Claims } from './accounts.js';
import { holding, inBatches, STILL_HELD, type Kv } from '../store/kv.js';
import { accountLinksKey, linkedAccountsKey, LINKS_INDEXED_KEY, upstreamLinkKey, upstreamSignInKey } from '../store/keys.js';

export interface Link {
  /** The local account. */
  readonly sub: string;
  /** How it was linked: a new account, or the existing one with the same verified email (the person signed in to it to link). */
  readonly how: 'created' | 'email';
  readonly at: number;
  /** The upstream's issuer when it was linked (absent in links made before it was recorded). */
  readonly iss?: string;
  /**
   * This making of the link (random; absent in links made before it was kept): a link removed and
   * made again is not the one a sign-in under way went through (UpstreamWord.link; eighteenth passes, h18).
   */
  readonly made?: string;
}

/** One of a person's links, as the account page lists it: `id` ("<upstream>:<upstream sub>") names it in a form. */
export interface ListedLink extends Link {
  readonly id: string;
  readonly upstream: string;
}

export type LinkOutcome =
  | { readonly account: Account; readonly link: Link }
  /** The local account with the same verified email: the person must sign in to it to link (linkConfirmed). */
  | { readonly confirm: Account }
  | { readonly refused: 'disabled' | 'email-unverified' | 'email-linking-off' | 'email-lookalike' }
  /** Another sign-in or creation with the address held its claim all the while this one waited (Accounts.withEmailClaimed): try again. */
  | { readonly busy: true };

/**
 * Whether the upstream vouches for the address it brings, so that the sign-in reads and writes with it
 * claimed (Accounts.withEmailClaimed): two at once could each give an account the address verified.
 * One it does not vouch for claims nothing: anyone can bring any address unverified through an upstream
 * that lets its people write their own, and a claim taken by their sign-ins (many at once) kept the
 * address's person's own sign-ins waiting, then "Try again" (ninth fresh-eyes passes, the session's own
 * changes). An address held unverified beside another's verified one is no conflict (#refreshed).
 */
const vouchedFor = (claims: Claims): claims is Claims & { email: string } => typeof claims.email === 'string' && claims.email_verified === true;

/** An identity's first-sign-in claim (upstreamSignInKey): held and waited for as an address's (accounts.ts). */
const IDENTITY_CLAIM_TTL = 30;
const IDENTITY_CLAIM_WAIT = 10_000;

/** What a step of signIn answers when the sign-in starts again (the identity was linked meanwhile, by another sign-in of it). */
const AGAIN = Symbol('again');

/** Accounts whose links the one-time indexing reads at once. */
const INDEXING_BATCH = 64;

export class UpstreamLinks {
  constructor(
    private readonly kv: Kv,
    private readonly accounts: Accounts,
  ) {}

  async find(upstream: string, upstreamSub: string): Promise<Link | undefined> {
    const json = await this.kv.get(upstreamLinkKey(upstream, upstreamSub));
    return json ? (JSON.parse(json) as Link) : undefined;
  }

  /** The links of the local account `sub`, oldest first. */
  async list(sub: string): Promise<ListedLink[]> {
    const listed = await Promise.all(
      (await this.kv.members(accountLinksKey(sub))).map(async (id) => {
        const at = id.indexOf(':');
        const link = at > 0 ? await this.find(id.slice(0, at), id.slice(at + 1)) : undefined;
        return link?.sub === sub ? { ...link, id, upstream: id.slice(0, at) } : undefined;
      }),
    );
    return listed.filter((link) => link !== undefined).sort((a, b) => a.at - b.at);
  }

  /**
   * The subs of the people linked through the upstream, now or at some time since (a superset: see
   * the layout above). The first call anywhere also indexes the links made before this index
   * existed, reading every account's links once, a batch at a time.
   */
  async peopleLinkedTo(upstream: string): Promise<string[]> {
    if (!(await this.kv.get(LINKS_INDEXED_KEY))) await this.#indexEarlierLinks();
    return this.kv.members(linkedAccountsKey(upstream));
  }

  async #indexEarlierLinks(): Promise<void> {
    const subs = await this.accounts.subs();
    await inBatches(subs, INDEXING_BATCH, async (sub) => {
      const ids = await this.kv.members(accountLinksKey(sub));
      const upstreams = new Set(ids.filter((id) => id.indexOf(':') > 0).map((id) => id.slice(0, id.indexOf(':'))));
      await Promise.all([...upstreams].map((upstream) => this.kv.addToSet(linkedAccountsKey(upstream), sub)));
    });
    // Idempotent: two instances doing it at once add the same members.
    await this.kv.set(LINKS_INDEXED_KEY, String(Math.floor(Date.now() / 1000)));
  }

  /**
   * Writes `issuer` into the upstream's links that record none (made by an earlier release), as the
   * upstream is removed: a provider added again under the id is then told apart by its issuer. A
   * link changed meanwhile is left as it now is (compare-and-set).
   */
  async recordIssuer(upstream: string, issuer: string): Promise<void> {
    await inBatches(await this.peopleLinkedTo(upstream), INDEXING_BATCH, async (sub) => {
      for (const id of await this.kv.members(accountLinksKey(sub))) {
        if (!id.startsWith(`${upstream}:`)) continue;
        const key = upstreamLinkKey(upstream, id.slice(upstream.length + 1));
        const json = await this.kv.get(key);
        const link = json ? (JSON.parse(json) as Link) : undefined;
        if (link?.sub === sub && link.iss === undefined) await this.kv.compareAndSet(key, json, JSON.stringify({ ...link, iss: issuer }));
      }
    });
  }

  /** Removes the link `id` of the account `sub` (the next sign-in through it starts afresh); false when it is not theirs. */
  async remove(sub: string, id: string): Promise<boolean> {
    const at = id.indexOf(':');
    if (at <= 0) return false;
    const key = upstreamLinkKey(id.slice(0, at), id.slice(at + 1));
    const json = await this.kv.get(key);
    if (!json || (JSON.parse(json) as Link).sub !== sub) return false;
    // Before the link goes: an account still marked as made for the identity is linked to it again by
    // its next sign-in (#unlinked), which the removal must not be (the review of the twelfth passes).
    await this.accounts.forgetMadeFor(sub);
    const removed = await this.kv.deleteIfEquals(key, json);
    await this.kv.removeFromSet(accountLinksKey(sub), id);
    return removed;
  }

  /**
   * The account an upstream sign-in belongs to, made or linked on the first one, its claims
   * refreshed on every one; or why it may not sign in.
   */
  async signIn(upstream: { id: string; issuer: string; linkByEmail: boolean }, upstreamSub: string, claims: Claims): Promise<LinkOutcome> {
    const existing = await this.find(upstream.id, upstreamSub);
    if (existing?.iss !== undefined && existing.iss !== upstream.issuer) {
      // Linked through a provider removed since, whose id another was given: its person there is not
      // this one, whatever the sub. The old link goes (the account stays, and signs in another way).
      const key = upstreamLinkKey(upstream.id, upstreamSub);
      const json = await this.kv.get(key);
      if (json && (JSON.parse(json) as Link).iss === existing.iss && (await this.kv.deleteIfEquals(key, json))) await this.kv.removeFromSet(accountLinksKey(existing.sub), `${upstream.id}:${upstreamSub}`);
      return this.signIn(upstream, upstreamSub, claims);
    }
    if (existing) {
      const account = await this.accounts.find(existing.sub);
      if (account) {
        if (account.disabled) return { refused: 'disabled' };
        // The upstream's address is checked against the accounts and taken with it claimed (#refreshed),
        // when the upstream vouches for it (vouchedFor).
        const refreshed = vouchedFor(claims) ? await this.accounts.withEmailClaimed(claims.email, () => this.#refresh(account, claims)) : await this.#refresh(account, claims);
        return refreshed === STILL_HELD ? { busy: true } : { account: refreshed, link: existing };
      }
      // The account was removed: the link is stale, and this sign-in starts afresh.
      await this.kv.del([upstreamLinkKey(upstream.id, upstreamSub)]);
    }
    // A first sign-in: the accounts holding its address are read, and its account made and linked, with
    // the address claimed (Accounts.withEmailClaimed). Another first sign-in with the address at the
    // same moment (another identity, or this one in another tab) then reads the accounts after this one
    // linked its own: no second account with it, and this identity's other tab finds its link.
    // An address the upstream does not vouch for is not claimed (vouchedFor): the identity is, so that
    // its other tab still finds its link rather than an account with the address.
    const work = () => this.#first(upstream, upstreamSub, claims);
    const first = vouchedFor(claims)
      ? await this.accounts.withEmailClaimed(claims.email, work)
      : claims.email === undefined
        ? await work()
        : await holding(this.kv, upstreamSignInKey(upstream.id, upstreamSub), work, { ttl: IDENTITY_CLAIM_TTL, wait: IDENTITY_CLAIM_WAIT });
    if (first === STILL_HELD) return { busy: true };
    return first === AGAIN ? this.signIn(upstream, upstreamSub, claims) : first;
  }

  /** The linked account's claims refreshed from the upstream's (#refreshed), as stored after. */
  async #refresh(account: Account, claims: Claims): Promise<Account> {
    // Read again under the claim: what another sign-in of the person wrote while this one waited for it.
    const current = (await this.accounts.find(account.sub)) ?? account;
    return (await this.accounts.updateClaims(account.sub, await this.#refreshed(current, claims)))!;
  }

  /** A first sign-in of the identity: its account made and linked, a local account's link offered, or why not. */
  async #first(upstream: { id: string; issuer: string; linkByEmail: boolean }, upstreamSub: string, claims: Claims): Promise<LinkOutcome | typeof AGAIN> {
    // Linked by another sign-in of the identity (another tab) while this one waited for the address: its account is this one's.
    if (await this.find(upstream.id, upstreamSub)) return AGAIN;
    // The account an earlier first sign-in of the identity made, cut off before its link was written
    // (the store away between the two writes: answered 503): linked now, before its address is looked
    // at (the account holds it). Before, the retry made a second account (or, with an address, was
    // refused for the first one's), the first left unlinked for ever (twelfth fresh-eyes passes).
    const unlinked = await this.#unlinked(upstream, upstreamSub);
    if (unlinked) {
      if (unlinked.disabled) return { refused: 'disabled' };
      const link = await this.#link(upstream.id, upstreamSub, unlinked.sub, 'created', upstream.issuer);
      return link ? { account: unlinked, link } : AGAIN;
    }
    const sameEmail = claims.email ? await this.accounts.findByEmail(claims.email) : [];
    if (sameEmail.length) {
      // Held by an account under another spelling that apps or people take for the same address
      // (findByEmail: "ſam" or Cyrillic "ѕаm" for "sam"): not that account's own address, so never
      // linked to it, nor made again.
      if (sameEmail.some((local) => local.claims.email!.toLowerCase() !== claims.email!.toLowerCase())) return { refused: 'email-lookalike' };
      if (!upstream.linkByEmail) return { refused: 'email-linking-off' };
      const local = sameEmail.length === 1 ? sameEmail[0]! : undefined;
      // Both sides must vouch for the address: the upstream now, and the local account itself.
      if (claims.email_verified !== true || !local?.claims.email_verified) return { refused: 'email-unverified' };
      if (local.disabled) return { refused: 'disabled' };
      return { confirm: local };
    }
    const account = await this.#created(upstream, upstreamSub, claims);
    const link = await this.#link(upstream.id, upstreamSub, account.sub, 'created', upstream.issuer);
    if (!link) {
      // Another sign-in of the same person linked first: nothing half-made stays behind, unless what
      // it linked is this account (it found it made for the identity: #unlinked).
      if ((await this.find(upstream.id, upstreamSub))?.sub !== account.sub) await this.accounts.remove(account.username);
      return AGAIN;
    }
    return { account, link };
  }

  /**
   * Links the upstream identity to the local account `sub` the person has just signed in to (the
   * upstream's sign-in offered it: signIn's `confirm`), and takes the upstream's claims. Undefined
   * when the identity was linked meanwhile, or the account is gone or disabled.
   */
  async linkConfirmed(upstream: string, upstreamSub: string, sub: string, claims: Claims, issuer?: string): Promise<Link | undefined> {
    const local = await this.accounts.find(sub);
    if (!local || local.disabled) return undefined;
    const link = await this.#link(upstream, upstreamSub, sub, 'email', issuer);
    // Taken as a later sign-in takes them (#refreshed): the offer was made for the address the account
    // held then, which it may have given up since (an operator moving it to another, and that address to
    // another person), and the upstream then gave it back beside the other's (ninth pass over second
    // factors and upstreams).
    if (link) await this.accounts.updateClaims(sub, await this.#refreshed(local, claims));
    return link;
  }

  /**
   * The account's claims with the upstream's on top, but for an email address another account
   * holds: the upstream may not hand this account someone else's address (apps that key people by
   * email would take one for the other), so the account keeps its own; nor vouch for the account's own
   * address once another account holds it too.
   */
  async #refreshed(account: Account, claims: Claims): Promise<Claims> {
    const { email, email_verified: _verified, ...rest } = claims;
    const own = email !== undefined && email.toLowerCase() === account.claims.email?.toLowerCase();
    // Nothing for the upstream to vouch for, or its own address not said verified: no one else's to read.
    if (!email || (own && claims.email_verified !== true)) return { ...account.claims, ...claims };
    const heldElsewhere = (await this.accounts.findByEmail(email)).some((other) => other.sub !== account.sub);
    if (!heldElsewhere) return { ...account.claims, ...claims };
    if (!own) return { ...account.claims, ...rest };
    // Its own address, held by another account since (an operator gave it to a local person after this
    // account took it unverified): the upstream's word alone no longer vouches for it, as it would not
    // have at a first sign-in (signIn: the link asks for that person's own sign-in). Held unverified,
    // apps and hints do not take this account for the other.
    return { ...account.claims, ...claims, email_verified: false };
  }

  /**
   * A new account for the upstream identity, named after it; named after its issuer too when that
   * name is taken (by the account of a provider removed since whose id this one was given, whose
   * person had the same sub), and then counted on: each link the person removes leaves its account
   * holding a name, and the next sign-in through the identity makes another (remove), which, both
   * names taken, failed with a 500 (second review of the twelfth passes).
   */
  async #created(upstream: { id: string; issuer: string }, upstreamSub: string, claims: Claims): Promise<Account> {
    const madeFor = identityMark(upstream, upstreamSub);
    for (const name of namesFor(upstream, upstreamSub)) {
      try {
        return await this.accounts.createWithoutPassword(name, claims, madeFor);
      } catch (error) {
        if (!(error instanceof AccountError && error.conflict)) throw error;
      }
    }
    throw new Error('unreachable: namesFor does not end');
  }

  /**
   * An account made for this identity (#created) that no link names: its first sign-in was cut off before its link.
   * Looked for among the names #created takes, in order, up to the first not taken (where it would have made one).
   */
  async #unlinked(upstream: { id: string; issuer: string }, upstreamSub: string): Promise<Account | undefined> {
    const madeFor = identityMark(upstream, upstreamSub);
    for (const name of namesFor(upstream, upstreamSub)) {
      const account = await this.accounts.findByUsername(name);
      if (!account || account.madeFor === madeFor) return account;
    }
    return undefined;
  }

  async #link(upstream: string, upstreamSub: string, sub: string, how: Link['how'], iss?: string): Promise<Link | undefined> {
    const link: Link = { sub, how, at: Math.floor(Date.now() / 1000), ...(iss !== undefined && { iss }), made: randomUUID() };
    // Its index entries before the link: an entry no link names is skipped (list) or harmless (a superset:
    // peopleLinkedTo), while a link written without them was never indexed (a later sign-in finds the
    // link and writes nothing): the account page did not list it, and removing the upstream did not
    // find the person to end what was granted through it (twelfth fresh-eyes passes).
    await Promise.all([this.kv.addToSet(accountLinksKey(sub), `${upstream}:${upstreamSub}`), this.kv.addToSet(linkedAccountsKey(upstream), sub)]);
    if (!(await this.kv.set(upstreamLinkKey(upstream, upstreamSub), JSON.stringify(link), { onlyIfAbsent: true }))) return undefined;
    return link;
  }
}

/**
 * The names an account made by an upstream's first sign-in takes (#created): usernameFor its sub, or,
 * that one taken (by the account of a provider removed since whose id this one was given), its issuer
 * and sub, and then those counted on (the accounts of links the person removed hold the first ones).
 */
function* namesFor(upstream: { id: string; issuer: string }, upstreamSub: string): Generator<string, never> {
  yield usernameFor(upstream.id, upstreamSub);
  yield usernameFor(upstream.id, `${upstream.issuer}\n${upstreamSub}`);
  for (let count = 2; ; count += 1) yield usernameFor(upstream.id, `${upstream.issuer}\n${upstreamSub}\n${count}`);
}

/** The identity an account was made for (Account.madeFor): a digest of the upstream's id, its issuer and the person's sub there. */
function identityMark(upstream: { id: string; issuer: string }, upstreamSub: string): string {
  return createHash('sha256').update(`${upstream.id}\n${upstream.issuer}\n${upstreamSub}`).digest('base64url');
}

/** A stable username for an account made by an upstream: "<upstream>-<hash of its sub>". */
function usernameFor(upstream: string, upstreamSub: string): string {
  return `${upstream}-${createHash('sha256').update(upstreamSub).digest('hex').slice(0, 12)}`;
}
