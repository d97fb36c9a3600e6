/**
 * Which claims each OpenID scope gives (OIDC Core §5.4), and what follows from it for a client and a
 * page. Plain data, without the engine: the consent store (consents.ts, which the CLI's store
 * commands load) reads it, and a CLI command that never builds a provider must not load
 * oidc-provider for a table (test/unit/cli-startup.test.ts).
 */
/** The claims each OpenID scope gives (OIDC Core §5.4); `openid`'s are every client's. */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
} as const;

/** What `openid` gives in every ID token beside `sub`'s scope (provider.ts `claims`): how and when the person signed in, and the upstream that did. */
export const OPENID_CLAIMS = ['sub', 'acr', 'amr', 'auth_time', 'idp'] as const;

/**
 * Every claim the provider offers (its claims_supported, which oidc-provider collects from the
 * `claims` configuration): the engine ignores any other name a `claims` parameter asks for (OIDC
 * Core §5.5; its requestParamClaims), so a page listing what an app asks for lists none other.
 */
export const SUPPORTED_CLAIMS: ReadonlySet<string> = new Set([...Object.values(SCOPE_CLAIMS).flat(), ...OPENID_CLAIMS]);

/** The claims the OpenID scopes `scopes` give between them (a page that lists a scope need not list its claims by name). */
export function claimsOfScopes(scopes: readonly string[]): ReadonlySet<string> {
  return new Set(scopes.flatMap((scope) => (SCOPE_CLAIMS as Record<string, readonly string[]>)[scope] ?? []));
}

const NONE: ReadonlySet<string> = new Set();
/** Per client object (one never changes once made: client-metadata.ts): asked at every ID token and userinfo answer. */
const beyondOf = new WeakMap<object, ReadonlySet<string>>();

/**
 * The claims a client may not have: those of the OpenID scopes outside its `scope` metadata (none
 * when it registered no `scope`). A claim asked for by name (the `claims` parameter, OIDC Core
 * §5.5) is no way around the scopes an operator or the registration allowed the client.
 */
export function claimsBeyondScope(client: { readonly scope?: string } | undefined): ReadonlySet<string> {
  if (!client?.scope) return NONE;
  let beyond = beyondOf.get(client);
  if (!beyond) {
    const allowed = new Set(client.scope.split(' '));
    beyond = new Set(Object.entries(SCOPE_CLAIMS).flatMap(([scope, claims]) => (scope === 'openid' || allowed.has(scope) ? [] : claims)));
    beyondOf.set(client, beyond);
  }
  return beyond;
}
