/**
 * The oidc-provider instance: which protocol features are on, and the policy choices Latchkey
 * makes on top of the library's defaults (each commented with its reason).
 */
import type { JWTVerifyGetKey } from 'jose';
import type { Middleware } from 'koa';
import { errors, Provider, type AccountClaims, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { claimsFor, endedWithPerson, type Accounts } from '../accounts/accounts.js';
import { predates, type Apis } from '../apis/apis.js';
import { accountCheckedFor, accountReadByEngine, AccountSessions, SESSION_COOKIE } from '../accounts/sessions.js';
import { accountNowOf, credentialsHeld, SessionCredentials } from '../accounts/session-credentials.js';
import { CredentialRecords } from '../accounts/credentials.js';
import { UpstreamLinks } from '../accounts/links.js';
import { SessionActivity } from '../accounts/session-activity.js';
import type { Config } from '../config.js';
import type { Keyring } from '../keyring/keyring.js';
import { dpopNonceSecret } from '../keyring/dpop-nonces.js';
import { signingKeys } from '../keyring/signing-keys.js';
import type { SigningGate } from '../keyring/service.js';
import { FEED_PATH } from '../apis/feed-server.js';
import { GrantRevocation } from '../revocation/grants.js';
import { signInClaims } from './access-token-claims.js';
import { answerJwtAccessTokens } from './patches/jwt-access-tokens.js';
// Its steps take the engine's place as it loads, before any Provider is made.
import './patches/form-bodies.js';
// ...and so does a max_age refused unless in decimal digits (see the patch).
import './patches/max-age-digits.js';
// ...and an S256 code_challenge or a dpop_jkt that is not 43 base64url characters (see the patch).
import './patches/sha256-bindings.js';
// So do these: an authorization request without scope is invalid_scope at once (see the patch).
import { knownScopes } from './patches/scope-required.js';
// ...and a request_uri another client pushed is refused before its state is taken (see the patch).
import './patches/pushed-by-another-client.js';
// ...and a refused request object's error goes back in the response mode, with the state, it asked (see the patch).
import './patches/refused-request-objects.js';
// OpenID Connect Core §3.1.2.1: an OpenID request names its redirect_uri (see the patch).
import { codesNameRedirectUri, REDIRECT_URI_OMITTED } from './patches/openid-redirect-uri.js';
import { confidentialRedemption } from './patches/confidential-redemption.js';
import { unboundRefreshRefused } from './patches/dpop-bound-refresh.js';
import { BOUND_LATE, HELD_IN_BROWSER, marked, refreshChainMarks } from './patches/refresh-chain-marks.js';
import { grantGivenAtKept } from './patches/grant-given-at.js';
import { signedInThroughKept, upstreamOf } from './patches/signed-in-through.js';
import { loopbackPublicClientsAsked } from './patches/loopback-public-clients.js';
import { GRANT_CLAIM, grantHandle, type RevocationList } from '../revocation/list.js';
import { opaqueRevoked } from '../revocation/opaque-introspection.js';
import { adapterFactory, clientNarrowedAt, opaqueTokenBits, readInteractionAhead } from '../store/adapter.js';
import type { KeepsOwed } from '../store/due-endings.js';
import { recordFederatedSessions, type FederatedSessions } from '../upstreams/sessions.js';
import type { UpstreamLogout } from '../upstreams/logout.js';
import { upstreamEndSession } from './patches/upstream-end-session.js';
import { retryBackchannelLogouts, type LogoutRetries } from './patches/backchannel-retry.js';
import { browserBoundResume } from './patches/browser-bound-resume.js';
import { endSessionsAtMax } from './patches/session-max.js';
import { sessionsIdleAsConfigured } from './patches/session-idle.js';
import { keysFreshForAMinute, staleClientKeysVerifyNothing } from './patches/client-jwks-freshness.js';
import { accessTokensWithinSessions } from './patches/tokens-within-session.js';
import { accessTokensWithinGrants } from './patches/tokens-within-grant.js';
import { accessTokensAsConfigured, lifetimesAsConfigured } from './patches/lifetimes-as-configured.js';
import { exactExpiry } from './patches/exact-expiry.js';
import { authTimeOfFirstFactor } from './patches/sign-in-time.js';
import { postLogoutToCurrentRegistration } from './patches/post-logout-current.js';
import { ownOriginOnlyAsRegistered } from './patches/own-origin-redirects.js';
import { endBeforeTelling } from './patches/logout-order.js';
import { singleUseResume } from './patches/single-use-resume.js';
import { singleUseRegistrationToken } from './patches/single-use-registration-token.js';
import { registrationTokenFirst } from './patches/registration-token-first.js';
import type { Kv } from '../store/kv.js';
import type { RateLimits } from '../http/rate-limits.js';
import { limitAnnouncedClients } from './patches/announced-client-limit.js';
import { shareOidcGetter } from './patches/shared-oidc-getter.js';
import { bareNotFound } from './bare-not-found.js';
import { useLayers } from './layers.js';
import { clientAuthenticationRequired } from './patches/client-auth-required.js';
import { grantTypeHints } from './patches/grant-type-hints.js';
import { unauthorizedClientAnswers } from './patches/unauthorized-client.js';
import { apiScopesInMetadata } from './patches/api-scopes-in-metadata.js';
import { boundedClientAssertions } from './client-assertions.js';
import { onlyIdTokensAsHints } from './patches/id-token-hints.js';
import { postAsGet } from './post-methods.js';
import { accountClaims, ID_TOKEN_CLAIMS_PROPERTY, validateIdTokenClaimsSetting } from './id-token-claims.js';
import { OPENID_CLAIMS, SCOPE_CLAIMS } from './scope-claims.js';
import { consentOnlyIfNeeded, CONSENT_IF_NEEDED, OFFLINE_IF_GRANTED, offlineAccessPrompt } from './patches/offline-access.js';
import { rotateRefreshTokenAfterChecks } from './refresh-rotation.js';
import { deviceGrantsBelowPhr, essentialAcrInIdTokens, REQUIRE_MFA_PROPERTY, requireLevelAtTokenEndpoint, validateRequireMfa, withStepUp } from './patches/step-up.js';
import { keepRequirements } from './patches/kept-requirements.js';
import { grantPutToUseRefused, operatorGrantsOnUpdate } from './patches/granted-client-credentials.js';
import { boundCodesToCurrentRegistration, scopesBeyond, withCurrentRegistration } from './patches/current-registration.js';
import { dpopBoundCodesBeforeSpending } from './patches/dpop-bound-codes.js';
import { dpopProofsOnce } from './patches/dpop-proofs-once.js';
import { jwtsOnce } from './patches/jwts-once.js';
import { deviceApprovalOutages, deviceCodesInFlightPerBrowser } from './patches/device-approval-outage.js';
import { sessionRenewalsInOneStep } from './patches/session-renewals.js';
import { deviceRequestsOnStoreClock, withDeviceFreshLogin } from './patches/device-fresh-login.js';
import { withHintedSubject } from './patches/hinted-subject.js';
import { withHintedLogin } from './patches/hinted-login.js';
import { withCrossSiteFrames } from './patches/cross-site-frames.js';
import { silentStrangersAskedConsent } from './patches/silent-strangers.js';
import { promptValues, withSelectAccount } from './patches/select-account.js';
import { openIdScopesOnly } from './patches/openid-scopes.js';
import { pkceRequired } from './patches/pkce-required.js';
import { ACR_VALUES } from '../accounts/assurance.js';
import { jsonRevocationAnswer } from './patches/revocation-response.js';
import { introspectedClientSubject } from './patches/introspected-client-subject.js';
import { pragmaNoCache } from './patches/pragma-no-cache.js';
import { foldAuthorizationSpaces } from './patches/authorization-header-spaces.js';
import { otherSchemesUnauthenticated } from './patches/other-schemes-unauthenticated.js';
import { requestUriNotPushed } from './patches/pushed-request-uri.js';
import { authorizationErrorDescriptions, errorDescriptionsInOrder } from './patches/error-descriptions.js';
import { userinfoApiTokens } from './patches/userinfo-api-tokens.js';
import { registrationTokenNeeded } from './patches/registration-token-needed.js';
import { methodNotAllowed, ownEndpointPaths } from './patches/method-not-allowed.js';
import { chunkedBodiesTooLarge, oversizedBodies } from './patches/oversized-bodies.js';
import { bearerTokenGrammar } from './patches/bearer-token-grammar.js';
import { registrationBearerChallenges } from './patches/registration-bearer-challenges.js';
import { noNonceInRefreshedIdTokens } from './patches/refreshed-id-token-nonce.js';
import { narrowedRefreshClaims } from './patches/narrowed-refresh-claims.js';
import { settleDeferredConsumption } from './patches/deferred-consumption.js';
import { sessionLoadedOnce } from './patches/session-loaded-once.js';
import { extendUnchangedSessionsInSteps } from './patches/unchanged-sessions.js';
import { appsOnlyBySignIn } from './patches/session-app-reads.js';
import { endReplacedSessionGrants } from './patches/replaced-session-grants.js';
import { refuseHintsOfRevokedKeys } from './patches/revoked-key-hints.js';
import { signWithUnrevokedKeys } from './patches/revoked-key-signing.js';
import { revokeGrantBeforeToken } from './patches/grant-before-token.js';
import { tokensIssuedAsOfClientRead } from './patches/issued-as-of-client-read.js';
import { interactionsOnStoreClock } from './patches/interactions-on-store-clock.js';
import { grantsOnStoreClock } from './patches/grants-on-store-clock.js';
import { cheaperCorsHeaderScan } from './patches/cors-header-scan.js';
import { acceptPreviousSecrets, previousSecretGraceEnd } from './patches/previous-secrets.js';
import { clientSecretDigests } from './patches/client-secret-digests.js';
import { clientResolves, resolveClientMetadataDocuments } from './patches/client-metadata-documents.js';
import { ClientMetadataDocuments } from '../registration/client-metadata-documents.js';
import { ClientMetadataDocumentCache } from '../store/client-metadata-documents.js';
import { createOutboundFetch } from '../http/outbound.js';
// The first-party clients from their own modules, not the pages': those load the pages and their
// routes (about 90 modules), which a CLI command that builds an engine never serves.
import { developerClient } from '../registration/developer-sign-in.js';
import { accountClient } from '../accounts/page/account-client.js';
import { registeredClientId } from '../registration/clients.js';
import { DevicePolling, pacedDevicePolling } from './patches/device-polling.js';
import { deviceTokenErrors } from './patches/device-token-errors.js';
import { uniqueUserCodes } from './patches/unique-user-codes.js';
import { UserCodeThrottle, userCodeEntry } from './patches/user-code-entry.js';
import { CookieKeys } from '../http/cookie-keys.js';
import { DPOP_ALGORITHMS } from '../http/sender-constraint.js';
import { singleUseInitialAccessTokens } from '../registration/initial-access-tokens.js';
import { ALREADY_CHECKED, applyRequirements, enforcePolicy, OFFERED_API_SCOPES, withoutUnusedSecret, type RegistrationPolicy } from '../registration/policy.js';
import { predatesClient, type Consents } from './consents.js';
import { assertClaimsRequests } from './claims-requests.js';
import { clientEndings } from './client-endings.js';
import { CLIENT_AUTH_ALGORITHMS, DEFAULT_GRANT_TYPES, DEFAULT_RESPONSE_TYPES, GRANT_TYPES, OIDC_SCOPES, registrationPolicy, SIGNED_RESPONSE_ALGORITHMS } from './registration-policy.js';
import { CLOCK_TOLERANCE, sessionLifetime, sessionRecordsLifetime } from '../lifetimes.js';
import { epochSeconds } from '../clock.js';
import { accessTokenLifetimes, defaultResource, heldByApiNow, heldByClientNow, mayIntrospect, ownToken, resourceServerInfo } from './resource-servers.js';

export interface ProviderDependencies {
  readonly config: Config;
  readonly kv: Kv;
  /** The ring this instance signs with. */
  readonly keyring: Keyring;
  /**
   * Which key signs now, and the wait before signing while a revoked current key is replaced (the
   * key ring service's); without one (CLI commands that never sign), the ring's current key.
   */
  readonly signing?: SigningGate;
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
  /** Sessions signed in through an upstream provider: their `idp` claim. */
  readonly federated: FederatedSessions;
  /** Signing out of Latchkey everywhere goes on to end the upstream session, where configured. */
  readonly upstreamLogout: UpstreamLogout;
  /** Whether an upstream is still configured, under the issuer a link records: a sign-in through one removed since (its id given to another, maybe) does not resume. */
  readonly upstreamKnown: (id: string, issuer: string | undefined, made?: string) => Promise<boolean>;
  /** The pages of RP-initiated logout. */
  readonly logoutPages: {
    logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void>;
    postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void>;
  };
  /** The pages of the device authorization grant at /device (interactions/device.ts). */
  readonly devicePages: DevicePages;
  /** Keeps a logout token the app did not take, to send again, and one an ending is about to send (provider/backchannel-delivery.ts); without it, none is. */
  readonly keepLogoutRetry?: LogoutRetries;
  /** Keeps a client's deletion owed while it runs (store/due-endings.ts OwedKeeper); without it, nothing is. */
  readonly owed?: KeepsOwed;
}

/**
 * Seconds a session that holds an app is kept past its expiry, for the sweep that ends it and tells
 * its apps to read it after a delay (a store outage of up to this long loses no telling).
 */
const SESSION_ENDS_MARGIN = 300;

/** RFC 8628 §6.1: how user codes are drawn (features.deviceFlow, and patches/unique-user-codes.ts redrawing a taken one). */
const USER_CODE_CHARSET = 'base-20';
const USER_CODE_MASK = '****-****';
type DeviceFlow = NonNullable<NonNullable<Configuration['features']>['deviceFlow']>;
/**
 * features.deviceFlow's page hooks, and the page that says a device was not connected after all
 * (the approval dropped: see features).
 */
export type DevicePages = Required<Pick<DeviceFlow, 'userCodeInputSource' | 'userCodeConfirmSource' | 'successSource'>> & { readonly notConnectedSource: NonNullable<DeviceFlow['successSource']> };
type FindAccount = NonNullable<Configuration['findAccount']>;

/** Client authentication at the token, introspection and revocation endpoints alike (public clients revoke their own tokens: RFC 7009 §5). */
const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
/**
 * How long a metadata document's accepted metadata is kept after its last acceptance: the longest
 * anything issued under it can live. A grant begun while a cached copy was fresh (cacheMax) lives
 * ttl.grant, its refresh tokens within it, and the last access token from it its own lifetime past it.
 */
export function acceptedDocumentsKept({ ttl, clientMetadataDocuments }: Config): number {
  return clientMetadataDocuments.cacheMax + ttl.grant + Math.max(ttl.accessToken, ttl.apiAccessTokenMax);
}

/** Where everything persists, and what ends with a grant or a client. */
function storage(dependencies: ProviderDependencies): Configuration {
  const { config, kv, revocations, accounts } = dependencies;
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
        grantEnded: (grantId) => revocations.endGrant(grantId),
        // What a session held as it ended, that its ending had not read (GrantRevocation.endHeld).
        sessionEnded: (apps) => grants.endHeld(apps),
        ...clientEndings(dependencies),
        ...(dependencies.owed ? { owed: dependencies.owed } : {}),
        // A token request's code or refresh token names the account it will look up next, and its
        // client, whose delegated mark findAccount reads with it (revocation/list.ts).
        accountAhead: (accountId, clientId) => {
          accounts.readAhead(accountId);
          if (clientId) revocations.readDelegatedAhead(clientId);
        },
      },
      // A session that holds an app is swept at its expiry, telling its apps (provider/backchannel-delivery.ts).
      // A device code is kept its lifetime again past its end, for a late poll to read expired_token (RFC 8628 §3.5).
      { refreshReuseGrace: config.ttl.refreshReuseGrace, sessionTtl: config.ttl.session, sessionEndsMargin: SESSION_ENDS_MARGIN, deviceCodeKept: config.ttl.deviceCode },
    ),
  };
}

