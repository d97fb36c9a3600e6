/**
 * At end-session, an id_token_hint signed by a key this server no longer holds names its client,
 * as `client_id` would, instead of refusing the sign-out (thirteenth fresh-eyes passes).
 *
 * Apps keep the ID token of a sign-in for as long as their own session (express-openid-connect:
 * seven days by default) and send it at sign-out, as RP-Initiated Logout 1.0 §2 recommends; the OP
 * "SHOULD accept ID Tokens ... even when the exp time has passed" for a current or recent session.
 * A retired key leaves the ring once every token it signed has expired (keyring/lifecycle.ts), so
 * after each rotation those sign-outs were refused "could not validate id_token_hint": the person
 * saw "Not signed out" and the app was not returned to.
 *
 * A hint no key verifies proves nothing, so it is taken for nothing a request cannot say without
 * one: its `aud` names the client (the engine already required it to equal any `client_id` sent),
 * whose registered post_logout_redirect_uris alone it may return to, and the person is asked, as
 * for every sign-out. At end-session the engine reads nothing else of a hint. What needs no key is
 * still checked: our issuer, that client as its only audience, a subject, RS256 and a key id; the
 * hint's type and auth_time (id-token-hints.ts) and a revoked key (revoked-key-hints.ts) are checked
 * around this. A hint naming a key we hold is verified as before, and at the authorization
 * endpoint, where a hint names who is to sign in, every hint is.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Provider } from 'oidc-provider';

/** `kids`: the keys this provider verifies with (its key ring's, as it was built). */
export function hintsOfRemovedKeysNameTheirClient(provider: Provider, kids: ReadonlySet<string>): void {
  const IdToken = provider.IdToken as unknown as { validate(jwt: string, client: { clientId: string }): Promise<unknown> };
  const validate = IdToken.validate.bind(IdToken);
  IdToken.validate = async (jwt: string, client: { clientId: string }) => {
    if (Provider.ctx?.oidc?.route !== 'end_session') return validate(jwt, client);
    const header = decodeProtectedHeader(jwt);
    if (header.alg !== 'RS256' || typeof header.kid !== 'string' || kids.has(header.kid)) return validate(jwt, client);
    const payload = decodeJwt(jwt);
    if (payload.iss !== provider.issuer || payload.aud !== client.clientId || typeof payload.sub !== 'string') return validate(jwt, client);
    return { header, payload };
  };
}
