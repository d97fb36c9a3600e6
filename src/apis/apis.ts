/**
 * APIs (resource servers, RFC 8707) and client grants: which API a client may get tokens for with
 * client_credentials, with which scopes, which APIs a client serves as (and so may introspect
 * tokens for), and which API is a client's default.
 *
 * An API comes from one of three places: built in (the admin API and the revocation feed, which are
 * privileged), the configuration (`resourceServers`), or the store (`latchkey apis add`, the admin
 * API). Config APIs and their `grants` are read-only here; what an operator adds at runtime lives in
 * the store, so the CLI and every instance see the same thing. Checks (the token and
 * introspection endpoints', the admin API's) read them through the store's cache where it keeps
 * one (Redis: tracked-cache.ts), which Redis invalidates at every write, whoever makes it: a
 * revoked grant stops working with the next request. Read-modify-writes read the store itself.
 *
 * Layout (all durable): api:<identifier> → JSON, apis (set of identifiers),
 * api-grants:<client_id> → JSON { <identifier>: Grant }, api-grantees:<identifier> (set of client_ids);
 * configured-apis → JSON { <identifier>: RecordedApi }, the configuration's as the last start saw them.
 */
import { commaScopeProblem, RESERVED_SCOPES, reservedScopeProblem, type ResourceServerConfig } from '../config.js';
import type { CachedReads, Kv } from '../store/kv.js';
import { API_GRANTS_PREFIX, API_PREFIX, apiGranteesKey, apiGrantsKey, apiKey, APIS_KEY, CONFIGURED_APIS_KEY } from '../store/keys.js';
import { isDeepStrictEqual } from 'node:util';
import { epochSeconds, untilSecond } from '../clock.js';
import { schemelessHost } from '../loopback.js';
import type { KeepsOwed } from '../store/due-endings.js';

/**
 * The audience a client's own token has when it was got without naming an API (no `aud`): its
 * client_grant entry ends such tokens at introspection (endOwnTokens below; RevocationList.isRevoked);
 * the feed leaves it out, since no API takes such a token.
 */
export const NO_AUDIENCE = '';

export interface ApiDefinition {
  readonly identifier: string;
  readonly scopes: readonly string[];
  readonly format: 'jwt' | 'opaque';
  readonly accessTokenTTL?: number;
  /** Built-in APIs that only operator-granted clients reach, never a person's token. */
  readonly privileged?: boolean;
  /**
   * Epoch seconds a stored API was added. An API removed and added again under the same identifier
   * is another API: what a person granted the first (remembered consent, refresh tokens) is not
   * for it (see predates).
   */
  readonly addedAt?: number;
}

/**
 * Whether something given at `givenAt` (epoch seconds: a consent, a grant, the first refresh token
 * of a chain) predates `api`, and so was given to an API removed since under the same identifier.
 */
export function predates(api: Pick<ApiDefinition, 'addedAt'>, givenAt: number | undefined): boolean {
  return api.addedAt !== undefined && (givenAt ?? 0) < api.addedAt;
}

export type ApiSource = 'builtin' | 'config' | 'store';

/** What an operator granted one client at one API. */
export interface ClientGrant {
  /** Scopes the client gets with client_credentials. */
  readonly scopes: readonly string[];
  /** The client serves as this API: it may introspect tokens meant for it. */
  readonly introspect?: boolean;
  /** client_credentials without `resource` gets a token for this API. */
  readonly default?: boolean;
}

export type ClientGrants = Readonly<Record<string, ClientGrant>>;

/** An API's removal, or a change of a client's grants that takes something away (`from`, `to`: its grants before and after), kept owed while it runs. */
export type OwedApiEnding = { readonly api: string } | { readonly clientGrants: string; readonly from: ClientGrants; readonly to: ClientGrants };

/** Whether `value` reads as a client's grants (an owed ending's, read back). */
export function isClientGrants(value: unknown): value is ClientGrants {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((grant: unknown) => typeof grant === 'object' && grant !== null && Array.isArray((grant as ClientGrant).scopes) && (grant as ClientGrant).scopes.every((scope) => typeof scope === 'string'))
  );
}

/**
 * Whether going from `previous` to `next` takes a grant or a scope away, or may take the leave to
 * call an API: serving as one without scopes is none (callsWith), so serving newly may (see #endTaken).
 */
function takesAway(previous: ClientGrants, next: ClientGrants): boolean {
  return Object.entries(previous).some(([identifier, held]) => {
    const kept = next[identifier];
    return !kept || held.scopes.some((scope) => !kept.scopes.includes(scope)) || (kept.introspect === true && held.introspect !== true);
  });
}

/**
 * Whether `grant` lets its client call an API offering `offered` (resource-servers.ts
 * resourceServerInfo): some of those scopes held, or, at an API without scopes, more than serving as it.
 */
function callsWith(grant: ClientGrant, offered: readonly string[]): boolean {
  return offered.length ? grant.scopes.some((scope) => offered.includes(scope)) : grant.introspect !== true;
}

/** A refused change, with the status and error code an API answers with. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly error: 'invalid_request' | 'not_found' | 'conflict',
    readonly status: 400 | 404 | 409,
  ) {
    super(message);
  }
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * What must end when an operator takes access away (the revocation list, wired by whoever builds
 * Apis: revocation/ reads APIs, so it is not imported here). Called after the change is stored, so
 * no token issued after the entry can carry what was taken away.
 */
