/**
 * A JWT a client sends to be taken once, its client assertion (private_key_jwt, RFC 7523 §3: the
 * jti; the engine's words "client assertion tokens must only be used once"), is taken once also
 * when it is sent twice at the same moment, to one instance or to two.
 *
 * oidc-provider's ReplayDetection.unique (models/replay_detection.js) finds the jti's record, then
 * saves one: two requests with one assertion both found none and both authenticated. At the token
 * endpoint the save is even held back to the end of the request (store/adapter.ts: the writes of a
 * token request go out as it settles), so the window was the whole request: whoever copied an
 * assertion in flight (a logging proxy, a trace) and sent it beside the client's own got a token
 * of its own with it. Single-use artifacts are consumed atomically (DESIGN.md): unique is one
 * set-if-absent in the store here, under a digest of iss and jti, until the engine's exp. (The
 * engine's digest joins them with nothing between: client `a`'s jti `bc` was client `ab`'s `c`.)
 *
 * patches/dpop-proofs-once.ts wraps this for a DPoP proof's jti (its mark is by endpoint and key);
 * every other caller (client assertions; attested client authentication, not enabled) comes here.
 * Relies on: ReplayDetection.unique(iss, jti, exp) being the engine's only replay check.
 */
import { hash } from 'node:crypto';
import type { Provider } from 'oidc-provider';
import type { Kv } from '../../store/kv.js';
import { jwtOnceKey } from '../../store/keys.js';

type Unique = (iss: string, jti: string, exp: number) => Promise<boolean>;

export function jwtsOnce(provider: Provider, kv: Kv): void {
  const detection = (provider as unknown as { ReplayDetection: { unique: Unique } }).ReplayDetection;
  detection.unique = (iss, jti, exp) => {
    const ttl = Math.max(1, Math.ceil(exp - Date.now() / 1000));
    return kv.set(jwtOnceKey(hash('sha256', `${iss}\n${jti}`, 'base64url')), '1', { ttl, onlyIfAbsent: true });
  };
}
