/**
 * The revocation list. A signed JWT cannot be recalled, so whoever accepts one asks this list
 * (introspection does; resource servers follow its feed). Four kinds of entry:
 *
 *   jti     one access token, until its `exp`
 *   grant   every access token of a grant issued up to a moment: tokens carry the claim `gid`, a
 *           hash of their grant's id (grantHandle), so revoking a grant (refresh token reuse, code
 *           replay, sign-out, `latchkey grants revoke`) costs one entry however many tokens it
 *           issued, and issuing a token costs no store access at all.
 *   client  every access token of a client issued up to a moment (tokens carry `client_id`): the
 *           client was deleted, so neither a person's tokens issued to it nor its own
 *           client_credentials tokens may work, and a client later made with the same id starts
 *           clean (its tokens are issued after the moment).
 *   kid     every token signed by a signing key, whenever it was issued (`latchkey keys revoke`):
 *           the key is compromised, so a forgery made with it may carry any `iat`.
 *   client_grant
 *           every token a client got for itself (client_credentials: no grant) for one API, issued
 *           up to a moment, that carries a scope an operator took away (or any, when the whole
 *           grant was revoked: apis/apis.ts): what it holds under the old grant ends, at
 *           introspection and at every resource server, and does not come back with a new grant.
 *           Tokens within what is still granted are untouched, even those of the same second.
 *   api     every token for one API (its `aud`), issued up to a moment: the API was removed, so
 *           neither its tokens nor an API later added with the identifier inherit them. With a
 *           `scope`: only such tokens carrying that scope, which the API no longer offers (taken out
 *           of its `resourceServers` entry across a restart: apis.ts configurationChanged);
 *           introspection refuses them already (provider/resource-servers.ts heldByApiNow), this
 *           tells the APIs that verify JWTs locally, and keeps them refused should the scope be put
 *           back. A verifier that ignores `scope` refuses more (every token for the API up to then),
 *           never less.
 *   delegated
 *           every token a client holds on people's behalf (under a grant: carrying `gid`), issued
 *           up to a moment: an operator revoked every grant the client holds (`latchkey grants revoke
 *           --client`). One entry first, as for a person, and its mark lives as long as a grant, so
 *           that refresh tokens and codes are held to it too (provider.ts findAccount). With a
           `scope`: only such tokens carrying that scope, which an operator or the client itself
           (RFC 7592) took from its `scope` metadata (narrowed below; refreshes are narrowed, and
           introspection and userinfo refuse such tokens from the client's record too:
           provider/resource-servers.ts heldByClientNow); they stay refused should the scope be put
           back. A verifier that ignores `scope` refuses more, never less.
 *   sub     every token issued to a person (its `sub`, under a grant: carrying `gid`) up to a
 *           moment: the person was disabled, an operator reset their password or revoked every
 *           grant they gave. One entry, written
 *           before anything else of that ending (accounts.ts endedAt), so that a store failure
 *           half-way through revoking their grants one by one leaves none of their tokens working.
 *   withdrawn
 *           every token issued to a person (under a grant) for one client, up to a moment: the person
 *           withdrew the app's access (the account page) or an operator revoked that person's grants
 *           to it (`latchkey grants revoke --user --client`). One entry first, as for `sub`, with the
 *           account's own cutoff for the client (accounts.ts clientGrantsEndedAt) for what outlives it.
 *   lifetime
 *           every token for one API (its `aud`) of people (under a grant) or of clients for themselves
 *           (no grant), issued up to a moment, lives at most so many seconds from its `iat`: the
 *           lifetime configured for them was lowered and the server restarted (lowerLifetime, main.ts
 *           at start). Introspection bounds them already (provider/patches/lifetimes-as-configured.ts,
 *           jwt-access-tokens.ts); this tells the APIs that verify JWTs locally.
 *   people  every access token issued to anyone on a person's behalf (under a grant), up to a moment: a
 *           second factor came to be required of everyone (accounts.mfa.required turned on at a start,
 *           revokeRaisedEverywhere), as `raised` below for one client. Refresh tokens are weighed at
 *           the token endpoint instead (patches/step-up.ts).
 *
 * Each entry lives only as long as a token it revokes could: its TTL ends at the token's `exp`
 * (jti) or one access token lifetime after the revocation (grant, client), plus clock skew (the
 * feed lists it to that `exp` plus FEED_RETENTION, the largest tolerance an API's helper takes); a kid
 * entry lives as long as its revoker says (until no verifier can still hold the key). That
 * lifetime is the longest of the writer's own settings and those every serving instance publishes
 * in the store (publishLifetimes), kept as long as what it issued can live: a token issued before
 * an operator shortened ttl.accessToken and restarted, or by a server whose settings the CLI
 * writing the entry does not share, outlives no entry that ends it. Every new
 * entry is appended, in the same atomic step, to a feed (a log trimmed to the access token
 * horizon) that resource servers read from a cursor. Layout, all in one hash tag ({rv}) so that
 * the entry and its feed line are one slot on Redis Cluster:
 *
 *   revoked:{rv}:jti:<jti>          "1"
 *   revoked:{rv}:grant:<gid>        epoch seconds of the latest revocation of the grant
 *   revoked:{rv}:grant-ended:<gid>  "1": the grant itself ended (endGrant), not only its tokens; no feed line
 *   revoked:{rv}:client:<client_id> epoch seconds of the latest removal of the client
 *   revoked:{rv}:kid:<kid>          epoch seconds of the key's revocation
 *   revoked:{rv}:client-grant:<client_id>:<scope>:<aud>
 *                                   epoch seconds the scope was last taken from the client at the API
 *                                   (client_id and scope URI-encoded; an empty scope: the whole grant)
 *   revoked:{rv}:api:<aud>          epoch seconds of the latest removal of the API
 *   revoked:{rv}:api-scope:<aud>:<scope>
 *                                   epoch seconds the scope was last taken out of the API (both URI-encoded;
 *                                   a scoped api entry on the feed)
 *   revoked:{rv}:lowered:<who>:<seconds>:<aud>
 *                                   epoch seconds up to which the API's tokens of `who` ("people", "clients") were
 *                                   bounded to `seconds` (aud URI-encoded; a lifetime entry on the feed)
 *   revoked:{rv}:sub:<sub>          epoch seconds of the latest ending of everything issued to the person
 *   revoked:{rv}:withdrawn:<sub>:<client_id>
 *                                   epoch seconds of the latest ending of what the person gave the client
 *   revoked:{rv}:delegated:<client_id>
 *                                   epoch seconds of the latest revocation of every grant the client holds
 *   revoked:{rv}:raised:<client_id>
 *                                   epoch seconds a requirement of the client (a second factor, DPoP) was last
 *                                   raised (its people's access tokens end; an unscoped delegated entry on the feed)
 *   revoked:{rv}:raised-everywhere  epoch seconds a second factor was last required of everyone (every person's
 *                                   access tokens end; a people entry on the feed)
 *   revoked:{rv}:narrowed:<client_id>:<scope>
 *                                   epoch seconds the scope was last taken from the client's `scope` metadata
 *                                   (URI-encoded; a scoped delegated entry on the feed)
 *   revoked:{rv}:operator-endings   "1" while a client_grant, narrowed, api or api-scope entry can matter
 *   revoked:{rv}:lifetimes          the lifetimes instances issue with ("access:<seconds>", "grant:<seconds>"),
 *                                   and how long the feed must keep its lines ("feed:<seconds>", a kid entry's horizon),
 *                                   and the servers' keys.publishLead and keys.refreshInterval ("lead:<seconds>",
 *                                   "refresh:<seconds>", keyring/index.ts rotationPolicy), and their session lifetimes
 *                                   ("session-idle:<seconds>", "session-max:<seconds>", main.ts: a start with shorter ones moves sessions' ends)
 *   revoked:{rv}:lifetime:<kind>:<seconds>
 *                                   "1" while a token or grant issued with that lifetime may live (publishLifetimes),
 *                                   or while a kid entry of that horizon matters (revokeKey)
 *   revoked:{rv}:feed               the feed (a Redis stream)
 *   revoked:{rv}:epoch              epoch seconds this store's memory begins at (see epoch(); kept ten years, not
 *                                   durable: the embedded store keeps no key with a TTL across a restart, nor this)
 */
