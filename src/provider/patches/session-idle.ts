/**
 * A sign-in session idle longer than `ttl.session` as configured now is ended, whatever lifetime it
 * was saved under.
 *
 * oidc-provider saves a session with `exp` set to ttl.Session from that save (its last use, at most
 * unchanged-sessions.ts's step earlier) and reads only that `exp`: the stored session knows when it
 * expires, not when it was last used. An operator who lowered `ttl.session` and restarted ended no
 * session saved under the longer one: signed in under TTL_SESSION=3600, restarted with 2, idle for
 * 3 s, a silent request got a code (the twentieth endings pass, found; the idle-lifetime pass, fixed).
 *
 * What it changes in oidc-provider: a session keeps, in what the engine stores of it, when it was
 * last saved (`usedAt`, set by every Session#save that writes; unchanged-sessions.ts's skipped saves
 * keep the one before, so a session is bounded from its last use at most that step earlier, as its
 * `exp` was). Session's static `verify` (which find, findByUid and so Session.get call with what the
 * store holds, before the instance is made) is given the session with its `exp` lowered to `usedAt`
 * plus `ttl.session` configured now, so the instance says it (isExpired, a later save's TTL, the
 * access tokens tokens-within-session.ts bounds by its expiry), and a find that does not ask with
 * ignoreExpiration finds nothing once that bound has passed (on this machine's clock, strictly: the
 * bound is ours), so every reader (the authorization endpoint's SSO and silent requests, end_session,
 * the account page, the device page, the admin API and the CLI) starts without it, as for a session
 * the store no longer has. A raised lifetime extends nothing (the stored `exp` is kept: the bound
 * only lowers it). A session saved before this release has no `usedAt` and keeps its stored `exp`
 * (its last use plus the ttl.session it was saved under: the bound it had), until its next save
 * stamps one. No read more: the bound is read from the record the engine reads anyway.
 * Installed before unchanged-sessions.ts, so that the stamp is made only by a save that writes; a
 * session whose `exp` the bound lowered is written at its next save (unchanged-sessions.ts reads
 * STORED_EXP), so the store's expiry, its key's TTL and the sweeper's schedule come back to it.
 * Pinned by test/unit/provider-patches.test.ts and test/e2e/session-idle-lifetime.test.ts.
 */
import type { Provider } from 'oidc-provider';
import { machineSeconds } from '../../clock.js';
import { keptInPayload } from './payload-properties.js';

/** The stored session's property that says when it was last saved (epoch seconds, this machine's clock). */
export const USED_AT = 'usedAt';

/**
 * On a session whose `exp` the bound lowered, the `exp` the store holds (a hidden property: not part
 * of its payload), so that unchanged-sessions.ts writes the lowered expiry back rather than skip the save.
 */
export const STORED_EXP = Symbol('stored exp');

type Stored = { exp?: unknown; [USED_AT]?: unknown };
type Verify = (stored: Stored, options?: { ignoreExpiration?: boolean }) => Promise<unknown>;
type Saved = Record<string | symbol, unknown>;
type SessionModel = {
  verify?: Verify;
  instantiate(payload?: object): object;
  prototype: { save(this: Saved, ttl: number): Promise<unknown>; getValueAndPayload(this: Saved): Promise<unknown> };
};

/** The ttl of the save under way (a hidden property), for its payload's stamp. */
const SAVING = Symbol('saving with ttl');

export function sessionsIdleAsConfigured(provider: Provider, idle: number): void {
  const Session = provider.Session as unknown as SessionModel;
  const verify = Session.verify;
  const { save, getValueAndPayload } = Session.prototype;
  if (typeof verify !== 'function' || typeof save !== 'function' || typeof getValueAndPayload !== 'function') throw new Error('oidc-provider Session.verify, Session#save or #getValueAndPayload is gone: review src/provider/patches/session-idle.ts');
  keptInPayload(Session, USED_AT);
  // The payloads verify lowered, to the exp stored: what the instance made of each is marked so.
  const loweredFrom = new WeakMap<object, unknown>();
  const instantiate = Session.instantiate.bind(Session);
  Session.instantiate = (payload) => {
    const session = instantiate(payload);
    if (payload && loweredFrom.has(payload)) Object.defineProperty(session, STORED_EXP, { value: loweredFrom.get(payload), configurable: true });
    return session;
  };
  // Stamped as the engine's save stamps exp (its epoch second plus ttl, then the payload): usedAt is
  // exp less ttl, so that with ttl.session unchanged the bound is the stored exp itself (and the
  // engine's own check, with its clock tolerance, decides), whatever second boundary the save crossed.
  Session.prototype.save = async function (ttl) {
    this[SAVING] = ttl;
    try {
      return await save.call(this, ttl);
    } finally {
      delete this[SAVING];
    }
  };
  Session.prototype.getValueAndPayload = function () {
    const ttl = this[SAVING];
    if (typeof ttl === 'number') this[USED_AT] = typeof this.exp === 'number' ? this.exp - ttl : machineSeconds();
    return getValueAndPayload.call(this);
  };
  Session.verify = async function (this: unknown, stored, options) {
    const usedAt = stored?.[USED_AT];
    const bound = typeof usedAt === 'number' ? usedAt + idle : undefined;
    if (bound === undefined || (typeof stored.exp === 'number' && stored.exp <= bound)) return verify.call(this, stored, options);
    if (!options?.ignoreExpiration && bound <= machineSeconds()) throw new Error('idle past the session lifetime configured now');
    const lowered = { ...stored, exp: bound };
    loweredFrom.set(lowered, stored.exp);
    return verify.call(this, lowered, options);
  };
}
