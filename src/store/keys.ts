/**
 * Every storage key name, in one place (DESIGN.md: nothing outside src/store/ spells one): one
 * builder per kind of record, and the prefixes that in-process caches (Kv.cachedReads) and
 * Kv.getVia read by. The bytes of every key are those of the releases before: existing
 * deployments' data is found under them (test/unit/store-keys.test.ts pins each builder's output).
 *
 * Hash tags (`{...}`) put keys in one Redis Cluster slot where one command spans them: the
 * revocation list's keys share `{rv}` (Kv.raiseMarkAndLog writes a mark and the feed together); a
 * person's session index is tagged by its account id. Every other key stands alone in its slot.
 * Imports nothing from src/, so that any folder may use it.
 */
import { createHash } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest('base64url');

// ---- oidc-provider's records (store/adapter.ts; the layout is described there) ----

/** A record of an oidc-provider model, by its id or, for a bearer value's model, its digest (`sha256:…`). */
export const oidcRecordKey = (model: string, ref: string) => `oidc:${model}:${ref}`;
/** A Session's record key but its digest: what oidcSessionUidKey holds follows it. */
export const OIDC_SESSION_PREFIX = 'oidc:Session:';
/** Set of the record keys issued under a grant (revokeByGrantId). */
export const oidcGrantKey = (grantId: string) => `oidc:grant:${grantId}`;
/** A session's uid → its session id's digest. */
export const oidcSessionUidKey = (uid: string) => `oidc:uid:${uid}`;
/** A device flow user code → its device code's digest. */
export const oidcUserCodeKey = (userCode: string) => `oidc:usercode:${userCode}`;
/** Set of a person's grant ids. */
export const oidcAccountGrantsKey = (accountId: string) => `oidc:grants:account:${accountId}`;
/** Set of a client's grant ids. */
export const oidcClientGrantsKey = (clientId: string) => `oidc:grants:client:${clientId}`;
/**
 * The two sets above as expiring sets (Kv.addExpiring: each grant id scored by its record's end,
 * ended ones dropped at each add), since the store-growth pass: the plain sets, whose TTL each
 * grant renewed, never lost a grant that expired, so a client in use (every person's grant to it)
 * grew its set without end. The plain sets are only read (and deleted with the grants) now, until
 * they expire.
 */
export const oidcAccountGrantsEndsKey = (accountId: string) => `oidc:grants-ends:account:${accountId}`;
export const oidcClientGrantsEndsKey = (clientId: string) => `oidc:grants-ends:client:${clientId}`;
/** Set of the digests of a person's session ids; hash tag {<accountId>}. */
export const oidcAccountSessionsKey = (accountId: string) => `oidc:sessions:account:{${accountId}}`;
/**
 * The same index as an expiring set (Kv.addExpiring: each session's digest scored by its record's
 * end, moved later by every save of the session, ended ones dropped at each add), since the second
 * store-growth pass: the plain set above, whose TTL each sign-in renewed, kept every session that
 * expired, so a person signing in again and again (or whoever holds their password) grew it without
 * end. The plain set is only read (and taken from) now, until it expires. Hash tag {<accountId>}.
 */
export const oidcAccountSessionsEndsKey = (accountId: string) => `oidc:sessions-ends:account:{${accountId}}`;
/**
 * Sorted set of the digests of sessions that hold an app, by when each expires (epoch ms): what the
 * sweeper ends, telling the apps (provider/backchannel-delivery.ts); hash tag {bc}, with the retries.
 */
export const OIDC_SESSION_ENDS_KEY = 'backchannel:{bc}:session-ends';
/** Sorted set of back-channel logouts an app did not take, by when each is sent again (epoch ms); hash tag {bc}. */
export const BACKCHANNEL_RETRIES_KEY = 'backchannel:{bc}:retries';
/**
 * Sorted set of the endings a credential's removal owes (accounts/owed-endings.ts), by when the sweep
 * finishes one its request did not (epoch ms); hash tag {bc}, swept with the two above.
 */
