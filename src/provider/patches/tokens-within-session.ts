/**
 * An access token that expires with its session, and the ID token issued beside it, are issued with
 * no `exp` past that session's end as known when they are issued: the session's current expiry (ttl.session after its last use) and
 * ttl.sessionMax after its sign-in, whichever comes first.
 *
 * oidc-provider binds the access tokens of a grant without offline_access to the session they were
 * issued in (`expiresWithSession`, with the session's `sessionUid`), and checks that binding when it
 * finds a stored token (token_helpers.js checkSessionBinding): an opaque token ends with its session.
 * A JWT access token is not stored: its API verifies it alone (the JWKS, the revocation feed), and so
 * does our introspection (jwt-access-tokens.ts). A session's expiry (idle, or at ttl.sessionMax) is
 * no act: nothing goes on the revocation list, and the JWT lived on to its `exp` (ttl.AccessToken,
 * an hour by default). A session's expiry only moves later while it lives (each use moves it on, up
 * to ttl.sessionMax after the sign-in; see session-max.ts), so an `exp` within it never outlives
 * the session by its expiry; an ending that is an act (sign-out, an operator's, a withdrawal) goes on
 * the list as before. Opaque tokens get the same `exp` (and `expires_in`), which the engine's own
 * check then only repeats. Refresh tokens are not touched: the engine issues them for offline_access
 * only, whose grants outlive sessions by design (and whose tokens are not bound).
 *
 * What it changes in oidc-provider: AccessToken#save, for a token with `expiresWithSession`, first
 * lowers its `expiresIn` (from which the engine takes `exp`, the stored record's lifetime and the
 * response's `expires_in`) to the seconds left of its session. The session is the one the engine has
 * just read in the same request to check the code's, device code's or refresh token's binding to it
 * (Session.findByUid, kept here for that request only): no read more on the token endpoint; read
 * again only if the request had not read it. A session gone by then fails the request as the
 * engine's own check would have (invalid_grant). And IdToken.expiresIn (tokens-within-grant.ts
 * wraps it too), for the ID token of a response whose access token is so bound: lowered alike, from
 * the session that request read.
 * Pinned by test/unit/provider-patches.test.ts and test/e2e/session-bound-jwt.test.ts.
 */
import { errors, Provider } from 'oidc-provider';
import { machineSeconds } from '../../clock.js';

type StoredSession = { exp?: unknown; loginTs?: unknown };
type FindByUid = (uid: string, options?: object) => Promise<StoredSession | undefined>;
type SessionBound = { expiresWithSession?: unknown; sessionUid?: unknown; expiresIn?: number; readonly expiration: number };
type SessionRequest = { oidc?: { entities?: { AccessToken?: SessionBound } } };
type IdTokenModel = { expiresIn(ctx: unknown, token: unknown, client: unknown): number };

/** The epoch second `session` ends at: its expiry, and never past ttl.sessionMax after its sign-in. */
function sessionEnd(session: StoredSession, sessionMax: number): number {
  const ends = [typeof session.exp === 'number' ? session.exp : Infinity, typeof session.loginTs === 'number' ? session.loginTs + sessionMax : Infinity];
  return Math.min(...ends);
}

export function accessTokensWithinSessions(provider: Provider, sessionMax: number): void {
  const Session = provider.Session as unknown as { findByUid: FindByUid };
  // The sessions found by uid in a request (its Koa context), for the tokens it then issues.
  const found = new WeakMap<object, Map<string, StoredSession>>();
  const findByUid = Session.findByUid.bind(Session);
  Session.findByUid = async (uid, options) => {
    const session = await findByUid(uid, options);
    const request = Provider.ctx as object | undefined;
    if (request && session) {
      const sessions = found.get(request) ?? new Map<string, StoredSession>();
      found.set(request, sessions.set(uid, session));
    }
    return session;
  };

  const prototype = provider.AccessToken.prototype as unknown as SessionBound & { save(): Promise<string> };
  const save = prototype.save;
  prototype.save = async function (this: SessionBound) {
    if (this.expiresWithSession && typeof this.sessionUid === 'string') {
      const request = Provider.ctx as object | undefined;
      const session = (request && found.get(request)?.get(this.sessionUid)) ?? (await Session.findByUid(this.sessionUid));
      if (!session) throw new errors.InvalidGrant('grant request is invalid (its session has ended)');
      // As configured (ttl.AccessToken, the client's secret grace), then within the session.
      const configured = this.expiration;
      this.expiresIn = Math.max(1, Math.min(configured, sessionEnd(session, sessionMax) - machineSeconds()));
    }
    return save.call(this);
  };

  // The ID token issued beside such an access token (a code's, a device code's: a refresh token is
  // only ever an offline grant's) tells its app the sign-in holds until its `exp`, which was
  // ttl.idToken (an hour) whatever was left of the session, and of the grant that ends with it (tenth
  // fresh-eyes pass): no `exp` past the session's end either, as tokens-within-grant.ts bounds it by
  // the grant. The session is the one the access token was just bounded by, in the same request.
  const IdToken = provider.IdToken as unknown as IdTokenModel;
  const expiresIn = IdToken.expiresIn;
  if (typeof expiresIn !== 'function') throw new Error('oidc-provider IdToken.expiresIn is gone: review src/provider/patches/tokens-within-session.ts');
  IdToken.expiresIn = function (ctx, token, client) {
    const lifetime = expiresIn.call(this, ctx, token, client);
    const request = (ctx ?? Provider.ctx) as SessionRequest | undefined;
    const issued = request?.oidc?.entities?.AccessToken;
    if (!issued?.expiresWithSession || typeof issued.sessionUid !== 'string') return lifetime;
    const session = found.get(request!)?.get(issued.sessionUid);
    return session ? Math.max(1, Math.min(lifetime, sessionEnd(session, sessionMax) - machineSeconds())) : lifetime;
  };
}
