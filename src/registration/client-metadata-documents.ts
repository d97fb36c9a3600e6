/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, as the MCP
 * authorization specification uses it): a client_id that is an https URL with a path names a JSON
 * document, served there by the client's owner, that holds its metadata. Latchkey fetches it
 * when the client first appears, with the outbound guard (http/outbound.ts: https only, no
 * private addresses unless allowed, bounded size and time, no redirects), and accepts it only when
 *
 * - its `client_id` is exactly the URL it was fetched from;
 * - it holds no client secret and uses no shared-secret authentication: `token_endpoint_auth_method`
 *   is `none` (the default here) or `private_key_jwt` with a `jwks_uri`, and no HMAC or symmetric
 *   encryption algorithm;
 * - it passes the registration policy as a self-service registration would (registration/policy.ts:
 *   redirect URIs, scopes, web URIs), and names no `owner` or `sector_identifier_uri`;
 * - its redirect URIs (and post-logout ones) are its own: on the document's origin, on loopback (a
 *   native app, RFC 8252 §7.3), or a private-use scheme named after its host (RFC 8252 §7.1). The
 *   consent page names the document's domain as the app's, so the code must go to that domain
 *   (the draft's §"Relationship between redirect_uris and client_id" lets the server ask this).
 *   Otherwise whoever can put a file on a shared host gets people's consent "for an app from" it
 *   and their codes and tokens elsewhere.
 *
 * Its grant types are kept to the code flow (authorization_code, refresh_token): such a client
 * acts for people, never as itself. The document, or the reason it was refused, is cached in the
 * store (store/client-metadata-documents.ts) for the time HTTP caching allows (s-maxage, max-age,
 * or Expires), bounded by clientMetadataDocuments.cacheMin/cacheMax: every instance shares it, and
 * a changed document is read again only when the cached one expires. A refusal is remembered for
 * cacheMin seconds, so a failing document costs its server one request per cacheMin, whatever the
 * traffic naming it.
 *
 * A document read again is a client changed without a write: it ends what the same change written to
 * a stored client ends (the endings handed in: client-endings.ts clientEndings). Its metadata is compared
 * with the last accepted at the URL (kept by the store until the document is gone), and a change
 * (made public, a key location replaced, scopes narrowed) runs clientReplaced's endings; a definite
 * 404 or 410, or a permanent redirect (301, 308: the client_id names no document any more), runs a
 * removed client's. Anything else that fails (a timeout, a 5xx, a network error, a refused or
 * malformed document) refuses new requests for cacheMin, as before, but ends nothing: a blip at the
 * client's host must not sign everyone out. The compare-and-set in the store has one instance of
 * those reading a change at once run its endings.
 */
import { errors } from 'oidc-provider';
import type { Apis } from '../apis/apis.js';
import type { Config } from '../config.js';
import { shownOf } from '../http/errors.js';
import { plainHost } from '../http/image-origins.js';
import { OutboundError, OutboundRedirectError, type OutboundFetch } from '../http/outbound.js';
import type { ClientMetadataDocumentCache } from '../store/client-metadata-documents.js';
import { enforcePolicy, type RegistrationPolicy } from './policy.js';
import { isLoopback } from '../loopback.js';

/**
 * Why a client_id URL does not name a usable client. The message, with the document's values, is the
 * JSON error's description and the log's (where the document's developer reads it); `shown` is what
 * the error page says: the member and its rule, no value of the document's. Anyone can write a
 * document and link people to `/auth` with its URL, so a value quoted on the page is an outsider's
 * words on Latchkey's origin (`client_name: "Latchkey Your account is locked, call …"`), past the
 * rules that keep such a name off the sign-in page (content injection, CWE-74: eighth web pass).
 */
export class DocumentRefused extends Error {
  override name = 'DocumentRefused';
  readonly shown: string;

  constructor(message: string, shown = message) {
    super(message);
    this.shown = shown;
  }
}

/** What the page says of a refusal cached by a release that kept no page words (`shown`). */
export const REFUSED_SHOWN = 'the client metadata document was refused; its developer finds why in the error a pushed authorization request with its client_id gets, and in the server log';

