/**
 * How long what we sign stays valid: the numbers the key ring (how long a retired key stays
 * published) and the revocation list (how long an entry must live) are derived from.
 */
import type { Config, ResourceServerConfig } from '../config.js';
import { feedResourceServer } from '../revocation/feed-server.js';

/** Seconds of clock skew tolerated when validating JWTs (ours and others'). */
export const CLOCK_TOLERANCE = 15;

/** The configured resource servers and the built-in one, the revocation feed. */
export function resourceServers(config: Config): ResourceServerConfig[] {
  return [...config.resourceServers, feedResourceServer(config.issuer)];
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
