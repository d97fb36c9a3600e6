/**
 * An id_token_hint must be an ID token (RFC 8725 §3.11: explicit typing keeps one kind of JWT from
 * being taken for another).
 *
 * oidc-provider validates a hint's signature, issuer, audience and subject, but not its type, so
 * any JWT we signed for a client passed as that client's ID token: a logout token (typ logout+jwt,
 * aud the client, with sub), which the relying party receives at its back-channel endpoint and so
 * do its logs and proxies, or a JWT access token (typ at+jwt) whose aud names a client. Our ID
 * tokens carry no typ (OpenID Connect defines none; "JWT" would be as good), and every other JWT
 * we sign but one carries its own, so a hint typed as anything else is refused before it is validated.
 * The one: a signed userinfo response (a client registered with userinfo_signed_response_alg, OIDC
 * Core §5.3.2) is untyped too, and signed for the client with the person's sub, so it passed as
 * that client's ID token. Every ID token we sign says when the person signed in (auth_time, with
 * acr and amr: provider.ts), which userinfo never does (the account's claims hold no auth_time), so
 * a hint without a numeric auth_time is refused too (found by the eighth-round granting audit).
 * Both places that read hints (authorization and end-session) go through IdToken.validate, and
 * turn what it throws into invalid_request "could not validate id_token_hint".
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Provider } from 'oidc-provider';

const ID_TOKEN_TYP = /^(application\/)?jwt$/i;

export function onlyIdTokensAsHints(provider: Provider): void {
  const IdToken = provider.IdToken as unknown as { validate(jwt: string, client: unknown): Promise<unknown> };
  const validate = IdToken.validate.bind(IdToken);
  IdToken.validate = async (jwt: string, client: unknown) => {
    const { typ } = decodeProtectedHeader(jwt);
    if (typ !== undefined && !ID_TOKEN_TYP.test(typ)) throw new TypeError(`not an ID token (typ ${typ})`);
    if (typeof decodeJwt(jwt).auth_time !== 'number') throw new TypeError('not an ID token (no auth_time: a signed userinfo response?)');
    return validate(jwt, client);
  };
}