/** The session cookie's name: __Host-lk_session under an https issuer, lk_session under http (development). */
export function sessionCookieName(issuer: string): string {
  return issuer.startsWith('https:') ? '__Host-lk_session' : 'lk_session';
}

/** Clients, signing keys, cookies, and the protocol choices: response types, PKCE, client authentication, algorithms. */
function protocol({ config, keyring, signing }: ProviderDependencies): Configuration {
  return {
    clients: [...config.clients.map((client) => ({ ...client })), developerClient(config.issuer), accountClient(config.issuer)],
    jwks: signingKeys(keyring, signing && ((kid) => signing.signsWith(kid))) as unknown as Configuration['jwks'],
    cookies: {
      // Keygrip's signatures, compared without tsscmp's extra HMACs (http/cookie-keys.ts).
      keys: new CookieKeys(config.cookie.keys),
      // Under an https issuer the session cookie is __Host- (Secure, Path=/, no Domain: app.ts makes
      // every cookie Secure there), so a sibling subdomain cannot plant one for us (cookie tossing: a
      // session of the attacker's, signed by us, set for the parent domain, signs the victim in as the
      // attacker). The interaction and resume cookies are scoped to their paths, which __Host- forbids.
      names: { session: sessionCookieName(config.issuer), interaction: 'lk_interaction', resume: 'lk_resume' },
      long: { ...SESSION_COOKIE },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    // CORS at the endpoints a client calls (token, userinfo, introspection, revocation, PAR, device
    // authorization; discovery and the JWKS answer every origin): a public client calls from its own
    // pages, the origins of its redirect URIs; userinfo also answers any client's pages (its front end
    // holding the person's access token); a confidential client calls from its server, never a page.
    // The engine's default policy, stated (left to it, the engine asks on the console for it to be
    // set); pinned by test/conformance/oauth-security.test.ts ("CORS at the token, revocation and userinfo endpoints").
    clientBasedCORS: (ctx, origin, client) =>
      origin !== 'null' && (ctx.oidc.route === 'userinfo' || client.clientAuthMethod === 'none') && (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin),
    clockTolerance: CLOCK_TOLERANCE,
    // Only what the product offers: the code flow, with PKCE S256 for every client (RFC 9700 §2.1.1),
    // or with pkce.required "public" for public clients only (a code_challenge sent is enforced either way).
    responseTypes: ['code'],
    pkce: { required: pkceRequired(config.pkce.required) },
    clientAuthMethods: CLIENT_AUTH_METHODS,
    clientDefaults: {
      grant_types: [...DEFAULT_GRANT_TYPES],
      response_types: [...DEFAULT_RESPONSE_TYPES],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNED_RESPONSE_ALGORITHMS],
      userinfoSigningAlgValues: [...SIGNED_RESPONSE_ALGORITHMS],
      introspectionSigningAlgValues: ['RS256'],
      authorizationSigningAlgValues: ['RS256'],
      clientAuthSigningAlgValues: CLIENT_AUTH_ALGORITHMS,
      // Algorithms of DPoP proofs: asymmetric only (RFC 9449 §4.2), as discovery's dpop_signing_alg_values_supported.
      dPoPSigningAlgValues: DPOP_ALGORITHMS,
    },
    // private_key_jwt assertions: iat required, short-lived (oidc-provider already refuses replays).
    assertJwtClientAuthClaimsAndHeader: boundedClientAssertions(config.clientAssertions.maxLifetime, CLOCK_TOLERANCE),
  };
}

