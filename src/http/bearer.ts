/**
 * The bearer token of a request's Authorization header, by RFC 6750 §2.1's grammar
 * (`Bearer` SP b64token; the scheme is case-insensitive). Undefined when there is none or the
 * header does not follow the grammar: the caller answers with its challenge.
 */
import type { Context } from 'koa';

const BEARER = /^Bearer ([\w.~+/-]+=*)$/i;

export function bearerToken(ctx: Pick<Context, 'get'>): string | undefined {
  return BEARER.exec(ctx.get('authorization'))?.[1];
}
