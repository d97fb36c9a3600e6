/**
 * The developer page itself (GET /developer): a person's apps, or the sign-in page when nobody is
 * signed in; and registering an app (POST /developer/apps), with the new secret shown once.
 */
import { randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { ClientError, generateSecret, type ClientMetadata, type Clients } from './clients.js';
import { MAX_SELF_NAME_LENGTH } from './policy.js';
import { SIGNED_IN_AGAIN } from '../http/first-party-sign-in.js';
import { APPS_SECTION, field, type DeveloperPage, type Form, type SignedIn } from './developer-page.js';

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

/** Optional protections a developer may switch on for an app (checkboxes), as client metadata. */
const PROTECTIONS = [
  { field: 'par', metadata: 'require_pushed_authorization_requests', label: 'Require pushed authorization requests (PAR, RFC 9126)', shown: 'PAR required' },
  { field: 'dpop', metadata: 'dpop_bound_access_tokens', label: "Bind its tokens to the app's key (DPoP, RFC 9449)", shown: 'DPoP-bound tokens' },
] as const;

/** The form's text fields, given back to it as they were typed when a registration is refused. */
const TEXT_FIELDS = ['name', 'redirect_uris', 'post_logout_redirect_uris', 'backchannel_logout_uri'] as const;

/** URIs one per line (or separated by any white space: a URI holds none). */
function uriLines(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

interface Options {
  readonly issuer: string;
  readonly clients: Clients;
  /** registration.maxAppsPerDeveloper: the most apps one person may hold here. */
  readonly maxApps: number;
  /** Parses the page's forms. */
  readonly form: Middleware;
}

export function appsPage(router: Router, { signedIn, page, submitted, csrf, recent }: DeveloperPage, { issuer, clients, maxApps, form }: Options): void {
  async function showApps(ctx: Context, who: SignedIn, state: { error?: string; values?: Form } = {}, status = 200) {
    const apps = (await clients.ownedBy(who.accountId)).map((app) => ({
      id: app.client_id,
      name: app.client_name ?? app.client_id,
      confidential: typeof app.client_secret === 'string',
      redirectUris: (app.redirect_uris as string[] | undefined) ?? [],
      postLogoutRedirectUris: (app.post_logout_redirect_uris as string[] | undefined) ?? [],
      backchannelLogoutUri: typeof app.backchannel_logout_uri === 'string' ? app.backchannel_logout_uri : undefined,
      type: app.token_endpoint_auth_method === 'none' ? (app.application_type === 'native' ? 'Native' : 'Single-page') : 'Web',
      protections: PROTECTIONS.filter((protection) => app[protection.metadata] === true).map((protection) => protection.shown),
    }));
    page(ctx, 'developer', {
      title: 'Your apps',
      apps,
      types: Object.entries(APP_TYPES).map(([value, { label }]) => ({ value, label })),
      protections: PROTECTIONS.map(({ field: name, label }) => ({ name, label, checked: field(state.values ?? {}, name) === 'on' })),
      csrf: csrf.token(who.sessionId),
      error: state.error,
      maxNameLength: MAX_SELF_NAME_LENGTH,
      // Back from signing in again (a rotation needs a recent sign-in): the person may go ahead now.
      // Said only while it is so: any site can link to ?done=apps.signed-in-again.
      notice: !state.error && ctx.query.done === `${APPS_SECTION}.${SIGNED_IN_AGAIN}` && recent(who) ? 'You signed in again: go ahead.' : undefined,
      values: {
        ...Object.fromEntries(TEXT_FIELDS.map((name) => [name, field(state.values ?? {}, name)])),
        type: field(state.values ?? {}, 'type') || 'web',
      },
    }, status);
  }

  router.get('/', async (ctx) => {
    const who = await signedIn(ctx);
    if (!who) return page(ctx, 'developer-signin', { title: 'Developer sign-in' });
    await showApps(ctx, who);
  });

  router.post('/apps', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found) return;
    const { who, body } = found;
    const name = field(body, 'name').trim();
    const type = field(body, 'type') as AppType;
    const redirectUris = uriLines(field(body, 'redirect_uris'));
    const postLogoutRedirectUris = uriLines(field(body, 'post_logout_redirect_uris'));
    const backchannelLogoutUris = uriLines(field(body, 'backchannel_logout_uri'));
    const problem =
      // The registration policy's limit (registration/policy.ts), counted as it counts: in characters, not UTF-16 units.
      !name || [...name].length > MAX_SELF_NAME_LENGTH ? `Give the app a name of at most ${MAX_SELF_NAME_LENGTH} characters.`
      // Own keys only: `in` also finds what every object inherits (constructor, toString, __proto__).
      : !Object.hasOwn(APP_TYPES, type) ? 'Choose what kind of app this is.'
      : !redirectUris.length ? 'Add at least one redirect URI (where people return after signing in).'
      // Words split on spaces are several URIs only if each is one: `not a uri` is text, not three addresses.
      : backchannelLogoutUris.length > 1 && !backchannelLogoutUris.every((uri) => URL.canParse(uri))
        ? 'The back-channel logout URI is not a URI: give one https URL, such as https://app.example.com/backchannel-logout, without spaces.'
      : backchannelLogoutUris.length > 1 ? 'Give one back-channel logout URI at most (Latchkey posts each logout token to one address).'
      : undefined;
    if (problem) return showApps(ctx, who, { error: problem, values: body }, 400);

    const { metadata } = APP_TYPES[type];
    const client: ClientMetadata & { owner: string } = {
      client_id: `app-${randomBytes(9).toString('base64url')}`,
      client_name: name,
      redirect_uris: redirectUris,
      // What else it registers is checked by the same registration policy as every other path's
      // (clients.add runs the engine's client schema, which runs registration/policy.ts).
      ...(postLogoutRedirectUris.length ? { post_logout_redirect_uris: postLogoutRedirectUris } : {}),
      // With its sid, as the CLI's --backchannel-logout-uri registers it: the app ends that session only.
      ...(backchannelLogoutUris.length ? { backchannel_logout_uri: backchannelLogoutUris[0], backchannel_logout_session_required: true } : {}),
      response_types: ['code'],
      ...metadata,
      ...(metadata.token_endpoint_auth_method === 'none' ? {} : { client_secret: generateSecret() }),
      ...Object.fromEntries(PROTECTIONS.filter((protection) => field(body, protection.field) === 'on').map((protection) => [protection.metadata, true])),
      owner: who.accountId,
    };
    try {
      // Still this person's page once the claim is held: disabled or removed since, nothing is registered.
      await clients.addOwned(client, maxApps, async () => (await signedIn(ctx))?.accountId === who.accountId);
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      return showApps(ctx, who, { error: `This app cannot be registered: ${error.description}`, values: body }, 400);
    }
    page(ctx, 'developer-secret', { title: 'App registered', app: client, issuer, rotated: false });
  });
}
