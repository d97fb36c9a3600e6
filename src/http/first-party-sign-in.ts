/**
 * Signing in to one of Latchkey's own pages (the developer page, the account page) with Latchkey
 * itself: the page is a first-party public client that starts an ordinary authorization request
 * (GET <page>/sign-in) and, once the person is back (GET <page>/callback), reads the provider's
 * session instead of redeeming the code.
 *
 * GET <page>/sign-in?again=<section> asks the person to sign in again even with a session
 * (prompt=login, max_age=0), for an action that needs a recent sign-in, and comes back to that
 * section of the page (<page>/callback carries it in `state`, checked to be a plain name).
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

/** A section's name, as `again` may carry it. */
const SECTION_NAME = /^[a-z][a-z-]{0,31}$/;
/** The query key of the page's notice after signing in again (account-page.ts shows it). */
export const SIGNED_IN_AGAIN = 'signed-in-again';

/** GET /sign-in and GET /callback on a router prefixed with the page's path. */
export function firstPartySignIn(router: Router, issuer: string, { clientId, clientName, path }: FirstPartyPage): void {
  router.get('/sign-in', async (ctx) => {
    const url = new URL(`${issuer}/auth`);
    // PKCE is required of every client; the page never redeems the code (it reads the session),
    // so the verifier is not kept. An unredeemed code simply expires (ttl.authorizationCode).
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    const again = typeof ctx.query.again === 'string' && SECTION_NAME.test(ctx.query.again) ? ctx.query.again : undefined;
    url.search = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${issuer}${path}/callback`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: `${randomBytes(16).toString('base64url')}${again ? `.${again}` : ''}`,
      ...(again && { prompt: 'login', max_age: '0' }),
    }).toString();
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    if (ctx.query.error) {
      respondWithError(ctx, 400, { error: 'access_denied', error_description: `signing in to the ${clientName.replace(/^Latchkey /, '')} was cancelled` });
      return;
    }
    const again = typeof ctx.query.state === 'string' ? ctx.query.state.split('.')[1] : undefined;
    if (again && SECTION_NAME.test(again)) return ctx.redirect(`${path}?done=${again}.${SIGNED_IN_AGAIN}#${again}`);
    ctx.redirect(path);
  });
}
