/**
 * The engine's OpenID scopes are the OpenID scopes (openid, offline_access, profile, email): an
 * API's scope is never one, so a token for userinfo never lists it.
 *
 * oidc-provider takes every scope of its static `scopes` setting for an OpenID scope. Latchkey
 * lists the configured APIs' scopes there too, because that setting is also what a client's
 * `scope` metadata may name, and that metadata bounds what a person can delegate (provider.ts).
 * The engine then asked for an API's scope (`read`) twice at consent (once as an OpenID scope,
 * once as the API's), recorded it in the grant's OpenID part, and put it in the `scope` of every
 * access token for userinfo (authorization code or refresh without `resource`): the token
 * response said `openid … read`, and so did introspection, for a token that is good only at
 * userinfo. A resource server reading `scope` would have been misled. (A runtime API's scopes
 * are not static, and never had this.)
 *
 * Two places, read by everything else in the engine:
 * - OIDCContext#requestParamOIDCScopes, the requested scopes the engine treats as OpenID scopes
 *   (the consent prompt's op_scopes_missing, the request's scope when no resource is named, the
 *   authorization's "was anything granted" check): only the OpenID scopes. An API's scope is
 *   asked for and granted as that API's (rs_scopes_missing) when the request names the API, and
 *   is dropped from a request that names no API, as a runtime API's always was.
 * - Grant#getOIDCScope, which getOIDCScopeFiltered and getOIDCScopeEncountered build on (the
 *   userinfo token's scope at the code and refresh grants, the ID token's, userinfo's): only the
 *   OpenID scopes, so grants and remembered consents recorded before this patch read as what they
 *   mean.
 * What a client may register and request (`scopes`, the schema, validateClientScope) is unchanged.
 * Pinned in test/unit/provider-patches.test.ts.
 */
import type { Provider } from 'oidc-provider';

interface ContextWithParams {
  readonly params?: { readonly scope?: unknown };
}

type GetOIDCScope = (this: object) => string;

export function openIdScopesOnly(provider: Provider, openIdScopes: readonly string[]): void {
  const openId = new Set(openIdScopes);
  const only = (scopes: readonly string[]) => scopes.filter((scope) => openId.has(scope));

  Object.defineProperty(provider.OIDCContext.prototype, 'requestParamOIDCScopes', {
    configurable: true,
    get(this: ContextWithParams): Set<string> {
      const scope = this.params?.scope;
      return new Set(typeof scope === 'string' ? only(scope.split(' ')) : []);
    },
  });

  const grant = provider.Grant.prototype as unknown as { getOIDCScope: GetOIDCScope };
  const getOIDCScope = grant.getOIDCScope;
  // Also called with the grant's `rejected` part as `this` (getRejectedOIDCScope).
  grant.getOIDCScope = function getOpenIdScope(this: object): string {
    return only(getOIDCScope.call(this).split(' ')).join(' ');
  };
}
