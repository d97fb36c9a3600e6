/**
 * What a person sees during an authorization request: the login and consent pages, and cancel.
 * oidc-provider decides which prompt is due; these routes render it and report the result back.
 *
 * Every form carries a CSRF token that is an HMAC of the interaction's uid, so it is bound to
 * that interaction and cannot be made without the server's key.
 */
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { errors, type Provider } from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import type { Logger } from '../ops/logger.js';
import { metrics } from '../ops/metrics.js';
import type { Consents } from '../provider/consents.js';
import { allowLogo, brandingOf, type ClientBranding } from './client-branding.js';
import { csrfTokens } from '../http/csrf.js';
import { respondWithError } from '../http/errors.js';
import { render } from '../http/views.js';

interface Options {
  readonly provider: Provider;
  readonly accounts: Accounts;
  readonly throttle: LoginThrottle;
  readonly consents: Consents;
  readonly logger: Logger;
  /** Secret for CSRF tokens. */
  readonly csrfKey: string;
}

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;
type Form = Record<string, string | string[] | undefined>;

const SCOPE_WORDS: Record<string, string> = {
  openid: 'Know who you are (your account identifier)',
  profile: 'See your name and profile details',
  email: 'See your email address',
  offline_access: 'Keep access while you are not using it (offline access): it can act for you after you close it or sign out, until that access expires or is revoked',
};

/** A form field as one string; a repeated field counts as missing. */
function field(form: Form, name: string): string {
  const value = form[name];
  return typeof value === 'string' ? value : '';
}

function permissions(details: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const scope of (details.missingOIDCScope as string[] | undefined) ?? []) {
    out.push(SCOPE_WORDS[scope] ?? `Use the "${scope}" permission`);
  }
  const claims = (details.missingOIDCClaims as string[] | undefined) ?? [];
  if (claims.length) out.push(`See these details about you: ${claims.join(', ')}`);
  const resources = (details.missingResourceScopes as Record<string, string[]> | undefined) ?? {};
  for (const [resource, scopes] of Object.entries(resources)) {
    out.push(`Act on ${resource} with: ${scopes.join(', ') || 'basic access'}`);
  }
  return out.length ? out : ['Sign you in'];
}

/** "30 seconds", "2 minutes": how long a pause lasts, in words. */
function duration(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}

