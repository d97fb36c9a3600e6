/**
 * The pages of RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), rendered by
 * oidc-provider through these hooks: the confirmation (its form carries the provider's own
 * xsrf token) and the page shown when no post_logout_redirect_uri was given.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { render } from '../http/views.js';

function clientName(ctx: KoaContextWithOIDC): string | undefined {
  const client = ctx.oidc.client;
  return client ? (client.clientName ?? client.clientId) : undefined;
}

export const logoutPages = {
  /** `form` is oidc-provider's empty form (id op.logoutForm) with the xsrf field; our buttons submit it. */
  async logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void> {
    ctx.type = 'html';
    ctx.body = render('logout', { title: 'Sign out', clientName: clientName(ctx), form });
  },
  async postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
    ctx.type = 'html';
    ctx.body = render('signed-out', { title: 'Signed out', clientName: clientName(ctx) });
  },
};
