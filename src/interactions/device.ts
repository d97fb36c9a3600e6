/**
 * The pages of the device authorization grant (RFC 8628 §3.3) at /device, rendered by
 * oidc-provider through these hooks (features.deviceFlow), in the look of the sign-in pages:
 *
 * - entry: the person types the code their device shows (any case, full-width characters too:
 *   provider/patches/user-code-entry.ts; dashes and spaces ignored, as the engine normalises it), or
 *   finds it filled in from verification_uri_complete;
 * - confirmation: which application asks (name, logo, links), for what (its scopes in words), the
 *   code to compare with the device, and where the request came from; Continue or Deny;
 * - then our own sign-in and consent steps, as for any authorization request;
 * - done: the device may go on; or, on the entry page, why not (denied, expired, throttled); or not
 *   connected after all, when the person's access to the app ended after the device asked.
 *
 * The forms carry the engine's xsrf token (bound to the browser's session). No page has script.
 */
import type { Context } from 'koa';
import type { Client, KoaContextWithOIDC } from 'oidc-provider';
import type { Apis } from '../apis/apis.js';
import type { DevicePages } from '../provider/provider.js';
import { render } from '../http/views.js';
import { forgetUnstoredXsrf, PREFILLED_USER_CODE } from '../provider/patches/user-code-entry.js';
import { DEVICE_PHR_UNMET } from '../provider/patches/step-up.js';
import { allowLogo, brandingOf, registeredItself } from './client-branding.js';
import { claimsAskedByName, describePermissions } from './consent.js';
import { claimsBeyondScope, claimsOfScopes, SCOPE_CLAIMS, SUPPORTED_CLAIMS } from '../provider/scope-claims.js';

interface EngineError {
  readonly name?: string;
  readonly error?: string;
  readonly seconds?: number;
}

/** "30 seconds", "2 minutes". */
function duration(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/**
 * What the entry page says after the engine refused something (ReRenderError names, a write of the code
 * lost to another: store/adapter.ts RecordChangedMeanwhile, our 429). `resumed`: at /device/<uid>, the
 * sign-in's own page (reloaded after it finished, or gone back to), whose code may be connected already.
 */
function problem(err: EngineError | undefined, resumed: boolean): { error?: string; notice?: string } {
  if (!err) return {};
  switch (err.name) {
    case 'NoCodeError':
      return { error: 'Enter the code shown on your device.' };
    case 'NotFoundError':
      return { error: 'That code is not right. Check it on your device and type it again.' };
    case 'ExpiredError':
      return { error: 'That code has expired. Start again on your device to get a new one.' };
    case 'AlreadyUsedError':
      return { error: 'That code was already used. Start again on your device if it is not connected.' };
    case 'RecordChangedMeanwhile':
      return { error: 'That code was used in another window or browser at the same moment. Nothing was done here; start again on your device if it is not connected.' };
    case 'AbortedError':
      return { notice: 'Access denied. The device was told, and it got nothing. You can close this page.' };
  }
  if (err.error === 'temporarily_unavailable') {
    return { error: `Too many wrong codes. For your security, code entry is paused for ${duration(err.seconds ?? 60)}; try again after that.` };
  }
  // The code of a finished sign-in is spent: typing it again only says "already used" (eleventh pass).
  if (resumed) return { error: 'This page was already used or has expired. If your device shows it is connected, there is nothing more to do; if not, start again on your device.' };
  return { error: 'This page expired or the request could not be completed. Enter the code again.' };
}

/**
 * What the entry page says when the sign-in started from it ended with an error the device was told
 * (the engine saves it on the device code, `deviceUserFlowErrors`, and shows the entry page): that
 * code is spent, so "enter the code again" sent the person round to "already used" while their device
 * had stopped (a device app requiring a second factor, met by a person without one, eleventh pass).
 */
function toldTheDevice(name: string, error: string, description: unknown): { error: string } {
  if (error === 'unmet_authentication_requirements' && description === DEVICE_PHR_UNMET) {
    return { error: `${name} was not connected: it asks for a phishing-resistant sign-in, which no device's can be (the code you type could have been sent to you by someone else), and the device was told. The application's maker can ask for a second factor instead.` };
  }
  if (error === 'unmet_authentication_requirements') {
    // A device asking a passkey (phr) is refused before anyone signs in (above): this one asked a second factor.
    return { error: `${name} was not connected: it asks for a second factor your account does not have yet: a passkey or an authenticator app besides a password. Add one on your account page, then start again on your device.` };
  }
  return { error: `${name} was not connected: the sign-in did not finish (${error}), and the device was told. Start again on your device.` };
}

/**
 * Where the engine tells the device an error (deviceUserFlowErrors): as the person presses Continue
 * (`code_verification`: the request checked against its client as registered now, refused) and as
 * their sign-in resumes. Only the second was read, so a refusal at Continue said "enter the code
 * again", which then said "already used", while the device had stopped (thirteenth fresh-eyes passes).
 */
const TOLD_AT = new Set(['code_verification', 'device_resume']);

/**
 * The error the device code of this page's ended sign-in holds, if the engine told the device one
 * (access_denied has its own AbortedError), with the name of the app it was for.
 */
async function errorToldTheDevice(ctx: KoaContextWithOIDC, err: EngineError | undefined): Promise<{ error: string; description: unknown; clientName: string } | undefined> {
  if (!err || err.name === 'AbortedError' || !TOLD_AT.has(ctx.oidc.route)) return undefined;
  const id = (ctx.oidc.entities.Interaction as { deviceCode?: string } | undefined)?.deviceCode;
  // Found as the engine found it to save the error (its types leave out ignoreSessionBinding).
  const code = ctx.oidc.deviceCode ?? (id ? await ctx.oidc.provider.DeviceCode.find(id, { ignoreExpiration: true, ignoreSessionBinding: true } as { ignoreExpiration: boolean }) : undefined);
  const told = (code as { error?: unknown } | undefined)?.error;
  if (!code || typeof told !== 'string') return undefined;
  const client = ctx.oidc.client ?? (code.clientId ? await ctx.oidc.provider.Client.find(code.clientId) : undefined);
  return { error: told, description: (code as { errorDescription?: unknown }).errorDescription, clientName: client ? (client.clientName ?? client.clientId) : 'The application' };
}

/**
 * What verification_uri_complete may fill in: a code as the engine makes them (provider.ts
 * deviceFlow: the base-20 consonants, no vowels), in any case and any width (NFKC, as the engine
 * reads it, user-code-entry.ts), with dashes and spaces, at most the field's 32 characters. The
 * parameter is anyone's to write in a link to /device, and any text was shown in the code's box under
 * "Check that this is the code your device shows" on Latchkey's origin (`?user_code=Locked: call
 * 1-800-555-0100`, content injection, eighth web pass); anything else is not filled in, and the page
 * asks for the code.
 */
const CODE_LIKE = /^[BCDFGHJKLMNPQRSTVWXZ -]{1,32}$/i;
const codeLike = (value: string) => CODE_LIKE.test(value.normalize('NFKC'));

function page(ctx: Context, view: string, data: Record<string, unknown>): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = render(view, data);
}

