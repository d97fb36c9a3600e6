/**
 * A request that began before an operator or developer narrowed its client is held to the client's
 * registration as it is now when the engine picks it up again (RFC 6749 §3.1.2.4, §4.1.3, §5.2;
 * RFC 9700 §2.1, §4.1: a client gets nothing it may no longer have, and no code goes to a redirect
 * URI it no longer has).
 *
 * oidc-provider checks the redirect URI, response type, grant type and scope against the client
 * when an authorization or device authorization request arrives, and never again: the resumed
 * request after sign-in and consent (resume, `ctx.oidc.redirectUriCheckPerformed`), the person's
 * approval of a device code (code_verification, device_resume), and the redemption of the code or
 * device code at the token endpoint all take the request's values as checked. A redirect URI an
 * operator removed (a domain lost, say) still got the code and the code still got tokens, and the
 * consent page, the code and its tokens carried scopes taken away from the client meanwhile.
 *
 * - withCurrentRegistration adds a check to the login prompt (the first of the policy, so before
 *   any consent is shown again) that, on those routes, checks them again: a redirect URI no longer
 *   registered is invalid_redirect_uri on our error page (never a redirect there); a response type
 *   or the device grant no longer registered is unauthorized_client; a request not pushed, of a
 *   client that must push them now, is invalid_request; an OpenID scope no longer in
 *   its `scope` metadata is invalid_scope, as the authorization endpoint answers them (for a device
 *   code, the polling device gets the error).
 *   The engine's other check of a request's scope when it arrives, `offline_access` dropped for a
 *   client that may not use the refresh_token grant (actions/authorization/scopes.js), is made again
 *   there too, as the engine makes it: offline_access is dropped from the picked-up request when
 *   the refresh_token grant was taken from the client meanwhile. Before, the consent page asked the
 *   person for offline access the client could no longer have, the code carried it, and so its
 *   tokens were not bound to the session (the engine's expiresWithSession) and the session was
 *   marked to keep the grant at sign-out: the access token outlived the person's sign-out, with no
 *   refresh token to show for it (red team's fourth granting pass, 2026-12-02).
 *   So is its PKCE check (pkce.required "public"): a confidential client may leave PKCE out, and a
 *   sign-in it began so, resumed after an operator made the client public, was given a code that
 *   anyone holding it redeemed with the client_id alone (RFC 9700 §2.1.1); it is invalid_request now,
 *   as the public client's request would be when it arrives (same pass). It is held to
 *   `pkce.required` as configured now, too: a confidential client's sign-in begun without PKCE under
 *   "public", resumed after a restart with "all", was given a code without it (eleventh fresh-eyes
 *   passes of 2026-12-07).
 *   Last, a sign-in that resumes (`resume`) ends when its client was narrowed or removed since its
 *   interaction began (at or before the client's cutoff, `narrowedAt`: client-endings.ts clientEndings
 *   records it), though the client is as wide again now: invalid_request, sent to the redirect URI
 *   the client has again. A sign-in left at the login page across a redirect URI taken out and put
 *   back (a configured client restarted twice, the admin API, the developer page, RFC 7592, a Client
 *   ID Metadata Document read again) ended in a code to it: each check above sees only the client
 *   as it is, and sign-ins are not indexed per client to be ended with its pending requests
 *   (twenty-fourth endings pass). Each interaction of a sign-in is made as the one before resumes, so
 *   one made after the cutoff follows one resumed after it: only the first can predate the cutoff.
 *   One read, on the resume (started with the resume's own reads, store/adapter.ts
 *   readInteractionAhead, where a credential check reads them).
 *   So does the approval of a device code asked for at or before the cutoff (its `requestedAt`, at
 *   Continue and as its sign-in resumes at /device; the device is told): the narrowing ends the
 *   client's device codes (endPendingRequests), but one whose device authorization read the client
 *   before the narrowing and wrote its code after was left, and approved and redeemed once the client
 *   was widened again (thirteenth fresh-eyes passes of 2026-12-07, test/e2e/device-flow-thirteenth.test.ts).
 *   One read more on those two steps of a person's, none at the token endpoint: an approval written
 *   over a device code the narrowing ended is refused already (store/adapter.ts RecordChangedMeanwhile).
 * - boundCodesToCurrentRegistration wraps AuthorizationCode.find and DeviceCode.find on the token
 *   endpoint: a code whose redirect URI is no longer registered is invalid_grant, and so is a code
 *   issued without PKCE to a client that must use it now (`pkce.required` as configured now, or the
 *   client made public; the latter is refused already, patches/confidential-redemption.ts); a code's scopes
 *   outside the client's `scope` metadata are dropped (the answer's `scope` says what is left, as
 *   for a refresh: refresh-rotation.ts), and a code with none left is invalid_grant. Its
 *   offline_access is dropped too when the client may no longer use the refresh_token grant, and a
 *   code that loses offline_access either way is redeemed as one issued without it: its tokens end
 *   with the session it was issued in (expiresWithSession), as the tokens of every grant without
 *   offline access do. And a code issued at or before its client's cutoff (the narrowing that ends
 *   its sign-ins in progress, above) is invalid_grant, though the client is as wide again now: a code
 *   issued to a redirect URI taken out and put back, or before the code grant was taken away and
 *   given back, was refused while narrowed and redeemed once widened again (twelfth fresh-eyes passes
 *   of 2026-12-07); its `grantedAt` (the store's clock) is compared, read with its grant (store/adapter.ts
 *   readAheadFor). Device codes end with such a narrowing already (endPendingRequests), and their approval is held to the cutoff (above).
 * Pinned by test/e2e/endings-twelfth.test.ts, test/e2e/granting-attacks.test.ts ("a request begun before an operator narrowed …",
 * "a code issued before an operator narrowed …"), test/e2e/redteam-granted-4.test.ts and
 * test/unit/provider-patches.test.ts.
 */
