/**
 * Refuses a request for a client that has used up its allowance, before the request changes
 * anything: at the moment oidc-provider looks up the client it announces, during client
 * authentication, which comes before every grant, revocation, introspection or pushed request.
 *
 * What it changes in oidc-provider: provider.Client.find is wrapped. On the client-authenticating
 * routes, the first lookup of a request (the announced client: from HTTP Basic, the client_id
 * parameter or the client assertion's subject, read by oidc-provider itself from the parsed body)
 * first asks the rate limits whether that client is over its allowance; if so the request ends
 * with 429 there (for a client announced by HTTP Basic, from what http/rate-limits.ts read in the
 * same round trip as the per-address charge, when that charge went to the store). Nothing is charged here: only requests that then authenticate are charged (see
 * http/rate-limits.ts), so naming a client costs it nothing. Pinned by
 * test/integration/rate-limits.test.ts and test/unit/provider-patches.test.ts.
 */
import { errors, Provider } from 'oidc-provider';
import { CLIENT_AUTH_ROUTES, type AnnouncedClientWait, type RateLimits } from '../../http/rate-limits.js';

class TooManyRequests extends errors.OIDCProviderError {
  constructor(seconds: number) {
    super(429, 'temporarily_unavailable');
    this.error_description = `too many requests; retry in ${seconds} s`;
  }
}

export function limitAnnouncedClients(provider: Provider, limits: RateLimits): void {
  const Client = provider.Client as unknown as { find(id: string, ...rest: unknown[]): Promise<unknown> };
  const find = Client.find.bind(Client);
  const refused = (ctx: Parameters<RateLimits['refuseClient']>[0], wait: number, route: string) => {
    limits.refuseClient(ctx, wait, route);
    return new TooManyRequests(Math.max(1, wait));
  };
  // Not an async function: a lookup whose client's wait is known without a round trip (most: every
  // later lookup of a request, an announcement by HTTP Basic, a live lease, no per-client limit)
  // goes straight on to the original's promise.
  Client.find = (id: string, ...rest: unknown[]) => {
    const ctx = Provider.ctx;
    const route = ctx?.oidc?.route;
    // Only the announced client: later lookups (an introspected token's client) are not the caller.
    if (ctx && route && CLIENT_AUTH_ROUTES.has(route) && !ctx.oidc.client && !ctx.state.clientLimitChecked) {
      ctx.state.clientLimitChecked = true;
      // Read already, with the per-address charge, when the request announced it by HTTP Basic and
      // that charge went to the store.
      const peeked = ctx.state.announcedClientWait as AnnouncedClientWait | undefined;
      const wait = typeof id !== 'string' ? 0 : peeked?.clientId === id ? peeked.wait : limits.clientWait(id);
      if (typeof wait !== 'number') {
        return wait.then((seconds) => {
          if (seconds) throw refused(ctx, seconds, route);
          return find(id, ...rest);
        });
      }
      if (wait) return Promise.reject(refused(ctx, wait, route));
    }
    return find(id, ...rest);
  };
}