/** Registered client metadata members (RFC 7591, OpenID Connect Registration, RP-Initiated and Back-Channel Logout): a name of these the page repeats. */
const MEMBERS = new Set([
  'application_type', 'backchannel_logout_session_required', 'backchannel_logout_uri', 'client_id', 'client_name', 'client_secret', 'client_uri', 'contacts',
  'default_acr_values', 'default_max_age', 'grant_types', 'initiate_login_uri', 'jwks', 'jwks_uri', 'logo_uri', 'owner', 'policy_uri',
  'post_logout_redirect_uris', 'redirect_uris', 'require_auth_time', 'require_pushed_authorization_requests', 'response_modes', 'response_types',
  'scope', 'sector_identifier_uri', 'subject_type', 'token_endpoint_auth_method', 'tos_uri', 'dpop_bound_access_tokens',
]);
/** Members naming an algorithm (RFC 7591, OpenID Connect Registration, JARM, RFC 9101, RFC 9701): a name of these the page repeats. */
const ALGORITHM_MEMBERS = new Set(
  ['id_token', 'userinfo', 'authorization', 'introspection'].flatMap((what) => [`${what}_signed_response_alg`, `${what}_encrypted_response_alg`, `${what}_encrypted_response_enc`])
    .concat(['request_object_signing_alg', 'request_object_encryption_alg', 'request_object_encryption_enc', 'token_endpoint_auth_signing_alg', 'backchannel_authentication_request_signing_alg']),
);

/**
 * What the error page says of a refusal by the engine's own checks of client metadata, whose
 * description may quote the document's values (a redirect URI's scheme or host): the member it
 * names first, when that is a registered member's name, and no value.
 */
export function shownRefusal(description: string): string {
  const member = /^[a-z_]+/.exec(description)?.[0] ?? '';
  if (MEMBERS.has(member) || ALGORITHM_MEMBERS.has(member)) return `${member}: a value this server does not accept there (the JSON error and the server log say which)`;
  return "a member breaks this server's rules for client metadata (the JSON error and the server log say which)";
}

/** The document is gone for good (404, 410, a permanent redirect): the client it named is removed. */
class DocumentGone extends DocumentRefused {}

/** What ends when a document changes or is gone (client-endings.ts clientEndings, handed in: no import of the provider here). */
export interface DocumentEndings {
  clientReplaced(clientId: string, previous: Record<string, unknown>, next: Record<string, unknown>): Promise<unknown>;
  clientRemoved(clientId: string): Promise<unknown>;
}

const AUTH_METHODS = new Set(['none', 'private_key_jwt']);
const GRANT_TYPES = new Set(['authorization_code', 'refresh_token']);
/** Answers that say a document is gone for good (RFC 9110 §15.5.5, §15.5.11; a permanent redirect: no document at the client_id). */
const GONE = new Set([301, 308, 404, 410]);

/** A document that could not be fetched: gone for good when its answer says so (GONE), else refused for now. */
function unfetched(reason: string, status: number | undefined): DocumentRefused {
  const Refusal = status !== undefined && GONE.has(status) ? DocumentGone : DocumentRefused;
  return new Refusal(`the client metadata document could not be fetched: ${reason}`);
}
/** JWA values that need a shared secret: HMAC signatures, direct and AES key wrap encryption. */
const SYMMETRIC_ALG = /^(HS\d+|dir|A\d+(GCM)?KW)$/;

/**
 * The URL a client_id names when it is a metadata document's: https (or, when private networks
 * are allowed, http to loopback: tests and local development), with a path, in canonical form
 * (so no dot segments, default port, credentials or fragment hide in it). Undefined otherwise.
 */
export function documentUrl(clientId: string, allowLoopbackHttp: boolean): URL | undefined {
  if (clientId.length > 2048 || !/^https?:\/\//i.test(clientId)) return undefined;
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return undefined;
  }
  // A host that is no DNS name (plainHost) is refused too: the consent page shows the host as the
  // one thing about such a client that is not self-asserted (interactions/client-branding.ts).
  if (url.href !== clientId || url.username || url.password || url.hash || url.pathname === '/' || !plainHost(url)) return undefined;
  if (url.protocol === 'https:') return url;
  return allowLoopbackHttp && url.protocol === 'http:' && isLoopback(url.hostname) ? url : undefined;
}