export interface GrantEndings {
  /**
   * A client's grant at an API lost `scopes` (undefined: the whole grant was revoked, or it was left
   * with none of its scopes): the tokens it got for itself there up to now that carry one (or any
   * token, for the whole grant) end.
   */
  clientGrantNarrowed(clientId: string, identifier: string, scopes: readonly string[] | undefined): Promise<unknown>;
  /** An API was removed: every token for it up to now ends. */
  apiRemoved(identifier: string): Promise<unknown>;
  /** An API that stays no longer offers `scopes`: every token for it up to now carrying one ends. */
  apiScopesTaken(identifier: string, scopes: readonly string[]): Promise<unknown>;
  /** When an API of the identifier was last removed, while that can still matter (its tokens may live). */
  apiRemovedAt?(identifier: string): Promise<number | undefined>;
}

export interface ApisOptions {
  readonly builtin: readonly ApiDefinition[];
  readonly configured: readonly (ResourceServerConfig & { grants?: readonly ({ client_id: string } & ClientGrant)[] })[];
  /** The longest accessTokenTTL a runtime API may have (it bounds how long revocations are kept). */
  readonly maxAccessTokenTTL: number;
  readonly endings?: GrantEndings;
  /** Keeps a removal's ending owed until done (accounts/owed-endings.ts), for the sweep to finish one cut off (finishRemoval). */
  readonly owed?: KeepsOwed;
}

/**
 * The value last parsed from each key's JSON, given again while that JSON is unchanged. Grants and
 * APIs are read on every token request and introspection (from the store's cache, which keeps the
 * text): parsing them again each time was most of what such a read cost. Values are frozen, as
 * every caller shares them. Bounded: past `maxEntries`, the oldest goes first.
 */
class ParsedByText<T> {
  readonly #entries = new Map<string, { readonly text: string | undefined; readonly value: T }>();

  constructor(private readonly maxEntries: number) {}

  get(key: string, text: string | undefined, parse: (text: string | undefined) => T): T {
    const kept = this.#entries.get(key);
    if (kept && kept.text === text) return kept.value;
    const value = deepFreeze(parse(text));
    if (!kept && this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { text, value });
    return value;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/** A configured API as a start recorded it (Apis.configurationChanged): its scopes, its operator grants by client, when it was added. */
interface RecordedApi {
  readonly scopes: readonly string[];
  readonly grants: Readonly<Record<string, ClientGrant>>;
  readonly addedAt?: number;
}

/** What changed in the configuration's APIs since the start before (Apis.configurationChanged). */
export interface ConfiguredApiChanges {
  /** APIs in the configuration no more. */
  readonly removed: readonly string[];
  /** APIs new to it, each another API than any of its identifier before (what was granted there does not carry over). */
  readonly added: readonly string[];
  /** APIs that stay but no longer offer a scope they offered (taken out of the configuration, or the API that takes over the identifier lacks it). */
  readonly scopesTaken: readonly string[];
  /** Clients whose operator grants in the configuration lost scopes, or went, or no longer let them call an API whose scopes changed. */
  readonly narrowed: readonly string[];
  /** False when another instance recorded another configuration meanwhile (nothing written). */
  readonly recorded: boolean;
}

/** As many clients' grants and stored APIs as are kept parsed (ParsedByText). */
const PARSED_ENTRIES = 10_000;

export class Apis {
  readonly #static: Map<string, { api: ApiDefinition; source: ApiSource }>;
  /** Grants from configuration, by client then API. */
  readonly #staticGrants = new Map<string, Record<string, ClientGrant>>();
  /** Reads of APIs and grants, from the store's cache where it keeps one. */
  readonly #reads: CachedReads;
  readonly #parsedApis = new ParsedByText<ApiDefinition | undefined>(PARSED_ENTRIES);
  readonly #parsedGrants = new ParsedByText<ClientGrants>(PARSED_ENTRIES);

  constructor(
    private readonly kv: Kv,
    private readonly options: ApisOptions,
  ) {
    this.#reads = kv.cachedReads?.([API_PREFIX, APIS_KEY, API_GRANTS_PREFIX]) ?? kv;
    // A privileged API's scope that another API could take would mean two things (RESERVED_SCOPES).
    const unreserved = options.builtin.filter((api) => api.privileged).flatMap((api) => api.scopes.filter((scope) => !RESERVED_SCOPES.has(scope)));
    if (unreserved.length) throw new Error(`privileged scopes ${unreserved.join(' ')} are not in RESERVED_SCOPES (src/config.ts)`);
    this.#static = new Map<string, { api: ApiDefinition; source: ApiSource }>([
      ...options.configured.map(({ grants: _grants, ...api }) => [api.identifier, { api, source: 'config' as const }] as const),
      ...options.builtin.map((api) => [api.identifier, { api, source: 'builtin' as const }] as const),
    ]);
    for (const { identifier, grants = [] } of options.configured) {
      for (const { client_id, ...grant } of grants) {
        this.#staticGrants.set(client_id, { ...this.#staticGrants.get(client_id), [identifier]: grant });
      }
    }
  }

