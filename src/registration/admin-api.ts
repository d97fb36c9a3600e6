/**
 * The admin API (/admin/…): JSON for operators' tooling — clients and users.
 *
 * Callers present an access token for the admin resource server (`<issuer>/admin`, RFC 8707),
 * obtained with client_credentials by a client that an operator granted an admin scope
 * (`latchkey apis grant --api <issuer>/admin --scope admin`): `admin:read` reads, `admin` also
 * writes. A token issued to a person never reaches it. The grant is checked at every call, so
 * revoking it ends access at once; admin tokens are opaque, so revoking one (RFC 7009) or deleting
 * its client does too. No static shared password exists.
 * The routes are described by the OpenAPI document at /admin/openapi.json.
 */
import { randomUUID } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type { Provider } from 'oidc-provider';
import { z } from 'zod';
import { bearerToken } from '../http/bearer.js';
import { jsonError } from '../http/errors.js';
import { AccountError, type Accounts, type Claims } from '../accounts/accounts.js';
import type { Apis } from '../apis/apis.js';
import type { AccountSessions } from '../accounts/sessions.js';
import type { GrantRevocation } from '../revocation/grants.js';
import { ClientError, generateSecret, type ClientMetadata, type Clients } from './clients.js';
import { adminResourceServer } from '../apis/admin-resource.js';
import { apiRoutes } from './admin-apis.js';
import { openApiDocument } from './openapi.js';

interface Options {
  readonly issuer: string;
  readonly provider: Provider;
  readonly clients: Clients;
  readonly accounts: Accounts;
  readonly apis: Apis;
  /** Revokes what a disabled person held. */
  readonly grants: GrantRevocation;
  /** Ends a disabled person's sessions (with back-channel logout to their apps). */
  readonly sessions: AccountSessions;
  readonly secretRotationGrace: number;
}

const newUser = z.strictObject({
  username: z.string(),
  password: z.string(),
  name: z.string().max(256).optional(),
  given_name: z.string().max(256).optional(),
  family_name: z.string().max(256).optional(),
  email: z.email().optional(),
  email_verified: z.boolean().optional(),
  locale: z.string().max(35).optional(),
});

const clientBody = z.looseObject({ client_id: z.string().min(1).max(128).optional() });

/** Client metadata as the API shows it: never the secret, except once when it is made. */
function withoutSecret({ client_secret: _secret, ...metadata }: ClientMetadata): Omit<ClientMetadata, 'client_secret'> {
  return metadata;
}

const confidential = (method: unknown) => method === undefined || method === 'client_secret_basic' || method === 'client_secret_post';

export function adminApi({ issuer, provider, clients, accounts, apis, grants, sessions, secretRotationGrace }: Options): Middleware {
  const audience = adminResourceServer(issuer).identifier;
  const router = new Router({ prefix: '/admin' });
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: '64kb', encoding: 'utf-8' });

  /** RFC 6750 bearer authentication with the admin scope this route needs. */
  const requireScope = (scope: 'admin' | 'admin:read') => async (ctx: Context, next: Next) => {
    ctx.set('Cache-Control', 'no-store');
    const presented = bearerToken(ctx);
    const challenge = (extra = '') => ctx.set('WWW-Authenticate', `Bearer realm="${audience}"${extra}`);
    if (!presented) {
      challenge();
      return jsonError(ctx, 401, 'invalid_token', 'an admin access token is required (Authorization: Bearer …)');
    }
    // Only client_credentials tokens: a token issued to a person (AccessToken) is not even looked up.
    const token = await provider.ClientCredentials.find(presented);
    const audiences = [token?.aud].flat();
    if (!token || token.isExpired || !audiences.includes(audience) || !(await provider.Client.find(token.clientId!))) {
      challenge(', error="invalid_token"');
      return jsonError(ctx, 401, 'invalid_token', 'the access token is not valid for the admin API');
    }
    // What the token carries, bounded by what the operator grants its client now.
    // ("admin" includes reading: a token for "admin" still reads when the grant is cut to "admin:read").
    const current = new Set((await apis.grantAt(token.clientId!, audience))?.scopes ?? []);
    const held = (token.scope ?? '').split(' ').flatMap((scope) => (scope === 'admin' ? ['admin', 'admin:read'] : [scope]));
    const granted = new Set(held.filter((scope) => current.has(scope)));
    if (!granted.has('admin') && !(scope === 'admin:read' && granted.has('admin:read'))) {
      challenge(`, error="insufficient_scope", scope="${scope}"`);
      return jsonError(ctx, 403, 'insufficient_scope', `this needs the "${scope}" scope`);
    }
    ctx.state.adminClient = token.clientId;
    return next();
  };
  const read = requireScope('admin:read');
  const write = requireScope('admin');

  /** Runs a change, answering the client registry's refusals as RFC 7591 errors. */
  async function registry(ctx: Context, change: () => Promise<void>) {
    try {
      await change();
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      jsonError(ctx, error.status, error.error, error.description);
    }
  }

  router.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument(issuer);
  });

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
    await registry(ctx, async () => {
      ctx.body = withoutSecret(await clients.update(ctx.params.id!, parsed.data));
    });
  });

  router.post('/clients/:id/secret', write, async (ctx) => {
    await registry(ctx, async () => {
      const { client_id, client_secret } = await clients.rotateSecret(ctx.params.id!, secretRotationGrace);
      ctx.body = { client_id, client_secret, previous_secret_valid_for: secretRotationGrace };
    });
  });

  router.delete('/clients/:id', write, async (ctx) => {
    await registry(ctx, async () => {
      // Ends everything the client held (the store's client removal hook, see provider.ts).
      await clients.remove(ctx.params.id!);
      ctx.status = 204;
    });
  });

  const publicAccount = ({ sub, username, disabled, claims }: { sub: string; username: string; disabled: boolean; claims: Claims }) => ({
    sub,
    username,
    disabled,
    ...claims,
  });

  router.get('/users', read, async (ctx) => {
    ctx.body = (await accounts.list()).map(publicAccount);
  });

  router.post('/users', write, json, async (ctx) => {
    const parsed = newUser.safeParse(ctx.request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return jsonError(ctx, 400, 'invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    const { username, password, ...claims } = parsed.data;
    if (await accounts.findByUsername(username)) return jsonError(ctx, 409, 'conflict', `the username "${username}" is taken`);
    try {
      ctx.status = 201;
      ctx.body = publicAccount(await accounts.create(username, password, claims));
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      if (error.conflict) jsonError(ctx, 409, 'conflict', error.message);
      else jsonError(ctx, 400, 'invalid_request', error.message);
    }
  });

  for (const [action, disabled] of [['disable', true], ['enable', false]] as const) {
    router.post(`/users/:username/${action}`, write, async (ctx) => {
      try {
        const account = await accounts.setDisabled(ctx.params.username!, disabled);
        if (disabled) {
          await grants.revokeAccount(account.sub);
          await sessions.endAll(account.sub);
        }
        ctx.body = publicAccount(account);
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        jsonError(ctx, 404, 'not_found', error.message);
      }
    });
  }

  apiRoutes(router, { provider, apis, read, write, json });

  return router.routes() as Middleware;
}