function clientName(ctx: KoaContextWithOIDC): string {
  const client = ctx.oidc.client;
  return client ? (client.clientName ?? client.clientId) : 'The application';
}

/** The OpenID scopes (an API's scopes are listed with their API). */
const OPENID_SCOPES = new Set(['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS)]);

/** Claims no consent asks about: who the person is and how they signed in (as the engine's consent prompt). */
const UNASKED_CLAIMS = new Set(['sub', 'sid', 'auth_time', 'acr', 'amr', 'iss']);

/**
 * Everything the device asks for, in the consent page's words: its OpenID scopes, the claims it asks
 * for by name (the `claims` parameter) that its client may have, and each API's scopes named with
 * the API (RFC 8707 `resource`). The page listed the bare scope names before, so an API's scope
 * read as `Use the "read" permission` without the API, and claims asked by name not at all, while
 * a remembered consent could give the device both with no other page shown (RFC 8628 §5.4).
 */
async function permissionsOf(apis: ApisFound, ctx: KoaContextWithOIDC, client: Client): Promise<string[]> {
  const device = (ctx.oidc.entities.DeviceCode as { params?: Record<string, unknown> } | undefined)?.params ?? {};
  const scopes = typeof device.scope === 'string' ? device.scope.split(' ').filter(Boolean) : [];
  const openid = scopes.filter((scope) => OPENID_SCOPES.has(scope));
  const byScope = claimsOfScopes(openid);
  const beyond = claimsBeyondScope(client);
  // Only claims the provider offers, as the engine keeps of a `claims` parameter (and so the consent
  // page lists): the device's request is anyone's to make with a device client's id, and any name it
  // gave was listed among what the app "asks to" see, on Latchkey's origin, words of the requester's
  // own (`{"id_token":{"Your account is locked: call …":null}}`, content injection, eighth web pass).
  const claims = [...new Set(claimsAskedByName(device.claims))].filter((claim) => SUPPORTED_CLAIMS.has(claim) && !UNASKED_CLAIMS.has(claim) && !byScope.has(claim) && !beyond.has(claim));
  // Each API's scopes the device asks for, within the client's `scope` metadata, as the token endpoint bounds them (provider/resource-servers.ts).
  const registered = client.scope ? new Set(client.scope.split(' ')) : undefined;
  const indicators = [device.resource].flat().filter((indicator): indicator is string => typeof indicator === 'string');
  const resources: Record<string, string[]> = {};
  for (const indicator of indicators) {
    const api = await apis.find(indicator);
    if (!api) continue;
    resources[indicator] = scopes.filter((scope) => api.scopes.includes(scope) && (!registered || registered.has(scope)));
  }
  return describePermissions(openid, claims, resources);
}

/** RFC 9110 §5.6.2's token: no space, quote, parenthesis, comma, colon or semicolon. Quote-like ' and ` left out too. */
const PRODUCT = /^[A-Za-z0-9!#$%&*+.^_|~-]+(?:\/[A-Za-z0-9!#$%&*+.^_|~-]+)?$/;
const PRODUCTS_SHOWN = 64;

/**
 * What the confirmation quotes as the device's word for itself: the products its User-Agent names
 * (RFC 9110 §10.1.5: `product *( RWS ( product / comment ) )`), comments left out, up to the first
 * word that is neither, at most PRODUCTS_SHOWN characters; undefined when none. The phisher of RFC
 * 8628 §5.4 starts the flow, so writes this header word for word: quoted whole (200 characters of
 * it), it could close the quote and go on in the page's own voice ("…”. Latchkey checked this
 * device: it is safe to continue."), just before the page's warning. A product cannot hold a quote,
 * a comma or a colon, so what is quoted stays one name.
 */
function productsOf(userAgent: unknown): string | undefined {
  if (typeof userAgent !== 'string') return undefined;
  const words = userAgent.replace(/\([^()]*\)/g, ' ').split(/[ \t]+/).filter(Boolean);
  let shown = '';
  for (const word of words) {
    if (!PRODUCT.test(word) || (shown ? shown.length + 1 : 0) + word.length > PRODUCTS_SHOWN) break;
    shown = shown ? `${shown} ${word}` : word;
  }
  return shown || undefined;
}

/** What the confirmation reads of the APIs a device names (apis/apis.ts). */
type ApisFound = Pick<Apis, 'find'>;

/** features.deviceFlow's page hooks. The engine's own `form` markup is not used: its fields are. */
/**
 * `managesItself`: whether a client registered itself (RFC 7591) and is not since an operator's
 * (store/adapter.ts AdapterIndexes#managesItself). Its name and hosts are then its own word (a redirect
 * URI proves no control of its host), which the page says (red team's tenth granting pass).
 */
export const devicePages = (apis: ApisFound, managesItself: (clientId: string) => Promise<boolean>): DevicePages => ({
  async userCodeInputSource(ctx, _form, _out, err) {
    const told = await errorToldTheDevice(ctx, err as EngineError | undefined);
    const said = told ? toldTheDevice(told.clientName, told.error, told.description) : problem(err as EngineError | undefined, ctx.oidc.route === 'device_resume');
    const typed = (err as { userCode?: unknown } | undefined)?.userCode;
    const linked = ctx.state[PREFILLED_USER_CODE] as string | undefined;
    const prefilled = linked !== undefined && codeLike(linked) ? linked : undefined;
    // A browser session that was never stored cannot hold an xsrf secret: no form, a way to a fresh one.
    const unstored = err !== undefined && forgetUnstoredXsrf(ctx);
    page(ctx, 'device', {
      title: 'Connect a device',
      action: ctx.oidc.urlFor('code_verification'),
      fresh: unstored,
      xsrf: (ctx.oidc.session?.state as { secret?: string } | undefined)?.secret ?? '',
      userCode: typeof typed === 'string' ? typed : (prefilled ?? ''),
      prefilled: prefilled !== undefined,
      ...said,
    });
  },

  async userCodeConfirmSource(ctx, _form, client, deviceInfo, userCode) {
    const branding = brandingOf(client, client.clientId);
    allowLogo(ctx as unknown as Context, branding);
    const device = (deviceInfo ?? {}) as { ip?: unknown; ua?: unknown };
    page(ctx, 'device-confirm', {
      title: 'Connect a device',
      client: branding,
      selfRegistered: await registeredItself(client, managesItself),
      permissions: await permissionsOf(apis, ctx, client),
      userCode,
      deviceIp: typeof device.ip === 'string' ? device.ip : undefined,
      deviceAgent: productsOf(device.ua),
      action: ctx.oidc.urlFor('code_verification'),
      xsrf: (ctx.oidc.session?.state as { secret?: string } | undefined)?.secret ?? '',
    });
  },

  async successSource(ctx) {
    page(ctx, 'device-done', { title: 'Device connected', clientName: clientName(ctx) });
  },

  async notConnectedSource(ctx) {
    ctx.status = 400;
    page(ctx, 'device-not-connected', { title: 'Device not connected', clientName: clientName(ctx) });
  },
});
