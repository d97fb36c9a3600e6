/**
 * A client's keys read from its `jwks_uri` (a Client ID Metadata Document's included) verify its
 * assertions for at most `clientJwks.maxAge` seconds (a minute by default, never more) after they
 * were read: then the jwks_uri is read again, and a key the client removed from it (because it
 * leaked) no longer authenticates the client.
 *
 * What it changes in oidc-provider, and why:
 * - The engine verifies a client's JWTs (private_key_jwt client assertions at the token, PAR,
 *   introspection, revocation and device endpoints; request objects) with the keys it holds
 *   (lib/helpers/jwt.js verify) and reads the jwks_uri again only when none of them verifies and
 *   they are no longer fresh. A key still held always verifies, so a key the client removed from
 *   its JWKS kept authenticating it at every instance that had read it once, for as long as the
 *   process ran (a configured client) or the client's metadata did not change: freshness was never
 *   asked. KeyStore#selectForVerify now finds no key in a client's key store that is no longer
 *   fresh (ClientKeyStore#fresh), so the engine's own retry reads the jwks_uri and verifies with
 *   what it publishes now; a jwks_uri that cannot be read then is invalid_client's reason, not the
 *   keys of before (fails closed). Key stores of keys given by value (`jwks`), and the provider's own,
 *   have no `fresh` and are left as they are.
 * - A read of the jwks_uri that fails (not 200, or not a JWKS) clears the client's key store: the
 *   engine marks it fresh for a minute before it looks at the answer, keeping the keys of before, so
 *   a JWKS taken down (a 404, as a client may answer once its key leaked) had its old keys verify for
 *   another minute after every read that failed. Until the next read no key verifies.
 * - The engine keeps a client's keys fresh until the latest of a minute after the fetch, the
 *   answer's `Expires` and its `Cache-Control: max-age` (lib/models/client.js
 *   ClientKeyStore#refresh), without a ceiling: a day for a JWKS served as a static file with
 *   `max-age=86400`, a year for one marked immutable. The engine's fetch of a client's URLs now drops
 *   those two headers, so the engine's own least, a minute, is the most.
 * - A read of the jwks_uri (whatever its outcome) leaves the key store fresh for `clientJwks.maxAge`
 *   seconds at most: an operator may trust a JWKS for less than the engine's minute.
 * Found by the red team's endings pass: the key removed from the jwks_uri still authenticated the
 * client after a minute. The cost: a client in use has its JWKS read once a minute per instance (by
 * the request that finds it stale). Of the engine's fetches only the key store's refresh reads
 * those headers (the library's own metadata documents aside, a feature Latchkey keeps off). Pinned
 * by test/unit/provider-patches.test.ts.
 */
import type { Provider } from 'oidc-provider';
import KeyStore from 'oidc-provider/lib/helpers/keystore.js';
import { epochSeconds } from '../../clock.js';

type Fetch = (url: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** `fetch` whose answers carry no caching headers (see above). */
export function keysFreshForAMinute(fetch: Fetch): Fetch {
  return async (url, init) => {
    const response = await fetch(url, init);
    if (!response.headers.has('cache-control') && !response.headers.has('expires')) return response;
    const headers = new Headers(response.headers);
    headers.delete('cache-control');
    headers.delete('expires');
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  };
}

const PATCHED = Symbol('latchkey: stale client keys verify nothing');

interface ClientKeyStore {
  readonly provider: Provider;
  freshUntil?: number;
  fresh(): boolean;
  refresh(): Promise<void>;
  clear(): void;
}

/** Each provider's `clientJwks.maxAge`, seconds. */
const maxAges = new WeakMap<Provider, number>();

/** The client key store classes (one per provider) whose reads are held to their provider's maxAge and whose failed reads forget the keys of before. */
const patchedReads = new WeakSet<object>();

/**
 * A read of the jwks_uri leaves the key store fresh for the provider's maxAge at most. A failed read
 * leaves no key: the engine marks the key store fresh for a minute before it looks at the answer's
 * status and body, and keeps the keys of before when either is wrong, so a JWKS taken down (404, as
 * a client may do when its key leaked) or broken made the old keys, the leaked one among them,
 * verify for another minute after each read that failed.
 */
function boundReads(prototype: ClientKeyStore): void {
  if (patchedReads.has(prototype)) return;
  patchedReads.add(prototype);
  const refresh = prototype.refresh;
  prototype.refresh = async function (this: ClientKeyStore) {
    if (this.fresh()) return;
    const readAt = epochSeconds();
    try {
      await refresh.call(this);
    } catch (error) {
      this.clear();
      throw error;
    } finally {
      const maxAge = maxAges.get(this.provider);
      if (maxAge !== undefined && this.freshUntil !== undefined) this.freshUntil = Math.min(this.freshUntil, readAt + maxAge);
    }
  };
}

/**
 * A client's key store that is no longer fresh offers no key to verify with, nor after a failed read,
 * and a read keeps it fresh for `maxAge` seconds at most (see above). The patch of the engine is
 * made once per process; the maxAge is this provider's.
 */
export function staleClientKeysVerifyNothing(provider: Provider, maxAge: number): void {
  maxAges.set(provider, maxAge);
  const prototype = KeyStore.prototype as unknown as Record<string | symbol, unknown> & { selectForVerify(options: unknown): unknown[] };
  if (prototype[PATCHED]) return;
  const select = prototype.selectForVerify;
  prototype.selectForVerify = function (this: Partial<ClientKeyStore>, options: unknown) {
    if (typeof this.fresh === 'function') {
      // The class is the engine's, made per provider (lib/models/client.js): reached through its first key store.
      boundReads(Object.getPrototypeOf(this) as ClientKeyStore);
      if (!this.fresh()) return [];
    }
    return select.call(this, options);
  };
  prototype[PATCHED] = true;
}
