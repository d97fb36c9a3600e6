/**
 * A sign-out confirmed after its client changed goes back only where the client, as registered
 * now, allows (RP-Initiated Logout §3: the post_logout_redirect_uri must be registered; RFC 9700
 * §4.11: no open redirector with the provider's name on it).
 *
 * oidc-provider checks post_logout_redirect_uri against the client when the end-session request
 * arrives, keeps it in the session's state, and at end_session_confirm redirects there without
 * looking at the client again: a person at the confirmation page when an operator removed the URI
 * (its domain lost, say) or deleted the client was still sent there, with the request's `state`.
 *
 * This reads the session before the engine does (the engine goes on with the same object:
 * patches/session-loaded-once.ts) and drops a kept URI that the client no longer allows, or whose
 * client is gone, with its `state`: the person is signed out as asked and lands on Latchkey's
 * signed-out page. The engine's own use of the same field, to bring a person who switches accounts
 * back to the sign-in (resume.js: a URL under the authorization endpoint, or the device flow's
 * under /device, on the issuer), is left.
 * Relies on: the route name `end_session_confirm`, session.state's clientId, postLogoutRedirectUri
 * and state. Pinned by test/e2e/pending-endings.test.ts ("a sign-out confirmed after an operator
 * removed its post_logout_redirect_uri…", "signing in as someone else at a sign-in…" and "…at a
 * device's sign-in…").
 */
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import { scoped } from '../../http/layers.js';

interface LogoutState {
  clientId?: string;
  postLogoutRedirectUri?: string;
  state?: string;
}

interface LogoutClient {
  postLogoutRedirectUriAllowed(uri: string): boolean;
}

export function postLogoutToCurrentRegistration(provider: Provider, issuer: string): Middleware {
  const origin = new URL(issuer).origin;
  // The sign-in's resume (`resume`) and the device flow's (`device_resume`, when the flow is on).
  const resumes = ['authorization', 'code_verification'].flatMap((name) => {
    try {
      return [provider.pathFor(name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')];
    } catch {
      return [];
    }
  });
  const resume = new RegExp(`(?:${resumes.join('|')})/[^/]+$`);
  const isResume = (uri: string) => {
    const url = URL.parse(uri);
    return url?.origin === origin && resume.test(url.pathname);
  };
  const allowedNow = async ({ clientId, postLogoutRedirectUri: uri }: LogoutState & { postLogoutRedirectUri: string }) => {
    if (isResume(uri)) return true;
    const client = clientId ? ((await provider.Client.find(clientId).catch(() => undefined)) as LogoutClient | undefined) : undefined;
    return Boolean(client?.postLogoutRedirectUriAllowed(uri));
  };
  return scoped({ routes: ['end_session_confirm'] }, async function postLogoutRecheck(ctx, next) {
    if (ctx.method === 'POST') {
      const state = (await provider.Session.get(ctx as never)).state as LogoutState | undefined;
      if (typeof state?.postLogoutRedirectUri === 'string' && !(await allowedNow(state as LogoutState & { postLogoutRedirectUri: string }))) {
        state.postLogoutRedirectUri = undefined;
        state.state = undefined;
      }
    }
    return next();
  });
}
