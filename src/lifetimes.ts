/**
 * How long what we sign stays valid: the numbers the key ring (how long a retired key stays
 * published) and the revocation list (how long an entry must live) are derived from.
 */
import { resourceServers } from './apis/builtin.js';
import { machineSeconds } from './clock.js';
import type { Config } from './config.js';

/** Seconds of clock skew tolerated when validating JWTs (ours and others'). */
export const CLOCK_TOLERANCE = 15;

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

/**
 * Seconds a sign-in session is kept from now: ttl.session after this use, and never past
 * ttl.sessionMax after `signedInAt` (the session's loginTs). At least 1: the engine takes positive
 * integers. A session nobody signed in to yet holds only a page's state (a sign-out's confirmation,
 * the device page's code entry), which anyone gets by asking for the page without a cookie: it is
 * kept as long as a sign-in in progress (ttl.interaction, at most ttl.session), so that an outsider
 * asking again and again leaves an hour of them in the store, not two weeks' of them. Signing in on
 * it saves it again, with the sign-in's lifetime.
 */
export function sessionLifetime(ttl: Pick<Config['ttl'], 'session' | 'sessionMax' | 'interaction'>, signedInAt: unknown, now = machineSeconds()): number {
  if (typeof signedInAt !== 'number') return Math.min(ttl.session, ttl.interaction);
  return Math.max(1, Math.min(ttl.session, signedInAt + ttl.sessionMax - now));
}

/**
 * Seconds what is kept beside a session signed in now lives (which credentials signed it in,
 * accounts/session-credentials.ts; which upstream session it rests on, upstreams/sessions.ts): as
 * long as the session may, which is ttl.sessionMax after its sign-in when it is used at least every
 * ttl.session, and never less than ttl.session. Kept ttl.session only (the sixteenth fresh-eyes
 * passes), a session in use longer than that was no longer found by the endings that look it up
 * there: the upstream's back-channel logout and removal, an upstream link or the recovery codes
 * removed on the account page.
 */
export function sessionRecordsLifetime(ttl: Pick<Config['ttl'], 'session' | 'sessionMax'>): number {
  return Math.max(ttl.session, ttl.sessionMax);
}
