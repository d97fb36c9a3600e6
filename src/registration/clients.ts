/**
 * Clients kept in the store (as opposed to static ones in config): add, update, rotate a
 * secret, list, remove. A secret is handed out once, by the call that makes it (add, rotateSecret);
 * the store keeps its digest only, and a client read back holds a handle in its place
 * (store/adapter.ts storedClient). Metadata is validated by oidc-provider's own client schema (which runs
 * our registration policy) before it is stored, so what the CLI, the admin API and the
 * developer page accept is exactly what the provider will load.
 *
 * A rotated secret's predecessor is kept (client:previous-secret:<id>) for a grace period, and
 * client authentication accepts it until then (provider/patches/previous-secrets.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Adapter } from 'oidc-provider';
import type { Apis } from '../apis/apis.js';
import { FIRST_PARTY_CLIENT_IDS } from '../http/first-party-sign-in.js';
import { OFFERED_API_SCOPES, singularMetadataProblem } from './policy.js';
import type { ProviderInService } from '../provider-in-service.js';
import { AdapterIndexes } from '../store/adapter-indexes.js';
import { secretDigestOf } from '../store/record-keys.js';
import { holding, STILL_HELD, type Kv } from '../store/kv.js';
import { CONFIGURED_CLIENTS_KEY, ownerClaimKey, previousSecretKey } from '../store/keys.js';
import { epochSeconds, untilSecond } from '../clock.js';

export type ClientMetadata = Record<string, unknown> & { client_id: string };

/** A refused change to the client registry, with the error code and HTTP status an API answers with. */
export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    message: string,
    readonly error: string,
    readonly status: number,
    readonly description: string = message,
  ) {
    super(message);
  }
}

/** A change refused because the client is defined in the configuration (Clients.notConfigured). */
export class ConfiguredClient extends ClientError {
  constructor(id: string) {
    super(`client "${id}" is defined in the configuration (clients, CLIENTS): change it there and restart`, 'conflict', 409);
  }
}

/** 256 bits from the CSPRNG, base64url: a secret worth comparing with a plain constant-time compare. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * A client_id for RFC 7591 registration: 256 random bits, base64url, never with a leading "-". The
 * engine's own ids start with one once in 64 registrations, and such an id reads as an option to
 * every command line (`latchkey clients remove -x…` is refused), including the runbook's.
 */
