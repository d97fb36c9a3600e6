/**
 * A sign-in session ends ttl.sessionMax after its sign-in, however often it is used (OWASP ASVS
 * V7.3.2: an absolute lifetime, so a stolen session cookie kept in use does not live for ever).
 *
 * ttl.Session (provider.ts, lifetimes.ts sessionLifetime) keeps a session's expiry in the store
 * within that bound, but the engine saves a session at the end of every request that loaded it,
 * with at least one second more (it takes positive integers only): a session used more often than
 * once a second would be carried past its end one second at a time. What it changes: Session.find
 * and Session.findByUid treat a stored session whose sign-in (loginTs) is ttl.sessionMax or more
 * ago as not found, so Session.get starts the request without it (signed out), as the engine does
 * for a session the store no longer has (but to a caller asking with ignoreExpiration, which the
 * engine never does for a session: the sweeper that ends expired ones). Installed before session-loaded-once.ts, whose kept
 * session is read through it. Pinned by test/unit/provider-patches.test.ts.
 */
import type { Provider } from 'oidc-provider';
import { machineSeconds } from '../../clock.js';

type Session = { loginTs?: unknown } | undefined;
type Finder = (value: string, options?: object) => Promise<Session>;

export function endSessionsAtMax(provider: Provider, sessionMax: number): void {
  const Session = provider.Session as unknown as { find: Finder; findByUid: Finder };
  const live = (session: Session) => (session && typeof session.loginTs === 'number' && session.loginTs + sessionMax <= machineSeconds() ? undefined : session);
  const find = Session.find.bind(Session);
  const findByUid = Session.findByUid.bind(Session);
  // Asked with ignoreExpiration (the sweeper ending an expired session: provider/backchannel-delivery.ts;
  // the engine never asks a session so), the session is given as stored.
  Session.find = async (value, options) => ((options as { ignoreExpiration?: boolean } | undefined)?.ignoreExpiration ? find(value, options) : live(await find(value, options)));
  Session.findByUid = async (value, options) => live(await findByUid(value, options));
}
