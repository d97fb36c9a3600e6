/**
 * RP-initiated logout goes on to the upstream's end_session_endpoint when the session came from an
 * upstream configured to end its session too (see upstreams/logout.ts).
 *
 * oidc-provider's end_session_confirm answers 303 to the app's post_logout_redirect_uri (or its
 * own success page) once the session is ended; with `logout` (sign out everywhere) and such an
 * upstream, this replaces that Location with the upstream's, which brings the browser back to
 * continue to the original one. Relies on: the route name `end_session_confirm`, ctx.oidc.params.logout,
 * and ctx.oidc.session keeping its uid after destroy().
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { scoped } from '../../http/layers.js';

export function upstreamEndSession(redirectFor: (sessionUid: string, destination: string) => Promise<string | undefined>): Middleware {
  return scoped({ routes: ['end_session_confirm'] }, async function endUpstreamSession(ctx, next) {
    await next();
    const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
    if (oidc?.route !== 'end_session_confirm' || ctx.status !== 303 || !oidc.params?.logout) return;
    const uid = oidc.session?.uid;
    const destination = ctx.response.get('location');
    const upstream = uid && destination ? await redirectFor(uid, destination) : undefined;
    if (upstream) ctx.redirect(upstream);
  });
}