export const OWED_ENDINGS_KEY = 'backchannel:{bc}:owed-endings';
/** The record keys of a client's registration access tokens, deleted with the client. */
export const oidcRegistrationTokensKey = (clientId: string) => `oidc:rat:client:${clientId}`;
/** The record keys of a client's device codes and pushed authorization requests, deleted with the client. */
export const oidcPendingKey = (clientId: string) => `oidc:pending:client:${clientId}`;
/**
 * The same index, each record key scored by when its record ends (Kv.addExpiring: ended ones are
 * dropped at each add), since the store-growth pass: oidcPendingKey, a plain set whose TTL each add
 * renewed, never lost a member, so a client asking again and again grew it without end. The plain
 * set is only read (and deleted with the client) now, until it expires.
 */
export const oidcPendingEndsKey = (clientId: string) => `oidc:pending-ends:client:${clientId}`;
/**
 * The epoch second (the store's clock) a client was last narrowed or removed, kept as long as a
 * sign-in begun before can live (ttl.interaction): a sign-in of the client begun at or before it
 * ends as it resumes (client-endings.ts clientEndings, patches/current-registration.ts).
 */
export const oidcClientNarrowedKey = (clientId: string) => `oidc:narrowed:client:${clientId}`;
/**
 * Written (with a short TTL) at each /readyz (http/health.ts): a Redis that answers PING but refuses
 * writes (OOM, NOREPLICAS, MISCONF, READONLY) is not ready, as every sign-in would fail there.
 */
export const READY_PROBE_KEY = 'ready-probe';
/** Set of stored client ids, durable. */
export const OIDC_CLIENTS_KEY = 'oidc:clients';
/**
 * The configuration's clients (CLIENTS) as the last instance started with them saw them (JSON: each
 * client's metadata by id, its secret by digest), durable: what a start with another configuration
 * compares with (store/configured-clients.ts).
 */
export const CONFIGURED_CLIENTS_KEY = 'configured-clients';
/**
 * The configuration's APIs (resourceServers) as the last instance started with them saw them (JSON:
 * each API's scopes, operator grants and when it was added, by identifier), durable: what a start
 * with another configuration compares with (apis/apis.ts configurationChanged).
 */
export const CONFIGURED_APIS_KEY = 'configured-apis';
/**
 * Whether the last instance started required a second factor of everyone (accounts.mfa.required:
 * "true" or "false"), durable: a start that turns it on ends what people's password-only sign-ins
 * hold from before (store/mfa-everywhere.ts).
 */
export const MFA_EVERYWHERE_KEY = 'mfa-everywhere';
/**
 * Epoch seconds an instance that does not require a second factor of everyone last said it runs
 * (every minute, with its lifetimes), kept as long as a password-only access token it issued then may
 * live: an instance started with the requirement ends what such an instance issued since the last
 * ending (store/mfa-everywhere.ts).
 */
export const MFA_NOT_REQUIRED_KEY = 'mfa-everywhere:not-required-at';
/** Set of the digests of outstanding initial access tokens. */
export const OIDC_INITIAL_ACCESS_TOKENS_KEY = 'oidc:initial-access-tokens';
/** A client's metadata document fetched (by its URL's SHA-256), until it must be fetched again. */
export const clientMetadataDocumentKey = (url: string) => `client-metadata-document:${digest(url)}`;
/**
 * The metadata of the last metadata document accepted at a URL (by its SHA-256), until a definite 404
 * or 410, or for as long as anything issued under it may live: the next accepted one is compared with
 * it, so a change ends what the same change written to a stored client ends
 * (registration/client-metadata-documents.ts).
 */
export const clientMetadataDocumentAcceptedKey = (url: string) => `client-metadata-document-accepted:${digest(url)}`;
/**
 * The URLs whose metadata is kept accepted (clientMetadataDocumentAcceptedKey), so that switching the
 * feature off can end their clients: the previous release's index, a plain set whose TTL each add
 * renewed, so that it never lost a member. Only read (and taken from) now, until it expires.
 */
