/**
 * Client authentication accepts a rotated-out client secret during its grace period
 * (clients.secretRotationGrace; `latchkey clients rotate-secret`, the admin API, the developer page).
 *
 * What it changes in oidc-provider: Client.prototype.compareClientSecret (lib/models/client.js,
 * which client_secret_basic and client_secret_post go through) is wrapped. When the current secret
 * does not match, the client's previous secret, kept by registration/clients.ts, is compared in
 * constant time. The store is read only when the current secret did not match, so the token
 * endpoint's usual path is untouched.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Provider } from 'oidc-provider';
import { previousSecret } from '../../registration/clients.js';
import type { Kv } from '../../store/kv.js';

function sameSecret(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

export function acceptPreviousSecrets(provider: Provider, kv: Kv): void {
  const prototype = provider.Client.prototype as unknown as { compareClientSecret(actual: string): Promise<boolean> | boolean };
  const compareCurrent = prototype.compareClientSecret;
  prototype.compareClientSecret = async function (this: { clientId: string }, actual: string) {
    if (await compareCurrent.call(this, actual)) return true;
    const previous = await previousSecret(kv, this.clientId);
    return previous !== undefined && sameSecret(previous, actual);
  };
}
