/**
 * The JWKS endpoint, answered from memory ahead of oidc-provider (whose copy is fixed when it is
 * constructed): the ring's public keys, with `Cache-Control: max-age` tied to the publish lead and
 * an ETag, so that a verifier revalidating with If-None-Match gets 304 without a body.
 *
 * The same set is also served at `/.well-known/jwks.json` (WELL_KNOWN_JWKS_PATH), where verifiers
 * that take only an issuer look without reading discovery: get-jwks (behind @fastify/jwt's
 * documented recipe) fetches `<iss>/.well-known/jwks.json` unless told to discover. Discovery's
 * `jwks_uri` stays the engine's path.
 */
import type { Middleware } from 'koa';
import type { PublishedJwks } from './service.js';

/** RFC 9110 §13.1.2: If-None-Match compares weakly; `*` matches any current representation. */
export function matches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const strip = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((candidate) => strip(candidate) === strip(etag));
}

/** Where issuer-only verifiers look for the keys (see the top of this file). */
export const WELL_KNOWN_JWKS_PATH = '/.well-known/jwks.json';

export function jwksEndpoint(paths: readonly string[], published: () => PublishedJwks): Middleware {
  return async function jwks(ctx, next) {
    if (!paths.includes(ctx.path)) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      if (ctx.method === 'OPTIONS') return next(); // a CORS preflight, or the usual 404
      // RFC 9110 §15.5.6: the keys are read with GET; 405 names it (as provider/patches/method-not-allowed.ts for the engine's routes).
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'invalid_request', error_description: `this endpoint does not take ${ctx.method}; it takes GET, HEAD` };
      return;
    }
    const { body, etag, maxAge } = published();
    ctx.set('Cache-Control', `public, max-age=${maxAge}`);
    ctx.set('ETag', etag);
    // Read by browser apps and verifiers anywhere, like oidc-provider's own JWKS route.
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Cross-Origin-Resource-Policy', 'cross-origin'); // public keys: any page may load them (app.ts)
    const conditional = ctx.get('If-None-Match');
    if (conditional && matches(conditional, etag)) {
      ctx.status = 304;
      return;
    }
    ctx.type = 'application/jwk-set+json; charset=utf-8';
    ctx.body = body;
  };
}
