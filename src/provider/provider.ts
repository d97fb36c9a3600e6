/**
 * The oidc-provider instance: which protocol features are on, and the policy choices Latchkey
 * makes on top of the library's defaults (each commented with its reason).
 */
import type { JWTVerifyGetKey } from 'jose';
import { errors, Provider, type AccountClaims, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { claimsFor, type Accounts } from '../accounts/accounts.js';
import type { Apis } from '../apis/apis.js';
import { AccountSessions } from '../accounts/sessions.js';
import type { Config } from '../config.js';
import type { Keyring } from '../keyring/keyring.js';
import { FEED_PATH, FEED_SCOPE } from '../apis/feed-server.js';
import { GrantRevocation } from '../revocation/grants.js';
import { jwtAccessTokenEndpoints } from './patches/jwt-access-tokens.js';
import { GRANT_CLAIM, grantHandle, type RevocationList } from '../revocation/list.js';
import { ofDeletedClient } from '../revocation/opaque-introspection.js';
import { adapterFactory } from '../store/adapter.js';
import type { Kv } from '../store/kv.js';
import type { RateLimits } from '../http/rate-limits.js';
import { limitAnnouncedClients } from './patches/announced-client-limit.js';
import { bareNotFound } from './bare-not-found.js';
import { clientAuthenticationRequired } from './patches/client-auth-required.js';
import { boundedClientAssertions } from './client-assertions.js';
import { onlyIdTokensAsHints } from './patches/id-token-hints.js';
import { postAsGet } from './post-methods.js';
import { accountClaims, ID_TOKEN_CLAIMS_PROPERTY, validateIdTokenClaimsSetting } from './id-token-claims.js';
import { consentOnlyIfNeeded, CONSENT_IF_NEEDED, offlineAccessPrompt } from './patches/offline-access.js';
import { rotateRefreshTokenAfterChecks } from './refresh-rotation.js';
import { emptyJsonRevocationAnswer } from './patches/revocation-response.js';
import { settleDeferredConsumption } from './patches/deferred-consumption.js';
import { refuseHintsOfRevokedKeys } from './patches/revoked-key-hints.js';
import { ADMIN_SCOPES } from '../apis/admin-resource.js';
import { acceptPreviousSecrets } from './patches/previous-secrets.js';
import { developerClient } from '../registration/developer-pages.js';
import { singleUseInitialAccessTokens } from '../registration/initial-access-tokens.js';
import { enforcePolicy, type RegistrationPolicy } from '../registration/policy.js';
import type { Consents } from './consents.js';
import { resourceServers } from '../apis/builtin.js';
import { CLOCK_TOLERANCE } from '../lifetimes.js';
import { defaultResource, mayIntrospect, resourceServerInfo } from './resource-servers.js';

export { CLOCK_TOLERANCE };

export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
} as const;

export interface ProviderDependencies {
  readonly config: Config;
  readonly kv: Kv;
  /** The ring this instance signs with. */
  readonly keyring: Keyring;
  /** Verifies what we signed against the keys published now (KeyringService.verifier). */
  readonly verifier: JWTVerifyGetKey;
  readonly accounts: Accounts;
  /** APIs and operator grants (src/apis/). */
  readonly apis: Apis;
  readonly revocations: RevocationList;
  readonly consents: Consents;
  /** Rate limits, shared by every provider built for this process (see patches/announced-client-limit.ts). */
  readonly rateLimits: RateLimits;
  readonly renderError: NonNullable<Configuration['renderError']>;
  /** The pages of RP-initiated logout. */
  readonly logoutPages: {
    logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void>;
    postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void>;
  };
}

/** The OpenID scopes we offer; every client may register them. */
const OIDC_SCOPES = ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS).filter((scope) => scope !== 'openid')];

/** Who may register what: the registration policy (registration/policy.ts) for these APIs. */
function registrationPolicy(config: Config): RegistrationPolicy {
  const servers = resourceServers(config);
  return {
    authMethods: config.registration.authMethods,
    scopes: [...new Set([...OIDC_SCOPES, ...servers.flatMap((server) => server.scopes)])],
    // The privileged APIs' scopes: granted only by operators, never registered self-service.
    privilegedScopes: [...ADMIN_SCOPES, FEED_SCOPE],
  };
}

