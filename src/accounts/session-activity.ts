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

export interface SeenAt {
  readonly userAgent: string;
  readonly ip: string;
  /** Epoch seconds. */
  readonly at: number;
}

/** Enough of a User-Agent to name the browser and device (they run to a few hundred characters). */
const MAX_USER_AGENT = 512;

const key = (sessionUid: string) => `session-seen:${sessionUid}`;

export class SessionActivity {
  constructor(
    private readonly kv: Kv,
    /** The longest a session lives (ttl.session). */
    private readonly ttl: number,
  ) {}

  /** Records that the session `sessionUid` was used now, from this request's browser and address. */
  async seen(sessionUid: string, ctx: Context): Promise<void> {
    const seen: SeenAt = { userAgent: ctx.get('user-agent').slice(0, MAX_USER_AGENT), ip: ctx.ip, at: Math.floor(Date.now() / 1000) };
    await this.kv.set(key(sessionUid), JSON.stringify(seen), { ttl: this.ttl });
  }

  async of(sessionUid: string): Promise<SeenAt | undefined> {
    const json = await this.kv.get(key(sessionUid));
    return json ? (JSON.parse(json) as SeenAt) : undefined;
  }

  async forget(sessionUid: string): Promise<void> {
    await this.kv.del([key(sessionUid)]);
  }

  /**
   * Once the authorization endpoint (or its resume path) has answered: records a signed-in
   * session's visit, started at once (settleDeferredConsumption's `alongside`); undefined when there
   * is nothing to record.
   */
  recordAtAuthorization(provider: Provider): (ctx: Context) => Promise<void> | undefined {
    const path = provider.pathFor('authorization');
    return (ctx) => {
      if (ctx.path !== path && !ctx.path.startsWith(`${path}/`)) return undefined;
      const session = (ctx as unknown as KoaContextWithOIDC).oidc?.session;
      if (!session?.accountId || !session.uid || (session as { destroyed?: boolean }).destroyed) return undefined;
      return this.seen(session.uid, ctx);
    };
  }
}
