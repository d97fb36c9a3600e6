/**
 * RFC 6749 §4.1.2.1 and §5.2 (and RFC 6750 §3 for a challenge): an `error_description` "MUST NOT
 * include characters outside the set %x20-21 / %x23-5B / %x5D-7E", printable ASCII without `"` and
 * `\`. Some of ours did not keep to it: descriptions that cite a section with "§" (an OpenID request
 * without redirect_uri, answered at the redirect URI; a push carrying request_uri), and those that
 * repeat what the request sent (an unknown resource indicator, in invalid_target at the authorization
 * and token endpoints), which holds whatever a URL parser takes, quotes and non-ASCII letters
 * included. The OpenID Foundation's conformance suite fails such an answer
 * (ValidateErrorDescriptionFromAuthorizationEndpointResponseError, ...FromTokenEndpointResponseError).
 *
 * So every error_description an OAuth endpoint sends is brought into that set as it leaves, where
 * it leaves: in the authorization endpoint's responses (each response mode the engine has: query,
 * fragment, form_post), in a JSON error body, and in a WWW-Authenticate challenge's error_description.
 * "§" becomes "section ", typographic quotes, dashes and the ellipsis their ASCII kin, `"` becomes
 * `'`, `\` becomes `/`, a line break or tab a space, and anything else outside the set `?`. The
 * registration endpoint's answers (RFC 7591 §3.2.2, and RFC 7592's) keep to their own rule,
 * printable ASCII, so their quotes stay.
 *
 * An authorization error response also leaves with RFC 6749 §4.1.2.1's members and RFC 9207's `iss`
 * alone: the engine's `scope` beside invalid_scope goes into the description (authorizationErrorPayload).
 */
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

/** RFC 6749 §4.1.2.1's set for error_description. */
export const DESCRIPTION_CHARACTERS = /^[\x20-\x21\x23-\x5B\x5D-\x7E]*$/;

const REPLACEMENTS: Record<string, string> = {
  '§': 'section ',
  '"': "'",
  '\\': '/',
  '‘': "'",
  '’': "'",
  '“': "'",
  '”': "'",
  '–': '-',
  '—': '-',
  '…': '...',
  '→': '->',
  '\t': ' ',
  '\n': ' ',
  '\r': ' ',
};

/** RFC 7591 §3.2.2 (registration, and RFC 7592's client management): "Human-readable ASCII", quotes allowed. */
const PRINTABLE_ASCII = /^[\x20-\x7E]*$/;

/**
 * `text` within RFC 6749's error_description characters (unchanged when it already is); with
 * `registration`, within RFC 7591's printable ASCII, which keeps `"` and `\`.
 */
export function asciiDescription(text: string, registration = false): string {
  const allowed = registration ? PRINTABLE_ASCII : DESCRIPTION_CHARACTERS;
  if (allowed.test(text)) return text;
  let out = '';
  for (const char of text) out += allowed.test(char) ? char : (REPLACEMENTS[char] ?? '?');
  return out.replace(/ {2,}/g, ' ');
}

/** The engine's routes of RFC 7591 and RFC 7592. */
const REGISTRATION_ROUTES = new Set(['registration', 'client', 'client_update', 'client_delete']);

type ResponseMode = (ctx: unknown, redirectUri: string, payload: Record<string, unknown>) => unknown;

/**
 * RFC 6749 §4.1.2.1's members of an authorization error response, and RFC 9207's `iss`: all the
 * OpenID Foundation's suite expects there (CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint).
 * The engine's errOut adds `scope` to an invalid_scope error (a scope beyond the client's registered
 * `scope`, at the request or at its resume), a member no spec gives an authorization error response;
 * the scope it named is said in the description instead.
 */
const AUTHORIZATION_ERROR_MEMBERS = new Set(['error', 'error_description', 'error_uri', 'state', 'iss']);

/**
 * An authorization error response's payload with RFC 6749 §4.1.2.1's members only, its description in
 * that section's characters. The scope is appended whole: no invalid_scope description that reaches a
 * response mode names its scopes (the engine's and current-registration.ts's say "requested scope is
 * not allowed"; those that name them are the token endpoint's, which answers in JSON).
 */
export function authorizationErrorPayload(payload: Record<string, unknown>): Record<string, unknown> {
  let description = payload.error_description;
  const scope = payload.scope;
  if (typeof scope === 'string' && scope.trim() && typeof description === 'string') description = `${description}: ${scope}`;
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(payload)) if (AUTHORIZATION_ERROR_MEMBERS.has(name)) out[name] = value;
  if (typeof description === 'string') out.error_description = asciiDescription(description);
  return out;
}

/** The authorization endpoint's responses: each response mode is given an error payload of RFC 6749 §4.1.2.1's members, its error_description in order. */
export function authorizationErrorDescriptions(provider: Provider): void {
  const modes = (instance(provider) as { responseModes?: Map<string, ResponseMode> }).responseModes;
  if (!modes?.size) throw new Error("oidc-provider keeps no response modes where expected: review src/provider/patches/error-descriptions.ts");
  for (const [name, handler] of modes) {
    modes.set(name, function respond(this: unknown, ctx, redirectUri, payload) {
      if (payload?.error === undefined) return handler.call(this, ctx, redirectUri, payload);
      return handler.call(this, ctx, redirectUri, authorizationErrorPayload(payload));
    });
  }
}

const CHALLENGE_DESCRIPTION = /error_description="((?:[^"\\]|\\.)*)"/g;

function challengeInOrder(value: string): string {
  return value.replace(CHALLENGE_DESCRIPTION, (whole, quoted: string) => {
    const text = quoted.replace(/\\(.)/g, '$1');
    const clean = asciiDescription(text);
    return clean === text && !quoted.includes('\\') ? whole : `error_description="${clean}"`;
  });
}

/** JSON error bodies and WWW-Authenticate challenges, on every path the engine is asked for (unscoped). */
export function errorDescriptionsInOrder(): Middleware {
  // Not an async function, on every request the engine serves: most answers are not errors.
  return function errorDescriptions(ctx, next) {
    return next().then(() => {
      if (ctx.status < 400) return;
      const body = ctx.body as { error_description?: unknown } | null | undefined;
      if (body && typeof body === 'object' && !Buffer.isBuffer(body) && typeof body.error_description === 'string') {
        const route = (ctx as { oidc?: { route?: string } }).oidc?.route;
        const clean = asciiDescription(body.error_description, route !== undefined && REGISTRATION_ROUTES.has(route));
        if (clean !== body.error_description) ctx.body = { ...body, error_description: clean };
      }
      const challenge = ctx.response.get('WWW-Authenticate') as string | string[] | undefined;
      if (!challenge?.length) return;
      const values = [challenge].flat();
      const clean = values.map(challengeInOrder);
      if (clean.some((value, i) => value !== values[i])) ctx.set('WWW-Authenticate', clean);
    });
  };
}
