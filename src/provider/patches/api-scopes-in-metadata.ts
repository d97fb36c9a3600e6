/**
 * A client's `scope` metadata may name the scopes of APIs added at runtime (`latchkey apis add`),
 * so that it bounds what a person can delegate to the client at those APIs too
 * (resource-servers.ts keeps a delegation within the registered `scope`).
 *
 * oidc-provider accepts in `scope` metadata only its static `scopes` (the OpenID scopes and the
 * `resourceServers` setting's, fixed at start): the client schema's scopes() refuses anything
 * else. Runtime APIs live in the store and change while the server runs, so they cannot be static.
 * The registration policy (registration/policy.ts, run by the schema before scopes()) checks them
 * instead, and leaves those it accepted on the schema under API_SCOPES_SET_ASIDE; the wrapped
 * scopes() takes them out of `scope` for the engine's own check and puts them back after.
 *
 * The policy needs the runtime APIs' scopes where a client is written. Dynamic registration
 * (RFC 7591/7592) validates inside the engine's route, synchronously, so offerApiScopes (a
 * provider middleware) reads them for those requests first and leaves them on ctx.state under
 * OFFERED_API_SCOPES; registration/clients.ts does the same for the CLI, admin API and developer page.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Provider } from 'oidc-provider';
import type { Apis } from '../../apis/apis.js';
import { API_SCOPES_SET_ASIDE, OFFERED_API_SCOPES } from '../../registration/policy.js';
import { scoped } from '../../http/layers.js';

interface SchemaLike {
  scope?: string;
  [API_SCOPES_SET_ASIDE]?: readonly string[];
}

export function apiScopesInMetadata(provider: Provider, apis: Pick<Apis, 'delegableScopes'>): Middleware {
  const schema = (provider.Client as unknown as { Schema: { prototype: { scopes(this: SchemaLike): void } } }).Schema.prototype;
  const scopes = schema.scopes;
  schema.scopes = function scopesWithApis(this: SchemaLike) {
    const aside = new Set(this[API_SCOPES_SET_ASIDE] ?? []);
    if (!aside.size || typeof this.scope !== 'string') return scopes.call(this);
    const registered = this.scope.split(' ');
    this.scope = registered.filter((scope) => !aside.has(scope)).join(' ') || undefined;
    scopes.call(this);
    this.scope = [...new Set([...(this.scope?.split(' ') ?? []), ...registered.filter((scope) => aside.has(scope))])].join(' ');
  };

  const registration = provider.pathFor('registration');
  const offer = async (ctx: Context, next: Next) => {
    (ctx.state as Record<symbol, unknown>)[OFFERED_API_SCOPES] = await apis.delegableScopes();
    return next();
  };
  return scoped({ prefixes: [registration] }, function offerApiScopes(ctx, next) {
    const writes = (ctx.method === 'POST' && ctx.path === registration) || (ctx.method === 'PUT' && ctx.path.startsWith(`${registration}/`));
    return writes ? offer(ctx, next) : next();
  });
}
