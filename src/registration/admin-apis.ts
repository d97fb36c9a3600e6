/**
 * The admin API's routes for APIs (resource servers) and client grants (src/apis/):
 *
 *   GET    /admin/apis                           every API (built in, configured, stored)
 *   POST   /admin/apis                           add one {identifier, scopes, format, accessTokenTTL}
 *   DELETE /admin/apis/{identifier}              remove a stored API and its grants (URL-encoded)
 *   GET    /admin/clients/{id}/grants            what a client is granted, per API
 *   PUT    /admin/clients/{id}/grants/{api}      set its grant at an API {scopes, introspect, default}
 *   DELETE /admin/clients/{id}/grants/{api}      revoke it
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import type { ProviderInService } from '../provider-in-service.js';
import { z } from 'zod';
import { jsonError } from '../http/errors.js';
import { ApiError, type Apis } from '../apis/apis.js';
import { isStoreOutage, storeRefusal } from '../store/outage.js';

interface Options {
  readonly providers: ProviderInService;
  readonly apis: Apis;
  readonly read: Middleware;
  readonly write: Middleware;
  readonly json: Middleware;
}

const newApi = z.strictObject({
  identifier: z.string(),
  scopes: z.array(z.string()).max(100).optional(),
  format: z.enum(['jwt', 'opaque']).optional(),
  accessTokenTTL: z.number().int().positive().optional(),
});

const grantBody = z.strictObject({
  scopes: z.array(z.string()).max(100).default([]),
  introspect: z.boolean().optional(),
  default: z.boolean().optional(),
});

function invalid(ctx: Context, error: z.ZodError): void {
  const issue = error.issues[0]!;
  jsonError(ctx, 400, 'invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
}

/**
 * The client, or undefined when there is none (or its stored metadata is no longer valid). A store
 * away or refusing the read is thrown (503, or the CLI's failure), never "no client": an operator
 * narrowing a grant was told the client was gone while it and its grant were there.
 */
function clientOrNone(provider: Provider, clientId: string) {
  return provider.Client.find(clientId).catch((error: unknown) => {
    if (isStoreOutage(error) || storeRefusal(error)) throw error;
    return undefined;
  });
}

/** A client an operator may grant an API: it exists and can authenticate (not a public client). */
export async function grantableClient(provider: Provider, clientId: string): Promise<string | undefined> {
  const client = await clientOrNone(provider, clientId);
  if (!client) return `no client "${clientId}"`;
  if (client.clientAuthMethod === 'none') return `client "${clientId}" is public (no client authentication): it cannot hold an API grant`;
  return undefined;
}

export function apiRoutes(router: Router, { providers, apis, read, write, json }: Options): void {
  async function answer(ctx: Context, run: () => Promise<void>) {
    try {
      await run();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      jsonError(ctx, error.status, error.error, error.message);
    }
  }

  router.get('/apis', read, async (ctx) => {
    ctx.body = await apis.list();
  });

  router.post('/apis', write, json, async (ctx) => {
    const parsed = newApi.safeParse(ctx.request.body);
    if (!parsed.success) return invalid(ctx, parsed.error);
    await answer(ctx, async () => {
      ctx.body = await apis.add(parsed.data);
      ctx.status = 201;
    });
  });

  router.delete('/apis/:identifier', write, async (ctx) => {
    await answer(ctx, async () => {
      await apis.remove(ctx.params.identifier!);
      ctx.status = 204;
    });
  });

  router.get('/clients/:id/grants', read, async (ctx) => {
    if (!(await clientOrNone(providers.current, ctx.params.id!))) return jsonError(ctx, 404, 'not_found', `no client "${ctx.params.id}"`);
    ctx.body = await apis.grantsOf(ctx.params.id!);
  });

  router.put('/clients/:id/grants/:api', write, json, async (ctx) => {
    const parsed = grantBody.safeParse(ctx.request.body);
    if (!parsed.success) return invalid(ctx, parsed.error);
    const problem = await grantableClient(providers.current, ctx.params.id!);
    if (problem) return jsonError(ctx, problem.startsWith('no client') ? 404 : 400, problem.startsWith('no client') ? 'not_found' : 'invalid_request', problem);
    await answer(ctx, async () => {
      ctx.body = await apis.setGrant(ctx.params.id!, ctx.params.api!, parsed.data);
    });
  });

  router.delete('/clients/:id/grants/:api', write, async (ctx) => {
    await answer(ctx, async () => {
      await apis.revoke(ctx.params.id!, ctx.params.api!);
      ctx.status = 204;
    });
  });
}
