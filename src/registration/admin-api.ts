/**
 * The admin API (/admin/…): JSON for operators' tooling — clients, users, APIs and upstream providers.
 *
 * Callers present an access token for the admin resource server (`<issuer>/admin`, RFC 8707),
 * obtained with client_credentials by a client that an operator granted an admin scope
 * (`latchkey apis grant --api <issuer>/admin --scope admin`): `admin:read` reads, `admin` also
 * writes. A token issued to a person never reaches it. The grant is checked at every call, so
 * revoking it ends access at once; admin tokens are opaque, so revoking one (RFC 7009) or deleting
 * its client does too. No static shared password exists.
 * The routes are described by the OpenAPI document at /admin/openapi.json.
 */
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { malformedTokenRequest, presentedToken } from '../http/bearer.js';
import { routesWithAllow } from '../http/method-not-allowed.js';
import type { SenderConstraint } from '../http/sender-constraint.js';
import { jsonError } from '../http/errors.js';
import { underPrefix } from '../http/under-prefix.js';
import type { Accounts } from '../accounts/accounts.js';
import type { Apis } from '../apis/apis.js';
import type { AccountSessions, ForgetsConsentsGivenWith } from '../accounts/sessions.js';
import type { UpstreamLinks } from '../accounts/links.js';
import type { OwedEndings } from '../accounts/owed-endings.js';
import type { ForgetsConsents, GrantRevocation } from '../revocation/grants.js';
import type { RevocationList } from '../revocation/list.js';
import { opaqueRevoked } from '../revocation/opaque-introspection.js';
import type { Clients } from './clients.js';
import { adminResourceServer } from '../apis/admin-resource.js';
import type { ProviderInService } from '../provider-in-service.js';
import { apiRoutes } from './admin-apis.js';
import { clientRoutes } from './admin-clients.js';
import { userRoutes } from './admin-users.js';
import { upstreamRoutes } from './admin-upstreams.js';
import type { Upstreams } from '../upstreams/registry.js';
import { removeUpstream } from '../upstreams/removal.js';
import type { SecondFactors } from '../accounts/second-factors.js';
import { openApiDocument } from './openapi.js';
import { jsonBody } from '../http/bodies.js';

interface Options {
  readonly issuer: string;
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly clients: Clients;
  readonly accounts: Accounts;
  readonly apis: Apis;
  /** Revokes what a disabled person held. */
  readonly grants: GrantRevocation;
  /** Forgets what a disabled person consented to. */
  readonly consents: ForgetsConsents & ForgetsConsentsGivenWith;
  /** A token held across a revoked or narrowed grant stays refused when the grant is given again. */
  readonly revocations: RevocationList;
  /** Ends a disabled person's sessions (with back-channel logout to their apps). */
  readonly sessions: AccountSessions;
  readonly secretRotationGrace: number;
  readonly upstreams: Upstreams;
  /** What removing an upstream ends: the sessions it signed in, what its people were granted through it (upstreams/removal.ts endingsThrough). */
  readonly endThroughUpstream: (id: string) => Promise<number>;
  /** Its links: a removal records the issuer they were made with. */
  readonly links: UpstreamLinks;
  /** Passkeys, authenticator apps, recovery codes: listed and reset by operators. */
  readonly secondFactors: SecondFactors;
  /** What a second-factor reset or an upstream's removal ends, kept as owed until done. */
  readonly owed: OwedEndings;
  /** Called after an operator reset a person's second factors (for the log and metrics). */
  readonly onSecondFactorsReset: (sub: string) => void;
  /** A DPoP-bound token only with its key's proof (RFC 9449 §7.1). */
  readonly senderConstraint: SenderConstraint;
}

export function adminApi(options: Options): Middleware {
  return underPrefix('/admin', routesWithAllow(adminRouter(options), true));
}

