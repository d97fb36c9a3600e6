/**
 * The pages of RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), rendered by
 * oidc-provider through these hooks: the confirmation (its form carries the provider's own
 * xsrf token) and the page shown when no post_logout_redirect_uri was given.
 *
 * The signed-out page is a GET any site can link to (`/session/end/success`, with or without an
 * app's `client_id`, and `/upstream/<id>/signed-out`), so it says what is true of this browser's
 * session as it is now, not what the link implies: a person at a shared computer must not walk away
 * from "You are signed out" while still signed in (the twelfth sessions pass).
 */
import type { Context } from 'koa';
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import { render } from '../http/views.js';

function clientName(ctx: KoaContextWithOIDC): string | undefined {
  const client = ctx.oidc.client;
  return client ? (client.clientName ?? client.clientId) : undefined;
}

/**
 * The signed-out page for this browser: "You are signed out" only without a signed-in session; an
 * app's sign-out alone ("Only sign out of") says that app is signed out and Latchkey is not; any
 * other visit with a session says it is still signed in, with the way to sign out (`signOut`).
 */
export async function signedOutPage(provider: Provider, ctx: Context | KoaContextWithOIDC, signOut: string, client?: { id: string; name: string }): Promise<string> {
  const session = await provider.Session.get(ctx as KoaContextWithOIDC);
  if (!session.accountId) return render('signed-out', { title: 'Signed out', clientName: client?.name });
  const appSignedOut = client !== undefined && !session.authorizations?.[client.id];
  return render('signed-out', { title: appSignedOut ? 'Signed out of the application' : 'Still signed in', clientName: appSignedOut ? client.name : undefined, stillSignedIn: true, signOut });
}

export const logoutPages = {
  /** `form` is oidc-provider's empty form (id op.logoutForm) with the xsrf field; our buttons submit it. */
  async logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void> {
    ctx.type = 'html';
    ctx.body = render('logout', { title: 'Sign out', clientName: clientName(ctx), form });
  },
  async postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
    const client = ctx.oidc.client;
    const body = await signedOutPage(ctx.oidc.provider, ctx, ctx.oidc.urlFor('end_session'), client && { id: client.clientId, name: clientName(ctx)! });
    ctx.type = 'html';
    ctx.body = body;
  },
};
