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

/** A token presented with the Bearer scheme only (where DPoP-bound tokens are never accepted). */
export function bearerToken(ctx: Pick<Context, 'get'>): string | undefined {
  const presented = presentedToken(ctx);
  return presented?.scheme === 'Bearer' ? presented.token : undefined;
}
