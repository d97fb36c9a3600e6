/**
 * The account page's "Where you're signed in" section: each of the person's sessions (the browser
 * and device named from the User-Agent with bowser, its address, when it was last seen and signed
 * in), and signing any one of them out — that browser is asked to sign in again, its apps get a
 * back-channel logout and lose the grants that do not outlive sign-out (accounts/sessions.ts).
 */
import Bowser from 'bowser';
import { sessionSignOutFailedPage } from '../../http/errors.js';
import type { Logger } from '../../ops/logger.js';
import type { GrantRevocation } from '../../revocation/grants.js';
import type { SessionActivity } from '../session-activity.js';
import type { AccountSessions } from '../sessions.js';
import type { ProviderInService } from '../../provider-in-service.js';
import { ACCOUNT_PATH, field, when, type AccountPage } from './account-page.js';

/**
 * The account page's "Sign out" of one session, and the page a failure of it shows (app.ts
 * failurePages: whichever layer meets the store, the rate limits' included).
 */
export const SESSION_SIGN_OUT_PATH = `${ACCOUNT_PATH}/sessions/sign-out`;
export const sessionSignOutFailed = (origin: string) => sessionSignOutFailedPage(`${origin}${ACCOUNT_PATH}#sessions`);

const SECTION = 'sessions';

/** "Chrome 131 on Linux", "Safari 18 on iOS (mobile)". */
function device(userAgent: string | undefined): string {
  if (!userAgent) return 'Unknown browser';
  const { browser, os, platform } = Bowser.parse(userAgent);
  const name = browser.name ? `${browser.name}${browser.version ? ` ${browser.version.split('.')[0]}` : ''}` : 'Unknown browser';
  const system = os.name ? ` on ${os.name}` : '';
  const kind = platform.type && platform.type !== 'desktop' ? ` (${platform.type})` : '';
  return `${name}${system}${kind}`;
}

interface Options {
  /** The provider in service (its session cookie's name and keys). */
  readonly providers: ProviderInService;
  readonly sessions: AccountSessions;
  readonly activity: SessionActivity;
  readonly grants: GrantRevocation;
  readonly logger: Logger;
}

export function sessionsSection({ providers, sessions, activity, grants, logger }: Options) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Where you’re signed in',
      order: 60,
      view: 'account-sessions',
      notices: { 'signed-out': 'That session is signed out: its browser must sign in again.' },
      async data(ctx, person) {
        // This visit is where this session was last seen.
        await activity.seen(person.sessionUid, ctx);
        const listed = await Promise.all(
          (await sessions.list(person.accountId)).map(async (session) => {
            const seen = await activity.of(session.uid);
            return {
              uid: session.uid,
              current: session.uid === person.sessionUid,
              device: device(seen?.userAgent),
              ip: seen?.ip,
              lastSeen: seen?.at ?? session.loginTs ?? 0,
              signedIn: session.loginTs && when(session.loginTs),
            };
          }),
        );
        listed.sort((a, b) => Number(b.current) - Number(a.current) || b.lastSeen - a.lastSeen);
        return { sessions: listed.map((session) => ({ ...session, lastSeen: session.lastSeen ? when(session.lastSeen) : undefined })) };
      },
    });

    page.router.post('/sessions/sign-out', page.form, async (ctx) => {
      const found = await page.submitted(ctx);
      if (!found) return;
      const { who, body } = found;
      const uid = field(body, 'session');
      if (!uid || !(await sessions.signOut(who.accountId, uid, grants))) {
        return page.show(ctx, who, { section: SECTION, error: 'That session is not signed in any more.' }, 404);
      }
      await activity.forget(uid);
      logger.info({ event: 'account.session_signed_out', sub: who.accountId, current: uid === who.sessionUid }, 'session signed out on the account page');
      // Signing out the browser in front of the page: its cookie is cleared, and it is sent to sign in again.
      if (uid === who.sessionUid) {
        sessions.clearCookie(providers.current, ctx);
        ctx.status = 303;
        ctx.redirect(ACCOUNT_PATH);
        return;
      }
      page.done(ctx, SECTION, 'signed-out');
    });
  };
}
