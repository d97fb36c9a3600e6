/**
 * A sign-in's `auth_time` is no later than its first factor: a sign-in through an upstream that
 * answered from a session it signed in earlier (its ID token's `auth_time`) says the upstream's time,
 * in the ID token, in the JWT access token (RFC 9068 §2.2.1), and to every `max_age` and recent
 * sign-in check that follows in the session (OIDC Core §2, §3.1.2.1).
 *
 * oidc-provider takes a session's auth_time from its `loginTs`, the moment our interaction finished
 * (or the result's `ts`). An upstream passes on an app's max_age and its auth_time is checked against
 * it (interactions/upstream.ts), but an app that asked none got a sign-in of now from an upstream
 * session of hours ago: its ID token said a sign-in of now, and the session then met any later
 * app's max_age, the account page's and the developer page's recent-sign-in checks
 * (accounts.reauthenticateAfter) with it, so the upstream's stale session was laundered into a fresh
 * one (red team's seventh granting pass). `loginTs` itself stays the moment of our sign-in: it is
 * also the session's start for ttl.sessionMax and for the cutoffs that end a person's sessions
 * (accounts.ts endedWithPerson), which an upstream's older time must not move (a session dead on
 * arrival, or ended by a sign-out everywhere it followed).
 *
 * What it changes in oidc-provider: Session keeps one more property, `authTs` (IN_PAYLOAD), set by
 * Session#loginAccount from the result's `login.signedInAt` (sign-in-result.ts; read from the
 * Interaction entity the resume found, since ctx.oidc.result is set only after) when it
 * is earlier than `loginTs`, and dropped at every other sign-in; Session#authTime (which the code,
 * the device code and our pages read) and Session#past (the login prompt's max_age check) read it
 * before `loginTs`. Pinned by test/unit/provider-patches.test.ts and test/e2e/redteam-granted-7.test.ts.
 *
 * An upstream that says no auth_time when it owed none (no max_age asked, nor prompt=login; OIDC Core
 * §2) may have answered from a session of any age: taking it as a sign-in of now laundered that
 * session as above (red team's tenth granting pass). Its `iat` would say no more (the token is
 * minted at our code exchange), and OIDC has no "unknown" auth_time, so the ID token's stays our
 * sign-in's moment; but the session is marked `authAgeUnknown` (IN_PAYLOAD, from the result's
 * `login.signInAgeUnknown`), which meets no `max_age` (Session#past) and no recent-sign-in check of
 * our pages (accounts/sessions.ts signInTimeForChecks): each asks again, the upstream then with max_age or prompt=login,
 * where its auth_time is owed (and checked by openid-client) or its sign-in fresh. Pinned by
 * test/e2e/redteam-granted-10.test.ts.
 *
 * Session#past measures the time since the sign-in to the millisecond: `loginMs` (IN_PAYLOAD), set
 * beside `loginTs` by Session#loginAccount; the engine compared whole seconds, so a sign-in 1.84 s
 * old met max_age=1 (OIDC Core §3.1.2.1: re-authenticate when the elapsed time is greater).
 *
 * Session#loginAccount also keeps the second of the sign-in on the store's clock (`signedInOnStore`,
 * IN_PAYLOAD; accounts/sessions.ts SIGNED_IN_ON_STORE), which the person's cutoff is compared with:
 * `loginTs` is on the machine clock of the instance that signed the session in, and a session signed
 * in at an instance ahead just before the person was disabled and enabled again outlived the cutoff
 * where the ending of its sessions failed half-way (twenty-seventh endings pass,
 * test/e2e/redteam-endings-26.test.ts). `loginTs` stays the start of the session's lifetimes.
 *
 * A sign-in's moment is when its last factor was verified, not when a result carrying it is signed
 * in: the result's `login.verifiedAt` (epoch ms on the store's clock, sign-in-result.ts) sets
 * `loginTs`, `loginMs` and `signedInOnStore`, never later than now. The consent page's Allow finishes
 * its interaction with the sign-in's result merged in (the engine's lastSubmission: so that the
 * resume does not ask for the login that prompt=login or max_age wanted again), and the resume
 * signs that login in a second time; with the moment of that resume, a click on a consent page left
 * open for up to ttl.interaction made the sign-in that much later: the ID token's `auth_time`, the
 * app's next `max_age` and the account page's recent-sign-in check for adding a passkey or an
 * authenticator app were all met by the click (twelfth fresh-eyes passes of 2026-12-07,
 * test/e2e/step-up-twelfth.test.ts). A result without it (an interaction from before) is signed in
 * at the resume's moment, as before.
 */
import { Provider } from 'oidc-provider';
import { epochSeconds, storeClockOffset } from '../../clock.js';
import { AUTH_AGE_UNKNOWN, SIGNED_IN_ON_STORE } from '../../accounts/sessions.js';

