/**
 * What is stored lives no longer than the configuration says now: a grant `ttl.grant` after it was
 * given, a refresh token `ttl.refreshToken` after it was issued (or rotated), a code, a device code
 * and an interaction (a sign-in under way) their own lifetime, whatever lifetime they were saved
 * with.
 *
 * oidc-provider stamps a stored record's `exp` when it is first saved (later saves keep it), from the
 * lifetime configured then, and reads only that `exp`. An operator who lowered a lifetime and
 * restarted (a consent to be asked again within a week, not a month; refresh tokens of a day) ended
 * nothing given before: a grant saved under the longer lifetime went on refreshing for it, its opaque
 * tokens stayed active, and JWTs were issued to its old end (red team's twentieth endings pass).
 *
 * What it changes in oidc-provider: the static `verify` of Grant, RefreshToken, AuthorizationCode,
 * DeviceCode and Interaction (which find and findByUserCode call with what the store holds, before
 * the instance is made) is given the record with its `exp` lowered to `iat` plus the lifetime
 * configured now, so the instance says it (isExpired, remainingTTL, a later save's TTL, and what
 * tokens-within-grant.ts bounds tokens by), and a find that does not ask with ignoreExpiration finds
 * nothing once that bound has passed (on this machine's clock, with none of the engine's tolerance
 * for a stored `exp`: the bound is ours). `iat` is the record's first save (opaque.js keeps it), so
 * a grant is bounded from when it was given, a rotated refresh token from its rotation. A raised
 * lifetime extends nothing (the stored `exp` is kept). Latchkey's remembered consents are bounded
 * alike (consents.ts). Pinned by test/unit/provider-patches.test.ts and test/e2e/redteam-endings-20.test.ts.
 */
import type { Provider } from 'oidc-provider';
import { machineSeconds } from '../../clock.js';

type Stored = { iat?: unknown; exp?: unknown };
type Verify = (stored: Stored, options?: { ignoreExpiration?: boolean }) => Promise<unknown>;

/** The models whose lifetime is one configured number (a session is bounded by session-max.ts), by model name. */
export type ConfiguredLifetimes = Readonly<Record<'Grant' | 'RefreshToken' | 'AuthorizationCode' | 'DeviceCode' | 'Interaction', number>>;

export function lifetimesAsConfigured(provider: Provider, lifetimes: ConfiguredLifetimes): void {
  for (const [name, lifetime] of Object.entries(lifetimes)) {
    const model = (provider as unknown as Record<string, { verify?: Verify }>)[name];
    const verify = model?.verify;
    if (typeof verify !== 'function') throw new Error(`oidc-provider ${name}.verify is gone: review src/provider/patches/lifetimes-as-configured.ts`);
    model!.verify = async function (this: unknown, stored, options) {
      const bound = typeof stored?.iat === 'number' ? stored.iat + lifetime : undefined;
      if (bound === undefined || (typeof stored.exp === 'number' && stored.exp <= bound)) return verify.call(this, stored, options);
      if (!options?.ignoreExpiration && bound <= machineSeconds()) throw new Error('past the lifetime configured now');
      return verify.call(this, { ...stored, exp: bound }, options);
    };
  }
}

/**
 * How long an access token of `model` ('AccessToken': a person's; 'ClientCredentials': a client's
 * own) for the audience `aud` may live under the configuration as it is now (the API's own
 * accessTokenTTL, else ttl.accessToken or ttl.clientCredentials), as provider.ts issues them.
 */
export type AccessTokenLifetime = (model: 'AccessToken' | 'ClientCredentials', aud: unknown) => Promise<number>;

type FoundAccessToken = { iat?: unknown; exp?: unknown; aud?: unknown };
type Find = (value: unknown, options?: { ignoreExpiration?: boolean }) => Promise<FoundAccessToken | undefined>;

/**
 * The same for opaque access tokens, whose lifetime is not one number but their API's (or the
 * default for people's or clients' own tokens): an operator who lowered ttl.accessToken,
 * ttl.clientCredentials or an API's accessTokenTTL and restarted ended no opaque token issued
 * before, which stayed active at introspection and userinfo to the `exp` stamped under the longer
 * lifetime (the eleventh fresh-eyes granting pass left it; the twelfth bounded it).
 *
 * What it changes in oidc-provider: the static `find` of AccessToken and ClientCredentials (which
 * userinfo, introspection, revocation and our own bearer checks call) gives the token it found with
 * its `exp` lowered to its `iat` (its issue) plus `lifetime` read now, and nothing once that has
 * passed (unless asked with ignoreExpiration). Read after the engine's find, not in the `verify` it
 * calls, whose failures it reads as "not found": a store outage reading a stored API's lifetime (a
 * cached read; none for a configured or built-in API, or a token without audience) is a 503, as
 * every other read of the request. JWT access tokens are bounded alike where we answer for them
 * (jwt-access-tokens.ts, introspection).
 */
export function accessTokensAsConfigured(provider: Provider, lifetime: AccessTokenLifetime): void {
  for (const name of ['AccessToken', 'ClientCredentials'] as const) {
    const model = (provider as unknown as Record<string, { find?: Find }>)[name];
    const find = model?.find;
    if (typeof find !== 'function') throw new Error(`oidc-provider ${name}.find is gone: review src/provider/patches/lifetimes-as-configured.ts`);
    model!.find = async function (this: unknown, value, options) {
      const token = await find.call(this, value, options);
      if (!token || typeof token.iat !== 'number') return token;
      const bound = token.iat + (await lifetime(name, token.aud));
      if (typeof token.exp === 'number' && token.exp <= bound) return token;
      if (!options?.ignoreExpiration && bound <= machineSeconds()) return undefined;
      token.exp = bound;
      return token;
    };
  }
}
