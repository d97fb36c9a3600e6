/**
 * How long what we sign stays valid: the numbers the key ring (how long a retired key stays
 * published) and the revocation list (how long an entry must live) are derived from.
 */
import type { Config } from '../config.js';
import { adminResourceServer } from '../registration/admin-resource.js';
import { feedResourceServer } from '../revocation/feed-server.js';
import type { ResourceServerDefinition } from './resource-servers.js';

/** Seconds of clock skew tolerated when validating JWTs (ours and others'). */
export const CLOCK_TOLERANCE = 15;

/** The configured resource servers and the built-in ones: the revocation feed and the admin API. */
export function resourceServers(config: Config): ResourceServerDefinition[] {
  return [...config.resourceServers, feedResourceServer(config.issuer), adminResourceServer(config.issuer)];
}

/** The longest lifetime any access token can have, in seconds. */
export function longestAccessTokenLifetime(config: Config): number {
  return Math.max(
    config.ttl.accessToken,
    config.ttl.clientCredentials,
    ...resourceServers(config).map((server) => server.accessTokenTTL ?? 0),
  );
}

/** The longest lifetime of anything we sign (access tokens and ID tokens), in seconds. */
export function longestSignedLifetime(config: Config): number {
  return Math.max(longestAccessTokenLifetime(config), config.ttl.idToken);
}