import { createHash } from 'node:crypto';
import { epochSeconds } from '../clock.js';
import { LOG_ID, type CachedReads, type Kv, type LogEntry } from '../store/kv.js';
import { LIFETIMES_KEY, LIFETIMES_PREFIX, STORE_EPOCH_KEY, lifetimeKey, loweredLifetimeKey, OPERATOR_ENDINGS_KEY, REVOCATION_FEED_KEY, REVOKED_API_PREFIX, REVOKED_API_SCOPE_PREFIX, REVOKED_CLIENT_GRANT_PREFIX, REVOKED_CLIENT_PREFIX, REVOKED_DELEGATED_PREFIX, REVOKED_KID_PREFIX, REVOKED_RAISED_PREFIX, REVOKED_RAISED_EVERYWHERE_KEY, REVOKED_NARROWED_PREFIX, revokedApiKey, revokedApiScopeKey, revokedClientGrantKey, revokedClientKey, revokedDelegatedKey, endedGrantKey, revokedGrantKey, revokedJtiKey, revokedKidKey, revokedNarrowedKey, revokedRaisedKey, revokedSubjectKey, withdrawnKey } from '../store/keys.js';
import type { KeepsOwed } from '../store/due-endings.js';
import { NO_AUDIENCE } from '../apis/apis.js';

/**
 * How long the store's epoch is kept (seconds): as the revocation list, with a TTL, so that a store
 * that keeps no key with one (the embedded store across a restart) forgets it with the list. Once
 * gone it is stamped anew, which refuses what was issued before: far longer than anything lives.
 */
const EPOCH_KEPT = 10 * 365 * 86_400;

/** The claim that links a JWT access token to its grant. */
export const GRANT_CLAIM = 'gid';

const scopesOf = (scope: unknown) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);

/**
 * What a token says about its grant: a SHA-256 of the grant id (128 bits, base64url). Grant ids
 * are internal store keys; the hash names the grant without exposing them.
 */
export function grantHandle(grantId: string): string {
  return createHash('sha256').update(`latchkey grant ${grantId}`).digest('base64url').slice(0, 22);
}

/** A line of the feed, as resource servers receive it. */
export type RevocationEntry =
  /** Reject the token whose `jti` this is. Matters until `exp`. */
  | { readonly type: 'jti'; readonly jti: string; readonly exp: number }
  /** Reject tokens whose `gid` this is and whose `iat` is at or before `revoked_at`. Matters until `exp`. */
  | { readonly type: 'grant'; readonly gid: string; readonly revoked_at: number; readonly exp: number }
  /** Reject tokens whose `client_id` this is and whose `iat` is at or before `revoked_at` (the client was deleted). Matters until `exp`. */
  | { readonly type: 'client'; readonly client_id: string; readonly revoked_at: number; readonly exp: number }
  /** Reject every token whose JWS header names this `kid`, whatever its `iat` (the key is compromised). Matters until `exp`. */
  | { readonly type: 'kid'; readonly kid: string; readonly revoked_at: number; readonly exp: number }
  /**
   * Reject tokens whose `client_id` is this, whose `aud` is this, that carry no `gid` (the client's
   * own, client_credentials), whose `iat` is at or before `revoked_at` and that carry `scope` (an
   * operator took it from the client's grant at the API); without `scope`, every such token (the
   * whole grant was revoked). Matters until `exp`.
   */
  | { readonly type: 'client_grant'; readonly client_id: string; readonly aud: string; readonly scope?: string; readonly revoked_at: number; readonly exp: number }
  /**
   * Reject tokens whose `aud` is this and whose `iat` is at or before `revoked_at` (the API was
   * removed); with `scope`, only those that carry it (the API no longer offers it). Matters until `exp`.
   */
  | { readonly type: 'api'; readonly aud: string; readonly scope?: string; readonly revoked_at: number; readonly exp: number }
  /**
   * Reject tokens whose `sub` is this, that carry a `gid` (a person's, under a grant: never a
   * client's own), and whose `iat` is at or before `revoked_at` (the person was disabled, an
   * operator set their password or revoked every grant they gave). Matters until `exp`.
   */
  | { readonly type: 'sub'; readonly sub: string; readonly revoked_at: number; readonly exp: number }
  /**
   * Reject tokens whose `sub` and `client_id` are these, that carry a `gid` (a person's, under a
   * grant), and whose `iat` is at or before `revoked_at` (the person withdrew the client's access, or
   * an operator revoked that person's grants to it). Matters until `exp`.
   */
  | { readonly type: 'withdrawn'; readonly sub: string; readonly client_id: string; readonly revoked_at: number; readonly exp: number }
  /**
   * Reject tokens whose `client_id` is this, that carry a `gid` (held on a person's behalf, never the
   * client's own), and whose `iat` is at or before `revoked_at` (an operator revoked every grant the
   * client holds); with `scope`, only those that carry it (it was taken from the client's `scope`
   * metadata). Matters until `exp`.
   */
  | { readonly type: 'delegated'; readonly client_id: string; readonly scope?: string; readonly revoked_at: number; readonly exp: number }
  /**
   * Reject tokens that carry a `gid` (a person's, under a grant: never a client's own) and whose
   * `iat` is at or before `revoked_at` (a second factor came to be required of everyone). Matters until `exp`.
   */
  | { readonly type: 'people'; readonly revoked_at: number; readonly exp: number }
  /**
   * Reject tokens whose `aud` is this, that carry a `gid` (`who` "people") or carry none ("clients":
   * a client's own), whose `iat` is at or before `revoked_at`, once `seconds` have passed since their
   * `iat` (the lifetime configured for them was lowered): as if their `exp` were `iat + seconds`.
   * Matters until `exp`.
   */
  | { readonly type: 'lifetime'; readonly aud: string; readonly who: 'people' | 'clients'; readonly seconds: number; readonly revoked_at: number; readonly exp: number };

