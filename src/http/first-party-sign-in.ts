/**
 * Signing in to one of Latchkey's own pages (the developer page, the account page) with Latchkey
 * itself: the page is a first-party public client that starts an ordinary authorization request
 * (GET <page>/sign-in) and, once the person is back (GET <page>/callback), reads the provider's
 * session instead of redeeming the code.
 */
import { createHash, randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import type { ClientMetadata as ClientMetadataInput } from 'oidc-provider';
import { respondWithError } from './errors.js';

export interface FirstPartyPage {
  readonly clientId: string;
  /** What people see on the consent page. */
  readonly clientName: string;
  /** Where the page lives, e.g. '/developer'. */
  readonly path: string;
}

/** Latchkey's own pages that sign people in, each with its own client. */
export const FIRST_PARTY_PAGES = {
  developer: { clientId: 'latchkey-developer', clientName: 'Latchkey developer page', path: '/developer' },
  account: { clientId: 'latchkey-account', clientName: 'Latchkey account page', path: '/account' },
} as const satisfies Record<string, FirstPartyPage>;

/** Their clients' ids (e.g. not listed among the apps a person gave access to: these are Latchkey itself). */
export const FIRST_PARTY_CLIENT_IDS: readonly string[] = Object.values(FIRST_PARTY_PAGES).map((page) => page.clientId);

/** The page's own client: public, code + PKCE, back to <path>/callback. */
export function firstPartyClient(issuer: string, { clientId, clientName, path }: FirstPartyPage): ClientMetadataInput {
  return {
    client_id: clientId,
    client_name: clientName,
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}${path}/callback`],
    scope: 'openid',
  };
}

/** GET /sign-in and GET /callback on a router prefixed with the page's path. */
export function firstPartySignIn(router: Router, issuer: string, { clientId, clientName, path }: FirstPartyPage): void {
  router.get('/sign-in', async (ctx) => {
    const url = new URL(`${issuer}/auth`);
    // PKCE is required of every client; the page never redeems the code (it reads the session),
    // so the verifier is not kept. An unredeemed code simply expires (ttl.authorizationCode).
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    url.search = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${issuer}${path}/callback`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: randomBytes(16).toString('base64url'),
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    if (ctx.query.error) {
      respondWithError(ctx, 400, { error: 'access_denied', error_description: `signing in to the ${clientName.replace(/^Latchkey /, '')} was cancelled` });
      return;
    }
    ctx.redirect(path);
  });
}
