/**
 * The revocation list. A signed JWT cannot be recalled, so whoever accepts one asks this list
 * (introspection does; resource servers follow its feed). Two kinds of entry:
 *
 *   jti    one access token, until its `exp`
 *   grant  every access token of a grant issued up to a moment: tokens carry the claim `gid`, a
 *          hash of their grant's id (grantHandle), so revoking a grant (refresh token reuse, code
 *          replay, sign-out, `latchkey grants revoke`) costs one entry however many tokens it
 *          issued, and issuing a token costs no store access at all.
 *
 * Each entry lives only as long as a token it revokes could: its TTL ends at the token's `exp`
 * (jti) or one access token lifetime after the revocation (grant), plus clock skew. Every new
 * entry is appended, in the same atomic step, to a feed (a log trimmed to the same horizon) that
 * resource servers read from a cursor. Layout, all in one hash tag ({rv}) so that the entry and
 * its feed line are one slot on Redis Cluster:
 *
 *   revoked:{rv}:jti:<jti>     "1"
 *   revoked:{rv}:grant:<gid>   epoch seconds of the latest revocation of the grant
 *   revoked:{rv}:feed          the feed (a Redis stream)
 */
import { createHash } from 'node:crypto';
import { LOG_ID, type Kv, type LogEntry } from '../store/kv.js';

/** The claim that links a JWT access token to its grant. */
export const GRANT_CLAIM = 'gid';

const jtiKey = (jti: string) => `revoked:{rv}:jti:${jti}`;
const grantKey = (gid: string) => `revoked:{rv}:grant:${gid}`;
const FEED_KEY = 'revoked:{rv}:feed';

const epochSeconds = () => Math.floor(Date.now() / 1000);

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
  | { readonly type: 'grant'; readonly gid: string; readonly revoked_at: number; readonly exp: number };

export interface FeedPage {
  readonly entries: RevocationEntry[];
  /** Pass back as `after` to continue; undefined while the feed is empty. */
  readonly cursor: string | undefined;
  /** More entries are waiting: ask again at once. */
  readonly more: boolean;
}

/** Claims of a verified access token that the list looks at. */
export interface RevocableClaims {
  readonly jti?: unknown;
  readonly iat?: unknown;
  readonly [GRANT_CLAIM]?: unknown;
}

export interface RevocationListOptions {
  /** Seconds added to each entry's life, matching the clock tolerance verifiers allow. */
  readonly skew: number;
  /** The longest lifetime of an access token, in seconds: how long a grant entry matters. */
  readonly accessTokenLifetime: number;
}

function toEntry({ fields }: LogEntry): RevocationEntry | undefined {
  const exp = Number(fields.exp);
  if (fields.type === 'jti' && fields.value) return { type: 'jti', jti: fields.value, exp };
  if (fields.type === 'grant' && fields.value) return { type: 'grant', gid: fields.value, revoked_at: Number(fields.at), exp };
  return undefined;
}

export class RevocationList {
  readonly #kv: Kv;
  readonly #skew: number;
  readonly #lifetime: number;

  constructor(kv: Kv, { skew, accessTokenLifetime }: RevocationListOptions) {
    this.#kv = kv;
    this.#skew = skew;
    this.#lifetime = accessTokenLifetime;
  }

  /** The feed keeps what can still matter: one access token lifetime, plus skew. */
  get #retain() {
    return this.#lifetime + this.#skew;
  }

  /** Revokes one token until its `exp` (epoch seconds). An expired token needs no entry. False if already revoked. */
  async revokeToken(jti: string, exp: number): Promise<boolean> {
    const ttl = exp - epochSeconds() + this.#skew;
    if (ttl <= 0) return false;
    const fields = { type: 'jti', value: jti, exp: String(exp) };
    return (await this.#kv.raiseMarkAndLog(jtiKey(jti), 1, ttl, FEED_KEY, fields, this.#retain)) !== undefined;
  }

  /**
   * Revokes every access token of a grant issued up to now. Idempotent within a second (the grant
   * is revoked once per model by oidc-provider): false when nothing new was recorded.
   */
  async revokeGrant(grantId: string): Promise<boolean> {
    const gid = grantHandle(grantId);
    const at = epochSeconds();
    const exp = at + this.#lifetime;
    const fields = { type: 'grant', value: gid, at: String(at), exp: String(exp) };
    return (await this.#kv.raiseMarkAndLog(grantKey(gid), at, this.#lifetime + this.#skew, FEED_KEY, fields, this.#retain)) !== undefined;
  }

  /** Whether a verified token is revoked: by its jti, or by its grant (one round trip). */
  async isRevoked(claims: RevocableClaims): Promise<boolean> {
    const { jti, iat } = claims;
    const gid = claims[GRANT_CLAIM];
    const [byJti, byGrant] = await Promise.all([
      typeof jti === 'string' ? this.#kv.get(jtiKey(jti)) : undefined,
      typeof gid === 'string' ? this.#kv.get(grantKey(gid)) : undefined,
    ]);
    if (byJti !== undefined) return true;
    return byGrant !== undefined && (typeof iat !== 'number' || iat <= Number(byGrant));
  }

  /**
   * Entries after `after` (a cursor from an earlier page), or from the start of what is kept
   * (that is, every revocation that still matters). Entries that no longer matter are left out.
   */
  async feed(after: string | undefined, limit: number): Promise<FeedPage> {
    if (after !== undefined && !LOG_ID.test(after)) throw new RangeError('not a feed cursor');
    const lines = await this.#kv.readLog(FEED_KEY, after, limit);
    const now = epochSeconds();
    const entries = lines.map(toEntry).filter((entry): entry is RevocationEntry => !!entry && entry.exp + this.#skew >= now);
    return { entries, cursor: lines.at(-1)?.id ?? after, more: lines.length === limit };
  }
}
