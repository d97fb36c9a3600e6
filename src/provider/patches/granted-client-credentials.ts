/**
 * An operator's grant at an API (`latchkey apis grant`, the admin API, `resourceServers` grants) is
 * used only through client_credentials, so a grant given to a client without that grant type (an
 * app people sign in to) is no leave to do anything: the CLI tells the operator so, and the token
 * endpoint answers `unauthorized_client`. A client writing its own registration (RFC 7592, the
 * engine's client_update route) added client_credentials to its grant types and used the grant at
 * once: the admin API or the feed too, had the operator granted them. RFC 7592 §2.2 lets the server
 * refuse such an update; it is refused while the client holds any operator grant, and an operator
 * adds the grant type (the admin API) when the client is to act for itself. A client without a
 * grant adds it as before (what it then gets is good at no API), and one that has it keeps it.
 * Likewise a public client (which no grant serves, introspection included) that would start to
 * authenticate while it holds a grant (one the configuration names it in).
 *
 * The grants are read in the store, which the engine's synchronous client validation cannot do:
 * operatorGrantsOnUpdate (a provider middleware) reads them for RFC 7592 updates first and leaves
 * the answer on ctx.state; grantPutToUseRefused runs in the validation (provider.ts).
 * Pinned by test/e2e/api-grants.test.ts ("… cannot give itself client_credentials with RFC 7592 …").
 */
import type { Middleware } from 'koa';
import { errors, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import type { Apis } from '../../apis/apis.js';
import { scoped } from '../../http/layers.js';

/** On an RFC 7592 update's ctx.state: whether the client its path names holds an operator grant at any API. */
const HOLDS_OPERATOR_GRANT = Symbol('the client an RFC 7592 update names holds an operator grant');

const CLIENT_CREDENTIALS = 'client_credentials';

export function operatorGrantsOnUpdate(provider: Provider, apis: Pick<Apis, 'grantsOf'>): Middleware {
  const registration = provider.pathFor('registration');
  const prefix = `${registration.toLowerCase()}/`;
  return scoped({ prefixes: [registration] }, async function readOperatorGrants(ctx, next) {
    // The engine's router matches its paths in any case, with or without one trailing slash.
    if (ctx.method !== 'PUT' || !ctx.path.toLowerCase().startsWith(prefix)) return next();
    let clientId: string | undefined;
    try {
      clientId = decodeURIComponent(ctx.path.slice(prefix.length).replace(/\/$/, ''));
    } catch {
      clientId = undefined; // no client the engine finds either; the flag left unset refuses the change
    }
    if (clientId) (ctx.state as Record<symbol, unknown>)[HOLDS_OPERATOR_GRANT] = Object.keys(await apis.grantsOf(clientId)).length > 0;
    return next();
  });
}

/**
 * In the client schema's validation (`metadata`: the update, the engine's defaults applied): an RFC
 * 7592 update that would put an operator's grant to use is refused while the client holds one:
 * adding client_credentials, or a public client starting to authenticate (a grant names a public
 * client only in the configuration, where it proves nothing: introspection refuses public callers).
 */
export function grantPutToUseRefused(ctx: unknown, metadata: Record<string, unknown>): void {
  const oidc = (ctx as KoaContextWithOIDC | undefined)?.oidc;
  if (oidc?.route !== 'client_update' || !oidc.client) return;
  const addsGrantType = Array.isArray(metadata.grant_types) && metadata.grant_types.includes(CLIENT_CREDENTIALS) && !oidc.client.grantTypeAllowed(CLIENT_CREDENTIALS);
  const startsAuthenticating = oidc.client.clientAuthMethod === 'none' && metadata.token_endpoint_auth_method !== 'none';
  if (!addsGrantType && !startsAuthenticating) return;
  // Unread (a path the middleware could not take a client from): refused, never taken as "no grant".
  if ((ctx as { state?: Record<symbol, unknown> }).state?.[HOLDS_OPERATOR_GRANT] === false) return;
  throw new errors.InvalidClientMetadata(
    addsGrantType
      ? `grant_types: ${CLIENT_CREDENTIALS} cannot be added by the client itself while it holds an operator's grant at an API (an operator adds it: the admin API's PUT /admin/clients/{id})`
      : "token_endpoint_auth_method: a public client holding an operator's grant at an API cannot make itself authenticate (an operator changes it: the admin API's PUT /admin/clients/{id})",
  );
}
