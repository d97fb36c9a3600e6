/**
 * The account page's "Sign in with another provider" section (issue 16): the person's links to
 * upstream providers (which one, when, and how: made at their first sign-in through it, or joined
 * to this account by their verified email address), each with "Remove". The last way a person has
 * to sign in is never removed: without a password or a passkey, their only link stays.
 */
import type { Logger } from '../../ops/logger.js';
import type { UpstreamLinks } from '../links.js';
import type { SecondFactors } from '../second-factors.js';
import { field, when, type AccountPage } from './account-page.js';

const SECTION = 'links';

interface Options {
  readonly links: UpstreamLinks;
  readonly secondFactors: SecondFactors;
  /** An upstream's display name (undefined when it was removed since). */
  displayName(upstream: string): Promise<string | undefined>;
  /** Whether any upstream is configured: without one, and without links, the section is left out. */
  anyUpstream(): Promise<boolean>;
  readonly logger: Logger;
}

const HOW = { created: 'made when you first signed in with it', email: 'joined to this account by your verified email address' } as const;

export function linksSection({ links, secondFactors, displayName, anyUpstream, logger }: Options) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Sign in with another provider',
      order: 45,
      view: 'account-links',
      notices: { removed: 'Link removed: that provider no longer signs you in to this account.' },
      shown: async (person) => (await anyUpstream()) || (await links.list(person.accountId)).length > 0,
      async data(_ctx, person) {
        const listed = await links.list(person.accountId);
        return {
          links: await Promise.all(
            listed.map(async (link) => ({ id: link.id, name: (await displayName(link.upstream)) ?? `${link.upstream} (no longer offered)`, linked: when(link.at), how: HOW[link.how] })),
          ),
        };
      },
    });

    page.router.post('/links/remove', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      const { who, body } = found;
      const id = field(body, 'id');
      const listed = await links.list(who.accountId);
      if (!listed.some((link) => link.id === id)) {
        return page.show(ctx, who, { section: SECTION, error: 'That link is not yours, or was already removed.' }, 404);
      }
      const { passkeys } = await secondFactors.summary(who.accountId);
      if (listed.length === 1 && !who.account.passwordHash && !passkeys.length) {
        const error = 'This is the only way you can sign in: set a password or add a passkey first, then remove it.';
        return page.show(ctx, who, { section: SECTION, error }, 409);
      }
      // The upstream account may be compromised: the other sessions it signed in end (recorded ones).
      const ended = await page.removeCredential(ctx, who, { kind: 'link', id }, () => links.remove(who.accountId, id));
      if (ended === undefined) return page.show(ctx, who, { section: SECTION, error: 'That link was already removed.' }, 404);
      logger.info({ event: 'account.link_removed', sub: who.accountId, upstream: id.slice(0, id.indexOf(':')), sessions_signed_out: ended }, 'upstream link removed on the account page');
      page.done(ctx, SECTION, 'removed');
    });
  };
}
