/**
 * A lowered access token lifetime told to the APIs that verify JWTs locally. Introspection ends a
 * token issued before an operator lowered ttl.accessToken, ttl.clientCredentials or an API's
 * accessTokenTTL (or ttl.apiAccessTokenMax under a stored API's) and restarted, at its `iat` plus the
 * lifetime configured now (provider/patches/lifetimes-as-configured.ts, jwt-access-tokens.ts); an
 * API running `latchkey/resource-server` was not told, and took such a JWT to the `exp` stamped under
 * the longer lifetime (twelfth passes' leftover, thirteenth passes).
 *
 * At start, for every API and for people's and clients' own tokens, a lifetime shorter than the
 * longest any instance published (RevocationList.lifetimes: this start's settings, and earlier ones
 * while tokens issued under them may live) is written as a lifetime entry: the API's tokens issued up
 * to now live at most that long from their `iat`. Whether it was lowered is not recorded: a lifetime
 * that was always the shorter one is written too at each start, which ends nothing (its tokens were
 * issued with it), for a few lines on the feed.
 */
import type { Apis } from '../apis/apis.js';
import type { Config } from '../config.js';
import type { RevocationList } from './list.js';

/** The APIs whose tokens of people or of clients are now bounded shorter than some may have been issued with (a built-in one of fixed lifetime is bounded, not named). */
export async function tellLoweredLifetimes(apis: Apis, revocations: RevocationList, ttl: Pick<Config['ttl'], 'accessToken' | 'clientCredentials'>): Promise<string[]> {
  const longest = (await revocations.lifetimes()).access;
  const told: string[] = [];
  for (const api of await apis.list()) {
    const now = { people: api.accessTokenTTL ?? ttl.accessToken, clients: api.accessTokenTTL ?? ttl.clientCredentials };
    let shorter = false;
    for (const who of ['people', 'clients'] as const) {
      if (now[who] >= longest) continue;
      await revocations.lowerLifetime(api.identifier, who, now[who]);
      shorter = true;
    }
    // A built-in API's own lifetime (the revocation feed's) is fixed in the code: its tokens were never
    // issued with another, so the log does not say they may have been (it did at every start, a fresh
    // one included: fourteenth newcomer pass). Its entries are written all the same.
    if (shorter && !(api.source === 'builtin' && api.accessTokenTTL !== undefined)) told.push(api.identifier);
  }
  return told;
}
