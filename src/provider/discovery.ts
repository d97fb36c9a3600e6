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
import { matches } from '../keyring/jwks-endpoint.js';
import type { ProviderHost } from './host.js';

/** OpenID Connect Discovery §4 and RFC 8414 §3: the paths oidc-provider serves them at. */
const PATHS = new Set(['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']);

interface Document {
  readonly body: string;
  readonly etag: string;
}

/** CORS as oidc-provider answers discovery: any origin may read it. */
function openCors(ctx: Parameters<Middleware>[0]) {
  ctx.vary('Origin');
  ctx.set('Access-Control-Allow-Origin', ctx.get('Origin') || '*');
}

export function discoveryDocuments(providers: ProviderHost): Middleware {
  const documents = new WeakMap<Provider, Map<string, Document>>();
  return scoped({ paths: [...PATHS] }, async function discovery(ctx, next) {
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || !PATHS.has(ctx.path)) return next();
    ctx.set('Cross-Origin-Resource-Policy', 'cross-origin'); // a public document: any page may load it (app.ts)
    // Stored and revalidated with the ETag (the default for GET, no-store, left it nothing to revalidate).
    ctx.set('Cache-Control', 'no-cache');
    const provider = providers.current;
    const known = documents.get(provider)?.get(ctx.path);
    if (!known) {
      await next();
      if (ctx.status !== 200 || !ctx.body || typeof ctx.body !== 'object') return;
      const body = JSON.stringify(ctx.body);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      if (!documents.has(provider)) documents.set(provider, new Map());
      documents.get(provider)!.set(ctx.path, { body, etag });
      ctx.set('ETag', etag);
      ctx.type = 'application/json; charset=utf-8';
      ctx.body = body;
      return;
    }
    openCors(ctx);
    ctx.set('ETag', known.etag);
    const conditional = ctx.get('If-None-Match');
    if (conditional && matches(conditional, known.etag)) {
      ctx.status = 304;
      return;
    }
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = known.body;
  });
}
