/**
 * Where the store keeps a record and what names it in indexes: bearer values (DIGESTED) under their
 * digest, never their value, found within this process by a handle (HANDLE); a client's secret kept
 * as its digest and given to the engine as a handle (SECRET_HANDLE). The layout and why: adapter.ts.
 */
import { hash, randomBytes } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { oidcRecordKey } from './keys.js';

/**
 * Models kept under a digest of their id, not the id: their id is a bearer credential (see the
 * layout in adapter.ts). Their records are stored without their jti, given back by find. The digest is one
 * SHA-256 of a value of at least 256 random bits (a salt or a slow hash would add nothing a guess
 * could be made against).
 */
export const DIGESTED: ReadonlySet<string> = new Set([
  'InitialAccessToken',
  'RegistrationAccessToken',
  'AccessToken',
  'ClientCredentials',
  'RefreshToken',
  'AuthorizationCode',
  'Session',
  'DeviceCode',
]);
/** What names a digested record in the store and in its index: `sha256:` and the id's SHA-256, base64url. */
// crypto.hash, one call: a Hash object made and digested per key costs more on the hot paths.
export const digestOf = (id: string) => `sha256:${hash('sha256', id, 'base64url')}`;
/**
 * The id given to the engine for a digested record found without its id (a session by its uid, or
 * through a person's index, which hold digests): this process's random prefix and the digest. The
 * store maps it back to the digest (refOf); nothing from outside the process can name a record by
 * its digest with it (a session cookie holding a digest read from a copy of the store is digested
 * again, and finds nothing). Never stored: a record is kept without its id, an index holds digests.
 */
const HANDLE = `h.${randomBytes(16).toString('base64url')}.`;
export const isHandle = (id: string) => id.startsWith(HANDLE);
/** What names record `id` of a digested model in the store and in its indexes: its digest. */
export const refOf = (id: string) => (isHandle(id) ? id.slice(HANDLE.length) : digestOf(id));
/** The id find() takes for an index's entry: a digest's handle, or an id kept by the release before. */
export const idOfRef = (entry: string) => (entry.startsWith('sha256:') ? HANDLE + entry : entry);
/** A session's id as find() takes it, for its digest in the sorted set of session ends (Kv.schedule). */
export const sessionHandleOf = idOfRef;
export const recordKey = (model: string, id: string) => oidcRecordKey(model, DIGESTED.has(model) ? refOf(id) : id);
/**
 * Where a digested model's record was kept before it was digested: under the id itself. None for
 * a model kept by its id, nor for a handle (found by its digest), nor for a value spelled as a
 * digest (`sha256:…`, no id the engine makes has a colon): under it is the record of that digest,
 * which a digest read from a copy of the store would otherwise find, as good as the value.
 */
export const legacyKey = (model: string, id: string) => (DIGESTED.has(model) && !isHandle(id) && !id.startsWith('sha256:') ? oidcRecordKey(model, id) : undefined);
/**
 * A client's secret is kept as its SHA-256 digest, in its own field (client_secret_digest), never in
 * client_secret: a copy of the store acts as no confidential client (a secret is at least 256 random
 * bits when generated, and a chosen one is held to a minimum length: registration/policy.ts). The
 * engine is given, as the client's client_secret, a handle (SECRET_HANDLE and the digest) that means
 * something within this process only; client authentication compares the presented secret's digest
 * with the one the handle names (provider/patches/client-secret-digests.ts), so a digest copied from
 * the store is no secret here (it is digested again). A client written by the release before, with
 * its secret in clear, is given to the engine as it is (and compared as it is), and is kept by the
 * digest on its next write, or at start (AdapterIndexes.digestClientSecrets).
 */
const SECRET_HANDLE = `s.${randomBytes(16).toString('base64url')}.`;
/** Whether `value` is the handle the engine was given for a client's secret kept by its digest. */
export const isSecretHandle = (value: unknown): value is string => typeof value === 'string' && value.startsWith(SECRET_HANDLE);
/** The digest a client secret is kept as: of a clear secret, or the one its handle names. */
export const secretDigestOf = (secret: string) => (isSecretHandle(secret) ? secret.slice(SECRET_HANDLE.length) : digestOf(secret));
/** A client's metadata as the store keeps it: its secret (clear, or a handle) as client_secret_digest. */
export function storedClient(payload: AdapterPayload): AdapterPayload {
  const { client_secret: secret, client_secret_digest: _given, ...rest } = payload as AdapterPayload & { client_secret?: unknown; client_secret_digest?: unknown };
  return typeof secret === 'string' ? { ...rest, client_secret_digest: secretDigestOf(secret) } : rest;
}
/** A stored client's metadata as the engine is given it: its secret's digest as a handle in client_secret. */
export function loadedClient(payload: AdapterPayload): AdapterPayload {
  const { client_secret_digest: digest, ...rest } = payload as AdapterPayload & { client_secret_digest?: unknown };
  return typeof digest === 'string' ? { ...rest, client_secret: SECRET_HANDLE + digest } : payload;
}

/** Models whose records belong to a grant and die with it. */
export const GRANTABLE: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

