/**
 * The revocation feed is itself a protected resource of ours, and a privileged one: a resource
 * server reads it with an access token it gets by client_credentials for this audience and scope,
 * once an operator granted its client the feed (src/apis/), so it authenticates with whatever
 * client authentication it uses at the token endpoint (secret, private_key_jwt).
 */
import type { ResourceServerConfig } from '../config.js';

export const FEED_PATH = '/revocations';
export const FEED_SCOPE = 'revocations';
/** Seconds a feed access token lives; the helper fetches a new one before it expires. */
export const FEED_TOKEN_TTL = 300;

/** The feed's resource indicator (RFC 8707): the `aud` of the tokens that read it. */
export function feedAudience(issuer: string): string {
  return `${issuer}${FEED_PATH}`;
}

export function feedResourceServer(issuer: string): ResourceServerConfig {
  return { identifier: feedAudience(issuer), scopes: [FEED_SCOPE], format: 'jwt', accessTokenTTL: FEED_TOKEN_TTL };
}