export interface FeedPage {
  readonly entries: RevocationEntry[];
  /** Pass back as `after` to continue; undefined while the feed is empty. */
  readonly cursor: string | undefined;
  /** More entries are waiting: ask again at once. */
  readonly more: boolean;
  /** Tokens issued before this second (epoch seconds) are revoked: the store's memory begins there (RevocationList.epoch). */
  readonly epoch: number;
}

/** Claims of a verified access token that the list looks at. */
export interface RevocableClaims {
  readonly jti?: unknown;
  readonly iat?: unknown;
  /** The person (under a grant) or the client (its own token). */
  readonly sub?: unknown;
  readonly client_id?: unknown;
  readonly aud?: unknown;
  readonly scope?: unknown;
  readonly [GRANT_CLAIM]?: unknown;
}

/** The JWS header of a verified token: which key signed it. */
export interface RevocableHeader {
  readonly kid?: unknown;
}

/** How long a token (access) and a grant (and so a refresh token) may live, and how long the feed keeps its lines, in seconds. */
export interface Lifetimes {
  readonly access: number;
  readonly grant: number;
  /** At least `access`; longer while a kid entry, which matters longer, is on the feed. */
  readonly feed: number;
  /** Anything signed (access and ID tokens): how long a retired signing key must stay published (keyring/index.ts rotationPolicy). At least `access`. */
  readonly signed: number;
  /**
   * Not a token's: the longest `keys.publishLead` of the instances (0: none said), how long a next
   * key must be published before it signs, their JWKS being cached half of it (keyring/index.ts
   * rotationPolicy, keyRevocationHorizon).
   */
  readonly lead: number;
  /** Not a token's: the longest `keys.refreshInterval` of the instances (0: none said), how long one may sign with a key retired elsewhere. */
  readonly refresh: number;
}

/**
 * Seconds the feed keeps listing an entry past the `exp` it carries: the largest `clockTolerance`
 * latchkey/resource-server allows (its MAX_CLOCK_TOLERANCE, equal to this: a unit test holds them
 * together), since a helper takes a token until its `exp` plus its own tolerance, and one started
 * (or restarted) after an entry left the feed never learns of the revocation (eighteenth passes, h17).
 */
export const FEED_RETENTION = 300;

export interface RevocationListOptions {
  /** Seconds added to each entry's life, matching the clock tolerance Latchkey's own verifiers allow. */
  readonly skew: number;
  /** Seconds the feed lists an entry past its `exp`, at least `skew`. Default FEED_RETENTION (tests give less). */
  readonly feedRetention?: number;
  /** The longest lifetime of an access token, in seconds: how long a grant entry matters. */
  readonly accessTokenLifetime: number;
  /** The longest lifetime of a grant (and so of its refresh tokens), in seconds: how long a delegated mark is kept. Default: accessTokenLifetime. */
  readonly grantLifetime?: number;
  /** The longest lifetime of anything signed (access and ID tokens), in seconds. Default: accessTokenLifetime. */
  readonly signedLifetime?: number;
  /** A server's `keys.publishLead`, in seconds, said with its lifetimes (Lifetimes.lead); none: not said. */
  readonly publishLead?: number;
  /** A server's `keys.refreshInterval`, in seconds, said with its lifetimes (Lifetimes.refresh); none: not said. */
  readonly refreshInterval?: number;
  /** A server's ttl.session and ttl.sessionMax, in seconds, said with its lifetimes (sessionLifetimesLowered); none: not said. */
  readonly sessionLifetimes?: { readonly idle: number; readonly max: number };
  /**
   * Keeps a person's ending owed while the account write between its two entries runs (accounts.ts
   * #endingEverything: one cut off after the write is finished by the sweep); without it, nothing is.
   */
  readonly owed?: KeepsOwed;
}

/** Whether a token issued at `iat` (epoch seconds; anything else counts as before) is at or before a mark (epoch seconds), if there is one. */
function issuedUpTo(mark: string | undefined, iat: unknown): boolean {
  return mark !== undefined && (typeof iat !== 'number' || iat <= Number(mark));
}

