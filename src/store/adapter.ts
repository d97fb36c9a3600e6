/**
 * oidc-provider's Adapter contract over the Kv store, for every model.
 *
 * Layout (all under the configured key prefix):
 *   oidc:<Model>:<id>       record (payload + consumed mark), expiring with the model; a Session's
 *                           key holds its ending once it is ended (below); a bearer value's record is
 *                           under oidc:<Model>:sha256:<digest> instead (below)
 *   oidc:grant:<grantId>    set of the record keys issued under a grant, for revokeByGrantId
 *   oidc:uid:<uid>          Session uid → the session id's digest (sha256:…)
 *   oidc:usercode:<code>    device flow user code → the device code's digest (sha256:…)
 *   oidc:clients            set of stored client ids (durable, like the clients themselves)
 *   oidc:grants-ends:account:<accountId>, oidc:grants-ends:client:<clientId>
 *                           expiring sets (Kv.addExpiring) of grant ids, so that every grant of a person
 *                           or a client can be revoked; oidc:grants:account:…, oidc:grants:client:…, the
 *                           plain sets of the release before (never pruned), are read with them
 *   oidc:sessions-ends:account:{<accountId>}
 *                           the digests of a person's session ids, so that disabling them ends every session:
 *                           an expiring set (Kv.addExpiring), each scored by its session record's end (every
 *                           save moves it, as it moves the record's TTL), ended ones dropped at each add;
 *                           oidc:sessions:account:{<accountId>}, the plain set of the release before (never
 *                           pruned), is read and taken from with it until it expires
 *   oidc:rat:client:<clientId>
 *                           record keys of a client's registration access tokens, deleted with the client
 *   oidc:pending-ends:client:<clientId>
 *                           record keys of a client's device codes and pushed authorization requests,
 *                           each scored by its record's end (Kv.addExpiring: ended ones dropped at each
 *                           add), deleted with the client; oidc:pending:client:<clientId>, the plain
 *                           set of the release before (never pruned), is read and deleted with it too
 *   oidc:initial-access-tokens
 *                           set of the digests of outstanding initial access tokens (expiring with the
 *                           longest), so that an operator can list and revoke them
 * Bearer values are kept under their digest (record-keys.ts DIGESTED: initial and registration access tokens,
 * opaque access, client_credentials and refresh tokens, authorization codes, session ids, device
 * codes), as
 * oidc:<Model>:sha256:<digest>, the record without its jti (find gives it back), and a grant's index
 * lists that key (RFC 6819 §5.1.4.1.3): the value, which acts as a client or a person, is nowhere in
 * the store, so a copy of the store (a backup, a replica, a dump) registers, changes or reads
 * nothing with them. One kept by its value by an earlier release is still found, consumed and ended
 * by its value: a read or consumption that finds nothing under the digest tries the value next (one
 * round trip more, on a miss only); a deletion deletes both keys in one round trip. A session's
 * indexes (its uid's, its person's) and a device code's (its user code's) hold the digest, so a
 * record found through them has no id here: the engine is given a handle (record-keys.ts HANDLE) that names the
 * digest within this process only. An Interaction is kept without the session id the engine
 * copies into it, and with the digest of the device code it names (interactionText). A user code
 * stays a key name: it is no bearer credential (entering it approves the device with the
 * approver's own sign-in), and its digest (some 34 bits) would be inverted at once anyway.
 * An opaque access, client_credentials or refresh token's value says its model by its length
 * (TOKEN_LENGTHS), so that introspection and revocation read it in that model only.
 * The layout works unchanged on Redis Cluster: the one write spanning two keys (a grant's code or
 * token with its entry in oidc:grant:<grantId>, Kv.putRecordInSet) is two commands there.
 *
 * A session is ended, not deleted: its record is replaced by an ending (Kv.endRecord) for what it
 * had left to live, and a session write lands only where there is no ending (Kv.putRecord checks,
 * in the same operation). A request that loaded the session before it was ended elsewhere (signed
 * out on the account page, its person disabled, a password change, a logout) and saves it as it
 * answers would otherwise write it back to life.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Adapter, AdapterPayload, KoaContextWithOIDC } from 'oidc-provider';
// The engine's errors module, not the engine (see engine-request.ts): the same classes it throws.
import { InvalidGrant, InvalidRequestUri } from 'oidc-provider/lib/helpers/errors.js';
import type { ConsumeOutcome, Kv, RecordEnding, StoredRecord } from './kv.js';
import { engineRequest } from './engine-request.js';
import { endListed, endListedBut, endMembers } from './listed-records.js';
import { deferredOf, deferringRequest, SessionEnded, settleFirst, tokenRequest } from './held-writes.js';
import { DIGESTED, digestOf, GRANTABLE, idOfRef, legacyKey, loadedClient, recordKey, refOf, storedClient } from './record-keys.js';
import { epochSeconds } from '../clock.js';
import {
  OIDC_CLIENTS_KEY,
  OIDC_INITIAL_ACCESS_TOKENS_KEY,
  OIDC_SESSION_ENDS_KEY,
  OIDC_SESSION_PREFIX,
  oidcAccountGrantsEndsKey,
  oidcAccountGrantsKey,
  oidcAccountSessionsEndsKey,
  oidcAccountSessionsKey,
  oidcClientGrantsEndsKey,
  oidcClientGrantsKey,
  oidcClientNarrowedKey,
  oidcGrantKey,
  oidcPendingEndsKey,
  oidcPendingKey,
  oidcRegistrationTokensKey,
  oidcSessionUidKey,
  oidcUserCodeKey,
} from './keys.js';

/**
 * Seconds an expiring index (Kv.addExpiring) keeps a record's key or id past the record's own TTL:
 * the two are written by separate commands, so the index's end must not come before the record's
 * by the moment between them (what ends a client's or a person's everything reads the index).
 */
const INDEX_MARGIN = 1;

/**
 * Models a client asks for before anything is granted (a device authorization, a pushed request):
 * they name no grant, so they are indexed by client, to go with it. Otherwise one begun before the
 * client was deleted is finished for a client made again with the id.
 */
const PENDING = new Set(['DeviceCode', 'PushedAuthorizationRequest']);

/**
 * The opaque tokens whose value says which model it is, by its length: oidc-provider makes an
 * opaque value of ceil(bits / 6) base64url characters (formats.bitsOfOpaqueRandomness, provider.ts),
 * so each model gets its own length, each at least 256 bits of randomness. Introspection and
 * revocation look a token up in every model it may be (two or three reads); a value of another
 * model's length is then not looked up. Values of any other length (43: made before the lengths
 * differed) are looked up in every model, as before.
 */
const TOKEN_LENGTHS: Readonly<Record<string, number>> = { ClientCredentials: 44, AccessToken: 45, RefreshToken: 46 };
const MODEL_BY_LENGTH = new Map(Object.entries(TOKEN_LENGTHS).map(([model, length]) => [length, model]));

/** The bits of randomness of a new opaque value of `model` (formats.bitsOfOpaqueRandomness). */
export function opaqueTokenBits(model: string): number {
  const length = TOKEN_LENGTHS[model];
  return length === undefined ? 256 : length * 6;
}

/** What a replayed single-use artifact is called in the invalid_grant description. */
const REPLAY_DESCRIPTION: Record<string, string> = {
  AuthorizationCode: 'authorization code already consumed',
  RefreshToken: 'refresh token already used',
  DeviceCode: 'device code already consumed',
  BackchannelAuthenticationRequest: 'backchannel authentication request already consumed',
  PreAuthorizedCode: 'pre-authorized code already consumed',
  PushedAuthorizationRequest: 'request_uri already used',
};

