/**
 * Latchkey as a relying party of its upstreams, through openid-client: discovery by issuer,
 * the authorization request (PKCE S256, state, nonce), the code exchange with ID token
 * validation (issuer, audience, signature against the upstream's JWKS, expiry, nonce, and the
 * RFC 9207 `iss` response parameter when the upstream offers it), userinfo; and the upstream's
 * back-channel logout tokens, verified with jose against the same JWKS. Nothing is validated by
 * hand. Every request goes through the guarded fetch (http/outbound.ts): bounded in time and size,
 * kept off private addresses unless outbound.allowPrivateNetworks.
 */
import { createRemoteJWKSet, customFetch as joseFetch, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import * as oidc from 'openid-client';
import { createOutboundFetch } from '../http/outbound.js';
import type { Upstream } from './registry.js';

/** How long a discovered configuration is reused before the upstream is asked again. */
const DISCOVERY_CACHE_MS = 5 * 60_000;
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Seconds: how old a logout token may be (its iat), and the clock skew allowed on iat and exp. */
const LOGOUT_TOKEN_MAX_AGE = 600;
/** The `typ` a logout token may carry: logout+jwt (Back-Channel Logout §2.4), JWT, with or without `application/`. */
const LOGOUT_TOKEN_TYP = /^(application\/)?(logout\+)?jwt$/i;
const CLOCK_TOLERANCE = 30;
/** Milliseconds jose waits after reading a key set before it reads it again for an unknown kid (its default, named so that Retry-After can say it). */
const JWKS_COOLDOWN_MS = 30_000;
/** What the key set, once read, says of a token: none of its keys (or several) is the token's, or the key found is no key for it. */
const KEY_REFUSALS = [joseErrors.JWKSNoMatchingKey, joseErrors.JWKSMultipleMatchingKeys, joseErrors.JOSENotSupported, joseErrors.JWKInvalid, joseErrors.JOSEAlgNotAllowed];
/**
 * The longest `sub` (OIDC Core §2: at most 255 ASCII characters) and `sid` an upstream may name, in
 * UTF-8 bytes. Each becomes a store key and a link's name: an empty sub made every sign-in naming
 * it one person, and one of a megabyte a key of a megabyte (eleventh pass over upstreams).
 */
const MAX_IDENTIFIER_BYTES = 255;

/** The upstream could not be reached, was too slow, or answered something unusable. */
export class UpstreamUnavailable extends Error {
  override name = 'UpstreamUnavailable';
  /** Seconds after which trying again can fare otherwise, when that is known (a key set not read again before then). */
  readonly retryAfter: number | undefined;
  constructor(message: string, options?: ErrorOptions & { readonly retryAfter?: number }) {
    super(message, options);
    this.retryAfter = options?.retryAfter;
  }
}
/** The upstream's answer was refused: an error response, or an ID token that does not verify. */
export class UpstreamRefused extends Error {
  override name = 'UpstreamRefused';
}

export interface Pending {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
  /** The app's max_age, asked of the upstream: its ID token's auth_time must be that recent. */
  readonly maxAge?: number;
  /** The upstream was asked for a fresh sign-in (prompt=login and max_age=0). */
  readonly fresh?: boolean;
  /** When, for a fresh sign-in (epoch seconds): the upstream's auth_time must be no earlier. */
  readonly startedAt?: number;
}

export interface SignedIn {
  readonly sub: string;
  /** The upstream session (ID token `sid`), for its back-channel logout. */
  readonly sid: string | undefined;
  /** ID token claims, with userinfo's where the upstream offers it. */
  readonly claims: Record<string, unknown>;
  /** The two apart (userinfo empty where the upstream has none): a claim pair (email, email_verified) is read from one of them. */
  readonly sources: { readonly idToken: Record<string, unknown>; readonly userinfo: Record<string, unknown> };
  readonly idToken: string;
  /** When the person signed in at the upstream (its ID token's `auth_time`, epoch seconds, never later than now), when it says. */
  readonly authTime?: number;
  /**
   * The upstream said no auth_time and was asked neither a max_age nor a fresh sign-in: it may have
   * answered from a session of any age (OIDC Core §2: auth_time is then optional), so nothing says
   * how recent the sign-in is (provider/patches/sign-in-time.ts).
   */
  readonly ageUnknown?: boolean;
}

export interface VerifiedLogoutToken {
  readonly sid?: string;
  readonly sub?: string;
  readonly jti: string;
  /** Epoch seconds after which the token would be refused anyway (too old, or expired). */
  readonly acceptedUntil: number;
}

interface Cached {
  readonly config: oidc.Configuration;
  readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  readonly at: number;
}

export interface OutboundSettings {
  /** Milliseconds a request (connection, answer and body) may take. */
  readonly timeout: number;
  /** Bytes a response body may have. */
  readonly maxBytes: number;
  readonly allowPrivateNetworks: boolean;
}

export class UpstreamClients {
  readonly #fetch: (url: string, options: RequestInit) => Promise<Response>;
  readonly #cache = new Map<string, Cached>();

  constructor(
    private readonly outbound: OutboundSettings,
    /** Where each upstream sends people back: `<issuer>/upstream/<id>/callback`. */
    private readonly callbackUrl: (id: string) => string,
  ) {
    const guarded = createOutboundFetch({ allowPrivateNetworks: outbound.allowPrivateNetworks });
    // openid-client and jose ask for redirect: 'manual'; the guarded fetch follows none anyway.
    this.#fetch = (url, { redirect: _, ...options }) => guarded(url, { ...options, timeoutMs: outbound.timeout, maxBytes: outbound.maxBytes });
  }

  async #discover(upstream: Upstream): Promise<Cached> {
    const cacheKey = `${upstream.id}\n${upstream.issuer}\n${upstream.clientId}\n${upstream.clientSecret}`;
    const cached = this.#cache.get(cacheKey);
    if (cached && Date.now() - cached.at < DISCOVERY_CACHE_MS) return cached;
    const config = await unavailableOnFailure(() =>
      namingAnotherIssuer(upstream.issuer, () => oidc.discovery(new URL(upstream.issuer), upstream.clientId, upstream.clientSecret, oidc.ClientSecretBasic(upstream.clientSecret), {
        [oidc.customFetch]: this.#fetch as oidc.CustomFetch,
        timeout: Math.ceil(this.outbound.timeout / 1000),
        // ID token signatures are checked against the upstream's JWKS too (openid-client by default
        // relies on TLS to the token endpoint alone, which OIDC Core §3.1.3.7 allows).
        execute: [oidc.enableNonRepudiationChecks, ...(upstream.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [])],
      })),
    );
    config[oidc.customFetch] = this.#fetch as oidc.CustomFetch;
    const jwksUri = config.serverMetadata().jwks_uri;
    if (!jwksUri) throw new UpstreamUnavailable('the upstream publishes no jwks_uri');
    const jwks = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.outbound.timeout,
      cooldownDuration: JWKS_COOLDOWN_MS,
      [joseFetch]: (url: string, options: RequestInit) => this.#fetch(url, options),
    });
    for (const [other] of this.#cache) if (other.startsWith(`${upstream.id}\n`)) this.#cache.delete(other);
    const entry = { config, jwks, at: Date.now() };
    this.#cache.set(cacheKey, entry);
    return entry;
  }

  /**
   * A fresh state, nonce and PKCE verifier, and where to send the person.
   *
   * `fresh`: the request asked for a fresh sign-in (prompt=login, max_age=0), which the upstream is
   * asked for too. `asked`: the request's max_age, passed on (OIDC Core §3.1.2.1), and checked
   * against the upstream's auth_time at the callback, so that an upstream session older than the
   * app allows does not become a sign-in of now.
   */
  async start(upstream: Upstream, loginHint?: string, fresh = false, asked?: number): Promise<{ url: URL; pending: Pending }> {
    const { config } = await this.#discover(upstream);
    // A fresh sign-in is asked as max_age=0 too (whatever max_age the app sent): an upstream must then
    // say auth_time (Core §3.1.2.1; prompt=login alone does not make it), which must be no earlier
    // than now (finish), so that one ignoring prompt=login (answering from its session of yesterday,
    // or of an hour ago within the app's max_age) is found out rather than taken for now.
    const sent = fresh ? 0 : asked;
    const pending = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier: oidc.randomPKCECodeVerifier(),
      ...(asked !== undefined && { maxAge: asked }),
      ...(fresh && { fresh, startedAt: Math.floor(Date.now() / 1000) }),
    };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.callbackUrl(upstream.id),
      scope: upstream.scope,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      ...(loginHint ? { login_hint: loginHint } : {}),
      ...(fresh ? { prompt: 'login' } : {}),
      ...(sent !== undefined ? { max_age: String(sent) } : {}),
    });
    return { url, pending };
  }

  /** The callback: code for tokens, ID token validated, userinfo read. */
  async finish(upstream: Upstream, callback: URL, pending: Pending): Promise<SignedIn> {
    const { config } = await this.#discover(upstream);
    // A fresh sign-in's auth_time is no earlier than the person was sent there (the seconds since,
    // as a max_age: openid-client's 30 s of clock tolerance still apply), however long they then
    // spent on the upstream's own pages.
    const since = pending.startedAt !== undefined ? Math.max(0, Math.floor(Date.now() / 1000) - pending.startedAt) : undefined;
    const maxAge = pending.fresh ? Math.min(since ?? 0, pending.maxAge ?? Infinity) : pending.maxAge;
    const tokens = await refusedOrUnavailable(() =>
      oidc.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
        // auth_time required, and no older than the app's max_age allows (openid-client checks it).
        ...(maxAge !== undefined && { maxAge }),
      }),
    );
    const claims = tokens.claims()!;
    // Before userinfo is asked: openid-client, given an empty sub to compare userinfo's with, throws a
    // TypeError, which read as the upstream being down (502) rather than as its answer refused.
    if (claims.sub === '' || [claims.sub, claims.sid].some(tooLong)) {
      throw new UpstreamRefused(`the ID token's sub or sid is empty or longer than ${MAX_IDENTIFIER_BYTES} bytes (OIDC Core §2)`);
    }
    // An ID token from the future: openid-client checks exp and nbf but takes any iat (and auth_time)
    // ahead of now, so one the upstream dated a year ahead signed a person in, where a logout token so
    // dated is refused (jose). Beyond the clock skew allowed, either is a broken clock or a token made
    // for later, not an answer of now (OIDC Core §3.1.3.7: iat may reject what was issued too far from
    // now); within it, auth_time is still taken as now (below). Seventeenth passes, upstreams.
    const ahead = Math.floor(Date.now() / 1000) + CLOCK_TOLERANCE;
    for (const claim of ['iat', 'auth_time'] as const) {
      if (typeof claims[claim] === 'number' && claims[claim] > ahead) throw new UpstreamRefused(`the ID token's ${claim} is ahead of now by more than ${CLOCK_TOLERANCE} s`);
    }
    let profile: Record<string, unknown> = {};
    if (config.serverMetadata().userinfo_endpoint) {
      profile = await refusedOrUnavailable(() => oidc.fetchUserInfo(config, tokens.access_token, claims.sub));
    }
    // An upstream answering from a session it signed in hours ago says so in auth_time: our sign-in is no fresher (sign-in-time.ts).
    const authTime = typeof claims.auth_time === 'number' && Number.isSafeInteger(claims.auth_time) ? Math.min(claims.auth_time, Math.floor(Date.now() / 1000)) : undefined;
    // None, and none owed (no max_age asked, which openid-client made required above, nor prompt=login): its age is unknown.
    const ageUnknown = authTime === undefined && pending.maxAge === undefined && !pending.fresh;
    return { sub: claims.sub, sid: typeof claims.sid === 'string' ? claims.sid : undefined, claims: { ...profile, ...claims }, sources: { idToken: { ...claims }, userinfo: profile }, idToken: tokens.id_token!, ...(authTime !== undefined && { authTime }), ...(ageUnknown && { ageUnknown }) };
  }

  /** The upstream's end_session_endpoint, when it has one. */
  async endSessionUrl(upstream: Upstream, idToken: string): Promise<URL | undefined> {
    const { config } = await this.#discover(upstream);
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    return oidc.buildEndSessionUrl(config, { id_token_hint: idToken, client_id: upstream.clientId });
  }

  /**
   * OpenID Connect Back-Channel Logout 1.0 §2.6: a logout token signed by the upstream (its JWKS),
   * for us (aud), with iat, jti, the logout event, sid and/or sub, and no nonce. Also says until
   * when (epoch seconds) this check would accept it, which is how long its jti must be remembered.
   */
  async verifyLogoutToken(upstream: Upstream, token: string): Promise<VerifiedLogoutToken> {
    // What is no signed JWT at all is refused before the upstream is asked for its keys: a 400, not
    // a 503 while the upstream is down, and no outbound request for anyone's garbage.
    if (!isSignedJwt(token)) throw new UpstreamRefused('the logout token is not a signed JWT');
    const { config, jwks } = await this.#discover(upstream);
    // The key set is read apart from the callback's (a server's first logout token, or one once the
    // cache ended, fetches it): an upstream that cannot be read at that moment (down, slow, a 5xx, no
    // JSON) is unavailable, not its token refused. Answered 400 "does not verify", which a provider
    // takes as final (Back-Channel Logout §2.8), the logout was lost and the sessions it named lived
    // on (fourteenth fresh-eyes pass over upstreams); a 503 is retried. A set read that holds no key
    // for the token (or several) is the token's fault, as before; but one read less than jose's
    // cooldown ago (30 s) is not read again, so a key the upstream published since (a rotation, its
    // logout token signed with the new key at once) is not found in it yet: that too is answered 503,
    // and the retry, once the set may be read again, finds the key: it is told to come back after the
    // cooldown, not in the 2 s of a store outage, which fell within it (503 again, until the upstream
    // gave up: review of the fourteenth passes, h12).
    let unreadable: unknown;
    let coolingDown = false;
    const keys: JWTVerifyGetKey = async (header, jws) => {
      const readAgain = !jwks.coolingDown;
      try {
        return await jwks(header, jws);
      } catch (error) {
        coolingDown = error instanceof joseErrors.JWKSNoMatchingKey && !readAgain;
        if (!KEY_REFUSALS.some((refusal) => error instanceof refusal) || coolingDown) unreadable = error;
        throw error;
      }
    };
    let payload: JWTPayload;
    let typ: string | undefined;
    try {
      ({ payload, protectedHeader: { typ } } = await jwtVerify(token, keys, {
        issuer: config.serverMetadata().issuer,
        audience: upstream.clientId,
        // Back-Channel Logout 1.0 §2.4 (errata set 1) makes exp REQUIRED and §2.6 validates it as an ID
        // token's: one without it is refused, as the conformance suite's RPs are expected to (fifteenth pass).
        requiredClaims: ['iat', 'exp', 'jti'],
        maxTokenAge: LOGOUT_TOKEN_MAX_AGE,
        clockTolerance: CLOCK_TOLERANCE,
        algorithms: (config.serverMetadata().id_token_signing_alg_values_supported as string[] | undefined) ?? ['RS256'],
      }));
    } catch (error) {
      if (unreadable !== undefined) throw new UpstreamUnavailable("the upstream's key set could not be read", { cause: unreadable, ...(coolingDown ? { retryAfter: JWKS_COOLDOWN_MS / 1000 + 1 } : {}) });
      throw new UpstreamRefused('the logout token does not verify', { cause: error });
    }
    // Explicit typing (Back-Channel Logout §2.4, §4.1; RFC 8725 §3.11): a JWT the upstream typed as
    // something else (an access token, another security event) is not a logout token, whatever its
    // claims. Untyped and `JWT` are taken, as the spec lets upstreams that do not type them (Keycloak).
    if (typ !== undefined && !LOGOUT_TOKEN_TYP.test(typ)) throw new UpstreamRefused(`not a logout token (typ ${typ})`);
    const events = payload.events as Record<string, unknown> | undefined;
    if (typeof events !== 'object' || events === null || typeof events[BACKCHANNEL_EVENT] !== 'object') throw new UpstreamRefused('not a logout token (events)');
    if ('nonce' in payload) throw new UpstreamRefused('a logout token has no nonce');
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    if (!sid && !sub) throw new UpstreamRefused('a logout token names a sid or a sub');
    // One no ID token could have named (finish) names no session: refused, not written down as a logout of it.
    if ([sid, sub].some(tooLong)) throw new UpstreamRefused(`a logout token's sid and sub are at most ${MAX_IDENTIFIER_BYTES} bytes`);
    if (typeof payload.jti !== 'string' || !payload.jti || payload.jti.length > 256) throw new UpstreamRefused('a logout token has a jti of at most 256 characters');
    // jose reads whole seconds: it takes the token while the second of now is at most iat + max age +
    // tolerance (so up to a second past that), and while it is before exp + tolerance. Remembered to
    // iat + max age + tolerance, a token bounded by its age was taken again in that last second
    // (review of the eighteenth passes, h17).
    const lastAccepted = Math.min(payload.iat! + LOGOUT_TOKEN_MAX_AGE + CLOCK_TOLERANCE + 1, payload.exp! + CLOCK_TOLERANCE);
    return { ...(sid && { sid }), ...(sub && { sub }), jti: payload.jti, acceptedUntil: lastAccepted };
  }
}

