/**
 * The admin API's routes for clients (src/registration/clients.ts, the one registry):
 *
 *   GET    /admin/clients               every stored client, without secrets
 *   GET    /admin/clients/{id}          one
 *   POST   /admin/clients               add one (a confidential client gets a secret, shown once)
 *   PUT    /admin/clients/{id}          replace its metadata
 *   POST   /admin/clients/{id}/secret   rotate its secret (the previous one stays valid for the grace, or less:
 *                                        {"previous_secret_valid_for": 0} when it leaked)
 *   DELETE /admin/clients/{id}          delete it, ending everything it held
 */
import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { jsonError } from '../http/errors.js';
import { ClientError, generateSecret, type ClientMetadata, type Clients } from './clients.js';

interface Options {
  readonly clients: Clients;
  readonly secretRotationGrace: number;
  readonly read: Middleware;
  readonly write: Middleware;
  readonly json: Middleware;
}

const clientBody = z.looseObject({ client_id: z.string().min(1).max(128).optional() });
/** A rotation's optional body: how long the old secret keeps working, in seconds (0 for a leaked one). */
const rotationBody = z.strictObject({ previous_secret_valid_for: z.number().int().min(0).optional() });

/** Client metadata as the API shows it: never the secret, except once when it is made. */
function withoutSecret({ client_secret: _secret, ...metadata }: ClientMetadata): Omit<ClientMetadata, 'client_secret'> {
  return metadata;
}

const confidential = (method: unknown) => method === undefined || method === 'client_secret_basic' || method === 'client_secret_post';

/**
 * A client_secret written with a token_endpoint_auth_method that uses none (none, private_key_jwt):
 * the client would be stored without it (policy.ts withoutUnusedSecret), the operator believing it
 * confidential by its secret (as `clients add --public --secret` refuses, cli-actions.ts). RFC 7592's
 * own update may send the current secret while moving to such a method: that is the engine's route.
 */
function secretContradicted(ctx: Context, metadata: Record<string, unknown>): boolean {
  const method = metadata.token_endpoint_auth_method;
  if (metadata.client_secret === undefined || (method !== 'none' && method !== 'private_key_jwt')) return false;
  jsonError(ctx, 400, 'invalid_client_metadata', `client_secret is given, but token_endpoint_auth_method "${method}" uses no secret (only client_secret_basic and client_secret_post do): leave client_secret out, or choose one of those`);
  return true;
}

/** Runs a change, answering the client registry's refusals as RFC 7591 errors. */
async function registry(ctx: Context, change: () => Promise<void>) {
  try {
    await change();
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    jsonError(ctx, error.status, error.error, error.description);
  }
}

export function clientRoutes(router: Router, { clients, secretRotationGrace, read, write, json }: Options): void {
  router.get('/clients', read, async (ctx) => {
    ctx.body = (await clients.list()).map(withoutSecret);
  });

  router.get('/clients/:id', read, async (ctx) => {
    const client = await clients.get(ctx.params.id!);
    if (!client) return jsonError(ctx, 404, 'not_found', `no client "${ctx.params.id}"`);
    ctx.body = withoutSecret(client);
  });

  router.post('/clients', write, json, async (ctx) => {
    const parsed = clientBody.safeParse(ctx.request.body);
    if (!parsed.success) return jsonError(ctx, 400, 'invalid_client_metadata', 'the body must be a JSON object of client metadata');
    const { client_id: id = randomUUID(), ...metadata } = parsed.data;
    if (secretContradicted(ctx, metadata)) return;
    const client: ClientMetadata = {
      ...metadata,
      client_id: id,
      ...(confidential(metadata.token_endpoint_auth_method) && metadata.client_secret === undefined ? { client_secret: generateSecret() } : {}),
    };
    await registry(ctx, async () => {
      ctx.status = 201;
      ctx.body = await clients.add(client);
    });
  });

  router.put('/clients/:id', write, json, async (ctx) => {
    const parsed = clientBody.safeParse(ctx.request.body);
    if (!parsed.success) return jsonError(ctx, 400, 'invalid_client_metadata', 'the body must be a JSON object of client metadata');
    if (secretContradicted(ctx, parsed.data)) return;
    await registry(ctx, async () => {
      ctx.body = withoutSecret(await clients.update(ctx.params.id!, parsed.data));
    });
  });

  router.post('/clients/:id/secret', write, json, async (ctx) => {
    // No body: the configured grace. A shorter one may be asked for (0: the old secret stops at once), never a longer one.
    const parsed = rotationBody.safeParse(ctx.request.body ?? {});
    if (!parsed.success) return jsonError(ctx, 400, 'invalid_request', 'the body, if any, must be {"previous_secret_valid_for": <seconds>}');
    const grace = Math.min(parsed.data.previous_secret_valid_for ?? secretRotationGrace, secretRotationGrace);
    await registry(ctx, async () => {
      const { client_id, client_secret, registration_access_token } = await clients.rotateSecret(ctx.params.id!, grace);
      ctx.body = { client_id, client_secret, previous_secret_valid_for: grace, ...(registration_access_token && { registration_access_token }) };
    });
  });

  router.delete('/clients/:id', write, async (ctx) => {
    await registry(ctx, async () => {
      // Ends everything the client held (the store's client removal hook, see provider.ts).
      await clients.remove(ctx.params.id!);
      ctx.status = 204;
    });
  });
}
