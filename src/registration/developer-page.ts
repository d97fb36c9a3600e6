/**
 * What every developer page and action shares (see developer-pages.ts): who is signed in (the
 * provider's session, re-checked on every request), rendering a page, a form checked against the
 * CSRF token bound to the session, and an app that must belong to the person.
 */
import type { Context } from 'koa';
import type { AccountSessions } from '../accounts/sessions.js';
import { csrfTokens, type CsrfTokens } from '../http/csrf.js';
import { respondWithError } from '../http/errors.js';
import { render } from '../http/views.js';
import type { ProviderInService } from '../provider-in-service.js';
import type { ClientMetadata, Clients } from './clients.js';

export type Form = Record<string, string | string[] | undefined>;
export const field = (form: Form, name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');

export interface SignedIn {
  readonly accountId: string;
  readonly sessionId: string;
}

export interface DeveloperPage {
  readonly csrf: CsrfTokens;
  /** The signed-in person's sub and session id, or undefined (also when they were disabled or deleted since). */
  signedIn(ctx: Context): Promise<SignedIn | undefined>;
  page(ctx: Context, view: string, data: Record<string, unknown>, status?: number): void;
  /** A POST from a signed-in person with a valid CSRF token; answers the request itself otherwise. */
  submitted(ctx: Context): Promise<{ who: SignedIn; body: Form } | undefined>;
  /** The app, when it belongs to this person; a 404 page otherwise (never "exists but not yours"). */
  ownApp(ctx: Context, accountId: string): Promise<ClientMetadata | undefined>;
}

interface Options {
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly clients: Clients;
  /** Re-checks the session's person on every request. */
  readonly sessions: AccountSessions;
  readonly csrfKey: string;
}

export function developerPage({ providers, clients, sessions, csrfKey }: Options): DeveloperPage {
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

  return { csrf, signedIn, page, submitted, ownApp };
}
