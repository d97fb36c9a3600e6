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
import type { ServerResponse } from 'node:http';
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import type { AheadAnswer, AheadAnswers } from '../http/ahead.js';
import { scoped } from '../http/layers.js';
import { fixedHeaders, type FixedHeaders } from '../http/preset-headers.js';
import { conditionalStatus } from '../keyring/jwks-endpoint.js';
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
  /** Writes the answer to a GET or HEAD ahead of Koa (app.ts). */
  readonly write: AheadAnswer['write'];
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
  const document: Document = {
    body,
    etag,
    notModified: fixedHeaders(shared),
    ok: fixedHeaders([...shared, ['Content-Type', JSON_TYPE], ['Content-Length', String(Buffer.byteLength(body))]]),
    write: (req, res) => {
      const status = conditionalStatus(req.headers['if-none-match'], document.etag);
      write(document, status, res, req.headers.origin);
      return status;
    },
  };
  return document;
}

/** Writes a kept document's answer of `status` (conditionalStatus), head and body. */
function write(document: Document, status: 200 | 304, res: ServerResponse, origin: string | undefined): void {
  (status === 304 ? document.notModified : document.ok)(res);
  if (origin) res.setHeader('Access-Control-Allow-Origin', origin);
  // Written here, whole: Koa's body setter and its answer measured the fixed body's length at
  // every request (the type and length are among the document's headers), and so did Node's
  // end() for a head not written yet. HEAD: Node sends the head only.
  if (status === 304) res.writeHead(304).end();
  else res.writeHead(200).end(document.body);
}

/**
 * The discovery paths' answers: `middleware` in the app (the first request for a path on each
 * provider instance goes to the engine and its answer is kept; a path in another spelling), and
 * `ahead`, the same kept answers written by the app's request listener before Koa (app.ts
 * AheadAnswers) for a path in its own spelling.
 */
export function discoveryDocuments(providers: ProviderHost): { middleware: Middleware; ahead: AheadAnswers } {
  const documents = new WeakMap<Provider, Map<string, Document>>();
  const middleware = scoped<Middleware>({ paths: [...PATHS] }, async function discovery(ctx, next) {
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
    // Koa's status first (its setter does nothing once the head is sent; the request line and
    // metrics read it), then the answer, written whole.
    const status = conditionalStatus(ctx.req.headers['if-none-match'], known.etag);
    ctx.status = status;
    ctx.respond = false;
    write(known, status, ctx.res, ctx.req.headers.origin);
  });
  const ahead: AheadAnswers = {
    paths: [...PATHS],
    route: 'discovery',
    // Only a document kept for the provider in service: the first request of each instance goes through the app.
    find: (path) => documents.get(providers.current)?.get(path),
  };
  return { middleware, ahead };
}
