/**
 * An unchanged session is not written back on every request: its expiry moves on in steps.
 *
 * oidc-provider saves the session at the end of every request to the authorization endpoint, even
 * when nothing in it changed, to move its expiry to ttl.session from now (and with it the store's
 * session indexes: three writes). What it changes: Session#save skips the write when the session
 * holds what it held when it was loaded and the write would move its expiry on by less than `step`
 * seconds; the session keeps the expiry it has (and the cookie, set from it, says the same). Any
 * change (a sign-in, a new app's sid or grant, a renewed id) is written at once, and so is an expiry
 * that would move earlier (ttl.session lowered since; or the expiry session-idle.ts lowered on
 * reading it, STORED_EXP): a session lives ttl.session after its last use, at most `step` seconds less.
 * Pinned by test/unit/provider-patches.test.ts and test/e2e/authorization-round-trips.test.ts.
 */
import { Provider } from 'oidc-provider';
import { STORED_EXP } from './session-idle.js';

/**
 * Endpoints that load a session only to check a token's binding to it (checkSessionBinding) and
 * never save one: what a session held is not kept there (a session saved without it is written, as
 * the engine does).
 */
const NEVER_SAVED = new Set(['token', 'userinfo', 'introspection', 'revocation']);

/** What a session held when it was loaded (a hidden property: not part of its payload). */
const LOADED = Symbol('loaded session');

type Session = Awaited<ReturnType<Provider['Session']['get']>> & { [LOADED]?: string; oldId?: string; touched?: boolean };
type SessionModel = Provider['Session'] & {
  instantiate(payload?: object): Session;
  readonly IN_PAYLOAD: readonly string[];
};

export function extendUnchangedSessionsInSteps(provider: Provider, step: number): void {
  const Session = provider.Session as SessionModel;
  // Everything the engine stores of a session but when it was issued and when it expires.
  const held = Session.IN_PAYLOAD.filter((property) => property !== 'iat' && property !== 'exp');
  const contents = (session: Session) => JSON.stringify(held.map((property) => (session as unknown as Record<string, unknown>)[property]));
  const remember = (session: Session) => Object.defineProperty(session, LOADED, { value: contents(session), writable: true, configurable: true });

  const instantiate = Session.instantiate.bind(Session);
  Session.instantiate = (payload) => {
    const session = instantiate(payload);
    // Loaded from the store (find, findByUid): a stored session has its expiry.
    if (payload && typeof (payload as { exp?: unknown }).exp === 'number' && !NEVER_SAVED.has(Provider.ctx?.oidc?.route ?? '')) remember(session);
    return session;
  };

  const save = Session.prototype.save;
  Session.prototype.save = async function (this: Session, ttl: number) {
    const extension = Math.floor(Date.now() / 1000) + ttl - this.exp;
    if (this[LOADED] !== undefined && !this.oldId && (this as { [STORED_EXP]?: unknown })[STORED_EXP] === undefined && extension >= 0 && extension < step && contents(this) === this[LOADED]) {
      this.touched = false;
      return this.jti;
    }
    const saved = await save.call(this, ttl);
    remember(this);
    return saved;
  };
}