/** What the store tells the rest of Latchkey about (the adapter itself knows nothing of JWTs). */
export interface AdapterHooks {
  /** Every artifact of a grant is being revoked (reuse, replay, sign-out, revocation endpoint). */
  grantRevoked?(grantId: string): Promise<unknown>;
  /**
   * A grant itself is ending, before anything of it is revoked or deleted (its record goes last:
   * destroy, a replay); not called when only its tokens are revoked and it is kept (grantRevoked alone).
   */
  grantEnded?(grantId: string): Promise<unknown>;
  /**
   * A client was deleted (its record and registration access tokens are gone already): whichever
   * way it was removed (RFC 7592, admin API, developer page, CLI), it goes through here.
   */
  clientRemoved?(clientId: string): Promise<unknown>;
  /**
   * Keeps a client's creation, deletion or change owed while it runs (store/due-endings.ts
   * OwedKeeper): one cut off half-way is finished by the sweep (finishClientEnding).
   */
  readonly owed?: { owe(ending: object): Promise<string | undefined>; drop(member: string | undefined): Promise<void> };
  /**
   * A client's record is being replaced (`previous`: its metadata as stored; undefined for a new
   * client), whichever way (RFC 7592, admin API, CLI, developer page): called before the write and
   * once more after it, so that what the change ends stays ended whatever is issued meanwhile.
   */
  clientReplaced?(clientId: string, previous: AdapterPayload | undefined, next: AdapterPayload): Promise<unknown>;
  /**
   * A token request presented a record of this person, held by this client: start reading what the
   * request will read of them (their account, the client's revocation mark), alongside the record's
   * grant and session (see readAheadFor).
   */
  accountAhead?(accountId: string, clientId: string | undefined): void;
  /**
   * A session ended (an ending, not a renewal): the apps each of its records held as it ended (its
   * own, a renewal's the ending followed, another tab's of the same browser session, or a renewal's
   * ended because its old id had ended meanwhile). Whoever ended it ended the grants of the session
   * as they read it; a grant saved into it after that read, or into a renewal of it, would outlive the
   * ending (its JWT access tokens to their expiry): GrantRevocation.endHeld ends what it finds left.
   */
  sessionEnded?(apps: readonly HeldApp[]): Promise<unknown>;
}

/** An app a session record held (oidc-provider's session.authorizations entry): its grant, and whether that outlives sign-out. */
export interface HeldApp {
  readonly grantId?: unknown;
  readonly persistsLogout?: unknown;
}

/** The apps a session record's payload holds (its authorizations), none when it is unreadable. */
function heldApps(payload: string | undefined): HeldApp[] {
  if (!payload) return [];
  try {
    return Object.values(((JSON.parse(payload) as AdapterPayload).authorizations ?? {}) as Record<string, HeldApp>);
  } catch {
    return [];
  }
}

/** The record key of the registration access token an RFC 7592 deletion in progress presented. */
function presentedRegistrationToken(): string | undefined {
  const ctx = engineRequest();
  const token = ctx?.oidc?.route === 'client_delete' ? (ctx.oidc.entities as { RegistrationAccessToken?: { jti?: unknown } }).RegistrationAccessToken : undefined;
  return typeof token?.jti === 'string' ? recordKey('RegistrationAccessToken', token.jti) : undefined;
}

/**
 * A record written back by the request that read it (a device code at /device: marked in flight,
 * approved, denied) lands only while it still holds what that request read, unconsumed
 * (Kv.replaceRecord); else this is thrown, and nothing is written. Two approvals of one code that
 * read it at the same moment (two browsers, two tabs of one) both wrote before, the later over the
 * earlier: its grant in place of the one the device may have redeemed already, the consumed mark
 * gone with the record written again, so the device redeemed a second time (ninth blips pass).
 */
export class RecordChangedMeanwhile extends Error {
  override name = 'RecordChangedMeanwhile';
  /** As the engine's own refusals: shown on its pages (the device entry page says what happened), 409. */
  readonly expose = true;
  readonly status = 409;
  readonly statusCode = 409;
  readonly error = 'invalid_request';
  constructor(model: string) {
    super(`the ${model} was changed elsewhere since this request read it`);
  }
}
/**
 * A new device code whose user code a live device code holds already (the engine draws user codes at
 * random and never checks): its save is refused, the index left to the first, and the device
 * authorization draws another (provider/patches/unique-user-codes.ts). The index was overwritten
 * before, so the person typing the first device's code was shown, and approved, the second device.
 */
export class UserCodeTaken extends Error {
  override name = 'UserCodeTaken';
  constructor() {
    super('this user code is held by another live device code');
  }
}
/** What the request in progress read of each record it may write back (RecordChangedMeanwhile): on the request, by key. */
const READ_AS = Symbol('latchkey.read-as');
type ReadingAs = { [READ_AS]?: Map<string, string> };

/** Keeps what the request in progress read at `key`. */
function readFor(key: string, text: string): void {
  const request = engineRequest() as ReadingAs | undefined;
  if (request) (request[READ_AS] ??= new Map()).set(key, text);
}

/**
 * What the request in progress read at `key`, if it did, and from now on `written` in its place: a
 * second write of the same request (held back with the first, sent after it) replaces the first's.
 */
function readAs(key: string, written: string, request: object | undefined = engineRequest()): string | undefined {
  const read = (request as ReadingAs | undefined)?.[READ_AS];
  const text = read?.get(key);
  if (text !== undefined) read!.set(key, written);
  return text;
}

/** The record key a revocation request deleted as it found it (KvAdapter.read). */
const TAKEN = Symbol('latchkey.taken');
type Taking = { [TAKEN]?: string | undefined };

/** The revocation request in progress (oidc-provider's context). */
function revocationRequest(): KoaContextWithOIDC | undefined {
  const ctx = engineRequest();
  return ctx?.oidc?.route === 'revocation' ? ctx : undefined;
}

/** Whether the request in progress deleted `key` already as it found it; forgets it (once). */
function tookAlready(key: string): boolean {
  const request = engineRequest() as Taking | undefined;
  if (request?.[TAKEN] !== key) return false;
  request[TAKEN] = undefined;
  return true;
}

/** Epoch seconds with milliseconds: when a record is consumed (the reuse grace is measured in it). */
const now = () => Date.now() / 1000;

/**
 * Sessions being saved under a renewed id (Session#resetIdentifier: at every sign-in and consent the
 * engine resumes, and the account page's renewals): the new id → the old one, while the engine's
 * save runs (provider/patches/session-renewals.ts renewingSession).
 */
const RENEWING = new Map<string, string>();

/** Runs `save`, the save of session `newId` that replaces `oldId`: the adapter writes the one and ends the other as one renewal (KvAdapter#write). */
export function renewingSession<T>(newId: string, oldId: string, save: () => Promise<T>): Promise<T> {
  RENEWING.set(newId, oldId);
  return save().finally(() => RENEWING.delete(newId));
}