export const CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY = 'client-metadata-documents-accepted';
/** The same index, each URL scored by when its accepted metadata ends (Kv.addExpiring: ended ones are dropped at each add). */
export const CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY = 'client-metadata-documents-accepted-ends';
/** Prefix of one tracked cache's heartbeat sentinels (`tracked-cache:<instance>:<n>`), each kept a few seconds. */
export const trackedCacheBeatsPrefix = (instance: string) => `tracked-cache:${instance}:`;

/**
 * What the servers on this store announce (JSON: their issuer), written at start and every minute,
 * kept a little longer: a CLI acting on the store from elsewhere, without the servers' ISSUER,
 * names their addresses by it (store/control.ts announceIssuer, openTarget).
 */
export const SERVERS_ANNOUNCED_KEY = 'servers:announced';

// ---- accounts/ ----

/** Prefix of people's accounts (Kv.getVia reads an account by its username index through it). */
export const ACCOUNT_PREFIX = 'account:';
/** A person's account (JSON), durable. */
export const accountKey = (sub: string) => `${ACCOUNT_PREFIX}${sub}`;
/** A username form (enforced, or pre-PRECIS) → the sub that holds it, durable. */
export const usernameKey = (form: string) => `account:name:${form}`;
/** A username's lookalike skeleton → the sub that holds it, durable. */
export const usernameSkeletonKey = (skeleton: string) => `account:skeleton:${skeleton}`;
/**
 * A username's lookalike skeleton being reserved by a make in progress (its holder's token), with a
 * TTL (accounts.ts #reserving): a skeleton held by an account no name finds, while this is not held
 * by another, is a make cut off half-way.
 */
export const usernameMakingKey = (skeleton: string) => `account:making:${skeleton}`;
/** Set of every account's sub, durable. */
export const ACCOUNTS_KEY = 'accounts';
/** Set once every account made before skeletons existed has its skeleton indexed. */
export const SKELETONS_INDEXED_KEY = 'accounts:skeletons';
/** An upstream identity (upstream id, its sub) → its link to an account (JSON), durable. */
export const upstreamLinkKey = (upstream: string, upstreamSub: string) => `account:link:${upstream}:${upstreamSub}`;
/** Set of a person's upstream links (`<upstream>:<upstream sub>`), durable. */
export const accountLinksKey = (sub: string) => `account:links:${sub}`;
/** Set of the subs of people linked through an upstream, durable. */
export const linkedAccountsKey = (upstream: string) => `account:linked:${upstream}`;
/** Set (durable) once every link made before account:linked existed was added to it. */
export const LINKS_INDEXED_KEY = 'account:linked-indexed';
/**
 * Set of the subs of accounts whose email address looks like it (accounts.ts emailLook), by the
 * digest of that look, durable: findByEmail reads it rather than every account.
 */
export const emailLookKey = (look: string) => `account:email:${digest(look)}`;
/** Set (durable) once every account made before account:email existed was added to it. */
export const EMAILS_INDEXED_KEY = 'account:email-indexed';
/**
 * Held (seconds, store/kv.ts holding) while an account is given an email address, by the digest of
 * the address as apps and people compare it (accounts.ts emailLook): of two first sign-ins through
 * upstreams, or an operator's new person, with one address at the same moment, the second reads the
 * accounts after the first made its own.
 */
export const emailClaimKey = (look: string) => `account:email-claim:${digest(look)}`;
/**
 * Held (seconds, store/kv.ts holding) while one of a person's ways to sign in is removed (a link, a
 * passkey: accounts/ways-in.ts): of two removals at once, the second counts what is left after the first.
 */
export const waysInLockKey = (sub: string) => `account:ways-in:${sub}`;
/**
 * Held (seconds, store/kv.ts holding) while a first sign-in of an upstream identity bringing an address
 * its upstream does not vouch for makes its account (accounts/links.ts): the same identity's other tab
 * reads the accounts after the first linked its own. Only that identity's sign-ins take it.
 */
