/**
 * A registration request (RFC 7591 §3, with an initial access token) or a client configuration
 * request (RFC 7592 §2, with the registration access token) whose bearer token the engine cannot
 * take at all (sent in the query string, sent two ways at once, an `Authorization` header of the
 * wrong shape) is answered `400 invalid_request` with the `Bearer` challenge naming that error, as
 * userinfo answers it. RFC 6750 §3: a protected resource request that "does not contain an access
 * token that enables access" MUST be answered with `WWW-Authenticate`; RFC 7592 §2 and RFC 7591 §3
 * take those tokens as RFC 6750 bearer tokens.
 *
 * oidc-provider's registration steps add the challenge to `401` errors only (their
 * set_www_authenticate_header.js step is built with `dpop: false`, which passes every other status
 * on untouched, so that `invalid_client_metadata` and `invalid_redirect_uri` carry none); the
 * `invalid_request` its `OIDCContext#getAccessToken` throws for a token it cannot take left
 * without one. What changes: at the registration routes only, an `invalid_request` thrown by
 * getAccessToken appends `Bearer realm="<issuer>", error="invalid_request", error_description="…"`
 * before it goes on as before (the engine's error step keeps the header, error-descriptions.ts
 * keeps its description within RFC 6750's characters). Userinfo's own step already challenges it,
 * so it is left alone. Pinned by test/unit/provider-patches.test.ts.
 */
import { errors, type Provider } from 'oidc-provider';

/** The engine's route names for RFC 7591 registration and RFC 7592 read, update and delete. */
const REGISTRATION_ROUTES = new Set(['registration', 'client', 'client_update', 'client_delete']);

interface ContextLike {
  readonly route?: string;
  readonly issuer: string;
  readonly ctx: { append(field: string, value: string): void };
}

type GetAccessToken = (this: ContextLike, ...args: unknown[]) => string;

const quoted = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function registrationBearerChallenges(provider: Provider): void {
  const prototype = provider.OIDCContext.prototype as unknown as { getAccessToken?: GetAccessToken };
  const getAccessToken = prototype.getAccessToken;
  if (typeof getAccessToken !== 'function') throw new Error('oidc-provider has no OIDCContext#getAccessToken: review src/provider/patches/registration-bearer-challenges.ts');
  prototype.getAccessToken = function takeBearerToken(this: ContextLike, ...args: unknown[]): string {
    try {
      return getAccessToken.apply(this, args);
    } catch (error) {
      if (error instanceof errors.InvalidRequest && REGISTRATION_ROUTES.has(this.route ?? '')) {
        const description = (error as { error_description?: string }).error_description;
        this.ctx.append(
          'WWW-Authenticate',
          `Bearer realm=${quoted(this.issuer)}, error="invalid_request"${description ? `, error_description=${quoted(description)}` : ''}`,
        );
      }
      throw error;
    }
  };
}
