/**
 * What this configuration offers clients: the OpenID scopes, who may register what (the policy
 * registration/policy.ts applies), and the grant and response types of a client that registers none.
 */
import type { Config } from '../config.js';
import { ADMIN_SCOPES } from '../apis/admin-resource.js';
import { resourceServers } from '../apis/builtin.js';
import { FEED_SCOPE } from '../apis/feed-server.js';
import { FIRST_PARTY_CLIENT_IDS } from '../http/first-party-sign-in.js';
import type { RegistrationPolicy } from '../registration/policy.js';
import { SCOPE_CLAIMS } from './scope-claims.js';

/** The OpenID scopes we offer; every client may register them. */
export const OIDC_SCOPES = ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS).filter((scope) => scope !== 'openid')];


/** Who may register what: the registration policy (registration/policy.ts) for these APIs. */
export function registrationPolicy(config: Config): RegistrationPolicy {
  const servers = resourceServers(config);
  return {
    authMethods: config.registration.authMethods,
    scopes: [...new Set([...OIDC_SCOPES, ...servers.flatMap((server) => server.scopes)])],
    // The privileged APIs' scopes: granted only by operators, never registered self-service.
    privilegedScopes: [...ADMIN_SCOPES, FEED_SCOPE],
    issuer: config.issuer,
    ...(config.par.required ? { requirePushedRequests: { except: FIRST_PARTY_CLIENT_IDS } } : {}),
  };
}


/** A client's grant and response types where its metadata names none (the engine's clientDefaults). */
export const DEFAULT_GRANT_TYPES: readonly string[] = ['authorization_code', 'refresh_token'];
export const DEFAULT_RESPONSE_TYPES = ['code'] as const;
