/**
 * DPoP (RFC 9449) at a resource server: the checks of §4.3 and §7.1 for a DPoP-bound access token,
 * with jose verifying the proof's signature against the public key it embeds.
 *
 * A proof is accepted when it is a JWT with `typ` dpop+jwt, an allowed asymmetric `alg` (the
 * provider's dpop_signing_alg_values_supported), a public `jwk` whose RFC 7638 thumbprint is the
 * token's `cnf.jkt`, `htm` the request's method, `htu` the request's URL (both normalised, query and
 * fragment ignored: §4.3 step 9), `ath` the SHA-256 of the access token, an `iat` within the window,
 * a `jti` not seen before within that window, and, when the caller issues nonces, one of them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, errors, jwtVerify, type JWTPayload } from 'jose';

/** The request a proof must be for: its method and the absolute URL the client called. */
export interface DPoPRequest {
  /** The DPoP header's value (a second DPoP header, as an array, is refused: §4.3 step 1). */
  readonly proof: string | readonly string[] | undefined;
  readonly method: string;
  /** The URL as the client sees it (your public origin, not one behind a proxy). */
  readonly url: string | URL;
}

/**
 * Single use of a proof's jti: true the first time a key is seen before `expiresAt` (epoch seconds).
 * The key is the key's thumbprint and the SHA-256 of the jti (base64url), 87 characters whatever the
 * client sent.
 */
export interface ReplayStore {
  unique(key: string, expiresAt: number): boolean | Promise<boolean>;
}

/** Server nonces (§9): what to tell clients to use, and whether a proof's nonce is one of ours. */
export interface NonceSource {
  issue(): string;
  check(nonce: string): boolean;
}

export interface DPoPOptions {
  /** Seconds a proof is good for after its iat (and so how long its jti is remembered). Default 60. */
  readonly proofMaxAge?: number;
  /** Where jtis are remembered. Default: a bounded store in this process's memory (see MemoryReplayStore). */
  readonly replay?: ReplayStore;
  /** Nonces every proof must carry. Default: none asked for. See RotatingNonces. */
  readonly nonces?: NonceSource;
}

export type DPoPErrorCode = 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce';

export class DPoPProblem extends Error {
  constructor(
    readonly code: DPoPErrorCode,
    message: string,
    readonly nonce?: string,
  ) {
    super(message);
  }
}

/**
 * jtis in this process's memory, each until its proof expires. Bounded: when `max` unexpired jtis are
 * held, the oldest is forgotten first, so a replay of it would be accepted; size `max` above the
 * proofs your API takes per proof lifetime, or give a shared ReplayStore (several instances of an
 * API need one anyway: this one sees only its own process's proofs).
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #seen = new Map<string, number>();
  constructor(readonly max = 100_000) {}

  unique(key: string, expiresAt: number): boolean {
    const now = Date.now() / 1000;
    const known = this.#seen.get(key);
    if (known !== undefined && known > now) return false;
    this.#seen.delete(key);
    // Insertion order is expiry order give or take the skew, so the front holds what goes first.
    for (const [oldKey, exp] of this.#seen) {
      if (exp > now && this.#seen.size < this.max) break;
      this.#seen.delete(oldKey);
    }
    this.#seen.set(key, expiresAt);
    return true;
  }
}

/**
 * Random nonces that change every `rotateEvery` seconds; the previous one is still accepted. One
 * process's. Timed on the monotonic clock: on the wall clock, one stepped back kept a nonce for the
 * whole step (eleventh fresh-eyes passes of 2026-12-07).
 */
export class RotatingNonces implements NonceSource {
  #current = randomBytes(16).toString('base64url');
  #previous: string | undefined;
  #rotatedAt = performance.now();
  constructor(readonly rotateEvery = 60) {}

  issue(): string {
    if (performance.now() - this.#rotatedAt >= this.rotateEvery * 1000) {
      this.#previous = this.#current;
      this.#current = randomBytes(16).toString('base64url');
      this.#rotatedAt = performance.now();
    }
    return this.#current;
  }

  check(nonce: string): boolean {
    return nonce === this.issue() || nonce === this.#previous;
  }
}

/**
 * Origin and path after RFC 3986's syntax- and scheme-based normalisation (§6.2.2, §6.2.3), which
 * RFC 9449 §4.3 asks before comparing `htu`: WHATWG URL parsing lower-cases scheme and host, drops a
 * default port and resolves dot segments; then a percent-encoded unreserved character is that
 * character and other percent-encodings' hex digits are upper case (§6.2.2.1, §6.2.2.2), so a path a
 * proxy or library re-encoded is the same path. An encoded reserved character (`%2F`) stays encoded.
 */
