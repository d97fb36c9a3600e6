/**
 * An access token sent in an Authorization header must follow its scheme's grammar: RFC 6750 §2.1's
 * `Bearer 1*SP b64token`, RFC 9449 §7.1's `DPoP` token68 (the same characters: letters, digits,
 * `-._~+/`, then `=` padding only). A header of either scheme whose credentials break it (`"`, `,`,
 * `;`, `@`, `%`, `\`, an `=` before the end) is a malformed request, RFC 6750 §3.1's `invalid_request`
 * (400, the challenge naming the error), not a token that is not ours.
 *
 * oidc-provider's `OIDCContext#getAccessToken` checks only that the header splits into a scheme and
 * one value at a space, so such a value was looked up as a token: `401 invalid_token` at userinfo,
 * registration (RFC 7591 §3) and RFC 7592's client configuration endpoint, where Latchkey's own
 * protected resources (the admin API, the revocation feed: http/bearer.ts) answer `400
 * invalid_request`. What changes: once the engine took a token from the header, the header is checked
 * against the grammar http/bearer.ts applies (after patches/authorization-header-spaces.ts folded the
 * spaces), and the engine's own InvalidRequest is thrown when it fails, which userinfo's step and
 * patches/registration-bearer-challenges.ts (installed after this, so around it) answer with the
 * challenge. A token in a form body (RFC 6750 §2.2) has no such grammar and is left alone.
 * Pinned by test/conformance/spec-letter-sixteenth.test.ts.
 */
import { errors, type Provider } from 'oidc-provider';
import { presentedToken } from '../../http/bearer.js';

interface ContextLike {
  readonly ctx: { readonly headers: Record<string, string | string[] | undefined> };
}

type GetAccessToken = (this: ContextLike, ...args: unknown[]) => string;

export function bearerTokenGrammar(provider: Provider): void {
  const prototype = provider.OIDCContext.prototype as unknown as { getAccessToken?: GetAccessToken };
  const getAccessToken = prototype.getAccessToken;
  if (typeof getAccessToken !== 'function') throw new Error('oidc-provider has no OIDCContext#getAccessToken: review src/provider/patches/bearer-token-grammar.ts');
  prototype.getAccessToken = function takeWellFormedToken(this: ContextLike, ...args: unknown[]): string {
    const token = getAccessToken.apply(this, args);
    const header = this.ctx.headers.authorization;
    // The engine takes one mechanism only, and ignores an empty header: a header here is where the token came from.
    if (typeof header === 'string' && header !== '' && !presentedToken({ get: () => header })) {
      const scheme = /^(Bearer|DPoP)\b/i.exec(header)?.[1] ?? 'Bearer';
      throw new errors.InvalidRequest(`invalid authorization header value format: the ${scheme} scheme's token is made of letters, digits and -._~+/ with = padding only at its end`);
    }
    return token;
  };
}
