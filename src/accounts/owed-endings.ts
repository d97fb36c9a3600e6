/**
 * The endings a change of credentials owes, kept until they are done: a passkey, authenticator app,
 * upstream link or set of recovery codes removed on the account page ends the person's other
 * sessions it signed in (and what they were granted), and a password change with "sign out every
 * other session" ends all of them; an operator's reset of a person's second factors (admin API,
 * CLI) ends every session they signed in, and an upstream's removal every session and grant it
 * signed in (upstreams/removal.ts). The request ends them before its write and again after it (a
 * sign-in that finished meanwhile); should the store cut it off after the write, the 503 leaves
 * the credential gone and nothing to send again that would end anything (a passkey removed answers
 * 404, a password changed is refused as the wrong one, an upstream removed is "no upstream"), and
 * a thief's session, refresh token and access token would live on. So before anything ends, the
 * request keeps the ending as owed in the store (store/due-endings.ts), due OWED_S later, and drops
 * it once done; one it did not finish is finished by the sweep (provider/backchannel-delivery.ts)
 * at whichever instance claims it (the CLI's too), again until it succeeds. Run twice (the request
 * slower than OWED_S, or its drop lost), a removal's ending ends nothing more: no session signs in
 * with a removed credential since. A password change's also signs out a session the person signed
 * in with the new password in between, and an upstream's one signed in through a provider added
 * again under its id in between: more, never less. On the embedded store (no shared timers)
 * nothing is kept: the request's own ending is all there is, as for back-channel logouts.
 *
 * An API's removal and a client's deletion have the same shape (their tokens end before the record
 * goes and once more after, and once it is gone nothing finds it to end them again), and so does a
 * client's change (what it ends, such as a leaked secret's tokens, ends before the write and once
 * more after; sent again, it changes nothing, so ends nothing): they are kept owed by Apis.remove
 * and the store's adapter (store/due-endings.ts OwedKeeper: neither imports accounts/), and
 * finished here through the functions the server gives (apis.ts finishOwed, store/adapter.ts
 * finishClientEnding), which end nothing when an API or a client of the identifier is there again
 * (added since: its own addition ended the removed one's tokens again), or a change was never
 * written. So does a change of a client's grants at APIs that takes something away (revoked), and a
 * person's ending by an account write between two revocation-list entries (accounts.ts: disabled,
 * a password set by an operator, grants revoked, an app's access withdrawn).
 */
import type { GrantRevocation } from '../revocation/grants.js';
import type { KeepsOwed } from '../store/due-endings.js';
import type { OwedClientEnding } from '../store/adapter.js';
import { isClientGrants, type OwedApiEnding } from '../apis/apis.js';
import type { OwedPersonEnding } from './accounts.js';
import type { SessionCredentials } from './session-credentials.js';
import { withSecondFactor, type AccountSessions, type ForgetsConsentsGivenWith, type SignedInWith } from './sessions.js';
import type { RememberedConsents } from './page/apps-section.js';

/** What was removed or changed, which says which other sessions end. */
export type Changed =
  | { readonly kind: 'passkey'; readonly id: string }
  | { readonly kind: 'totp' }
  | { readonly kind: 'recovery-codes' }
  /** An upstream link, "<upstream>:<upstream sub>". */
  | { readonly kind: 'link'; readonly id: string }
  /** An operator's reset of every second factor (the admin API, the CLI). */
  | { readonly kind: 'second-factors' }
  /** A password change signing every other session out. */
  | { readonly kind: 'password' };

/**
 * An ending owed: the person's, what changed, and the session that changed it (which stays; none
 * for an operator's change); or an upstream's removal (what it signed in, everyone's); or an API's
 * removal (every token for it), or a change of a client's grants there (what it took); or a client's
 * deletion or change (what it ends of the client's); or a person's ending (every token of theirs, or
 * of theirs for one client: accounts.ts).
 */