  /** An API by identifier, wherever it is defined. */
  async find(identifier: string): Promise<ApiDefinition | undefined> {
    const fixed = this.#static.get(identifier);
    if (fixed) return fixed.api;
    const json = await this.#reads.get(apiKey(identifier));
    return this.#parsedApis.get(identifier, json, (text) => (text ? this.#withinMaximum(withoutReserved(JSON.parse(text) as ApiDefinition)) : undefined));
  }

  /**
   * A stored API's accessTokenTTL held to ttl.apiAccessTokenMax as it is now: one added while the
   * maximum was higher (lowered since) issues no token longer-lived than revocation entries are
   * kept (revocation/list.ts, lifetimes.ts), which that maximum bounds.
   */
  #withinMaximum(api: ApiDefinition): ApiDefinition {
    const max = this.options.maxAccessTokenTTL;
    return api.accessTokenTTL !== undefined && api.accessTokenTTL > max ? { ...api, accessTokenTTL: max } : api;
  }

  /**
   * Stored APIs that define a reserved scope (added before they were refused, or by an older
   * CLI): each is read without it (find), so the scope is neither asked at consent nor granted nor
   * carried by a new token as the API's (a grant that holds it gives the rest); serve warns of them
   * at start.
   */
  async reservedScopesIgnored(): Promise<{ identifier: string; scopes: string[] }[]> {
    const stored = await Promise.all((await this.kv.members(APIS_KEY)).map(async (identifier) => ({ identifier, json: await this.kv.get(apiKey(identifier)) })));
    return stored.flatMap(({ identifier, json }) => {
      const scopes = json ? (JSON.parse(json) as ApiDefinition).scopes.filter((scope) => RESERVED_SCOPES.has(scope)) : [];
      return scopes.length && !this.#static.has(identifier) ? [{ identifier, scopes }] : [];
    });
  }

  /** The scopes a client may register in its `scope` metadata for APIs that are not privileged (those only operators grant). */
  async delegableScopes(): Promise<string[]> {
    return [...new Set((await this.list()).filter((api) => !api.privileged).flatMap((api) => api.scopes))];
  }

  async list(): Promise<(ApiDefinition & { source: ApiSource })[]> {
    const stored = await Promise.all((await this.#reads.members(APIS_KEY)).map((identifier) => this.find(identifier)));
    return [
      ...[...this.#static.values()].map(({ api, source }) => ({ ...api, source })),
      ...stored.filter((api): api is ApiDefinition => !!api && !this.#static.has(api.identifier)).map((api) => ({ ...api, source: 'store' as const })),
    ].sort((a, b) => a.identifier.localeCompare(b.identifier));
  }

  async add(input: { identifier: string; scopes?: readonly string[]; format?: 'jwt' | 'opaque'; accessTokenTTL?: number }): Promise<ApiDefinition> {
    let api: ApiDefinition = {
      identifier: checkIdentifier(input.identifier),
      scopes: [...new Set(checkScopes(input.scopes ?? []))],
      format: input.format ?? 'jwt',
      ...(input.accessTokenTTL !== undefined ? { accessTokenTTL: input.accessTokenTTL } : {}),
      addedAt: epochSeconds(),
    };
    if (api.format !== 'jwt' && api.format !== 'opaque') throw new ApiError('format is jwt or opaque', 'invalid_request', 400);
    const ttl = api.accessTokenTTL;
    if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > this.options.maxAccessTokenTTL)) {
      throw new ApiError(`accessTokenTTL is a number of seconds from 1 to ${this.options.maxAccessTokenTTL} (ttl.apiAccessTokenMax)`, 'invalid_request', 400);
    }
    if (await this.#configured(api.identifier)) throw new ApiError(`the API ${api.identifier} is defined in the configuration`, 'conflict', 409);
    if (await this.kv.get(apiKey(api.identifier))) throw new ApiError(`an API ${api.identifier} exists already`, 'conflict', 409);
    api = { ...api, addedAt: await this.#afterPredecessor(api.identifier) };
    // Listed before it is written (list skips an identifier with no API): listed after, an addition cut
    // off at the listing (503) left an API that worked, that no list showed, and that was "exists
    // already" when added again (twelfth fresh-eyes passes). And again after: a removal of the
    // identifier finishing meanwhile (#finishRemoval) may have taken it out of the list.
    await this.kv.addToSet(APIS_KEY, api.identifier);
    if (!(await this.kv.set(apiKey(api.identifier), JSON.stringify(api), { onlyIfAbsent: true }))) {
      throw new ApiError(`an API ${api.identifier} exists already`, 'conflict', 409);
    }
    await this.kv.addToSet(APIS_KEY, api.identifier);
    return api;
  }

  /**
   * A new API's addedAt: now, or, while an API removed with the identifier can still matter (its api
   * entry on the revocation list), a second after both that removal and every token for it since (a
   * request in flight at the removal: ended here again), waited for, so that the removed API's
   * entry does not refuse the new one's tokens, nor does anything of the removed one count as the new one's.
   */
  async #afterPredecessor(identifier: string): Promise<number> {
    const endings = this.options.endings;
    const removedAt = await endings?.apiRemovedAt?.(identifier);
    if (removedAt === undefined) return epochSeconds();
    await endings!.apiRemoved(identifier);
    const addedAt = Math.max(epochSeconds(), removedAt) + 1;
    await untilSecond(addedAt);
    return addedAt;
  }

  /**
   * A configured API (`resourceServers`) or operator grant changed by editing the configuration and
   * restarting ends what the same change made at runtime ends (remove, revoke), against the APIs the
   * start before recorded (CONFIGURED_APIS_KEY), at the first start with the new configuration: an
   * API gone ends every token for it (an api entry, as `apis remove`), a grant gone or narrowed the
   * tokens its client got for itself there (client_grant entries, as `apis revoke`), a scope taken out
   * of an API that stays every token for it carrying the scope (scoped api entries). And a configured
   * API new since then is another API, as a stored one added again is: it carries when it was added
   * (the stored API's of the identifier, if the operator moved one into the configuration), so what a
   * person granted under the identifier before (a refresh token, a remembered consent) gives nothing
   * there, and a configured API put back is not the one removed. None recorded (the first start of a
   * release that records them): nothing changed, and they are recorded as they are. Run before the
   * instance serves; each ending is a cutoff of its own second and idempotent, so instances starting
   * at once may each run it; one that finds other APIs recorded meanwhile compares again with them.
   */
  async configurationChanged(): Promise<ConfiguredApiChanges> {
    for (let attempt = 0; ; attempt++) {
      const text = await this.kv.get(CONFIGURED_APIS_KEY);
      const recorded = text === undefined ? undefined : (JSON.parse(text) as Record<string, RecordedApi>);
      const changes = await this.#endChanges(recorded);
      const next = JSON.stringify(changes.now);
      const recordedNow = text === next || (await this.kv.compareAndSet(CONFIGURED_APIS_KEY, text, next));
      // Another instance recorded first: compared again, the same configuration (started at once)
      // gives its addedAt and ends nothing more; another one is said (recorded: false).
      if (recordedNow || attempt) {
        for (const [identifier, { addedAt }] of Object.entries(changes.now)) this.#addedAt(identifier, addedAt);
        return { removed: changes.removed, added: changes.added, scopesTaken: changes.scopesTaken, narrowed: changes.narrowed, recorded: recordedNow };
      }
    }
  }

  /**
   * After the store lost everything (keyring/service.ts afterLoss): records the configured APIs and
   * their grants as this process holds them, only while no record is there, so that a start with
   * one removed, narrowed or changed since still ends what was issued for it after the loss
   * (configurationChanged). Ends nothing. True when written.
   */
  async recordConfigurationAgain(): Promise<boolean> {
    if ((await this.kv.get(CONFIGURED_APIS_KEY)) !== undefined) return false;
    const { now } = await this.#endChanges(undefined);
    for (const [identifier, recorded] of Object.entries(now)) {
      const addedAt = this.#static.get(identifier)?.api.addedAt;
      if (addedAt !== undefined) now[identifier] = { ...recorded, addedAt };
    }
    return this.kv.compareAndSet(CONFIGURED_APIS_KEY, undefined, JSON.stringify(now));
  }

  /** Ends what the configuration's change since `recorded` takes away; what to record now. */
  async #endChanges(recorded: Record<string, RecordedApi> | undefined) {
    const configured = this.options.configured.map(({ grants: _grants, ...api }) => api.identifier);
    const removed = Object.keys(recorded ?? {}).filter((identifier) => !configured.includes(identifier));
    // A scope an API that stays no longer offers: its tokens carrying it end, as introspection
    // refuses them already (resource-servers.ts heldByApiNow), at every API following the feed too.
    const scopesTaken: string[] = [];
    // Clients whose grant at an API no longer lets them call it since its scopes changed (#endEmptied).
    const emptied: string[] = [];
    const scopesChanged = async (identifier: string, before: readonly string[], after: readonly string[]) => {
      if (before.length === after.length && before.every((scope) => after.includes(scope))) return;
      emptied.push(...(await this.#endEmptied(identifier, before, after)));
      const taken = before.filter((scope) => !after.includes(scope));
      if (!taken.length) return;
      scopesTaken.push(identifier);
      await this.options.endings?.apiScopesTaken(identifier, taken);
    };
    for (const identifier of removed) {
      // A stored API of the identifier (the configured one was put over it) goes on as it is, with
      // its own scopes: those only the configured one offered are taken.
      const stored = await this.kv.get(apiKey(identifier));
      if (stored) {
        await scopesChanged(identifier, recorded![identifier]!.scopes, withoutReserved(JSON.parse(stored) as ApiDefinition).scopes);
        continue;
      }
      await this.options.endings?.apiRemoved(identifier);
      // As `remove`: the operators' grants made at runtime go with it, so an API put back starts with none.
      await this.#forgetGrantsAt(identifier);
    }
    const now: Record<string, RecordedApi> = {};
    const added: string[] = [];
    for (const { identifier, scopes } of this.options.configured) {
      const grants: Record<string, ClientGrant> = {};
      for (const [clientId, held] of this.#staticGrants) if (held[identifier]) grants[clientId] = held[identifier];
      const before = recorded?.[identifier];
      let addedAt = before?.addedAt;
      if (before) await scopesChanged(identifier, before.scopes, scopes);
      if (recorded && !before) {
        const stored = await this.kv.get(apiKey(identifier));
        const moved = stored ? (JSON.parse(stored) as ApiDefinition) : undefined;
        // A stored API moved into the configuration stays the same API, with the configured scopes.
        if (moved) await scopesChanged(identifier, moved.scopes, scopes);
        addedAt = moved ? moved.addedAt : await this.#afterPredecessor(identifier);
        added.push(identifier);
      }
      now[identifier] = { scopes: [...scopes], grants, ...(addedAt !== undefined && { addedAt }) };
    }
    // A grant taken from the configuration, as the client holds it with its stored grants (the two
    // are one grant: union): the scopes it no longer holds at an API still configured end there.
    const clients = new Set(Object.values(recorded ?? {}).flatMap((api) => Object.keys(api.grants)));
    const narrowed: string[] = [];
    for (const clientId of clients) {
      const storedText = await this.kv.get(apiGrantsKey(clientId));
      const stored = storedText ? (JSON.parse(storedText) as Record<string, ClientGrant>) : {};
      const held = (record: Record<string, RecordedApi>) =>
        Object.fromEntries(
          Object.keys(now).flatMap((identifier) => {
            const grant = record[identifier]?.grants[clientId];
            return grant || stored[identifier] ? [[identifier, grant ? union(stored[identifier], grant) : stored[identifier]!]] : [];
          }),
        );
      const previous = held(recorded!);
      const next = held(now);
      if (takesAway(previous, next)) {
        narrowed.push(clientId);
        await this.#endTaken(clientId, previous, next);
      }
    }
    // Each ending is a cutoff "issued at or before this second": the instance serves once it has
    // passed, so that what it issues under the new configuration is of a later second.
    if (removed.length || narrowed.length || scopesTaken.length || emptied.length) await untilSecond(epochSeconds() + 1);
    return { removed, added, scopesTaken, narrowed: [...new Set([...narrowed, ...emptied])], now };
  }

  /**
   * The clients whose grant at an API let them call it with the scopes it offered `before` and no
   * longer does with those it offers `after` (its configuration changed): none of the scopes it offers
   * held (taken out, or the first ones added to an API a grant alone reached), or a grant that only
   * makes them serve as an API left with no scopes (resource-servers.ts resourceServerInfo, what may be
   * called). The tokens they got there end whole, those got without naming a scope too (which carry
   * none of the scopes taken), as when an operator narrows a grant to none of them (#endTaken). Their ids.
   */
  async #endEmptied(identifier: string, before: readonly string[], after: readonly string[]): Promise<string[]> {
    const { endings } = this.options;
    if (!endings) return [];
    const configured = [...this.#staticGrants].filter(([, held]) => held[identifier]).map(([clientId]) => clientId);
    const ended: string[] = [];
    for (const clientId of new Set([...(await this.kv.members(apiGranteesKey(identifier))), ...configured])) {
      const grant = await this.grantAt(clientId, identifier);
      if (!grant || !callsWith(grant, before) || callsWith(grant, after)) continue;
      await endings.clientGrantNarrowed(clientId, identifier, undefined);
      ended.push(clientId);
    }
    return ended;
  }

  /** The scopes an API offers: as this process finds it, or as the servers' configuration last recorded it (a CLI run without it). */
  async #offered(identifier: string): Promise<readonly string[] | undefined> {
    return (await this.find(identifier))?.scopes ?? own(await this.#recorded(), identifier)?.scopes;
  }

  /** A configured API's addedAt, as recorded (configurationChanged). */
  #addedAt(identifier: string, addedAt: number | undefined): void {
    const fixed = this.#static.get(identifier);
    if (!fixed || fixed.source !== 'config') return;
    const { addedAt: _previous, ...api } = fixed.api;
    this.#static.set(identifier, { api: addedAt === undefined ? api : { ...api, addedAt }, source: 'config' });
  }

  /**
   * Whether an API is this process's own (built in or configured), or configured where the servers
   * last started: a CLI run without their RESOURCE_SERVERS reads that from the store
   * (configurationChanged records it), so that it does not add or remove a stored API the servers
   * never use, and say done.
   */
  async #configured(identifier: string): Promise<boolean> {
    return this.#static.has(identifier) || own(await this.#recorded(), identifier) !== undefined;
  }

  /** The configured APIs the servers last started with (configurationChanged records them), by identifier. */
  async #recorded(): Promise<Record<string, RecordedApi> | undefined> {
    const text = await this.kv.get(CONFIGURED_APIS_KEY);
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, RecordedApi>);
  }

  /** Deletes a stored API and every grant at it. */
  async remove(identifier: string): Promise<void> {
    if (await this.#configured(identifier)) throw new ApiError(`the API ${identifier} is defined in the configuration; it cannot be removed here`, 'conflict', 409);
    if (!(await this.kv.get(apiKey(identifier)))) throw new ApiError(`no API ${identifier}`, 'not_found', 404);
    // Its tokens end before it goes (a failure half-way leaves it there, to remove again), and once
    // more after, for tokens issued meanwhile. Once it is gone nothing finds it to end them, and a
    // removal sent again answers "no API": the second ending is kept owed first, so that one cut
    // off after the deletion is finished by the sweep (finishRemoval).
    const owed = await this.options.owed?.owe({ api: identifier } satisfies OwedApiEnding);
    await this.options.endings?.apiRemoved(identifier);
    // Grants first: an API re-added under the same identifier starts with none (and the api
    // entry below ends their tokens, so no client_grant entry per grantee).
    await this.#forgetGrantsAt(identifier);
    await this.kv.del([apiKey(identifier)]);
    await this.#finishRemoval(identifier);
    await this.options.owed?.drop(owed);
  }

  /**
   * An ending kept owed by a request cut off (accounts/owed-endings.ts), finished by the sweep. A
   * removal, as remove would have (#finishRemoval). A change of a client's grants: nothing while
   * they still are `from` (never written); else what it took ends, as #change would have (changed
   * again since: what this change took ends again, more, never less).
   */
  async finishOwed(ending: OwedApiEnding): Promise<void> {
    if ('api' in ending) return this.#finishRemoval(ending.api);
    const stored = await this.kv.get(apiGrantsKey(ending.clientGrants));
    if (isDeepStrictEqual(stored ? JSON.parse(stored) : {}, ending.from)) return;
    await this.#endTaken(ending.clientGrants, ending.from, ending.to);
  }

  /**
   * A stored API's removal finished: out of the list, and every token for it up to now ended (once
   * more: tokens issued while it went). Nothing while an API of the identifier is there (not
   * removed yet, or added again since: its addition ended the removed one's tokens itself).
   */
  async #finishRemoval(identifier: string): Promise<void> {
    if ((await this.#configured(identifier)) || (await this.kv.get(apiKey(identifier)))) return;
    await this.kv.removeFromSet(APIS_KEY, identifier);
    await this.options.endings?.apiRemoved(identifier);
  }

  /** Every operator grant at an API, gone (the API is): no client_grant entries, its api entry ends their tokens. */
  async #forgetGrantsAt(identifier: string): Promise<void> {
    for (const clientId of await this.kv.members(apiGranteesKey(identifier))) {
      await this.#change(clientId, (grants) => without(grants, identifier), false);
    }
    await this.kv.del([apiGranteesKey(identifier)]);
  }

  /** What an operator granted a client, at every API (configuration and store together). */
  async grantsOf(clientId: string): Promise<ClientGrants> {
    const json = await this.#reads.get(apiGrantsKey(clientId));
    return this.#parsedGrants.get(clientId, json, (text) => {
      const stored = text ? (JSON.parse(text) as Record<string, ClientGrant>) : {};
      const fixed = this.#staticGrants.get(clientId);
      if (!fixed) return stored;
      const merged: Record<string, ClientGrant> = { ...stored };
      for (const [identifier, grant] of Object.entries(fixed)) merged[identifier] = union(stored[identifier], grant);
      return merged;
    });
  }

  /** The client's grant at one API, if it has one. */
  async grantAt(clientId: string, identifier: string): Promise<ClientGrant | undefined> {
    return (await this.grantsOf(clientId))[identifier];
  }

  /** The API a client's client_credentials requests default to (only while it holds a grant there). */
  async defaultApiOf(clientId: string): Promise<string | undefined> {
    return Object.entries(await this.grantsOf(clientId)).find(([, grant]) => grant.default)?.[0];
  }

  /**
   * Adds to a client's grant at an API: scopes (each one of the API's), serving as the API
   * (introspection), being the client's default API (which stops any other being its default).
   */
  async grant(clientId: string, identifier: string, addition: ClientGrant): Promise<ClientGrant> {
    return this.#write(clientId, identifier, addition, (current) => union(current, addition));
  }

  /**
   * Removes scopes from a client's grant at an API, or (no scopes given) the whole grant; what the
   * client holds there after it (with what the configuration grants), undefined when nothing.
   */
  async revoke(clientId: string, identifier: string, scopes?: readonly string[]): Promise<ClientGrant | undefined> {
    // A scope the client does not hold is refused, as one the API lacks (a grant of it is refused so):
    // a mistyped scope revoked nothing while the answer, the grant as it was, read as done (newcomer
    // pass). Only what is not held is looked up: a held scope the API no longer lists, or one reserved
    // since, is still revoked (an operator narrowing a leaked client), by a CLI without the servers'
    // configuration too (review).
    const api = scopes?.length ? await this.find(identifier) : undefined;
    await this.#notConfigured(clientId, identifier, (fixed) => (scopes?.length ? fixed.scopes.filter((scope) => scopes.includes(scope)) : [...fixed.scopes, ...(fixed.introspect ? ['introspection'] : []), ...(fixed.default ? ['default'] : [])]), !scopes?.length);
    const grants = await this.#change(clientId, (grants) => {
      const current = grants[identifier];
      if (!current) throw new ApiError(`client ${clientId} holds no grant at ${identifier} in the store`, 'not_found', 404);
      if (!scopes?.length) return without(grants, identifier);
      const unheld = scopes.filter((scope) => !current.scopes.includes(scope));
      const unknown = api ? unheld.filter((scope) => !api.scopes.includes(scope)) : [];
      if (unknown.length) throw new ApiError(`${identifier} has no scope ${unknown.join(', ')} (it has: ${api!.scopes.join(' ') || 'none'})`, 'invalid_request', 400);
      if (unheld.length) throw new ApiError(`client ${clientId} holds no scope ${unheld.join(', ')} at ${identifier} in the store (it holds: ${current.scopes.join(' ') || 'none'})`, 'not_found', 404);
      return { ...grants, [identifier]: { ...current, scopes: current.scopes.filter((scope) => !scopes.includes(scope)) } };
    });
    return this.#held(clientId, identifier, grants[identifier]);
  }

  /** What a client holds at an API with `stored` its grant there in the store: the configuration's grant added. */
  #held(clientId: string, identifier: string, stored: ClientGrant | undefined): ClientGrant | undefined {
    const fixed = own(this.#staticGrants.get(clientId), identifier);
    return fixed ? union(stored, fixed) : stored;
  }

  /** Replaces a client's grant at an API (the admin API's PUT). */
  async setGrant(clientId: string, identifier: string, grant: ClientGrant): Promise<ClientGrant> {
    await this.#notConfigured(clientId, identifier, (fixed) => [
      ...fixed.scopes.filter((scope) => !grant.scopes.includes(scope)),
      ...(fixed.introspect && !grant.introspect ? ['introspection'] : []),
      ...(fixed.default && !grant.default ? ['default'] : []),
    ]);
    return this.#write(clientId, identifier, grant, () => union(undefined, grant));
  }

  /**
   * A client's grant in the configuration (`resourceServers` grants) and its stored one are one grant
   * (grantsOf: their union), so taking from the stored one what the configured one gives takes
   * nothing: the client would go on getting it, a revocation answered as done, the operator told
   * a leaked client's access was ended (red team's eighteenth endings pass). Refused instead, nothing
   * changed, naming what only the configuration can take (`taken`: what the change would take of the
   * configured grant; `whole`: the whole grant is to go, which the configured one outlives).
   */
  async #notConfigured(clientId: string, identifier: string, taken: (fixed: ClientGrant) => string[], whole = false): Promise<void> {
    // This process's configuration, or the one the servers last started with (a CLI run without the
    // servers' RESOURCE_SERVERS reads it from the store: configurationChanged records it).
    const fixed = own(this.#staticGrants.get(clientId), identifier) ?? own(own(await this.#recorded(), identifier)?.grants, clientId);
    if (!fixed) return;
    const kept = taken(fixed);
    if (!kept.length && !whole) return;
    throw new ApiError(
      `client ${clientId}'s grant at ${identifier} is in the configuration (resourceServers)${kept.length ? `, which gives it ${kept.join(', ')}` : ''}: change it there and restart (what the configuration takes away ends then)`,
      'conflict',
      409,
    );
  }

  /** Refuses an API there is not, or scopes it does not have (granted or revoked). */
  async #apiWith(identifier: string, scopes: readonly string[]): Promise<void> {
    const api = await this.find(identifier);
    // Name the APIs there are: a mistyped identifier, or an example's issuer copied as is, is then plain to see.
    if (!api) throw new ApiError(`no API ${identifier}; the APIs are ${(await this.list()).map((known) => known.identifier).join(', ')}`, 'not_found', 404);
    const unknown = scopes.filter((scope) => !api.scopes.includes(scope));
    if (unknown.length) throw new ApiError(`${identifier} has no scope ${unknown.join(', ')} (it has: ${api.scopes.join(' ') || 'none'})`, 'invalid_request', 400);
  }

  /** Checks a grant against the API, then writes what `next` makes of the current one. */
  async #write(clientId: string, identifier: string, grant: ClientGrant, next: (current: ClientGrant | undefined) => ClientGrant): Promise<ClientGrant> {
    await this.#apiWith(identifier, grant.scopes);
    await this.kv.addToSet(apiGranteesKey(identifier), clientId);
    const grants = await this.#change(clientId, (grants) => {
      const changed: Record<string, ClientGrant> = {};
      // A client has at most one default API.
      for (const [other, held] of Object.entries(grants)) changed[other] = grant.default && held.default ? plain(held) : held;
      changed[identifier] = next(grants[identifier]);
      return changed;
    });
    return this.#held(clientId, identifier, grants[identifier])!;
  }

  /** What a change took from a client: a whole grant, or scopes of one (see GrantEndings). */
  async #endTaken(clientId: string, previous: ClientGrants, next: ClientGrants): Promise<void> {
    const { endings } = this.options;
    if (!endings) return;
    await Promise.all(
      Object.entries(previous).map(async ([identifier, held]) => {
        const kept = next[identifier];
        if (!kept) return endings.clientGrantNarrowed(clientId, identifier, undefined);
        const taken = held.scopes.filter((scope) => !kept.scopes.includes(scope));
        if (!taken.length && (kept.introspect !== true || held.introspect === true)) return undefined;
        // Left with no leave to call the API (resource-servers.ts), the client's tokens there end whole,
        // those it got without naming a scope too: left with none of its scopes, with only scopes the
        // API no longer offers (taken out of the configuration), or only serving as an API without
        // scopes (review of the thirteenth passes: granted-thirteenth ended them for the API's change alone).
        const offered = await this.#offered(identifier);
        const leaveLost = offered !== undefined && callsWith(held, offered) && !callsWith(kept, offered);
        if (leaveLost || (taken.length && !kept.scopes.length)) return endings.clientGrantNarrowed(clientId, identifier, undefined);
        return taken.length ? endings.clientGrantNarrowed(clientId, identifier, taken) : undefined;
      }),
    );
  }

  /**
   * Ends every token a client got for itself (client_credentials) up to now, at each API it holds a
   * grant at, keeping the grants: its secret leaked and was rotated without grace, so what was got
   * with it may be a thief's (the client gets new tokens with its new secret).
   */
  async endOwnTokens(clientId: string): Promise<void> {
    const { endings } = this.options;
    if (!endings) return;
    // And those it got without naming an API (no audience: NO_AUDIENCE), which introspection answered
    // active after a rotation without grace (newcomer pass, 2026-12-06).
    await Promise.all([...Object.keys(await this.grantsOf(clientId)), NO_AUDIENCE].map((identifier) => endings.clientGrantNarrowed(clientId, identifier, undefined)));
  }

  /** Forgets every grant a client held (when the client is deleted). */
  async forgetClient(clientId: string): Promise<void> {
    await this.kv.del([apiGrantsKey(clientId)]);
  }

  /**
   * Read-modify-write of a client's stored grants, retried when another writer got there first.
   * Every change goes through here (revoke, the admin API's PUT, removing an API), so this is
   * where a grant that lost scopes, or went, ends the tokens issued under it (`endings`).
   */
  async #change(clientId: string, change: (grants: Record<string, ClientGrant>) => Record<string, ClientGrant>, endTokens = true) {
    for (;;) {
      const before = await this.kv.get(apiGrantsKey(clientId));
      const previous = before ? (JSON.parse(before) as Record<string, ClientGrant>) : {};
      const next = change(previous);
      // What it takes away ends before the grant changes too (a failure half-way leaves the grant as
      // it was, to change again), and after, for tokens issued meanwhile. Once changed, a second
      // attempt finds nothing to take: the ending after is kept owed first, so that a change cut
      // off after its write is finished by the sweep (finishOwed).
      const ends = endTokens && takesAway(previous, next);
      const owed = ends ? await this.options.owed?.owe({ clientGrants: clientId, from: previous, to: next } satisfies OwedApiEnding) : undefined;
      if (ends) await this.#endTaken(clientId, previous, next);
      const written = await this.kv.compareAndSet(apiGrantsKey(clientId), before, JSON.stringify(next));
      if (written && ends) await this.#endTaken(clientId, previous, next);
      await this.options.owed?.drop(owed);
      if (written) return next;
    }
  }
}