/** How tokens live: refresh rotation, lifetimes, and what JWT access tokens carry. */
function tokens({ config, apis, signing }: ProviderDependencies): Configuration {
  return {
    // Every refresh token is single-use: a rotated one presented again (after the reuse grace)
    // revokes the grant. The request's resource is checked before the token is spent (see refresh-rotation.ts).
    // An app's RFC 7009 revocation of a person's access token ends its grant, as a refresh token's
    // does (patches/grant-before-token.ts). The engine's default policy keeps the grant there, and so
    // emitted no grant.revoked: the log line and latchkey_provider_events_total left such endings out.
    // Every other caller of the policy gets true by default already.
    revokeGrantPolicy: () => true,
    rotateRefreshToken: rotateRefreshTokenAfterChecks(async (resource, givenAt) => {
      const api = await apis.find(resource);
      return api !== undefined && !predates(api, givenAt);
    }),
    ttl: {
      // An API's own accessTokenTTL wins (oidc-provider's default does this; a number would not).
      // A client that authenticated with its rotated-out secret gets nothing that outlives the secret's grace.
      AccessToken: (ctx, token) => withinSecretGrace(ctx, token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken),
      ClientCredentials: (ctx, token) => withinSecretGrace(ctx, token.resourceServer?.accessTokenTTL ?? config.ttl.clientCredentials),
      AuthorizationCode: config.ttl.authorizationCode,
      IdToken: config.ttl.idToken,
      // A browser app's rotated token keeps its predecessor's remaining time, as the engine's default
      // does for an unbound single-page app (RFC 9700 §4.14.2: a thief refreshing a stolen token does
      // not extend the chain past its first token's lifetime): a public web client's, or a chain a
      // page began whatever the client calls itself, unbound or bound to a DPoP key at a refresh (a
      // thief can bind a stolen one to a key of their own: refresh-chain-marks.ts); every other
      // refresh token, a chain bound from its first token included, gets the whole ttl.
      RefreshToken: (ctx, token, client) => {
        const rotated = ctx?.oidc.entities.RotatedRefreshToken;
        const browser = client.clientAuthMethod === 'none' && (client.applicationType === 'web' || marked(rotated, HELD_IN_BROWSER));
        if (!rotated || !browser || (token.isSenderConstrained() && !marked(rotated, BOUND_LATE))) return config.ttl.refreshToken;
        // Counted from the new token's iat where it has one (issued-as-of-client-read.ts dates it a moment
        // back, to the client's read), so that it ends the very second its predecessor does.
        return typeof token.iat === 'number' && typeof rotated.exp === 'number' ? rotated.exp - token.iat : rotated.remainingTTL;
      },
      // From the last use, and never past ttl.sessionMax after the sign-in (an unchanged session is
      // then saved with the expiry it has: unchanged-sessions.ts writes nothing); one nobody signed
      // in to yet, as long as an interaction (lifetimes.ts says why).
      Session: (_ctx, session) => sessionLifetime(config.ttl, (session as { loginTs?: unknown }).loginTs),
      Interaction: config.ttl.interaction,
      DeviceCode: config.ttl.deviceCode,
      Grant: config.ttl.grant,
    },
    formats: {
      // Each opaque token's length says its model, so introspection and revocation read one key (store/adapter.ts).
      bitsOfOpaqueRandomness: (_ctx, token) => opaqueTokenBits(token.kind),
      customizers: {
        // Links each JWT access token to its grant, so revoking the grant revokes the token without
        // any bookkeeping at issuance (client_credentials tokens have no grant); a person's token
        // also says how and when they signed in (access-token-claims.ts).
        // The last step before the engine picks the key that signs it: a current key revoked
        // elsewhere is replaced first (patches/revoked-key-signing.ts says why; ID tokens there).
        jwt: async (ctx, token, jwt) => {
          if ('grantId' in token && token.grantId) Object.assign(jwt.payload, signInClaims(ctx), { [GRANT_CLAIM]: grantHandle(token.grantId) });
          await signing?.ready();
        },
      },
    },
  };
}

