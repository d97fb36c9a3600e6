/**
 * Where and when each sign-in session was last seen, for the account page's list of sessions: the
 * browser's User-Agent and address as of its last visit to the authorization endpoint (which is
 * where a sign-in ends, and where every app's sign-in passes) or to the account page.
 *
 * Kept beside the provider's session record rather than in it, keyed by the session's uid (which,
 * unlike its id, stays the same when the id is renewed at sign-in): one write of a small string per
 * authorization request, sent with the code and the session (one round trip: see
 * provider/patches/deferred-consumption.ts), nothing on the token, introspection or JWKS paths.
 * It is written at every visit, not only once a while: a visit from another address or browser
 * must show at once (a stolen session cookie is what the list is for), and knowing whether the
 * stored one differs would cost a read, which costs what the write does.
 *
 * Layout: session-seen:<session uid> → JSON, expiring with the longest session (ttl.session).
 */
import type { Context } from 'koa';
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { Kv } from '../store/kv.js';
import { sessionSeenKey } from '../store/keys.js';

export interface SeenAt {
  readonly userAgent: string;
  readonly ip: string;
  /** Epoch seconds. */
  readonly at: number;
}

/** Enough of a User-Agent to name the browser and device (they run to a few hundred characters). */
const MAX_USER_AGENT = 512;

/** Seconds a visit from the same browser and address is not written again at the authorization endpoint. */
export const SEEN_STEP = 60;
/** Sessions whose last written visit a process keeps (for SEEN_STEP); past this many, the oldest go first. */
const REMEMBERED = 10_000;

export class SessionActivity {
  /** What this process last wrote, by session uid (REMEMBERED at most). */
  readonly #written = new Map<string, SeenAt>();

  constructor(
    private readonly kv: Kv,
    /** The longest a session lives (ttl.session). */
    private readonly ttl: number,
  ) {}

  /** Records that the session `sessionUid` was used now, from this request's browser and address. */
  async seen(sessionUid: string, ctx: Context): Promise<void> {
    await this.#write(sessionUid, this.#visit(ctx));
  }

  #visit(ctx: Context): SeenAt {
    return { userAgent: ctx.get('user-agent').slice(0, MAX_USER_AGENT), ip: ctx.ip, at: Math.floor(Date.now() / 1000) };
  }

  async #write(sessionUid: string, seen: SeenAt): Promise<void> {
    // Forgotten first: a write that fails leaves nothing that would skip the next visit.
    this.#written.delete(sessionUid);
    await this.kv.set(sessionSeenKey(sessionUid), JSON.stringify(seen), { ttl: this.ttl });
    if (this.#written.size >= REMEMBERED) this.#written.delete(this.#written.keys().next().value!);
    this.#written.set(sessionUid, seen);
  }

  /** Whether this process wrote the same browser and address for the session less than SEEN_STEP seconds before `seen`. */
  #unchanged(sessionUid: string, seen: SeenAt): boolean {
    const written = this.#written.get(sessionUid);
    return written !== undefined && written.userAgent === seen.userAgent && written.ip === seen.ip && seen.at - written.at < SEEN_STEP && seen.at >= written.at;
  }

  async of(sessionUid: string): Promise<SeenAt | undefined> {
    const json = await this.kv.get(sessionSeenKey(sessionUid));
    return json ? (JSON.parse(json) as SeenAt) : undefined;
  }

  async forget(sessionUid: string): Promise<void> {
    this.#written.delete(sessionUid);
    await this.kv.del([sessionSeenKey(sessionUid)]);
  }

  /**
   * Once the authorization endpoint (or its resume path) has answered: records a signed-in
   * session's visit, started at once (settleDeferredConsumption's `alongside`); undefined when there
   * is nothing to record, or nothing new (SEEN_STEP).
   */
  recordAtAuthorization(provider: Provider): (ctx: Context) => Promise<void> | undefined {
    const path = provider.pathFor('authorization');
    return (ctx) => {
      if (ctx.path !== path && !ctx.path.startsWith(`${path}/`)) return undefined;
      const session = (ctx as unknown as KoaContextWithOIDC).oidc?.session;
      if (!session?.accountId || !session.uid || (session as { destroyed?: boolean }).destroyed) return undefined;
      const seen = this.#visit(ctx);
      return this.#unchanged(session.uid, seen) ? undefined : this.#write(session.uid, seen);
    };
  }
}