export const upstreamSignInKey = (upstream: string, upstreamSub: string) => `account:first-sign-in:${digest(`${upstream}:${upstreamSub}`)}`;

/** Prefix of people's second-factor records (Kv.getVia reads one with the account). */
export const SECOND_FACTORS_PREFIX = 'mfa:';
/** A person's second-factor credentials (JSON: passkeys, TOTP, recovery codes), durable. */
export const secondFactorsKey = (sub: string) => `${SECOND_FACTORS_PREFIX}${sub}`;
/** A sealed passkey challenge's use (its random part: a sign-in's or a registration's), while it could still open. */
export const usedPasskeyChallengeKey = (nonce: string) => `mfa:webauthn-challenge-used:${nonce}`;
/** A passkey credential id → the sub it is registered to, durable. */
export const passkeyOwnerKey = (credentialId: string) => `mfa:passkey-owner:${credentialId}`;
/** A TOTP secret being enrolled (sealed), per person and ceremony, until enrolment's end. */
export const totpPendingKey = (sub: string, ceremony: string) => `mfa:totp-pending:${sub}:${ceremony}`;
/** A TOTP time step used by a person, until it can no longer verify. */
export const usedTotpStepKey = (sub: string, step: number) => `mfa:totp-used:${sub}:${step}`;

/** Where a session was last seen (JSON), for a session lifetime. */
export const sessionSeenKey = (sessionUid: string) => `session-seen:${sessionUid}`;
/** A session's id being renewed (AccountSessions.renewId), for a few seconds: one renewal at a time. */
export const sessionRenewingKey = (sessionUid: string) => `session-renewing:${sessionUid}`;
/** A session id (its digest) renewIds renewed, for a minute: gone because of that, not of another renewal. */
export const sessionRenewedKey = (sessionIdDigest: string) => `session-renewed:${sessionIdDigest}`;
/** Set of the credentials that signed a session in (JSON each), for a session lifetime. */
export const sessionCredentialsKey = (sessionUid: string) => `session-credentials:${sessionUid}`;
/** Set of the credentials of the sessions that made or extended a grant, for the grant's lifetime. */
export const grantCredentialsKey = (grantId: string) => `grant-credentials:${grantId}`;
/** A session's credentials in the former layout (one merged JSON), read for one session lifetime. */
export const formerSessionCredentialKey = (sessionUid: string) => `session-credential:${sessionUid}`;

// ---- the rate limiters' counter families (the counters are ratelimit:<family>:<key>) ----

/** A rate limiter's counter (rate-limiter-flexible's name for it, which store/rate-limit.ts reads and writes too). */
export const rateLimitKey = (limiter: string, key: string) => `ratelimit:${limiter}:${key}`;
/** What rate-limiter-flexible is given as its keyPrefix for a counter family. */
export const rateLimitPrefix = (limiter: string) => `ratelimit:${limiter}`;
/** Failed sign-ins per username digest (`user`) or per address (`ip`), within the throttle's window. */
export const loginFailuresLimiter = (counter: 'user' | 'ip') => `login-${counter}`;
/** The sign-in pauses a counter reached within a day (each pause twice as long). */
export const loginPausesLimiter = (counter: 'user' | 'ip') => `login-${counter}-pauses`;
/** Wrong second-factor codes per username since its last completed sign-in (accounts/throttle.ts codeAttempt). */
export const LOGIN_CODE_FAILURES_LIMITER = 'login-user-codes';
/** Wrong device user codes per address. */
export const USER_CODE_IP_LIMITER = 'user-code-ip';
/** Wrong tries per device user code (its digest). */
export const USER_CODE_LIMITER = 'user-code';
/** A device code's polls within its interval (per device code digest). */
export const DEVICE_POLL_LIMITER = 'device-poll';
/** A device code's slow_down answers, for its lifetime. */
export const DEVICE_SLOW_DOWN_LIMITER = 'device-slow-down';
/** The HTTP limits' counter families: the per-address ones each per route (httpLimiter), the per-client one keyed by client id alone. */
export const HTTP_LIMITERS = { perIp: 'http-ip', registrationPerIp: 'http-registration-ip', perClient: 'http-client', metadataPerIp: 'http-metadata-ip' } as const;
/** An HTTP limit's counter family on one route (the counter's key is then the address or client alone). */
export const httpLimiter = (family: string, route: string) => `${family}:${route}`;

