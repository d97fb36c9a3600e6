/**
 * latchkey/resource-server — verifies Latchkey access tokens in a resource server (an API).
 *
 *   import { createResourceServer } from 'latchkey/resource-server';
 *   const tokens = await createResourceServer({
 *     issuer: 'https://id.example.com', audience: 'https://api.example.com',
 *     clientId: 'api', clientSecret: process.env.API_CLIENT_SECRET,
 *   });
 *   const claims = await tokens.verify(request.headers.authorization); // throws TokenRejected
 *
 * It checks the signature against Latchkey's JWKS (jose's createRemoteJWKSet, cached as long as
 * the JWKS's Cache-Control allows) by the key the token names (kid, required), the RFC 9068 header
 * and claims (typ at+jwt, iss, aud, exp), and the
 * revocation list, which it follows from Latchkey's revocation feed every `pollInterval` (500 ms),
 * so a revocation reaches it within about a second: one token (jti), a grant's tokens (gid), a
 * deleted client's tokens (client_id), a client's own tokens for this API once an operator revoked
 * or narrowed its grant here (client_grant), every token for this API once it was removed (api), or
 * carrying a scope it no longer offers (api with `scope`), a person's token carrying a scope taken
 * from its client's `scope` (delegated with `scope`), a token for this API issued before its lifetime
 * was lowered, once that lifetime has passed since its `iat` (lifetime), and
 * every token signed by a revoked key (kid), which it refuses even while its cached JWKS still holds that key. When the feed cannot be reached for
 * `maxStaleness` (10 s) it refuses every token (fails closed) rather than accept revoked ones,
 * saying what its last try met. While polls fail it polls less often (see pollInterval).
 * A DPoP-bound token (cnf.jkt) is accepted only with the DPoP scheme and a valid proof for the
 * request (RFC 9449; the checks are in dpop.ts).
 *
 * Depends on jose only (and node:crypto); uses the global fetch. RFC 9728 Protected Resource
 * Metadata and its challenge: protected-resource.ts.
 */
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { wwwAuthenticate } from './challenge.js';
import { DPoPProblem, DPoPVerifier, type DPoPOptions, type DPoPRequest } from './dpop.js';

export { MemoryReplayStore, RotatingNonces, type DPoPOptions, type DPoPRequest, type NonceSource, type ReplayStore } from './dpop.js';

export * from './protected-resource.js';

/**
 * The largest `clockTolerance` this helper takes, in seconds: how long past a token's `exp`
 * Latchkey's revocation feed lists its entries (revocation/list.ts FEED_RETENTION). With a larger
 * one a helper started after an entry left the feed took the revoked token until `exp` plus its
 * tolerance (eighteenth passes, h17).
 */
export const MAX_CLOCK_TOLERANCE = 300;

export interface ResourceServerOptions {
  /** Latchkey's issuer URL, exactly as in its discovery document (no trailing slash). */
  readonly issuer: string;
  /** This API's resource identifier: the `aud` of the tokens it accepts. */
  readonly audience: string;
  /**
   * Client credentials of this API at Latchkey (a confidential client allowed the
   * client_credentials grant), used to read the revocation feed with client_secret_basic. An
   * operator must grant this client the feed (`latchkey apis grant --api <issuer>/revocations
   * --scope revocations`); without that grant the helper cannot start.
   */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** Instead of clientId/clientSecret: returns an access token for the feed (audience `<issuer>/revocations`, scope `revocations`). */
  readonly feedToken?: () => Promise<string>;
  /**
   * Milliseconds between polls of the revocation feed. Default 500. While polls fail, the wait
   * doubles up to a quarter of `maxStaleness` (at most 5 s), at once when Latchkey refused the
   * request (4xx: a wrong or rotated secret, no feed grant); the first success returns to it.
   */
  readonly pollInterval?: number;
  /** Milliseconds without a successful poll after which every token is refused. Default 10 000. */
  readonly maxStaleness?: number;
  /**
   * Seconds of clock skew tolerated on exp/iat. Default 15, at most MAX_CLOCK_TOLERANCE (300): the
   * revocation feed lists an entry that long past its token's `exp`, so a helper started then still
   * learns of every revocation of a token it would take.
   */
  readonly clockTolerance?: number;
  /** Called when a poll fails (the helper keeps polling, backing off), and at start for each try Latchkey did not answer. */
  readonly onError?: (error: Error) => void;
  /**
   * Milliseconds `createResourceServer` waits for Latchkey to answer its discovery document (not
   * started yet, restarting: no connection, or 502, 503, 504) before it fails. Default 60 000; 0:
   * fail at once.
   */
  readonly startTimeout?: number;
  /** How DPoP proofs for DPoP-bound tokens are checked (see dpop.ts): proof lifetime, jti store, nonces. */
  readonly dpop?: DPoPOptions;
  /**
   * Only DPoP-bound tokens are accepted (RFC 9728's `dpop_bound_access_tokens_required`): a bearer
   * token, stolen or not, is refused, and `challenge` offers the DPoP scheme alone. Give the same
   * value (`dpopBoundAccessTokensRequired` of this helper) to createProtectedResource, which publishes it.
   */
  readonly dpopBoundAccessTokensRequired?: boolean;
}

