/**
 * Introspection (RFC 7662) and revocation (RFC 7009) of JWT access tokens (RFC 9068).
 *
 * oidc-provider does not store JWT access tokens and answers both endpoints with
 * `unsupported_token_type` for them. It does so only after the caller's client authentication
 * has succeeded, so this middleware (installed with provider.use) takes over exactly that
 * answer: the provider's own client authentication stays the gate, and we verify the token's
 * signature and consult the revocation list.
 */
import type { Middleware } from 'koa';
import { errors as joseErrors, jwtVerify, type JWTHeaderParameters, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { jsonError } from '../../http/errors.js';
import type { RevocationList } from '../../revocation/list.js';
import { VerifiedTokens } from '../verified-tokens.js';
import { scoped } from '../../http/layers.js';

interface Options {
  readonly issuer: string;
  /** Our public keys (a function, so that it follows key rotation). */
  readonly keys: JWTVerifyGetKey;
  readonly list: RevocationList;
  readonly clockTolerance: number;
  /** RFC 7662 §4: whether the caller may learn about a token with these claims (see provider.ts). */
  readonly mayIntrospect: (caller: { clientId: string; clientAuthMethod?: string }, claims: AccessTokenClaims) => Promise<boolean>;
}

type AccessTokenClaims = JWTPayload & { client_id?: string; scope?: string; cnf?: Record<string, unknown> };
type Valid = { claims: AccessTokenClaims; header: JWTHeaderParameters };
type Verified = Valid | { expired: AccessTokenClaims } | undefined;

/** How many verified tokens one provider instance remembers (a few KiB each). */
const REMEMBERED_TOKENS = 10_000;

export function jwtAccessTokenEndpoints({ issuer, keys, list, clockTolerance, mayIntrospect }: Options): Middleware {
  const remembered = new VerifiedTokens<Valid>(REMEMBERED_TOKENS, clockTolerance);

  async function verify(token: string): Promise<Verified> {
    const known = remembered.get(token);
    if (known) return known;
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

  return scoped({ routes: ['introspection', 'revocation'] }, async function jwtAccessTokens(ctx, next) {
    await next();
    const { oidc } = ctx as unknown as KoaContextWithOIDC;
    const route = oidc?.route;
    if (route !== 'introspection' && route !== 'revocation') return;
    if (ctx.status !== 400 || (ctx.body as { error?: string })?.error !== 'unsupported_token_type') return;
    const caller = oidc.client;
    const token = oidc.params?.token;
    if (!caller || typeof token !== 'string') return;

    const verified = await verify(token);
    ctx.status = 200;

    if (route === 'introspection') {
      ctx.body = { active: false };
      if (!verified || !('claims' in verified)) return;
      const { claims, header } = verified;
      // Whether the caller may see it and whether it was revoked: read together, one round trip.
      const [allowed, revoked] = await Promise.all([mayIntrospect(caller, claims), list.isRevoked(claims, header)]);
      if (!allowed || revoked) return;
      ctx.body = {
        active: true,
        iss: claims.iss,
        sub: claims.sub,
        aud: claims.aud,
        client_id: claims.client_id,
        scope: claims.scope,
        exp: claims.exp,
        iat: claims.iat,
        jti: claims.jti,
        token_type: claims.cnf?.jkt ? 'DPoP' : 'Bearer',
        ...(claims.cnf ? { cnf: claims.cnf } : {}),
      };
      return;
    }

    // Revocation: an unknown or expired token is "revoked" already (RFC 7009 §2.2).
    ctx.body = '';
    if (!verified || !('claims' in verified)) return;
    const { claims } = verified;
    // RFC 7009 §2.1: a client revokes only its own tokens. Answered exactly as oidc-provider answers
    // for opaque tokens under our revocation.allowedPolicy (provider.ts), so a caller cannot tell a
    // JWT from an opaque token by the answer: a confidential client gets invalid_request; a public
    // client gets 200 and nothing happens (it is not told whether the token exists). The token
    // stays valid either way. Revoking a JWT revokes that token only (its jti); oidc-provider, for
    // an opaque access token, also revokes the other tokens of its grant.
    if (claims.client_id !== caller.clientId) {
      if (caller.clientAuthMethod === 'none') return;
      return jsonError(ctx, 400, 'invalid_request', 'client is not authorized to revoke the presented token');
    }
    if (claims.jti && claims.exp) await list.revokeToken(claims.jti, claims.exp);
  });
}
