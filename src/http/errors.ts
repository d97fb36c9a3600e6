/**
 * Error answers for people and for programs. A person gets a page that says what happened in
 * words; a program gets the protocol's JSON error. Neither ever gets a stack trace.
 */
import type { Context } from 'koa';
import { render } from './views.js';

const FRIENDLY: Record<string, { title: string; message: string }> = {
  invalid_client: {
    title: 'Unknown application',
    // Also a client metadata document that could not be fetched or was refused (registration/client-metadata-documents.ts).
    message: 'The application that sent you here is not registered with this sign-in service, or its registration could not be checked.',
  },
  invalid_redirect_uri: {
    title: 'Unsafe return address',
    message:
      'The application asked to send you back to an address it has not registered. For your safety you have not been sent there.',
  },
  invalid_request: {
    title: 'Invalid sign-in request',
    message: 'The application sent a sign-in request that is not valid. Go back to the application and try again.',
  },
  invalid_scope: {
    title: 'Invalid permissions requested',
    message: 'The application asked for permissions that it may not ask for.',
  },
  unauthorized_client: {
    title: 'Application not allowed',
    message: 'This application is not allowed to sign you in this way.',
  },
  unsupported_response_type: {
    title: 'Unsupported request',
    message: 'The application asked for a kind of sign-in this service does not offer.',
  },
  invalid_target: {
    title: 'Unknown service',
    message: 'The application asked for access to a service this provider does not know.',
  },
  login_required: {
    title: 'Signed out',
    message: 'You were signed out while this sign-in was being answered. Go back to the application and sign in again.',
  },
  session_not_found: {
    title: 'Sign-in expired',
    // Also a device's, once its sign-in is gone from the store (nothing then says whose it was): DEVICE_SIGN_IN_EXPIRED says it where known.
    message: 'This sign-in took too long or was already finished. Go back to the application, or to the device you were connecting, and start again.',
  },
  temporarily_unavailable: {
    title: 'Temporarily unavailable',
    message: 'The sign-in service cannot be reached for a moment. Please try again in a few seconds.',
  },
  not_found: { title: 'Page not found', message: 'There is nothing at this address.' },
  access_denied: {
    title: 'Access denied',
    message: 'This account cannot continue here. If you think that is a mistake, ask the operator of this sign-in service.',
  },
  server_error: {
    title: 'Something went wrong',
    message: 'The sign-in service hit an unexpected problem. Please try again; if it keeps happening, tell its operator.',
  },
};

export function friendly(error: string) {
  return FRIENDLY[error] ?? FRIENDLY.invalid_request!;
}

export interface ErrorOut {
  error: string;
  error_description?: string | undefined;
}

export function wantsHtml(ctx: Context): boolean {
  return ctx.accepts('json', 'html') === 'html';
}

/** Writes an error as a page or as JSON, by what the caller accepts. */
export function respondWithError(ctx: Context, status: number, out: ErrorOut, page: ErrorPageWords | undefined = signOutFailed(ctx) ?? signedInPageRefused(ctx, out)): void {
  ctx.status = status;
  // RFC 6749 §5.1's pair, as the engine's answers at the token, introspection and revocation
  // endpoints carry it (provider/patches/pragma-no-cache.ts): this also answers there, for a store
  // away (503) or a body too large (413), before the engine's layers (fifteenth passes' review, h7).
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  if (wantsHtml(ctx)) {
    ctx.type = 'html';
    ctx.body = errorPage(out, ctx.state.requestId as string | undefined, page);
  } else {
    ctx.body = out.error_description === undefined ? { error: out.error } : out;
  }
}

/**
 * Writes a protocol error as JSON whatever the caller accepts: for endpoints only programs call
 * (token-authenticated APIs, the feed, rate limits, patched provider answers).
 */
export function jsonError(ctx: { status: number; body: unknown }, status: number, error: string, description?: string): void {
  ctx.status = status;
  ctx.body = description === undefined ? { error } : { error, error_description: description };
}

/** An error page's own words, in place of the error's (errorPage). */
type ErrorPageWords = { title: string; message: string; again?: { href: string; label: string } };

