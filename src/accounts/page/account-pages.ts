/**
 * The account page (/account): each person's own page, signed in with Latchkey itself. This module
 * wires it: its own first-party client and sign-in, the frame (account-page.ts), and the sections,
 * each a module that adds itself to the frame (see AccountPage in account-page.ts).
 */
import type { Middleware } from 'koa';
import type { ClientMetadata as ClientMetadataInput } from 'oidc-provider';
import { firstPartyClient, firstPartySignIn, type FirstPartyPage } from '../../http/first-party-sign-in.js';
import type { ProviderInService } from '../../provider-in-service.js';
import type { Accounts } from '../accounts.js';
import type { AccountSessions } from '../sessions.js';
import { ACCOUNT_PATH, accountPage, type AccountPage, type Person } from './account-page.js';

export const ACCOUNT_CLIENT_ID = 'latchkey-account';

const ACCOUNT_PAGE: FirstPartyPage = { clientId: ACCOUNT_CLIENT_ID, clientName: 'Latchkey account page', path: ACCOUNT_PATH };

/** The page's own client (provider.ts registers it): public, code + PKCE, back to /account/callback. */
export function accountClient(issuer: string): ClientMetadataInput {
  return firstPartyClient(issuer, ACCOUNT_PAGE);
}

/** A module that adds a section and its actions to the page (passkeys, authenticator app, …). */
export type AccountPageExtension = (page: AccountPage) => void;

interface Options {
  readonly issuer: string;
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly accounts: Accounts;
  /** Re-checks the session's person on every request. */
  readonly sessions: AccountSessions;
  readonly csrfKey: string;
  /** Sections from other modules, added after the page's own. */
  readonly extensions?: readonly AccountPageExtension[];
}

export function accountPages({ issuer, providers, accounts, sessions, csrfKey, extensions = [] }: Options): Middleware {
  const page = accountPage({ providers, accounts, sessions, csrfKey });
  firstPartySignIn(page.router, issuer, ACCOUNT_PAGE);
  for (const extend of extensions) extend(page);
  page.router.get('/', page.personRequired, async (ctx) => page.show(ctx, ctx.state.person as Person));
  return page.router.routes() as Middleware;
}
