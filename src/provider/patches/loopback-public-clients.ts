/**
 * A public client whose code goes to a loopback redirect URI is asked the person's consent at
 * every request, as a native app is (RFC 8252 §8.6, client impersonation; RFC 9700 §4.11.2).
 *
 * Whatever listens on a port of the machine receives what is sent to `http://127.0.0.1:<port>/…`
 * or `http://localhost:<port>/…`: any program the person runs can take a public client's
 * client_id, listen there, open the browser at an authorization request with its own PKCE
 * challenge and, with the person signed in and the client allowed before, get a code without a
 * page shown (or silently, `prompt=none`), and redeem it with its verifier: no secret proves who
 * redeems. RFC 8252 §8.6: such requests SHOULD NOT be processed automatically "unless the identity
 * of the client can be proven … as if no previous request had been approved". The engine does so
 * for clients registered `application_type: native` (its consent check native_client_prompt), but
 * Latchkey also lets web clients register loopback redirect URIs (for development, registration/
 * policy.ts), and a public web client's, an MCP client's metadata document among them, got codes
 * there silently (red team's protocol pass, 2026-12-02).
 *
 * Now the consent prompt has a check like the engine's, after its others: a request of a public
 * client (token_endpoint_auth_method none) whose redirect_uri is on a loopback host (http, or
 * https: a program can serve TLS there too; however the host is spelt) asks for the consent page
 * until the person decided in this interaction; under `prompt=none` that is consent_required while
 * something asked was never allowed, interaction_required once it was. A confidential client's
 * code is of no use without its credentials, and Latchkey's own pages (first-party clients, on the
 * issuer's origin) are not apps to impersonate.
 * Pinned in test/unit/provider-patches.test.ts.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { FIRST_PARTY_CLIENT_IDS } from '../../http/first-party-sign-in.js';
import { onThisMachine } from '../../http/this-machine.js';

const ENGINE_CHECK = 'native_client_prompt';

/** Whether the request's code goes to a loopback listener of a client that cannot prove who it is. */
function unprovenLoopback({ oidc }: KoaContextWithOIDC): boolean {
  const { client, params } = oidc;
  if (!client || client.clientAuthMethod !== 'none' || FIRST_PARTY_CLIENT_IDS.includes(client.clientId)) return false;
  const target = typeof params?.redirect_uri === 'string' ? URL.parse(params.redirect_uri) : null;
  // https too: a program can serve TLS on a loopback port (a developer's local CA makes browsers trust it).
  return (target?.protocol === 'http:' || target?.protocol === 'https:') && onThisMachine(target.hostname);
}

/** `policy` with the consent prompt asking again for a public client's loopback redirect URI. */
export function loopbackPublicClientsAsked(policy: interactionPolicy.DefaultPolicy): interactionPolicy.DefaultPolicy {
  const consent = policy.get('consent');
  if (!consent?.checks.some((check) => check.reason === ENGINE_CHECK)) throw new Error(`oidc-provider's consent prompt has no ${ENGINE_CHECK} check: review src/provider/patches/loopback-public-clients.ts`);
  const check = new interactionPolicy.Check(
    'loopback_public_client_prompt',
    'public clients receiving at a loopback redirect URI require End-User interaction',
    'interaction_required',
    (ctx: KoaContextWithOIDC) =>
      unprovenLoopback(ctx) && ctx.oidc.params?.response_type !== 'none' && !ctx.oidc.result?.consent
        ? interactionPolicy.Check.REQUEST_PROMPT
        : interactionPolicy.Check.NO_NEED_TO_PROMPT,
  );
  // Last: what the person has not allowed yet is consent_required first, as for any client.
  consent.checks.push(check);
  return policy;
}
