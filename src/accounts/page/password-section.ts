/**
 * The account page's "Password" section: a person changes their password by typing the current
 * one. Wrong guesses share the sign-in brute-force throttle (same counts per username and address),
 * so the page is no way around it, nor does a right one clear the count (a completed sign-in alone
 * does). Unless the person unticks it, their other sessions are signed out with it (as "Sign out"
 * in the sessions section does), so whoever learned the old password and signed in with it is out
 * too, and this browser's session goes on under a new id, so a copy of its cookie is out as well; a
 * change refused (the current password wrong, or changed already by the same form answered
 * 503 after its write) signs them out all the same.
 *
 * A session weaker than the person's sign-in now (a password alone, signed in before they added a
 * second factor) is sent to sign in again first.
 *
 * A person without a password (an account made just in time by an upstream provider) has none to
 * type: they get "Set a password" instead, which needs a recent sign-in (page.recentlySubmitted)
 * in place of the current password.
 */
import type { Logger } from '../../ops/logger.js';
import { AccountError, type Accounts } from '../accounts.js';
import type { LoginThrottle } from '../throttle.js';
import { field, type AccountPage } from './account-page.js';
import type { OwedEnding, OwedEndings } from '../owed-endings.js';

const SECTION = 'password';

/** "30 seconds", "2 minutes". */
const inWords = (seconds: number) => (seconds < 90 ? `${seconds} seconds` : `${Math.ceil(seconds / 60)} minutes`);

interface Options {
  readonly accounts: Accounts;
  readonly throttle: LoginThrottle;
  /** Signs the other sessions out with what they were granted, kept as owed until done. */
  readonly owed: OwedEndings;
  readonly logger: Logger;
}

export function passwordSection({ accounts, throttle, owed, logger }: Options) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Password',
      order: 10,
      view: 'account-password',
      data: async (_ctx, person) => ({ username: person.account.username, hasPassword: Boolean(person.account.passwordHash) }),
      notices: {
        set: 'Your password is set: you can now sign in with your username and it.',
        changed: 'Your password has been changed.',
        'changed-everywhere': 'Your password has been changed, and every other session is signed out.',
      },
    });

    page.router.post('/password/set', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      const { who, body } = found;
      const refuse = (error: string, status: number) => page.show(ctx, who, { section: SECTION, error }, status);
      if (who.account.passwordHash) return refuse('You already have a password: change it with your current one.', 409);
      const next = field(body, 'new_password');
      if (!next) return refuse('Enter a new password.', 400);
      if (next !== field(body, 'confirm_password')) return refuse('The new password and its confirmation are not the same. Type them again.', 400);
      let set: boolean;
      try {
        set = await accounts.setFirstPassword(who.accountId, next);
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        return refuse(`Choose another password: ${error.message}.`, 400);
      }
      // Another of the person's sessions set one meanwhile: a first password never replaces it.
      if (!set) return refuse('You already have a password: change it with your current one.', 409);
      await page.renewSession(ctx, who);
      logger.info({ event: 'account.password_set', sub: who.accountId }, 'first password set on the account page');
      page.done(ctx, SECTION, 'set');
    });

    page.router.post('/password', page.form, async (ctx) => {
      // The current password proves nothing a password-only session from before the person's second
      // factor did not: such a session signs in again, with it (page.stronglySubmitted).
      const found = await page.stronglySubmitted(ctx, SECTION);
      if (!found) return;
      const { who, body } = found;
      const refuse = (error: string, status: number) => page.show(ctx, who, { section: SECTION, error }, status);
      if (!who.account.passwordHash) return refuse('You have no password yet: set one below.', 409);
      const current = field(body, 'current_password');
      const next = field(body, 'new_password');
      if (!current || !next) return refuse('Enter your current password and a new one.', 400);
      if (next !== field(body, 'confirm_password')) return refuse('The new password and its confirmation are not the same. Type them again.', 400);

      const { username } = who.account;
      const paused = (seconds: number) => {
        logger.warn({ event: 'account.password_throttled', ip: ctx.ip }, 'password change paused after repeated failures');
        ctx.set('Retry-After', String(seconds));
        return refuse(`Too many wrong passwords. For your security, changing it is paused for ${inWords(seconds)}; try again after that.`, 429);
      };
      // While paused, the current password is not even checked (as at sign-in).
      // Counted before the check: guesses sent at once are held to the limits too.
      const pause = await throttle.attempt(username, ctx.ip);
      if (pause) return paused(pause);
      const everywhere = field(body, 'sign_out_others') === 'yes';
      // The old password may have leaked: the other sessions end with what they were granted, their
      // consents too (OwedEndings: every other session and grant, but this session's).
      const ending: OwedEnding = { sub: who.accountId, changed: { kind: 'password' }, except: who.sessionUid };
      const signOutOthers = () => owed.finish(ending);
      let member: string | undefined;
      let signedOut = 0;
      let changed: boolean;
      try {
        // Before the new password is written, so that a failure half-way is retried with the old
        // one, which still works; and once more after it, for a sign-in with the old one that
        // finished meanwhile. Kept as owed first: a change cut off after its write (503) is
        // finished by the sweep, whether or not the person sends it again.
        const signOutFirst = async () => {
          member = await owed.owe(ending);
          signedOut = await signOutOthers();
        };
        changed = await accounts.changePassword(who.accountId, current, next, everywhere ? signOutFirst : undefined);
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        await throttle.notFailed(username, ctx.ip);
        return refuse(`Choose another new password: ${error.message}.`, 400);
      }
      if (!changed) {
        logger.info({ event: 'account.password_change_failed', sub: who.accountId }, 'password change: wrong current password');
        // The other sessions are signed out all the same. A change cut off by the store after its
        // write (503: its second sign-out of the others not made) is sent again by the person with
        // the password they held as current, refused here: a session signed in with the old password
        // while the new one was written, and what it got, would otherwise outlive the change, which
        // no retry finished (twenty-eighth endings pass). It takes no password: the sessions and
        // apps sections sign a session and an app out for whoever holds this session.
        if (everywhere) signedOut = await signOutOthers();
        await owed.drop(member);
        if (signedOut) logger.info({ event: 'account.sessions_signed_out', sub: who.accountId, sessions_signed_out: signedOut }, 'other sessions signed out with a refused password change');
        const started = await throttle.attemptFailed(username, ctx.ip);
        if (started) return paused(started);
        return refuse(`That is not your current password. Try again.${everywhere ? ' Your other sessions are signed out.' : ''}`, 400);
      }
      // The right current password is no failure, but no completed sign-in either: the username's
      // count (wrong authenticator-app codes among it) stays, else a thief holding the session and the
      // password cleared it here between guesses and never reached the pause.
      await throttle.notFailed(username, ctx.ip);
      if (everywhere) signedOut += await signOutOthers();
      await owed.drop(member);
      await page.renewSession(ctx, who);
      logger.info({ event: 'account.password_changed', sub: who.accountId, sessions_signed_out: signedOut }, 'password changed on the account page');
      page.done(ctx, SECTION, everywhere ? 'changed-everywhere' : 'changed');
    });
  };
}