/**
 * An upstream added with an issuer its discovery document does not name (`http://localhost:3100`
 * for one whose ISSUER is `http://127.0.0.1:3100`, a tenant's URL for its provider's) never works:
 * openid-client's "discovered metadata issuer does not match the expected issuer" named neither, and
 * the person's page says the provider is not answering. The log's cause now names both and the
 * mend (sixteenth passes, the developer and the operator).
 */
async function namingAnotherIssuer<T>(issuer: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const { code, cause } = error as { code?: unknown; cause?: { attribute?: unknown; body?: { issuer?: unknown } } };
    const named = cause?.body?.issuer;
    if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && cause?.attribute === 'issuer' && typeof named === 'string') {
      throw new Error(
        `the upstream at ${issuer} names itself ${JSON.stringify(named.slice(0, 200))} in its discovery document, not ${issuer}: an upstream's --issuer is exactly its issuer (remove this upstream and add it again${/^https?:\/\/[\x21-\x7e]{1,200}$/.test(named) ? ` with --issuer ${named}` : ''}, if that is the provider meant)`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** Network failures and timeouts: the upstream is unavailable. */
async function unavailableOnFailure<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new UpstreamUnavailable('the upstream provider could not be reached or answered something unusable', { cause: error });
  }
}

/** Protocol refusals (error responses, failed validation) apart from network failures. */
async function refusedOrUnavailable<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    // The upstream's word that it cannot serve now (RFC 6749 §4.1.2.1 temporarily_unavailable or
    // server_error) is no refusal of the person: "not answering", and the app told
    // temporarily_unavailable, as for an upstream that is down (a 5xx, which oauth4webapi reads no
    // error answer from: below). It was the refusal page and access_denied (eighteenth passes, h8).
    // The log is told its code alone (the callback logs the cause): its description and the rest of
    // its body are the upstream's words, markup and tokens included, as a refusal's are not logged.
    if ((error instanceof oidc.ResponseBodyError || error instanceof oidc.AuthorizationResponseError) && saysUnavailable(error)) {
      throw new UpstreamUnavailable('the upstream provider said it is unavailable', { cause: new Error(`the upstream provider answered ${error.error}`) });
    }
    if (error instanceof oidc.ResponseBodyError || error instanceof oidc.AuthorizationResponseError || error instanceof oidc.WWWAuthenticateChallengeError) {
      throw new UpstreamRefused(`the upstream provider refused: ${error.code}`, { cause: error });
    }
    // openid-client's own validation failures (ID token, state, nonce, iss) are its ClientErrors.
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('OAUTH_') && code !== 'OAUTH_RESPONSE_IS_NOT_JSON' && code !== 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
      throw new UpstreamRefused('the upstream provider sent an answer that does not verify', { cause: error });
    }
    // An answer read and judged by oauth4webapi with no code of its own: a JWT whose alg nothing the
    // upstream or we configured names (userinfo as a JWT from an upstream that never said it signs
    // userinfo). The upstream answered, so its answer is refused, not reported as the upstream down
    // (502, the app told temporarily_unavailable: eighteenth passes, h8).
    if (code === undefined && error instanceof oidc.ClientError && (error.cause as { name?: unknown } | undefined)?.name === 'OperationProcessingError') {
      throw new UpstreamRefused('the upstream provider sent an answer that does not verify', { cause: error });
    }
    throw new UpstreamUnavailable('the upstream provider could not be reached or answered something unusable', { cause: error });
  }
}

/** Whether an upstream's error answer says it cannot serve now rather than that it refuses. */
function saysUnavailable(error: oidc.ResponseBodyError | oidc.AuthorizationResponseError): boolean {
  return error.error === 'temporarily_unavailable' || error.error === 'server_error';
}

/** A `sub` or `sid` longer than we keep (MAX_IDENTIFIER_BYTES); what is no string is judged elsewhere. */
function tooLong(value: unknown): boolean {
  return typeof value === 'string' && Buffer.byteLength(value) > MAX_IDENTIFIER_BYTES;
}

function isSignedJwt(token: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    const { alg } = decodeProtectedHeader(token);
    return typeof alg === 'string' && alg !== 'none';
  } catch {
    return false;
  }
}
