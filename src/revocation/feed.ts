/**
 * GET /revocations — the revocation feed, for resource servers that verify our JWTs locally.
 *
 *   GET /revocations                  every revocation that still matters, oldest first
 *   GET /revocations?after=<cursor>   only what was added since that page
 *   Authorization: Bearer <access token for aud <issuer>/revocations, scope "revocations">
 *
 * Answers `{ entries, cursor, more, epoch }` (see RevocationEntry; `epoch`: every token issued
 * before that second is revoked, RevocationList.epoch). A resource server polls it with the
 * last cursor (the helper latchkey/resource-server does, twice a second), so a revocation reaches
 * it within a poll interval. Entries are listed for as long as a token they revoke could be
 * valid; a cursor stays usable as long as that (older parts of the feed hold nothing that matters).
 * A cursor past the feed's last line is answered from its start (Kv.readLog: the store's ids went back).
 */
import type { Middleware } from 'koa';
import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Apis } from '../apis/apis.js';
import { malformedTokenRequest, presentedToken } from '../http/bearer.js';
import type { SenderConstraint } from '../http/sender-constraint.js';
import { jsonError } from '../http/errors.js';
import { scoped } from '../http/layers.js';
import { LOG_ID } from '../store/kv.js';
import { FEED_PATH, FEED_SCOPE, feedAudience } from '../apis/feed-server.js';
import { GRANT_CLAIM, type RevocationList } from './list.js';

export const FEED_PAGE_LIMIT = 1000;

interface Options {
  readonly issuer: string;
  /** Our published keys (KeyringService.verifier: it follows key rotation). */
  readonly keys: JWTVerifyGetKey;
  readonly list: RevocationList;
  /** Operator grants: the feed is read only by clients granted it, checked at every read. */
  readonly apis: Apis;
  readonly clockTolerance: number;
  /** A DPoP-bound token only with its key's proof (RFC 9449 §7.1). */
  readonly senderConstraint: SenderConstraint;
}

export function revocationFeed({ issuer, keys, list, apis, clockTolerance, senderConstraint }: Options): Middleware {
  const audience = feedAudience(issuer);
  // The API's identifier, as the admin API names its own realm.
  const realm = audience;

  return scoped({ paths: [FEED_PATH] }, async function feed(ctx, next) {
    // OPTIONS is the app's 404, as everywhere (no preflight here: the feed is read by servers).
    if (ctx.path !== FEED_PATH || ctx.method === 'OPTIONS') return next();
    ctx.set('Cache-Control', 'no-store');
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      return jsonError(ctx, 405, 'invalid_request', 'the revocation feed is read with GET');
    }

    // RFC 6750: no credentials → a bare challenge; bad credentials → invalid_token; a malformed request → invalid_request.
    const challenge = (status: number, error?: string, description?: string) => {
      ctx.set('WWW-Authenticate', `Bearer realm="${realm}"${error ? `, error="${error}"` : ''}, scope="${FEED_SCOPE}"`);
      if (error) jsonError(ctx, status, error, description);
      else jsonError(ctx, status, 'invalid_token', 'an access token is required');
    };
    const malformed = malformedTokenRequest(ctx);
    if (malformed) return challenge(400, 'invalid_request', malformed);
    const presented = presentedToken(ctx);
    if (!presented) return challenge(401);
    let claims, signedBy;
    try {
      ({ payload: claims, protectedHeader: signedBy } = await jwtVerify(presented.token, keys, {
        issuer,
        audience,
        algorithms: ['RS256'],
        typ: 'at+jwt',
        clockTolerance,
      }));
    } catch {
      return challenge(401, 'invalid_token', `not a valid access token for ${audience}`);
    }
    const cnf = claims.cnf as { jkt?: unknown } | undefined;
    if (cnf !== undefined && typeof cnf.jkt !== 'string') return challenge(401, 'invalid_token', 'the token is bound in a way this feed cannot check');
    if (!(await senderConstraint.allows(ctx, presented, cnf?.jkt as string | undefined))) return;
    // The request line names the client of every read that got this far, refused or not (app.ts).
    if (typeof claims.client_id === 'string') ctx.state.clientId = claims.client_id;
    if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(FEED_SCOPE)) {
      return challenge(403, 'insufficient_scope', `the token lacks the scope "${FEED_SCOPE}"`);
    }
    if (await list.isRevoked(claims, signedBy)) return challenge(401, 'invalid_token', 'the access token is revoked');
    // A privileged API: only a client's own token (client_credentials: sub is the client, no
    // person's grant behind it) whose client an operator granted the feed, still granted now.
    const clientId = claims.client_id;
    if (typeof clientId !== 'string' || claims.sub !== clientId || claims[GRANT_CLAIM] !== undefined) {
      return challenge(403, 'insufficient_scope', 'the feed is read only with a client_credentials token');
    }
    if (!(await apis.grantAt(clientId, audience))?.scopes.includes(FEED_SCOPE)) {
      return challenge(403, 'insufficient_scope', `client ${clientId} is not granted the feed (latchkey apis grant)`);
    }

    const after = ctx.query.after;
    const limit = ctx.query.limit;
    // limit=0 was a page of one, 5000 one of 1000: a page is the size asked for, or the request is refused.
    // A limit[] or an after[] of a query parser that makes arrays is no parameter of ours: refused, not taken as absent.
    if (Object.hasOwn(ctx.query, 'limit[]') || Object.hasOwn(ctx.query, 'after[]')) {
      return jsonError(ctx, 400, 'invalid_request', 'limit and after are given once, by those names');
    }
    const size = limit === undefined ? FEED_PAGE_LIMIT : typeof limit === 'string' && /^[1-9]\d{0,3}$/.test(limit) ? Number(limit) : 0;
    if (after !== undefined && (typeof after !== 'string' || !LOG_ID.test(after))) {
      return jsonError(ctx, 400, 'invalid_request', 'after must be a cursor this feed gave (its `cursor`)');
    }
    if (size < 1 || size > FEED_PAGE_LIMIT) return jsonError(ctx, 400, 'invalid_request', `limit must be a number from 1 to ${FEED_PAGE_LIMIT}`);
    const page = await list.feed(after, size);
    ctx.body = { entries: page.entries, cursor: page.cursor ?? null, more: page.more, epoch: page.epoch };
  });
}