export interface AdapterOptions {
  /**
   * Seconds after a refresh token was rotated during which presenting it again is a concurrent
   * refresh (two tabs, a retry), not a replay: it is rotated again, into a sibling under the same
   * grant, instead of revoking the grant. 0: every reuse revokes (RFC 9700 §4.14.2, strict).
   */
  readonly refreshReuseGrace?: number;
  /** Seconds a session's ending lasts when its record was gone already (ttl.session). */
  readonly sessionTtl?: number;
  /**
   * With it, a session that holds an app is also put in the sorted set of session ends (at its
   * expiry), for the sweeper that tells its apps it expired (provider/backchannel-delivery.ts), and
   * its record outlives its expiry by these seconds more, for the sweeper to read it after a delay
   * (a store outage). Where the store has no schedule (embedded), nothing is put.
   */
  readonly sessionEndsMargin?: number;
  /**
   * Seconds a device code's record outlives its end (the grace when less): so that a device polling
   * late (its interval grown by slow_down, or back from sleep) is told `expired_token` (RFC 8628
   * §3.5) for a code that was issued and expired, not `invalid_grant`, which a made-up code gets.
   * The engine reads its end (isExpired) before anything else a poll does, so it is never used.
   * Its user code's index is not kept longer: entry answers a code gone as before.
   */
  readonly deviceCodeKept?: number;
}

/** Whether a session's payload names an app (a sid or a grant): what its expiry ends or tells. */
const holdsApp = (payload: AdapterPayload) =>
  Object.values((payload.authorizations ?? {}) as Record<string, { sid?: unknown; grantId?: unknown }>).some(({ sid, grantId }) => sid !== undefined || grantId !== undefined);

/** What a record names that its redemption reads next (see readAheadFor). */
type Names = Pick<AdapterPayload, 'grantId' | 'sessionUid' | 'expiresWithSession' | 'accountId' | 'clientId'>;

/**
 * Codes this process issued lately, and what each names: so that their redemption, most often at
 * this process soon after, reads the code with its grant, session and account (one round trip)
 * rather than reading them once the code is read (two). Names only: which keys to read, never what
 * they hold (every read is made after the request arrived, as the one it replaces); a code redeemed
 * elsewhere, or gone from here, is read as before. Bounded: past this many, the oldest go first.
 */
const ISSUED_CODES = 10_000;

class KvAdapter implements Adapter {
  /** The AuthorizationCode adapter's codes issued here, by id (ISSUED_CODES). */
  readonly #issued = new Map<string, Names>();
  /**
   * Sessions found here under their id (kept so by the release before), whose record by id goes as
   * they are saved under their digest: else, once ended by a handle (which knows no id), their
   * cookie would find the record by id again. Bounded as ISSUED_CODES; in memory only.
   */
  readonly #byValue = new Set<string>();

  /** The model whose records this adapter keeps (forgoConsumption). */
  get modelName(): string {
    return this.model;
  }

  constructor(
    private readonly model: string,
    private readonly kv: Kv,
    /** Seconds a record outlives its expiry, so that late use reads as "expired", not "not found". */
    private readonly grace: number,
    private readonly hooks: AdapterHooks,
    private readonly options: AdapterOptions,
  ) {}

  /**
   * A refresh token consumed less than refreshReuseGrace seconds ago. The moment of consumption
   * is in the store, set once and atomically (consumeRecord), so every instance and worker
   * decides alike; the client was checked by oidc-provider before (a token presented by another
   * client is refused before it gets here, and never revokes or rotates anything).
   */
  private withinReuseGrace(consumed: number): boolean {
    return this.model === 'RefreshToken' && now() - consumed < (this.options.refreshReuseGrace ?? 0);
  }