export type OwedEnding = { readonly sub: string; readonly changed: Changed; readonly except?: string } | { readonly upstream: string } | OwedApiEnding | OwedClientEnding | OwedPersonEnding;

const KINDS: ReadonlySet<string> = new Set(['passkey', 'totp', 'recovery-codes', 'link', 'second-factors', 'password']);

/** Whether a session was signed in with what was removed (by its recorded credential; by its amr if older than those records). */
export function signedInWith(changed: Exclude<Changed, { kind: 'password' }>): SignedInWith {
  switch (changed.kind) {
    case 'second-factors':
      return withSecondFactor;
    case 'passkey':
      return (used, amr) => (used ? (used.passkeys ?? []).includes(changed.id) : amr.includes('hwk') || amr.includes('swk'));
    case 'totp':
      return (used, amr) => (used ? used.methods.includes('totp') : amr.includes('otp'));
    // amr does not tell a recovery code apart: recorded sessions only.
    case 'recovery-codes':
      return (used) => used?.methods.includes('recovery-code') ?? false;
    // amr does not tell one link from another: a session without its record (one signed in before
    // the records lived as long as their session, sixteenth fresh-eyes passes) that signed in through
    // an upstream at all ends, as a passkey's removal ends every passkey session without one.
    case 'link':
      return (used, amr) => (used ? (used.links ?? []).includes(changed.id) : amr.includes('fed'));
  }
}

interface Options {
  /** Keeps an ending owed while its request runs (nothing, on the embedded store). */
  readonly keeper: KeepsOwed;
  readonly sessions: AccountSessions;
  readonly credentials: SessionCredentials;
  readonly grants: GrantRevocation;
  readonly consents: RememberedConsents & ForgetsConsentsGivenWith;
  /** What an upstream's removal ends, run on what is there now (upstreams/removal.ts endingsThrough); how many sessions ended. */
  readonly throughUpstream?: (id: string) => Promise<number>;
  /** What an API's removal or a change of a client's grants ends, unless there again or never written (apis.ts finishOwed). */
  readonly apiEnding?: (ending: OwedApiEnding) => Promise<unknown>;
  /** What a client's deletion or change ends, unless it was never written (store/adapter.ts finishClientEnding). */
  readonly clientEnding?: (ending: OwedClientEnding) => Promise<unknown>;
  /** A person's ending's revocation-list entry, once more (accounts.ts finishPersonEnding). */
  readonly personEnding?: (ending: OwedPersonEnding) => Promise<unknown>;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A finishing function this instance was given; without it, a failure (the ending stays owed, for the sweep to try again). */
function given<T>(finish: T | undefined, what: string): T {
  if (!finish) throw new Error(`${what} is owed, and this instance was not given its ending`);
  return finish;
}

export class OwedEndings {
  readonly #options: Options;
  /** A removed credential's ending revokes its grants with the consents given in them (perhaps by whoever held it). */
  readonly #revokeGrant: (grantId: string) => Promise<unknown>;

  constructor(options: Options) {
    this.#options = options;
    this.#revokeGrant = options.grants.revokingWithConsent(options.consents);
  }

  /** Kept as owed before anything of it ends; the member to drop once done (undefined: nothing kept). A failure fails the change before it began. */
  owe(ending: OwedEnding): Promise<string | undefined> {
    return this.#options.keeper.owe(ending);
  }

  /** Done: no longer owed (OwedKeeper.drop). */
  drop(member: string | undefined): Promise<void> {
    return this.#options.keeper.drop(member);
  }

