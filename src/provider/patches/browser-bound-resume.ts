/**
 * Under an https issuer, a sign-in goes on only in the browser that started it, whatever cookies a
 * sibling subdomain planted: each interaction the engine starts also gets a `__Host-lk_flow_<uid>`
 * cookie (Secure, Path=/, no Domain, so no other host can set it, RFC 6265bis §4.1.3.2), and the
 * resume (`/auth/<uid>`, the device flow's `/device/<uid>`) is refused without it, before the
 * interaction is taken or anything is issued; so are the interaction's pages and the upstream
 * callback (startedInThisBrowser).
 *
 * Why: the engine binds an interaction to the browser by its `lk_interaction` and `lk_resume`
 * cookies, which are scoped to the interaction's paths and so cannot be `__Host-`. A sibling
 * subdomain (same site: another team's app, a user-content host) can set cookies for the parent
 * domain with any path. An attacker signs in to their own account up to the resume, then plants
 * their `lk_resume` cookie (validly signed: it is theirs) in a victim's browser for
 * `/auth/<uid>` and sends the victim there: the victim's browser was signed in as the attacker
 * (login CSRF by cookie tossing), which the session cookie's own `__Host-` prefix was chosen to
 * stop. Found by the outsider's attack pass.
 *
 * The cookie is set when the engine emits `interaction.started` (lib/actions/authorization/
 * interactions.js, after its own cookies, with ctx); the check wraps Interaction#destroy on the
 * resume routes, which resume.js calls before it processes the result (single-use-resume.ts relies
 * on the same call, and is wrapped: the check comes first). The cookie is cleared as the resume
 * takes the interaction. Under an http issuer (development) there is no `__Host-` cookie to set,
 * and nothing changes. A sign-in started before this patch ran (a rolling upgrade) is refused at
 * its next page or its resume, and is started again.
 */
import type { Context } from 'koa';
import { Provider } from 'oidc-provider';
import { notThisResume } from './single-use-resume.js';

const RESUMES = new Set(['resume', 'device_resume']);

/** The binding cookie of interaction `uid` (nanoid: a cookie-name token). */
export const flowCookie = (uid: string) => `__Host-lk_flow_${uid}`;

/**
 * Whether interaction `uid` was started in the browser of `ctx` (always, under an http issuer): for
 * Latchkey's own interaction pages and the upstream callback, which the engine's path-scoped cookies
 * alone bind (interactions/interaction.ts load, interactions/upstream.ts). Without this, a victim's
 * browser given the attacker's `lk_interaction` cookie signed in to the attacker's interaction with
 * the victim's own password (or upstream), and the attacker's browser, holding the flow cookie,
 * resumed it as the victim.
 */
export function startedInThisBrowser(ctx: Pick<Context, 'cookies'>, issuer: string, uid: string): boolean {
  return !issuer.startsWith('https:') || ctx.cookies.get(flowCookie(uid), { signed: false }) === '1';
}

interface Interactionish {
  readonly uid: string;
}

/** `interactionTtl`: seconds an interaction lives (ttl.interaction), the cookie's too. */
export function browserBoundResume(provider: Provider, issuer: string, interactionTtl: number): void {
  if (!issuer.startsWith('https:')) return;
  const attributes = '; path=/; secure; httponly; samesite=lax';
  provider.on('interaction.started', (ctx: Context & { oidc?: { entities?: { Interaction?: Interactionish } } }) => {
    const interaction = ctx.oidc?.entities?.Interaction;
    if (!interaction) return;
    ctx.append('Set-Cookie', `${flowCookie(interaction.uid)}=1; max-age=${interactionTtl}${attributes}`);
  });
  const prototype = provider.Interaction.prototype as unknown as { destroy(this: Interactionish): Promise<void> };
  const destroy = prototype.destroy;
  prototype.destroy = async function (this: Interactionish) {
    const ctx = Provider.ctx as (Context & { oidc?: { route?: string } }) | undefined;
    const route = ctx?.oidc?.route;
    if (!ctx || route === undefined || !RESUMES.has(route)) return destroy.call(this);
    if (!startedInThisBrowser(ctx, issuer, this.uid)) {
      throw notThisResume('this sign-in was not started in this browser');
    }
    await destroy.call(this);
    ctx.append('Set-Cookie', `${flowCookie(this.uid)}=; max-age=0${attributes}`);
  };
}
