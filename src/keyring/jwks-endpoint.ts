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
import type { ServerResponse } from 'node:http';
import type { Middleware } from 'koa';
import type { PublishedJwks } from './service.js';

/** Sets these headers on a response as `setHeader` would, in order (http/preset-headers.ts fixedHeaders). */
export type HeaderSetter = (pairs: readonly (readonly [string, string])[]) => (res: ServerResponse) => void;

/** RFC 9110 §13.1.2: If-None-Match compares weakly; `*` matches any current representation. */
export function matches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const strip = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((candidate) => strip(candidate) === strip(etag));
}

/** Where issuer-only verifiers look for the keys (see the top of this file). */
export const WELL_KNOWN_JWKS_PATH = '/.well-known/jwks.json';

const JWK_SET_TYPE = 'application/jwk-set+json; charset=utf-8';

/** The headers of a JWKS answer, made once per published set. */
interface Answers {
  readonly published: PublishedJwks;
  /** A 304's: the validator, how long to keep it, and who may read it. */
  readonly notModified: (res: ServerResponse) => void;
  /** A 200's: the same, the type and the body's length. */
  readonly ok: (res: ServerResponse) => void;
}

/**
 * `headers` (http/preset-headers.ts fixedHeaders, from main.ts: keyring/ sits below http/) sets each
 * answer's headers at once, made for each published set; the headers, their order and their values
 * are those four `ctx.set` calls, `ctx.type` and Koa's length of the body made at every request before.
 */
export function jwksEndpoint(paths: readonly string[], published: () => PublishedJwks, headers: HeaderSetter): Middleware {
  let answers: Answers | undefined;
  const answersOf = (current: PublishedJwks): Answers => {
    if (answers?.published === current) return answers;
    const shared: [string, string][] = [
      ['Cache-Control', current.cacheControl],
      ['ETag', current.etag],
      // Read by browser apps and verifiers anywhere, like oidc-provider's own JWKS route.
      ['Access-Control-Allow-Origin', '*'],
      ['Cross-Origin-Resource-Policy', 'cross-origin'], // public keys: any page may load them (app.ts)
    ];
    return (answers = { published: current, notModified: headers(shared), ok: headers([...shared, ['Content-Type', JWK_SET_TYPE], ['Content-Length', String(Buffer.byteLength(current.body))]]) });
  };
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
    const current = published();
    const { notModified, ok } = answersOf(current);
    const conditional = ctx.req.headers['if-none-match'];
    if (conditional && matches(conditional, current.etag)) {
      notModified(ctx.res);
      ctx.status = 304;
      return;
    }
    ok(ctx.res);
    // Written here, whole: Koa's body setter and its answer measured the set's length at every
    // request (it is among the set's headers), and so did Node's end() for a head not written yet.
    // HEAD: Node sends the head only.
    ctx.status = 200;
    ctx.respond = false;
    ctx.res.writeHead(200).end(current.body);
  };
}