function toEntry({ fields }: LogEntry): RevocationEntry | undefined {
  const exp = Number(fields.exp);
  if (fields.type === 'jti' && fields.value) return { type: 'jti', jti: fields.value, exp };
  if (fields.type === 'grant' && fields.value) return { type: 'grant', gid: fields.value, revoked_at: Number(fields.at), exp };
  if (fields.type === 'client' && fields.value) return { type: 'client', client_id: fields.value, revoked_at: Number(fields.at), exp };
  if (fields.type === 'kid' && fields.value) return { type: 'kid', kid: fields.value, revoked_at: Number(fields.at), exp };
  if (fields.type === 'client_grant' && fields.value && fields.aud) {
    return { type: 'client_grant', client_id: fields.value, aud: fields.aud, ...(fields.scope ? { scope: fields.scope } : {}), revoked_at: Number(fields.at), exp };
  }
  if (fields.type === 'api' && fields.value) return { type: 'api', aud: fields.value, ...(fields.scope ? { scope: fields.scope } : {}), revoked_at: Number(fields.at), exp };
  if (fields.type === 'sub' && fields.value) return { type: 'sub', sub: fields.value, revoked_at: Number(fields.at), exp };
  if (fields.type === 'withdrawn' && fields.value && fields.client_id) return { type: 'withdrawn', sub: fields.value, client_id: fields.client_id, revoked_at: Number(fields.at), exp };
  if (fields.type === 'people') return { type: 'people', revoked_at: Number(fields.at), exp };
  if (fields.type === 'lifetime' && fields.value && (fields.who === 'people' || fields.who === 'clients') && Number(fields.seconds) > 0) {
    return { type: 'lifetime', aud: fields.value, who: fields.who, seconds: Number(fields.seconds), revoked_at: Number(fields.at), exp };
  }
  if (fields.type === 'delegated' && fields.value) return { type: 'delegated', client_id: fields.value, ...(fields.scope ? { scope: fields.scope } : {}), revoked_at: Number(fields.at), exp };
  return undefined;
}

export class RevocationList {
  readonly #kv: Kv;
  /**
   * The entries of deleted clients, compromised keys, narrowed operator grants and removed APIs, read through the store's cache that Redis
   * invalidates (store/tracked-cache.ts), as fresh as a read: a deleted client's opaque token is
   * then refused at introspection without a round trip of its own. Entries of tokens and grants,
   * one per token, are always read from the store.
   */
  readonly #rareMarks: CachedReads;
  readonly #skew: number;
  readonly #feedRetention: number;
  readonly #lifetime: number;
  readonly #grantLifetime: number;
  readonly #signedLifetime: number;
  readonly #publishLead: number;
  readonly #refreshInterval: number;
  readonly #sessionIdle: number;
  readonly #sessionMax: number;

  /** Keeps a person's ending owed while it runs (RevocationListOptions.owed). */
  readonly owed: KeepsOwed | undefined;

  constructor(kv: Kv, { skew, feedRetention, accessTokenLifetime, grantLifetime, signedLifetime, publishLead, refreshInterval, sessionLifetimes, owed }: RevocationListOptions) {
    this.#kv = kv;
    this.owed = owed;
    this.#rareMarks = kv.cachedReads?.([REVOKED_CLIENT_PREFIX, REVOKED_KID_PREFIX, REVOKED_CLIENT_GRANT_PREFIX, REVOKED_API_PREFIX, REVOKED_API_SCOPE_PREFIX, OPERATOR_ENDINGS_KEY, REVOKED_DELEGATED_PREFIX, REVOKED_RAISED_PREFIX, REVOKED_RAISED_EVERYWHERE_KEY, REVOKED_NARROWED_PREFIX, LIFETIMES_PREFIX, STORE_EPOCH_KEY]) ?? kv;
    this.#skew = skew;
    this.#feedRetention = Math.max(skew, feedRetention ?? FEED_RETENTION);
    this.#lifetime = accessTokenLifetime;
    this.#grantLifetime = Math.max(grantLifetime ?? 0, accessTokenLifetime);
    this.#signedLifetime = Math.max(signedLifetime ?? 0, accessTokenLifetime);
    this.#publishLead = publishLead ?? 0;
    this.#refreshInterval = Math.ceil(refreshInterval ?? 0);
    this.#sessionIdle = sessionLifetimes?.idle ?? 0;
    this.#sessionMax = sessionLifetimes?.max ?? 0;
  }

