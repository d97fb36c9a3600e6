/**
 * A code request without `code_challenge` from a client that must use PKCE (RFC 7636; RFC 9700
 * §2.1.1) is `invalid_request`, as the engine answers it, but with a description that says what to
 * send. The engine's own, "Authorization Server policy requires PKCE to be used for this request",
 * names neither the parameters nor the method: developers whose library sends no PKCE by default
 * (passport-openidconnect, simple-oauth2, a next-auth v4 provider of their own) met it at their
 * redirect URI and were left to guess.
 *
 * The engine asks `pkce.required(ctx, client)` in one place only (checkPKCE in
 * actions/authorization/sender_constraints.js, at /auth and /request), and only for a code request
 * that came without `code_challenge`; it throws its InvalidRequest when the answer is true. So the
 * function given as `pkce.required` throws ours first, for the same requests, with the same error
 * code. A sign-in picked up again after its client was made public is held to it too
 * (current-registration.ts, at the resume). Pinned by test/unit/provider-patches.test.ts (where the
 * engine calls it) and test/conformance/basic-op.test.ts (the answer).
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';

export type PkceSetting = 'all' | 'public';
type Client = NonNullable<KoaContextWithOIDC['oidc']['client']>;

/** What the description says to send; within RFC 6749 §4.1.2.1's characters. */
function pkceRequiredDescription(setting: PkceSetting): string {
  const whom = setting === 'all' ? 'every client' : 'public clients';
  return `PKCE is required of ${whom}: send code_challenge (the S256 hash of a code_verifier) with code_challenge_method=S256, and the code_verifier when redeeming the code (RFC 7636)`;
}

/** oidc-provider's `pkce.required`: false where PKCE may be left out, otherwise our invalid_request. */
export function pkceRequired(setting: PkceSetting): (ctx: KoaContextWithOIDC, client: Client) => boolean {
  const description = pkceRequiredDescription(setting);
  return (_ctx, client) => {
    if (setting === 'public' && client.clientAuthMethod !== 'none') return false;
    throw new errors.InvalidRequest(description);
  };
}
