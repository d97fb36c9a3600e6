/**
 * What this configuration offers clients: the OpenID scopes, who may register what (the policy
 * registration/policy.ts applies), and the grant and response types of a client that registers none.
 */
import type { Config } from '../config.js';
import { ADMIN_SCOPES } from '../apis/admin-resource.js';
import { resourceServers } from '../apis/builtin.js';
import { FEED_SCOPE } from '../apis/feed-server.js';
import { FIRST_PARTY_CLIENT_IDS } from '../http/first-party-sign-in.js';
import { DEVICE_CODE_GRANT, type RegistrationPolicy } from '../registration/policy.js';
import { SCOPE_CLAIMS } from './scope-claims.js';

/** The OpenID scopes we offer; every client may register them. */
export const OIDC_SCOPES = ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS).filter((scope) => scope !== 'openid')];


/**
 * Algorithms clients may sign private_key_jwt assertions with: asymmetric only. Ed25519 is RFC 9864's
 * fully specified name for what EdDSA named, which it deprecates: openid-client and oauth4webapi sign
 * with it an Ed25519 key's assertion, refused before (client libraries pass of 2026-12-06).
 */
export const CLIENT_AUTH_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'] as const;
/** What signs ID tokens and signed userinfo answers: the key ring's RS256 keys. */
export const SIGNED_RESPONSE_ALGORITHMS = ['RS256'] as const;
/** The grant types the engine's features offer (discovery's grant_types_supported: spec-letter-sixteenth compares them). */
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT] as const;

/** Who may register what: the registration policy (registration/policy.ts) for these APIs. */
export function registrationPolicy(config: Config): RegistrationPolicy {
  const servers = resourceServers(config);
  return {
    authMethods: config.registration.authMethods,
    scopes: [...new Set([...OIDC_SCOPES, ...servers.flatMap((server) => server.scopes)])],
    // The privileged APIs' scopes: granted only by operators, never registered self-service.
    privilegedScopes: [...ADMIN_SCOPES, FEED_SCOPE],
    issuer: config.issuer,
    offered: {
      grantTypes: GRANT_TYPES,
      algorithms: {
        token_endpoint_auth_signing_alg: CLIENT_AUTH_ALGORITHMS,
        id_token_signed_response_alg: SIGNED_RESPONSE_ALGORITHMS,
        userinfo_signed_response_alg: SIGNED_RESPONSE_ALGORITHMS,
      },
    },
    ...(config.par.required ? { requirePushedRequests: { except: FIRST_PARTY_CLIENT_IDS } } : {}),
  };
}


/** A client's grant and response types where its metadata names none (the engine's clientDefaults). */
export const DEFAULT_GRANT_TYPES: readonly string[] = ['authorization_code', 'refresh_token'];
export const DEFAULT_RESPONSE_TYPES = ['code'] as const;
