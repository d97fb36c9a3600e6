/**
 * The developer page (/developer): a signed-in person registers their own apps, sees each new
 * secret exactly once, rotates it and deletes apps. Apps are ordinary clients whose `owner` is
 * the person's sub, created through the same registry (and so the same policy) as every other.
 *
 * Signing in to this page is signing in to Latchkey: the page is a first-party public client that
 * starts an ordinary authorization request; once the person is back, the page reads the
 * provider's session. Forms carry a CSRF token bound to that session.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { underPrefix } from '../http/under-prefix.js';
import { routesWithAllow } from '../http/method-not-allowed.js';
import type { ProviderInService } from '../provider-in-service.js';
import type { AccountSessions } from '../accounts/sessions.js';
import type { Clients } from './clients.js';
import { appsPage } from './developer-apps.js';
import { deleteAppAction } from './developer-delete.js';
import { developerPage } from './developer-page.js';
import { rotateSecretAction } from './developer-secret.js';
import { signInRoutes } from './developer-sign-in.js';
import { formBody } from '../http/bodies.js';

// The page's own client is defined with its sign-in; provider.ts registers it from here.
export { DEVELOPER_CLIENT_ID, developerClient } from './developer-sign-in.js';

interface Options {
  readonly issuer: string;
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly clients: Clients;
  /** Re-checks the session's person on every request. */
  readonly sessions: AccountSessions;
  readonly csrfKey: string;
  readonly secretRotationGrace: number;
  /** registration.maxAppsPerDeveloper. */
  readonly maxAppsPerDeveloper: number;
  /** accounts.reauthenticateAfter: how recent a sign-in must be to rotate a secret. */
  readonly reauthenticateAfter: number;
  /** accounts.mfa.required: the page takes no session signed in with less. */
  readonly mfaRequired: boolean;
}

/**
 * Wires the developer page: what its pages share is developer-page.ts; each page or action is a
 * module of its own (developer-apps.ts, developer-sign-in.ts, developer-secret.ts, developer-delete.ts).
 */
export function developerPages({ issuer, providers, clients, sessions, csrfKey, secretRotationGrace, maxAppsPerDeveloper, reauthenticateAfter, mfaRequired }: Options): Middleware {
  const router = new Router({ prefix: '/developer' });
  const form = formBody('32kb');
  const shared = developerPage({ providers, clients, sessions, csrfKey, reauthenticateAfter, mfaRequired });

  appsPage(router, shared, { issuer, clients, maxApps: maxAppsPerDeveloper, form });
  signInRoutes(router, { issuer });
  rotateSecretAction(router, shared, { issuer, clients, secretRotationGrace, form });
  deleteAppAction(router, shared, { clients, form });

  return underPrefix('/developer', routesWithAllow(router));
}
