/**
 * The admin API's routes for upstream identity providers (src/upstreams/):
 *
 *   GET    /admin/upstreams          every upstream, without secrets
 *   POST   /admin/upstreams          add one {id, issuer, client_id, client_secret, …}
 *   DELETE /admin/upstreams/{id}     remove it, ending the sessions it signed in and the grants made through it (upstreams/removal.ts)
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { jsonError } from '../http/errors.js';
import { MAPPED_CLAIMS, UpstreamError, urisToRegister, type UpstreamSettings, type Upstreams } from '../upstreams/registry.js';

interface Options {
  readonly upstreams: Upstreams;
  /** Removes an upstream and ends the sessions it signed in; how many ended. */
  readonly remove: (id: string) => Promise<number>;
  readonly issuer: string;
  readonly read: Middleware;
  readonly write: Middleware;
  readonly json: Middleware;
}

const newUpstream = z.strictObject({
  id: z.string(),
  issuer: z.string(),
  client_id: z.string().min(1).max(512),
  client_secret: z.string().min(1).max(1024),
  scope: z.string().max(512).default('openid email profile'),
  display_name: z.string().max(64).optional(),
  link_by_email: z.boolean().default(false),
  end_session: z.boolean().default(false),
  domains: z.array(z.string().max(253)).max(50).default([]),
  claims: z.partialRecord(z.enum(MAPPED_CLAIMS), z.string().min(1).max(128)).optional(),
});

const publicUpstream = (issuer: string, u: UpstreamSettings) => ({
  id: u.id,
  issuer: u.issuer,
  client_id: u.clientId,
  scope: u.scope,
  display_name: u.displayName,
  link_by_email: u.linkByEmail,
  end_session: u.endSession,
  domains: u.domains,
  claims: u.claims,
  ...urisToRegister(issuer, u),
});

export function upstreamRoutes(router: Router, { upstreams, remove, issuer, read, write, json }: Options): void {
  router.get('/upstreams', read, async (ctx) => {
    ctx.body = (await upstreams.list()).map((u) => publicUpstream(issuer, u));
  });

  router.post('/upstreams', write, json, async (ctx) => {
    const parsed = newUpstream.safeParse(ctx.request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return jsonError(ctx, 400, 'invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    const body = parsed.data;
    try {
      const added = await upstreams.add({
        id: body.id,
        issuer: body.issuer,
        clientId: body.client_id,
        clientSecret: body.client_secret,
        scope: body.scope,
        displayName: body.display_name ?? '',
        linkByEmail: body.link_by_email,
        endSession: body.end_session,
        domains: body.domains,
        claims: body.claims ?? {},
      });
      ctx.status = 201;
      ctx.body = publicUpstream(issuer, added);
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      jsonError(ctx, error.conflict ? 409 : 400, error.conflict ? 'conflict' : 'invalid_request', error.message);
    }
  });

  router.delete('/upstreams/:id', write, async (ctx) => {
    try {
      await remove(ctx.params.id!);
      ctx.status = 204;
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      jsonError(ctx, 404, 'not_found', error.message);
    }
  });
}