/** The interaction result's `login` member naming when the sign-in's first factor was performed, if before now (epoch seconds). */
export const SIGNED_IN_AT = 'signedInAt';
/** The interaction result's `login` member saying the first factor's time is not known (an upstream that said no auth_time and owed none). */
export const SIGN_IN_AGE_UNKNOWN = 'signInAgeUnknown';
/** The interaction result's `login` member saying when the sign-in's last factor was verified (epoch ms on the store's clock). */
export const VERIFIED_AT = 'verifiedAt';

/** The login member VERIFIED_AT for a sign-in whose last factor was verified just now (sign-in-result.ts). */
export const verifiedNow = () => ({ [VERIFIED_AT]: Date.now() + storeClockOffset() });

type SessionLike = { loginTs?: number; loginMs?: number; authTs?: number; [AUTH_AGE_UNKNOWN]?: boolean; [SIGNED_IN_ON_STORE]?: number; authTime(): number | undefined; past(age: unknown): boolean; loginAccount(details: object): void };

type SessionModel = { prototype: SessionLike; IN_PAYLOAD: string[] };

export function authTimeOfFirstFactor(provider: Provider): void {
  const Session = provider.Session as unknown as SessionModel;
  const inPayload = Object.getOwnPropertyDescriptor(Session, 'IN_PAYLOAD')?.get;
  const { loginAccount } = Session.prototype;
  if (!inPayload || typeof loginAccount !== 'function') throw new Error('oidc-provider Session.IN_PAYLOAD or Session#loginAccount is gone: review src/provider/patches/sign-in-time.ts');
  Object.defineProperty(Session, 'IN_PAYLOAD', { configurable: true, get: () => [...(inPayload.call(Session) as string[]), 'authTs', 'loginMs', AUTH_AGE_UNKNOWN, SIGNED_IN_ON_STORE] });

  Session.prototype.loginAccount = function (this: SessionLike, details: object) {
    loginAccount.call(this, details);
    // The resume (the only caller) has found the interaction, whose result it is signing in, as an entity.
    const login = (Provider.ctx as { oidc?: { entities?: { Interaction?: { result?: { login?: Record<string, unknown> } } } } } | undefined)?.oidc?.entities?.Interaction?.result?.login;
    const verified = login?.[VERIFIED_AT];
    if (typeof verified === 'number' && Number.isSafeInteger(verified)) {
      // When the factor was verified, on this machine's clock (the engine's loginTs is on it), never later than now.
      const ms = Math.min(verified - storeClockOffset(), Date.now());
      this.loginTs = Math.floor(ms / 1000);
      this.loginMs = ms;
      this[SIGNED_IN_ON_STORE] = Math.min(Math.floor(verified / 1000), epochSeconds());
    } else {
      // The moment in milliseconds, for max_age (past): `loginTs` is a whole second (read a moment ago:
      // one now in the next second is that second's last millisecond).
      const ms = Date.now();
      if (typeof this.loginTs === 'number') this.loginMs = Math.floor(ms / 1000) === this.loginTs ? ms : this.loginTs * 1000 + 999;
      // `loginTs` is this machine's second; the person's cutoffs are on the store's clock (accounts/sessions.ts SIGNED_IN_ON_STORE).
      this[SIGNED_IN_ON_STORE] = epochSeconds();
    }
    const at = login?.[SIGNED_IN_AT];
    if (typeof at === 'number' && Number.isSafeInteger(at) && typeof this.loginTs === 'number' && at < this.loginTs) this.authTs = at;
    else delete this.authTs;
    if (login?.[SIGN_IN_AGE_UNKNOWN] === true) this[AUTH_AGE_UNKNOWN] = true;
    else delete this[AUTH_AGE_UNKNOWN];
  };
  Session.prototype.authTime = function (this: SessionLike) {
    return typeof this.authTs === 'number' && typeof this.loginTs === 'number' ? Math.min(this.authTs, this.loginTs) : this.loginTs;
  };
  Session.prototype.past = function (this: SessionLike, age: unknown) {
    // A sign-in of unknown age meets no max_age: the login prompt asks again (the upstream with max_age, when its auth_time is owed).
    if (this[AUTH_AGE_UNKNOWN] === true) return true;
    // The elapsed time to the millisecond (OIDC Core §3.1.2.1: "greater than" max_age): in whole
    // seconds a sign-in 1.84 s old met max_age=1 (conformance pass of 2026-12-06). An upstream's
    // earlier auth_time is a whole second; a session saved before loginMs has its second.
    const at = this.authTime();
    if (!at) return true;
    const since = typeof this.loginMs === 'number' && Math.floor(this.loginMs / 1000) === at ? this.loginMs / 1000 : at;
    return Date.now() / 1000 - since > Number(age);
  };
}
