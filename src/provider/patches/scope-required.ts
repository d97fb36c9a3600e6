/**
 * An authorization request without `scope` (at `/auth`, pushed to `/request`, or a device's at
 * `/device/auth`) is refused at once with `invalid_scope`, as RFC 6749 §3.3 asks of a server with
 * no default scope ("fail the request indicating an invalid scope"; RFC 8628 §3.1 refers to it);
 * and so is one none of whose scopes this server knows (`scope=foo`).
 *
 * oidc-provider accepts such a request, has the person sign in and then answers `access_denied`
 * ("no scope was granted", a detail it does not send): with nothing asked for, nothing can be
 * granted, neither the OpenID scopes nor an API's (which are asked for by name); and it drops the
 * scopes it does not know, so a request of unknown scopes alone asks for nothing either. So the
 * person signed in for nothing, and the app (an OAuth library that leaves `scope` out, as RFC 6749
 * lets it, or one that asks for a scope of another server's) got an error that says the person
 * refused. Known: the static scopes (the OpenID scopes, the configured APIs') and the scopes of
 * the APIs in the store now (read only when none of the requested ones is static). A request with
 * one known scope goes on as before, its unknown ones ignored (RFC 6749 §3.3 lets a server ignore
 * them); so do requests whose scopes are all dropped on the way (offline_access without consent,
 * an API's scope without its resource), which are known scopes.
 *
 * A step put before the engine's scope check in the three endpoints' steps. The error is the
 * engine's: at `/auth` it goes back to the client only once the redirect URI has been checked
 * (the engine's error handler checks it), as the engine's own scope errors do, with `iss`. Its
 * description names the unknown scopes for the app's developer; an error page (no redirect URI to
 * send it to) says it without them, as they are the words of whoever wrote the link
 * (http/errors.ts shownAs).
 */
import { errors, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import { shownAs } from '../../http/errors.js';
import { COMMA_RULE, joinedWithCommas } from '../../apis/scope-commas.js';
import { beforeCheckScope } from './before-check-scope.js';

/** The scopes a provider knows: its static ones, and those of the APIs in the store now. */
export interface KnownScopes {
  readonly statics: ReadonlySet<string>;
  apiScopes(): Promise<readonly string[]>;
}

const KNOWN = new WeakMap<object, KnownScopes>();

/** Tells the step which scopes `provider` knows (provider.ts); without it only a missing scope is refused. */
export function knownScopes(provider: Provider, known: KnownScopes): void {
  KNOWN.set(provider, known);
}

/** How many of the unknown scopes a description names, and how much of each. */
const NAMED_SCOPES = 5;
const NAMED_LENGTH = 64;
const UNKNOWN_RULE = 'ask for openid, or the scopes of an API named with resource';
/** RFC 6749 §3.3: scope tokens of %x21 / %x23-5B / %x5D-7E, one space between them (the engine's check, after this step, refuses others). */
const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/u;

async function scopeRequired(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  const scope = ctx.oidc.params?.scope;
  // No `scope` member in the answer: there is no scope to name (the engine adds one when it is given).
  if (!scope) throw new errors.InvalidScope('a scope is required: openid, or the scopes of an API named with resource', undefined as unknown as string);
  const known = KNOWN.get(ctx.oidc.provider);
  // A scope of characters RFC 6749 §3.3 does not allow is the engine's check's to refuse.
  if (known && typeof scope === 'string' && SCOPE_SYNTAX.test(scope)) {
    const requested = [...new Set(scope.split(' '))];
    if (!requested.some((each) => known.statics.has(each))) {
      const apiScopes = new Set(await known.apiScopes());
      if (!requested.some((each) => apiScopes.has(each))) {
        const named = requested.slice(0, NAMED_SCOPES).map((each) => (each.length > NAMED_LENGTH ? `${each.slice(0, NAMED_LENGTH)}…` : each));
        const more = requested.length > NAMED_SCOPES ? ` and ${requested.length - NAMED_SCOPES} more` : '';
        // "Ask for openid" would send whoever asked for `openid,profile` looking for what is asked already.
        const rule = joinedWithCommas(requested, (part) => known.statics.has(part) || apiScopes.has(part)) ? COMMA_RULE : UNKNOWN_RULE;
        throw shownAs(
          new errors.InvalidScope(`none of the requested scopes is known here (${named.join(' ')}${more}); ${rule}`, undefined as unknown as string),
          `none of the requested scopes is known here; ${rule}`,
        );
      }
    }
  }
  return next();
}

// In the three endpoints' steps, before their scope check (see before-check-scope.ts).
for (const endpoint of ['authorization', 'pushed_authorization_request', 'device_authorization']) beforeCheckScope(endpoint, scopeRequired, 'scope-required.ts');
