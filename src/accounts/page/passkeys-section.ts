/**
 * The account page's "Passkeys" section: the person's passkeys (name, added, last used), adding one
 * (named; the browser creates it with views/static/passkeys.js and @simplewebauthn/browser, the
 * server verifies it in accounts/passkeys.ts) and removing one.
 */
import { PASSKEY_SCRIPTS } from '../../http/scripts.js';
import type { Logger } from '../../ops/logger.js';
import type { Metrics } from '../../ops/metrics.js';
import { MAX_PASSKEYS } from '../passkeys.js';
import type { SecondFactors } from '../second-factors.js';
import { countOf, STILL_HELD, type WaysIn } from '../ways-in.js';
import { ANOTHER_REMOVAL, field, when, type AccountPage } from './account-page.js';

const SECTION = 'passkeys';

export interface SecondFactorSectionOptions {
  readonly secondFactors: SecondFactors;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** The passkeys section's options: also the person's ways in (a passkey is one: the last stays). */
export interface PasskeysSectionOptions extends SecondFactorSectionOptions {
  readonly waysIn: WaysIn;
}

export function passkeysSection({ secondFactors, logger, metrics, waysIn }: PasskeysSectionOptions) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Passkeys',
      order: 20,
      view: 'account-passkeys',
      scripts: PASSKEY_SCRIPTS,
      notices: { added: 'Passkey added. You can sign in with it alone.', removed: 'Passkey removed.' },
      async data(_ctx, person) {
        const { passkeys } = await secondFactors.summary(person.accountId);
        // Adding one needs a recent sign-in, as strong as the person's now: another is offered "sign in again" before the
        // browser creates a passkey that the server would then not register. A person who holds
        // the most there can be is offered neither.
        const full = passkeys.length >= MAX_PASSKEYS;
        const recent = await page.mayChangeCredentials(person);
        const options = recent && !full ? await secondFactors.passkeys.registrationOptions(person.accountId, person.account.username) : undefined;
        return {
          passkeys: passkeys.map((p) => ({ id: p.id, name: p.name, added: when(p.createdAt), lastUsed: p.lastUsedAt ? when(p.lastUsedAt) : undefined })),
          options: options && JSON.stringify(options),
          full: full ? MAX_PASSKEYS : undefined,
          signInAgain: recent || full ? undefined : `/account/sign-in?again=${SECTION}`,
        };
      },
    });

    page.router.post('/passkeys/add', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      const { who, body } = found;
      let response: unknown;
      try {
        response = JSON.parse(field(body, 'credential'));
      } catch {
        response = undefined;
      }
      const added = response === undefined ? 'unverified' : await secondFactors.passkeys.register(who.accountId, field(body, 'name'), response, who.sessionUid);
      if (typeof added === 'string') {
        metrics.secondFactorEnrolments.inc({ method: 'passkey', action: 'failed' });
        logger.info({ event: 'passkey.enrolment_failed', sub: who.accountId, reason: added }, 'passkey not added');
        if (added === 'already-registered') {
          return page.show(ctx, who, { section: SECTION, error: 'This passkey is registered already. Each passkey can be added once: create a new one on your device.' }, 409);
        }
        if (added === 'too-many') {
          return page.show(ctx, who, { section: SECTION, error: `You have ${MAX_PASSKEYS} passkeys, the most an account can have. Remove one you no longer use to add another.` }, 409);
        }
        return page.show(ctx, who, { section: SECTION, error: 'The passkey could not be added. Try again.' }, 400);
      }
      metrics.secondFactorEnrolments.inc({ method: 'passkey', action: 'added' });
      logger.info({ event: 'passkey.added', sub: who.accountId, device_type: added.deviceType }, 'passkey added');
      page.done(ctx, SECTION, 'added');
    });

    page.router.post('/passkeys/remove', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      const { who, body } = found;
      const id = field(body, 'id');
      const notYours = () => page.show(ctx, who, { section: SECTION, error: 'That passkey is not yours, or was already removed.' }, 404);
      // The last way a person has to sign in stays, as the links section keeps the last link: a
      // person without a password (made by an upstream) who removed their link could remove their
      // only passkey next, and then nothing signed them in (seventh fresh-eyes passes, 2026-12-06).
      // Counted and removed with no other removal of a way in running (WaysIn): two tabs removing the
      // last passkey and the last link, or the last two passkeys, at the same moment both went before.
      const ended = await waysIn.removing(who.accountId, async (ways) => {
        if (!ways.passkeys.includes(id)) return 'not-yours' as const;
        if (countOf(ways) === 1) return 'last' as const;
        // A removed passkey may be a lost or stolen one: the other sessions it signed in end. A session
        // from before credentials were recorded is ended if any passkey signed it in.
        return (await page.removeCredential(ctx, who, { kind: 'passkey', id }, () => secondFactors.passkeys.remove(who.accountId, id))) ?? ('not-yours' as const);
      });
      if (ended === 'not-yours') return notYours();
      if (ended === 'last') {
        const error = 'This is the only way you can sign in: set a password or add another passkey first, then remove it.';
        return page.show(ctx, who, { section: SECTION, error }, 409);
      }
      if (ended === STILL_HELD) return page.show(ctx, who, { section: SECTION, error: ANOTHER_REMOVAL }, 409);
      metrics.secondFactorEnrolments.inc({ method: 'passkey', action: 'removed' });
      logger.info({ event: 'passkey.removed', sub: who.accountId, sessions_signed_out: ended }, 'passkey removed');
      page.done(ctx, SECTION, 'removed');
    });
  };
}