// ---- http/ ----

/** A DPoP proof's jti (as resource-server/dpop.ts names it), while the proof could be replayed. */
export const dpopProofKey = (proof: string) => `dpop-proof:${proof}`;

// ---- keyring/ ----

/** The key ring (sealed private keys, dates), durable. */
export const KEYRING_KEY = 'keyring';
/** The lock one instance holds while it changes the key ring, for a few seconds. */
export const KEYRING_LOCK_KEY = 'keyring:lock';

// ---- apis/ ----

/** Prefix of stored APIs (the tracked cache follows it). */
export const API_PREFIX = 'api:';
/** A stored API (JSON: identifier, scopes), durable. */
export const apiKey = (identifier: string) => `${API_PREFIX}${identifier}`;
/** Set of the stored APIs' identifiers, durable. */
export const APIS_KEY = 'apis';
/** Prefix of clients' operator grants (the tracked cache follows it). */
export const API_GRANTS_PREFIX = 'api-grants:';
/** A client's operator grants (JSON), durable. */
export const apiGrantsKey = (clientId: string) => `${API_GRANTS_PREFIX}${clientId}`;
/** Set of the clients granted scopes of an API, durable. */
export const apiGranteesKey = (identifier: string) => `api-grantees:${identifier}`;

// ---- provider/ ----

/** A person's remembered consent to a client (JSON), for a grant's lifetime. */
export const consentKey = (accountId: string, clientId: string) => `consent:${accountId}:${clientId}`;
/** Set of the clients a person remembered consents to. */
export const consentsKey = (accountId: string) => `consents:${accountId}`;
/** Set of the people holding a remembered consent to a client. */
export const consentHoldersKey = (clientId: string) => `consent-holders:${clientId}`;
/** A JWT a client sent to be taken once (a client assertion's jti, by a digest of its iss and jti), while it could be replayed. */
export const jwtOnceKey = (digest: string) => `jwt-once:${digest}`;

// ---- registration/ ----

/** A client's previous secret (JSON: its digest, until when) during a rotation's grace. */
export const previousSecretKey = (clientId: string) => `client:previous-secret:${clientId}`;
/** An owner's registration in progress (one at a time), for a few seconds. */
export const ownerClaimKey = (owner: string) => `registration:owner-claim:${owner}`;
/** An initial access token's use in progress or done (by the token's SHA-256), single use. */
export const initialAccessTokenClaimKey = (token: string) => `registration:initial-access-token:${digest(token)}`;

// ---- revocation/ (all in hash tag {rv}: a mark and the feed are written in one script) ----

