/**
 * Nothing is signed with a key revoked elsewhere (`latchkey keys revoke`, `keys rotate --now
 * --revoke-current` through another instance, worker or the CLI).
 *
 * This process follows the ring every keys.refreshInterval; until then its provider would sign
 * with the revoked key, and what it signed would be refused everywhere: an ID token that fails the
 * sign-in, a logout token the app rejects. The revocation list's kid entry, written before the
 * ring changes, is read first, from the store's tracked cache (no round trip): when it names the
 * key that signs now, the ring is read at once and followed (KeyringService.ready), and the engine
 * then picks the key that replaced it (keyring/signing-keys.ts: which key signs is asked when the
 * engine picks one, so a provider built from the older ring does too). Where the replacing ring
 * cannot be read, the request is answered 503 (a store outage), never signed with the revoked key.
 *
 * Everything the engine signs with our keys goes through IdToken#issue (ID tokens, logout tokens,
 * signed userinfo, introspection and JARM responses) or the JWT access token format, whose
 * customizer (provider.ts formats.customizers.jwt) waits the same way before its key is picked.
 */
import type { Provider } from 'oidc-provider';
import type { SigningGate } from '../../keyring/service.js';

export function signWithUnrevokedKeys(provider: Provider, signing: SigningGate): void {
  const { prototype } = provider.IdToken as unknown as { prototype: { issue(this: unknown, options?: unknown): Promise<string> } };
  const issue = prototype.issue;
  prototype.issue = async function issueWithUnrevokedKey(this: unknown, options?: unknown) {
    await signing.ready();
    return issue.call(this, options);
  };
}
