/**
 * A silent authorization request (`prompt=none`) from a frame of a page on another site is told why
 * it finds no session, and what works instead (OIDC Core §3.1.2.6's `login_required` still).
 *
 * Single-page app libraries renew in a hidden iframe when they hold no refresh token (oidc-client-ts's
 * `signinSilent`, @axa-fr/oidc-client's silent sign-in, keycloak-js's `check-sso`). The session cookie
 * is `SameSite=Lax` (accounts/sessions.ts, the engine's own cookies too), which a browser sends to a
 * frame only when the page holding it is of the same site as Latchkey: from an app on another site
 * (`https://app.example` with Latchkey at `https://login.example.org`) the request never carries it,
 * whoever is signed in. The engine's `no_session` answered "End-User authentication is required", the
 * words a signed-out person's request gets, and the app's developer, who had just signed in, read
 * nothing that said the renewal can never work from there (seventeenth pass at client libraries).
 *
 * This adds one check to the login prompt, ahead of `no_session` and asking only where it does (no
 * session at all): a request a browser marks as a frame's navigation from another site
 * (`Sec-Fetch-Dest: iframe` or `frame`, `Sec-Fetch-Site: cross-site`: Fetch Metadata) gets the same
 * error with a description that says so. It reads only what the request says of itself, so it tells
 * a sender nothing of the browser's session; every other request, a same-site frame's included, is
 * answered as before.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

export const CROSS_SITE_FRAME_DESCRIPTION =
  'End-User authentication is required: this request came from a frame of a page on another site, ' +
  "where browsers do not send this server's session cookie (SameSite=Lax), so a silent sign-in in a " +
  'frame cannot work there; renew with a refresh token (offline_access) or a top-level redirect';

/** Whether the browser marks `ctx`'s request as a frame's navigation from a page of another site. */
function fromCrossSiteFrame(ctx: KoaContextWithOIDC): boolean {
  const destination = ctx.get('sec-fetch-dest');
  return (destination === 'iframe' || destination === 'frame') && ctx.get('sec-fetch-site') === 'cross-site';
}

/** `policy` with the cross_site_frame check on its login prompt, before the engine's no_session. */
export function withCrossSiteFrames(policy: interactionPolicy.DefaultPolicy): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  const at = login?.checks.findIndex((check) => check.reason === 'no_session') ?? -1;
  if (!login || at === -1) throw new Error("oidc-provider's login prompt has no no_session check: review src/provider/patches/cross-site-frames.ts");
  login.checks.add(
    new interactionPolicy.Check('cross_site_frame', CROSS_SITE_FRAME_DESCRIPTION, 'login_required', (ctx: KoaContextWithOIDC) =>
      ctx.oidc.session?.accountId === undefined && fromCrossSiteFrame(ctx) ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT,
    ),
    at,
  );
  return policy;
}