/** `ttl` seconds, or fewer: until the grace of the rotated-out secret the request's client used ends (patches/previous-secrets.ts). */
function withinSecretGrace(ctx: KoaContextWithOIDC | undefined, ttl: number): number {
  const graceEnd = ctx && previousSecretGraceEnd(ctx);
  return graceEnd === undefined ? ttl : Math.max(1, Math.min(ttl, graceEnd - epochSeconds()));
}

/**
 * The engine's findAccount: the person behind a session (no `token`) or behind a code, device code,
 * refresh or access token, or undefined when the person, or that token of theirs, has ended.
 */
function accountFinder({ config, accounts, federated, revocations }: ProviderDependencies): FindAccount {
  return async (ctx, sub, token) => {
    // At the authorization endpoint the session's recheck has just read the account (accounts/sessions.ts).
    // With the account: whether the token's client had every grant it holds revoked since (a cached read; else in the same round trip).
    const { clientId, ...dated } = (token ?? {}) as { iat?: unknown; clientId?: unknown; kind?: unknown; grantedAt?: unknown; requestedAt?: unknown };
    // When it was issued, on the store's clock as every cutoff below: a code's and a device code's
    // `iat` is the engine's, on the machine clock of the instance that made it (a device code's, the
    // device's request), so one issued at an instance whose clock ran some seconds ahead just before
    // the person was disabled and enabled again counted as after it, and gave tokens where the
    // revocation of its grant had failed half-way (twenty-seventh endings pass). A code's `grantedAt`
    // (patches/grant-given-at.ts, its issue) and a device code's `requestedAt` (the device's request,
    // patches/device-fresh-login.ts) are on the store's clock. The device's request, not its
    // approval: a device flow begun before an ending is refused however late it is approved (the
    // twenty-second granting pass's "refuses more, never less": a device code phished before an
    // operator's revocation and approved after it gives nothing). Refresh and access tokens are
    // issued on the store's clock already (patches/issued-as-of-client-read.ts).
    const onStore = dated.kind === 'AuthorizationCode' ? dated.grantedAt : dated.kind === 'DeviceCode' ? dated.requestedAt : undefined;
    const iat = typeof onStore === 'number' ? onStore : dated.iat;
    // An access token (userinfo) is refused as introspection refuses it: on the revocation list (its
    // client's scope narrowed since, even if put back: the feed's `delegated` entry says so too), or
    // holding a scope its client may no longer request (an operator took `openid` from it).
    const accessToken = dated.kind === 'AccessToken' && typeof clientId === 'string' ? (token as { scope?: unknown; aud?: unknown }) : undefined;
    const [account, delegationEnded, accessEnded] = await Promise.all([
      accountCheckedFor(ctx, sub) ?? accounts.find(sub),
      // (An access token's: the list's read below, which covers it.)
      token && !accessToken ? revocations.delegatedEnded(clientId, iat) : false,
      accessToken ? opaqueRevoked(revocations, { clientId, accountId: sub, iat, aud: accessToken.aud, scope: accessToken.scope, clientCredentials: false }) : false,
    ]);
    if (!account || account.disabled || accessEnded) return undefined;
    if (accessToken && ctx.oidc.client?.clientId === clientId && scopesBeyond(ctx.oidc.client, String(accessToken.scope ?? '').split(' ').filter(Boolean)).length) return undefined;
    // The grant loadExistingGrant then makes from a remembered consent is checked with this read.
    if (!token) accountReadByEngine(ctx, account);
    // A code, device code, refresh token or access token (userinfo) issued before everything of the
    // person ended (disabled, or a password set by an operator: accounts.ts endedAt), or before
    // every grant of its client was revoked (`grants revoke --client`), is void, even if the
    // revocation of its grant did not happen: read with the account, so it costs no round trip.
    // So is one issued before the person withdrew its client's access (clientGrantsEndedAt), in the same read.
    if (token && (delegationEnded || endedWithPerson(account, iat, 'token', clientId))) return undefined;
    // And one issued to a client deleted since, whose id was given again (the client of the request,
    // as loaded: its creation time, registration/clients.ts add).
    const client = ctx.oidc.client;
    if (token && client?.clientId === clientId && predatesClient(client?.clientIdIssuedAt, iat)) return undefined;
    const claims = accountClaims(ctx, config.idToken.scopeClaims, { ...claimsFor(account) } as AccountClaims);
    // The upstream of the sign-in the token came from (amr "fed"), kept with it (signed-in-through.ts).
    const idp = await upstreamOf(federated, token as Parameters<typeof upstreamOf>[1]);
    if (!idp) return { accountId: account.sub, claims };
    return { accountId: account.sub, claims: async (use, scope, requested) => ({ ...(await claims(use, scope, requested)), ...(use === 'id_token' && { idp }) }) };
  };
}

/** Scopes and claims, the people behind them, consent and the sign-in pages. */
function accountsAndConsent({ config, kv, accounts, consents }: ProviderDependencies, policy: RegistrationPolicy, findAccount: FindAccount): Configuration {
  // offline_access with remembered consent needs no prompt=consent (patches/offline-access.ts);
  // a session weaker than the request needs signs in again (patches/step-up.ts); a request picked
  // up again is held to its client's registration now, and ends when the client was narrowed or
  // removed since it began (patches/current-registration.ts, clientEndings);
  // prompt=select_account lets a signed-in person choose (patches/select-account.ts); an
  // id_token_hint is held to whoever signs in when the sign-in resumes (patches/hinted-subject.ts);
  // a login_hint naming someone else than the session's person asks for the login page (patches/hinted-login.ts).
  // A public client's request to a loopback redirect URI asks for consent every time, as a native app's (patches/loopback-public-clients.ts).
  // A silent request from a frame of another site's page, which never carries the session cookie, is told so (patches/cross-site-frames.ts).
  // Last, over the login checks comparing the person with someone named: a silent request of an app the person allowed nothing is answered by consent (patches/silent-strangers.ts).
  const interactionSteps = silentStrangersAskedConsent(
    withSelectAccount(
      withHintedLogin(
        withHintedSubject(withDeviceFreshLogin(withCurrentRegistration(withStepUp(loopbackPublicClientsAsked(withCrossSiteFrames(consentOnlyIfNeeded())), config.accounts.mfa.required), policy.scopes, (clientId) => clientNarrowedAt(kv, clientId), config.pkce.required))),
        (sub) => accounts.find(sub),
      ),
    ),
  );
  return {
    // Configured resource servers' scopes too: oidc-provider accepts in a client's `scope` metadata
    // only scopes listed here, and that metadata is what bounds a person's delegation to a client.
    scopes: policy.scopes,
    // How and when the person signed in (acr, amr, auth_time: accounts/assurance.ts) is in every ID
    // token, not only when the app asks for it; `amr` is ["fed"] through an upstream provider, and
    // `idp` names the upstream provider that signed the session in (ID tokens of such sessions only).
    claims: { ...Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])), openid: [...OPENID_CLAIMS] },
    // ID tokens carry the granted scopes' claims; clients that want only `sub` say so (id-token-claims.ts).
    conformIdTokenClaims: false,
    loadExistingGrant: (ctx) => consents.loadExistingGrant(ctx),
    // Where resource servers learn about revocations of JWTs they verify locally.
    // client_id_metadata_document_supported: MCP clients look for it (registration/client-metadata-documents.ts).
    // par.required is enforced per client (registration/policy.ts applyRequirements), so discovery
    // says it here rather than through the engine's global switch, which would lock out our own pages.
    // RFC 8414 §2: without *_endpoint_auth_methods_supported, introspection and revocation would
    // claim client_secret_basic only. Revocation takes every method the token endpoint does (a public
    // client revokes its own tokens: RFC 7009 §5); introspection those that authenticate (RFC 7662
    // §2.1: a public client is answered {"active": false}, resource-servers.ts mayIntrospect).
    discovery: {
      ...Object.fromEntries(
        (['introspection', 'revocation'] as const).flatMap((endpoint) => [
          [`${endpoint}_endpoint_auth_methods_supported`, endpoint === 'introspection' ? CLIENT_AUTH_METHODS.filter((method) => method !== 'none') : CLIENT_AUTH_METHODS],
          [`${endpoint}_endpoint_auth_signing_alg_values_supported`, CLIENT_AUTH_ALGORITHMS],
        ]),
      ),
      revocation_feed_endpoint: `${config.issuer}${FEED_PATH}`,
      // The prompt values the engine accepts (OpenID Connect Prompt Create §4.1), select_account among them.
      prompt_values_supported: promptValues(interactionSteps),
      ...(config.clientMetadataDocuments.enabled && { client_id_metadata_document_supported: true }),
      ...(config.par.required && { require_pushed_authorization_requests: true }),
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: interactionSteps,
    },
    // The levels a sign-in reaches (accounts/assurance.ts): advertised, and the ID token's acr.
    acrValues: [...ACR_VALUES],
    // `upstream`: send the person straight to that upstream provider (interactions/upstream.ts).
    extraParams: [CONSENT_IF_NEEDED, OFFLINE_IF_GRANTED, REDIRECT_URI_OMITTED, 'upstream'],
    findAccount,
  };
}

