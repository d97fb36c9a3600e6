/**
 * RFC 9449 §7.1 at our own protected resources (the admin API, the revocation feed): a DPoP-bound
 * access token is accepted only with the DPoP scheme and a valid proof by its key for this request,
 * and the DPoP scheme only for a bound token. A bound token presented as a Bearer token is a stolen
 * token being replayed without its key: refused, as oidc-provider refuses it at userinfo and
 * latchkey/resource-server at an API. The proof checks are the helper's own (resource-server/dpop.ts);
 * proof jtis are remembered in the store, so every instance refuses a replay. With `dpop.requireNonce`
 * every proof carries one of the engine's nonces (keyring/dpop-nonces.ts), as at the token endpoint:
 * these are the most privileged resources Latchkey has, and a proof made in advance must not reach them.
 */
import type { Context } from 'koa';
import { DPoPProblem, DPoPVerifier, type NonceSource, type ReplayStore } from '../resource-server/dpop.js';
import type { Kv } from '../store/kv.js';
import { dpopProofKey } from '../store/keys.js';
import { jsonError } from './errors.js';
import type { PresentedToken } from './bearer.js';

/** DPoP proof algorithms: asymmetric only (RFC 9449 §4.2), as discovery's dpop_signing_alg_values_supported. */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519'] as const;

/** Seconds a proof is good for after its iat (oidc-provider's window at the token endpoint). */
const PROOF_MAX_AGE = 60;

function storeReplays(kv: Kv): ReplayStore {
  return {
    unique: (key, expiresAt) =>
      kv.set(dpopProofKey(key), '1', { ttl: Math.max(1, expiresAt - Math.floor(Date.now() / 1000)), onlyIfAbsent: true }),
  };
}

export class SenderConstraint {
  readonly #proofs: DPoPVerifier;

  /** `nonces`: every proof must carry one of them (dpop.requireNonce); none: no nonce is asked for. */
  constructor(kv: Kv, clockTolerance: number, nonces?: NonceSource) {
    this.#proofs = new DPoPVerifier(DPOP_ALGORITHMS, clockTolerance, { proofMaxAge: PROOF_MAX_AGE, replay: storeReplays(kv), ...(nonces && { nonces }) });
  }

  /**
   * Whether `presented` may be used as the token it is (`jkt`: the thumbprint it is bound to, if
   * any). When not, answers the request with 401 and the DPoP challenge, and returns false.
   */
  async allows(ctx: Context, presented: PresentedToken, jkt: string | undefined): Promise<boolean> {
    let refusal: { code: string; description: string; nonce?: string } | undefined;
    if (jkt === undefined) {
      if (presented.scheme === 'DPoP') refusal = { code: 'invalid_token', description: 'the DPoP scheme is for DPoP-bound tokens; this one is a bearer token' };
    } else if (presented.scheme !== 'DPoP') {
      refusal = { code: 'invalid_token', description: 'a DPoP-bound token must be presented with the DPoP scheme and a proof' };
    } else {
      try {
        await this.#proofs.check({ proof: ctx.req.headers.dpop, method: ctx.method, url: ctx.href }, presented.token, jkt);
      } catch (error) {
        if (!(error instanceof DPoPProblem)) throw error;
        refusal = { code: error.code, description: error.message, nonce: error.nonce };
      }
    }
    if (!refusal) return true;
    // RFC 9449 §9: the nonce to retry with.
    if (refusal.nonce) ctx.set('DPoP-Nonce', refusal.nonce);
    ctx.set('WWW-Authenticate', `DPoP error="${refusal.code}", algs="${DPOP_ALGORITHMS.join(' ')}"`);
    jsonError(ctx, 401, refusal.code, refusal.description);
    return false;
  }
}
