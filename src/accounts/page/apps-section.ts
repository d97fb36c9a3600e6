/**
 * The account page's "Apps with access" section: every app the person allowed (the consent they gave,
 * remembered in provider/consents.ts, and the live grants of their sessions and offline access),
 * with its name, logo, what it may do and since when; and withdrawing that access.
 *
 * Withdrawing revokes each of the person's grants to the app with every token under it (refresh
 * tokens and opaque access tokens deleted, JWT access tokens put on the revocation list that
 * introspection and the revocation feed read: revocation/grants.ts), and forgets the remembered
 * consent, so that the app must ask again before it can act for the person.
 */
import type { Provider } from 'oidc-provider';
import { allowImagesFrom, returnedTo, webUrl } from '../../http/image-origins.js';
import type { Logger } from '../../ops/logger.js';
import type { ProviderInService } from '../../provider-in-service.js';
import type { EndsClientGrants, GrantRevocation, HeldByGrant } from '../../revocation/grants.js';
import { field, when, type AccountPage } from './account-page.js';

const SECTION = 'apps';

/** What the page needs of the remembered consents (provider/consents.ts's Consents, which accounts/ may not import). */
export interface RememberedConsents {
  rememberedBy(accountId: string): Promise<{ clientId: string; held: HeldByGrant; at: number | undefined }[]>;
  forget(accountId: string, clientId: string): Promise<void>;
}

const SCOPE_WORDS: Record<string, string> = {
  openid: 'know who you are',
  profile: 'see your name and profile',
  email: 'see your email address',
  offline_access: 'keep access while you are away',
};

/**
 * What an app holds, in words: its OpenID scopes, the details about the person it was allowed by
 * name (the claims parameter), and each API's scopes with the API named, as the consent page asked
 * (before the eighth-round granting audit an API's scopes read `use the "read" permission`, and
 * claims allowed by name were not listed at all).
 */
function permissions(openid: Set<string>, claims: Set<string>, resources: Map<string, Set<string>>): string[] {
  const out = [...openid].map((scope) => SCOPE_WORDS[scope] ?? `use the "${scope}" permission`);
  if (claims.size) out.push(`see these details about you: ${[...claims].join(', ')}`);
  for (const [indicator, scopes] of resources) out.push(`act on ${indicator} with: ${[...scopes].join(', ') || 'basic access'}`);
  return out;
}

interface Options {
  readonly providers: ProviderInService;
  readonly grants: GrantRevocation;
  /** Where the person's cutoff for the app is written, before anything else of the withdrawal. */
  readonly accounts: EndsClientGrants;
  readonly consents: RememberedConsents;
  /** Latchkey's own pages (developer, account): not listed, nothing to withdraw there. */
  readonly firstParty: readonly string[];
  readonly logger: Logger;
}

type Client = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

export function appsSection({ providers, grants, accounts, consents, firstParty, logger }: Options) {
  return (page: AccountPage): void => {
    page.addSection({
      id: SECTION,
      title: 'Apps with access',
      order: 50,
      view: 'account-apps',
      notices: { withdrawn: 'Access withdrawn. The app’s tokens no longer work, and it must ask you again before it can act for you.' },
      async data(ctx, person) {
        const [given, remembered] = await Promise.all([grants.ofAccount(person.accountId), consents.rememberedBy(person.accountId)]);
        const byClient = new Map<string, { openid: Set<string>; claims: Set<string>; resources: Map<string, Set<string>>; at: number | undefined }>();
        for (const { clientId, held, at } of [...remembered, ...given.map((grant) => ({ ...grant, at: grant.iat }))]) {
          if (firstParty.includes(clientId)) continue;
          const entry = byClient.get(clientId) ?? { openid: new Set<string>(), claims: new Set<string>(), resources: new Map<string, Set<string>>(), at: undefined };
          for (const scope of held.openid) entry.openid.add(scope);
          for (const claim of held.claims) entry.claims.add(claim);
          for (const [indicator, scopes] of Object.entries(held.resources)) {
            const atApi = entry.resources.get(indicator) ?? new Set<string>();
            for (const scope of scopes) atApi.add(scope);
            entry.resources.set(indicator, atApi);
          }
          entry.at = Math.max(entry.at ?? 0, at ?? 0) || undefined;
          byClient.set(clientId, entry);
        }
        const apps = await Promise.all(
          [...byClient].map(async ([clientId, { openid, claims, resources, at }]) => {
            // A client that cannot be found now still holds what is listed (live grants, a remembered
            // consent): a metadata-document client whose document is away comes back with them when
            // it returns. It is listed by its client_id, to withdraw; hidden, the person was told "No
            // app has access" while its tokens lived (red team's second endings pass).
            const client: Client | undefined = await providers.current.Client.find(clientId).catch(() => undefined);
            return {
              clientId,
              name: client?.clientName ?? clientId,
              // Where it sends people back (its domain, for a URL client_id): a name is the app's own word, and two apps may share one.
              at: webUrl(clientId)?.host ?? [...new Set((client?.redirectUris ?? []).map(returnedTo).filter(Boolean))].join(', '),
              logoUri: client && webUrl(client.metadata().logo_uri)?.href,
              permissions: permissions(openid, claims, resources),
              since: at && when(at),
            };
          }),
        );
        const shown = apps.sort((a, b) => a.name.localeCompare(b.name));
        allowImagesFrom(ctx, shown.flatMap((app) => (app.logoUri ? [app.logoUri] : [])));
        return { apps: shown };
      },
    });

    page.router.post('/apps/withdraw', page.form, async (ctx) => {
      const found = await page.submitted(ctx);
      if (!found) return;
      const { who, body } = found;
      const clientId = field(body, 'client');
      const remembered = (await consents.rememberedBy(who.accountId)).some((consent) => consent.clientId === clientId);
      // One cutoff first (accounts.ts clientGrantsEndedAt, a withdrawn entry on the revocation list),
      // then the consent and the grants one by one: a failure half-way leaves none of them working,
      // and the grants listed, to withdraw again.
      const revoked = clientId && !firstParty.includes(clientId) && (remembered || (await grants.ofAccount(who.accountId)).some((grant) => grant.clientId === clientId))
        ? (await grants.withdraw(who.accountId, clientId, accounts, consents)).revoked
        : 0;
      if (!revoked && !remembered) return page.show(ctx, who, { section: SECTION, error: 'That app has no access to withdraw.' }, 404);
      logger.info({ event: 'account.access_withdrawn', sub: who.accountId, client_id: clientId, grants: revoked }, 'access withdrawn on the account page');
      page.done(ctx, SECTION, 'withdrawn');
    });
  };
}
