/**
 * The account page's "Sign in with another provider" section (issue 16): the person's links to
 * upstream providers (which one, when, and how: made at their first sign-in through it, or joined
 * to this account by their verified email address), each with "Remove". The last way a person has
 * to sign in is never removed: without a password or a passkey, their only working link stays (one
 * whose upstream is no longer offered is listed as such, is no way in, and may always go).
 */
import type { Logger } from '../../ops/logger.js';
import type { UpstreamLinks } from '../links.js';
import type { UpstreamSettings } from '../../upstreams/registry.js';
import { countOf, STILL_HELD, upstreamOf, type WaysIn } from '../ways-in.js';
import { ANOTHER_REMOVAL, field, when, type AccountPage } from './account-page.js';

const SECTION = 'links';

interface Options {
  readonly links: UpstreamLinks;
  /** The person's ways in, counted and removed one removal at a time. */
  readonly waysIn: WaysIn;
  /**
   * The upstreams offered now, without their secrets (an upstream's secret unreadable here failed the
   * whole page when its display name was read with it). Without one, and without links, the section is left out.
   */
  offered(): Promise<readonly UpstreamSettings[]>;
  readonly logger: Logger;
}

const HOW = { created: 'made when you first signed in with it', email: 'joined to this account by your verified email address' } as const;

export function linksSection({ links, waysIn, offered, logger }: Options) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Sign in with another provider',
      order: 45,
      view: 'account-links',
      notices: { removed: 'Link removed: that provider no longer signs you in to this account.' },
      shown: async (person) => (await offered()).length > 0 || (await links.list(person.accountId)).length > 0,
      async data(_ctx, person) {
        const [listed, upstreams] = await Promise.all([links.list(person.accountId), offered()]);
        return {
          links: listed.map((link) => ({ id: link.id, name: upstreamOf(link, upstreams)?.displayName ?? `${link.upstream} (no longer offered)`, linked: when(link.at), how: HOW[link.how] })),
        };
      },
    });

    page.router.post('/links/remove', page.form, async (ctx) => {
      const found = await page.recentlySubmitted(ctx, SECTION);
      if (!found) return;
      const { who, body } = found;
      const id = field(body, 'id');
      // Counted and removed with no other removal of a way in running (WaysIn): the last link and the
      // last passkey removed at the same moment in two tabs both went before.
      const ended = await waysIn.removing(who.accountId, async (ways) => {
        if (!ways.links.includes(id)) return 'not-yours' as const;
        if (ways.linksSigningIn.includes(id) && countOf(ways) === 1) return 'last' as const;
        // The upstream account may be compromised: the other sessions it signed in end (recorded ones).
        return (await page.removeCredential(ctx, who, { kind: 'link', id }, () => links.remove(who.accountId, id))) ?? ('not-yours' as const);
      });
      if (ended === 'not-yours') return page.show(ctx, who, { section: SECTION, error: 'That link is not yours, or was already removed.' }, 404);
      if (ended === 'last') {
        const error = 'This is the only way you can sign in: set a password or add a passkey first, then remove it.';
        return page.show(ctx, who, { section: SECTION, error }, 409);
      }
      if (ended === STILL_HELD) return page.show(ctx, who, { section: SECTION, error: ANOTHER_REMOVAL }, 409);
      logger.info({ event: 'account.link_removed', sub: who.accountId, upstream: id.slice(0, id.indexOf(':')), sessions_signed_out: ended }, 'upstream link removed on the account page');
      page.done(ctx, SECTION, 'removed');
    });
  };
}