/** Claims of a Latchkey access token (RFC 9068), with `gid`, the grant it was issued under. */
export interface AccessTokenClaims extends JWTPayload {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | string[];
  readonly exp: number;
  readonly iat: number;
  readonly jti: string;
  readonly client_id: string;
  readonly scope?: string;
  readonly gid?: string;
  /** RFC 9068 §2.2.1, a person's token only: when and how they signed in, as in their ID token. */
  readonly auth_time?: number;
  readonly acr?: string;
  readonly amr?: string[];
  /** RFC 9449 §6.1: the thumbprint of the key a DPoP-bound token is bound to. */
  readonly cnf?: { readonly jkt?: string };
}

/**
 * A token this API must refuse. `code` is the RFC 6750 / RFC 9449 error to answer with, `status` its
 * HTTP status (400 for invalid_request, 403 for insufficient_scope, else 401); `scheme` the challenge
 * it belongs to; `dpopNonce` a DPoP-Nonce header to send.
 * ResourceServer.challenge(error) is the WWW-Authenticate value.
 */
export class TokenRejected extends Error {
  override name = 'TokenRejected';
  constructor(
    message: string,
    readonly code: 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_request' = 'invalid_token',
    readonly scheme: 'Bearer' | 'DPoP' = 'Bearer',
    readonly dpopNonce?: string,
  ) {
    super(message);
  }

  /** The HTTP status to answer with (RFC 6750 §3.1, RFC 9449 §7.1): 400 for a malformed request, 403 for a missing scope, else 401. */
  get status(): 400 | 401 | 403 {
    return this.code === 'invalid_request' ? 400 : this.code === 'insufficient_scope' ? 403 : 401;
  }
}

/** A JWT's protected header, or {} when it has none that decodes. */
function safeHeader(token: string): { typ?: unknown } {
  try {
    return decodeProtectedHeader(token);
  } catch {
    return {};
  }
}

/** RFC 6750 §2.1's b64token, RFC 9449 §7.1's token68: what may follow `Bearer ` or `DPoP ` in the header. */
const TOKEN68 = /^[\w.~+/-]+=*$/;

type FeedEntry =
  | { type: 'jti'; jti: string; exp: number }
  | { type: 'grant'; gid: string; revoked_at: number; exp: number }
  | { type: 'client'; client_id: string; revoked_at: number; exp: number }
  | { type: 'kid'; kid: string; revoked_at: number; exp: number }
  | { type: 'client_grant'; client_id: string; aud: string; scope?: string; revoked_at: number; exp: number }
  | { type: 'api'; aud: string; scope?: string; revoked_at: number; exp: number }
  | { type: 'sub'; sub: string; revoked_at: number; exp: number }
  | { type: 'withdrawn'; sub: string; client_id: string; revoked_at: number; exp: number }
  | { type: 'delegated'; client_id: string; scope?: string; revoked_at: number; exp: number }
  | { type: 'people'; revoked_at: number; exp: number }
  | { type: 'lifetime'; aud: string; who: 'people' | 'clients'; seconds: number; revoked_at: number; exp: number };

/** "Tokens issued up to revokedAt are revoked", until exp. */
interface UpTo {
  readonly revokedAt: number;
  readonly exp: number;
}

interface Metadata {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly token_endpoint: string;
  readonly revocation_feed_endpoint?: string;
  readonly dpop_signing_alg_values_supported?: string[];
}

const FEED_SCOPE = 'revocations';
const NO_TOKEN = 'no access token';
/** Never cache the JWKS longer than jose's default, whatever max-age says. */
const JWKS_CACHE_CEILING_MS = 600_000;

/**
 * A request that failed, with `summary`: what and why in a few words, no URL (a refused token's
 * message quotes it); `refused`: Latchkey answered 4xx, which waiting alone will not mend.
 */
