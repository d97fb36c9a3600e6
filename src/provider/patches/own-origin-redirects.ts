/**
 * A redirect or post-logout URI on Latchkey's own origin matches only as registered, exactly.
 *
 * oidc-provider matches a native client's loopback URI on any port (RFC 8252 §7.3:
 * Client#redirectUriAllowed and #postLogoutRedirectUriAllowed, lib/models/client.js). With the
 * issuer on loopback (development), one of those ports is Latchkey's own: a developer's native app
 * that registered `http://localhost/developer/callback` (no port, so not Latchkey's address, which
 * registration refuses: registration/policy.ts) had people, and their codes, sent to
 * `http://localhost:3000/developer/callback`, Latchkey's own page, and a sign-out confirmed to
 * any of its own paths (attacker and authorization-model passes of 2026-12-06). An operator's client
 * that registered an address of ours keeps it, as registered.
 * Pinned by test/conformance/dynamic-op.test.ts ("a native app's loopback port variance never lands
 * on Latchkey's own origin…").
 */
import type { Provider } from 'oidc-provider';
import { serverOf } from '../../registration/policy.js';

interface Redirects {
  readonly redirectUris?: readonly string[];
  readonly postLogoutRedirectUris?: readonly string[];
  redirectUriAllowed(uri: string): boolean;
  postLogoutRedirectUriAllowed(uri: string): boolean;
}

export function ownOriginOnlyAsRegistered(provider: Provider, issuer: string, port: number): void {
  // With the issuer on loopback the browser runs on Latchkey's machine, where the port Latchkey
  // listens on is its own too (an https issuer in front of it, on another port: review).
  const loopback = serverOf(issuer)?.includes('//loopback:');
  const own = new Set([serverOf(issuer), ...(loopback ? [serverOf(`http://localhost:${port}`)] : [])]);
  const prototype = provider.Client.prototype as unknown as Redirects;
  const { redirectUriAllowed, postLogoutRedirectUriAllowed } = prototype;
  prototype.redirectUriAllowed = function (this: Redirects, uri: string) {
    return own.has(serverOf(uri)) ? (this.redirectUris?.includes(uri) ?? false) : redirectUriAllowed.call(this, uri);
  };
  prototype.postLogoutRedirectUriAllowed = function (this: Redirects, uri: string) {
    return own.has(serverOf(uri)) ? (this.postLogoutRedirectUris?.includes(uri) ?? false) : postLogoutRedirectUriAllowed.call(this, uri);
  };
}