import { errors, interactionPolicy, Provider, type KoaContextWithOIDC } from 'oidc-provider';
import { DEVICE_CODE_GRANT } from '../../registration/policy.js';
import { pkceRequired, type PkceSetting } from './pkce-required.js';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';

/** Routes where the engine goes on with a request whose client was checked earlier. */
const PICKED_UP = new Set(['resume', 'device_resume', 'code_verification']);

/** Of `scopes`, those outside the client's `scope` metadata (none when it registered no `scope`). */
export function scopesBeyond(client: { readonly scope?: string } | undefined, scopes: Iterable<string>): string[] {
  if (!client?.scope) return [];
  const allowed = new Set(client.scope.split(' '));
  return [...scopes].filter((scope) => !allowed.has(scope));
}

const OFFLINE_ACCESS = 'offline_access';

/** `scope` without offline_access (undefined when nothing is left), as the engine drops it from a request of a client without the refresh_token grant. */
function withoutOfflineAccess(scope: string): string | undefined {
  return scope.split(' ').filter((each) => each !== OFFLINE_ACCESS).join(' ') || undefined;
}

interface RegisteredClient {
  readonly scope?: string;
  readonly requirePushedAuthorizationRequests?: boolean;
  redirectUriAllowed(uri: string): boolean;
  responseTypeAllowed(type: string): boolean;
  grantTypeAllowed(type: string): boolean;
}

/**
 * When the device code being approved was asked for (its `requestedAt`, on the store's clock as the
 * cutoff: patches/device-fresh-login.ts), or the engine's `iat` for one stored without it.
 */
function deviceRequestedAt(ctx: KoaContextWithOIDC): unknown {
  const code = (ctx.oidc as { deviceCode?: { requestedAt?: unknown; iat?: unknown } }).deviceCode;
  return code?.requestedAt ?? code?.iat;
}

/**
 * `policy` with the check of a picked-up request against the client as registered now.
 * `staticScopes`: the engine's `scopes` setting; as at the authorization endpoint, a runtime API's
 * scope outside the client's metadata is not refused here (the API's token never carries it).
 */