function features({ config, apis, revocations, accounts, logoutPages, devicePages }: ProviderDependencies, findAccount: FindAccount): Configuration {
  const { notConnectedSource, ...devicePageHooks } = devicePages;
  return {
    // Every feature of oidc-provider is named here, on or off, so that a library upgrade that turns a
    // default on changes nothing (docs/protocol.md, "What it speaks", lists what is offered).
    features: {
      devInteractions: { enabled: false },
      // Offered: PAR (RFC 9126; required of clients registered with require_pushed_authorization_requests,
      // and with par.required of every client but our own pages: see registration/policy.ts),
      // DPoP (RFC 9449; dpop_bound_access_tokens makes it required of a client), userinfo (OIDC Core §5.3),
      // the device authorization grant (RFC 8628) for native clients registered with it (registration/policy.ts).
      pushedAuthorizationRequests: {
        enabled: true,
        requirePushedAuthorizationRequests: false,
        allowUnregisteredRedirectUris: false,
      },
      // Server nonces (§8) from a secret every instance derives alike (keyring/dpop-nonces.ts), so a
      // nonce from one instance or worker is good at all; required in every proof with dpop.requireNonce.
      // A proof's jti is single-use within its window (the engine's replay store, in Redis).
      dPoP: {
        enabled: true,
        nonceSecret: dpopNonceSecret(config.keys.secrets),
        requireNonce: () => config.dpop.requireNonce,
        allowReplay: false,
      },
      userinfo: { enabled: true },
      // Userinfo as a signed JWT (RS256) for clients registered with userinfo_signed_response_alg
      // (OIDC Core §5.3.2; the OpenID Foundation's dynamic plan checks it: oidcc-userinfo-rs256).
      jwtUserinfo: { enabled: true },
      // Not offered. Request objects (JAR): PAR carries the same parameters without client-signed
      // JWTs; the rest are profiles and extensions Latchkey does not implement or test.
      requestObjects: { enabled: false },
      rpMetadataChoices: { enabled: false },
      richAuthorizationRequests: { enabled: false },
      jwtResponseModes: { enabled: false },
      jwtIntrospection: { enabled: false },
      encryption: { enabled: false },
      webMessageResponseMode: { enabled: false },
      deviceFlow: {
        enabled: true,
        // RFC 8628 §6.1: 20 consonants (no vowels, so no words; no 0/O or 1/I), 8 of them:
        // 20^8 ≈ 2^34.6 codes, against wrong entries throttled per address and per code (patches/user-code-entry.ts).
        charset: USER_CODE_CHARSET,
        mask: USER_CODE_MASK,
        ...devicePageHooks,
        // The approval is saved on the device code; one its poll refuses (the request began before
        // the person's access to its client ended: a withdrawal, `grants revoke` while the person
        // stood at the confirmation) is dropped and the page says so, not "Device connected".
        successSource: async (ctx) => {
          const code = ctx.oidc.deviceCode!;
          if (code.accountId !== undefined && (await findAccount(ctx, code.accountId, code))) return devicePageHooks.successSource(ctx);
          await code.destroy();
          return notConnectedSource(ctx);
        },
      },
      ciba: { enabled: false },
      mTLS: { enabled: false },
      fapi: { enabled: false },
      attestClientAuth: { enabled: false },
      // Client ID Metadata Documents are Latchkey's own (patches/client-metadata-documents.ts): cached in the store, shared.
      clientIdMetadataDocument: { enabled: false },
      // The key ring's keys sign through node:crypto (keyring/signing-keys.ts SigningKey).
      externalSigningSupport: { enabled: true, ack: 'experimental-01' },
      openid4vci: { enabled: false },
      clientCredentials: { enabled: true },
      // A claim request of the wrong type is invalid_request (claims-requests.ts).
      claimsParameter: { enabled: true, assertClaimsParameter: assertClaimsRequests },
      introspection: {
        enabled: true,
        // RFC 7662 §4: a client learns only about its own tokens and those meant for an API it serves
        // as by an operator's grant; for any other token the answer is {"active": false}.
        // A token on the revocation list (its client deleted, its API removed, its client's operator
        // grant narrowed: revocation/opaque-introspection.ts) is not introspectable either; both are
        // read in one round trip. Nor one of a client whose metadata document is gone, nor a person's
        // token holding a scope an operator took from its client since (resource-servers.ts heldByClientNow),
        // nor a token for an API that no longer offers a scope it carries (heldByApiNow).
        allowedPolicy: async (ctx, caller, token) => {
          const { clientId, accountId, aud, scope, kind, iat, acr } = token as unknown as { clientId?: string; accountId?: string; aud?: unknown; scope?: string; kind: string; iat?: number; acr?: unknown };
          const clientCredentials = kind === 'ClientCredentials';
          const [allowed, deleted, resolves, held, personEnded, offered] = await Promise.all([
            mayIntrospect(apis, caller, { clientId, aud, scope, clientCredentials }),
            // A refresh token is narrowed with its client, not ended (refresh-rotation.ts), nor ended by a
            // requirement raised (opaque-introspection.ts): what its refresh is weighed by, below.
            opaqueRevoked(revocations, { clientId, accountId, iat, aud, scope, clientCredentials, refreshToken: kind === 'RefreshToken' }),
            clientResolves(ctx.oidc.provider, clientId, config.outbound.allowPrivateNetworks),
            // A refresh token is held to what a refresh of it is (narrowed, not refused, for a scope taken
            // away): offline access (offline_access and the refresh_token grant) and the sign-in level
            // its client requires (patches/step-up.ts).
            kind === 'AccessToken' || kind === 'RefreshToken'
              ? heldByClientNow(ctx.oidc.provider, caller, { clientId, scope, clientCredentials, iat, ...(kind === 'RefreshToken' && { refresh: { acr, mfaEverywhere: config.accounts.mfa.required } }) })
              : true,
            // A refresh token outlives the person's list entry: held to the account's cutoff, as a refresh is (findAccount).
            kind === 'RefreshToken' && accountId ? accounts.find(accountId).then((account) => !account || account.disabled || endedWithPerson(account, iat, 'token', clientId)) : false,
            // An access token for an API that no longer offers a scope it carries (or is no longer configured).
            kind === 'AccessToken' || clientCredentials ? heldByApiNow(apis, { aud, scope }) : true,
          ]);
          return allowed && !deleted && resolves && held && !personEnded && offered;
        },
      },
      revocation: {
        enabled: true,
        // RFC 7009 §2.1: a client revokes only its own tokens. For a confidential client asking for
        // another's that is an error; a public client is not told whether the token exists. (The
        // store deletes a client's own client_credentials token as it finds it here: store/adapter.ts read.)
        allowedPolicy: async (_ctx, caller, token) => {
          if (token.clientId === caller.clientId) return true;
          if (caller.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      // RFC 7591 / RFC 7592. Without open registration, an initial access token is required.
      registration: { enabled: true, initialAccessToken: !config.registration.open, issueRegistrationAccessToken: true, idFactory: registeredClientId },
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
      // `require_mfa`: its people must use a second factor (patches/step-up.ts).
      properties: ['owner', ID_TOKEN_CLAIMS_PROPERTY, REQUIRE_MFA_PROPERTY],
      // Called once per client validation for each extra property, on every path that creates or
      // loads a client: at `owner`, the place to enforce the registration policy on all of it.
      validator(ctx, key, owner, metadata) {
        if (key === ID_TOKEN_CLAIMS_PROPERTY) return validateIdTokenClaimsSetting(owner);
        if (key === REQUIRE_MFA_PROPERTY) return validateRequireMfa(owner);
        const route = (ctx as KoaContextWithOIDC | undefined)?.oidc?.route;
        const selfService = route === 'registration' || route === 'client_update';
        const existingOwner = (ctx as KoaContextWithOIDC | undefined)?.oidc?.client?.metadata().owner;
        if (selfService && owner !== undefined && owner !== existingOwner) {
          throw new errors.InvalidClientMetadata('owner is set by Latchkey, not in a registration request');
        }
        // A client being written is checked against the runtime APIs' scopes its writer read
        // (patches/api-scopes-in-metadata.ts); one being loaded was checked when it was written.
        const apiScopes = ctx === undefined ? ALREADY_CHECKED : (((ctx as { state?: Record<symbol, unknown> }).state?.[OFFERED_API_SCOPES] as string[] | undefined) ?? []);
        // What a client may not lift itself (patches/kept-requirements.ts), before the policy sees it.
        keepRequirements(ctx, metadata as Record<string, unknown>);
        // Nor put an operator's grant to use by its own change (patches/granted-client-credentials.ts).
        grantPutToUseRefused(ctx, metadata as Record<string, unknown>);
        enforcePolicy(policy, metadata as Record<string, unknown>, selfService, apiScopes);
        applyRequirements(policy, metadata as Record<string, unknown>);
        withoutUnusedSecret(metadata as Record<string, unknown>);
      },
    },
  };
}

function outbound(config: Config): Configuration {
  const guarded = createOutboundFetch(config.outbound);
  return {
    // What the engine fetches or posts to for a client (jwks_uri, backchannel_logout_uri, a
    // sector_identifier_uri stored before registration refused it) goes through the outbound guard:
    // a special-use address is refused before any connection (the engine's own dispatcher destroys
    // the socket only once it connected, so a client's metadata could still open connections to
    // loopback and private addresses), a redirect is not followed, and http only reaches loopback
    // when the operator allows private networks. The engine's timeout is kept, its dispatcher dropped.
    // A client's JWKS is fresh for a minute, whatever its host says (client-jwks-freshness.ts says why).
    fetch: keysFreshForAMinute((url, options) => {
      const init: RequestInit & { dispatcher?: unknown } = { ...options };
      delete init.dispatcher;
      delete init.redirect;
      return guarded(url instanceof Request ? url.url : url, init);
    }),
  };
}

/** The changes Latchkey makes to the instance itself: patches of its internals and middleware in front of its routes. */
function applyPatches(
  provider: Provider,
  { config, kv, verifier, accounts, apis, revocations, consents, rateLimits, federated, upstreamLogout, upstreamKnown, signing, keepLogoutRetry }: ProviderDependencies,
  policy: RegistrationPolicy,
): void {
  // A stored client's secret is compared by its digest (the store keeps no other); then, failing
  // that, a rotated-out one within its grace.
  clientSecretDigests(provider);
  acceptPreviousSecrets(provider, kv, config.registration.secretRotationGrace);
  // A client's keys read from its jwks_uri verify nothing once they are clientJwks.maxAge old: it is read again (see the patch).
  staleClientKeysVerifyNothing(provider, config.clientJwks.maxAge);
  // An API's scope is never an OpenID scope: a token for userinfo lists only the OpenID scopes (see the patch).
  openIdScopesOnly(provider, OIDC_SCOPES);
  // RFC 6750 §2.1: a token in the Authorization header outside its scheme's grammar is a malformed request, not an unknown token.
  bearerTokenGrammar(provider);
  // RFC 6750 §3: a registration or RFC 7592 request whose bearer token cannot be taken gets the Bearer challenge.
  registrationBearerChallenges(provider);
  // A native app's loopback port variance never lands on Latchkey's own origin (see the patch).
  ownOriginOnlyAsRegistered(provider, config.issuer, config.port);
  if (config.clientMetadataDocuments.enabled) {
    const outbound = createOutboundFetch(config.outbound);
    // A document read again that changed, or is gone, ends what the same write to a stored client would.
    const documents = new ClientMetadataDocuments(config.clientMetadataDocuments, outbound, new ClientMetadataDocumentCache(kv, acceptedDocumentsKept(config)), policy, apis, clientEndings({ config, kv, apis, revocations, consents }));
    resolveClientMetadataDocuments(provider, documents, config.outbound.allowPrivateNetworks);
  }
  // The middleware in front of the engine's router, in this order; each declares the paths or routes
  // it concerns (http/layers.ts), and a request meets only those of its path (installed below).
  const layers: Middleware[] = [];
  // RFC 6749 §4.1.2.1, §5.2: every error_description within its characters, whatever a layer below or
  // the engine wrote (outermost, unscoped; the authorization endpoint's redirects through its response modes).
  layers.push(errorDescriptionsInOrder());
  authorizationErrorDescriptions(provider);
  // RFC 9110 §15.5.14, RFC 9126 §2.3: a body over what the engine reads is 413, before anything reads it.
  layers.push(oversizedBodies(provider.pathFor('registration')));
  chunkedBodiesTooLarge(provider);
  // RFC 8628: `interval` and `slow_down` (device-polling.ts); /device entry throttled and without script (user-code-entry.ts).
  layers.push(pacedDevicePolling(provider, new DevicePolling(kv, config.deviceFlow.pollInterval, config.ttl.deviceCode + CLOCK_TOLERANCE)));
  // ...and a device is told only a token endpoint's codes of how its flow ended (device-token-errors.ts).
  deviceTokenErrors(provider);
  // A code taken on at Continue may be taken on again in the same browser (device-approval-outage.ts): before the throttle wraps the lookup.
  deviceCodesInFlightPerBrowser(provider);
  // One live device code per user code (unique-user-codes.ts).
  layers.push(uniqueUserCodes(provider, USER_CODE_CHARSET, USER_CODE_MASK));
  layers.push(userCodeEntry(provider, new UserCodeThrottle(kv, config.deviceFlow)));
  onlyIdTokensAsHints(provider);
  // OIDC Core §12.2: a refreshed ID token carries no nonce.
  noNonceInRefreshedIdTokens(provider);
  // A refresh that narrows the scope narrows the claims asked by name with it (narrowed-refresh-claims.ts).
  narrowedRefreshClaims(provider);
  // Step-up holds at the token endpoint too: no refresh, code or device code from a sign-in weaker than the client requires.
  requireLevelAtTokenEndpoint(provider, config.accounts.mfa.required);
  // An essential acr asked is answered with one of its values: the highest the sign-in meets (see the patch).
  essentialAcrInIdTokens(provider);
  // A device's grant says mfa where its browser's session says phr: a user code is relayed as easily as a link (see the patch).
  deviceGrantsBelowPhr(provider);
  // A code or device code redeemed after its client was narrowed gets only what the client may have now,
  // and a code issued before the client was narrowed gets nothing, though it is as wide again now.
  boundCodesToCurrentRegistration(provider, config.pkce.required, (clientId) => clientNarrowedAt(kv, clientId));
  // RFC 6749 §4.1.3: a code whose authorization request named its redirect_uri is redeemed with it.
  codesNameRedirectUri(provider);
  // What a client got while confidential is redeemed only by it authenticating, however it became public.
  confidentialRedemption(provider);
  // ...and a public client's unbound refresh token is not bound to a new key once the client requires DPoP.
  unboundRefreshRefused(provider);
  // What a refresh chain remembers of its beginning (bound at a refresh, begun by a page), carried along it for ttl.RefreshToken.
  refreshChainMarks(provider);
  // An API removed and added again since the person allowed a code, device code or refresh token is not given by it: when they allowed it is kept.
  grantGivenAtKept(provider);
  deviceRequestsOnStoreClock(provider);
  // An ID token names the upstream its sign-in went through, not the one its session signed in through last.
  signedInThroughKept(provider, federated);
  // A code bound to a DPoP key (dpop_jkt) is not spent by a request without that key's proof.
  dpopBoundCodesBeforeSpending(provider);
  // A client assertion is taken once, also sent twice at the same moment (one set-if-absent)...
  jwtsOnce(provider, kv);
  // ...and a DPoP proof used before is refused as one (invalid_dpop_proof) at every endpoint, whichever client sent it, before it spends a code.
  dpopProofsOnce(provider, kv);
  refuseHintsOfRevokedKeys(provider, revocations);
  // Nothing is signed with a key revoked elsewhere: the ring is followed first (JWT access tokens: formats.customizers.jwt).
  if (signing) signWithUnrevokedKeys(provider, signing);
  // A token revoked with its grant goes after the grant's revocation: a failure between leaves it to present again.
  revokeGrantBeforeToken(provider);
  // A token the token endpoint issues is dated as of its request's read of the client: an ending that read did not see ends it.
  tokensIssuedAsOfClientRead(provider);
  // A sign-in is dated on the store's clock, the one its client's and its person's cutoffs are written on.
  interactionsOnStoreClock(provider);
  // So is a grant: the cutoffs it is compared with when it is taken up again are written on it too.
  grantsOnStoreClock(provider);
  // A sign-in resumes once: two resumes of one interaction at once get one code, not two.
  singleUseResume(provider);
  // A device approval the store fails leaves its code pending or approved whole, never dead.
  deviceApprovalOutages(provider);
  // A session's id renewed ends the old id once the new one landed, and not at all what an ending ended meanwhile (before the other Session#save patches).
  sessionRenewalsInOneStep(provider);
  // ...and only in the browser that started it: no cookie a sibling subdomain plants resumes it (https issuers).
  browserBoundResume(provider, config.issuer, config.ttl.interaction);
  // An RFC 7592 update rotates its registration access token once: two at once get one successor, not two.
  singleUseRegistrationToken(provider);
  // An RFC 7591 registration saves its registration access token before its client: a 503 made nothing.
  registrationTokenFirst(provider);
  limitAnnouncedClients(provider, rateLimits);
  // ctx.oidc through one getter shared by every request: the engine's closure per request kept each
  // request's context alive through young-generation collections (see shared-oidc-getter.ts).
  shareOidcGetter();
  // No provider.proxy here: koa-mount runs the provider with the app's own ctx, so the app's proxy
  // settings (createApp) decide ctx.ip and ctx.protocol, and the issuer decides every URL (app.ts).
  // Every path the engine is asked for, served or not (unscoped).
  layers.push(bareNotFound());
  // RFC 9110 §15.5.6, RFC 9126 §2.3: an endpoint asked with a method it does not take is 405 with Allow, not 404.
  const postedAsGet = [provider.pathFor('authorization'), provider.pathFor('end_session')];
  layers.push(methodNotAllowed(provider, postedAsGet));
  // ...and an endpoint's own path is its own: GET /device/auth is not the device resume (/device/:uid).
  const ownPaths = ownEndpointPaths(provider);
  if (ownPaths) layers.push(ownPaths);
  // OIDC Core §3.1.2.1 and RP-Initiated Logout §2: POST too, with SameSite=Lax cookies kept (see post-methods.ts).
  layers.push(postAsGet(postedAsGet));
  // A session whose person was disabled or deleted is ended before the engine reads it (see accounts/sessions.ts),
  // which then goes on with the session read there rather than reading it again.
  const accountSessions = new AccountSessions(kv, { current: provider }, accounts);
  layers.push(accountSessions.recheckAtAuthorization(provider));
  // A session ends ttl.sessionMax after its sign-in, however often it is used (read through by sessionLoadedOnce).
  endSessionsAtMax(provider, config.ttl.sessionMax);
  // ...and one idle longer than ttl.session as configured now ends, whatever it was saved under (before
  // extendUnchangedSessionsInSteps below, so that only a save that writes stamps its last use).
  sessionsIdleAsConfigured(provider, config.ttl.session);
  // A sign-in through an upstream's earlier session says the upstream's auth_time, and max_age reads it (see the patch).
  authTimeOfFirstFactor(provider);
  sessionLoadedOnce(provider);
  // An access token bound to its session (no offline_access) ends no later than the session: a JWT is
  // verified by its API alone, and a session's expiry goes on no revocation list (see the patch).
  accessTokensWithinSessions(provider, config.ttl.sessionMax);
  // ...and none past the end of its grant (ttl.Grant), which no revocation marks either.
  accessTokensWithinGrants(provider);
  // What is stored ends at its exp, without the tolerance meant for other clocks (before the next: it wraps this).
  exactExpiry(provider);
  // A grant, refresh token, code, device code or interaction saved under a longer lifetime than is configured now ends at the new one.
  lifetimesAsConfigured(provider, { Grant: config.ttl.grant, RefreshToken: config.ttl.refreshToken, AuthorizationCode: config.ttl.authorizationCode, DeviceCode: config.ttl.deviceCode, Interaction: config.ttl.interaction });
  // ...and so does an opaque access token, by its API's lifetime or the default for its kind as configured now.
  const lifetimeNow = accessTokenLifetimes(apis, config.ttl);
  accessTokensAsConfigured(provider, lifetimeNow);
  // An unchanged session's expiry moves on once a minute (at most 1% of its lifetime), not at every request.
  extendUnchangedSessionsInSteps(provider, Math.min(60, Math.floor(config.ttl.session / 100)));
  // An app the session was only asked about (prompt=none, a declined consent) is not one of its apps (see the patch).
  appsOnlyBySignIn(provider);
  // Which credentials signed each session in, so that removing one ends them (see accounts/session-credentials.ts).
  // A session signed in with a credential removed during its own resume ends with every grant it made.
  const grants = new GrantRevocation(kv, revocations);
  // A grant the session stops naming for an app (another tab's consent made another) ends as a sign-out ends it (see the patch).
  endReplacedSessionGrants(provider, grants);
  // A logout token the app's endpoint did not take (no answer, 5xx) is kept to send again (see the patch),
  // innermost: the ending below calls through it.
  if (keepLogoutRetry) retryBackchannelLogouts(provider, keepLogoutRetry);
  // A confirmed sign-out revokes its grants and ends the session before it posts the first logout token (see the patch).
  endBeforeTelling(provider, grants);
  const endSession = async (uid: string) => {
    const session = await provider.Session.findByUid(uid);
    if (session) await accountSessions.endWithEveryGrant(session, (grantId) => grants.revoke(grantId));
  };
  const accountNow = accountNowOf(accounts);
  // The interaction, the account and the remembered consent the resume reads next are read with its credential check.
  const signInReads = (request: object, sub: string, clientId: string | undefined, uid: string) => {
    const dropInteraction = readInteractionAhead(kv, uid, request, clientId);
    accounts.readAhead(sub, request);
    if (clientId) consents.readAhead(sub, clientId, request);
    return dropInteraction;
  };
  const sessionCredentials = new SessionCredentials(kv, sessionRecordsLifetime(config.ttl), credentialsHeld(new CredentialRecords(kv), new UpstreamLinks(kv, accounts), upstreamKnown, accountNow, (word) => federated.loggedOutSince(word)));
  // ...and which signed in the session a grant was made or extended in, kept as long as the grant:
  // removing a credential revokes the grants made with it, their session gone or not (in front of
  // recordAtSignIn, so that a resume's own sign-in is recorded for the session first).
  layers.push(sessionCredentials.recordGrantsInSessions(provider));
  layers.push(sessionCredentials.recordAtSignIn(provider, endSession, signInReads));
  // A sign-in through an upstream records which upstream signed the session in (upstreams/sessions.ts).
  layers.push(recordFederatedSessions([provider.pathFor('authorization'), provider.pathFor('code_verification')], federated));
  // ...and signing out of Latchkey everywhere goes on to the upstream's end_session_endpoint (see the patch).
  layers.push(upstreamEndSession((uid, destination) => upstreamLogout.redirectFor(uid, destination)));
  // A sign-out confirmed goes back only where its client, as registered now, allows.
  layers.push(postLogoutToCurrentRegistration(provider, config.issuer));
  layers.push(offlineAccessPrompt(provider.pathFor('authorization')));
  // RFC 9110 §11.4, RFC 6750 §2.1: `Bearer   token` is as good as `Bearer token` (see the patch).
  layers.push(foldAuthorizationSpaces(provider.pathFor('registration')));
  // RFC 6750 §3.1: `Basic …` at userinfo or a client's configuration endpoint is no token: 401, no error code (see the patch).
  layers.push(otherSchemesUnauthenticated(provider.pathFor('registration')));
  // An API's access token at userinfo, or a DPoP-bound one sent as Bearer: the description says whose token it is, and which one userinfo takes or how (see the patch).
  layers.push(
    userinfoApiTokens({
      issuer: config.issuer,
      keys: verifier,
      clockTolerance: CLOCK_TOLERANCE,
      clientCredentials: async (token) => (await provider.ClientCredentials.find(token)) as { aud?: string | string[] } | undefined,
      dpopBound: async (token) => Boolean(((await provider.AccessToken.find(token)) as { jkt?: string } | undefined)?.jkt),
    }),
  );
  // A registration without an initial access token: the description says which token, and where one comes from (see the patch).
  layers.push(registrationTokenNeeded(config.issuer));
  layers.push(clientAuthenticationRequired(config.issuer));
  // An unsupported grant_type a slip of an offered one names it; password and implicit say why not (see the patch).
  layers.push(grantTypeHints(GRANT_TYPES));
  // Runtime APIs' scopes in `scope` metadata, checked where dynamic registration writes a client.
  layers.push(apiScopesInMetadata(provider, apis));
  // Whether the client an RFC 7592 update names holds an operator grant, for its validation.
  layers.push(operatorGrantsOnUpdate(provider, apis));
  // A request none of whose scopes is known is invalid_scope at once, as one without scope is (see the patch).
  knownScopes(provider, { statics: new Set(policy.scopes), apiScopes: async () => (await apis.list()).flatMap((api) => api.scopes) });
  // RFC 6749 §5.2, §4.1.2.1: unauthorized_client for a grant or response type the client is not registered for.
  layers.push(unauthorizedClientAnswers(provider));
  if (!config.registration.open) layers.push(singleUseInitialAccessTokens(provider, kv, config.issuer, config.redis.commandTimeout));
  layers.push(jsonRevocationAnswer());
  // RFC 9068 §2.2: a client's own opaque token is introspected with the client as its sub, as its JWT form (see the patch).
  layers.push(introspectedClientSubject());
  // RFC 6749 §5.1: Pragma: no-cache beside Cache-Control: no-store; RFC 9126 §2.1: request_uri is not pushed (see the patches).
  layers.push(pragmaNoCache(provider.pathFor('registration')));
  layers.push(requestUriNotPushed());
  // JWT access tokens at introspection and revocation: answered in the engine's steps (see the patch).
  answerJwtAccessTokens(provider, {
    issuer: config.issuer,
    keys: verifier,
    list: revocations,
    clockTolerance: CLOCK_TOLERANCE,
    mayIntrospect: async (caller, claims) => {
      const token = {
        clientId: claims.client_id,
        aud: claims.aud,
        scope: claims.scope,
        iat: claims.iat,
        clientCredentials: ownToken(claims),
      };
      const [allowed, held, offered] = await Promise.all([mayIntrospect(apis, caller, token), heldByClientNow(provider, caller, token), heldByApiNow(apis, token)]);
      return allowed && held && offered && clientResolves(provider, claims.client_id, config.outbound.allowPrivateNetworks);
    },
    // Its lifetime as configured now: the API's own, else people's or clients' own default (as opaque ones: accessTokensAsConfigured).
    lifetime: (claims) => lifetimeNow(ownToken(claims) ? 'ClientCredentials' : 'AccessToken', claims.aud),
    // The person's grants to the token's client, one of which its gid names (a hash of the id).
    grantOf: async (claims) => {
      const gid = claims[GRANT_CLAIM];
      if (typeof claims.sub !== 'string' || typeof gid !== 'string') return undefined;
      return (await grants.ofAccount(claims.sub)).find((summary) => summary.clientId === claims.client_id && grantHandle(summary.grantId) === gid)?.grantId;
    },
  });
  // Innermost: a token request's consumption and new records go out together (see the patch), and
  // an authorization request's records with where its session was last seen (accounts/session-activity.ts).
  const activity = new SessionActivity(kv, config.ttl.session);
  // Every request the engine serves may have writes held back (unscoped).
  // ...and a resume's sign-in with them (its credential checked again after, by recordAtSignIn).
  layers.push(settleDeferredConsumption(provider, rateLimits, [activity.recordAtAuthorization(provider), sessionCredentials.recordAlongside(provider)]));
  useLayers(provider, layers);
}

/**
 * Builds a provider for a key ring. Called again with each new ring (see host.ts): everything here
 * must be cheap and free of side effects beyond the instance it returns.
 */
export function createProvider(deps: ProviderDependencies): Provider {
  const policy = registrationPolicy(deps.config);
  const findAccount = accountFinder(deps);
  const configuration: Configuration = {
    ...storage(deps),
    ...protocol(deps),
    ...tokens(deps),
    ...accountsAndConsent(deps, policy, findAccount),
    ...features(deps, findAccount),
    ...clientMetadata(policy),
    renderError: deps.renderError,
    ...outbound(deps.config),
  };
  // The engine's CORS steps look for Access-Control-* headers without copying every header (see the
  // patch): given to its router as the provider is built, so installed before.
  cheaperCorsHeaderScan();
  const provider = new Provider(deps.config.issuer, configuration);
  applyPatches(provider, deps, policy);
  return provider;
}

export type { KoaContextWithOIDC };
export { errors };