  /** The ending, run on what is there now; how many sessions it ended (none for an API's or a client's: tokens). */
  async finish(ending: OwedEnding): Promise<number> {
    const { sessions, credentials, consents, throughUpstream, apiEnding, clientEnding, personEnding } = this.#options;
    if ('upstream' in ending) return given(throughUpstream, "an upstream's removal")(ending.upstream);
    if ('api' in ending || 'clientGrants' in ending) return given(apiEnding, "an API's removal or a change of a client's grants")(ending).then(() => 0);
    if ('client' in ending) return given(clientEnding, "a client's deletion or change")(ending).then(() => 0);
    if ('personEnded' in ending) return given(personEnding, "a person's ending")(ending).then(() => 0);
    const { sub, changed, except } = ending;
    if (changed.kind === 'password') return this.#signOutOthers(sub, except);
    return sessions.endSignedInWith(sub, credentials, signedInWith(changed), this.#revokeGrant, except, consents);
  }

  /** An owed ending as kept (DueEndings.owe), or undefined when it is not one. */
  static parse(member: string): OwedEnding | undefined {
    try {
      const { sub, changed, except, upstream, api, clientGrants, client, from, to, personEnded, withdrawnFrom } = JSON.parse(member) as {
        sub?: unknown;
        changed?: { kind?: unknown; id?: unknown };
        except?: unknown;
        upstream?: unknown;
        api?: unknown;
        clientGrants?: unknown;
        client?: unknown;
        from?: unknown;
        to?: unknown;
        personEnded?: unknown;
        withdrawnFrom?: unknown;
      };
      if (sub === undefined && changed === undefined) {
        if (typeof upstream === 'string') return { upstream };
        if (typeof api === 'string') return { api };
        if (typeof clientGrants === 'string') return isClientGrants(from) && isClientGrants(to) ? { clientGrants, from, to } : undefined;
        if (typeof personEnded === 'string') {
          if (withdrawnFrom === undefined) return { personEnded };
          return typeof withdrawnFrom === 'string' ? { personEnded, withdrawnFrom } : undefined;
        }
        if (typeof client !== 'string') return undefined;
        // A change names the client's record before and after, both; a deletion neither.
        if (from === undefined && to === undefined) return { client };
        return isRecord(from) && isRecord(to) ? { client, from, to } : undefined;
      }
      if (typeof sub !== 'string' || (except !== undefined && typeof except !== 'string') || typeof changed?.kind !== 'string' || !KINDS.has(changed.kind)) return undefined;
      if ((changed.kind === 'passkey' || changed.kind === 'link') && typeof changed.id !== 'string') return undefined;
      return { sub, changed: changed as Changed, ...(except === undefined ? {} : { except }) };
    } catch {
      return undefined;
    }
  }

  /**
   * Every other session of the person, with every grant but `except`'s sessions' (the old password
   * may have leaked: a thief's refresh token would outlive a plain sign-out). So does every grant
   * whose session has ended already (a thief who signed in with the old password, got offline
   * access and left). The consents remembered for apps other than `except`'s go first (a thief's
   * consent to an app of theirs would get it the person's codes silently at their next sign-in;
   * before the grants, so none is made again). How many sessions ended.
   */
  async #signOutOthers(sub: string, except: string | undefined): Promise<number> {
    const { sessions, grants, consents } = this.#options;
    const all = await sessions.list(sub);
    const others = all.filter((session) => session.uid !== except);
    const own = all.find((session) => session.uid === except)?.authorizations ?? {};
    const [remembered, given] = await Promise.all([consents.rememberedBy(sub), grants.ofAccount(sub)]);
    const elsewhere = new Set([...remembered, ...given].map(({ clientId }) => clientId).filter((clientId) => !(clientId in own)));
    await Promise.all([...elsewhere].map((clientId) => consents.forget(sub, clientId)));
    await Promise.all(others.map((session) => sessions.endWithEveryGrant(session, (grantId) => grants.revoke(grantId))));
    const kept = new Set(Object.values(own).map((held) => held.grantId));
    const orphaned = given.filter((grant) => !kept.has(grant.grantId));
    await Promise.all(orphaned.map((grant) => grants.revoke(grant.grantId)));
    return others.length;
  }
}
