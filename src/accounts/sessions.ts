/**
 * Ending a person's sessions when they may no longer sign in (disabled or deleted).
 *
 * - From outside a request (admin API, CLI): every session of the person, found through the
 *   store's index of sessions by account, is ended.
 * - At use: a session that reaches the authorization endpoint, the device verification pages or one of our own pages is
 *   re-checked against the account, and ended when its person is disabled or gone, or it was
 *   signed in before everything of theirs ended (an operator set their password). This also
 *   covers sessions the index does not know (made before it existed). Without it, oidc-provider
 *   takes such a session as signed in, its findAccount answers nothing, and its consent step
 *   fails with a TypeError (a 500); once ended, the person gets the sign-in page (or
 *   login_required for prompt=none).
 *
 * Ending a session is what sign-out does (oidc-provider's end_session): the session is destroyed,
 * so its cookie signs no one in any more, then each app of the session that registered a
 * backchannel_logout_uri is sent a logout token (OpenID Connect Back-Channel Logout 1.0). The
 * person's grants and tokens are revoked separately (GrantRevocation.revokeAccount).
 */
import type { Context, Middleware, Next } from 'koa';
import { scoped } from '../http/layers.js';
import { errors, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import type { ProviderInService } from '../provider-in-service.js';
import { endedWithPerson, type Account, type Accounts } from './accounts.js';
import type { SessionCredential, SessionCredentials } from './session-credentials.js';
import { readGrantAhead } from '../store/adapter.js';
import { SessionEnded } from '../store/held-writes.js';
import { AdapterIndexes } from '../store/adapter-indexes.js';
import type { SessionGrantEndings } from '../revocation/grants.js';
import type { Kv } from '../store/kv.js';
import { sessionRenewedKey, sessionRenewingKey } from '../store/keys.js';
import { digestOf } from '../store/record-keys.js';
import { sessionAppIsClient } from '../session-apps.js';
import { pendingLogout } from '../pending-logouts.js';

type Session = Awaited<ReturnType<Provider['Session']['get']>>;
type RevokeGrant = (grantId: string) => Promise<unknown>;
/** Whether a session was signed in with a credential: its recorded credential (undefined for one older than those records) and its amr. */
export type SignedInWith = (credential: SessionCredential | undefined, amr: readonly string[]) => boolean;

/**
 * The remembered consents (provider/consents.ts, which accounts/ may not import), as far as ending
 * what a credential signed in needs them: those given in sessions it signed in, but `exceptSession`'s.
 */
export interface ForgetsConsentsGivenWith {
  forgetGivenWith(accountId: string, given: (credential: SessionCredential) => boolean, exceptSession?: string): Promise<unknown>;
}

/** A session signed in with any second factor (what an operator's reset removes); older ones by amr. */
export const withSecondFactor: SignedInWith = (used, amr) =>
  used ? used.methods.some((method) => method !== 'password' && method !== 'federated') : amr.includes('mfa') || amr.includes('hwk') || amr.includes('swk');

/**
 * A session signed in through one of the upstream's links ("<upstream>:<upstream sub>"), by its
 * recorded credential: what removing the upstream ends (upstreams/removal.ts) besides the sessions
 * its own index finds (older ones among them, by amr). A session of a person linked to the upstream
 * without its record (signed in before the records lived as long as their session, sixteenth
 * fresh-eyes passes) ends if it signed in through any upstream (amr `fed`): amr does not say which.
 */
export const throughUpstream =
  (upstream: string): SignedInWith =>
  (used, amr) =>
    used ? (used.links ?? []).some((link) => link.startsWith(`${upstream}:`)) : amr.includes('fed');

/**
 * The account each authorization request's recheck read, for the same request's findAccount
 * (provider.ts) to take once instead of reading it again. Keyed by the request's Koa context, so
 * nothing outlives the request: a person disabled since is seen by the next one.
 */
const checkedAccounts = new WeakMap<object, Account>();

/** The account `sub` as this request's recheck read it, once; undefined when it read no such account. */
/**
 * The session property that says its sign-in's age is not known (provider/patches/sign-in-time.ts
 * sets it: an upstream that said no auth_time and owed none).
 */
export const AUTH_AGE_UNKNOWN = 'authAgeUnknown';

/**
 * The session property that says when its person signed in on the store's clock (clock.ts
 * epochSeconds; provider/patches/sign-in-time.ts sets it with `loginTs`), which the person's cutoff
 * (accounts.ts endedAt) is compared with: `loginTs` is the engine's, on the machine clock of the
 * instance that signed it in (twenty-seventh endings pass). A session without it counts from `loginTs`.
 */
export const SIGNED_IN_ON_STORE = 'signedInOnStore';

/**
 * When a session's sign-in was, for a recent-sign-in check of our pages (accounts.reauthenticateAfter):
 * its auth_time, or 0 (long ago) when its age is not known, so the check asks for a sign-in again.
 */
export function signInTimeForChecks(session: Session): number {
  return (session as unknown as Record<string, unknown>)[AUTH_AGE_UNKNOWN] === true ? 0 : (session.authTime() ?? 0);
}

export function accountCheckedFor(ctx: object, sub: string): Account | undefined {
  const account = checkedAccounts.get(ctx);
  checkedAccounts.delete(ctx);
  if (account) takenAccounts.set(ctx, account);
  return account?.sub === sub ? account : undefined;
}

/** What accountCheckedFor handed out, for accountReadFor (the engine loads the account before the grant). */
const takenAccounts = new WeakMap<object, Account>();

/**
 * The account as this request's findAccount read it itself (no recheck before it: a sign-in's resume),
 * for accountReadFor: the grant made there from a remembered consent is checked against its cutoffs
 * with it (provider/consents.ts loadExistingGrant), no read more.
 */
export function accountReadByEngine(ctx: object, account: Account): void {
  if (!takenAccounts.has(ctx)) takenAccounts.set(ctx, account);
}

/**
 * The account `sub` as this request's recheck (or findAccount: accountReadByEngine) read it, whether findAccount took it or not (the
 * session's grant is checked against its cutoffs after the engine loaded the account:
 * provider/consents.ts loadExistingGrant); undefined when it read no such account.
 */
export function accountReadFor(ctx: object, sub: string): Account | undefined {
  const account = checkedAccounts.get(ctx) ?? takenAccounts.get(ctx);
  return account?.sub === sub ? account : undefined;
}

/** An account read started before the session naming it was read (recheckAtAuthorization). */
interface StartedAccountRead {
  readonly sub: string;
  readonly account: Promise<Account | undefined>;
}

/** Sessions (by id and client) whose names recheckAtAuthorization keeps, at most. */
const NAMED_SESSIONS = 10_000;

/** Seconds a renewal of a session's id holds it against another (renewId): a destroy and a write. */
const RENEWING_S = 10;
/** Seconds a renewed id is known as renewed here (renewId): a form sent again that long after finds it gone for that. */
const RENEWED_S = 60;

/** The session cookie's options: the engine's `cookies.long` (provider.ts), and renewId's. */
export const SESSION_COOKIE = { httpOnly: true, sameSite: 'lax' } as const;

/** oidc-provider's Provider#cookieName, missing from its types. */
interface Named {
  cookieName(type: 'session'): string;
}

/** oidc-provider's own Client#backchannelLogout (what end_session calls), missing from its types. */
interface LogsOut {
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

export class AccountSessions {
  constructor(
    private readonly kv: Kv,
    /** The provider in service: logout tokens are signed with its current key. */
    private readonly providers: ProviderInService,
    private readonly accounts: Accounts,
  ) {}

  /** Ends every session of a person. Returns how many there were. */
  async endAll(accountId: string): Promise<number> {
    const index = new AdapterIndexes(this.kv);
    let ended = 0;
    for (const id of await index.sessionIds(accountId)) {
      const session = await this.providers.current.Session.find(id);
      if (session?.accountId === accountId) {
        await this.end(session);
        ended += 1;
      }
      await index.forgetSession(accountId, id);
    }
    return ended;
  }

  /**
   * The session goes, then back-channel logout to each app of the session that asked for it: an app
   * told of the end finds it ended (Back-Channel Logout 1.0 §2.7), and the session signs no one in
   * while the slowest app is told (up to the outbound timeout). Its authorizations are read from the
   * object, which outlives its record.
   *
   * The apps are looked up before the session goes, and only a client that is no more (the engine's
   * InvalidClient, as its end_session's clientForLogout) is skipped: a store failure at the look-up
   * fails the ending with the session still there, to end again. Before the fifth endings pass
   * (2026-12-02) every failure was taken for "no such client" after the session was gone: the ending
   * answered success, the app was never told, and nothing was left to run again for.
   */
  async end(session: Session): Promise<void> {
    const provider = this.providers.current;
    const accountId = session.accountId!;
    const emit = (event: string, ...args: unknown[]) => (provider as unknown as NodeJS.EventEmitter).emit(event, undefined, ...args);
    const told = await Promise.all(
      Object.entries(session.authorizations ?? {}).map(async ([clientId, { sid }]) => {
        if (!sid) return undefined;
        const client = await provider.Client.find(clientId).catch((error: unknown) => (error instanceof errors.InvalidClient ? undefined : Promise.reject(error)));
        // Not an app made since with a deleted app's id, which the person never signed in to (session-apps.ts).
        return client?.backchannelLogoutUri && sessionAppIsClient(session, client) ? { client, sid } : undefined;
      }),
    );
    // Who is to be told is kept before the session goes, until told: an ending stopped between the
    // two (the store cut off at the session's ending) leaves the app to the sweep, where its retry,
    // finding no session, had nothing left to tell it from (patches/backchannel-retry.ts).
    const settled = await Promise.all(told.map((app) => (app ? pendingLogout(app.client, accountId, app.sid) : undefined)));
    await session.destroy();
    await Promise.all(
      told.map((app, at) => {
        if (!app) return undefined;
        const { client, sid } = app;
        return (client as unknown as LogsOut)
          .backchannelLogout(accountId, sid)
          .then(
            () => emit('backchannel.success', client, accountId, sid),
            (error: unknown) => emit('backchannel.error', error, client, accountId, sid),
          )
          .then(settled[at]);
      }),
    );
  }

  /**
   * A person's live sessions (ids in the index whose session is gone are dropped from it), each
   * once: one kept by its id by the release before and saved since is listed by both.
   */
  async list(accountId: string): Promise<Session[]> {
    const index = new AdapterIndexes(this.kv);
    const ids = await index.sessionIds(accountId);
    const sessions = await Promise.all(ids.map((id) => this.providers.current.Session.find(id)));
    await Promise.all(ids.map((id, at) => (sessions[at] ? undefined : index.forgetSession(accountId, id))));
    const uids = new Set<string>();
    return sessions.filter((session): session is Session => session?.accountId === accountId && !uids.has(session.uid) && Boolean(uids.add(session.uid)));
  }

  /**
   * Signs one of a person's sessions out (the account page), by its uid, as signing out of every app
   * on that device does (end_session with logout=yes). False when the person has no such session.
   */
  async signOut(accountId: string, uid: string, grants: SessionGrantEndings): Promise<boolean> {
    const session = await this.providers.current.Session.findByUid(uid);
    if (!session || session.accountId !== accountId) return false;
    await this.signOutSession(session, grants);
    return true;
  }

  /**
   * Ends a session as end_session does: each grant it made is revoked with its tokens unless it
   * outlives sign-out (offline access), whose access tokens bound to the session end with it all the
   * same (SessionGrantEndings), back-channel logout to its apps, then the session goes.
   */
  async signOutSession(session: Session, grants: SessionGrantEndings): Promise<void> {
    await this.#endSession(session, (grantId, persistsLogout) => (persistsLogout ? grants.endSessionBound(grantId) : grants.revoke(grantId)));
  }

  /**
   * Ends a session that expired (idle, or ttl.sessionMax after its sign-in), as signing out would
   * have: each grant it made is revoked with its tokens unless it outlives sign-out (offline access,
   * kept whole: what the session gave it bound to the session expired with it already), back-channel
   * logout to its apps, then the session's ending stays in the store.
   */
  async endExpired(session: Session, grants: Pick<SessionGrantEndings, 'revoke'>): Promise<void> {
    await this.#endSession(session, (grantId, persistsLogout) => (persistsLogout ? Promise.resolve() : grants.revoke(grantId)));
  }

  /**
   * Ends a session with every grant it made, offline access too: what was granted on the strength
   * of a sign-in that is no longer trusted (a credential removed or reset, a password changed, an
   * upstream removed or cut off), back-channel logout to its apps, then the session goes.
   */
  async endWithEveryGrant(session: Session, revokeGrant: RevokeGrant): Promise<void> {
    await this.#endSession(session, revokeGrant);
  }

  async #endSession(session: Session, endGrant: (grantId: string, persistsLogout: boolean) => Promise<unknown>): Promise<void> {
    const grants = Object.values(session.authorizations ?? {}) as { grantId?: string; persistsLogout?: boolean }[];
    await Promise.all(grants.map(({ grantId, persistsLogout }) => (grantId ? endGrant(grantId, persistsLogout === true) : undefined)));
    await this.end(session);
    if (session.accountId) await new AdapterIndexes(this.kv).forgetSession(session.accountId, session.jti);
  }

  /**
   * After a credential was removed: ends the person's sessions (but `except`, the one acting) that
   * `signedInWith` says were signed in with it, each with every grant it made (offline access too:
   * they were granted on the strength of that credential); and revokes the grants made with it
   * whose session is gone already (offline access kept after signing out), found by the
   * credentials recorded against each grant (SessionCredentials.recordGrant). The acting session's
   * grants stay. With `consents`, first the consents given in sessions signed in with it (but the
   * acting one's) are forgotten, their grants live or not. How many sessions ended.
   */
  async endSignedInWith(
    accountId: string,
    credentials: SessionCredentials,
    signedInWith: SignedInWith,
    revokeGrant: RevokeGrant,
    except?: string,
    consents?: ForgetsConsentsGivenWith,
  ): Promise<number> {
    await consents?.forgetGivenWith(accountId, (used) => signedInWith(used, []), except);
    const [all, grantIds] = await Promise.all([this.list(accountId), new AdapterIndexes(this.kv).grantIds({ accountId })]);
    const grantsOf = (session: Session) => Object.values(session.authorizations ?? {}).flatMap(({ grantId }: { grantId?: string }) => (grantId ? [grantId] : []));
    const keep = new Set(all.filter((session) => session.uid === except).flatMap(grantsOf));
    const sessions = all.filter((session) => session.uid !== except);
    const ended = await Promise.all(
      sessions.map(async (session) => {
        if (!signedInWith(await credentials.of(session.uid), session.amr ?? [])) return false;
        for (const grantId of grantsOf(session)) keep.add(grantId);
        await this.endWithEveryGrant(session, revokeGrant);
        return true;
      }),
    );
    // A grant's record says which credentials signed in the sessions that made it; it has no amr.
    await credentials.revokeGrantsMadeWith(grantIds, (used) => signedInWith(used, []), revokeGrant, keep);
    // And once more now that the sessions are ended: a consent page of one of them confirmed after
    // the first forgetting, and before its session ended, saw the session live once it wrote its
    // consent (interactions/consent.ts checks after writing); one confirmed later sees it ended.
    await consents?.forgetGivenWith(accountId, (used) => signedInWith(used, []), except);
    return ended.filter(Boolean).length;
  }

  /**
   * Gives the browser in front of `ctx` a new id for the session it holds, as the engine does at
   * every sign-in (its resume), here at a change of how the person signs in (OWASP Session
   * Management: renewed at every change of privilege): a copy of the cookie taken before signs
   * nobody in any more, "sign out every other session" with it. The old id's record is destroyed
   * before the new one is written (the engine's Session.save with `oldId`), so a failure between
   * signs this browser out rather than keeping the copy. The uid stays, and with it what is kept
   * by it (the index by account, the credentials and activity recorded, the apps' sid).
   * 'taken' when another request renewed the id meanwhile (not a renewal of ours): the caller ends
   * every session of the person; 'done' otherwise.
   */
  async renewId(provider: Provider, ctx: Context, sessionId: string, uid: string): Promise<'done' | 'taken'> {
    // One renewal of a session at a time (a form sent twice), and each reads the session once it
    // holds it: two at once would each write a record of the same uid, and the one left behind
    // would end, at its expiry, the apps of the one in use. The later finds the id gone and leaves
    // this browser the one the first set.
    const held = sessionRenewingKey(uid);
    if (!(await this.kv.set(held, '1', { onlyIfAbsent: true, ttl: RENEWING_S, bounded: true }))) return 'done';
    const renewed = sessionRenewedKey(digestOf(sessionId));
    try {
      const session = await provider.Session.find(sessionId);
      // Read a moment ago by this request and gone now, not by a renewal of ours: another request
      // holding the id renewed it meanwhile (the engine does at every sign-in or consent it
      // resumes), a copy of the cookie among them, whose session of the same uid the ending that
      // spares this browser's spares too (red team, 2026-12-06).
      if (!session) return (await this.kv.get(renewed)) === undefined ? 'taken' : 'done';
      if (!session.accountId || session.uid !== uid) return 'done';
      session.resetIdentifier();
      try {
        await session.persist();
      } catch (error) {
        // Ended meanwhile (signed out elsewhere while this change was made): nothing left to renew.
        if (error instanceof SessionEnded) return 'done';
        throw error;
      }
      // The cookie goes out as soon as the new record is written: a failure of what follows (the
      // mark below) is answered 503 with it, and this browser stays signed in under the new id. Set
      // after the mark, a blip there signed the browser out and left the new record held by no one.
      const { cookies } = provider.createContext(ctx.req, ctx.res);
      // Under an https issuer ctx.secure is true whatever the connection (app.ts), as Session.get reads it.
      cookies.secure ||= ctx.secure;
      const lasting = !session.transient && typeof session.exp === 'number';
      cookies.set((provider as unknown as Named).cookieName('session'), session.jti, { ...SESSION_COOKIE, ...(lasting && { expires: new Date(session.exp! * 1000) }) });
      await this.kv.set(renewed, '1', { ttl: RENEWED_S });
      return 'done';
    } finally {
      await this.kv.del([held]);
    }
  }

  /**
   * Clears this browser's session cookie (and its signature), as the engine's sign-out does: for a
   * sign-out of this browser's own session that is not the engine's (the account page's "Sign out" of
   * "This browser"). Under an https issuer the cookie is __Host-, which a browser clears only when the
   * clearing Set-Cookie is Secure with Path=/ (ctx.secure is true there whatever the connection, app.ts).
   * Before, the browser kept the ended session's id (the web surface, ninth pass).
   */
  clearCookie(provider: Provider, ctx: Context): void {
    const { cookies } = provider.createContext(ctx.req, ctx.res);
    cookies.secure ||= ctx.secure;
    cookies.set((provider as unknown as Named).cookieName('session'), null, { ...SESSION_COOKIE });
  }

  /**
   * The session's person when they may still be signed in; otherwise the session is ended.
   * `alongside`: reads that need the session too, started with the account's (one round trip).
   */
  async signedIn(
    provider: Provider,
    ctx: Context,
    alongside?: (session: Session) => void,
    started?: StartedAccountRead,
  ): Promise<{ accountId: string; account: Account; session: Session } | undefined> {
    const session = await provider.Session.get(ctx);
    if (!session.accountId) return undefined;
    alongside?.(session);
    const account = await (started?.sub === session.accountId ? started.account : this.accounts.find(session.accountId));
    // A session signed in before everything of the person ended (accounts.ts endedAt) ends, found or
    // not by the index when they were disabled or their password set.
    const signedInAt = (session as unknown as Record<string, unknown>)[SIGNED_IN_ON_STORE] ?? session.loginTs;
    if (account && !account.disabled && !endedWithPerson(account, signedInAt, 'session')) return { accountId: account.sub, account, session };
    await this.end(session);
    return undefined;
  }

  /**
   * provider.use middleware: at the authorization endpoint and the device verification pages
   * (RFC 8628 /device, each with its resume path), a session whose person is disabled or gone is
   * ended before oidc-provider reads it: both sign a person in to an app from the session.
   *
   * What it reads, oidc-provider does not read again (patches/session-loaded-once.ts, and
   * accountCheckedFor for findAccount); at the authorization endpoint, the grant the session holds
   * for the client asking is read with the account, for provider/consents.ts to find.
   */
  recheckAtAuthorization(provider: Provider): Middleware {
    const authorization = provider.pathFor('authorization');
    const paths = [authorization, provider.pathFor('code_verification')];
    // Under /device too, but a device's own endpoint, which no browser session reaches.
    const deviceAuthorization = provider.pathFor('device_authorization');
    const grantOf = (session: Session, clientId: unknown) => (typeof clientId === 'string' ? session.authorizations?.[clientId]?.grantId : undefined);
    const grantAhead = (ctx: Context) => (session: Session) => {
      const grantId = grantOf(session, ctx.query.client_id);
      if (grantId) readGrantAhead(this.kv, grantId, ctx);
    };
    const sessionCookie = (provider as unknown as Named).cookieName('session');
    // What each session named when its last authorization request here was answered (its person,
    // and its grant for the client that asked), by session id and client: the next one reads them
    // with the session, in its round trip, instead of once the session is read. Names only: what
    // they hold is read after the request arrived, as before, and used only when the session read
    // names the same. The session id is the cookie's, unverified: Session.get checks its signature,
    // and a forged one at most starts a read that nothing uses. Bounded: the oldest go first.
    const named = new Map<string, { sub: string; grantId: string | undefined }>();
    const authorize = async (ctx: Context, next: Next) => {
      const clientId = ctx.query.client_id;
      const key = typeof clientId === 'string' ? `${ctx.cookies.get(sessionCookie, { signed: false }) ?? ''} ${clientId}` : undefined;
      const names = key === undefined ? undefined : named.get(key);
      let started: StartedAccountRead | undefined;
      if (names) {
        const account = this.accounts.find(names.sub);
        account.catch(() => {}); // read by signedIn, or dropped (the session names someone else)
        started = { sub: names.sub, account };
        if (names.grantId) readGrantAhead(this.kv, names.grantId, ctx);
      }
      const found = await this.signedIn(provider, ctx, grantAhead(ctx), started);
      if (found) checkedAccounts.set(ctx, found.account);
      await next();
      // The session as the engine left it (the same object: patches/session-loaded-once.ts).
      const session = found?.session;
      // Only for a client the engine found: a client_id of any length and spelling would otherwise
      // take a place (and its bytes) in the map.
      const known = (ctx as unknown as KoaContextWithOIDC).oidc?.client?.clientId === clientId;
      if (!session?.accountId || !known || (session as { destroyed?: boolean }).destroyed) return;
      if (key !== undefined) named.delete(key);
      if (named.size >= NAMED_SESSIONS) named.delete(named.keys().next().value!);
      named.set(`${session.jti} ${clientId}`, { sub: session.accountId, grantId: grantOf(session, clientId) });
    };
    const recheck = async (ctx: Context, next: Next) => {
      if (ctx.path === authorization) return authorize(ctx, next);
      const found = await this.signedIn(provider, ctx);
      if (found) checkedAccounts.set(ctx, found.account);
      return next();
    };
    // Scoped by the prefixes its own test stays within (http/layers.ts).
    return scoped({ prefixes: paths }, (ctx, next) =>
      ctx.path !== deviceAuthorization && paths.some((path) => ctx.path === path || ctx.path.startsWith(`${path}/`)) ? recheck(ctx, next) : next(),
    );
  }
}