/** Seconds a response may be cached (RFC 9111 §4.2.1, as a shared cache), within [min, max]. */
export function cacheLifetime(headers: Headers, min: number, max: number): number {
  const control = headers.get('cache-control') ?? '';
  const directive = (name: string) => new RegExp(`(?:^|,)\\s*${name}\\s*=\\s*"?(\\d+)"?`, 'i').exec(control)?.[1];
  let seconds: number | undefined;
  if (/(?:^|,)\s*(no-store|no-cache|private)\b/i.test(control)) seconds = 0;
  else {
    const maxAge = directive('s-maxage') ?? directive('max-age');
    if (maxAge !== undefined) seconds = Number(maxAge) - (Number(headers.get('age')) || 0);
    else if (headers.has('expires')) {
      const expires = Date.parse(headers.get('expires')!);
      const date = Date.parse(headers.get('date') ?? '') || Date.now();
      seconds = Number.isNaN(expires) ? 0 : Math.floor((expires - date) / 1000);
    }
  }
  return Math.max(min, Math.min(max, seconds ?? min));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Whether a document fetched from `document` may send people to `uri`: its own origin, loopback,
 * or a private-use scheme whose reversed name is its host or under it (com.example.app for
 * example.com). (The registration policy has refused what does not parse.)
 */
function ownRedirect(document: URL, uri: string): boolean {
  let target: URL;
  try {
    target = new URL(uri);
  } catch {
    return true;
  }
  if (target.protocol === 'https:' || target.protocol === 'http:') return target.origin === document.origin || isLoopback(target.hostname);
  const named = target.protocol.slice(0, -1).split('.').reverse().join('.');
  return named.includes('.') && (named === document.hostname || named.endsWith(`.${document.hostname}`));
}

/** The metadata Latchkey uses for the document at `url`, or DocumentRefused saying why not. */
export function checkDocument(url: string, document: unknown, policy: RegistrationPolicy, apiScopes: readonly string[] = []): Record<string, unknown> {
  if (!isObject(document)) throw new DocumentRefused('the client metadata document is not a JSON object');
  if (document.client_id !== url) throw new DocumentRefused('the client_id in the client metadata document is not the URL it was fetched from');
  if ('client_secret' in document || 'client_secret_expires_at' in document) {
    throw new DocumentRefused('a client metadata document must not hold a client secret');
  }
  const method = document.token_endpoint_auth_method ?? 'none';
  if (typeof method !== 'string' || !AUTH_METHODS.has(method)) {
    throw new DocumentRefused(
      // Quoted only when it is text: String() of some JSON throws (a 500 before the twelfth fresh-eyes pass at the authorization model).
      `token_endpoint_auth_method ${typeof method === 'string' ? `"${method}"` : `(a JSON ${method === null ? 'null' : Array.isArray(method) ? 'array' : typeof method})`}: a client metadata document client authenticates with "none" or "private_key_jwt", never a shared secret`,
      'token_endpoint_auth_method: a client metadata document client authenticates with "none" or "private_key_jwt", never a shared secret',
    );
  }
  if (method === 'private_key_jwt' && typeof document.jwks_uri !== 'string') {
    throw new DocumentRefused('private_key_jwt needs the client\'s keys at jwks_uri');
  }
  for (const [name, value] of Object.entries(document)) {
    if (/_(alg|enc)$/.test(name) && typeof value === 'string' && SYMMETRIC_ALG.test(value)) {
      // The member's name is the document's too: repeated on the page only when it is a registered one.
      const member = ALGORITHM_MEMBERS.has(name) ? name : 'a member named …_alg or …_enc';
      throw new DocumentRefused(`${name} "${value}" needs a shared secret, which a client metadata document client does not have`, `${member} names an algorithm that needs a shared secret (HMAC, dir or AES key wrap), which a client metadata document client does not have`);
    }
  }
  for (const name of ['owner', 'sector_identifier_uri']) {
    if (name in document) throw new DocumentRefused(`${name} is not accepted in a client metadata document`);
  }
  const metadata: Record<string, unknown> = { ...document, token_endpoint_auth_method: method };
  if (document.grant_types !== undefined) {
    if (!Array.isArray(document.grant_types)) throw new DocumentRefused('grant_types must be an array');
    metadata.grant_types = document.grant_types.filter((grant) => GRANT_TYPES.has(grant as string));
    if (!(metadata.grant_types as unknown[]).includes('authorization_code')) {
      throw new DocumentRefused('grant_types: a client metadata document client uses authorization_code');
    }
  }
  try {
    enforcePolicy(policy, metadata, true, apiScopes);
  } catch (error) {
    if (error instanceof errors.InvalidClientMetadata) {
      const description = error.error_description ?? error.message;
      // The policy marks a description that quotes a value with what a page says instead (policy.ts quoting).
      throw new DocumentRefused(description, shownOf(error) ?? description);
    }
    throw error;
  }
  const origin = new URL(url);
  for (const name of ['redirect_uris', 'post_logout_redirect_uris']) {
    const uris = metadata[name];
    const foreign = Array.isArray(uris) ? uris.find((uri) => typeof uri === 'string' && !ownRedirect(origin, uri)) : undefined;
    if (foreign !== undefined) {
      throw new DocumentRefused(
        `${name}: ${String(foreign)}: a client metadata document's redirect URIs are on its own origin (${origin.origin}), on loopback, or a private-use scheme named after its host`,
        `${name}: one is not on the document's own origin; a client metadata document's redirect URIs are on its own origin, on loopback, or a private-use scheme named after its host`,
      );
    }
  }
  return metadata;
}

/**
 * Marks an accepted record (store/client-metadata-documents.ts) takes while the endings of its
 * change run (metadata is JSON, so neither begins one): the client's removal under way, and its
 * replacement under way, each followed by the metadata accepted before. Left by a store that
 * failed midway, the next read of the document (or a start with the feature off) ends it again.
 */
const REMOVING = 'removing ';
const REPLACING = 'replacing ';

/**
 * Removes the client of the accepted `record` at `url`: the record marked REMOVING (by the caller
 * whose compare-and-set wins, so that one of those reading the change at once runs it), the client
 * ended, then the record forgotten; a store failing midway leaves the mark, and whoever reads the
 * record next ends it again (each ending is idempotent). Forgotten first, before the second blips
 * pass, a failure's put-back failed with the store and the ending was lost. False: another won.
 */
async function removeAccepted(cache: ClientMetadataDocumentCache, endings: Pick<DocumentEndings, 'clientRemoved'> | undefined, url: string, record: string): Promise<boolean> {
  const mark = record.startsWith(REMOVING) ? record : `${REMOVING}${record.startsWith(REPLACING) ? record.slice(REPLACING.length) : record}`;
  if (record !== mark && !(await cache.replaceAccepted(url, record, mark))) return false;
  await endings?.clientRemoved(url);
  return cache.forgetAccepted(url, mark);
}

/**
 * The feature switched off (clientMetadataDocuments.enabled false at a start): every client a
 * document named is removed, as a document gone is, once whichever instances start so
 * (removeAccepted: a start whose store goes away midway leaves it for the next start). Its clients
 * are unknown while it is off, but what they were issued would otherwise live on at APIs that
 * verify JWTs locally, and, the feature switched on again, be taken up again (refresh tokens,
 * consents, tokens active at introspection). Its URLs, as ended.
 */
export async function documentsSwitchedOff(cache: ClientMetadataDocumentCache, endings: Pick<DocumentEndings, 'clientRemoved'>): Promise<string[]> {
  const ended: string[] = [];
  for (const url of await cache.acceptedUrls()) {
    const record = await cache.accepted(url);
    if (record !== undefined && (await removeAccepted(cache, endings, url, record))) ended.push(url);
    if (record === undefined || ended.includes(url)) await cache.unindex(url);
  }
  return ended;
}

/** Fetches, checks and caches documents; one fetch per URL at a time in this process. */
export class ClientMetadataDocuments {
  readonly #pending = new Map<string, Promise<Record<string, unknown>>>();

  constructor(
    private readonly settings: Config['clientMetadataDocuments'],
    private readonly outbound: OutboundFetch,
    private readonly cache: ClientMetadataDocumentCache,
    private readonly policy: RegistrationPolicy,
    /** Runtime APIs, whose scopes a document may name too (registration/policy.ts). */
    private readonly apis?: Pick<Apis, 'delegableScopes'>,
    /** What a changed or gone document ends; nothing when not given (unit tests). */
    private readonly endings?: DocumentEndings,
  ) {}

  /** The checked metadata for a document URL (from the cache when fresh), or DocumentRefused. */
  async metadata(url: string): Promise<Record<string, unknown>> {
    const cached = await this.cache.get(url, this.settings.cacheMax);
    if (cached) {
      if ('refused' in cached) throw new DocumentRefused(cached.refused, cached.shown ?? REFUSED_SHOWN);
      return cached.metadata;
    }
    let pending = this.#pending.get(url);
    if (!pending) {
      pending = this.#fetchAndCache(url).finally(() => this.#pending.delete(url));
      this.#pending.set(url, pending);
    }
    return pending;
  }

  async #fetchAndCache(url: string): Promise<Record<string, unknown>> {
    const { cacheMin, cacheMax } = this.settings;
    let metadata: Record<string, unknown>;
    let ttl: number;
    try {
      const response = await this.#fetch(url);
      ttl = cacheLifetime(response.headers, cacheMin, cacheMax);
      metadata = checkDocument(url, response.document, this.policy, (await this.apis?.delegableScopes()) ?? []);
    } catch (error) {
      if (!(error instanceof DocumentRefused)) throw error;
      if (error instanceof DocumentGone) await this.#gone(url);
      await this.cache.put(url, { refused: error.message, shown: error.shown }, cacheMin);
      throw error;
    }
    await this.#accepted(url, metadata);
    await this.cache.put(url, { metadata }, ttl);
    return metadata;
  }

  /**
   * A document accepted: compared with the one accepted before, its changes end what a write's
   * would, once whichever instances read it (the record's compare-and-set). The record is marked
   * first (REPLACING: the endings under way, with what was accepted before), then the endings run,
   * then the new metadata is recorded: a store that goes away midway leaves the mark, and the next
   * read runs them again (each is idempotent). Before the second blips pass the record was written
   * first and put back on a failure, which failed with the store: the next read found nothing
   * changed. A removal left under way (REMOVING) is finished first: the client is made again.
   */
  async #accepted(url: string, metadata: Record<string, unknown>): Promise<void> {
    let record = await this.cache.accepted(url);
    const next = JSON.stringify(metadata);
    if (record?.startsWith(REMOVING)) {
      await removeAccepted(this.cache, this.endings, url, record);
      record = undefined;
    }
    const previous = record?.startsWith(REPLACING) ? record.slice(REPLACING.length) : record;
    // Written also when unchanged: that keeps it for longer.
    if (previous === undefined || previous === next) return void (await this.cache.replaceAccepted(url, record, next));
    const mark = `${REPLACING}${previous}`;
    if (record !== mark && !(await this.cache.replaceAccepted(url, record, mark))) return;
    await this.endings?.clientReplaced(url, JSON.parse(previous) as Record<string, unknown>, metadata);
    await this.cache.replaceAccepted(url, mark, next);
  }

  /** A document gone for good: the client it named is removed, once whichever instances saw it (removeAccepted). */
  async #gone(url: string): Promise<void> {
    const record = await this.cache.accepted(url);
    if (record !== undefined) await removeAccepted(this.cache, this.endings, url, record);
  }

  async #fetch(url: string): Promise<{ headers: Headers; document: unknown }> {
    let response: Response;
    try {
      response = await this.outbound(url, {
        headers: { accept: 'application/json' },
        maxBytes: this.settings.maxBytes,
        timeoutMs: this.settings.timeoutMs,
      });
    } catch (error) {
      if (error instanceof OutboundError) throw unfetched(error.message, error instanceof OutboundRedirectError ? error.status : undefined);
      throw error;
    }
    if (response.status !== 200) throw unfetched(`HTTP ${response.status}`, response.status);
    try {
      return { headers: response.headers, document: JSON.parse(await response.text()) };
    } catch {
      throw new DocumentRefused('the client metadata document is not JSON');
    }
  }
}