export function withCurrentRegistration(
  policy: interactionPolicy.DefaultPolicy,
  staticScopes: readonly string[],
  narrowedAt?: (clientId: string) => Promise<number | undefined>,
  pkce: PkceSetting = 'all',
): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt: review src/provider/patches/current-registration.ts');
  const statics = new Set(staticScopes);
  login.checks.add(
    new interactionPolicy.Check('registration_changed', 'the client registration changed since the request began', 'invalid_request', async (ctx: KoaContextWithOIDC) => {
      const { route, params } = ctx.oidc;
      const client = ctx.oidc.client as unknown as (RegisteredClient & { readonly clientId: string }) | undefined;
      if (!PICKED_UP.has(route) || !client || !params) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      if (route === 'resume') {
        if (typeof params.redirect_uri === 'string' && !client.redirectUriAllowed(params.redirect_uri)) throw new errors.InvalidRedirectUri();
        if (typeof params.response_type === 'string' && !client.responseTypeAllowed(params.response_type)) {
          throw new errors.UnauthorizedClient('requested response_type is not allowed for this client');
        }
        // Pushed requests required since (RFC 9126 §6): a request sent through the front channel stops here.
        if (client.requirePushedAuthorizationRequests && !(ctx.oidc.entities.Interaction as { parJti?: string } | undefined)?.parJti) {
          throw new errors.InvalidRequest('Pushed Authorization Request must be used');
        }
        // Made public since (pkce.required "public" let a confidential client leave PKCE out), or PKCE
        // required of every client since (a restart): its code needs PKCE, as its request would when it arrives.
        if (params.code_challenge === undefined) pkceRequired(pkce)(ctx, ctx.oidc.client!);
      } else if (!client.grantTypeAllowed(DEVICE_CODE_GRANT)) {
        throw new errors.UnauthorizedClient(`${DEVICE_CODE_GRANT} is not allowed for this client`);
      }
      // As the engine's scope check when a request arrives: no offline access without the refresh_token grant.
      if (typeof params.scope === 'string' && params.scope.split(' ').includes(OFFLINE_ACCESS) && !client.grantTypeAllowed('refresh_token')) {
        params.scope = withoutOfflineAccess(params.scope);
      }
      const asked = typeof params.scope === 'string' ? params.scope.split(' ').filter((scope) => statics.has(scope)) : [];
      const beyond = scopesBeyond(client, asked);
      if (beyond.length) throw new errors.InvalidScope('requested scope is not allowed', beyond.join(' '));
      if (narrowedAt) {
        const began = route === 'resume' ? (ctx.oidc.entities.Interaction as { iat?: unknown } | undefined)?.iat : deviceRequestedAt(ctx);
        const cutoff = await narrowedAt(client.clientId);
        if (cutoff !== undefined && (typeof began !== 'number' || began <= cutoff)) {
          throw new errors.InvalidRequest('the client registration changed since the request began; make the request again');
        }
      }
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}

/** The token endpoint's codes and device codes, held to their client's registration now (see above). */
export function boundCodesToCurrentRegistration(provider: Provider, pkce: PkceSetting = 'all', narrowedAt?: (clientId: string) => Promise<number | undefined>): void {
  checkAtTokenEndpoint<RegisteredClient & { clientId: string; clientAuthMethod?: string }>([provider.AuthorizationCode, provider.DeviceCode], async (code, client) => {
    if (code.redirectUri !== undefined && !client.redirectUriAllowed(code.redirectUri)) {
      throw new errors.InvalidGrant('the redirect_uri this code was issued for is no longer registered for the client');
    }
    // Issued at or before the client was narrowed (its cutoff, as for sign-ins above), though it is as wide again now.
    if (code.kind === 'AuthorizationCode' && narrowedAt) {
      const cutoff = await narrowedAt(client.clientId);
      const issued = code.grantedAt ?? code.iat;
      if (cutoff !== undefined && (typeof issued !== 'number' || issued <= cutoff)) {
        throw new errors.InvalidGrant('the client registration changed since this code was issued; make the authorization request again');
      }
    }
    // An authorization code (a device code has no PKCE) issued without it to a client that must use it now.
    if (code.kind === 'AuthorizationCode' && code.codeChallenge === undefined && (pkce === 'all' || client.clientAuthMethod === 'none')) {
      throw new errors.InvalidGrant('this code was issued without PKCE, which the client must use now');
    }
    const scopes = code.scope?.split(' ').filter(Boolean) ?? [];
    const beyond = new Set(scopesBeyond(client, scopes));
    if (scopes.includes(OFFLINE_ACCESS) && !client.grantTypeAllowed('refresh_token')) beyond.add(OFFLINE_ACCESS);
    if (beyond.size === scopes.length && scopes.length) throw new errors.InvalidGrant('the client may no longer have any of the scopes this code was issued for');
    if (beyond.size) code.scope = scopes.filter((scope) => !beyond.has(scope)).join(' ');
    // Offline access taken from it: its tokens end with the session it was issued in, as without offline_access (the engine's expiresWithSession).
    if (beyond.has(OFFLINE_ACCESS)) code.expiresWithSession = true;
  });
}
