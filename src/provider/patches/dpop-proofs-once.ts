/**
 * A DPoP proof is taken once at each endpoint (RFC 9449 §4.3 check 12, §11.1), and a proof taken
 * before is refused as the bad proof it is, `invalid_dpop_proof` (§5; at userinfo 401 with the DPoP
 * challenge, §7.1), before the request spends anything.
 *
 * oidc-provider remembers a proof's jti with ReplayDetection.unique(clientId, jti)
 * (helpers/validate_dpop.js checkDpopReplay), and:
 * - at the token endpoint, for a code or a device code, only after it consumed it
 *   (helpers/grant_common.js applyDpopBinding): a replayed proof spent the code, so whoever held a
 *   proof the client had sent and an intercepted code made the client's own redemption a replay,
 *   which revokes its grant (the class of patches/dpop-bound-codes.ts);
 * - answered a replay with the caller's error: invalid_grant at the token endpoint, invalid_token at
 *   userinfo, invalid_request at PAR;
 * - per client: a proof one client had used was taken again from another;
 * - found, then saved: two requests at once with one proof both passed.
 *
 * What it changes: ReplayDetection.unique, called for the proof the engine verified for the request
 * in hand (its jti), marks the proof in the store with one set-if-absent (by endpoint, key
 * thumbprint and jti, whatever the client) for as long as the engine would take it again
 * (takenUntil), and throws InvalidDpopProof when it was there. At the token endpoint the mark is
 * taken when the code or device code is found, before it is spent; the engine's own call later in the same
 * request then passes. Its other callers (client assertions' jtis) go on to the unique it found
 * (patches/jwts-once.ts, installed before it): a call is the proof's only once the engine verified the proof (a client is authenticated
 * before), so an assertion replayed beside a proof of the same jti is still refused (review).
 * Relies on: the engine verifying the proof (validateDpop, getDpopJwt) before it finds the code, and
 * calling unique with the proof's jti. Pinned by test/conformance/jwt-attacks.test.ts.
 */
import { createHash } from 'node:crypto';
import { errors, Provider } from 'oidc-provider';
import { CHALLENGE_OK_WINDOW } from 'oidc-provider/lib/helpers/challenge.js';
import { getDpopJwt } from 'oidc-provider/lib/helpers/validate_dpop.js';
import type { Kv } from '../../store/kv.js';
import { dpopProofKey } from '../../store/keys.js';
import { proofThumbprint } from './dpop-bound-codes.js';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';

type Unique = (iss: string, jti: string, exp: number) => Promise<boolean>;

type Verified = { payload: { jti?: unknown; iat?: unknown; nonce?: unknown } } | undefined;

/**
 * Until when (epoch seconds) the engine would take this proof again (validate_dpop.js). Without a
 * nonce, while the whole second of now is within its window of the proof's iat: up to a second past
 * iat plus the window (remembered only to iat plus the window, or to now plus it, a proof was taken
 * again in that last second). With a nonce, whatever the iat, while the nonce is good: a nonce is
 * good four or five of the engine's minutes from its own, at most the window from now (remembered to
 * iat plus the window, a proof dated years ahead left its mark in the store for years).
 */
function takenUntil({ iat, nonce }: { iat?: unknown; nonce?: unknown }): number {
  if (typeof nonce === 'string' && nonce) return Date.now() / 1000 + CHALLENGE_OK_WINDOW;
  return (typeof iat === 'number' ? iat : 0) + CHALLENGE_OK_WINDOW + 1;
}

/** The request's proofs marked already, by this patch before the engine asks (the token endpoint's find). */
const marked = new WeakMap<object, string>();

export function dpopProofsOnce(provider: Provider, kv: Kv): void {
  const { ReplayDetection } = provider as unknown as { ReplayDetection: { unique: Unique } };
  const engineUnique = ReplayDetection.unique.bind(ReplayDetection);

  /** The proof the engine verified for the request in hand, when its jti is `jti` (any jti without `jti`): its store key, and until when it could be taken. */
  const proofOf = (jti?: string): { ctx: object; key: string; until: number } | undefined => {
    const ctx = Provider.ctx;
    const verified = ctx && (getDpopJwt(provider, ctx) as Verified);
    const proof = ctx?.get('DPoP');
    const proofJti = verified?.payload.jti;
    if (!ctx || !verified || !proof || typeof proofJti !== 'string' || (jti !== undefined && proofJti !== jti)) return undefined;
    const route = ctx.oidc?.route ?? ctx.path;
    const digest = createHash('sha256').update(`${route}\n${proofThumbprint(proof) ?? ''}\n${proofJti}`).digest('base64url');
    return { ctx, key: dpopProofKey(digest), until: takenUntil(verified.payload) };
  };

  const markOnce = async ({ ctx, key, until }: { ctx: object; key: string; until: number }): Promise<true> => {
    if (marked.get(ctx) === key) return true;
    const ttl = Math.max(1, Math.ceil(until - Date.now() / 1000));
    if (!(await kv.set(key, '1', { ttl, onlyIfAbsent: true }))) throw new errors.InvalidDpopProof('DPoP proof JWT Replay detected');
    marked.set(ctx, key);
    return true;
  };

  ReplayDetection.unique = (iss, jti, exp) => {
    const proof = proofOf(jti);
    return proof ? markOnce(proof) : engineUnique(iss, jti, exp);
  };

  checkAtTokenEndpoint([provider.AuthorizationCode, provider.DeviceCode], async () => {
    const proof = proofOf();
    if (proof) await markOnce(proof);
  });
}
