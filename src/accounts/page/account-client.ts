/**
 * The account page's own client, apart from account-pages.ts: provider.ts registers it, and a CLI
 * command that builds an engine (and serves no page) need not load the page, its sections and routes.
 */
import type { ClientMetadata as ClientMetadataInput } from 'oidc-provider';
import { FIRST_PARTY_PAGES, firstPartyClient } from '../../http/first-party-sign-in.js';

/** The page's own client (provider.ts registers it): public, code + PKCE, back to /account/callback. */
export function accountClient(issuer: string): ClientMetadataInput {
  return firstPartyClient(issuer, FIRST_PARTY_PAGES.account);
}
