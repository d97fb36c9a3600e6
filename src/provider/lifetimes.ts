/**
 * How long what we sign stays valid: the numbers the key ring (how long a retired key stays
 * published) and the revocation list (how long an entry must live) are derived from.
 */
import type { ApiDefinition } from '../apis/apis.js';
import type { Config } from '../config.js';
import { adminResourceServer } from '../registration/admin-resource.js';
import { feedResourceServer } from '../revocation/feed-server.js';

/** Seconds of clock skew tolerated when validating JWTs (ours and others'). */
export const CLOCK_TOLERANCE = 15;

/** The built-in APIs, both privileged: the revocation feed and the admin API. */
export function builtinResourceServers(config: Config): ApiDefinition[] {
  return [{ ...feedResourceServer(config.issuer), privileged: true }, adminResourceServer(config.issuer)];
}

/** The configured resource servers and the built-in ones (runtime APIs live in the store: src/apis/). */
export function resourceServers(config: Config): ApiDefinition[] {
  return [...config.resourceServers.map(({ grants: _grants, ...api }) => api), ...builtinResourceServers(config)];
}

/**
 * The longest lifetime any access token can have, in seconds. APIs added at runtime are held to
 * ttl.apiAccessTokenMax (src/apis/), so this bound holds without reading the store.
 */
export function longestAccessTokenLifetime(config: Config): number {
  return Math.max(
    config.ttl.accessToken,
    config.ttl.clientCredentials,
    config.ttl.apiAccessTokenMax,
    ...resourceServers(config).map((server) => server.accessTokenTTL ?? 0),
  );
}

/** The longest lifetime of anything we sign (access tokens and ID tokens), in seconds. */
export function longestSignedLifetime(config: Config): number {
  return Math.max(longestAccessTokenLifetime(config), config.ttl.idToken);
}
