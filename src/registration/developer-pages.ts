/**
 * The developer page (/developer): a signed-in person registers their own apps, sees each new
 * secret exactly once, rotates it and deletes apps. Apps are ordinary clients whose `owner` is
 * the person's sub, created through the same registry (and so the same policy) as every other.
 *
 * Signing in to this page is signing in to Latchkey: the page is a first-party public client that
 * starts an ordinary authorization request; once the person is back, the page reads the
 * provider's session. Forms carry a CSRF token bound to that session.
 */
import { createHash, randomBytes } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { ClientMetadata as ClientMetadataInput } from 'oidc-provider';
import type { ProviderInService } from '../provider-in-service.js';
import type { AccountSessions } from '../accounts/sessions.js';
import { csrfTokens } from '../http/csrf.js';
import { respondWithError } from '../http/errors.js';
import { render } from '../http/views.js';
import { ClientError, generateSecret, type ClientMetadata, type Clients } from './clients.js';

export const DEVELOPER_CLIENT_ID = 'latchkey-developer';

/** The page's own client: public, code + PKCE, back to /developer/callback. */
export function developerClient(issuer: string): ClientMetadataInput {
  return {
    client_id: DEVELOPER_CLIENT_ID,
    client_name: 'Latchkey developer page',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${issuer}/developer/callback`],
    scope: 'openid',
  };
}

const APP_TYPES = {
  // A web app's server may also call APIs as itself (client_credentials).
  web: {
    label: 'Web app (has a server that keeps a secret)',
    metadata: { token_endpoint_auth_method: 'client_secret_basic', application_type: 'web', grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
  },
  spa: {
    label: 'Single-page app (runs in the browser; no secret)',
    metadata: { token_endpoint_auth_method: 'none', application_type: 'web', grant_types: ['authorization_code', 'refresh_token'] },
  },
  native: {
    label: 'Native or mobile app (no secret)',
    metadata: { token_endpoint_auth_method: 'none', application_type: 'native', grant_types: ['authorization_code', 'refresh_token'] },
  },
} as const;
type AppType = keyof typeof APP_TYPES;

interface Options {
  readonly issuer: string;
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly clients: Clients;
  /** Re-checks the session's person on every request. */
  readonly sessions: AccountSessions;
  readonly csrfKey: string;
  readonly secretRotationGrace: number;
}

type Form = Record<string, string | string[] | undefined>;
const field = (form: Form, name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');

export function developerPages({ issuer, providers, clients, sessions, csrfKey, secretRotationGrace }: Options): Middleware {
  const router = new Router({ prefix: '/developer' });
  const form = bodyParser({ enableTypes: ['form'], formLimit: '32kb', encoding: 'utf-8' });
  const csrf = csrfTokens(csrfKey, 'developer');

  /** The signed-in person's sub and session id, or undefined (also when they were disabled or deleted since). */
  async function signedIn(ctx: Context): Promise<{ accountId: string; sessionId: string } | undefined> {
    const found = await sessions.signedIn(providers.current, ctx);
    return found && { accountId: found.accountId, sessionId: found.session.jti };
  }

  function page(ctx: Context, view: string, data: Record<string, unknown>, status = 200) {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = render(view, { wide: true, ...data });
  }

  async function showApps(ctx: Context, who: { accountId: string; sessionId: string }, state: { error?: string; values?: Form } = {}, status = 200) {
    const apps = (await clients.ownedBy(who.accountId)).map((app) => ({
      id: app.client_id,
      name: app.client_name ?? app.client_id,
      confidential: typeof app.client_secret === 'string',
      redirectUris: (app.redirect_uris as string[] | undefined) ?? [],
      type: app.token_endpoint_auth_method === 'none' ? (app.application_type === 'native' ? 'Native' : 'Single-page') : 'Web',
    }));
    page(ctx, 'developer', {
      title: 'Your apps',
      apps,
      types: Object.entries(APP_TYPES).map(([value, { label }]) => ({ value, label })),
      csrf: csrf.token(who.sessionId),
      error: state.error,
      values: { name: field(state.values ?? {}, 'name'), redirect_uris: field(state.values ?? {}, 'redirect_uris'), type: field(state.values ?? {}, 'type') || 'web' },
    }, status);
  }

  /** A POST from a signed-in person with a valid CSRF token; answers the request itself otherwise. */
  async function submitted(ctx: Context) {
    const who = await signedIn(ctx);
    if (!who) {
      respondWithError(ctx, 401, { error: 'login_required', error_description: 'sign in on the developer page first' });
      return undefined;
    }
    const body = (ctx.request.body ?? {}) as Form;
    if (!csrf.valid(who.sessionId, field(body, 'csrf'))) {
      respondWithError(ctx, 403, { error: 'invalid_request', error_description: 'the form was not sent from your developer page; reload it and try again' });
      return undefined;
    }
    return { who, body };
  }

  /** The app, when it belongs to this person; a 404 page otherwise (never "exists but not yours"). */
  async function ownApp(ctx: Context, accountId: string): Promise<ClientMetadata | undefined> {
    const app = await clients.get(ctx.params.id!);
    if (app && app.owner === accountId) return app;
    respondWithError(ctx, 404, { error: 'not_found', error_description: 'no such app among yours' });
    return undefined;
  }

  router.get('/', async (ctx) => {
    const who = await signedIn(ctx);
    if (!who) return page(ctx, 'developer-signin', { title: 'Developer sign-in' });
    await showApps(ctx, who);
  });

  router.get('/sign-in', async (ctx) => {
    const url = new URL(`${issuer}/auth`);
    // PKCE is required of every client; the page never redeems the code (it reads the session),
    // so the verifier is not kept. An unredeemed code simply expires (ttl.authorizationCode).
    const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
    url.search = new URLSearchParams({
      client_id: DEVELOPER_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: `${issuer}/developer/callback`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: randomBytes(16).toString('base64url'),
    }).toString();
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    if (ctx.query.error) {
      respondWithError(ctx, 400, { error: 'access_denied', error_description: 'signing in to the developer page was cancelled' });
      return;
    }
    ctx.redirect('/developer');
  });

  router.post('/apps', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found) return;
    const { who, body } = found;
    const name = field(body, 'name').trim();
    const type = field(body, 'type') as AppType;
    const redirectUris = field(body, 'redirect_uris').split(/\s+/).filter(Boolean);
    const problem =
      !name || name.length > 80 ? 'Give the app a name of at most 80 characters.'
      : !(type in APP_TYPES) ? 'Choose what kind of app this is.'
      : !redirectUris.length ? 'Add at least one redirect URI (where people return after signing in).'
      : undefined;
    if (problem) return showApps(ctx, who, { error: problem, values: body }, 400);

    const { metadata } = APP_TYPES[type];
    const client: ClientMetadata = {
      client_id: `app-${randomBytes(9).toString('base64url')}`,
      client_name: name,
      redirect_uris: redirectUris,
      response_types: ['code'],
      ...metadata,
      ...(metadata.token_endpoint_auth_method === 'none' ? {} : { client_secret: generateSecret() }),
      owner: who.accountId,
    };
    try {
      await clients.add(client);
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      return showApps(ctx, who, { error: `This app cannot be registered: ${error.description}`, values: body }, 400);
    }
    page(ctx, 'developer-secret', { title: 'App registered', app: client, issuer, rotated: false });
  });

  router.post('/apps/:id/secret', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found || !(await ownApp(ctx, found.who.accountId))) return;
    try {
      const app = await clients.rotateSecret(ctx.params.id!, secretRotationGrace);
      page(ctx, 'developer-secret', { title: 'New secret', app, issuer, rotated: true, graceHours: Math.round(secretRotationGrace / 3600) });
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      respondWithError(ctx, error.status, { error: error.error, error_description: error.description });
    }
  });

  router.post('/apps/:id/delete', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found || !(await ownApp(ctx, found.who.accountId))) return;
    // Ends everything the app held (the store's client removal hook, see provider.ts).
    await clients.remove(ctx.params.id!);
    ctx.status = 303;
    ctx.redirect('/developer');
  });

  return router.routes() as Middleware;
}
