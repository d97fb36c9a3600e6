/**
 * Resource servers (RFC 8707 resource indicators): the APIs our access tokens are for. Each is
 * configured by its identifier, which becomes the token's `aud`, its scopes and its token format.
 * JWT access tokens follow RFC 9068 (oidc-provider sets `typ: at+jwt`) and are signed with our
 * current RS256 key.
 */
import { errors, type Client, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { ResourceServerConfig } from '../config.js';

/** A resource server; a privileged one (the admin API) gives a client only the scopes registered for it. */
export type ResourceServerDefinition = ResourceServerConfig & { readonly privileged?: boolean };

/**
 * What `client` may have at the resource server `indicator`: the server's scopes, narrowed to the
 * client's registered `scope` when it has one (oidc-provider applies a client's `scope` only to
 * OpenID scopes). A client_credentials request for anything beyond that is refused with
 * invalid_scope rather than silently narrowed: there is no person to have declined it.
 */
export function resourceServerInfo(
  servers: readonly ResourceServerDefinition[],
  ctx: KoaContextWithOIDC,
  indicator: string,
  client: Client,
): ResourceServer {
  const server = servers.find((candidate) => candidate.identifier === indicator);
  if (!server) throw new errors.InvalidTarget(`unknown resource server: ${indicator}`);
  const registered = client.scope ? new Set(client.scope.split(' ')) : undefined;
  const allowed = registered ? server.scopes.filter((scope) => registered.has(scope)) : server.privileged ? [] : server.scopes;

  const { params, route } = ctx.oidc;
  if (route === 'token' && params?.grant_type === 'client_credentials' && typeof params.scope === 'string') {
    const refused = params.scope.split(' ').filter((scope) => scope && !allowed.includes(scope));
    if (refused.length) {
      throw new errors.InvalidScope(`scope not available to this client at ${indicator}: ${refused.join(' ')}`, refused.join(' '));
    }
  }

  return {
    audience: server.identifier,
    scope: allowed.join(' '),
    accessTokenFormat: server.format,
    ...(server.accessTokenTTL ? { accessTokenTTL: server.accessTokenTTL } : {}),
    ...(server.format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
  };
}
