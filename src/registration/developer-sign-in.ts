/**
 * Signing in to the developer page: an ordinary authorization request of the page's own public
 * client (GET /developer/sign-in), and its return (GET /developer/callback); see
 * http/first-party-sign-in.ts, which the account page shares.
 */
import type Router from '@koa/router';
import type { ClientMetadata as ClientMetadataInput } from 'oidc-provider';
import { FIRST_PARTY_PAGES, firstPartyClient, firstPartySignIn } from '../http/first-party-sign-in.js';

const DEVELOPER_PAGE = FIRST_PARTY_PAGES.developer;
export const DEVELOPER_CLIENT_ID = DEVELOPER_PAGE.clientId;

/** The page's own client: public, code + PKCE, back to /developer/callback. */
export function developerClient(issuer: string): ClientMetadataInput {
  return firstPartyClient(issuer, DEVELOPER_PAGE);
}

export function signInRoutes(router: Router, { issuer }: { issuer: string }): void {
  firstPartySignIn(router, issuer, DEVELOPER_PAGE);
}
