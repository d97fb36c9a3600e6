/**
 * Signing in to the developer page: an ordinary authorization request of the page's own public
 * client (GET /developer/sign-in), and its return (GET /developer/callback).
 */
import { createHash, randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import { respondWithError } from '../http/errors.js';
import type { ClientMetadata as ClientMetadataInput } from 'oidc-provider';

export const DEVELOPER_CLIENT_ID = 'latchkey-developer';

/** The page's own client: public, code + PKCE, back to /developer/callback. */
export function developerClient(issuer: string): ClientMetadataInput {
  return {
    client_id: DEVELOPER_CLIENT_ID,
    client_name: 'Latchkey developer page',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}/developer/callback`],
    scope: 'openid',
  };
}

export function signInRoutes(router: Router, { issuer }: { issuer: string }): void {
  router.get('/sign-in', async (ctx) => {
    const url = new URL(`${issuer}/auth`);
    // PKCE is required of every client; the page never redeems the code (it reads the session),
    // so the verifier is not kept. An unredeemed code simply expires (ttl.authorizationCode).
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    url.search = new URLSearchParams({
      client_id: DEVELOPER_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${issuer}/developer/callback`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: randomBytes(16).toString('base64url'),
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    if (ctx.query.error) {
      respondWithError(ctx, 400, { error: 'access_denied', error_description: 'signing in to the developer page was cancelled' });
      return;
    }
    ctx.redirect('/developer');
  });
}
