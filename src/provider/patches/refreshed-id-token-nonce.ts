/**
 * OpenID Connect Core §12.2: an ID token issued at a refresh "SHOULD NOT have a nonce Claim, even
 * when the ID Token issued at the time of the original authentication contained nonce" (if it has
 * one, it is the original's). oidc-provider copies the sign-in's nonce into every refreshed ID
 * token (lib/helpers/grant_common.js issueIdToken: `token.set('nonce', source.nonce)`). The nonce
 * binds one authentication response to the request that asked for it; a refresh is neither, and
 * repeating it hands an old ID token's replay protection to a new one.
 *
 * So at the token endpoint's refresh_token grant, an ID token's nonce is not set. Client libraries
 * check a refreshed ID token's sub, auth_time and azp against the first, never its nonce.
 */
import type { Provider } from 'oidc-provider';

interface IdTokenModel {
  prototype: {
    set(key: string, value: unknown): void;
    ctx?: { oidc?: { route?: string; params?: { grant_type?: unknown } } };
  };
}

export function noNonceInRefreshedIdTokens(provider: Provider): void {
  const IdToken = provider.IdToken as unknown as IdTokenModel;
  const set = IdToken.prototype.set;
  if (typeof set !== 'function') throw new Error('oidc-provider IdToken has no set(): review src/provider/patches/refreshed-id-token-nonce.ts');
  IdToken.prototype.set = function setClaim(key, value) {
    const oidc = this.ctx?.oidc;
    if (key === 'nonce' && oidc?.route === 'token' && oidc.params?.grant_type === 'refresh_token') return;
    set.call(this, key, value);
  };
}