  /** Kv.putRecordPointedTo, or where the store has none, the pointer written after the record landed. */
  #putPointedTo(key: string, text: string, ttl: number | undefined, pointer: string, value: string): Promise<boolean> {
    if (this.kv.putRecordPointedTo) return this.kv.putRecordPointedTo(key, text, ttl, pointer, value);
    return this.kv.putRecord(key, text, ttl).then(async (landed) => {
      if (landed) await this.kv.set(pointer, value, ttl ? { ttl } : {});
      return landed;
    });
  }

  /**
   * A session's renewal: the record under its new id (`key`) landed; the old id's ends, naming it as
   * its successor, so that an ending that found the session by its old id (read before the renewal)
   * ends the new one too. An old id that had been ended meanwhile (signed out elsewhere, its person
   * disabled, a password changed, while this request resumed a sign-in or a consent) ends the new
   * one with it: false. Before, the new id was written whatever had ended the old, and the session
   * lived on, signed in, with a new code for its app (endings pass, 2026-12-06). An old id renewed
   * meanwhile by another request (two tabs finishing sign-ins at once) whose renewal lives is no
   * ending: both go on, as before.
   */
  async #renewed(oldId: string, key: string): Promise<boolean> {
    // Cut off here (the store failing), both records live, of one uid: an ending of either ends the
    // other (#endOtherRecordsOf), and a device approval written with the new one works (sixth blips pass).
    const ending = await this.#endSession(oldId, key);
    if (!ending.already || (ending.successor !== undefined && (await this.#renewalLives(ending.successor)))) return true;
    // What the renewal brought (a consent's new grant) ends with it.
    await this.#ended([(await this.kv.endRecord(key, this.#sessionEndTtl())).ended]);
    return false;
  }

  /** Whether the session record at `key`, or the one its ending names as its successor (and so on), is live. */
  async #renewalLives(key: string): Promise<boolean> {
    for (let next: string | undefined = key, hops = 0; next !== undefined && hops < 16; hops += 1) {
      if (await this.kv.getRecord(next)) return true;
      // Ended (an ending there answers what it names, unchanged), or gone.
      next = (await this.kv.endRecord(next, this.#sessionEndTtl())).successor;
    }
    return false;
  }

  /** Seconds this model's records outlive their end: the grace, longer for a device code (deviceCodeKept). */
  #kept(): number {
    return this.model === 'DeviceCode' ? Math.max(this.grace, this.options.deviceCodeKept ?? 0) : this.grace;
  }

  #sessionEndTtl(): number {
    return (this.options.sessionTtl ?? 0) + this.grace;
  }

  /**
   * Ends session `id` (Kv.endRecord): it stays ended for as long as a session could live, so that a
   * request in flight cannot write it back, and leaves the expiry sweep. `successor`: the key of the
   * record that renews it. Without one (an ending, not a renewal), a session renewed since under
   * another id is followed there and ended too (the renewal named it), and so is every other live
   * record of the same browser session (its uid): two tabs finishing sign-ins at once each renew the
   * id, and the ending that found one left the other signed in (red team, 2026-12-06).
   */
  async #endSession(id: string, successor?: string): Promise<RecordEnding> {
    const ttl = this.#sessionEndTtl();
    const key = recordKey(this.model, id);
    const legacy = legacyKey(this.model, id);
    // Its person and uid, read before it ends, for its other records (an ending, not a renewal).
    const stored = successor === undefined ? await this.kv.getRecord(key) : undefined;
    // Nothing left for the expiry sweep, and a record kept by its id by an earlier release, in the same round trip.
    const swept = this.options.sessionEndsMargin !== undefined && this.kv.schedule ? this.kv.schedule(OIDC_SESSION_ENDS_KEY, undefined, 0, 1, refOf(id)) : undefined;
    const [ending] = await Promise.all([this.kv.endRecord(key, ttl, successor), swept, legacy === undefined ? undefined : this.kv.del([legacy])]);
    if (successor === undefined) {
      const ended = [ending?.ended, ...(await this.#endChain(ending?.successor))];
      const { uid, accountId } = stored ? (JSON.parse(stored.payload) as { uid?: unknown; accountId?: unknown }) : {};
      if (typeof uid === 'string' && typeof accountId === 'string') ended.push(...(await this.#endOtherRecordsOf(accountId, uid, key)));
      await this.#ended(ended);
    }
    // (`??`, `?.`: an older server behind the CLI's control socket answers nothing.)
    return ending ?? { already: false };
  }

  /** What the session records an ending ended held, as they ended (`payloads`), for the sessionEnded hook. */
  async #ended(payloads: readonly (string | undefined)[]): Promise<void> {
    const apps = payloads.flatMap(heldApps).filter(({ grantId }) => typeof grantId === 'string');
    if (apps.length) await this.hooks.sessionEnded?.(apps);
  }

  /**
   * Ends the records a chain of renewals names from `next` on; the payloads of those it ended. A
   * chain is as long as the renewals a session went through while it was being ended: a few.
   */
  async #endChain(next: string | undefined): Promise<(string | undefined)[]> {
    const ended: (string | undefined)[] = [];
    for (let hops = 0; next !== undefined && hops < 16; hops += 1) {
      const ending = await this.kv.endRecord(next, this.#sessionEndTtl());
      ended.push(ending?.ended);
      next = ending?.successor;
    }
    return ended;
  }

  /** Ends every other live record of the person's that holds browser session `uid` (and what each renewal names), but `except`; the payloads of those it ended. */
  async #endOtherRecordsOf(accountId: string, uid: string, except: string): Promise<(string | undefined)[]> {
    const refs = [...new Set([...(await this.kv.liveMembers(oidcAccountSessionsEndsKey(accountId))), ...(await this.kv.members(oidcAccountSessionsKey(accountId)))])];
    const keys = refs.map((ref) => recordKey(this.model, idOfRef(ref))).filter((other) => other !== except);
    const records = await Promise.all(keys.map((other) => this.kv.getRecord(other)));
    const ofUid = keys.filter((_, at) => records[at] !== undefined && (JSON.parse(records[at]!.payload) as { uid?: unknown }).uid === uid);
    const chains = await Promise.all(
      ofUid.map(async (other) => {
        const ending = await this.kv.endRecord(other, this.#sessionEndTtl());
        return [ending?.ended, ...(await this.#endChain(ending?.successor))];
      }),
    );
    return chains.flat();
  }

  /**
   * The store writes of an upsert, started now; a session's resolves false when it had been ended
   * (Kv.putRecord), or renewed from an ended one (`renewedFrom`). `request`: the engine's request
   * that made the upsert (a write held back runs as the request settles, outside the engine).
   */
  private write(id: string, payload: AdapterPayload, expiresIn: number, key = recordKey(this.model, id), { renewedFrom, request = engineRequest() }: { renewedFrom?: string | undefined; request?: object | undefined } = {}): Promise<unknown> {
    // A session the sweeper will end is read by it up to sessionEndsMargin after it expired.
    const sweptEnd = this.model === 'Session' && this.options.sessionEndsMargin !== undefined && this.kv.schedule && expiresIn && typeof payload.exp === 'number' && holdsApp(payload);
    // At least a second: a record saved after its end (the engine saves an expired device code it
    // found, or a slow request crossed it) would otherwise be written with a TTL of 0 or less, which
    // Redis's putRecord takes as none, keeping it for good. A record with an end (exp) saved with 0
    // left is one too (the engine's remainingTTL all through the second of its end: its device pages'
    // error path saves a code read ignoring expiry): 0 is "for good" only for what has no end (a client).
    const ttl = expiresIn || typeof payload.exp === 'number' ? Math.max(1, (expiresIn || 0) + this.#kept() + (sweptEnd ? this.options.sessionEndsMargin! : 0)) : undefined;
    // A grant's record goes into the grant's index with it: one command where the store can (a
    // grant's codes and tokens are never ended, so it answers nothing: only a session's write is judged).
    const grant = GRANTABLE.has(this.model) && payload.grantId ? oidcGrantKey(payload.grantId) : undefined;
    const text = DIGESTED.has(this.model)
      ? JSON.stringify({ ...payload, jti: undefined })
      : this.model === 'Interaction'
        ? interactionText(payload)
        : JSON.stringify(this.model === 'Client' ? storedClient(payload) : payload);
    const asRead = this.model === 'DeviceCode' && this.kv.replaceRecord ? readAs(key, text, request) : undefined;
    // A session's uid index names the record only once it landed: a save refused as ended (one read
    // before a renewal of the id, written after it) would point the uid at the ended record, and
    // what finds a session by uid (an upstream's logout, the account page's sign-out) would miss the live one.
    const uidIndex = this.model === 'Session' && typeof payload.uid === 'string' ? oidcSessionUidKey(payload.uid) : undefined;
    const stored: Promise<unknown> =
      asRead !== undefined
        ? this.kv.replaceRecord!(key, asRead, text, ttl).then((landed) => landed || Promise.reject(new RecordChangedMeanwhile(this.model)))
        : grant && this.kv.putRecordInSet
          ? this.kv.putRecordInSet(key, text, ttl, grant)
          : uidIndex
            ? this.#putPointedTo(key, text, ttl, uidIndex, refOf(id)).then((landed) => (landed && renewedFrom !== undefined ? this.#renewed(renewedFrom, key) : landed))
            : this.kv.putRecord(key, text, ttl);
    const writes: Promise<unknown>[] = [stored];
    if (grant && (asRead !== undefined || !this.kv.putRecordInSet)) writes.push(this.kv.addToSet(grant, key, ttl));
    if (this.#byValue.delete(id)) writes.push(this.kv.del([legacyKey(this.model, id)!]));
    // An expiring set: a person signs in as often as they like, and each session ends on its own. Its
    // end follows the record's TTL of this very save (idle lifetime, the sweeper's margin), later only.
    if (this.model === 'Session' && typeof payload.accountId === 'string') {
      const accountId = payload.accountId;
      writes.push(ttl !== undefined ? this.kv.addExpiring(oidcAccountSessionsEndsKey(accountId), refOf(id), ttl + INDEX_MARGIN) : this.kv.addToSet(oidcAccountSessionsKey(accountId), refOf(id)));
    }
    if (sweptEnd) writes.push(this.kv.schedule!(OIDC_SESSION_ENDS_KEY, refOf(id), (payload.exp as number) * 1000, ttl!));
    if (payload.userCode) writes.push(this.kv.set(oidcUserCodeKey(payload.userCode), refOf(id), { ttl: ttl === undefined ? undefined : Math.max(1, (expiresIn || 0) + this.grace) }).then(() => {}));
    if (this.model === 'Client') writes.push(this.kv.addToSet(OIDC_CLIENTS_KEY, id));
    if (this.model === 'InitialAccessToken') writes.push(this.kv.addToSet(OIDC_INITIAL_ACCESS_TOKENS_KEY, digestOf(id), ttl));
    if (this.model === 'RegistrationAccessToken' && typeof payload.clientId === 'string') {
      writes.push(this.kv.addToSet(oidcRegistrationTokensKey(payload.clientId), key, ttl));
    }
    const pendingFor = PENDING.has(this.model) ? requestingClient(payload) : undefined;
    // An expiring set: a client asks as often as it likes, and each record ends on its own.
    if (pendingFor && ttl !== undefined) writes.push(this.kv.addExpiring(oidcPendingEndsKey(pendingFor), key, ttl + INDEX_MARGIN));
    if (this.model === 'Grant') {
      // Expiring sets: a grant that ends on its own leaves its person's and its client's index too.
      const index = (ends: string, plain: string) => (ttl !== undefined ? this.kv.addExpiring(ends, id, ttl + INDEX_MARGIN) : this.kv.addToSet(plain, id));
      if (typeof payload.accountId === 'string') writes.push(index(oidcAccountGrantsEndsKey(payload.accountId), oidcAccountGrantsKey(payload.accountId)));
      if (typeof payload.clientId === 'string') writes.push(index(oidcClientGrantsEndsKey(payload.clientId), oidcClientGrantsKey(payload.clientId)));
    }
    // Most upserts write the record alone: its own promise then, not a Promise.all of one.
    return writes.length === 1 ? stored : Promise.all(writes).then(() => stored);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    if (this.model === 'AuthorizationCode') this.issued(id, payload);
    // On the token endpoint: held back, to go out with the consumption of the code or refresh
    // token, or at least with the rest of what the request does as it settles; at the
    // authorization endpoint, with the rest of what the request writes.
    const renewedFrom = this.model === 'Session' ? RENEWING.get(id) : undefined;
    const request = deferringRequest();
    if (request) {
      const key = recordKey(this.model, id);
      // A renewal refused (its old id ended meanwhile) is judged with the rest as it settles (held-writes.ts sessionLanded).
      deferredOf(request).writes.push({ key, model: this.model, kv: this.kv, write: () => this.write(id, payload, expiresIn, key, { renewedFrom, request }) });
      return;
    }
    if (this.model === 'Client' && this.hooks.clientReplaced) return this.replaceClient(id, payload, expiresIn, this.hooks.clientReplaced);
    if (typeof payload.userCode === 'string') await this.claimUserCode(payload.userCode, id, expiresIn);
    const written = await this.write(id, payload, expiresIn, undefined, { renewedFrom });
    if (renewedFrom !== undefined && written === false) throw new SessionEnded('the session ended while its id was renewed');
  }

  /** A user code's index taken for this device code, before its record is written, unless another holds it (UserCodeTaken). */
  private async claimUserCode(userCode: string, id: string, expiresIn: number): Promise<void> {
    const key = oidcUserCodeKey(userCode);
    if (await this.kv.set(key, refOf(id), { ttl: Math.max(1, (expiresIn || 0) + this.grace), onlyIfAbsent: true })) return;
    const held = await this.kv.get(key);
    // Its own index (by digest, or by the id a release before wrote), or one ended between the two reads.
    if (held !== undefined && held !== refOf(id) && held !== id) throw new UserCodeTaken();
  }

  /** A client's write, between the clientReplaced hook's two calls (clients are written rarely: the read of the previous one costs little). */
  private async replaceClient(id: string, payload: AdapterPayload, expiresIn: number, replaced: NonNullable<AdapterHooks['clientReplaced']>): Promise<void> {
    const stored = await this.kv.getRecord(recordKey(this.model, id));
    const previous = stored ? loadedClient(JSON.parse(stored.payload) as AdapterPayload) : undefined;
    if (!previous) {
      await replaced(id, previous, payload);
      return this.createClient(id, payload, expiresIn);
    }
    await this.changeClient(id, previous, payload, replaced, () => this.write(id, payload, expiresIn).then(() => true));
  }

  /**
   * A client's change `write` (false: nothing written) between the clientReplaced hook's two calls.
   * The second is kept owed before the first (store/due-endings.ts OwedKeeper): a change cut off
   * after its write (503) left what was issued in between alive, and a change sent again changes
   * nothing (the record holds it already), so ends nothing; the sweep finishes it now
   * (finishClientEnding).
   */
  private async changeClient(id: string, previous: AdapterPayload, payload: AdapterPayload, replaced: NonNullable<AdapterHooks['clientReplaced']>, write: () => Promise<boolean>): Promise<boolean> {
    const owed = await this.hooks.owed?.owe({ client: id, from: storedClient(previous), to: storedClient(payload) } satisfies OwedClientEnding);
    await replaced(id, previous, payload);
    const written = await write();
    if (written) await replaced(id, previous, payload);
    await this.hooks.owed?.drop(owed);
    return written;
  }

  /**
   * A new client (the clientReplaced hook ends nothing for one): in the clients' index first, then
   * its record, last and bounded (Kv.putRecord), so that a creation answered as an outage (503, a
   * non-zero exit) made no client. Before, a Redis paused past the command timeout wrote the record
   * once it resumed, after the 503: the operator's retry made a second client, the first one's
   * secret shown to nobody (third blips pass). An id indexed without its record is no client (the
   * index's readers skip it). A write run in time whose answer was lost (a connection cut after it)
   * still made the client, as any acknowledgement lost. The creation is kept owed as a deletion
   * first (OwedKeeper, finishClientEnding: nothing once the record is stored): one cut off between
   * its writes is taken out of the index by the sweep. Before the thirteenth blips pass its id was
   * left indexed for ever, a client listed but never stored, read by every listing of the clients.
   */
  private async createClient(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const owed = await this.hooks.owed?.owe({ client: id } satisfies OwedClientEnding);
    await this.kv.addToSet(OIDC_CLIENTS_KEY, id);
    await this.kv.putRecord(recordKey(this.model, id), JSON.stringify(storedClient(payload)), expiresIn ? expiresIn + this.grace : undefined, { bounded: true });
    await this.hooks.owed?.drop(owed);
  }

  /**
   * Writes record `id` only while it still holds `previous` (what the caller's find() read), as
   * upsert does otherwise (a client's write between the clientReplaced hook's calls); false, with
   * nothing written, when someone changed or removed it since. The stored text is compared as it
   * is, in one atomic step (Kv.replaceRecord), once it has been read to hold `previous`. Where the
   * store cannot (no replaceRecord), an upsert. A client's write is bounded (Kv.replaceRecord): a
   * change answered as an outage (503) changed nothing. Before, a Redis paused past the command
   * timeout wrote it once it resumed: a secret rotation answered 503 put a secret nobody was shown
   * in place, and its retry, rotating from that one, gave it the grace and ended the deployed
   * secret's at once (the fourth blips pass left it; the seventh fixed it).
   */
  async upsertIfUnchanged(id: string, previous: AdapterPayload, payload: AdapterPayload, expiresIn: number): Promise<boolean> {
    await settleFirst();
    const { replaceRecord } = this.kv;
    if (!replaceRecord) {
      await this.upsert(id, payload, expiresIn);
      return true;
    }
    const key = recordKey(this.model, id);
    const stored = await this.kv.getRecord(key);
    const read = JSON.parse(stored?.payload ?? 'null') as AdapterPayload | null;
    if (!stored || stored.consumed !== undefined || !isDeepStrictEqual(read && this.model === 'Client' ? loadedClient(read) : read, previous)) return false;
    const text = JSON.stringify(this.model === 'Client' ? storedClient(payload) : payload);
    const write = () => replaceRecord.call(this.kv, key, stored.payload, text, expiresIn ? expiresIn + this.grace : undefined, { bounded: this.model === 'Client' });
    const replaced = this.model === 'Client' ? this.hooks.clientReplaced : undefined;
    return replaced ? this.changeClient(id, previous, payload, replaced, write) : write();
  }

  /** Whether `id` is a token value that says it is of another model than this one (TOKEN_LENGTHS). */
  private ofAnotherModel(id: string): boolean {
    if (TOKEN_LENGTHS[this.model] === undefined) return false;
    const model = MODEL_BY_LENGTH.get(id.length);
    return model !== undefined && model !== this.model;
  }

  /**
   * On the token endpoint, a code or refresh token (or any grant's single-use artifact) is followed
   * by reads of its session (by uid), its grant and its account, one after another in
   * oidc-provider: start them now, together (store/read-ahead.ts). `own`: the record's own key, when
   * it is not read yet (a code issued here: what it names is known before it is read), read with them.
   */
  private readAheadFor(payload: Names, own?: string) {
    if (!this.kv.readAhead || !GRANTABLE.has(this.model) || engineRequest()?.oidc?.route !== 'token') return;
    const records = payload.grantId ? [recordKey('Grant', payload.grantId)] : [];
    if (own !== undefined) records.push(own);
    this.kv.readAhead({
      ...(records.length ? { records } : {}),
      // The index holds the session's digest (or, from the release before, its id): its key is the prefix and it.
      ...(payload.sessionUid && payload.expiresWithSession ? { indexed: [{ index: oidcSessionUidKey(payload.sessionUid), prefix: OIDC_SESSION_PREFIX }] } : {}),
      // A code is held to its client's cutoff (clientNarrowedAt, patches/current-registration.ts), read with its grant.
      ...(this.model === 'AuthorizationCode' && typeof payload.clientId === 'string' ? { strings: [oidcClientNarrowedKey(payload.clientId)] } : {}),
    });
    if (typeof payload.accountId === 'string') this.hooks.accountAhead?.(payload.accountId, typeof payload.clientId === 'string' ? payload.clientId : undefined);
  }

  /** Keeps what a code issued here names, for its redemption (ISSUED_CODES). */
  private issued(id: string, { grantId, sessionUid, expiresWithSession, accountId, clientId }: AdapterPayload) {
    if (this.#issued.size >= ISSUED_CODES) this.#issued.delete(this.#issued.keys().next().value!);
    this.#issued.set(id, { grantId, sessionUid, expiresWithSession, accountId, clientId });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.ofAnotherModel(id)) return undefined;
    // Usually nothing is held back: then the read starts at once.
    const settling = settleFirst({ model: this.model, id });
    if (settling) await settling;
    // A code issued here: what it names is read with it, in the same tick (used once).
    const names = this.#issued.size ? this.#issued.get(id) : undefined;
    const key = recordKey(this.model, id);
    if (names) {
      this.#issued.delete(id);
      this.readAheadFor(names, key);
    }
    const legacy = legacyKey(this.model, id);
    let record = await this.read(key);
    // A device code found under its digest is written back only over what was read (RecordChangedMeanwhile);
    // one kept by its value by the release before is written under its digest, as a new record.
    if (record && this.model === 'DeviceCode') readFor(key, record.payload);
    if (!record && legacy !== undefined) {
      record = await this.kv.getRecord(legacy);
      if (record && this.model === 'Session') {
        if (this.#byValue.size >= ISSUED_CODES) this.#byValue.delete(this.#byValue.values().next().value!);
        this.#byValue.add(id);
      }
    }
    if (!record) return undefined;
    const parsed = JSON.parse(record.payload) as AdapterPayload;
    const payload = this.model === 'Client' ? loadedClient(parsed) : parsed;
    if (DIGESTED.has(this.model)) payload.jti = id;
    // The device code an approval's interaction names, kept as its digest: its handle, for DeviceCode.find.
    else if (this.model === 'Interaction' && typeof payload.deviceCode === 'string') payload.deviceCode = idOfRef(payload.deviceCode);
    this.readAheadFor(payload);
    // Within the reuse grace, oidc-provider is shown an unspent token, so it rotates it again
    // (consume() below lets it) instead of treating it as a replay.
    if (record.consumed === undefined || this.withinReuseGrace(record.consumed)) return payload;
    return { ...payload, consumed: record.consumed };
  }

  /**
   * The record at `key`. At the revocation endpoint, a client_credentials token of the client asking
   * is deleted as it is read (Kv.takeRecordOwnedBy): the endpoint deletes exactly such a token
   * (provider.ts revocation.allowedPolicy: a client revokes its own tokens; an expired one it does
   * not find), and destroy() then has nothing left to do, so one round trip instead of two. Not
   * access or refresh tokens: their grant is revoked before they go (patches/grant-before-token.ts).
   */
  private read(key: string): Promise<StoredRecord | undefined> {
    const request = this.model === 'ClientCredentials' && this.kv.takeRecordOwnedBy ? revocationRequest() : undefined;
    const owner = request?.oidc.client?.clientId;
    if (!request || owner === undefined) return this.kv.getRecord(key);
    return this.kv.takeRecordOwnedBy!(key, owner, now()).then(({ record, taken }) => {
      if (taken) (request as Taking)[TAKEN] = key;
      return record;
    });
  }

  /** The session of this uid, by the digest its index holds (its handle: HANDLE), or by the id one kept by the release before holds. */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    await settleFirst({ model: '', id: '' });
    const entry = await this.kv.get(oidcSessionUidKey(uid));
    if (!entry) return undefined;
    const found = await this.find(idOfRef(entry));
    if (found || this.model !== 'Session') return found;
    // Renewed, its index not moved yet (a renewal cut off after the old id's ending): its successor.
    let next = (await this.kv.endRecord(recordKey(this.model, idOfRef(entry)), this.#sessionEndTtl()))?.successor;
    for (let hops = 0; next !== undefined && hops < 16; hops += 1) {
      const digest = next.slice(next.lastIndexOf(':sha256:') + 1);
      const live = digest.startsWith('sha256:') ? await this.find(idOfRef(digest)) : undefined;
      if (live) return live;
      next = (await this.kv.endRecord(next, this.#sessionEndTtl()))?.successor;
    }
    return undefined;
  }

  /** The device code of this user code, by the digest its index holds (its handle), or by the id one kept by the release before holds. */
  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    await settleFirst({ model: '', id: '' });
    const entry = await this.kv.get(oidcUserCodeKey(userCode));
    return entry ? this.find(idOfRef(entry)) : undefined;
  }

  /**
   * Atomic: oidc-provider checks `consumed` and then calls consume(), so two concurrent
   * redemptions would both pass its check. Here exactly one wins; the other is a replay, which
   * revokes the grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2) and fails with invalid_grant — unless
   * it is a refresh token within the reuse grace: then the other one goes on to a sibling token.
   *
   * On the token endpoint the consumption is deferred: oidc-provider goes on to make the new
   * tokens, whose records are held back too (every record a token request writes is), and
   * settleTokenRequest sends all of it together before the answer leaves. A request that lost the
   * race then answers invalid_grant instead, and what it wrote is deleted with the grant (or on
   * its own when the code or token was gone).
   */
  async consume(id: string): Promise<void> {
    const request = tokenRequest();
    if (request) {
      deferredOf(request).consumptions.push({ adapter: this, id, at: now() });
      return;
    }
    await settleFirst();
    await this.consumed(id, await this.kv.consumeRecord(recordKey(this.model, id), now()), []);
  }

  /** Marks this model's record `id` consumed at `at`. */
  consumeRecord(id: string, at: number): Promise<ConsumeOutcome> {
    return this.kv.consumeRecord(recordKey(this.model, id), at);
  }

  /** What a consumption's outcome means; `written`: record keys the request wrote after it. */
  async consumed(id: string, outcome: ConsumeOutcome, written: readonly string[]): Promise<void> {
    if (outcome === 'consumed') return;
    let key = recordKey(this.model, id);
    // Not under its digest: one kept by its value by an earlier release (one round trip more, on a miss only).
    const legacy = outcome === 'missing' ? legacyKey(this.model, id) : undefined;
    if (legacy !== undefined) {
      key = legacy;
      outcome = await this.kv.consumeRecord(key, now());
      if (outcome === 'consumed') return;
    }
    const description = REPLAY_DESCRIPTION[this.model] ?? `${this.model} already consumed`;
    if (outcome === 'already-consumed') {
      const record = await this.kv.getRecord(key);
      if (record?.consumed !== undefined && this.withinReuseGrace(record.consumed)) return;
      const payload = await this.find(id);
      // The grant's index holds what this request wrote too, and it goes with the grant; deleted by
      // name as well, in case another racer's revocation read the index before these writes landed.
      if (payload?.grantId) await this.revokeGrant(payload.grantId);
      if (written.length) await this.kv.del(written);
      throw this.replayed(description);
    }
    if (written.length) await this.kv.del(written);
    throw this.replayed(`${description.replace(/ already .*/, '')} not found`);
  }

  /**
   * The error for an artifact another request consumed first: invalid_grant at the token endpoint;
   * a pushed request is consumed at the authorization endpoint, whose answer to the browser has no
   * invalid_grant (RFC 6749 §4.1.2.1), and the engine's own check says invalid_request_uri.
   */
  private replayed(description: string): Error {
    return this.model === 'PushedAuthorizationRequest' ? new InvalidRequestUri(description) : new InvalidGrant(description);
  }

  /**
   * Deletes record `id` and says whether this call is the one that took it, of several at once
   * (a sign-in's interaction, used once as it resumes: patches/single-use-resume.ts). Consumed and
   * deleted by one command, so one round trip as a deletion alone: only the first consumption of
   * a record there finds it unconsumed. One command, not a consumption and a deletion sent together
   * (before the second blips pass): a Redis paused past the command timeout ran the deletion on
   * resuming, after the resume was answered 503, and its retry found no sign-in to resume.
   */
  async take(id: string): Promise<boolean> {
    await settleFirst();
    // A registration access token taken by the RFC 7592 update that rotates it
    // (patches/single-use-registration-token.ts) leaves its client's index too, as destroy's.
    const registrationOf = this.model === 'RegistrationAccessToken' ? await this.registrationTokenClient(id) : undefined;
    const taken = await this.takeRecord(id);
    if (taken && registrationOf !== undefined) await this.unlistRegistrationToken(id, registrationOf);
    return taken;
  }

  private async takeRecord(id: string): Promise<boolean> {
    const key = recordKey(this.model, id);
    const outcome = await this.kv.consumeRecord(key, now(), { drop: true });
    const legacy = outcome === 'missing' ? legacyKey(this.model, id) : undefined;
    if (legacy === undefined) return outcome === 'consumed';
    // One kept by its value by an earlier release.
    return (await this.kv.consumeRecord(legacy, now(), { drop: true })) === 'consumed';
  }

  async destroy(id: string): Promise<void> {
    await settleFirst();
    // What a client held ends before its record goes: a failure half-way leaves the client there, to
    // delete again (once it is gone, no path finds it to end what it held).
    // Its registration access tokens and pending requests too: once it is gone, a removal run again
    // finds no client, and they would serve a client made again with the id. So the ending after
    // the deletion (below) is kept owed first: cut off after the record went, the sweep finishes it.
    const owed = this.model === 'Client' ? await this.hooks.owed?.owe({ client: id } satisfies OwedClientEnding) : undefined;
    if (this.model === 'Client') await Promise.all([this.hooks.clientRemoved?.(id), endClientsRecords(this.kv, id)]);
    // A registration access token's client, read before it goes: its index entry goes after it (below).
    const registrationOf = this.model === 'RegistrationAccessToken' ? await this.registrationTokenClient(id) : undefined;
    // A grant goes only once it is revoked: the engine loads it before it looks at a refresh token
    // presented again, so a grant deleted while its revocation failed left nothing to retry with.
    if (this.model === 'Grant') await this.revokeGrant(id);
    // A session's ending stays, so that a request in flight cannot write the session back (every
    // write goes under its digest: one kept by its id by an earlier release is deleted, in the
    // same round trip, and nothing here writes it back).
    else if (this.model === 'Session') await this.#endSession(id);
    // A digested model's record kept by its value by an earlier release goes in the same round trip.
    else if (!tookAlready(recordKey(this.model, id))) {
      const legacy = legacyKey(this.model, id);
      await this.kv.del(legacy === undefined ? [recordKey(this.model, id)] : [recordKey(this.model, id), legacy]);
    }
    if (this.model === 'Client') {
      await clientGone(this.kv, this.hooks, id);
      await this.hooks.owed?.drop(owed);
    }
    if (this.model === 'InitialAccessToken') {
      await Promise.all([this.kv.removeFromSet(OIDC_INITIAL_ACCESS_TOKENS_KEY, digestOf(id)), this.kv.removeFromSet(OIDC_INITIAL_ACCESS_TOKENS_KEY, id)]);
    }
    if (registrationOf !== undefined) await this.unlistRegistrationToken(id, registrationOf);
  }

  /**
   * Takes a registration access token out of its client's index once the token is gone (never
   * before: an operator's write ends what the index lists). Before the second store-growth pass a
   * rotated-out token (every RFC 7592 update rotates it) stayed listed: the index, durable as the
   * tokens, grew by one member per update, for as long as the client lived.
   */
  private async unlistRegistrationToken(id: string, clientId: string): Promise<void> {
    const index = oidcRegistrationTokensKey(clientId);
    const legacy = legacyKey(this.model, id);
    await Promise.all([this.kv.removeFromSet(index, recordKey(this.model, id)), legacy === undefined ? undefined : this.kv.removeFromSet(index, legacy)]);
  }

  /** The client a registration access token (by its value) was issued to, as its record says (under its digest, or its value: the release before). */
  private async registrationTokenClient(id: string): Promise<string | undefined> {
    const legacy = legacyKey(this.model, id);
    const record = (await this.kv.getRecord(recordKey(this.model, id))) ?? (legacy === undefined ? undefined : await this.kv.getRecord(legacy));
    const clientId = record ? (JSON.parse(record.payload) as AdapterPayload).clientId : undefined;
    return typeof clientId === 'string' ? clientId : undefined;
  }

  /**
   * oidc-provider calls this once per model for the same grant; the hook is idempotent. The hook (the
   * revocation list's entry) first: a failure between leaves the artifacts, so the revocation can be
   * asked for again with them (a refresh token presented again, a code replayed again).
   */
  async revokeByGrantId(grantId: string): Promise<void> {
    await settleFirst();
    const [members] = await Promise.all([this.kv.members(oidcGrantKey(grantId)), this.hooks.grantRevoked?.(grantId)]);
    await endMembers(this.kv, oidcGrantKey(grantId), members);
  }

  /**
   * A grant's ending: told first (its mark and revocation-list entry), then its record, then what
   * was issued under it. A failure half-way leaves nothing that works (the engine refuses a token
   * or code whose grant is gone, and the list refuses what was issued up to then) and leaves the
   * token an app revokes (RFC 7009), to ask again with: patches/grant-before-token.ts ends the grant
   * before the token. Before the twenty-third endings pass the record went last, after the tokens: a
   * revocation refused at that last write answered 503 with the refresh token gone, the retry 200
   * for an unknown token, and the grant's record stayed, taken up again by the session's next request.
   */
  private async revokeGrant(grantId: string) {
    await settleFirst();
    await this.hooks.grantEnded?.(grantId);
    const [members] = await Promise.all([this.kv.members(oidcGrantKey(grantId)), this.hooks.grantRevoked?.(grantId)]);
    await this.kv.del([recordKey('Grant', grantId)]);
    await endMembers(this.kv, oidcGrantKey(grantId), members);
  }
}

/**
 * An interaction's record as kept: without the session id the engine copies into it
 * (`session.cookie`, which nothing reads back: the engine finds the session by `session.uid`), and
 * with the digest of the device code an approval's interaction names (`deviceCode`, which the
 * engine finds the code by as the approval resumes: find gives it back as a handle). Pinned by
 * test/unit/provider-patches.test.ts (the engine's Interaction and what reads it).
 */
function interactionText(payload: AdapterPayload): string {
  const session = payload.session as { cookie?: unknown } | undefined;
  const { deviceCode } = payload;
  if (session?.cookie === undefined && typeof deviceCode !== 'string') return JSON.stringify(payload);
  return JSON.stringify({
    ...payload,
    ...(session?.cookie === undefined ? {} : { session: { ...session, cookie: undefined } }),
    ...(typeof deviceCode === 'string' ? { deviceCode: refOf(deviceCode) } : {}),
  });
}

/**
 * What a client began that must not outlive it: its registration access tokens, device codes and
 * pushed requests. Exported for the endings of a removal the store does not see as a deletion (a
 * configured client taken out, a Client ID Metadata Document gone: client-endings.ts clientEndings):
 * before the twenty-first endings pass their pending requests outlived them, and a client put back
 * within their lifetime finished them. Within an RFC 7592 deletion, the registration access token
 * it presented is kept (`keep`, by default that token's record key) until the client's record is
 * gone (clientRemoved passes null: every one): cut off between, the client is still there and the
 * deletion is sent again with that token. Before, the token was ended first, and a deletion said
 * not done left a client nobody could delete through RFC 7592 (fourth blips pass).
 */
export async function endClientsRecords(kv: Kv, clientId: string, keep: string | null | undefined = presentedRegistrationToken()): Promise<void> {
  await Promise.all([!keep ? endListed(kv, oidcRegistrationTokensKey(clientId)) : endListedBut(kv, oidcRegistrationTokensKey(clientId), keep), endPendingRequests(kv, clientId)]);
}

/**
 * A client's pending requests (device codes, pushed requests): ended too when the client is
 * narrowed (client-endings.ts clientEndings), since the twenty-second endings pass.
 */
export async function endPendingRequests(kv: Kv, clientId: string): Promise<void> {
  // The expiring index, and the plain set the release before wrote (until it expires).
  const ends = oidcPendingEndsKey(clientId);
  await Promise.all([kv.liveMembers(ends).then((keys) => endMembers(kv, ends, keys)), endListed(kv, oidcPendingKey(clientId))]);
}

/**
 * A client's sign-ins in progress (interactions: at the login page, a second factor, an upstream
 * provider, consent), ended by a cutoff: the second now (the store's clock) is recorded for `lifetime`
 * seconds (as long as an interaction, or a code, made before can live), and a sign-in of the client begun at
 * or before it ends as it resumes (clientNarrowedAt: patches/current-registration.ts). Sign-ins are
 * not indexed per client, so endPendingRequests does not reach them (twenty-fourth endings pass).
 * Returns the cutoff.
 */
export async function endPendingSignIns(kv: Kv, clientId: string, lifetime: number): Promise<number> {
  const at = epochSeconds();
  await kv.set(oidcClientNarrowedKey(clientId), String(at), { ttl: lifetime });
  return at;
}

/**
 * The cutoff of a client's sign-ins (endPendingSignIns), while it can matter; one read (or one started
 * ahead: readInteractionAhead, and readAheadFor with a code's grant at the token endpoint, which holds
 * a code issued at or before it to it too).
 */
export async function clientNarrowedAt(kv: Kv, clientId: string): Promise<number | undefined> {
  const at = await kv.get(oidcClientNarrowedKey(clientId));
  return at === undefined ? undefined : Number(at);
}

/**
 * The client of a device code, or of a pushed request, whose record keeps its client only in the
 * request object it holds (an unsecured JWT the engine made of the pushed parameters).
 */
function requestingClient(payload: AdapterPayload): string | undefined {
  if (typeof payload.clientId === 'string') return payload.clientId;
  const claims = typeof payload.request === 'string' ? payload.request.split('.')[1] : undefined;
  if (!claims) return undefined;
  try {
    const clientId = (JSON.parse(Buffer.from(claims, 'base64url').toString()) as { client_id?: unknown }).client_id;
    return typeof clientId === 'string' ? clientId : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts reading the grant `grantId` for `request`, which is about to load it (its session names
 * it for the client asking): see store/read-ahead.ts.
 */
export function readGrantAhead(kv: Kv, grantId: string, request: object): void {
  kv.readAhead?.({ records: [recordKey('Grant', grantId)] }, request);
}

/**
 * Starts reading the interaction `uid` for `request`, whose resume is about to load it (after a
 * check in front of the engine read it too): see store/read-ahead.ts. Returns what drops that
 * read, for the check to call before it changes the interaction (its write, made in front of the
 * engine, is not tied to the request by the store). With it, the cutoff of `clientId`'s sign-ins
 * (clientNarrowedAt), which the resume reads too.
 */
export function readInteractionAhead(kv: Kv, uid: string, request: object, clientId?: string): () => void {
  const key = recordKey('Interaction', uid);
  kv.readAhead?.({ records: [key], strings: clientId === undefined ? [] : [oidcClientNarrowedKey(clientId)] }, request);
  return () => kv.forgetAhead?.([key], request);
}

/**
 * A client's deletion finished once its record is gone: out of the list, and its records ended (a
 * registration access token outliving its client would manage a client later made with the same
 * id; a device code or pushed request would be finished for it). The hook runs once more: tokens
 * the client got between its first run and the record's deletion end too (the revocation list's
 * entry moves on to now).
 */
async function clientGone(kv: Kv, hooks: AdapterHooks, clientId: string): Promise<void> {
  await Promise.all([kv.removeFromSet(OIDC_CLIENTS_KEY, clientId), endClientsRecords(kv, clientId, null)]);
  await hooks.clientRemoved?.(clientId);
}

/** A client's deletion, or (`from`, `to`: its record as stored before and after) change, kept owed while it runs. */
export interface OwedClientEnding {
  readonly client: string;
  readonly from?: AdapterPayload;
  readonly to?: AdapterPayload;
}

/**
 * A client's deletion or change kept owed and not dropped (cut off, accounts/owed-endings.ts),
 * finished by the sweep. A deletion: nothing while a client of the id is stored (not deleted after
 * all, or made again since, another app whose tokens must live); else as the deletion would have. A
 * change: nothing while the record still holds `from` (never written); else the hook's ending after
 * the write, as the change would have (changed again since: what this change ended ends again,
 * more, never less).
 */
export async function finishClientEnding(kv: Kv, hooks: AdapterHooks, { client, from, to }: OwedClientEnding): Promise<void> {
  if (from && to) {
    const stored = await kv.getRecord(recordKey('Client', client));
    if (stored && isDeepStrictEqual(JSON.parse(stored.payload), from)) return;
    await hooks.clientReplaced?.(client, loadedClient(from), loadedClient(to));
    return;
  }
  if (await adapterFactory(kv)('Client').find(client)) return;
  await clientGone(kv, hooks, client);
}

/** The `adapter` setting of oidc-provider: one adapter per model, all on one store. */
export function adapterFactory(kv: Kv, grace = 0, hooks: AdapterHooks = {}, options: AdapterOptions = {}): (model: string) => Adapter {
  return (model) => new KvAdapter(model, kv, grace, hooks, options);
}
