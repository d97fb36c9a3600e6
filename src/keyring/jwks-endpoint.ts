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
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Middleware } from 'koa';
import type { PublishedJwks } from './service.js';

/** Sets these headers on a response as `setHeader` would, in order (http/preset-headers.ts fixedHeaders). */
export type HeaderSetter = (pairs: readonly (readonly [string, string])[]) => (res: ServerResponse) => void;

/** RFC 9110 §13.1.2: If-None-Match compares weakly; `*` matches any current representation. */
function matches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const strip = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((candidate) => strip(candidate) === strip(etag));
}

/** The status of a kept answer to a GET or HEAD whose If-None-Match is `conditional`: 304 when it matches `etag`, else 200. */
export function conditionalStatus(conditional: string | undefined, etag: string): 200 | 304 {
  return conditional && matches(conditional, etag) ? 304 : 200;
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

/** An answer written by the app's request listener ahead of Koa (http/ahead.ts: keyring/ sits below http/). */
export interface JwksAhead {
  readonly paths: readonly string[];
  readonly route: string;
  find(path: string): { write(req: IncomingMessage, res: ServerResponse): number } | undefined;
}


/**
 * Writes the answer of `status`, head and body, whole: Koa's body setter and its answer measured
 * the set's length at every request (it is among the set's headers), and so did Node's end() for
 * a head not written yet. HEAD: Node sends the head only.
 */
function write({ published, notModified, ok }: Answers, status: 200 | 304, res: ServerResponse): void {
  if (status === 304) {
    notModified(res);
    res.writeHead(304).end();
    return;
  }
  ok(res);
  res.writeHead(200).end(published.body);
}

/**
 * `headers` (http/preset-headers.ts fixedHeaders, from main.ts: keyring/ sits below http/) sets each
 * answer's headers at once, made for each published set; the headers, their order and their values
 * are those four `ctx.set` calls, `ctx.type` and Koa's length of the body made at every request before.
 * `middleware` answers in the app (a path in another spelling, a method other than GET and HEAD);
 * `ahead`, the same answers written by the app's request listener before Koa, for a path in its own
 * spelling (app.ts). Both read the published set at each request, so a key ring change shows at once.
 */
export function jwksEndpoint(paths: readonly string[], published: () => PublishedJwks, headers: HeaderSetter): { middleware: Middleware; ahead: JwksAhead } {
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
  const middleware: Middleware = async function jwks(ctx, next) {
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
    const current = answersOf(published());
    // Koa's status first (its setter does nothing once the head is sent; the request line and
    // metrics read it), then the answer.
    const status = conditionalStatus(ctx.req.headers['if-none-match'], current.published.etag);
    ctx.status = status;
    ctx.respond = false;
    write(current, status, ctx.res);
  };
  const answer = {
    write(req: IncomingMessage, res: ServerResponse): number {
      const current = answersOf(published());
      const status = conditionalStatus(req.headers['if-none-match'], current.published.etag);
      write(current, status, res);
      return status;
    },
  };
  return { middleware, ahead: { paths, route: 'jwks', find: () => answer } };
}
