/**
 * What every developer page and action shares (see developer-pages.ts): who is signed in (the
 * provider's session, re-checked on every request), rendering a page and a form checked against the
 * CSRF token bound to the session (http/signed-in-pages.ts, shared with the account page), a form
 * that also needs a recent sign-in, and an app that must belong to the person.
 */
import type { Context } from 'koa';
import { requiredAcr, satisfies } from '../accounts/assurance.js';
import { signInTimeForChecks, type AccountSessions } from '../accounts/sessions.js';
import { csrfTokens, type CsrfTokens } from '../http/csrf.js';
import { respondWithError } from '../http/errors.js';
import { signedInPages, type Form, type SignedIn } from '../http/signed-in-pages.js';
import type { ProviderInService } from '../provider-in-service.js';
import type { ClientMetadata, Clients } from './clients.js';

export { field, type Form, type SignedIn } from '../http/signed-in-pages.js';

/** The part of the page that `?done=apps.signed-in-again` (first-party-sign-in.ts) comes back to. */
export const APPS_SECTION = 'apps';

export interface DeveloperPage {
  readonly csrf: CsrfTokens;
  /** The signed-in person's sub and session id, or undefined (also when they were disabled or deleted since). */
  signedIn(ctx: Context): Promise<SignedIn | undefined>;
  page(ctx: Context, view: string, data: Record<string, unknown>, status?: number): void;
  /** A POST from a signed-in person with a valid CSRF token; answers the request itself otherwise. */
  submitted(ctx: Context): Promise<{ who: SignedIn; body: Form } | undefined>;
  /**
   * `submitted`, for an action that hands out an app's credential (a new secret, shown on the page):
   * also needs a sign-in at most accounts.reauthenticateAfter seconds old, else sends the person to
   * sign in again (prompt=login) and back to the page (303) and answers undefined; as the account
   * page's credential changes do, so that a stolen session cookie alone cannot take an app's secret.
   */
  recentlySubmitted(ctx: Context): Promise<{ who: SignedIn; body: Form } | undefined>;
  /** Whether `who` signed in at most accounts.reauthenticateAfter seconds ago (what recentlySubmitted asks). */
  recent(who: SignedIn): boolean;
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
  /** accounts.reauthenticateAfter: seconds a sign-in counts as recent. */
  readonly reauthenticateAfter: number;
  /** accounts.mfa.required: a session signed in with less (the account page's, which is exempt) is no developer's. */
  readonly mfaRequired: boolean;
}

/** The signed-in developer, with when their session last signed in (epoch seconds: its auth_time). */
interface Developer extends SignedIn {
  readonly authTime: number;
}

export function developerPage({ providers, clients, sessions, csrfKey, reauthenticateAfter, mfaRequired }: Options): DeveloperPage {
  const csrf = csrfTokens(csrfKey, 'developer');
  const required = requiredAcr(undefined, mfaRequired);

  /**
   * The signed-in person's sub and session id, or undefined (also when they were disabled or deleted
   * since, or their session is weaker than the page's sign-in asks: one the account page, exempt from
   * accounts.mfa.required so that a person can set up a second factor, signed in with a password).
   * The page's "Sign in" then asks for the second factor (provider/patches/step-up.ts).
   */
  async function signedIn(ctx: Context): Promise<Developer | undefined> {
    const found = await sessions.signedIn(providers.current, ctx);
    if (!found || !satisfies(found.session.acr, required)) return undefined;
    return { accountId: found.accountId, sessionId: found.session.jti, authTime: signInTimeForChecks(found.session) };
  }

  const carriedSession = (ctx: Context) => ctx.cookies.get(providers.current.cookieName('session')) !== undefined;
  const { page, submitted } = signedInPages({ signedIn, csrf, where: 'the developer page', carriedSession, home: '/developer' });

  const recent = (who: SignedIn) => Math.floor(Date.now() / 1000) - (who as Developer).authTime <= reauthenticateAfter;

  async function recentlySubmitted(ctx: Context) {
    const found = await submitted(ctx);
    if (!found || recent(found.who)) return found;
    ctx.status = 303;
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(`/developer/sign-in?again=${APPS_SECTION}`);
    return undefined;
  }

  /** The app, when it belongs to this person; a 404 page otherwise (never "exists but not yours"). */
  async function ownApp(ctx: Context, accountId: string): Promise<ClientMetadata | undefined> {
    const app = await clients.get(ctx.params.id!);
    if (app && app.owner === accountId) return app;
    respondWithError(ctx, 404, { error: 'not_found', error_description: 'no such app among yours' });
    return undefined;
  }

  return { csrf, signedIn, page, submitted, recentlySubmitted, recent, ownApp };
}
