/**
 * "A credential replaced ends what was got with the old one", whoever wrote the client (admin API,
 * CLI, developer page, RFC 7592): a client's credentials are what its registered authentication
 * method accepts, and a change replaces one when something the client authenticated with before
 * no longer authenticates it after:
 *
 * - client_secret_basic / client_secret_post: its secret, unless the old one is kept working for a
 *   rotation's grace (registration/clients.ts rotateSecret: a routine rotation, not a leak);
 * - private_key_jwt with keys by value (`jwks`): each key, by its RFC 7638 thumbprint, so that adding
 *   a key replaces nothing, and removing one (however its kid, alg or use is written) does;
 * - private_key_jwt with `jwks_uri`: the URL (what another URL publishes is another client's word);
 * - `none`: nothing.
 *
 * So changing the method (client_secret_basic to private_key_jwt, to stop a secret) replaces the old
 * credential too. The client's tokens for itself (client_credentials) end then, as for a secret
 * rotated without grace (provider.ts clientReplaced); and a secret that stops being a credential takes
 * its rotated-out predecessor's grace with it, so that the client made confidential again is not
 * authenticated by a secret rotated out before.
 */
import { calculateJwkThumbprint, type JWK } from 'jose';
import { previousSecret } from '../registration/clients.js';
import { secretDigestOf } from '../store/record-keys.js';
import type { Kv } from '../store/kv.js';

type Metadata = Record<string, unknown>;

const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);
/** As stored (clientDefaults in provider.ts): client_secret_basic when none is named (RFC 7591 §2). */
const methodOf = (metadata: Metadata) => (metadata.token_endpoint_auth_method ?? 'client_secret_basic') as string;

/** The digest of the secret that authenticates the client, if a secret does. */
export function authenticatingSecret(metadata: Metadata): string | undefined {
  return SECRET_METHODS.has(methodOf(metadata)) && typeof metadata.client_secret === 'string' ? secretDigestOf(metadata.client_secret) : undefined;
}

/** The keys and key locations that authenticate a private_key_jwt client, each as one word. */
async function authenticatingKeys(metadata: Metadata): Promise<Set<string>> {
  if (methodOf(metadata) !== 'private_key_jwt') return new Set();
  if (typeof metadata.jwks_uri === 'string') return new Set([`jwks_uri ${metadata.jwks_uri}`]);
  const keys = (metadata.jwks as { keys?: JWK[] } | undefined)?.keys ?? [];
  return new Set(await Promise.all(keys.map(async (key) => `key ${await calculateJwkThumbprint(key).catch(() => JSON.stringify(key))}`)));
}

/**
 * What a change of a client's record stops authenticating it: `secret`, its secret (replaced with no
 * grace, or no longer its method); `any`, that or any key or key location.
 */
export async function replacedCredentials(kv: Kv, clientId: string, previous: Metadata, next: Metadata): Promise<{ secret: boolean; any: boolean }> {
  const [before, after] = [authenticatingSecret(previous), authenticatingSecret(next)];
  // A secret changed with the old one kept for a grace is a routine rotation (the store is read only when it changed: rarely).
  const secret = before !== undefined && before !== after && (after === undefined || (await previousSecret(kv, clientId))?.digest !== before);
  const [keysBefore, keysAfter] = await Promise.all([authenticatingKeys(previous), authenticatingKeys(next)]);
  return { secret, any: secret || [...keysBefore].some((key) => !keysAfter.has(key)) };
}
