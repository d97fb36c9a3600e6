/**
 * Introspection (RFC 7662) and revocation (RFC 7009) of JWT access tokens (RFC 9068).
 *
 * oidc-provider does not store JWT access tokens. In both endpoints' steps, after client
 * authentication and the check that a token is present, one step (rejectStructuredTokens) refuses
 * any token that parses as a JWS or JWE with `unsupported_token_type`. This patch puts our step in
 * its place, for every provider that registers one (takeOverStructuredTokens): the provider's own
 * client authentication stays the gate, and a JWT is answered here, its signature verified and the
 * revocation list consulted. Answering in the step, not by rewriting the engine's error afterwards,
 * means no error is made, logged as `introspection.error` and counted for a successful request.
 * A token without a "." is no JWT (the engine's test needs three or five parts) and goes straight
 * on to the engine's lookup of opaque tokens, without a decoding attempt that throws. A JWT
 * verified before (VerifiedTokens) is found by its text before its header is decoded: only a token
 * not remembered is decoded, then verified.
 */
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { errors, type Client, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import introspectionSteps from 'oidc-provider/lib/actions/introspection.js';
import revocationSteps from 'oidc-provider/lib/actions/revocation.js';
import { machineSeconds } from '../../clock.js';
import { GRANT_CLAIM, type RevocationList } from '../../revocation/list.js';
import { VerifiedTokens } from '../verified-tokens.js';

interface Options {
  readonly issuer: string;
  /** Our public keys (a function, so that it follows key rotation). */
  readonly keys: JWTVerifyGetKey;
  readonly list: RevocationList;
  readonly clockTolerance: number;
  /** RFC 7662 §4: whether the caller may learn about a token with these claims (see provider.ts). */
  readonly mayIntrospect: (caller: Client, claims: AccessTokenClaims) => Promise<boolean>;
  /** The id of the grant a person's token was issued under (its `gid` names it by a hash), while it is stored. */
  readonly grantOf?: (claims: AccessTokenClaims) => Promise<string | undefined>;
  /**
   * How long a token with these claims may live under the configuration as it is now (its API's
   * accessTokenTTL, else the default for people's or clients' own tokens): one issued under a longer
   * lifetime, lowered and restarted since, is active only to its `iat` plus this (lifetimes-as-configured.ts
   * bounds the opaque ones alike).
   */
  readonly lifetime?: (claims: AccessTokenClaims) => Promise<number>;
}

type AccessTokenClaims = JWTPayload & { client_id?: string; scope?: string; cnf?: Record<string, unknown>; [GRANT_CLAIM]?: unknown };
type Valid = { claims: AccessTokenClaims; header: JWTHeaderParameters };
type Verified = Valid | { expired: AccessTokenClaims } | undefined;

/** How many verified tokens one provider instance remembers (a few KiB each). */
const REMEMBERED_TOKENS = 10_000;

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

/**
 * Our step, by provider; a provider without one keeps the engine's. One map per process, whichever
 * copy of this module registers (the sources and the build can both be loaded in one process): the
 * engine's step lists are one.
 */
const stepsByProvider = ((globalThis as Record<symbol, unknown>)[Symbol.for('latchkey.jwtAccessTokenSteps')] ??= new WeakMap<Provider, Step>()) as WeakMap<Provider, Step>;

/**
 * In an endpoint's steps, the engine's refusal of structured tokens becomes a dispatch to the
 * provider's own step. The engine reads these lists when a Provider is made, so this runs as this
 * module loads, before any is made; it fails at start-up if the engine no longer has that step.
 */
function takeOverStructuredTokens(steps: Step[], endpoint: string) {
  if (steps.some((step) => step.name === 'structuredTokens')) return;
  const at = steps.findIndex((step) => step.name === 'rejectStructuredTokens');
  if (at < 0) throw new Error(`oidc-provider's ${endpoint} endpoint has no rejectStructuredTokens step: review src/provider/patches/jwt-access-tokens.ts`);
  const engineStep = steps[at]!;
  steps[at] = function structuredTokens(ctx, next) {
    const ours = stepsByProvider.get(ctx.oidc.provider);
    return ours ? ours(ctx, next) : engineStep(ctx, next);
  };
}
takeOverStructuredTokens(introspectionSteps as Step[], 'introspection');
takeOverStructuredTokens(revocationSteps as Step[], 'revocation');

/** Whether the engine would take `token` for a JWS or JWE (its test, without a throw for opaque tokens). */
function structured(token: string): boolean {
  if (!token.includes('.')) return false;
  try {
    return !!decodeProtectedHeader(token);
  } catch {
    return false;
  }
}

/** Answers the introspection and revocation of JWT access tokens at `provider`'s endpoints. */
export function answerJwtAccessTokens(provider: Provider, { issuer, keys, list, clockTolerance, mayIntrospect, grantOf, lifetime }: Options): void {
  const remembered = new VerifiedTokens<Valid>(REMEMBERED_TOKENS, clockTolerance);

  async function verify(token: string): Promise<Verified> {
    try {
      const { payload, protectedHeader } = await jwtVerify<AccessTokenClaims>(token, keys, {
        issuer,
        algorithms: ['RS256'],
        typ: 'at+jwt',
        clockTolerance,
      });
      const valid = { claims: payload, header: protectedHeader };
      remembered.set(token, valid);
      return valid;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return { expired: error.payload as AccessTokenClaims };
      if (error instanceof joseErrors.JOSEError) return undefined; // not ours, malformed, tampered
      throw error;
    }
  }

  // After client authentication and the token's presence: the caller is known, the token a string.
  stepsByProvider.set(provider, async function jwtAccessTokens(ctx, next) {
    const { oidc } = ctx;
    const token = oidc.params!.token as string;
    // A token verified before is a JWT (its header was parsed then): no second parse of it.
    const known = token.includes('.') ? remembered.get(token) : undefined;
    if (!known && !structured(token)) return next();
    const caller = oidc.client!;
    const verified = known ?? (await verify(token));
    ctx.status = 200;

    if (oidc.route === 'introspection') {
      ctx.body = { active: false };
      if (!verified || !('claims' in verified)) return;
      const { claims, header } = verified;
      // Expired at its exp (RFC 7662 §2.2), on the clock that stamped it: the verifier's tolerance is
      // for other clocks, and revocation below keeps it (a token an API still takes can be revoked).
      if (claims.exp !== undefined && claims.exp <= machineSeconds()) return;
      // Whether the caller may see it, whether it was revoked and how long it may live now: read together, one round trip.
      const [allowed, revoked, seconds] = await Promise.all([mayIntrospect(caller, claims), list.isRevoked(claims, header), lifetime?.(claims)]);
      if (!allowed || revoked) return;
      // Its end as configured now, when that is before its stamped exp (a lifetime lowered since it was issued).
      const exp = seconds !== undefined && typeof claims.iat === 'number' && (claims.exp === undefined || claims.iat + seconds < claims.exp) ? claims.iat + seconds : claims.exp;
      if (exp !== undefined && exp <= machineSeconds()) return;
      ctx.body = {
        active: true,
        iss: claims.iss,
        sub: claims.sub,
        aud: claims.aud,
        client_id: claims.client_id,
        scope: claims.scope,
        exp,
        iat: claims.iat,
        jti: claims.jti,
        token_type: claims.cnf?.jkt ? 'DPoP' : 'Bearer',
        ...(claims.cnf ? { cnf: claims.cnf } : {}),
      };
      return;
    }

    // Revocation: an unknown or expired token is "revoked" already (RFC 7009 §2.2).
    ctx.body = '';
    if (!verified) return;
    if (!('claims' in verified)) {
      // Expired here (past its exp plus our tolerance; its signature was checked), but an API's
      // latchkey/resource-server may take it up to its own clockTolerance (at most FEED_RETENTION)
      // past its exp: the client's own token is written to the feed for that long, the token alone
      // (its grant is not ended by a token expired everywhere else). Before, nothing was written and
      // such a helper took it to its tolerance (review of the eighteenth passes, h17).
      const { expired } = verified;
      if (expired.client_id === caller.clientId && typeof expired.jti === 'string' && typeof expired.exp === 'number') await list.revokeToken(expired.jti, expired.exp);
      return;
    }
    const { claims } = verified;
    // RFC 7009 §2.1: a client revokes only its own tokens. Answered exactly as oidc-provider answers
    // for opaque tokens under our revocation.allowedPolicy (provider.ts), so a caller cannot tell a
    // JWT from an opaque token by the answer: a confidential client gets invalid_request; a public
    // client gets 200 and nothing happens (it is not told whether the token exists). The token
    // stays valid either way.
    if (claims.client_id !== caller.clientId) {
      if (caller.clientAuthMethod === 'none') return;
      throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
    }
    // A person's token (it carries its grant's `gid`) ends its grant, as an opaque access token's
    // revocation does (RFC 7009 §2.1 allows it; patches/grant-before-token.ts): the refresh tokens,
    // codes and the grant's other access tokens, JWTs through the grant's entry, which is written even
    // when the grant is gone already, and the grant itself, so that a refresh under way cannot go on
    // from it (its consent stays remembered: the app's next sign-in asks none). Before, a JWT's
    // revocation ended that token alone, and the app's refresh token went on minting new ones. The
    // grant first, this one last: a failure half-way leaves it valid, to revoke again. A client's own
    // token (no grant) ends alone.
    const gid = claims[GRANT_CLAIM];
    if (typeof gid === 'string') {
      await list.revokeGrantHandle(gid);
      const grantId = await grantOf?.(claims);
      // The store's Grant destroy ends every artifact of it, marks it ended and deletes it.
      if (grantId) {
        await (provider.Grant as unknown as { adapter: { destroy(grantId: string): Promise<void> } }).adapter.destroy(grantId);
        // As the engine tells of an opaque token's (provider.ts revokeGrantPolicy): the log line and metric.
        provider.emit('grant.revoked', ctx, grantId);
      }
    }
    if (claims.jti && claims.exp) await list.revokeToken(claims.jti, claims.exp);
  });
}
