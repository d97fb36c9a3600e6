/**
 * Client authentication accepts a rotated-out client secret during its grace period
 * (registration.secretRotationGrace; the admin API, the developer page), and nothing it gets then
 * outlives that grace: an access token issued to a client that authenticated with the old secret
 * expires when the grace ends (previousSecretGraceEnd, read by the token lifetimes in provider.ts).
 * Whoever stole the old secret keeps no token past the moment the old secret stops working.
 *
 * What it changes in oidc-provider: Client.prototype.compareClientSecret (lib/models/client.js,
 * which client_secret_basic and client_secret_post go through) is wrapped. When the current secret
 * does not match, the client's previous secret, kept by registration/clients.ts as its SHA-256
 * digest (one rotated out by an earlier release: in clear), is compared in constant time with the
 * presented secret's digest (or with the secret). The store is read only when the current secret
 * did not match, so the token endpoint's usual path is untouched. A grace is bounded by
 * registration.secretRotationGrace as configured now (`grace`), from the rotation: lowered and
 * restarted, a secret rotated out before under the longer one stops at the shorter.
 */
import { timingSafeEqual } from 'node:crypto';
import { Provider } from 'oidc-provider';
import { previousSecret, previousSecrets } from '../../registration/clients.js';
import { epochSeconds } from '../../clock.js';
import { digestOf } from '../../store/record-keys.js';
import type { Kv } from '../../store/kv.js';

/** Requests that authenticated with a rotated-out secret: when its grace ends (epoch seconds). */
const graceEnds = new WeakMap<object, number>();

/** When the grace of the old secret this request authenticated with ends; undefined when it used the current one. */
export function previousSecretGraceEnd(ctx: object): number | undefined {
  return graceEnds.get(ctx);
}

/** Whether two secrets (or digests) are the same, in constant time for equal lengths. */
export function sameSecret(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

export function acceptPreviousSecrets(provider: Provider, kv: Kv, grace: number): void {
  const prototype = provider.Client.prototype as unknown as { compareClientSecret(actual: string): Promise<boolean> | boolean };
  const compareCurrent = prototype.compareClientSecret;
  const comparePrevious = async (clientId: string, actual: string) => {
    const kept = await previousSecret(kv, clientId);
    if (kept === undefined) return false;
    // The latest rotated-out secret, and earlier ones still in their grace (PreviousSecret.earlier).
    const previous = previousSecrets(kept, epochSeconds(), grace).find((one) => (one.digest === undefined ? sameSecret(one.secret, actual) : sameSecret(one.digest, digestOf(actual))));
    if (previous === undefined) return false;
    const ctx = Provider.ctx;
    if (ctx && previous.until !== undefined) graceEnds.set(ctx, previous.until);
    return true;
  };
  // Not an async function: the current secret's match (oidc-provider's comparison is synchronous)
  // is answered as it is, with no promise of its own.
  prototype.compareClientSecret = function (this: { clientId: string }, actual: string) {
    const current = compareCurrent.call(this, actual);
    if (current === true) return true;
    return Promise.resolve(current).then((matches) => matches || comparePrevious(this.clientId, actual));
  };
}