/** `record[key]` when it is the record's own: identifiers and client ids come from requests (`__proto__` is no grant). */
function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record && Object.hasOwn(record, key) ? record[key] : undefined;
}

function union(a: ClientGrant | undefined, b: ClientGrant): ClientGrant {
  return {
    scopes: [...new Set([...(a?.scopes ?? []), ...b.scopes])],
    ...(a?.introspect || b.introspect ? { introspect: true } : {}),
    ...(a?.default || b.default ? { default: true } : {}),
  };
}

function plain({ default: _default, ...grant }: ClientGrant): ClientGrant {
  return grant;
}

function without(grants: Record<string, ClientGrant>, identifier: string): Record<string, ClientGrant> {
  const { [identifier]: _gone, ...rest } = grants;
  return rest;
}

/**
 * An absolute URI's characters (RFC 3986 §3, `#` aside): the URL parser takes more, mending it (spaces
 * and controls at the ends dropped, others escaped, a host in Unicode), while the identifier is kept
 * and compared as it was sent (the `aud` of its tokens, a client's `resource`).
 */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?[\]@!$&'()*+,;=%]*$/;
const MAX_IDENTIFIER_LENGTH = 512;

function checkIdentifier(identifier: unknown): string {
  if (typeof identifier !== 'string') throw new ApiError('identifier is an absolute URI', 'invalid_request', 400);
  if (identifier.length > MAX_IDENTIFIER_LENGTH) throw new ApiError(`identifier is at most ${MAX_IDENTIFIER_LENGTH} characters (this one has ${identifier.length})`, 'invalid_request', 400);
  // "localhost:4000" is an absolute URI (the scheme "localhost:"), which no client means as a resource.
  const meant = schemelessHost(identifier);
  if (meant) throw new ApiError(`identifier: ${JSON.stringify(identifier)} is a host and port without a scheme; did you mean ${meant}?`, 'invalid_request', 400);
  if (!ABSOLUTE_URI.test(identifier) || !URL.parse(identifier)) {
    throw new ApiError(`identifier: ${JSON.stringify(identifier)} is not an absolute URI without a fragment (RFC 8707)`, 'invalid_request', 400);
  }
  return identifier;
}

function checkScopes(scopes: readonly unknown[]): string[] {
  for (const scope of scopes) {
    if (typeof scope !== 'string' || !SCOPE_TOKEN.test(scope)) throw new ApiError(`scope ${JSON.stringify(scope)} is not a scope token (RFC 6749 §3.3)`, 'invalid_request', 400);
    const problem = reservedScopeProblem(scope) ?? commaScopeProblem(scope);
    if (problem) throw new ApiError(`scope ${problem}`, 'invalid_request', 400);
  }
  return scopes as string[];
}

/** A stored API as it is used: without a reserved scope it was stored with (Apis.reservedScopesIgnored). */
function withoutReserved(api: ApiDefinition): ApiDefinition {
  return api.scopes.some((scope) => RESERVED_SCOPES.has(scope)) ? { ...api, scopes: api.scopes.filter((scope) => !RESERVED_SCOPES.has(scope)) } : api;
}
