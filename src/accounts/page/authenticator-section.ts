/**
 * The account page's "Authenticator app" section: setting one up (a page with the secret as a QR
 * code, an SVG rendered here by `qrcode`, and as text; confirmed with a code from the app) and
 * removing it. While one is set up, setting up another is refused (remove it first).
 */
import QRCode from 'qrcode';
import type { Context } from 'koa';
import { ENROLMENT_TTL } from '../totp.js';
import { field, when, type AccountPage, type Person } from './account-page.js';
import type { SecondFactorSectionOptions } from './passkeys-section.js';

const SECTION = 'authenticator';

export function authenticatorSection({ secondFactors, logger, metrics }: SecondFactorSectionOptions) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Authenticator app',
      order: 30,
      view: 'account-authenticator',
      notices: { added: 'Authenticator app set up: sign-in with your password now asks for its code.', removed: 'Authenticator app removed.' },
      async data(_ctx, person) {
        const { totp } = await secondFactors.summary(person.accountId);
        return { totp: totp && { added: when(totp.createdAt), lastUsed: totp.lastUsedAt ? when(totp.lastUsedAt) : undefined } };
      },
    });

    /** The setup page: the pending secret as a QR code and as text, and the form for the first code. */
    async function setupPage(ctx: Context, who: Person, secret: { uri: string; secret: string }, error?: string) {
      const svg = await QRCode.toString(secret.uri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
      page.page(
        ctx,
        'account-authenticator-setup',
        {
          title: 'Set up an authenticator app',
          // An <img> of the SVG: no markup of ours is built from it, and img-src allows data:.
          qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
          secret: secret.secret.match(/.{1,4}/g)!.join(' '),
          minutes: Math.round(ENROLMENT_TTL / 60),
          csrf: page.csrf.token(who.sessionId),
          error,
        },
        error ? 400 : 200,
      );
    }

    /**
     * A setup while an app is set up (the page offers "Set up" only while none is: a crafted POST,
     * or a setup page open since before another session set one up) is refused, never a
     * replacement: what the old app signed in would stay signed in (only its removal ends that), and
     * a stale page would swap the app just set up for another. The person removes it first.
     */
    const setUpAlready = (ctx: Context, who: Person) => {
      metrics.secondFactorEnrolments.inc({ method: 'totp', action: 'failed' });
      logger.info({ event: 'totp.enrolment_refused', sub: who.accountId, reason: 'set-up-already' }, 'authenticator app not set up: one is set up already');
      return page.show(ctx, who, { section: SECTION, error: 'An authenticator app is set up already. To use another one, remove this one first, then set up the new one.' }, 409);
    };

    page.router.post('/authenticator/start', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      if ((await secondFactors.summary(found.who.accountId)).totp) return setUpAlready(ctx, found.who);
      await setupPage(ctx, found.who, await secondFactors.totp.begin(found.who.accountId, found.who.account.username, found.who.sessionUid));
    });

    // The setup begun in this session only: another session of the person (a stale one, whose cookie
    // may be stolen) neither sees the secret on the error page nor confirms it (totp.ts). And the
    // confirmation is the change: the session must still be as strong as the person's sign-in is now.
    // A password-only session that began a setup before the person added a passkey elsewhere confirmed
    // it after (the start alone was checked), and the password and its own app then made an `mfa`
    // sign-in that could change the rest (ninth pass over second factors and upstreams). The start's
    // recent sign-in is not asked again: the setup lives ENROLMENT_TTL from it.
    page.router.post('/authenticator/confirm', page.form, async (ctx) => {
      const found = await page.stronglySubmitted(ctx, SECTION);
      if (!found) return;
      const { who, body } = found;
      if (await secondFactors.totp.confirm(who.accountId, field(body, 'code'), who.sessionUid)) {
        metrics.secondFactorEnrolments.inc({ method: 'totp', action: 'added' });
        logger.info({ event: 'totp.added', sub: who.accountId }, 'authenticator app set up');
        return page.done(ctx, SECTION, 'added');
      }
      if ((await secondFactors.summary(who.accountId)).totp) return setUpAlready(ctx, who);
      metrics.secondFactorEnrolments.inc({ method: 'totp', action: 'failed' });
      const pending = await secondFactors.totp.pending(who.accountId, who.account.username, who.sessionUid);
      if (!pending) return page.show(ctx, who, { section: SECTION, error: 'Setting up took too long. Start again.' }, 400);
      await setupPage(ctx, who, pending, 'That code does not match. Type the code your app shows now.');
    });

    page.router.post('/authenticator/remove', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      // The app may be on a lost or stolen phone: the other sessions its codes signed in end.
      const ended = await page.removeCredential(
        ctx,
        found.who,
        { kind: 'totp' },
        async () => {
          await secondFactors.totp.remove(found.who.accountId);
          return true;
        },
      );
      metrics.secondFactorEnrolments.inc({ method: 'totp', action: 'removed' });
      logger.info({ event: 'totp.removed', sub: found.who.accountId, sessions_signed_out: ended }, 'authenticator app removed');
      page.done(ctx, SECTION, 'removed');
    });
  };
}
