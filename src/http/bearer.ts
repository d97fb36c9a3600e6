/**
 * The access token of a request's Authorization header, by RFC 6750 §2.1's grammar
 * (`Bearer` 1*SP b64token) or RFC 9449 §7.1's (`DPoP` token68 after one or more spaces, RFC 9110
 * §11.4); schemes are case-insensitive.
 * Undefined when there is none or the header does not follow the grammar: the caller answers with
 * its challenge.
 */
import type { Context } from 'koa';

const PRESENTED = /^(Bearer|DPoP) +([\w.~+/-]+=*)$/i;

export interface PresentedToken {
  readonly token: string;
  readonly scheme: 'Bearer' | 'DPoP';
}

export function presentedToken(ctx: Pick<Context, 'get'>): PresentedToken | undefined {
  const match = PRESENTED.exec(ctx.get('authorization'));
  if (!match) return undefined;
  return { token: match[2]!, scheme: match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer' };
}

/**
 * Why a request to one of our protected resources (the admin API, the revocation feed) is malformed
 * (RFC 6750 §3.1 invalid_request, 400), or undefined when it is not: an Authorization header of the
 * Bearer or DPoP scheme that does not follow its grammar (no token, a token with spaces in it), or
 * an access token in the query string, which they do not take (RFC 6750 §2.3, RFC 9700 §4.3.2), with
 * a header or without. Userinfo and the registration endpoints answer the same (the engine,
 * patches/registration-bearer-challenges.ts). No header, or one of another scheme, is no attempt at
 * all: the caller answers 401 with its bare challenge (RFC 6750 §3.1).
 */
export function malformedTokenRequest(ctx: Pick<Context, 'get' | 'query'>): string | undefined {
  if (ctx.query.access_token !== undefined) return 'an access token is not taken from the query string; send it in the Authorization header';
  const header = ctx.get('authorization');
  const scheme = /^(Bearer|DPoP)(?: |$)/i.exec(header)?.[1];
  if (scheme && !PRESENTED.test(header)) return `the Authorization header does not follow the ${scheme} scheme's grammar: ${scheme} <token>`;
  return undefined;
}

/** A token presented with the Bearer scheme only (where DPoP-bound tokens are never accepted). */
export function bearerToken(ctx: Pick<Context, 'get'>): string | undefined {
  const presented = presentedToken(ctx);
  return presented?.scheme === 'Bearer' ? presented.token : undefined;
}