export function interactionRoutes({ provider, accounts, throttle, consents, logger, csrfKey }: Options): Middleware {
  const router = new Router({ prefix: '/interaction' });
  const form = bodyParser({ enableTypes: ['form'], formLimit: '16kb', encoding: 'utf-8' });

  const csrf = csrfTokens(csrfKey, 'interaction');

  /** The interaction this request belongs to, or an error page when it is gone or not this one. */
  async function load(ctx: Context): Promise<Interaction | undefined> {
    let interaction: Interaction;
    try {
      interaction = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (error) {
      if (!(error instanceof errors.SessionNotFound)) throw error;
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: 'the sign-in request expired or was already completed' });
      return undefined;
    }
    if (interaction.uid !== ctx.params.uid) {
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: 'this page belongs to another sign-in request' });
      return undefined;
    }
    ctx.set('Cache-Control', 'no-store');
    return interaction;
  }

  /** The client's name, logo and links for the page; lets this response load that logo. */
  async function clientBranding(ctx: Context, interaction: Interaction): Promise<ClientBranding> {
    const clientId = String(interaction.params.client_id);
    const branding = brandingOf(await provider.Client.find(clientId), clientId);
    allowLogo(ctx, branding);
    return branding;
  }

  async function showLogin(ctx: Context, interaction: Interaction, state: { error?: string; username?: string; remember?: boolean } = {}) {
    ctx.type = 'html';
    ctx.body = render('login', {
      title: 'Sign in',
      client: await clientBranding(ctx, interaction),
      action: `/interaction/${interaction.uid}/login`,
      abort: `/interaction/${interaction.uid}/abort`,
      csrf: csrf.token(interaction.uid),
      username: state.username ?? (typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : ''),
      remember: state.remember ?? false,
      error: state.error,
    });
  }

  /**
   * The person of a sign-in waiting for consent, unless they were disabled or deleted since they
   * signed in: then an error page, and nothing is granted.
   */
  async function activeAccount(ctx: Context, interaction: Interaction) {
    const account = await accounts.find(String(interaction.session?.accountId));
    if (account && !account.disabled) return account;
    respondWithError(ctx, 403, { error: 'access_denied', error_description: 'this account cannot sign in' });
    return undefined;
  }

  /** Parses the form and checks its CSRF token; answers the request itself when either fails. */
  async function submitted(ctx: Context): Promise<{ interaction: Interaction; body: Form } | undefined> {
    const interaction = await load(ctx);
    if (!interaction) return undefined;
    const body = (ctx.request.body ?? {}) as Form;
    if (!csrf.valid(interaction.uid, field(body, 'csrf'))) {
      respondWithError(ctx, 403, { error: 'invalid_request', error_description: 'the form was not sent from this sign-in page; go back and try again' });
      return undefined;
    }
    return { interaction, body };
  }

  router.get('/:uid', async (ctx) => {
    const interaction = await load(ctx);
    if (!interaction) return;
    if (interaction.prompt.name === 'login') return showLogin(ctx, interaction);
    const account = await activeAccount(ctx, interaction);
    if (!account) return;
    ctx.type = 'html';
    ctx.body = render('consent', {
      title: 'Allow access',
      client: await clientBranding(ctx, interaction),
      permissions: permissions(interaction.prompt.details),
      username: account.username,
      action: `/interaction/${interaction.uid}/confirm`,
      abort: `/interaction/${interaction.uid}/abort`,
      csrf: csrf.token(interaction.uid),
    });
  });

  router.post('/:uid/login', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found) return;
    const { interaction, body } = found;
    if (interaction.prompt.name !== 'login') {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for a password' });
      return;
    }
    const username = field(body, 'username');
    const password = field(body, 'password');
    const remember = field(body, 'remember') === 'yes';
    if (!username || !password) {
      ctx.status = 400;
      return showLogin(ctx, interaction, { error: 'Enter your username and password.', username, remember });
    }
    const paused = async (seconds: number) => {
      metrics.logins.inc({ outcome: 'throttled' });
      logger.warn({ event: 'login.throttled', ip: ctx.ip, client_id: interaction.params.client_id }, 'sign-in paused after repeated failures');
      ctx.status = 429;
      ctx.set('Retry-After', String(seconds));
      const error = `Too many failed attempts. For your security, sign-in is paused for ${duration(seconds)}; try again after that.`;
      return showLogin(ctx, interaction, { error, username, remember });
    };
    // While paused, the password is not even checked: a right guess must look like a wrong one.
    const pause = await throttle.pause(username, ctx.ip);
    if (pause) return paused(pause);
    const account = await accounts.verify(username, password);
    if (!account) {
      logger.info({ event: 'login.failed', client_id: interaction.params.client_id }, 'login failed');
      metrics.logins.inc({ outcome: 'failure' });
      const started = await throttle.failed(username, ctx.ip);
      if (started) return paused(started);
      ctx.status = 401;
      return showLogin(ctx, interaction, { error: 'That username and password do not match. Try again.', username, remember });
    }
    await throttle.succeeded(username);
    metrics.logins.inc({ outcome: 'success' });
    logger.info({ event: 'login.succeeded', sub: account.sub, client_id: interaction.params.client_id }, 'login succeeded');
    await provider.interactionFinished(
      ctx.req,
      ctx.res,
      { login: { accountId: account.sub, remember, amr: ['pwd'] } },
      { mergeWithLastSubmission: false },
    );
    ctx.respond = false;
  });

  router.post('/:uid/confirm', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found) return;
    const { interaction } = found;
    if (interaction.prompt.name !== 'consent' || !interaction.session) {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for consent' });
      return;
    }
    if (!(await activeAccount(ctx, interaction))) return;
    const details = interaction.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const grant = interaction.grantId
      ? await provider.Grant.find(interaction.grantId)
      : new provider.Grant({ accountId: interaction.session.accountId, clientId: String(interaction.params.client_id) });
    if (!grant) {
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: 'the earlier consent was withdrawn; start again' });
      return;
    }
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await consents.remember(grant);
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.respond = false;
  });

  router.post('/:uid/abort', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found) return;
    await provider.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'the user cancelled the request' },
      { mergeWithLastSubmission: false },
    );
    ctx.respond = false;
  });

  return router.routes() as Middleware;
}
