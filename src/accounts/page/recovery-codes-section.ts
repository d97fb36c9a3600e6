/**
 * The account page's "Recovery codes" section: how many are left, and making ten new ones (the old
 * ones stop working), shown once on a page of their own with a download.
 */
import { RECOVERY_CODE_COUNT } from '../recovery-codes.js';
import { enrolmentStamp } from '../credentials.js';
import { hasSecondFactor } from '../second-factors.js';
import { type AccountPage } from './account-page.js';
import type { SecondFactorSectionOptions } from './passkeys-section.js';

const SECTION = 'recovery-codes';
const NO_FACTOR = 'Recovery codes are for when your passkey or authenticator app is not at hand: add one first, then make them.';

export function recoveryCodesSection({ secondFactors, logger, metrics }: SecondFactorSectionOptions) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Recovery codes',
      order: 40,
      view: 'account-recovery-codes',
      notices: { 'made-elsewhere': 'New recovery codes were just made in another tab or window (or by a second click): only the codes shown there work. If you did not see them, make new ones.' },
      async data(_ctx, person) {
        const summary = await secondFactors.summary(person.accountId);
        return { left: summary.recoveryCodesLeft, count: RECOVERY_CODE_COUNT, factor: hasSecondFactor(summary) };
      },
    });

    page.router.post('/recovery-codes', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      // Codes stand in for a passkey or an authenticator app, and sign nobody in without one. Made
      // before the person had one, they started working when one was added: whoever held only the
      // password then made them unseen (the page says how many are left, not who made them), and
      // later signed in with them as strongly as the person (tenth pass over second factors and upstreams).
      // The set this request replaces, read before anything is written: another made meanwhile stays.
      const [summary, { recovery }] = await Promise.all([secondFactors.summary(found.who.accountId), secondFactors.records.read(found.who.accountId)]);
      if (!hasSecondFactor(summary)) {
        return page.show(ctx, found.who, { section: SECTION, error: NO_FACTOR }, 409);
      }
      // New codes replace the old, which may have leaked: the other sessions an old code signed in end
      // (recorded ones only: amr does not tell a recovery code apart), as a removal ends them: before
      // the codes are replaced too, so that a failure half-way leaves the old codes, which the person
      // holds, rather than new ones never shown.
      let codes: string[] = [];
      // This browser's new session id first (removeCredential's renewal then finds the old id gone):
      // codes once made are shown, whatever the store does after.
      await page.renewSession(ctx, found.who);
      const ended = await page.removeCredential(
        ctx,
        found.who,
        { kind: 'recovery-codes' },
        async () => {
          codes = (await secondFactors.recoveryCodes.replace(found.who.accountId, enrolmentStamp(recovery))) ?? [];
          return codes.length > 0;
        },
      );
      // Made by another tab (or the first of a double click) meanwhile: those codes are the person's.
      if (ended === undefined) return page.done(ctx, SECTION, 'made-elsewhere');
      metrics.secondFactorEnrolments.inc({ method: 'recovery_codes', action: 'added' });
      logger.info({ event: 'recovery_codes.generated', sub: found.who.accountId, sessions_signed_out: ended }, 'recovery codes made');
      const text = `Latchkey recovery codes for ${found.who.account.username}\nEach works once.\n\n${codes.join('\n')}\n`;
      page.page(ctx, 'account-recovery-codes-shown', {
        title: 'Your recovery codes',
        codes,
        download: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`,
      });
    });
  };
}
