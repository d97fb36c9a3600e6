/**
 * The account page's "Password" section: a person changes their password by typing the current
 * one. Wrong guesses share the sign-in brute-force throttle (same counts per username and address),
 * so the page is no way around it.
 */
import type { Logger } from '../../ops/logger.js';
import { AccountError, type Accounts } from '../accounts.js';
import type { LoginThrottle } from '../throttle.js';
import { field, type AccountPage } from './account-page.js';

const SECTION = 'password';

/** "30 seconds", "2 minutes". */
const inWords = (seconds: number) => (seconds < 90 ? `${seconds} seconds` : `${Math.ceil(seconds / 60)} minutes`);

export function passwordSection({ accounts, throttle, logger }: { accounts: Accounts; throttle: LoginThrottle; logger: Logger }) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Password',
      order: 10,
      view: 'account-password',
      data: async (_ctx, person) => ({ username: person.account.username }),
      notices: { changed: 'Your password has been changed.' },
    });

    page.router.post('/password', page.form, async (ctx) => {
      const found = await page.submitted(ctx);
      if (!found) return;
      const { who, body } = found;
      const refuse = (error: string, status: number) => page.show(ctx, who, { section: SECTION, error }, status);
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
      const pause = await throttle.pause(username, ctx.ip);
      if (pause) return paused(pause);
      let changed: boolean;
      try {
        changed = await accounts.changePassword(who.accountId, current, next);
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        return refuse(`Choose another new password: ${error.message}.`, 400);
      }
      if (!changed) {
        logger.info({ event: 'account.password_change_failed', sub: who.accountId }, 'password change: wrong current password');
        const started = await throttle.failed(username, ctx.ip);
        if (started) return paused(started);
        return refuse('That is not your current password. Try again.', 400);
      }
      await throttle.succeeded(username);
      logger.info({ event: 'account.password_changed', sub: who.accountId }, 'password changed on the account page');
      page.done(ctx, SECTION, 'changed');
    });
  };
}