  /**
   * Says in the store how long what this instance issues may live (its settings), for `every`
   * seconds more than that: a server calls it before it issues anything and then every `every`
   * seconds, so that whoever writes an entry (another instance, one restarted with shorter
   * settings, the CLI with other settings) keeps it as long as those tokens live (lifetimes).
   */
  async publishLifetimes(every: number): Promise<void> {
    // Before the lifetimes: a store holding them was written by someone (epoch()).
    await this.epoch();
    await this.#publish('access', this.#lifetime, this.#lifetime + every + this.#skew);
    await this.#publish('grant', this.#grantLifetime, this.#grantLifetime + every + this.#skew);
    await this.#publish('signed', this.#signedLifetime, this.#signedLifetime + every + this.#skew);
    // Kept as long as a JWKS this server served may still be cached (half the lead) once it stops saying it.
    if (this.#publishLead > 0) await this.#publish('lead', this.#publishLead, Math.ceil(this.#publishLead / 2) + every + this.#skew);
    // As long as what this server signed with a key retired elsewhere, before it noticed, may live.
    if (this.#refreshInterval > 0) await this.#publish('refresh', this.#refreshInterval, this.#signedLifetime + this.#refreshInterval + every + this.#skew);
    // As long as a session saved under them may live: one restarted with shorter ones then knows
    // that sessions may end earlier than they were saved to (provider/backchannel-delivery.ts endsAsConfigured).
    if (this.#sessionIdle > 0) await this.#publish('session-idle', this.#sessionIdle, this.#sessionIdle + every + this.#skew);
    if (this.#sessionMax > 0) await this.#publish('session-max', this.#sessionMax, this.#sessionMax + every + this.#skew);
  }

  /**
   * The second (epoch seconds) before this store's memory begins: every token issued up to it is
   * revoked (isRevoked, and the feed's `epoch` for resource servers), as a cutoff is. A store that
   * lost everything (a Redis restarted with nothing on disk, flushed, or a replica promoted empty)
   * lost the revocation list with it, and a token revoked before worked again, at introspection and
   * at an API that started following the feed afterwards, for as long as it lived. Stamped when
   * absent: the first thing a server does (publishLifetimes, before it issues anything), and after a
   * loss by the first check or signature that finds it gone (main.ts), else by the next publication
   * (a minute): the second before the stamp's, on a store with nothing in it (what is issued from
   * then on stays valid; what was issued in the stamp's own second before the loss does too); 0 on a
   * store an earlier release wrote without one (its servers' published lifetimes are there), whose
   * list is whole.
   */
  async epoch(): Promise<number> {
    const stamped = await this.#rareMarks.get(STORE_EPOCH_KEY);
    return stamped === undefined ? this.#stampEpoch() : Number(stamped);
  }

  async #stampEpoch(): Promise<number> {
    const written = (await this.#kv.members(LIFETIMES_KEY)).length > 0;
    // The second before this one: what is issued from now on (in this second too) stays valid.
    const value = String(written ? 0 : epochSeconds() - 1);
    if (await this.#kv.set(STORE_EPOCH_KEY, value, { ttl: EPOCH_KEPT, onlyIfAbsent: true })) return Number(value);
    return Number((await this.#kv.get(STORE_EPOCH_KEY)) ?? value); // another stamped it first
  }

  /** `kind:seconds` holds for `ttl` seconds from now (lifetimes). */
  async #publish(kind: 'access' | 'grant' | 'feed' | 'signed' | 'lead' | 'refresh' | 'session-idle' | 'session-max', seconds: number, ttl: number): Promise<void> {
    const member = `${kind}:${seconds}`;
    // The epoch before any lifetime: a store holding lifetimes but no epoch is taken for one an
    // earlier release wrote (epoch 0, nothing refused by it). publishLifetimes stamps it first; a key's
    // revocation (revokeKey, the CLI's) on a store that lost everything did not, and made every token
    // revoked before the loss valid again (fourteenth passes, blips-fourteenth). A cached read once stamped.
    await this.epoch();
    // The key first: a member whose key is gone is read as gone.
    await this.#kv.set(lifetimeKey(member), '1', { ttl });
    await this.#kv.addToSet(LIFETIMES_KEY, member, ttl);
  }

  /**
   * The longest lifetimes a token or grant issued up to now may have: this writer's own settings,
   * or longer ones an instance published (publishLifetimes) that may still have tokens alive.
   * Cached reads (store/tracked-cache.ts), as fresh as a read.
   */
  async lifetimes(): Promise<Lifetimes> {
    let access = this.#lifetime;
    let grant = this.#grantLifetime;
    let signed = this.#signedLifetime;
    let lead = this.#publishLead;
    let refresh = this.#refreshInterval;
    let feed = 0;
    for (const [kind, seconds] of await this.#published()) {
      if (kind === 'access') access = Math.max(access, seconds);
      if (kind === 'grant') grant = Math.max(grant, seconds);
      if (kind === 'feed') feed = Math.max(feed, seconds);
      if (kind === 'signed') signed = Math.max(signed, seconds);
      if (kind === 'lead') lead = Math.max(lead, seconds);
      if (kind === 'refresh') refresh = Math.max(refresh, seconds);
    }
    return { access, grant: Math.max(grant, access), feed: Math.max(feed, access), signed: Math.max(signed, access), lead, refresh };
  }

  /**
   * Whether sessions may have been saved under longer session lifetimes than this server's: an
   * instance said longer ones, or none said any (a store a release before the thirteenth fresh-eyes
   * passes wrote, which said none: its sessions' lifetimes are unknown; or a new store, with no
   * session to read). Read before this server says its own (publishLifetimes).
   */
  async sessionLifetimesLowered(): Promise<boolean> {
    const said = (await this.#published()).filter(([kind]) => kind === 'session-idle' || kind === 'session-max');
    return !said.length || said.some(([kind, seconds]) => seconds > (kind === 'session-idle' ? this.#sessionIdle : this.#sessionMax));
  }

  /** The lifetimes instances published that are still alive, as [kind, seconds]. */
  async #published(): Promise<[string, number][]> {
    const members = await this.#rareMarks.members(LIFETIMES_KEY);
    const alive = await Promise.all(members.map(async (member) => ((await this.#rareMarks.get(lifetimeKey(member))) === undefined ? undefined : member)));
    return alive.flatMap((member) => {
      const [kind = '', value] = member?.split(':') ?? [];
      const seconds = Number(value);
      return Number.isSafeInteger(seconds) && seconds > 0 ? [[kind, seconds] as [string, number]] : [];
    });
  }

  /**
   * Revokes one token until its `exp` (epoch seconds). A token expired longer ago than any verifier
   * takes it needs no entry. False if already revoked. The mark and the feed's entry are both kept to
   * `exp` plus FEED_RETENTION, as an API's helper may take the token that long (a token revoked after
   * `exp` plus the skew was not listed at all: eighteenth passes, h17; the mark kept only to `exp` plus
   * the skew let a revocation repeated later append a line each time: h21).
   */
  async revokeToken(jti: string, exp: number): Promise<boolean> {
    const left = exp - epochSeconds();
    if (left + this.#feedRetention <= 0) return false;
    const fields = { type: 'jti', value: jti, exp: String(exp) };
    const { feed } = await this.lifetimes();
    // The mark lives as long as the feed lists the entry (not only to exp plus our skew, where
    // Latchkey stops taking the token): it is what makes a second revocation of the token a no-op,
    // and kept to exp + skew (at least 1 s) it let a client revoking its own expired token again
    // each second append a line every API reads, ~285 for one token (review of the eighteenth
    // passes, h21). Latchkey refuses the token past exp + skew whether or not the mark is there.
    return (await this.#kv.raiseMarkAndLog(revokedJtiKey(jti), 1, left + this.#feedRetention, REVOCATION_FEED_KEY, fields, feed + this.#feedRetention)) !== undefined;
  }

  /**
   * Revokes every access token of a grant issued up to now. Idempotent within a second (the grant
   * is revoked once per model by oidc-provider): false when nothing new was recorded.
   */
  async revokeGrant(grantId: string): Promise<boolean> {
    return this.#revokeUpToNow('grant', revokedGrantKey, grantHandle(grantId));
  }

  /**
   * Records that grant `grantId` itself ends, before its record is deleted (the store's Grant
   * destroy: an app's RFC 7009 revocation of a token, a refresh token's reuse, a code's replay, a
   * sign-out, `grants revoke`): an ending, told apart by its kind from revokeGrant alone, which also
   * revokes the tokens of grants that are kept (a sign-out keeping offline access, grants.ts
   * endSessionBound). Kept as long as the grant's entry.
   */
  async endGrant(grantId: string): Promise<void> {
    await this.#kv.set(endedGrantKey(grantHandle(grantId)), '1', { ttl: (await this.lifetimes()).access + this.#skew });
  }

  /**
   * Whether grant `grantId` ended (endGrant; read from Redis, not a cache). A grant's id is never
   * given again, so a grant that ended never comes back: a consent page that took it up before its
   * record was deleted must not write it back. Its tokens' revocation alone (the grant kept, as a
   * sign-out keeping offline access keeps it) is not an ending, whenever it came.
   */
  async grantWasEnded(grantId: string): Promise<boolean> {
    return (await this.#kv.get(endedGrantKey(grantHandle(grantId)))) !== undefined;
  }

  /**
   * revokeGrant by the handle a token carries (its `gid`), for a grant known only from one of its
   * tokens (revoking a person's JWT access token ends its grant's, whether or not the grant is still stored).
   */
  async revokeGrantHandle(gid: string): Promise<boolean> {
    return this.#revokeUpToNow('grant', revokedGrantKey, gid);
  }

  /**
   * Revokes every access token issued to a client up to now (the client is being deleted): a
   * person's tokens issued to it and its own client_credentials tokens, JWT ones; the store deletes
   * the opaque ones. A client made later with the same id gets tokens issued after this moment, so
   * they work; tokens issued within the same second are refused too. False if already recorded.
   */
  async revokeClient(clientId: string): Promise<boolean> {
    return this.#revokeUpToNow('client', revokedClientKey, clientId);
  }

  /** Epoch seconds a client of this id was last deleted, while that can still matter (its client entry); a cached read. */
  async clientRemovedAt(clientId: string): Promise<number | undefined> {
    const mark = await this.#rareMarks.get(revokedClientKey(clientId));
    return mark === undefined ? undefined : Number(mark);
  }

  /**
   * Revokes every token signed by a key, whatever its `iat` (the key is compromised), for `horizon`
   * seconds: until no verifier can still hold the key (its cached JWKS) nor a token it signed.
   */
  async revokeKey(kid: string, horizon: number): Promise<boolean> {
    // The feed keeps its lines that long from now on (a kid entry matters longer than the access
    // token horizon the feed is trimmed to): a reader starting later, or coming back with an old
    // cursor (its JWKS cache may still hold the key), is still told. Before the entry.
    const matters = Math.max(horizon, (await this.lifetimes()).access);
    await this.#publish('feed', matters, matters + this.#skew);
    return this.#revokeUpToNow('kid', revokedKidKey, kid, { horizon });
  }

  /**
   * Whether a key is revoked (its kid entry), asked where that costs no round trip: the store's
   * tracked cache, or the embedded store's memory. Undefined where each answer would be a read of
   * its own (Redis Cluster, which has no cache): asked before every signature, that would be a
   * round trip on every token (keyring/service.ts ready).
   */
  keyRevokedCheck(): ((kid: string) => Promise<boolean>) | undefined {
    if (this.#rareMarks === this.#kv && this.#kv.kind !== 'embedded') return undefined;
    return (kid) => this.keyRevoked(kid);
  }

  /** Whether a key is revoked (its kid entry): a read of its own where there is no cache (Redis Cluster), so for rare paths. */
  async keyRevoked(kid: string): Promise<boolean> {
    return (await this.#rareMarks.get(revokedKidKey(kid))) !== undefined;
  }

  /**
   * Bounds the tokens for API `aud` issued up to now, of people (`who` "people") or of clients for
   * themselves ("clients"), to `seconds` from their `iat`: the lifetime configured for them now, lower
   * than one they may have been issued with. A lifetime entry on the feed; the mark only makes it
   * idempotent within a second (introspection bounds such tokens by the configuration itself).
   */
  async lowerLifetime(aud: string, who: 'people' | 'clients', seconds: number): Promise<boolean> {
    return this.#revokeUpToNow('lifetime', () => loweredLifetimeKey(aud, who, seconds), aud, { extra: { who, seconds: String(seconds) } });
  }

  /**
   * Revokes the tokens a client got for itself (client_credentials) for one API up to now that
   * carry one of `scopes` (an operator took them from its grant there), or all of them (`scopes`
   * undefined: the whole grant was revoked).
   */
  async revokeClientGrant(clientId: string, aud: string, scopes?: readonly string[]): Promise<boolean> {
    await this.#operatorEndings();
    const revoked = await Promise.all(
      (scopes ?? ['']).map((scope) => this.#revokeUpToNow('client_grant', () => revokedClientGrantKey(clientId, scope, aud), clientId, { extra: { aud, ...(scope ? { scope } : {}) } })),
    );
    return revoked.some(Boolean);
  }

  /** Epoch seconds an API of this identifier was last removed, while that can still matter (its api entry); a cached read. */
  async apiRemovedAt(aud: string): Promise<number | undefined> {
    const mark = await this.#rareMarks.get(revokedApiKey(aud));
    return mark === undefined ? undefined : Number(mark);
  }

  /** Revokes every token for an API up to now (the API was removed), a person's and a client's own. */
  async revokeApi(aud: string): Promise<boolean> {
    await this.#operatorEndings();
    return this.#revokeUpToNow('api', revokedApiKey, aud);
  }

  /**
   * Revokes every token for an API up to now that carries one of `scopes`, a person's and a client's
   * own: the API, which stays, no longer offers them (taken out of its configuration). Introspection
   * refuses such tokens from the API as it is (resource-servers.ts heldByApiNow) and refreshes are
   * narrowed; this tells the APIs that verify JWTs locally (the feed), and outlives the scope put back.
   */
  async revokeApiScopes(aud: string, scopes: readonly string[]): Promise<boolean> {
    if (!scopes.length) return false;
    await this.#operatorEndings();
    const revoked = await Promise.all(scopes.map((scope) => this.#revokeUpToNow('api', () => revokedApiScopeKey(aud, scope), aud, { extra: { scope } })));
    return revoked.some(Boolean);
  }

  /**
   * Revokes every token issued to a person up to now (access tokens under any of their grants, JWT
   * and opaque), in one atomic step with its feed line: the first thing done when a person is
   * disabled, their password set by an operator or every grant they gave revoked, so that what
   * follows (their grants revoked one by one) may fail half-way and leave nothing working. Refresh
   * tokens, codes and sessions, which outlive this entry, are held to the account's own cutoff
   * (accounts.ts endedAt, or grantsEndedAt with the sessions kept). False if already recorded this second.
   */
  async revokeSubject(sub: string): Promise<boolean> {
    return this.#revokeUpToNow('sub', revokedSubjectKey, sub);
  }

  /**
   * Revokes every token issued to a person for one client up to now (access tokens under any of
   * their grants to it, JWT and opaque), in one atomic step with its feed line: the first thing done
   * when the person withdraws the client's access, so that what follows (the consent forgotten, the
   * grants revoked one by one) may fail half-way and leave nothing working. Refresh tokens, codes and
   * consents, which outlive this entry, are held to the account's cutoff for the client
   * (accounts.ts clientGrantsEndedAt). False if already recorded this second.
   */
  async revokeWithdrawn(sub: string, clientId: string): Promise<boolean> {
    return this.#revokeUpToNow('withdrawn', () => withdrawnKey(sub, clientId), sub, { extra: { client_id: clientId } });
  }

  /** How long a grant (and so a refresh token or consent) may live, in seconds: how long a cutoff held by the account must be kept (lifetimes). */
  async grantLifetime(): Promise<number> {
    return (await this.lifetimes()).grant;
  }

  /**
   * Revokes every token a client holds on people's behalf up to now (an operator revokes every grant
   * it holds), first and in one atomic step with its feed line: what follows (the grants revoked one
   * by one) may then fail half-way and leave none working. The mark is kept as long as a grant lives:
   * refresh tokens and codes are held to it too (delegatedEnded). Its own client_credentials tokens
   * are untouched. False if already recorded this second.
   */
  async revokeDelegated(clientId: string): Promise<boolean> {
    return this.#revokeUpToNow('delegated', revokedDelegatedKey, clientId, { keptAsGrants: true });
  }

  /**
   * Revokes every access token the client holds on people's behalf up to now: a requirement of it
   * was raised, the sign-in level (`require_mfa`) or sender-constrained tokens
   * (`dpop_bound_access_tokens`), and one of a weaker sign-in or a bearer one would otherwise stay good
   * to its `exp` at introspection, userinfo and every API, where a refresh of it is refused or bound
   * (tenth fresh-eyes pass). Those that met it end too (an opaque token keeps no level): their refresh
   * tokens, codes and device codes, weighed at the token endpoint (patches/step-up.ts, the engine's
   * DPoP check), are not ended, so such an app refreshes. On the feed an unscoped delegated entry: an
   * API sees access tokens only.
   */
  async revokeRaised(clientId: string): Promise<boolean> {
    return this.#revokeUpToNow('delegated', revokedRaisedKey, clientId);
  }

  /**
   * Revokes every access token held on people's behalf up to now, whatever its client: a second
   * factor came to be required of everyone (accounts.mfa.required turned on at a start), and one of a
   * password-only sign-in would otherwise stay good to its `exp` at introspection, userinfo and every
   * API, as revokeRaised says for one client. On the feed a `people` entry.
   */
  async revokeRaisedEverywhere(): Promise<boolean> {
    return this.#revokeUpToNow('people', () => REVOKED_RAISED_EVERYWHERE_KEY, '');
  }

  /** When revokeRaisedEverywhere last ended people's access tokens (epoch seconds), if that still matters; read from Redis. */
  async raisedEverywhereAt(): Promise<number | undefined> {
    const mark = await this.#kv.get(REVOKED_RAISED_EVERYWHERE_KEY);
    return mark === undefined ? undefined : Number(mark);
  }

  /** Seconds a token issued now may be accepted for: the longest access token lifetime any instance publishes, and the clock skew. */
  async accessLivesFor(): Promise<number> {
    return (await this.lifetimes()).access + this.#skew;
  }

  /**
   * Revokes every token the client holds on people's behalf up to now that carries one of `scopes`:
   * they were taken from its `scope` metadata (an operator's update, or its own with RFC 7592).
   * Introspection refuses such tokens from the client's record already (resource-servers.ts
   * heldByClientNow) and refreshes are narrowed; this tells the APIs that verify JWTs locally (the
   * feed). Its refresh tokens and codes are not ended: they are narrowed to the client as it is now.
   */
  async revokeNarrowed(clientId: string, scopes: readonly string[]): Promise<boolean> {
    if (!scopes.length) return false;
    await this.#operatorEndings();
    const revoked = await Promise.all(scopes.map((scope) => this.#revokeUpToNow('delegated', () => revokedNarrowedKey(clientId, scope), clientId, { extra: { scope } })));
    return revoked.some(Boolean);
  }

  /**
   * Whether a token, code or refresh token the client holds on a person's behalf, issued at `iat`,
   * was revoked with every grant it holds (revokeDelegated). A cached read (store/tracked-cache.ts):
   * on the token endpoint it goes with the account's read, no round trip of its own.
   */
  async delegatedEnded(clientId: unknown, iat: unknown, fresh = false): Promise<boolean> {
    if (typeof clientId !== 'string') return false;
    // `fresh`: from Redis, not the cache (whose invalidation may still be on its way): a check made
    // after a write, to learn whether an ending's mark was written before it.
    const mark = await (fresh ? this.#kv : this.#rareMarks).get(revokedDelegatedKey(clientId));
    return issuedUpTo(mark, iat);
  }

  /**
   * Starts delegatedEnded's read for a token request that names `clientId` (with its account's: one
   * round trip), where no cache answers it (Redis Cluster); the cache answers it otherwise.
   */
  readDelegatedAhead(clientId: string): void {
    if (this.#rareMarks === this.#kv) this.#kv.readAhead?.({ strings: [revokedDelegatedKey(clientId)] });
  }

  /** Before the entry: a check that sees the entry sees this too (it outlives the entry by a second). */
  async #operatorEndings(): Promise<void> {
    await this.#kv.set(OPERATOR_ENDINGS_KEY, '1', { ttl: (await this.lifetimes()).access + this.#skew + 1 });
  }

  /**
   * What it revokes matters for the longest access token lifetime (lifetimes), or `horizon` if that
   * is longer (the feed entry's `exp`); the mark is kept that long, or as long as a grant lives
   * (`keptAsGrants`). The feed keeps one access token lifetime, plus skew (longer while a kid entry matters).
   */
  async #revokeUpToNow(
    type: string,
    key: (value: string) => string,
    value: string,
    { horizon = 0, extra = {}, keptAsGrants = false }: { horizon?: number; extra?: Record<string, string>; keptAsGrants?: boolean } = {},
  ): Promise<boolean> {
    const lifetimes = await this.lifetimes();
    const matters = Math.max(horizon, lifetimes.access);
    const kept = keptAsGrants ? Math.max(lifetimes.grant, matters) : matters;
    const at = epochSeconds();
    const fields = { type, value, ...extra, at: String(at), exp: String(at + matters) };
    return (await this.#kv.raiseMarkAndLog(key(value), at, kept + this.#skew, REVOCATION_FEED_KEY, fields, lifetimes.feed + this.#feedRetention)) !== undefined;
  }

  /**
   * Whether a verified token is revoked: by its jti, its grant, its person (`sub`, for a token under a
   * grant), its person's withdrawal of its client, its client, the key that signed it
   * (`header.kid`), its API (`aud`, whole or a scope it carries that the API no longer offers), or,
   * for a client's own token (no grant), the client's grant at its API (whole, or a scope it carries);
   * for a person's, a scope it carries taken from its client's `scope`. One round trip (the store pipelines the reads; the rare
   * marks come from the cache), and a second only while an operator's ending can matter.
   * `ownToken`: whether the token is the client's own (client_credentials); a JWT says so by
   * carrying no grant claim, an opaque token's model says it. `refreshToken`: an opaque refresh token
   * at introspection, which a raised requirement does not end (revokeRaised: its refresh is weighed
   * at the token endpoint), so its mark is not read.
   */
  async isRevoked(claims: RevocableClaims, header: RevocableHeader = {}, ownToken = claims[GRANT_CLAIM] === undefined, refreshToken = false): Promise<boolean> {
    const { jti, iat, client_id: clientId, sub } = claims;
    const gid = claims[GRANT_CLAIM];
    const named = [claims.aud].flat().filter((aud): aud is string => typeof aud === 'string');
    // A client's own token got without naming an API is ended as the client's grant "at" NO_AUDIENCE.
    const audiences = ownToken && !named.length ? [NO_AUDIENCE] : named;
    const { kid } = header;
    const read = (value: unknown, key: (value: string) => string, from: CachedReads = this.#kv) => (typeof value === 'string' ? from.get(key(value)) : undefined);
    const [byJti, byGrant, bySubject, byWithdrawal, byDelegation, byLevel, byLevelEverywhere, byClient, byKid, operatorEndings, stamped] = await Promise.all([
      read(jti, revokedJtiKey),
      read(gid, revokedGrantKey),
      // A person's token only: a client's own token's sub is the client, whose id may be anything.
      ownToken ? undefined : read(sub, revokedSubjectKey),
      ownToken || typeof clientId !== 'string' ? undefined : read(sub, (person) => withdrawnKey(person, clientId)),
      ownToken ? undefined : read(clientId, revokedDelegatedKey, this.#rareMarks),
      ownToken || refreshToken ? undefined : read(clientId, revokedRaisedKey, this.#rareMarks),
      ownToken || refreshToken ? undefined : this.#rareMarks.get(REVOKED_RAISED_EVERYWHERE_KEY),
      read(clientId, revokedClientKey, this.#rareMarks),
      read(kid, revokedKidKey, this.#rareMarks),
      // An API's or a client grant's entries, or (a person's token, with or without an API) its client's narrowed scopes.
      audiences.length || (!ownToken && typeof clientId === 'string') ? this.#rareMarks.get(OPERATOR_ENDINGS_KEY) : undefined,
      this.#rareMarks.get(STORE_EPOCH_KEY),
    ]);
    if (byJti !== undefined || byKid !== undefined) return true;
    // Issued before the store's memory begins (or in its second): what ended it may be on no list any more.
    if (typeof iat === 'number' && iat <= (stamped === undefined ? await this.#stampEpoch() : Number(stamped))) return true;
    const issuedBy = (mark: string | undefined) => issuedUpTo(mark, iat);
    if (issuedBy(byGrant) || issuedBy(bySubject) || issuedBy(byWithdrawal) || issuedBy(byDelegation) || issuedBy(byLevel) || issuedBy(byLevelEverywhere) || issuedBy(byClient)) return true;
    if (operatorEndings === undefined) return false;
    const byApi = await Promise.all([
      ...named.map((aud) => this.#rareMarks.get(revokedApiKey(aud))),
      ...named.flatMap((aud) => scopesOf(claims.scope).map((scope) => this.#rareMarks.get(revokedApiScopeKey(aud, scope)))),
      ...(ownToken && typeof clientId === 'string'
        ? audiences.flatMap((aud) => ['', ...scopesOf(claims.scope)].map((scope) => this.#rareMarks.get(revokedClientGrantKey(clientId, scope, aud))))
        : []),
      ...(!ownToken && typeof clientId === 'string' ? scopesOf(claims.scope).map((scope) => this.#rareMarks.get(revokedNarrowedKey(clientId, scope))) : []),
    ]);
    return byApi.some(issuedBy);
  }

  /**
   * Entries after `after` (a cursor from an earlier page), or from the start of what is kept
   * (that is, every revocation that still matters). Entries that no longer matter are left out.
   */
  async feed(after: string | undefined, limit: number): Promise<FeedPage> {
    if (after !== undefined && !LOG_ID.test(after)) throw new RangeError('not a feed cursor');
    const [lines, epoch] = await Promise.all([this.#kv.readLog(REVOCATION_FEED_KEY, after, limit), this.epoch()]);
    const now = epochSeconds();
    const entries = lines.map(toEntry).filter((entry): entry is RevocationEntry => !!entry && entry.exp + this.#feedRetention >= now);
    return { entries, cursor: lines.at(-1)?.id ?? after, more: lines.length === limit, epoch };
  }
}