/** The admin API's routes (its OpenAPI test lists them). */
export function adminRouter({ issuer, providers, clients, accounts, apis, grants, consents, revocations, sessions, secretRotationGrace, upstreams, endThroughUpstream, links, secondFactors, owed, onSecondFactorsReset, senderConstraint }: Options): Router {
  const audience = adminResourceServer(issuer).identifier;
  const router = new Router({ prefix: '/admin' });
  const json = jsonBody('64kb');

  /** RFC 6750 bearer authentication with the admin scope this route needs. */
  const requireScope = (scope: 'admin' | 'admin:read') => async (ctx: Context, next: Next) => {
    // Its answers hand out client secrets and show people: RFC 6749 §5.1's pair (patches/pragma-no-cache.ts).
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    const presented = presentedToken(ctx);
    const challenge = (extra = '') => ctx.set('WWW-Authenticate', `Bearer realm="${audience}"${extra}`);
    const malformed = malformedTokenRequest(ctx);
    if (malformed) {
      challenge(', error="invalid_request"');
      return jsonError(ctx, 400, 'invalid_request', malformed);
    }
    if (!presented) {
      challenge();
      return jsonError(ctx, 401, 'invalid_token', 'an admin access token is required (Authorization: Bearer <token>)');
    }
    // Only client_credentials tokens: a token issued to a person (AccessToken) is not even looked up.
    const provider = providers.current;
    const token = await provider.ClientCredentials.find(presented.token);
    const audiences = [token?.aud].flat();
    if (!token || token.isExpired || !audiences.includes(audience) || !(await provider.Client.find(token.clientId!))) {
      challenge(', error="invalid_token"');
      return jsonError(ctx, 401, 'invalid_token', 'the access token is not valid for the admin API');
    }
    if (!(await senderConstraint.allows(ctx, presented, token.jkt))) return;
    // The request line names the client of every call that got this far, refused or not (app.ts).
    ctx.state.clientId = token.clientId;
    // What the token carries, bounded by what the operator grants its client now, unless an
    // operator took a scope it carries (or the grant) since it was issued: then it is refused
    // whole, even once the grant is given again (revocation/list.ts, client_grant).
    // ("admin" includes reading: a token for "admin" still reads when the grant is cut to "admin:read").
    const [grant, revoked] = await Promise.all([
      apis.grantAt(token.clientId!, audience),
      opaqueRevoked(revocations, { clientId: token.clientId, iat: token.iat, aud: token.aud, scope: token.scope, clientCredentials: true }),
    ]);
    if (revoked) {
      challenge(', error="invalid_token"');
      return jsonError(ctx, 401, 'invalid_token', 'the access token is revoked');
    }
    const current = new Set(grant?.scopes ?? []);
    const held = (token.scope ?? '').split(' ').flatMap((scope) => (scope === 'admin' ? ['admin', 'admin:read'] : [scope]));
    const granted = new Set(held.filter((scope) => current.has(scope)));
    if (!granted.has('admin') && !(scope === 'admin:read' && granted.has('admin:read'))) {
      challenge(`, error="insufficient_scope", scope="${scope}"`);
      return jsonError(ctx, 403, 'insufficient_scope', `this needs the "${scope}" scope`);
    }
    return next();
  };
  const read = requireScope('admin:read');
  const write = requireScope('admin');

  router.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument(issuer);
  });

  clientRoutes(router, { clients, secretRotationGrace, read, write, json });
  userRoutes(router, { accounts, endings: revocations, grants, consents, sessions, secondFactors, owed, onReset: onSecondFactorsReset, read, write, json });
  apiRoutes(router, { providers, apis, read, write, json });
  const remove = (id: string) => removeUpstream(id, { upstreams, endThrough: endThroughUpstream, owed, recordIssuer: (upstream, issuer) => links.recordIssuer(upstream, issuer) });
  upstreamRoutes(router, { upstreams, remove, issuer, read, write, json });

  return router;
}