/** The error page; `page` puts its own words (and a link to try again) in place of the error's. */
export function errorPage(out: ErrorOut, requestId?: string, page?: ErrorPageWords): string {
  const { title, message } = page ?? friendly(out.error);
  // server_error descriptions are generic already; others help the application's developer.
  const detail = out.error === 'server_error' ? undefined : out.error_description;
  return render('error', { title, message, again: page?.again, error: out.error, detail, requestId });
}

/**
 * A sign-out's confirmation refused (a page left open from an ended session, whose form token is
 * that session's; a blip of the store): the person must not walk away from a shared computer
 * believing they are signed out, so the page says so and offers the sign-out again.
 */
const SIGN_OUT_FAILED = {
  title: 'Not signed out',
  message: 'Your sign-out did not go through: this page may have been out of date. You may still be signed in here; sign out again to be sure.',
};

type ProviderContext = Context & {
  oidc?: {
    route?: string;
    urlFor?: (name: string) => string;
    params?: { redirect_uri?: unknown; post_logout_redirect_uri?: unknown };
    client?: { redirectUris?: readonly string[]; postLogoutRedirectUris?: readonly string[] };
  };
};

/** Loopback host names: one app's redirect URI spelt with another of them is another URI. */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Web schemes: between these a scheme is a developer's near miss; any other is words of the link's writer. */
const WEB_SCHEMES = new Set(['http:', 'https:']);

/**
 * What alone sets a redirect_uri apart from a registered one, when it is one of a developer's
 * common near misses: a trailing slash (`/callback/` for `/callback`), the scheme (`http` for
 * `https`), the port, or another loopback name (`127.0.0.1` for `localhost`). Nothing is said of
 * a registered URI that the request did not all but name, and never which one it is.
 *
 * The page then repeats the asked URI, which is anyone's to write in a link to /auth with any app's
 * client_id: so only one written as the URL parser writes it (no white space, no bidi control, no
 * dot segment: printable ASCII, a host in punycode), with no fragment (which nothing compared) and a
 * scheme that is http or https; anything else is no near miss, and the page has the engine's words
 * alone (the class refusedLogoutUri closed at the sign-out: `http://app.example/cb#Your account is
 * locked. Call …` came back under "Details", eighth web pass).
 */
function nearMissOf(asked: string, uri: string): string | undefined {
  const a = URL.parse(asked);
  if (!a || a.href !== asked || a.hash || asked.includes('#')) return undefined;
  const bare = (value: string) => value.replace(/\/+$/, '');
  if (uri !== asked && bare(uri) === bare(asked)) return asked.endsWith('/') ? 'its trailing slash' : 'a trailing slash';
  const b = URL.parse(uri);
  // A registered URI spelt otherwise than the parser writes it ("HTTP://LOCALHOST:8090/cb", a
  // ":443"): an app or library that builds its URL with the parser never sends it (seventeenth
  // passes, the newcomer's first hour: registration takes such a spelling, and the page said nothing).
  if (b && uri !== asked && b.href === asked && /^https?:$/.test(b.protocol)) {
    return 'the way the registered one is written (capital letters in its scheme or host, or its default port, which apps and browsers leave out): register it as written here';
  }
  if (!b || a.pathname !== b.pathname || a.search !== b.search || a.username || a.password) return undefined;
  const differ = [a.protocol !== b.protocol, a.hostname !== b.hostname, a.port !== b.port];
  if (differ.filter(Boolean).length !== 1) return undefined;
  if (differ[0]) return WEB_SCHEMES.has(a.protocol) && WEB_SCHEMES.has(b.protocol) ? `its scheme (${a.protocol.slice(0, -1)})` : undefined;
  if (differ[2]) return 'its port';
  return LOOPBACK_NAMES.has(a.hostname) && LOOPBACK_NAMES.has(b.hostname) ? 'its host name (localhost, 127.0.0.1 and [::1] are three URIs)' : undefined;
}

