/**
 * RFC 6749 §5.2 lists "no client authentication included" under invalid_client, answered with
 * 401 and a WWW-Authenticate challenge. oidc-provider answers that case with 400 invalid_request;
 * this middleware (installed with provider.use) corrects exactly that answer, on every endpoint
 * that authenticates clients (token, introspection, revocation, pushed authorization requests).
 *
 * Also there: a stored client whose metadata no longer passes the registration policy (say, a
 * public client with client_credentials written before that rule) fails to load with
 * invalid_client_metadata; to a program authenticating as it, that is simply invalid_client.
 *
 * Both answers carry the challenge the engine gives a failed authentication over Basic
 * (lib/shared/client_auth.js): `Basic realm="<issuer>", error="invalid_client",
 * error_description="…"`, so the endpoints' 401s name one realm (this patch named the issuer's
 * host before). A request without any credentials is told the scheme it may use (RFC 6749 §5.2,
 * RFC 9110 §11.6.1); one that failed with credentials in the body (client_secret_post, a client
 * assertion) keeps the engine's answer, a 401 without a challenge, as RFC 6749 §5.2 words it
 * ("if the client attempted to authenticate via the Authorization header"): client libraries
 * (oauth4webapi, openid-client) take any challenge for the error and no longer read the body's
 * invalid_client. An invalid_client_metadata answer gets the challenge only after an Authorization
 * header, as the engine's own.
 *
 * An Authorization header of another scheme than Basic (Bearer, DPoP, Digest) is an unsupported
 * authentication method, which RFC 6749 §5.2 makes invalid_client with 401 and a challenge; the
 * engine answers 400 invalid_request ("invalid authorization header value format"). At introspection
 * a Bearer token is how RFC 7662 §2.1 lets a protected resource authorize its call, and §2.3 answers
 * one that will not do with RFC 6750 §3's 401 and Bearer challenge (invalid_token): we take no bearer
 * tokens there, so every one gets that. A malformed Basic header stays the engine's invalid_request.
 *
 * A Basic header with an empty secret (`client_id:`, as some libraries send for a public client:
 * requests-oauthlib by default, oidc-agent) is an attempt to authenticate through the Authorization
 * header that failed: RFC 6749 §5.2's invalid_client, 401 with the challenge, whose description says
 * that a client without a secret sends its client_id in the body. The engine answered 400
 * invalid_request ("client_secret must be provided in the Authorization header").
 *
 * A failed authentication that sent a client_id or secret with a space or line break at an end is
 * told so (../padded-credentials.ts), with the engine's status and error.
 */
import type { Context, Middleware } from 'koa';
import { jsonError } from '../../http/errors.js';
import { scoped } from '../../http/layers.js';
import { paddedCredentialHint } from '../padded-credentials.js';

const NO_MECHANISM = 'no client authentication mechanism provided';
const BAD_HEADER = 'invalid authorization header value format';
/** The engine's description of every failed client authentication, and of a Basic header it cannot decode (a line break in it). */
const ENGINE_FAILED = 'client authentication failed';
const BADLY_ENCODED = 'client_id and client_secret in the authorization header are not properly encoded';
/** The engine's invalid_request descriptions that are failed client authentications, and what we say of each. */
const FAILED_AUTHENTICATION = new Map([
  [NO_MECHANISM, 'client authentication is required'],
  // requests-oauthlib (its default for a client without a secret) and oidc-agent send `Basic client_id:`
  // for a public client: the description says what to send instead.
  ['client_secret must be provided in the Authorization header', 'client authentication failed: the Authorization header carries no client secret (a client without a secret sends its client_id in the request body, and no Authorization header)'],
]);
const AUTHENTICATING_ROUTES = new Set(['token', 'introspection', 'revocation', 'pushed_authorization_request', 'backchannel_authentication', 'device_authorization']);

/** The engine's challenge for a failed client authentication (lib/helpers/append_www_authenticate.js), with this description. */
function challenge(ctx: Context, realm: string, description: string, scheme = 'Basic', error = 'invalid_client'): void {
  const quoted = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  ctx.set('WWW-Authenticate', `${scheme} realm=${quoted(realm)}, error="${error}", error_description=${quoted(description)}`);
}

/** The scheme of an Authorization header, lowercased, when it names one other than Basic. */
function otherScheme(ctx: Context): string | undefined {
  const scheme = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)/.exec(ctx.get('Authorization'))?.[1]?.toLowerCase();
  return scheme && scheme !== 'basic' ? scheme : undefined;
}

/** `realm`: the issuer identifier, as the engine's own challenges name it. */
export function clientAuthenticationRequired(realm: string): Middleware {
  const corrected = (ctx: Context): void => {
    const body = ctx.body as { error?: string; error_description?: string } | undefined;
    const route = (ctx as { oidc?: { route?: string } }).oidc?.route;
    if (body?.error === 'invalid_client_metadata' && route && AUTHENTICATING_ROUTES.has(route)) {
      const description = 'client authentication failed: its registration is not valid any more';
      jsonError(ctx, 401, 'invalid_client', description);
      if (ctx.get('Authorization')) challenge(ctx, realm, description);
    } else if (ctx.status === 400 && body?.error === 'invalid_request' && FAILED_AUTHENTICATION.has(body.error_description ?? '')) {
      const description = FAILED_AUTHENTICATION.get(body.error_description ?? '')!;
      jsonError(ctx, 401, 'invalid_client', description);
      challenge(ctx, realm, description);
    } else if (body?.error_description === ENGINE_FAILED || body?.error_description === BADLY_ENCODED) {
      const hint = paddedCredentialHint(ctx);
      if (!hint) return;
      const description = `${body.error_description}: ${hint}`;
      jsonError(ctx, ctx.status, body.error!, description);
      if (ctx.response.get('WWW-Authenticate')) challenge(ctx, realm, description);
    } else if (ctx.status === 400 && body?.error === 'invalid_request' && body.error_description === BAD_HEADER) {
      const scheme = otherScheme(ctx);
      if (scheme === 'bearer' && route === 'introspection') {
        const description = 'introspection takes client authentication, not a bearer token';
        jsonError(ctx, 401, 'invalid_token', description);
        challenge(ctx, realm, description, 'Bearer', 'invalid_token');
      } else if (scheme) {
        const description = `unsupported authentication scheme: use Basic or the client's registered method`;
        jsonError(ctx, 401, 'invalid_client', description);
        challenge(ctx, realm, description);
      }
    }
  };
  // Scoped by the routes that authenticate clients: oidc-provider's client authentication
  // (lib/shared/client_auth.js), the only source of NO_MECHANISM, runs on those routes alone.
  // Not an async function: a closure and a `then` cost less than its frame and promises.
  return scoped({ routes: [...AUTHENTICATING_ROUTES] }, function clientAuthRequired(ctx, next) {
    return next().then(() => corrected(ctx));
  });
}