/** A revoked token's jti, until the token expires. */
export const revokedJtiKey = (jti: string) => `revoked:{rv}:jti:${jti}`;
/** A revoked grant, until its tokens expire. */
export const revokedGrantKey = (gid: string) => `revoked:{rv}:grant:${gid}`;
/** A grant that itself ended (its record deleted next), as against its tokens revoked with the grant kept; as long as its grant entry. */
export const endedGrantKey = (gid: string) => `revoked:{rv}:grant-ended:${gid}`;
/** Prefix of deleted or cut-off clients' marks (the tracked cache follows it). */
export const REVOKED_CLIENT_PREFIX = 'revoked:{rv}:client:';
/** A client's tokens issued up to the time it holds are revoked. */
export const revokedClientKey = (clientId: string) => `${REVOKED_CLIENT_PREFIX}${clientId}`;
/** Prefix of revoked signing keys' marks (the tracked cache follows it). */
export const REVOKED_KID_PREFIX = 'revoked:{rv}:kid:';
/** A signing key's tokens are revoked. */
export const revokedKidKey = (kid: string) => `${REVOKED_KID_PREFIX}${kid}`;
/** Prefix of narrowed operator grants' marks (the tracked cache follows it). */
export const REVOKED_CLIENT_GRANT_PREFIX = 'revoked:{rv}:client-grant:';
/** A client's client_credentials tokens for a scope of an API (`scope` '': the whole grant); client id and scope encoded, as either may hold a colon. */
export const revokedClientGrantKey = (clientId: string, scope: string, aud: string) => `${REVOKED_CLIENT_GRANT_PREFIX}${encodeURIComponent(clientId)}:${encodeURIComponent(scope)}:${aud}`;
/** Set while any client-grant, narrowed, API or API-scope mark can still matter (a check reads the others only then). */
export const OPERATOR_ENDINGS_KEY = 'revoked:{rv}:operator-endings';
/** Prefix of removed APIs' marks (the tracked cache follows it). */
export const REVOKED_API_PREFIX = 'revoked:{rv}:api:';
/** A removed API's tokens (by audience) are revoked. */
export const revokedApiKey = (aud: string) => `${REVOKED_API_PREFIX}${aud}`;
/** Prefix of the marks of scopes taken out of APIs that stay (the tracked cache follows it). */
export const REVOKED_API_SCOPE_PREFIX = 'revoked:{rv}:api-scope:';
/** An API's tokens (by audience) carrying a scope it no longer offers; both encoded, as either may hold a colon. */
export const revokedApiScopeKey = (aud: string, scope: string) => `${REVOKED_API_SCOPE_PREFIX}${encodeURIComponent(aud)}:${encodeURIComponent(scope)}`;
/** An API's tokens (by audience) of people (`who` 'people') or of clients for themselves ('clients'), issued up to the time it holds, live at most `seconds` (a lifetime lowered); the audience encoded. */
export const loweredLifetimeKey = (aud: string, who: 'people' | 'clients', seconds: number) => `revoked:{rv}:lowered:${who}:${seconds}:${encodeURIComponent(aud)}`;
/** A person's tokens issued up to the time it holds are revoked. */
export const revokedSubjectKey = (sub: string) => `revoked:{rv}:sub:${sub}`;
/** A person's tokens for one client, after they withdrew it (a sub holds no colon). */
export const withdrawnKey = (sub: string, clientId: string) => `revoked:{rv}:withdrawn:${sub}:${clientId}`;
/** Prefix of the marks of clients whose delegated tokens ended (the tracked cache follows it). */
export const REVOKED_DELEGATED_PREFIX = 'revoked:{rv}:delegated:';
/** A client's tokens delegated by people, issued up to the time it holds, are revoked. */
export const revokedDelegatedKey = (clientId: string) => `${REVOKED_DELEGATED_PREFIX}${clientId}`;
/** Prefix of the marks of clients whose people's access tokens ended as a requirement of the client was raised (the tracked cache follows it). */
export const REVOKED_RAISED_PREFIX = 'revoked:{rv}:raised:';
/** A client's access tokens delegated by people, issued up to the time it holds, are revoked (its `require_mfa` or `dpop_bound_access_tokens` raised). */
export const revokedRaisedKey = (clientId: string) => `${REVOKED_RAISED_PREFIX}${clientId}`;
/** Every person's access tokens, issued up to the time it holds, are revoked (accounts.mfa.required turned on at a start); the tracked cache follows it. */
export const REVOKED_RAISED_EVERYWHERE_KEY = 'revoked:{rv}:raised-everywhere';
/** Prefix of the marks of scopes taken from clients' `scope` metadata (the tracked cache follows it). */
export const REVOKED_NARROWED_PREFIX = 'revoked:{rv}:narrowed:';
/** A client's tokens delegated by people carrying a scope since taken from its metadata; client id and scope encoded, as either may hold a colon. */
export const revokedNarrowedKey = (clientId: string, scope: string) => `${REVOKED_NARROWED_PREFIX}${encodeURIComponent(clientId)}:${encodeURIComponent(scope)}`;
/**
 * The second before this store's memory begins: a token issued up to it may have been ended by an
 * entry the store no longer holds (a Redis that lost everything, the embedded store restarted), so
 * it is refused.
 */