class RequestFailed extends Error {
  constructor(
    message: string,
    readonly summary: string,
    readonly refused: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A TLS handshake that failed, which waiting does not mend: what answered speaks no TLS (an https
 * issuer for Latchkey's own plain-http port: `plain`), or its certificate is not trusted here.
 */
function tlsFailure(error: unknown): { code: string; plain: boolean } | undefined {
  for (let at = error; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    if (!code) continue;
    if (/^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST)$/.test(code) || code === 'EPROTO') return { code, plain: true };
    if (/CERT|^ERR_TLS_|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) return { code, plain: false };
  }
  return undefined;
}

/** fetch, failing with where it went and why: undici's own error says only "fetch failed". */
async function request(url: string | URL, what: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const tls = tlsFailure(error);
    // An https issuer given for Latchkey's own port waited startTimeout saying only the code (fourteenth newcomer pass).
    const hint = tls?.plain
      ? ': no TLS there; Latchkey itself speaks plain http (TLS ends at a proxy in front of it): give the issuer it logs at start ("latchkey is listening")'
      : tls
        ? ': its TLS certificate is not trusted here (NODE_EXTRA_CA_CERTS names a CA for Node)'
        : '';
    const why = `${String(cause?.code ?? cause?.message ?? (error as Error).message)}${hint}`;
    throw new RequestFailed(`${what}: cannot reach ${String(url)} (${why})`, `${what}: cannot reach it (${why})`, false, { cause: error });
  }
}

/**
 * `request`, tried again each second (then up to every 5 s) while Latchkey does not answer (no
 * connection, or 502, 503, 504: starting, restarting, behind a proxy that has no instance yet) for
 * up to `startTimeout` ms: an API started beside Latchkey (docker compose, a reboot) waits for it
 * instead of failing its start (newcomer pass of 2026-12-06). Any other answer is taken as it is,
 * and a TLS handshake that failed (an https issuer for a plain-http port, an untrusted certificate)
 * fails at once.
 */
async function untilAnswered(url: string, what: string, { startTimeout = 60_000, onError }: ResourceServerOptions): Promise<Response> {
  const until = performance.now() + startTimeout; // monotonic, as freshness (#lastSync)
  for (let wait = 1_000; ; wait = Math.min(wait * 2, 5_000)) {
    let failure: Error;
    try {
      const response = await request(url, what);
      if (![502, 503, 504].includes(response.status)) return response;
      failure = new Error(`${what}: HTTP ${response.status} from ${url}`);
      if (performance.now() + wait > until) return response;
    } catch (error) {
      failure = error as Error;
      // A TLS handshake that failed is the issuer's or the certificate's to mend, not a Latchkey still starting.
      if (performance.now() + wait > until || tlsFailure(error)) throw error;
    }
    onError?.(new Error(`${failure.message}; trying again in ${wait / 1000} s`, { cause: failure }));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

async function json<T>(response: Response, what: string): Promise<T> {
  if (!response.ok) {
    // An OAuth error says what to fix (invalid_client: a wrong secret); the URL, where (a wrong issuer).
    const body = (await response.json().catch(() => undefined)) as { error?: unknown; error_description?: unknown } | undefined;
    const reason = typeof body?.error === 'string' ? ` (${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''})` : '';
    const summary = `${what}: ${typeof body?.error === 'string' ? `${body.error} (HTTP ${response.status})` : `HTTP ${response.status}`}`;
    throw new RequestFailed(`${what}: HTTP ${response.status} from ${response.url}${reason}`, summary, response.status >= 400 && response.status < 500);
  }
  return (await response.json()) as T;
}

export class ResourceServer {
  readonly #options: Required<Pick<ResourceServerOptions, 'issuer' | 'audience' | 'pollInterval' | 'maxStaleness' | 'clockTolerance'>> &
    ResourceServerOptions;
  readonly #metadata: Metadata;
  readonly #keys: JWTVerifyGetKey;
  readonly #dpop: DPoPVerifier;
  /** jti → exp */
  readonly #jtis = new Map<string, number>();
  /** gid → { revokedAt, exp } */
  readonly #grants = new Map<string, UpTo>();
  /** sub → up to when: a person disabled, their password set by an operator or every grant they gave revoked: every token issued to them (under a grant) up to then */
  readonly #subjects = new Map<string, UpTo>();
  /** "<sub> <client_id>" → up to when: the person withdrew the client's access: every token issued to them for it (under a grant) up to then */
  readonly #withdrawals = new Map<string, UpTo>();
  /** client_id → up to when: every grant the client holds was revoked, so every token it holds on people's behalf (under a grant) up to then */
  readonly #delegations = new Map<string, UpTo>();
  /** "<client_id> <scope>" → up to when: the scope was taken from the client's `scope` metadata, so every token it holds on people's behalf carrying it, up to then */
  readonly #narrowings = new Map<string, UpTo>();
  /** "" → up to when: a second factor came to be required of everyone, so every token held on a person's behalf (under a grant), up to then */
  readonly #people = new Map<string, UpTo>();
  /** client_id → { revokedAt, exp }: deleted clients */
  readonly #clients = new Map<string, UpTo>();
  /** kid → exp: revoked signing keys */
  readonly #kids = new Map<string, number>();
  /** "<client_id> <scope>" → { revokedAt, exp }: scopes taken from a client's operator grant at this API ("<client_id> ": the whole grant), for its own tokens */
  readonly #clientGrants = new Map<string, UpTo>();
  /** This API's removals (key: the audience): every token for it issued up to then */
  readonly #removals = new Map<string, UpTo>();
  /** scope → up to when: the scope was taken out of this API, so every token for it carrying the scope, up to then */
  readonly #scopesTaken = new Map<string, UpTo>();
  /** "<people|clients> <seconds>" → up to when: the lifetime of this API's tokens of people (a gid) or of clients for themselves was lowered to `seconds`, for every such token issued up to then */
  readonly #lowered = new Map<string, UpTo>();
  /** Tokens issued up to this second are refused: the feed's `epoch`, where Latchkey's store begins (one that lost everything forgot what it had revoked). */
  #epoch: number | undefined;
  #cursor: string | undefined;
  /**
   * When the last successful poll was sent: `at` on the wall clock (lastSync), `mono` on the
   * monotonic one, which freshness is measured by: a wall clock stepped back after a poll (an NTP
   * step, a VM resumed) put it in the future, and a helper out of reach of the feed counted itself
   * fresh for the whole step (eleventh fresh-eyes passes of 2026-12-07).
   */
  #lastSync: { readonly at: number; readonly mono: number } | undefined;
  /** What the last poll met, while polls fail: named in the refusals of a stale helper. */
  #lastFailure: string | undefined;
  #accessToken: { value: string; renewAt: number } | undefined;
  #queue: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: ResourceServerOptions, metadata: Metadata, keys: JWTVerifyGetKey) {
    this.#options = { pollInterval: 500, maxStaleness: 10_000, clockTolerance: 15, ...options };
    this.#metadata = metadata;
    this.#keys = keys;
    this.#dpop = new DPoPVerifier(metadata.dpop_signing_alg_values_supported ?? ['ES256'], this.#options.clockTolerance, options.dpop);
  }

  /** Reads Latchkey's discovery document and the current revocation list, then keeps following it. */
  static async create(options: ResourceServerOptions): Promise<ResourceServer> {
    const { clockTolerance } = options;
    if (clockTolerance !== undefined && !(Number.isFinite(clockTolerance) && clockTolerance >= 0 && clockTolerance <= MAX_CLOCK_TOLERANCE)) {
      throw new TypeError(
        `latchkey/resource-server: clockTolerance is seconds from 0 to ${MAX_CLOCK_TOLERANCE} (the revocation feed lists an entry that long past its token's exp; with more, a revoked token would be taken after it left the feed), not ${String(clockTolerance)}`,
      );
    }
    if (!options.feedToken && !(options.clientId && options.clientSecret)) {
      throw new TypeError('latchkey/resource-server: give clientId and clientSecret, or feedToken, to read the revocation feed');
    }
    // Latchkey's issuer is an origin, and `iss` is compared exactly: one copied with a trailing slash
    // or a path was an HTTP 404 at `…//.well-known/openid-configuration` (thirteenth newcomer pass).
    const origin = URL.parse(options.issuer)?.origin;
    if (options.issuer !== origin) {
      const use = origin && origin !== 'null' ? `use ${origin}, ` : '';
      throw new TypeError(`latchkey/resource-server: issuer is Latchkey's issuer as its discovery document names it, an origin without a path or trailing slash: ${use}got "${options.issuer}"`);
    }
    const metadata = await json<Metadata>(await untilAnswered(`${options.issuer}/.well-known/openid-configuration`, 'discovery', options), 'discovery');
    if (metadata.issuer !== options.issuer) throw new Error(`discovery: issuer is ${metadata.issuer}, not ${options.issuer}`);
    // Cache the JWKS as long as Latchkey says (its max-age is tied to how early new keys are published).
    const probe = await request(metadata.jwks_uri, 'JWKS');
    await json<unknown>(probe, 'JWKS');
    const maxAge = Number(/max-age=(\d+)/.exec(probe.headers.get('cache-control') ?? '')?.[1] ?? NaN);
    const cacheMaxAge = Number.isFinite(maxAge) ? Math.min(maxAge * 1000, JWKS_CACHE_CEILING_MS) : JWKS_CACHE_CEILING_MS;
    const server = new ResourceServer(options, metadata, createRemoteJWKSet(new URL(metadata.jwks_uri), { cacheMaxAge }));
    await server.sync();
    server.#schedule();
    return server;
  }

  /**
   * Verifies an access token (the whole Authorization header value, `Bearer …` or `DPoP …`, or the
   * token). Resolves with its claims; rejects with TokenRejected when it is not a valid, unrevoked
   * token for this API (with every scope in `scopes`, if given). A DPoP-bound token is accepted only
   * with the DPoP scheme and a valid proof for `dpop` (the request's DPoP header, method and URL).
   */
  async verify(
    tokenOrHeader: string | undefined,
    { scopes = [], dpop }: { scopes?: readonly string[]; dpop?: DPoPRequest } = {},
  ): Promise<AccessTokenClaims> {
    const presented = (tokenOrHeader ?? '').trim();
    const scheme = /^dpop(\s|$)/i.test(presented) ? 'DPoP' : 'Bearer';
    const named = /^(Bearer|DPoP)(\s+|$)/i;
    const token = presented.replace(named, '');
    // A header of the scheme whose token breaks its grammar (none, spaces in it, `"`, `,`, `=` before
    // the end) is a malformed request, RFC 6750 §3.1's invalid_request (400), as Latchkey answers it.
    if (named.test(presented) && !TOKEN68.test(token)) {
      throw new TokenRejected(`the Authorization header does not follow the ${scheme} scheme's grammar: ${scheme} <token>`, 'invalid_request', scheme);
    }
    if (!token) throw new TokenRejected(NO_TOKEN, 'invalid_token', scheme);
    this.#requireFresh(scheme);
    let claims: AccessTokenClaims;
    let kid: string;
    try {
      // Before the signature: a revoked key may still be in the cached JWKS, and a forgery made with it verifies.
      // Latchkey names the key of every token it signs; one without kid would pass this check, and
      // jose would try the JWKS's only key (the revoked one, say) for it.
      const header = decodeProtectedHeader(token);
      if (typeof header.kid !== 'string') throw new TokenRejected('the access token names no signing key (kid)', 'invalid_token', scheme);
      kid = header.kid;
      if (this.#kids.has(kid)) throw new TokenRejected('the access token has been revoked (its signing key was revoked)', 'invalid_token', scheme);
      ({ payload: claims } = await jwtVerify<AccessTokenClaims>(token, this.#keys, {
        issuer: this.#options.issuer,
        audience: this.#options.audience,
        typ: 'at+jwt',
        algorithms: ['RS256'],
        clockTolerance: this.#options.clockTolerance,
        requiredClaims: ['jti', 'exp', 'iat', 'sub', 'client_id'],
      }));
    } catch (error) {
      if (error instanceof errors.JOSEError || error instanceof TypeError) throw new TokenRejected(this.#whyRefused(error, token), 'invalid_token', scheme);
      throw error;
    }
    await this.#checkBinding(claims, token, scheme, dpop);
    // Again as the list is read: the checks above wait (the JWKS fetched for a key not seen yet, a
    // DPoP replay store), and a check begun just inside maxStaleness took a revoked token past it
    // (ninth fresh-eyes passes of 2026-12-06, endings).
    this.#requireFresh(scheme);
    // The key too: its revocation may have been read while the checks above waited (thirteenth
    // fresh-eyes passes of 2026-12-07: a DPoP proof's replay store answering slowly).
    if (this.isRevoked(claims, { kid })) throw new TokenRejected('the access token has been revoked', 'invalid_token', scheme);
    if (this.#pastLoweredLifetime(claims)) throw new TokenRejected('the access token has expired (its lifetime was lowered since it was issued)', 'invalid_token', scheme);
    const granted = new Set(typeof claims.scope === 'string' ? claims.scope.split(' ') : []);
    const missing = scopes.filter((scope) => !granted.has(scope));
    if (missing.length) throw new TokenRejected(`missing scope: ${missing.join(' ')}`, 'insufficient_scope', scheme);
    return claims;
  }

  /**
   * What jose's refusal means for this API, for the log (error.message): the likely slips (a token
   * asked for without `resource`, for another API, from another issuer, an ID token, a clock ahead)
   * named with what the token holds and what was expected, rather than jose's "unexpected "aud"
   * claim value" (sixteenth passes, the developer and the operator). The token's own values are read
   * unverified, only to be quoted, JSON-escaped and cut short.
   */
  #whyRefused(error: Error, token: string): string {
    const { issuer, audience } = this.#options;
    let claims: JWTPayload | undefined;
    try {
      claims = decodeJwt(token);
    } catch {
      // not a JWT at all
    }
    if (claims === undefined) {
      return `not a JWT: an opaque token (one asked for without resource=${audience} at the token endpoint is for userinfo alone; an API of format opaque asks introspection)`;
    }
    const quoted = (value: unknown) => (value === undefined ? 'none' : JSON.stringify(value).slice(0, 200));
    const claim = error instanceof errors.JWTClaimValidationFailed || error instanceof errors.JWTExpired ? error.claim : undefined;
    if (claim === 'typ') {
      return `not an access token: its typ is ${quoted(safeHeader(token).typ)}, not "at+jwt" (an ID token? send the access token)`;
    }
    // A token of another issuer fails on its key before its claims are read: say whose it is.
    if (claims.iss !== issuer && (claim === 'iss' || error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWSSignatureVerificationFailed)) {
      return `the access token was issued by ${quoted(claims.iss)}, not ${issuer} (${error.message})`;
    }
    if (claim === 'aud') {
      const slip = nearAudience(claims.aud, audience);
      if (slip !== undefined) {
        // Latchkey issues a token only for an API registered under that identifier: the slip may be this API's own option.
        return `the access token is for ${quoted(claims.aud)}, not this API (${audience}): Latchkey issues tokens only for a registered API's identifier, compared exactly; if this API is registered as ${quoted(slip)}, give audience: ${quoted(slip)} here; if not, the caller asks for it with resource=${audience}`;
      }
      return `the access token is for ${quoted(claims.aud)}, not this API (${audience}): the caller asks for it with resource=${audience}`;
    }
    if (claim === 'exp' && typeof claims.exp === 'number') {
      const now = Math.floor(Date.now() / 1000);
      const when = (seconds: number) => new Date(seconds * 1000).toISOString();
      const issued = typeof claims.iat === 'number' ? `issued ${when(claims.iat)}, ` : '';
      return `the access token has expired: ${issued}expired ${when(claims.exp)}, ${now - claims.exp} s before this machine's clock (${when(now)}); a token just issued that is refused so has met a clock ahead of Latchkey's (clockTolerance is ${this.#options.clockTolerance} s)`;
    }
    return error.message;
  }

  /** Refuses every token while what this helper knows of the revocation list is older than maxStaleness (fails closed). */
  #requireFresh(scheme: 'Bearer' | 'DPoP'): void {
    const staleFor = this.#lastSync === undefined ? Infinity : performance.now() - this.#lastSync.mono;
    if (staleFor > this.#options.maxStaleness) {
      const last = this.#lastFailure === undefined ? '' : ` (last attempt: ${this.#lastFailure})`;
      throw new TokenRejected(`revocation status unknown: the revocation feed has not been reached for ${Math.round(staleFor)} ms${last}`, 'invalid_token', scheme);
    }
  }

  /** RFC 9449 §7.1: a DPoP-bound token only with the DPoP scheme and its key's proof; DPoP only for a bound token. */
  async #checkBinding(claims: AccessTokenClaims, token: string, scheme: 'Bearer' | 'DPoP', request: DPoPRequest | undefined) {
    const jkt = claims.cnf?.jkt;
    if (claims.cnf !== undefined && typeof jkt !== 'string') throw new TokenRejected('the token is bound to a key this helper cannot check');
    if (jkt === undefined) {
      // What the metadata promises is what is enforced: a bearer token's thief needs no key.
      if (this.dpopBoundAccessTokensRequired && scheme !== 'DPoP') throw new TokenRejected('this API takes only DPoP-bound tokens', 'invalid_token', 'DPoP');
      if (scheme === 'DPoP') throw new TokenRejected('the DPoP scheme is for DPoP-bound tokens; this one is a bearer token', 'invalid_token', 'DPoP');
      return;
    }
    if (scheme !== 'DPoP') throw new TokenRejected('a DPoP-bound token must be presented with the DPoP scheme and a proof', 'invalid_token', 'DPoP');
    try {
      await this.#dpop.check(request, token, jkt);
    } catch (error) {
      if (error instanceof DPoPProblem) throw new TokenRejected(error.message, error.code, 'DPoP', error.nonce);
      throw error;
    }
  }

  /**
   * The WWW-Authenticate value to answer a refused request with (RFC 6750 §3, RFC 9449 §7.1): the
   * failing scheme's challenge with its error, and the other scheme's; without an error or a token, both plain.
   */
  challenge(error?: TokenRejected): string {
    // RFC 6750 §3.1: a request with no token at all gets the challenges without an error code.
    const failure = error?.message === NO_TOKEN ? undefined : error;
    return wwwAuthenticate({ error: failure?.code, scheme: failure?.scheme, dpopAlgorithms: this.#dpop.algorithms, bearer: !this.dpopBoundAccessTokensRequired });
  }

  /** Whether only DPoP-bound tokens are accepted: give it to createProtectedResource as dpopBoundAccessTokensRequired. */
  get dpopBoundAccessTokensRequired(): boolean {
    return this.#options.dpopBoundAccessTokensRequired === true;
  }

  /** The DPoP algorithms this API accepts (Latchkey's): give them to createProtectedResource so that its challenges offer DPoP too. */
  get dpopAlgorithms(): readonly string[] {
    return this.#dpop.algorithms;
  }

  /** Whether verified claims are on the revocation list as last synced. */
  isRevoked(claims: Pick<AccessTokenClaims, 'jti' | 'iat' | 'gid' | 'sub' | 'client_id' | 'scope'>, header: { kid?: string } = {}): boolean {
    if (this.#jtis.has(claims.jti)) return true;
    if (this.#epoch !== undefined && claims.iat <= this.#epoch) return true;
    if (header.kid !== undefined && this.#kids.has(header.kid)) return true;
    const issuedUpTo = (entry: UpTo | undefined) => entry !== undefined && claims.iat <= entry.revokedAt;
    return (
      issuedUpTo(claims.gid === undefined ? undefined : this.#grants.get(claims.gid)) ||
      // A person's token only (under a grant): a client's own token's sub is the client.
      issuedUpTo(claims.gid === undefined ? undefined : this.#subjects.get(claims.sub)) ||
      // What a person gave one client (they withdrew its access): a sub holds no space.
      issuedUpTo(claims.gid === undefined ? undefined : this.#withdrawals.get(`${claims.sub} ${claims.client_id}`)) ||
      issuedUpTo(claims.gid === undefined ? undefined : this.#delegations.get(claims.client_id)) ||
      issuedUpTo(claims.gid === undefined ? undefined : this.#people.get('')) ||
      (claims.gid !== undefined && typeof claims.scope === 'string' && claims.scope.split(' ').some((scope) => issuedUpTo(this.#narrowings.get(`${claims.client_id} ${scope}`)))) ||
      issuedUpTo(this.#clients.get(claims.client_id)) ||
      // A client's own token (client_credentials) carries no gid; every token verified here is for this API.
      (claims.gid === undefined && ['', ...(typeof claims.scope === 'string' ? claims.scope.split(' ') : [])].some((scope) => issuedUpTo(this.#clientGrants.get(`${claims.client_id} ${scope}`)))) ||
      issuedUpTo(this.#removals.get(this.#options.audience)) ||
      (typeof claims.scope === 'string' && claims.scope.split(' ').some((scope) => issuedUpTo(this.#scopesTaken.get(scope))))
    );
  }

  /**
   * Whether the token outlived a lifetime lowered since its issue (a lifetime entry): its `iat` plus
   * that lifetime passed, with the tolerance jose gives its `exp`.
   */
  #pastLoweredLifetime(claims: Pick<AccessTokenClaims, 'iat' | 'gid'>): boolean {
    const now = Date.now() / 1000 - this.#options.clockTolerance;
    const who = claims.gid === undefined ? 'clients' : 'people';
    for (const [key, { revokedAt }] of this.#lowered) {
      const [kind, seconds] = key.split(' ');
      if (kind === who && claims.iat <= revokedAt && claims.iat + Number(seconds) <= now) return true;
    }
    return false;
  }

  /** Epoch ms of the last successful poll of the feed: when its last page was asked for (what it says is at least that fresh). */
  get lastSync(): number | undefined {
    return this.#lastSync?.at;
  }

  /** Polls the feed now (after any poll in flight), until it has nothing more. */
  sync(): Promise<void> {
    const run = this.#queue.then(() => this.#pull());
    this.#queue = run.then(
      () => void (this.#lastFailure = undefined),
      (error: Error) => void (this.#lastFailure = error instanceof RequestFailed ? error.summary : error.message),
    );
    return run;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /**
   * The next poll, `wait` ms on. A failed one doubles the wait, up to a ceiling well inside
   * maxStaleness (so the helper sees the feed back before it would refuse tokens for it), and goes
   * to that ceiling at once when Latchkey refused it: an API whose secret was rotated asked for a
   * token twice a second, forever, each try a line in Latchkey's log (newcomer pass of 2026-12-06).
   */
  #schedule(wait = this.#options.pollInterval) {
    if (this.#closed) return;
    const { pollInterval, maxStaleness } = this.#options;
    const ceiling = Math.max(pollInterval, Math.min(5_000, maxStaleness / 4));
    this.#timer = setTimeout(() => {
      this.sync().then(
        () => this.#schedule(),
        (error: Error) => {
          this.#options.onError?.(error);
          this.#schedule(error instanceof RequestFailed && error.refused ? ceiling : Math.min(wait * 2, ceiling));
        },
      );
    }, wait);
    this.#timer.unref();
  }

  async #pull(): Promise<void> {
    const endpoint = this.#metadata.revocation_feed_endpoint ?? `${this.#options.issuer}/revocations`;
    for (let page = 0; page < 100; page += 1) {
      const url = new URL(endpoint);
      if (this.#cursor) url.searchParams.set('after', this.#cursor);
      // What a page says is as fresh as Latchkey's read of the feed, made after the request was sent:
      // dated then, never by the answer's arrival. An answer held on its way (a buffering proxy, a
      // congested link, this process's event loop stalled) said what the feed held before a
      // revocation made meanwhile, and counted as fresh for maxStaleness more from its arrival: with
      // the feed out of reach afterwards, the revoked token was accepted past the promised bound
      // (ninth fresh-eyes passes of 2026-12-06, endings).
      let token = await this.#token();
      let sentAt = { at: Date.now(), mono: performance.now() };
      let response = await request(url, 'revocation feed', { headers: { authorization: `Bearer ${token}` } });
      if (response.status === 401) {
        this.#accessToken = undefined; // expired or revoked: get a new one, once
        token = await this.#token();
        sentAt = { at: Date.now(), mono: performance.now() };
        response = await request(url, 'revocation feed', { headers: { authorization: `Bearer ${token}` } });
      }
      const body = await json<{ entries: FeedEntry[]; cursor: string | null; more: boolean; epoch?: number }>(response, 'revocation feed');
      if (typeof body.epoch === 'number' && body.epoch !== this.#epoch) {
        // Latchkey's store began again (it lost everything, the feed with it): its new feed's lines
        // may sort before our cursor (another host's clock), so read it from its start.
        const known = this.#epoch;
        this.#epoch = body.epoch;
        if (known !== undefined && this.#cursor !== undefined) {
          this.#cursor = undefined;
          continue;
        }
      }
      const raise = (map: Map<string, UpTo>, key: string, entry: { revoked_at: number; exp: number }) => {
        const known = map.get(key);
        if (!known || known.revokedAt < entry.revoked_at) map.set(key, { revokedAt: entry.revoked_at, exp: entry.exp });
      };
      for (const entry of body.entries) {
        if (entry.type === 'jti') this.#jtis.set(entry.jti, entry.exp);
        else if (entry.type === 'grant') raise(this.#grants, entry.gid, entry);
        else if (entry.type === 'sub') raise(this.#subjects, entry.sub, entry);
        else if (entry.type === 'withdrawn') raise(this.#withdrawals, `${entry.sub} ${entry.client_id}`, entry);
        else if (entry.type === 'people') raise(this.#people, '', entry);
        else if (entry.type === 'delegated') raise(entry.scope ? this.#narrowings : this.#delegations, entry.scope ? `${entry.client_id} ${entry.scope}` : entry.client_id, entry);
        else if (entry.type === 'client') raise(this.#clients, entry.client_id, entry);
        else if (entry.type === 'kid') this.#kids.set(entry.kid, Math.max(entry.exp, this.#kids.get(entry.kid) ?? 0));
        // Only this API's: another API's grants, removals and scopes taken out do not concern the tokens verified here.
        else if (entry.type === 'client_grant' && entry.aud === this.#options.audience) raise(this.#clientGrants, `${entry.client_id} ${entry.scope ?? ''}`, entry);
        else if (entry.type === 'api' && entry.aud === this.#options.audience) raise(entry.scope ? this.#scopesTaken : this.#removals, entry.scope ?? entry.aud, entry);
        else if (entry.type === 'lifetime' && entry.aud === this.#options.audience && entry.seconds > 0) raise(this.#lowered, `${entry.who} ${entry.seconds}`, entry);
      }
      if (body.cursor) this.#cursor = body.cursor;
      if (!body.more) {
        // Synced only once the whole list is read: a helper started behind a feed longer than one
        // sync's pages (or a burst longer than that) refuses tokens until it has caught up, rather
        // than accept one revoked further on.
        this.#lastSync = sentAt;
        break;
      }
    }
    this.#forgetExpired();
  }

  /** Entries outlive the tokens they revoke by the clock tolerance, then go. */
  #forgetExpired() {
    const horizon = Date.now() / 1000 - this.#options.clockTolerance;
    for (const [jti, exp] of this.#jtis) if (exp < horizon) this.#jtis.delete(jti);
    for (const [gid, { exp }] of this.#grants) if (exp < horizon) this.#grants.delete(gid);
    for (const map of [this.#subjects, this.#withdrawals, this.#delegations, this.#narrowings, this.#people]) for (const [key, { exp }] of map) if (exp < horizon) map.delete(key);
    for (const [clientId, { exp }] of this.#clients) if (exp < horizon) this.#clients.delete(clientId);
    for (const [kid, exp] of this.#kids) if (exp < horizon) this.#kids.delete(kid);
    for (const map of [this.#clientGrants, this.#removals, this.#scopesTaken, this.#lowered]) for (const [key, { exp }] of map) if (exp < horizon) map.delete(key);
  }

  async #token(): Promise<string> {
    if (this.#options.feedToken) return this.#options.feedToken();
    if (this.#accessToken && Date.now() < this.#accessToken.renewAt) return this.#accessToken.value;
    const { clientId, clientSecret } = this.#options;
    const credentials = Buffer.from(`${encodeURIComponent(clientId!)}:${encodeURIComponent(clientSecret!)}`).toString('base64');
    const response = await request(this.#metadata.token_endpoint, 'token for the revocation feed', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${credentials}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${this.#options.issuer}/revocations`, scope: FEED_SCOPE }),
    });
    const body = await json<{ access_token: string; expires_in?: number }>(response, 'token for the revocation feed');
    // Renew at 80% of its life, so a poll never goes out with a token about to expire.
    this.#accessToken = { value: body.access_token, renewAt: Date.now() + (body.expires_in ?? 60) * 800 };
    return body.access_token;
  }
}

/** See ResourceServer.create. */
export function createResourceServer(options: ResourceServerOptions): Promise<ResourceServer> {
  return ResourceServer.create(options);
}

/**
 * The token's audience when it is a slip away from this API's (a trailing slash, the case of its
 * scheme or host, an explicit default port): the identifier the API may well be registered under,
 * which the `audience` option then misspells (seventeenth passes, the newcomer's first hour).
 */
function nearAudience(aud: unknown, audience: string): string | undefined {
  const values = Array.isArray(aud) ? aud : [aud];
  const loose = (value: string) => {
    let text = value;
    try {
      text = new URL(value).href;
    } catch {
      // not a URL: compared as it is, but for a trailing slash
    }
    return text.replace(/\/+$/, '');
  };
  return values.find((value): value is string => typeof value === 'string' && value !== audience && loose(value) === loose(audience));
}
