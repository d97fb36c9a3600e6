/**
 * POST at the authorization endpoint (OpenID Connect Core §3.1.2.1) and at the end-session
 * endpoint (RP-Initiated Logout §2): both specifications say the OP MUST accept GET and POST.
 *
 * oidc-provider 9 serves POST there only with `enableHttpPostMethods`, which in turn demands
 * `SameSite=None` session cookies: a cross-site form POST does not carry a `SameSite=Lax` cookie,
 * so the provider would not see the person's session. We keep `Lax` (it is a CSRF defence) and
 * answer such a POST with a 303 to the same endpoint with the same parameters as a query: the
 * browser follows it as a top-level GET navigation, which does carry `Lax` cookies, and the GET
 * handler does the rest. 303 (not 307) is what RFC 9700 §4.12 asks for after a POST.
 */
import type { Context, Middleware } from 'koa';
import { respondWithError } from '../http/errors.js';
import { scoped } from '../http/layers.js';
import { refusedCoding } from './patches/oversized-bodies.js';

/** Form bodies larger than this are refused; the parameters of an authorization request are small. */
export const POST_BODY_LIMIT = 64 * 1024;
/**
 * The longest URL we send the browser on to. Servers and proxies refuse longer request lines and
 * headers (Node's own limit for all headers is 16 KiB), and so do HTTP clients for a Location.
 */
export const LOCATION_LIMIT = 8 * 1024;

async function readForm(ctx: Context): Promise<URLSearchParams | undefined> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > POST_BODY_LIMIT) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > POST_BODY_LIMIT) return undefined;
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function postAsGet(paths: readonly string[]): Middleware {
  return scoped({ paths }, function postMethods(ctx, next) {
    if (ctx.method !== 'POST' || !paths.includes(ctx.path)) return next();
    return redirectPost(ctx);
  });
}

/** A POST at one of those endpoints: 303 to the same endpoint with its form as the query. */
async function redirectPost(ctx: Context): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  if (refusedCoding(ctx)) return;
  if (!ctx.is('application/x-www-form-urlencoded')) {
    respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'only application/x-www-form-urlencoded bodies are supported' });
    return;
  }
  const form = await readForm(ctx);
  if (!form) {
    respondWithError(ctx, 413, { error: 'invalid_request', error_description: 'the request body is too large' });
    return;
  }
  const location = `${ctx.path}?${form.toString()}`;
  if (location.length > LOCATION_LIMIT) {
    respondWithError(ctx, 413, { error: 'invalid_request', error_description: 'the request is too large; send fewer or shorter parameters' });
    return;
  }
  ctx.status = 303;
  ctx.redirect(location);
}