function normalisedUrl(value: string | URL): string | undefined {
  const url = URL.parse(String(value));
  if (!url) return undefined;
  const path = url.pathname.replace(/%([0-9a-f]{2})/gi, (_encoding, hex: string) => {
    const character = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(character) ? character : `%${hex.toUpperCase()}`;
  });
  return `${url.origin}${path}`;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

interface ProofClaims extends JWTPayload {
  htm?: unknown;
  htu?: unknown;
  ath?: unknown;
  nonce?: unknown;
}

export class DPoPVerifier {
  readonly #maxAge: number;
  readonly #replay: ReplayStore;
  readonly #nonces: NonceSource | undefined;

  constructor(
    readonly algorithms: readonly string[],
    readonly clockTolerance: number,
    options: DPoPOptions = {},
  ) {
    this.#maxAge = options.proofMaxAge ?? 60;
    this.#replay = options.replay ?? new MemoryReplayStore();
    this.#nonces = options.nonces;
  }

  /** Checks the proof of a request that presented `accessToken`, bound to the key with thumbprint `jkt`. Throws DPoPProblem. */
  async check(request: DPoPRequest | undefined, accessToken: string, jkt: string): Promise<void> {
    const proof = request?.proof;
    if (proof === undefined || proof === '') throw new DPoPProblem('invalid_dpop_proof', 'a DPoP-bound token needs a DPoP proof');
    if (typeof proof !== 'string') throw new DPoPProblem('invalid_dpop_proof', 'exactly one DPoP header is allowed');
    let payload: ProofClaims;
    let jwk: Parameters<typeof calculateJwkThumbprint>[0];
    try {
      const verified = await jwtVerify<ProofClaims>(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: [...this.algorithms],
        requiredClaims: ['jti', 'htm', 'htu', 'iat'],
        // iat is checked below against the proof's own window; no exp is expected.
        clockTolerance: this.clockTolerance,
      });
      payload = verified.payload;
      jwk = verified.protectedHeader.jwk!;
    } catch (error) {
      if (error instanceof errors.JOSEError || error instanceof TypeError) {
        throw new DPoPProblem('invalid_dpop_proof', `DPoP proof: ${error.message}`);
      }
      throw error;
    }
    if (typeof payload.jti !== 'string' || !payload.jti) throw new DPoPProblem('invalid_dpop_proof', 'DPoP proof: jti must be a string');
    if (payload.htm !== request!.method.toUpperCase()) throw new DPoPProblem('invalid_dpop_proof', 'DPoP proof: htm is not the request method');
    const htu = typeof payload.htu === 'string' ? normalisedUrl(payload.htu) : undefined;
    if (htu === undefined || htu !== normalisedUrl(request!.url)) {
      // Both named: behind a TLS proxy the API's own idea of its URL (http://, an internal host) is the usual slip.
      const quoted = (value: unknown) => JSON.stringify(value ?? null).slice(0, 200);
      throw new DPoPProblem('invalid_dpop_proof', `DPoP proof: htu ${quoted(payload.htu)} is not the request URL ${quoted(request!.url)} (give dpop.url as the client called it: your public origin)`);
    }
    if (payload.ath !== sha256(accessToken)) throw new DPoPProblem('invalid_dpop_proof', 'DPoP proof: ath is not the hash of the access token');
    if ((await calculateJwkThumbprint(jwk)) !== jkt) throw new DPoPProblem('invalid_token', 'the DPoP proof is signed by another key than the token is bound to');
    const now = Math.floor(Date.now() / 1000);
    const iat = payload.iat!;
    if (iat > now + this.clockTolerance || iat < now - this.#maxAge - this.clockTolerance) {
      const off = iat > now ? `${iat - now} s ahead of` : `${now - iat} s behind`;
      throw new DPoPProblem('invalid_dpop_proof', `DPoP proof: iat is outside the accepted window (${off} this machine's clock; accepted: up to ${this.#maxAge + this.clockTolerance} s behind, ${this.clockTolerance} s ahead)`, this.#nonces?.issue());
    }
    if (this.#nonces) {
      if (typeof payload.nonce !== 'string' || !this.#nonces.check(payload.nonce)) {
        throw new DPoPProblem('use_dpop_nonce', 'DPoP proof: use the nonce this resource server issued', this.#nonces.issue());
      }
    }
    // Last, so a refused proof does not use up its jti. Remembered by its digest: a jti is the client's
    // to choose, of any length, and the store keeps each for the proof's lifetime (seventeenth passes).
    // The check above reads whole seconds, so a proof is accepted until a second past iat + maxAge +
    // tolerance; remembered only until then, it was taken again in that last second (eighteenth
    // passes). One more second covers the time from this check to the store's own reading of its clock.
    const acceptedUntil = iat + this.#maxAge + this.clockTolerance + 1;
    if (!(await this.#replay.unique(`${jkt}:${sha256(payload.jti)}`, acceptedUntil + 1))) {
      throw new DPoPProblem('invalid_dpop_proof', 'DPoP proof: replayed (its jti was seen before)');
    }
  }

  /** The nonce to send in a DPoP-Nonce header, when this API asks for nonces. */
  nonce(): string | undefined {
    return this.#nonces?.issue();
  }
}
