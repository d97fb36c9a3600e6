/**
 * The discovery documents, answered from memory ahead of oidc-provider, with an ETag.
 *
 * oidc-provider builds its discovery document anew for every request from its configuration,
 * which does not change while an instance serves (and every URL in it is the issuer's, see
 * serveAsIssuer in app.ts). So the first request for a discovery path on each provider instance
 * goes through oidc-provider, and its answer is kept, serialised once, for that instance: a key
 * ring change brings a new instance and so a fresh document (it holds no keys, only jwks_uri).
 * A verifier revalidating with If-None-Match gets 304 without a body; `Cache-Control: no-cache` lets
 * it keep the document for that (a change of configuration shows at the next request).
 */
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import { scoped } from '../http/layers.js';
import { fixedHeaders, type FixedHeaders } from '../http/preset-headers.js';
import { matches } from '../keyring/jwks-endpoint.js';
import type { ProviderHost } from './host.js';

/** OpenID Connect Discovery §4 and RFC 8414 §3: the paths oidc-provider serves them at. */
const PATHS = new Set(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);

interface Document {
  readonly body: string;
  readonly etag: string;
  /** A 200's headers (fixedHeaders), as the answer set them one by one: its length included. */
  readonly ok: FixedHeaders;
  /** A 304's: the same but the type and length. */
  readonly notModified: FixedHeaders;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** CORS as oidc-provider answers discovery: any origin may read it (the request's Origin echoed, else `*`). */
const ANY_ORIGIN = '*';

/**
 * A cached document's answers, made once per document. The headers, their order and values are
 * those the answer set one by one at each request before (`ctx.set` of Cross-Origin-Resource-Policy
 * and Cache-Control, over the ones every answer starts with; `ctx.vary('Origin')`,
 * Access-Control-Allow-Origin, ETag, `ctx.type`, and the length Koa measured on each body):
 * nothing before this layer sets Vary on these paths (the app's preset headers carry none).
 */
function documentOf(body: string, etag: string): Document {
  const shared: [string, string][] = [
    ['Cross-Origin-Resource-Policy', 'cross-origin'], // a public document: any page may load it (app.ts)
    // Stored and revalidated with the ETag (the default for GET, no-store, left it nothing to revalidate).
    ['Cache-Control', 'no-cache'],
    ['Vary', 'Origin'],
    ['Access-Control-Allow-Origin', ANY_ORIGIN],
    ['ETag', etag],
  ];
  return {
    body,
    etag,
    notModified: fixedHeaders(shared),
    ok: fixedHeaders([...shared, ['Content-Type', JSON_TYPE], ['Content-Length', String(Buffer.byteLength(body))]]),
  };
}

export function discoveryDocuments(providers: ProviderHost): Middleware {
  const documents = new WeakMap<Provider, Map<string, Document>>();
  return scoped({ paths: [...PATHS] }, async function discovery(ctx, next) {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || !PATHS.has(ctx.path)) return next();
    const provider = providers.current;
    const known = documents.get(provider)?.get(ctx.path);
    if (!known) {
      // The engine's answer, kept: the caching and cross-origin headers as documentOf's.
      ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');
      ctx.set('Cache-Control', 'no-cache');
      await next();
      if (ctx.status !== 200 || !ctx.body || typeof ctx.body !== 'object') return;
      const body = JSON.stringify(ctx.body);
      const document = documentOf(body, `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`);
      if (!documents.has(provider)) documents.set(provider, new Map());
      documents.get(provider)!.set(ctx.path, document);
      ctx.set('ETag', document.etag);
      ctx.type = JSON_TYPE;
      ctx.body = document.body;
      return;
    }
    const res = ctx.res;
    const origin = ctx.req.headers.origin;
    const conditional = ctx.req.headers['if-none-match'];
    if (conditional && matches(conditional, known.etag)) {
      known.notModified(res);
      if (origin) res.setHeader('Access-Control-Allow-Origin', origin);
      ctx.status = 304;
      return;
    }
    known.ok(res);
    if (origin) res.setHeader('Access-Control-Allow-Origin', origin);
    // Written here, whole: Koa's body setter and its answer measured the fixed body's length at
    // every request (the type and length are among the document's headers), and so did Node's
    // end() for a head not written yet. HEAD: Node sends the head only.
    ctx.status = 200;
    ctx.respond = false;
    res.writeHead(200).end(known.body);
  });
}