/** A redirect_uri refused for a near miss of a registered one (nearMissOf): the page's details say which part. */
function nearMiss(ctx: ProviderContext, out: ErrorOut): ErrorOut {
  const asked = ctx.oidc?.params?.redirect_uri;
  const registered = ctx.oidc?.client?.redirectUris;
  if (out.error !== 'invalid_redirect_uri' || typeof asked !== 'string' || !registered) return out;
  const part = registered.map((uri) => nearMissOf(asked, uri)).find((found) => found !== undefined);
  if (!part) return out;
  return { ...out, error_description: `${out.error_description ?? 'redirect_uri is not registered'}; ${asked} differs from a registered one only by ${part} (redirect URIs are compared exactly)` };
}

/** The engine's description of a sign-out asked with a post_logout_redirect_uri its app did not register (actions/end_session.js). */
const LOGOUT_URI_NOT_REGISTERED = 'post_logout_redirect_uri not registered';

/** The most of a refused post_logout_redirect_uri the page repeats. */
const SHOWN_URI_LENGTH = 300;

/** What a URI is on: its origin (http, https), or its scheme where it has none (a native app's reverse-domain scheme). */
const siteOf = (url: URL) => (url.origin === 'null' ? url.protocol : url.origin);

/**
 * A sign-out refused for its post_logout_redirect_uri names the refused URI in the page's details, so
 * that the app's developer sees what to register (or what their app sent by mistake). Only a URI on
 * a site the app registered (the origin, or a native app's scheme, of one of its redirect or
 * post-logout redirect URIs), written as the URL it is (what the URL parser gives back, no white
 * space: printable ASCII, a host in punycode), cut to SHOWN_URI_LENGTH, shown as text (views/error.eta
 * escapes it); no registered URI is named. Anything else is the engine's description alone: the
 * parameter is anyone's to write in a link to our sign-out, and before the red team's pass over the
 * session's changes any string was repeated on our page (words, a bidi override, a lookalike host:
 * content injection on Latchkey's origin). A near miss of a registered post-logout URI (nearMissOf:
 * another scheme or port of the same host) is shown too, saying which part differs.
 */
function refusedLogoutUri(ctx: ProviderContext, out: ErrorOut): ErrorOut {
  const asked = ctx.oidc?.params?.post_logout_redirect_uri;
  const client = ctx.oidc?.client;
  if (ctx.oidc?.route !== 'end_session' || out.error_description !== LOGOUT_URI_NOT_REGISTERED || typeof asked !== 'string' || !client) return out;
  const url = URL.parse(asked);
  if (!url || url.href !== asked || /\s/.test(asked)) return out;
  const sites = [...(client.redirectUris ?? []), ...(client.postLogoutRedirectUris ?? [])].flatMap((uri) => {
    const registered = URL.parse(uri);
    return registered ? [siteOf(registered)] : [];
  });
  // A near miss of a registered one (a trailing slash, the scheme, the port: on the app's own host
  // still) says which part, as for a redirect_uri (thirteenth newcomer pass).
  const part = (client.postLogoutRedirectUris ?? []).map((uri) => nearMissOf(asked, uri)).find((found) => found !== undefined);
  if (!part && !sites.includes(siteOf(url))) return out;
  const shown = asked.length > SHOWN_URI_LENGTH ? `${asked.slice(0, SHOWN_URI_LENGTH)}…` : asked;
  const differs = part ? `; it differs from a registered one only by ${part}` : '';
  return { ...out, error_description: `${out.error_description}: ${shown} is not one of this app's post-logout redirect URIs${differs} (they are compared exactly)` };
}

/**
 * The page of a sign-out's confirmation that failed, whatever failed (a refusal by the engine, the
 * store away or refusing: app.ts answers those 503, also when a layer before the engine failed),
 * with `again` the sign-out's own URL.
 */
export function signOutFailedPage(again: string) {
  return { ...SIGN_OUT_FAILED, again: { href: again, label: 'Sign out' } };
}

/**
 * "Sign-in expired" for a device's sign-in (one started at /device): there is no application to go
 * back to, and its code may be spent; the device shows a new one when started again.
 */
export const DEVICE_SIGN_IN_EXPIRED = {
  title: 'Sign-in expired',
  message: 'This sign-in took too long or was already finished. Start again on your device: it shows a new code to enter.',
};

