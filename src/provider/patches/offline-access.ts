/**
 * Refresh tokens for `offline_access` without `prompt=consent` on every sign-in, once the person
 * has consented to offline access for that client (OIDC Core §11 lets "other conditions for
 * processing the request permitting offline access" stand in for prompt=consent; a consent the
 * person gave before, remembered in consents.ts, is such a condition).
 *
 * oidc-provider 9 drops `offline_access` from a code-flow request whose `prompt` lacks `consent`
 * (actions/authorization/scopes.js, checkScope), so a single-page app that wants a refresh token
 * had to show the consent page every time. The policy change, in two parts:
 *
 * 1. offlineAccessPrompt (a provider middleware): an authorization request (GET; POST arrives as
 *    GET, see ../post-methods.ts) that asks for `offline_access` with no `prompt`, or one without
 *    `consent` and `none`, gets `consent` added to its prompt, so the scope is kept, and the
 *    marker parameter CONSENT_IF_NEEDED (declared in extraParams, so it stays with the request
 *    through login and resume).
 * 2. consentOnlyIfNeeded (the interaction policy): with the marker, the consent prompt's
 *    `consent_prompt` check (prompt=consent forces the page) is skipped; its other checks still
 *    ask whenever a requested scope, claim or resource scope is not yet granted. So the first
 *    time (and whenever offline_access was never consented) the consent page asks, and says
 *    what offline access means; with remembered consent it does not.
 *
 * A client sending the marker itself only turns its own prompt=consent into "consent if needed":
 * it cannot obtain offline_access without the person's consent.
 *
 * 3. A silent request (prompt=none) cannot show the consent page, and the engine drops its
 *    `offline_access` too; single-page apps that keep tokens in memory (oidc-spa) restore their
 *    session at every page load by such a request and were left without a refresh token though
 *    the person had allowed offline access. Such a request gets the marker OFFLINE_IF_GRANTED,
 *    and offlineIfGranted (after the engine loads the grant) puts `offline_access` back when
 *    that grant, the person's remembered consent, already holds it; without it the scope stays
 *    dropped, as before. A marker the client sends itself is dropped, so it never adds a scope
 *    the request did not ask for.
 *
 * Pushed authorization requests (RFC 9126) get the same rule where they are pushed: the engine
 * checks the scope at `/request` and stores what is left of it, so a pushed `offline_access`
 * without prompt=consent was dropped there, and the code came without a refresh token (every
 * client's, with par.required). pushedOfflineAccess, a step put into the engine's PAR steps
 * before its scope check, makes the same rewrite on the pushed parameters, which are then stored
 * with the prompt and the marker; `/auth` with the request_uri reads them back.
 */
import type { Middleware } from 'koa';
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { scoped } from '../../http/layers.js';
import { afterLoadGrant, beforeCheckScope } from './before-check-scope.js';
import { scopesBeyond } from './current-registration.js';

export const CONSENT_IF_NEEDED = 'latchkey_consent_if_needed';
export const OFFLINE_IF_GRANTED = 'latchkey_offline_if_granted';

const asksOffline = (scope: unknown) => typeof scope === 'string' && scope.split(' ').includes('offline_access');

/** Whether a request asking `scope` with `prompt` is silent and asks for offline access (part 3 above). */
function silentOffline(scope: unknown, prompt: unknown): boolean {
  return asksOffline(scope) && typeof prompt === 'string' && prompt.split(' ').includes('none');
}

/** The prompt a request asking for `scope` with `prompt` is treated as having, or undefined when it stays as sent. */
function impliedPrompt(scope: unknown, prompt: unknown): string | undefined {
  // A repeated prompt is left for oidc-provider to refuse.
  const prompts = typeof prompt === 'string' ? prompt.split(' ').filter(Boolean) : prompt === undefined ? [] : undefined;
  if (!asksOffline(scope) || !prompts || prompts.includes('consent') || prompts.includes('none')) return undefined;
  return [...prompts, 'consent'].join(' ');
}

export function offlineAccessPrompt(authorizationPath: string): Middleware {
  return scoped({ paths: [authorizationPath] }, function offlineAccess(ctx, next) {
    if (ctx.method !== 'GET' || ctx.path !== authorizationPath) return next();
    const implied = impliedPrompt(ctx.query.scope, ctx.query.prompt);
    const silent = silentOffline(ctx.query.scope, ctx.query.prompt);
    // The query is rewritten only when it changes (setting it re-encodes the URL, which the engine then parses again).
    if (!implied && !silent && !(CONSENT_IF_NEEDED in ctx.query) && !(OFFLINE_IF_GRANTED in ctx.query)) return next();
    const query = { ...ctx.query };
    delete query[CONSENT_IF_NEEDED];
    delete query[OFFLINE_IF_GRANTED];
    if (implied) {
      query.prompt = implied;
      query[CONSENT_IF_NEEDED] = '1';
    }
    if (silent) query[OFFLINE_IF_GRANTED] = '1';
    ctx.query = query;
    return next();
  });
}

/** At `/request`: the pushed parameters, as offlineAccessPrompt rewrites an authorization request's query. */
function pushedOfflineAccess(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  const params = ctx.oidc.params as Record<string, unknown>;
  const implied = impliedPrompt(params.scope, params.prompt);
  if (implied) {
    params.prompt = implied;
    params[CONSENT_IF_NEEDED] = '1';
  } else if (params[CONSENT_IF_NEEDED] !== undefined) {
    // A marker the client pushed itself is dropped, as from a query.
    params[CONSENT_IF_NEEDED] = undefined;
  }
  params[OFFLINE_IF_GRANTED] = silentOffline(params.scope, params.prompt) ? '1' : undefined;
  return next();
}

/**
 * At `/auth`, once the engine has loaded the grant: a silent request's `offline_access` (dropped by
 * the engine's scope check) put back when the grant already holds it, for a client that may refresh
 * and may ask it by its `scope` metadata (as the engine's own checks ask). The consent prompt then
 * finds nothing missing.
 */
function offlineIfGranted(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  const { params, grant, client } = ctx.oidc;
  const scope = params?.scope;
  // The engine dropped the scope before its check against the client's `scope` metadata, so that check
  // is made here: an app narrowed since the person allowed it offline access gets no code carrying it
  // (its interactive request is invalid_scope), a code not bound to the session that marked the app's
  // authorization in the session as outliving sign-out (eighteenth passes' review, h12).
  if (params?.[OFFLINE_IF_GRANTED] === '1' && typeof scope === 'string' && !asksOffline(scope) && client?.grantTypeAllowed('refresh_token') && !scopesBeyond(client, ['offline_access']).length && String(params.response_type).split(' ').includes('code') && grant?.getOIDCScope().split(' ').includes('offline_access')) {
    params.scope = `${scope} offline_access`;
  }
  return next();
}

// In the engine's PAR steps, before its scope check (see before-check-scope.ts).
beforeCheckScope('pushed_authorization_request', pushedOfflineAccess, 'offline-access.ts');
afterLoadGrant(offlineIfGranted, 'offline-access.ts');

/** oidc-provider's default policy, with prompt=consent not forcing the page when we implied it. */
export function consentOnlyIfNeeded(): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  const forced = policy.get('consent')?.checks.get('consent_prompt');
  // Fails loudly at start if an upgrade renamed the check this relies on.
  if (!forced) throw new Error('oidc-provider has no consent_prompt check: review src/provider/patches/offline-access.ts');
  const original = forced.check;
  forced.check = (ctx: KoaContextWithOIDC) => (ctx.oidc.params?.[CONSENT_IF_NEEDED] === '1' ? false : original(ctx));
  return policy;
}