export const STORE_EPOCH_KEY = 'revoked:{rv}:epoch';
/** The revocation feed (a log of every mark written). */
export const REVOCATION_FEED_KEY = 'revoked:{rv}:feed';
/** Prefix of the published lifetimes, the set's and each member's (the tracked cache follows it). */
export const LIFETIMES_PREFIX = 'revoked:{rv}:lifetime';
/** Set of the lifetimes published (members "access:<seconds>", "grant:<seconds>", ...). */
export const LIFETIMES_KEY = `${LIFETIMES_PREFIX}s`;
/** One published lifetime, alive while it can matter. */
export const lifetimeKey = (member: string) => `${LIFETIMES_PREFIX}:${member}`;

// ---- upstreams/ ----

/** A stored upstream provider (JSON, its secret sealed under this same name), durable. */
export const upstreamKey = (id: string) => `upstream:${id}`;
/** Set of the stored upstreams' ids (the login page's buttons; the tracked cache follows it), durable. */
export const UPSTREAMS_KEY = 'upstreams';
/** An upstream sign-in waiting for its callback (a record, consumed once), by its state. */
export const upstreamStateKey = (state: string) => `upstream:state:${state}`;
/** Where to go once signed out at an upstream (a record, consumed once), by its handle. */
export const upstreamLogoutKey = (handle: string) => `upstream:logout:${handle}`;
/** An upstream's logout token already used, until it expires; by its jti's SHA-256 (a jti is free-form, up to 256 characters). */
export const usedLogoutTokenKey = (upstream: string, jti: string) => `upstream:logout-jti:${upstream}:${digest(jti)}`;
/** The upstream sign-in of a session (JSON), for a session lifetime. */
export const federatedSessionKey = (sessionUid: string) => `upstream:session:${sessionUid}`;
/** Set of the sessions an upstream session (its sid) signed in. */
export const federatedBySidKey = (upstream: string, sid: string) => `upstream:sid:${upstream}:${sid}`;
/** Set of the sessions an upstream subject signed in. */
export const federatedBySubKey = (upstream: string, sub: string) => `upstream:sub:${upstream}:${sub}`;
/** Set of the sessions an upstream signed in. */
export const federatedByUpstreamKey = (upstream: string) => `upstream:sessions:${upstream}`;
/**
 * The three sets above as expiring sets (Kv.addExpiring: each session uid scored by its record's
 * end, ended ones dropped at each add), since the store-growth pass: the plain sets, whose TTL each
 * sign-in renewed, never lost a member, so an upstream in use (every person's sign-in through it)
 * grew its set without end. The plain sets are only read (and taken from) now, until they expire.
 */
export const federatedBySidEndsKey = (upstream: string, sid: string) => `upstream:sid-ends:${upstream}:${sid}`;
export const federatedBySubEndsKey = (upstream: string, sub: string) => `upstream:sub-ends:${upstream}:${sub}`;
export const federatedByUpstreamEndsKey = (upstream: string) => `upstream:sessions-ends:${upstream}`;
/** A back-channel logout's time for an upstream sid, for a sign-in that has no session yet. */
export const loggedOutSidKey = (upstream: string, sid: string) => `upstream:logged-out:sid:${upstream}:${sid}`;
/** A back-channel logout's time for an upstream subject, for a sign-in that has no session yet. */
export const loggedOutSubKey = (upstream: string, sub: string) => `upstream:logged-out:sub:${upstream}:${sub}`;