/** Where everything persists, and what ends with a grant or a client. */
function storage({ config, kv, apis, revocations, accounts }: ProviderDependencies): Configuration {
  const grants = new GrantRevocation(kv, revocations);
  return {
    // Whenever oidc-provider revokes a grant (refresh token reuse, code replay, sign-out, the
    // revocation endpoint), its JWT access tokens go on the revocation list too. Whenever a client
    // is deleted (RFC 7592 DELETE, and the admin API, developer page and CLI through Clients, which
    // use this adapter), everything it held ends: see GrantRevocation.clientRemoved.
    // A just-rotated refresh token presented again within ttl.refreshReuseGrace is a concurrent
    // refresh, not a replay (see refreshReuseGrace in store/adapter.ts).
    adapter: adapterFactory(
      kv,
      CLOCK_TOLERANCE,
      {
        grantRevoked: (grantId) => revocations.revokeGrant(grantId),
        // ...and its operator grants at APIs go, so a client made again with the id starts with none.
        clientRemoved: async (clientId) => {
          await grants.clientRemoved(clientId);
          await apis.forgetClient(clientId);
        },
        // A token request's code or refresh token names the account it will look up next.
        accountAhead: (accountId) => accounts.readAhead(accountId),
      },
      { refreshReuseGrace: config.ttl.refreshReuseGrace },
    ),
  };
}

/** Clients, signing keys, cookies, and the protocol choices: response types, PKCE, client authentication, algorithms. */
function protocol({ config, keyring }: ProviderDependencies): Configuration {
  return {
    clients: [...config.clients.map((client) => ({ ...client })), developerClient(config.issuer)],
    jwks: keyring.signingJwks() as Configuration['jwks'],
    cookies: {
      keys: [...config.cookie.keys],
      names: { session: 'lk_session', interaction: 'lk_interaction', resume: 'lk_resume' },
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    clockTolerance: CLOCK_TOLERANCE,
    // Only what the product offers: the code flow, with PKCE S256 for every client (RFC 9700 §2.1.1).
    responseTypes: ['code'],
    pkce: { required: () => true },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256'],
      userinfoSigningAlgValues: ['RS256'],
      introspectionSigningAlgValues: ['RS256'],
      authorizationSigningAlgValues: ['RS256'],
      // Algorithms clients may sign private_key_jwt assertions with: asymmetric only.
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    },
    // private_key_jwt assertions: iat required, short-lived (oidc-provider already refuses replays).
    assertJwtClientAuthClaimsAndHeader: boundedClientAssertions(config.clientAssertions.maxLifetime, CLOCK_TOLERANCE),
  };
}

/** How tokens live: refresh rotation, lifetimes, and what JWT access tokens carry. */
function tokens({ config, apis }: ProviderDependencies): Configuration {
  return {
    // Every refresh token is single-use: a rotated one presented again (after the reuse grace)
    // revokes the grant. The request's resource is checked before the token is spent (see refresh-rotation.ts).
    rotateRefreshToken: rotateRefreshTokenAfterChecks(async (resource) => (await apis.find(resource)) !== undefined),
    ttl: {
      // An API's own accessTokenTTL wins (oidc-provider's default does this; a number would not).
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.clientCredentials,
      AuthorizationCode: config.ttl.authorizationCode,
      IdToken: config.ttl.idToken,
      RefreshToken: config.ttl.refreshToken,
      Session: config.ttl.session,
      Interaction: config.ttl.interaction,
      Grant: config.ttl.grant,
    },
    formats: {
      customizers: {
        // Links each JWT access token to its grant, so revoking the grant revokes the token without
        // any bookkeeping at issuance (client_credentials tokens have no grant).
        jwt: (_ctx, token, jwt) => {
          if ('grantId' in token && token.grantId) jwt.payload[GRANT_CLAIM] = grantHandle(token.grantId);
        },
      },
    },
  };
}