/**
 * The account page's "Sign out" of one of the person's sessions that failed (the store away or
 * refusing: a 503): that session may still be signed in, and the person is sent back to sign it
 * out again, not left with "Temporarily unavailable".
 */
export function sessionSignOutFailedPage(account: string) {
  return {
    title: 'Not signed out',
    message: 'Signing that session out did not go through: it may still be signed in. Sign it out again from your account page.',
    again: { href: account, label: 'Your account' },
  };
}

/** What a person's request that failed part-way shows in place of its error's words (app.ts failurePages). */
export type FailurePage = ReturnType<typeof signOutFailedPage>;

/**
 * A sign-out request refused before its confirmation (a post_logout_redirect_uri its app did not
 * register, a bad id_token_hint): nothing was ended, which the page must not leave in doubt; the
 * sign-out offered again is the plain one, which sends the person nowhere afterwards.
 */
const SIGN_OUT_REFUSED = {
  title: 'Not signed out',
  message: 'The application asked for a sign-out this service cannot carry out as asked, so nothing was ended: you may still be signed in here. Sign out here to be sure.',
};

/** The sign-out pages' own words at the engine's sign-out routes, undefined on any other page. */
function signOutFailed(ctx: Context) {
  const oidc = (ctx as ProviderContext).oidc;
  if (!oidc?.urlFor) return undefined;
  if (oidc.route === 'end_session_confirm') return signOutFailedPage(oidc.urlFor('end_session'));
  if (oidc.route === 'end_session') return { ...SIGN_OUT_REFUSED, again: { href: oidc.urlFor('end_session'), label: 'Sign out' } };
  return undefined;
}

/** The pages a person signs in to for themselves (http/first-party-sign-in.ts), and what they are called in a sentence. */
const SIGNED_IN_PAGES: readonly (readonly [path: string, name: string])[] = [
  ['/account', 'your account page'],
  ['/developer', 'the developer page'],
];

/**
 * A request the account or developer page cannot take (invalid_request: the address of one of its
 * forms opened, a 405; a form too large or unreadable, a 413 or 400): the page's own words, that
 * nothing was changed, and a link back to it. The error's words are the sign-in flow's ("the
 * application sent a sign-in request that is not valid"), where no application and no sign-in were
 * involved, and a person who had just seen a new secret or recovery codes at that address was not
 * told whether anything had changed (seventeenth passes, h19). Undefined on any other page.
 */
function signedInPageRefused(ctx: Context, out: ErrorOut): ErrorPageWords | undefined {
  if (out.error !== 'invalid_request') return undefined;
  const found = SIGNED_IN_PAGES.find(([path]) => ctx.path === path || ctx.path.startsWith(`${path}/`));
  if (!found) return undefined;
  const [path, name] = found;
  return {
    title: 'Request not taken',
    message: `${name[0]!.toUpperCase()}${name.slice(1)} could not take this request, so nothing was changed (the details below say why). Open ${name} and try again there.`,
    again: { href: path, label: `Open ${name}` },
  };
}

/** What the error page says in place of an error's description, by the error thrown (shownAs). */
const SHOWN = new WeakMap<object, string>();

/**
 * Marks `error` so that the error page says `description` in place of its own: for a description
 * that quotes what an outsider wrote (a client metadata document's values), which the JSON answer
 * and the log keep for the developer, and a page on our origin must not repeat.
 */
export function shownAs<E extends object>(error: E, description: string): E {
  SHOWN.set(error, description);
  return error;
}

/** What shownAs marked `error` to say on a page, if anything. */
export function shownOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? SHOWN.get(error) : undefined;
}

/** oidc-provider's renderError hook: its errors for people, on our page. */
export async function renderProviderError(ctx: Context, out: ErrorOut, error?: unknown): Promise<void> {
  ctx.type = 'html';
  const requestId = ctx.state.requestId as string | undefined;
  const shown = shownOf(error);
  const said = shown === undefined ? out : { ...out, error_description: shown };
  ctx.body = errorPage(refusedLogoutUri(ctx as ProviderContext, nearMiss(ctx as ProviderContext, said)), requestId, signOutFailed(ctx));
}
