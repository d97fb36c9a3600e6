/**
 * Resource servers (RFC 8707 resource indicators): the APIs our access tokens are for. Each is
 * configured by its identifier, which becomes the token's `aud`, its scopes and its token format.
 * JWT access tokens follow RFC 9068 (oidc-provider sets `typ: at+jwt`) and are signed with our
 * current RS256 key.
 */
import { errors, type ResourceServer } from 'oidc-provider';
import type { ResourceServerConfig } from '../config.js';

export function resourceServerInfo(servers: readonly ResourceServerConfig[], indicator: string): ResourceServer {
  const server = servers.find((candidate) => candidate.identifier === indicator);
  if (!server) throw new errors.InvalidTarget(`unknown resource server: ${indicator}`);
  return {
    audience: server.identifier,
    scope: server.scopes.join(' '),
    accessTokenFormat: server.format,
    ...(server.accessTokenTTL ? { accessTokenTTL: server.accessTokenTTL } : {}),
    ...(server.format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
  };
}
