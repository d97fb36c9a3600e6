/**
 * A session loaded in front of oidc-provider for a request (AccountSessions' recheck at the
 * authorization endpoint, accounts/sessions.ts) is the session oidc-provider goes on with in that
 * request: it is not read from the store a second time.
 *
 * What it changes in oidc-provider: Session.get called outside a request's context (a provider.use
 * middleware, before the route runs) keeps what it found for that request (its Koa context);
 * Session.find inside the same request takes it, once, when it asks for the same id, instead of
 * reading the store. A session destroyed in between (a disabled person's, ended by the recheck) is
 * not taken: the store is read as before, and no longer has it. The kept session was read after
 * the request arrived, as the read it replaces would have been, and nothing is kept beyond the
 * request (a WeakMap on its context), so a session ended by another request is seen by the next.
 * Pinned by test/unit/provider-patches.test.ts and test/e2e/authorization-round-trips.test.ts.
 */
import { Provider } from 'oidc-provider';

type Session = Awaited<ReturnType<Provider['Session']['get']>>;
type Find = (id: string, options?: object) => Promise<Session | undefined>;

export function sessionLoadedOnce(provider: Provider): void {
  const Session = provider.Session as Omit<Provider['Session'], 'find'> & { find: Find };
  // Bound to the model, whose own get calls this.find: the replacement below.
  const get = Session.get.bind(Session);
  const find: Find = Session.find.bind(Session);
  const kept = new WeakMap<object, Session>();
  Session.get = async (ctx) => {
    const session = await get(ctx);
    if (!Provider.ctx) kept.set(ctx, session);
    return session;
  };
  Session.find = async (id, options) => {
    const request = Provider.ctx as object | undefined;
    const session = request && kept.get(request);
    if (session) {
      kept.delete(request);
      if (session.jti === id && !(session as { destroyed?: boolean }).destroyed) return session;
    }
    return find(id, options);
  };
}