export function registeredClientId(): string {
  for (;;) {
    const id = randomBytes(32).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Seconds a developer's registration claim outlives a registration that never finished (a crash mid-request). */
const OWNER_CLAIM_TTL = 30;

/**
 * A rotated-out secret, by its SHA-256 digest (a copy of the store acts as no client with it;
 * `secret`: one rotated out by an earlier release, in clear), when its grace ends (epoch seconds;
 * unknown for one kept before this was recorded), and when it was rotated out (`at`; unknown for one
 * kept before the thirteenth fresh-eyes passes), which bounds its grace by the one configured now.
 */
export type PreviousSecret = ({ readonly digest: string; readonly secret?: undefined } | { readonly secret: string; readonly digest?: undefined }) & {
  readonly until?: number;
  readonly at?: number;
  /**
   * Secrets rotated out before this one whose grace had not ended when it was (a rotation's retry
   * after a 503 whose write ran, its answer lost, rotates from a secret nobody was shown: the
   * deployed one keeps its grace, seventh blips pass). Newest first, at most EARLIER_KEPT.
   */
  readonly earlier?: readonly { readonly digest: string; readonly until: number; readonly at?: number }[];
};

/** Earlier rotated-out secrets kept beside the latest (PreviousSecret.earlier). */
const EARLIER_KEPT = 4;

/**
 * Each rotated-out secret a record keeps, the latest first, with its grace ending no later than
 * `grace` (registration.secretRotationGrace as configured now) after its rotation: what client
 * authentication compares (provider/patches/previous-secrets.ts). The grace given at a rotation is
 * at most the configured one, and an operator who lowered it and restarted had the secrets rotated
 * out before go on to the end of the longer one (thirteenth fresh-eyes passes).
 */
export function previousSecrets(previous: PreviousSecret, now: number, grace = Infinity): PreviousSecret[] {
  const bounded = <T extends { until?: number; at?: number }>(one: T): T => (one.at !== undefined && one.until !== undefined && one.at + grace < one.until ? { ...one, until: one.at + grace } : one);
  const last = bounded(previous);
  // The latest's record lives as long as its longest grace: the latest counts until its own end (the
  // record's TTL, when it is alone and its grace not lowered since).
  const latest = last.until === undefined || last.until > now || (last === previous && !previous.earlier?.length) ? [last] : [];
  const earlier = (previous.earlier ?? []).map(bounded).filter((one) => one.until > now);
  return [...latest, ...earlier.map(({ digest, until, at }) => ({ digest, until, ...(at === undefined ? {} : { at }) }))];
}

/** The rotated-out secret of a client, while its grace period lasts (provider/patches/previous-secrets.ts). */
export async function previousSecret(kv: Kv, clientId: string): Promise<PreviousSecret | undefined> {
  const stored = await kv.get(previousSecretKey(clientId));
  if (stored === undefined) return undefined;
  // Kept as JSON since the grace's end is; a plain string is a secret rotated out before.
  return stored.startsWith('{') ? (JSON.parse(stored) as PreviousSecret) : { secret: stored };
}

/** A deleted client's rotated-out secret goes with it (the store's clientRemoved hook, provider.ts), whichever way it was removed. */
export async function forgetPreviousSecret(kv: Kv, clientId: string): Promise<void> {
  await kv.del([previousSecretKey(clientId)]);
}

/**
 * What is known of a deleted client's ending (revocation/list.ts): when a client of the id was last
 * deleted (its client entry, kept while a token of it could live), and ending again everything issued
 * to it up to now.
 */
export interface ClientEndings {
  clientRemovedAt(clientId: string): Promise<number | undefined>;
  revokeClient(clientId: string): Promise<unknown>;
}

export class Clients {
  constructor(
    private readonly kv: Kv,
    private readonly providers: ProviderInService,
    /** The APIs whose scopes a client may register (runtime APIs); without it, only the static scopes. */
    private readonly apis?: Pick<Apis, 'delegableScopes'>,
    /** A client deleted lately with the id: what it got in flight ends, and the new one starts in a later second. */
    private readonly endings?: ClientEndings,
    /** The ids of the clients in the configuration (`clients`, CLIENTS), which the engine finds before any in the store. */
    private readonly configured: readonly string[] = [],
  ) {}

  /**
   * A client of the configuration is changed there: one stored with its id is never used (the engine
   * finds the configured one first), so adding, updating, rotating the secret of or removing it
   * here would say done while the configured client goes on as it was: a secret rotated because it
   * leaked still working, a narrowing or a removal with no effect (red team's nineteenth granting pass).
   * Configured is this process's configuration, or the one the servers last started with: a CLI run
   * without the servers' CLIENTS reads it from the store (store/configured-clients.ts records it).
   */
  async notConfigured(id: string): Promise<void> {
    if (this.configured.includes(id) || (await this.#recordedAsConfigured(id))) throw new ConfiguredClient(id);
  }

  async #recordedAsConfigured(id: string): Promise<boolean> {
    const text = await this.kv.get(CONFIGURED_CLIENTS_KEY);
    return text !== undefined && Object.hasOwn(JSON.parse(text) as object, id);
  }

  /** The provider's own adapter: removing a client here runs the same hook as RFC 7592's DELETE. */
  get #adapter(): Adapter & { upsertIfUnchanged?(id: string, previous: object, payload: object, expiresIn: number): Promise<boolean> } {
    return (this.providers.current.Client as unknown as { adapter: Adapter }).adapter;
  }

  /**
   * Writes `next` over the client as `existing` was read, only while the store still holds that: a
   * change made meanwhile (a secret rotated because it leaked, an operator's narrowing, an RFC 7592
   * update) is never written over with what was read before it; ClientError (409) instead, nothing
   * written, to try again.
   */
  async #replace(id: string, existing: ClientMetadata, next: ClientMetadata): Promise<void> {
    const adapter = this.#adapter;
    if (!adapter.upsertIfUnchanged) return adapter.upsert(id, next, 0);
    if (!(await adapter.upsertIfUnchanged(id, existing, next, 0))) {
      throw new ClientError(`client "${id}" was changed (or removed) meanwhile: nothing was written; try again`, 'conflict', 409);
    }
  }

  async add(metadata: ClientMetadata): Promise<ClientMetadata> {
    const id = metadata.client_id;
    // Latchkey's own pages' clients, configured statically (and trusted without consent: provider/consents.ts).
    if (FIRST_PARTY_CLIENT_IDS.includes(id)) throw new ClientError(`"${id}" is Latchkey's own client id`, 'conflict', 409);
    await this.notConfigured(id);
    if (await this.#adapter.find(id)) throw new ClientError(`a client "${id}" exists already`, 'conflict', 409);
    await this.#validate(metadata);
    // The client's creation time (RFC 7591's client_id_issued_at, as registration sets it): consents,
    // grants, codes and refresh tokens of the id from before it were a deleted predecessor's, and
    // end with it (provider/consents.ts, provider.ts findAccount, resource-servers.ts heldByClientNow).
    const created: ClientMetadata = { ...metadata, client_id_issued_at: await this.#afterPredecessor(id) };
    await this.#adapter.upsert(id, created, 0);
    return created;
  }

  /**
   * The new client's creation time: now, or, while a client deleted with the id can still matter
   * (its client entry on the revocation list), a second after both that deletion and everything
   * issued to the predecessor since (a request in flight at the deletion: ended here again), waited
   * for, so that nothing of the predecessor is of the new client's seconds.
   */
  async #afterPredecessor(id: string): Promise<number> {
    const removedAt = await this.endings?.clientRemovedAt(id);
    if (removedAt === undefined) return epochSeconds();
    await this.endings!.revokeClient(id);
    const createdAt = Math.max(epochSeconds(), removedAt) + 1;
    await untilSecond(createdAt);
    return createdAt;
  }

  /**
   * Replaces a client's metadata; its secret stays unless the new metadata names one. This is an
   * operator's change (admin API, CLI): it ends the client's registration access tokens, so a
   * client registered dynamically cannot put back with RFC 7592 what the operator took (a scope, a
   * grant type, a redirect URI); from then on an operator manages it.
   */
  async update(id: string, metadata: Record<string, unknown>): Promise<ClientMetadata> {
    const existing = await this.#require(id);
    const updated: ClientMetadata = {
      ...metadata,
      client_id: id,
      ...(existing.client_secret && metadata.client_secret === undefined ? { client_secret: existing.client_secret } : {}),
      ...(existing.owner !== undefined ? { owner: existing.owner } : {}),
      // Its creation time stays: what a predecessor of the id was given stays ended.
      ...(existing.client_id_issued_at !== undefined ? { client_id_issued_at: existing.client_id_issued_at } : {}),
    };
    await this.#validate(updated);
    // The tokens end first, so that the operator's write comes after any the client was making. A
    // secret named here replaces the client's with no grace, as a rotation without grace does (it is
    // what an operator told of a leak may write): the old one, and one still in a rotation's grace,
    // stop now, and what the client got for itself ends, as for any credential replaced (the store's
    // clientReplaced hook, provider/replaced-credentials.ts; red team's second endings pass).
    await new AdapterIndexes(this.kv).endRegistrationTokens(id);
    await this.#replace(id, existing, updated);
    return updated;
  }

  /**
   * A new secret, returned this once; the old one keeps working for `grace` seconds. A client
   * registered dynamically also gets a new registration access token, returned with the secret,
   * and its old ones end at once: a token leaked with the old secret would otherwise change the
   * redirect URIs (RFC 7592 shows no secret: the store keeps its digest only, store/adapter.ts). Without
   * grace (the secret may have leaked), the tokens the client got for itself up to now end too.
   */
  async rotateSecret(id: string, grace: number): Promise<ClientMetadata & { registration_access_token?: string }> {
    const existing = await this.#require(id);
    if (typeof existing.client_secret !== 'string') throw new ClientError(`client "${id}" has no secret (a public client)`, 'invalid_request', 400);
    // No grace: the old secret may have leaked, and the tokens got with it may be a thief's. The
    // store's clientReplaced hook ends them (and a secret still in an earlier rotation's grace) before
    // the secret changes (a failure after it then leaves them ended, never the secret changed and
    // they alive) and once more after, for those got meanwhile (the client's own; a person's grants
    // end with `grants revoke --client`). With a grace, the old secret is kept first: then the hook
    // sees a routine rotation (provider/replaced-credentials.ts).
    const previous = grace > 0 ? await this.#graceRecord(id, existing.client_secret, grace) : undefined;
    if (previous) await this.kv.set(previousSecretKey(id), previous.text, { ttl: previous.ttl });
    const rotated = { ...existing, client_secret: generateSecret() };
    try {
      await this.#replace(id, existing, rotated);
    } catch (error) {
      // Changed meanwhile (another rotation, without grace, say): the secret read here is no longer
      // one to keep working. Not on an outage (503): the new secret may still be written, by a Redis
      // that runs the write once it resumes, and the old one must then keep its grace; deleted there,
      // the app's secret stopped at once, the new one shown to nobody (fourth blips pass). Kept while
      // the secret did not change, it names the current secret: harmless.
      if (previous && error instanceof ClientError) await this.kv.deleteIfEquals(previousSecretKey(id), previous.text);
      throw error;
    }
    // A client that manages itself (RFC 7591) gets a new registration access token, saved before
    // the others end: a rotation cut off between (a 503) leaves one in the index, so its retry still
    // hands one over. Ended first, a retry found none, and answered no token: the developer was
    // locked out of RFC 7592 management (seventh blips pass).
    const indexes = new AdapterIndexes(this.kv);
    if (!(await indexes.managesItself(id))) return rotated;
    // As the engine makes one at registration (its type declares no constructor arguments).
    const RegistrationAccessToken = this.providers.current.RegistrationAccessToken as unknown as new (payload: { clientId: string }) => { jti: string; save(): Promise<string> };
    const registrationToken = new RegistrationAccessToken({ clientId: id });
    const value = await registrationToken.save();
    await indexes.endRegistrationTokensBut(id, registrationToken.jti);
    return { ...rotated, registration_access_token: value };
  }

  /**
   * The grace record of a rotation from `secret`: its digest until the grace ends, and those of the
   * secrets rotated out before it whose grace has not ended (a grace is not cut short by the next
   * rotation with one: a retry after a 503 whose write ran, its answer lost, rotated from a secret
   * nobody was shown, and the deployed one's grace ended at the retry before the seventh blips pass).
   */
  async #graceRecord(id: string, secret: string, grace: number): Promise<{ text: string; ttl: number }> {
    const now = epochSeconds();
    const digest = secretDigestOf(secret);
    const kept = await previousSecret(this.kv, id);
    const earlier = (kept ? previousSecrets(kept, now) : [])
      .flatMap((one) => (one.digest !== undefined && one.until !== undefined && one.until > now && one.digest !== digest ? [{ digest: one.digest, until: one.until, ...(one.at === undefined ? {} : { at: one.at }) }] : []))
      .slice(0, EARLIER_KEPT);
    const record: PreviousSecret = earlier.length ? { digest, until: now + grace, at: now, earlier } : { digest, until: now + grace, at: now };
    return { text: JSON.stringify(record), ttl: Math.max(grace, ...earlier.map((one) => one.until - now)) };
  }

  async #require(id: string): Promise<ClientMetadata> {
    await this.notConfigured(id);
    const existing = await this.get(id);
    if (!existing) throw new ClientError(`no client "${id}"`, 'not_found', 404);
    return existing;
  }

  async #validate(metadata: ClientMetadata): Promise<void> {
    const singular = singularMetadataProblem(metadata);
    if (singular) throw new ClientError(`invalid_client_metadata: ${singular}`, 'invalid_client_metadata', 400, singular);
    try {
      // Throws InvalidClientMetadata / InvalidRedirectUri with the provider's own description.
      const Client = this.providers.current.Client as unknown as { new (metadata: unknown, ctx: unknown): unknown; validate(metadata: unknown): Promise<unknown> };
      // The registration policy with the runtime APIs' scopes, which Client.validate cannot pass it
      // (it gives the schema no context): see provider/patches/api-scopes-in-metadata.ts.
      new Client(metadata, { state: { [OFFERED_API_SCOPES]: (await this.apis?.delegableScopes()) ?? [] } });
      await Client.validate(metadata);
    } catch (error) {
      const { error: code, error_description: description } = error as { error?: string; error_description?: string };
      if (code) throw new ClientError(`${code}: ${description ?? ''}`.trim(), code, 400, description ?? code);
      throw error;
    }
  }

  async get(id: string): Promise<ClientMetadata | undefined> {
    return (await this.#adapter.find(id)) as ClientMetadata | undefined;
  }

  async list(): Promise<ClientMetadata[]> {
    const ids = (await new AdapterIndexes(this.kv).clientIds()).sort();
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((client): client is ClientMetadata => !!client);
  }

  /**
   * Adds an app a person registers on the developer page, unless they own `max` already (a
   * ClientError, nothing written): one person cannot fill the store with clients, nor make every
   * developer page, which reads the clients to find a person's, read without end. A person's
   * registrations go one at a time (a claim in the store, seen by every instance), so apps sent at
   * once are counted as if sent one after another; a registration sent while another is under way
   * is refused, to send again. `ownerStands` is asked once the claim is held, after the count: an
   * owner disabled or removed since their page read their session (removeOwned) registers nothing.
   */
  async addOwned(metadata: ClientMetadata & { owner: string }, max: number, ownerStands: () => Promise<boolean> = async () => true): Promise<ClientMetadata> {
    // Held as every claim is (kv.ts holding): one whose taking or letting go a blip cut off is let go
    // once the store is back. Before the thirteenth blips pass it was held its whole TTL, and the
    // person's retry told another app of theirs was being registered.
    const added = await holding(
      this.kv,
      ownerClaimKey(metadata.owner),
      async () => {
        if ((await this.ownedBy(metadata.owner)).length >= max) {
          throw new ClientError(`you have ${max} apps already, the most one person may register here; delete one you no longer use first`, 'too_many_apps', 409);
        }
        if (!(await ownerStands())) throw new ClientError('you are no longer signed in here: nothing was registered', 'access_denied', 403);
        return this.add(metadata);
      },
      { ttl: OWNER_CLAIM_TTL, wait: 0 },
    );
    if (added === STILL_HELD) throw new ClientError('another app of yours is being registered at this moment; try again', 'conflict', 409);
    return added;
  }

  /**
   * Removes every stored app `owner` registered on the developer page (a person removed: latchkey
   * users remove), as remove does, and answers them. Under the owner's claim, which addOwned holds
   * while it counts and writes: a registration under way finishes first and its app is found here;
   * one after it finds its owner gone (disabled first by the caller) and registers nothing.
   */
  async removeOwned(owner: string): Promise<ClientMetadata[]> {
    const removed = await holding(
      this.kv,
      ownerClaimKey(owner),
      async () => {
        // A configured client of the id is the operator's (a developer's app moved into the
        // configuration keeps its id): skipped, as remove would refuse it, whether this process has
        // the servers' configuration or reads what they recorded. Refused, it failed every run again.
        const recorded = await this.kv.get(CONFIGURED_CLIENTS_KEY);
        const configured = new Set([...this.configured, ...(recorded === undefined ? [] : Object.keys(JSON.parse(recorded) as object))]);
        const owned = (await this.ownedBy(owner)).filter((app) => !configured.has(app.client_id));
        for (const app of owned) await this.remove(app.client_id);
        return owned;
      },
      { ttl: OWNER_CLAIM_TTL, wait: OWNER_CLAIM_TTL * 1000 },
    );
    if (removed === STILL_HELD) throw new ClientError('an app of theirs was being registered all along: run it again', 'conflict', 409);
    return removed;
  }

  async ownedBy(accountId: string): Promise<ClientMetadata[]> {
    return (await this.list()).filter((client) => client.owner === accountId);
  }

  async remove(id: string): Promise<void> {
    await this.#require(id);
    await this.#adapter.destroy(id);
  }
}
