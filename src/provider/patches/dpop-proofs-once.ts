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
 * What it changes: ReplayDetection.unique, called for the proof of the request in hand (its jti),
 * marks the proof in the store with one set-if-absent (by endpoint, key thumbprint and jti, whatever
 * the client) and throws InvalidDpopProof when it was there. At the token endpoint the mark is taken
 * when the code or device code is found, before it is spent; the engine's own call later in the same
 * request then passes. Client assertions' jtis, its other caller, are left as the engine keeps them.
 * Relies on: the engine verifying the proof (validateDpop) before it finds the code, and calling
 * unique with the proof's jti. Pinned by test/conformance/jwt-attacks.test.ts.
 */
import { createHash } from 'node:crypto';
import { errors, Provider } from 'oidc-provider';
import type { Kv } from '../../store/kv.js';
import { dpopProofKey } from '../../store/keys.js';
import { proofThumbprint } from './dpop-bound-codes.js';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';

type Unique = (iss: string, jti: string, exp: number) => Promise<boolean>;

/** The jti of a proof's payload (the engine verified the proof before it asks), or undefined. */
function proofJti(proof: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(proof.split('.')[1] ?? '', 'base64url').toString()) as { jti?: unknown };
    return typeof payload.jti === 'string' ? payload.jti : undefined;
  } catch {
    return undefined;
  }
}

/** The request's proofs marked already, by this patch before the engine asks (the token endpoint's find). */
const marked = new WeakMap<object, string>();

export function dpopProofsOnce(provider: Provider, kv: Kv): void {
  const { ReplayDetection } = provider as unknown as { ReplayDetection: { unique: Unique } };
  const engineUnique = ReplayDetection.unique.bind(ReplayDetection);

  /** The proof of the request in hand when it has the jti `jti`: its store key. */
  const proofKeyOf = (jti: string): { ctx: object; key: string } | undefined => {
    const ctx = Provider.ctx;
    const proof = ctx?.get('DPoP');
    if (!ctx || !proof || proofJti(proof) !== jti) return undefined;
    const route = ctx.oidc?.route ?? ctx.path;
    const digest = createHash('sha256').update(`${route}\n${proofThumbprint(proof) ?? ''}\n${jti}`).digest('base64url');
    return { ctx, key: dpopProofKey(digest) };
  };

  const markOnce = async (ctx: object, key: string, exp: number): Promise<true> => {
    if (marked.get(ctx) === key) return true;
    const ttl = Math.max(1, Math.ceil(exp - Date.now() / 1000));
    if (!(await kv.set(key, '1', { ttl, onlyIfAbsent: true }))) throw new errors.InvalidDpopProof('DPoP proof JWT Replay detected');
    marked.set(ctx, key);
    return true;
  };

  ReplayDetection.unique = (iss, jti, exp) => {
    const proof = proofKeyOf(jti);
    return proof ? markOnce(proof.ctx, proof.key, exp) : engineUnique(iss, jti, exp);
  };

  // The engine's window for a proof's iat (helpers/challenge.js CHALLENGE_OK_WINDOW), as it marks it.
  const PROOF_WINDOW = 60;
  checkAtTokenEndpoint([provider.AuthorizationCode, provider.DeviceCode], async () => {
    const jti = Provider.ctx?.get('DPoP') ? proofJti(Provider.ctx.get('DPoP')) : undefined;
    const proof = jti === undefined ? undefined : proofKeyOf(jti);
    if (proof) await markOnce(proof.ctx, proof.key, Date.now() / 1000 + PROOF_WINDOW);
  });
}
