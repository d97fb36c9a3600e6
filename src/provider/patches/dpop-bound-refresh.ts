/**
 * A public client that presents a valid DPoP proof at a refresh gets a refresh token bound to that
 * proof's key (RFC 9449 §5: a refresh token issued to a public client that presents a valid DPoP
 * proof at the token endpoint MUST be bound to its public key), also when the token it refreshes
 * was issued without a proof.
 *
 * oidc-provider binds a public client's refresh token to the proof's key when it first issues one
 * (helpers/set_rt_bindings.js, at the code and device code grants), but its refresh_token grant
 * makes the rotated token with the old token's `jkt`: a client that redeemed its code without a
 * proof and took up DPoP later (a browser app turning it on, openid-client given a DPoP handle
 * after the sign-in) got DPoP-bound access tokens with a refresh token bound to nothing, which
 * whoever took it from the client's storage used without the key (found by the red-team pass of
 * 2026-12-01).
 *
 * What it changes: rotateRefreshToken (refresh-rotation.ts), which the engine asks after it
 * verified the proof and checked any binding the token has, and before it makes the rotated token,
 * sets the proof's thumbprint as the `jkt` of the token being rotated (in memory only: consuming it
 * writes nothing else), so the rotated token, the engine's copy of it, is bound; a sibling given
 * within the reuse grace too. Confidential clients' refresh tokens stay unbound (RFC 9449 §5: they
 * are sender-constrained by client authentication). Pinned by test/e2e/dpop-par.test.ts ("a public
 * client that takes up DPoP at a refresh ...") and test/unit/provider-patches.test.ts.
 *
 * A client that *requires* DPoP (`dpop_bound_access_tokens`, set by an operator against token theft,
 * or by the client) is another matter: every refresh token it got since is bound (the engine wants a
 * proof at each of its token requests, and binds a public client's refresh token to it), so an
 * unbound one predates the requirement, and binding it to whatever key the first proof came with
 * handed it to whoever held a copy: a thief refreshing first got tokens bound to their own key (found
 * by the endings pass of 2026-12-06). unboundRefreshRefused makes such a token `invalid_grant` (the
 * app signs the person in again, as after `require_mfa`: step-up.ts), unspent. (Introspection has
 * nothing to add: a public client cannot introspect, and an API is shown no refresh token.)
 *
 * A chain bound at a refresh began unbound, so its binding proves nothing about who took it up: a
 * thief holding a single-page app's refresh token stolen from the browser can present a proof of a
 * key of their own. The engine's rule that keeps such an app's rotated token within its
 * predecessor's remaining time (RFC 9700 §4.14.2, provider.ts `ttl.RefreshToken`) spares bound
 * tokens, so each rotation of the thief's gave the whole `ttl.refreshToken` again, until the grant
 * ended (seventeenth passes, test/e2e/refresh-tokens-seventeenth.test.ts). The token bound here is
 * marked `boundLate`, which every token rotated from it carries (refresh-chain-marks.ts).
 */
import { errors, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import { proofThumbprint } from './dpop-bound-codes.js';
import { BOUND_LATE, mark } from './refresh-chain-marks.js';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';

type DpopClient = { clientId: string; clientAuthMethod?: string; dpopBoundAccessTokens?: boolean };

/** A public client's refresh token bound to no key, redeemed since the client requires DPoP: invalid_grant. */
export function unboundRefreshRefused(provider: Provider): void {
  checkAtTokenEndpoint<DpopClient>([provider.RefreshToken], (token, client) => {
    if (client.clientAuthMethod === 'none' && client.dpopBoundAccessTokens === true && typeof (token as { jkt?: unknown }).jkt !== 'string') {
      throw new errors.InvalidGrant('this refresh token was issued before its client required DPoP-bound tokens: sign in again');
    }
  });
}

/** In rotateRefreshToken: the refresh token being rotated, of a public client, takes the verified proof's key. */
export function bindRotatedRefreshTokenToProof(ctx: KoaContextWithOIDC): void {
  if (ctx.oidc.client?.clientAuthMethod !== 'none') return;
  const token = ctx.oidc.entities.RefreshToken as { jkt?: string } | undefined;
  // A bound token was refused by the engine unless the proof is by its key: nothing to change.
  if (!token || token.jkt) return;
  const proof = ctx.get('DPoP');
  const thumbprint = proof ? proofThumbprint(proof) : undefined;
  if (thumbprint) {
    token.jkt = thumbprint;
    mark(token, BOUND_LATE);
  }
}