/** Scopes and claims, the people behind them, consent and the sign-in pages. */
function accountsAndConsent({ config, accounts, consents }: ProviderDependencies, policy: RegistrationPolicy): Configuration {
  return {
    // Configured resource servers' scopes too: oidc-provider accepts in a client's `scope` metadata
    // only scopes listed here, and that metadata is what bounds a person's delegation to a client.
    scopes: policy.scopes,
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
    // ID tokens carry the granted scopes' claims; clients that want only `sub` say so (id-token-claims.ts).
    conformIdTokenClaims: false,
    loadExistingGrant: (ctx) => consents.loadExistingGrant(ctx),
    // Where resource servers learn about revocations of JWTs they verify locally.
    discovery: { revocation_feed_endpoint: `${config.issuer}${FEED_PATH}` },
    // offline_access with remembered consent needs no prompt=consent (patches/offline-access.ts).
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}`, policy: consentOnlyIfNeeded() },
    extraParams: [CONSENT_IF_NEEDED],
    findAccount: async (ctx, sub) => {
      const account = await accounts.find(sub);
      if (!account || account.disabled) return undefined;
      return { accountId: account.sub, claims: accountClaims(ctx, config.idToken.scopeClaims, { ...claimsFor(account) } as AccountClaims) };
    },
  };
}

function features({ config, apis, revocations, logoutPages }: ProviderDependencies): Configuration {
  return {
    // Every feature of oidc-provider is named here, on or off, so that a library upgrade that turns a
    // default on changes nothing (the README's "What it speaks" lists what is offered).
    features: {
      devInteractions: { enabled: false },
      // Offered: PAR (RFC 9126, optional for clients), DPoP (RFC 9449), userinfo (OIDC Core §5.3).
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false, allowUnregisteredRedirectUris: false },
      dPoP: { enabled: true },
      userinfo: { enabled: true },
      // Not offered. Request objects (JAR): PAR carries the same parameters without client-signed
      // JWTs; the rest are profiles and extensions Latchkey does not implement or test.
      requestObjects: { enabled: false },
      rpMetadataChoices: { enabled: false },
      richAuthorizationRequests: { enabled: false },
      jwtResponseModes: { enabled: false },
      jwtIntrospection: { enabled: false },
      jwtUserinfo: { enabled: false },
      encryption: { enabled: false },
      webMessageResponseMode: { enabled: false },
      deviceFlow: { enabled: false },
      ciba: { enabled: false },
      mTLS: { enabled: false },
      fapi: { enabled: false },
      attestClientAuth: { enabled: false },
      clientIdMetadataDocument: { enabled: false },
      externalSigningSupport: { enabled: false },
      openid4vci: { enabled: false },
      clientCredentials: { enabled: true },
      claimsParameter: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §4: a client learns only about its own tokens and those meant for an API it serves
        // as by an operator's grant; for any other token the answer is {"active": false}.
        // A token of a deleted client is not introspectable either (revocation/opaque-introspection.ts);
        // both are read in one round trip.
        allowedPolicy: async (_ctx, caller, token) => {
          const { clientId, aud, scope, kind, iat } = token as unknown as { clientId?: string; aud?: unknown; scope?: string; kind: string; iat?: number };
          const [allowed, deleted] = await Promise.all([
            mayIntrospect(apis, caller, { clientId, aud, scope, clientCredentials: kind === 'ClientCredentials' }),
            ofDeletedClient(revocations, clientId, iat),
          ]);
          return allowed && !deleted;
        },
      },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: a client revokes only its own tokens. For a confidential client asking for
        // another's that is an error; a public client is not told whether the token exists.
        allowedPolicy: async (_ctx, caller, token) => {
          if (token.clientId === caller.clientId) return true;
          if (caller.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      // RFC 7591 / RFC 7592. Without open registration, an initial access token is required.
      registration: { enabled: true, initialAccessToken: !config.registration.open, issueRegistrationAccessToken: true },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
      rpInitiatedLogout: { enabled: true, ...logoutPages },
      // Signing out at one app signs the person out of every other app of the session that
      // registered a backchannel_logout_uri, with a signed logout token (OIDC Back-Channel Logout 1.0).
      backchannelLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: (ctx, indicator, client) => resourceServerInfo(apis, ctx, indicator, client),
        defaultResource: defaultResource(apis, OIDC_SCOPES) as NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>['defaultResource'],
      },
    },
  };
}

/** Extra client metadata, and where the registration policy is enforced on every client. */
function clientMetadata(policy: RegistrationPolicy): Configuration {
  return {
    extraClientMetadata: {
      // `owner`: the account that registered the client on the developer page.
      // `id_token_scope_claims`: whether its ID tokens carry the granted scopes' claims (id-token-claims.ts).
      properties: ['owner', ID_TOKEN_CLAIMS_PROPERTY],
      // Called once per client validation for each extra property, on every path that creates or
      // loads a client: at `owner`, the place to enforce the registration policy on all of it.
      validator(ctx, key, owner, metadata) {
        if (key === ID_TOKEN_CLAIMS_PROPERTY) return validateIdTokenClaimsSetting(owner);
        const route = (ctx as KoaContextWithOIDC | undefined)?.oidc?.route;
        const selfService = route === 'registration' || route === 'client_update';
        const existingOwner = (ctx as KoaContextWithOIDC | undefined)?.oidc?.client?.metadata().owner;
        if (selfService && owner !== undefined && owner !== existingOwner) {
          throw new errors.InvalidClientMetadata('owner is set by Latchkey, not in a registration request');
        }
        enforcePolicy(policy, metadata as Record<string, unknown>, selfService);
      },
    },
  };
}

function outbound(config: Config): Configuration {
  return {
    // oidc-provider passes a dispatcher that refuses special-use addresses; dropping it lets
    // requests reach apps on private networks, when the operator says so.
    ...(config.outbound.allowPrivateNetworks && {
      fetch: (url, options) => {
        const unguarded: RequestInit & { dispatcher?: unknown } = { ...options };
        delete unguarded.dispatcher;
        return fetch(url, unguarded);
      },
    }),
  };
}

/** The changes Latchkey makes to the instance itself: patches of its internals and middleware in front of its routes. */
function applyPatches(provider: Provider, { config, kv, verifier, accounts, apis, revocations, rateLimits }: ProviderDependencies): void {
  acceptPreviousSecrets(provider, kv);
  onlyIdTokensAsHints(provider);
  refuseHintsOfRevokedKeys(provider, revocations);
  limitAnnouncedClients(provider, rateLimits);
  // No provider.proxy here: koa-mount runs the provider with the app's own ctx, so the app's proxy
  // settings (createApp) decide ctx.ip and ctx.protocol, and the issuer decides every URL (app.ts).
  provider.use(bareNotFound());
  // OIDC Core §3.1.2.1 and RP-Initiated Logout §2: POST too, with SameSite=Lax cookies kept (see post-methods.ts).
  provider.use(postAsGet([provider.pathFor('authorization'), provider.pathFor('end_session')]));
  // A session whose person was disabled or deleted is ended before the engine reads it (see accounts/sessions.ts).
  provider.use(new AccountSessions(kv, { current: provider }, accounts).recheckAtAuthorization(provider));
  provider.use(offlineAccessPrompt(provider.pathFor('authorization')));
  provider.use(clientAuthenticationRequired(new URL(config.issuer).host));
  if (!config.registration.open) provider.use(singleUseInitialAccessTokens(provider, kv, config.issuer));
  provider.use(emptyJsonRevocationAnswer());
  provider.use(
    jwtAccessTokenEndpoints({
      issuer: config.issuer,
      keys: verifier,
      list: revocations,
      clockTolerance: CLOCK_TOLERANCE,
      mayIntrospect: (caller, claims) =>
        mayIntrospect(apis, caller, {
          clientId: claims.client_id,
          aud: claims.aud,
          scope: claims.scope,
          // A person's token carries the grant claim and their sub; a client's own carries neither.
          clientCredentials: claims[GRANT_CLAIM] === undefined && claims.sub === claims.client_id,
        }),
    }),
  );
  // Innermost: a token request's consumption and new records go out together (see the patch).
  provider.use(settleDeferredConsumption(provider, rateLimits));
}

/**
 * Builds a provider for a key ring. Called again with each new ring (see host.ts): everything here
 * must be cheap and free of side effects beyond the instance it returns.
 */
export function createProvider(deps: ProviderDependencies): Provider {
  const policy = registrationPolicy(deps.config);
  const configuration: Configuration = {
    ...storage(deps),
    ...protocol(deps),
    ...tokens(deps),
    ...accountsAndConsent(deps, policy),
    ...features(deps),
    ...clientMetadata(policy),
    renderError: deps.renderError,
    ...outbound(deps.config),
  };
  const provider = new Provider(deps.config.issuer, configuration);
  applyPatches(provider, deps);
  return provider;
}

export type { KoaContextWithOIDC };
export { errors };
