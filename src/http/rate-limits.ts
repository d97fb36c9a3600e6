/**
 * Rate limits on every endpoint the provider serves, over 429 with Retry-After.
 *
 * Per address: every request to one of the provider's routes (the paths come from the provider,
 * see providerRoutes) is counted per client address (an IPv6 one by its /64: address-key.ts) and route, BEFORE it is processed, so that a
 * refusal never follows a state change. Discovery and the JWKS are hot paths: they are counted in
 * this process's memory, with no store round trip; every other route is counted in the store,
 * shared by every instance.
 *
 * Every counter a request checks before it is processed goes to the store in one script (one round
 * trip, see store/rate-limit.ts fixedWindows), with the client charges this process still owes;
 * most requests need none: a charge that reaches Redis reserves a lease of the counter's allowance
 * (see leaseOf) that this process's next requests spend without a round trip.
 *
 * Per client: only requests that authenticated as a confidential client are charged to it, after
 * they were processed, and that response is never turned into a 429 (its code or refresh token may
 * already be spent). A later request that announces the client (HTTP Basic, client_id, or a client
 * assertion's subject, as oidc-provider reads them) is refused before the client is even
 * authenticated while the client's own requests have exhausted its allowance (see
 * provider/patches/announced-client-limit.ts). A public client's client_id proves nothing, so public
 * clients are bounded by the per-address limit only: nobody can spend a client's allowance by
 * naming it.
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { Config } from '../config.js';
import { addressKey } from './address-key.js';
import { jsonError } from './errors.js';
import type { Kv } from '../store/kv.js';
import { HTTP_LIMITERS, httpLimiter } from '../store/keys.js';
import { fixedWindows, memoryWindows, type FixedWindows, type WindowCount, type WindowHit } from '../store/rate-limit.js';
import type { Metrics } from '../ops/metrics.js';

type Settings = Config['rateLimit'];

/**
 * oidc-provider's route names (lib/helpers/initialize_app.js). A name whose feature is off has no
 * path (pathFor throws) and is skipped; the paths themselves always come from the provider.
 */
export const ROUTE_NAMES = [
  'authorization', 'resume', 'userinfo', 'token', 'jwks', 'discovery', 'registration', 'client',
  'revocation', 'introspection', 'end_session', 'end_session_confirm', 'end_session_success',
  'pushed_authorization_request', 'device_authorization', 'code_verification', 'device_resume',
  'backchannel_authentication', 'challenge', 'credential', 'openid_credential_issuer',
] as const;
/** oidc-provider registers its second discovery route under the same name as the first: this one is fixed by OpenID Connect Discovery §4. */
const OPENID_DISCOVERY = '/.well-known/openid-configuration';

/** Served from memory and read by every verifier: limited in process, never a store round trip. */
const HOT_ROUTES = new Set(['discovery', 'jwks']);
/** Routes where clients authenticate (so where a client may be charged). */
export const CLIENT_AUTH_ROUTES = new Set(['token', 'introspection', 'revocation', 'pushed_authorization_request']);

const PARAM = 'latchkeyparam';
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A path's pattern as oidc-provider's router matches it: any case, with or without a trailing slash. */
const exactly = (path: string) => new RegExp(`^${path}/?$`, 'i');

/** A route the provider serves: its name, its path's segments (`undefined` for a parameter) and the pattern its router matches. */
export interface ProviderRoute {
  readonly name: string;
  readonly segments: readonly (string | undefined)[];
  readonly pattern: RegExp;
}

/** Every route the provider serves, parameters matching one path segment. */
export function providerRoutes(provider: Provider): ProviderRoute[] {
  const routes: ProviderRoute[] = [];
  const add = (name: string, path: string) =>
    routes.push({
      name,
      segments: path.split('/').map((segment) => (segment === PARAM ? undefined : segment)),
      pattern: exactly(path.split(PARAM).map(escape).join('[^/]+')),
    });
  for (const name of ROUTE_NAMES) {
    try {
      add(name, provider.pathFor(name, { uid: PARAM, clientId: PARAM } as never));
    } catch {
      continue; // a feature that is off
    }
  }
  add('discovery', OPENID_DISCOVERY);
  return routes;
}

/**
 * A limited route, made once per route: its name, its per-address limit (none: not counted), the
 * counter family of that limit on this route (`<limiter>:<route>`, so the counter's key is the
 * address alone, and its name in the store `ratelimit:<limiter>:<route>:<address>` as before),
 * and what a request on it needs.
 */
interface LimitedRoute {
  readonly name: string;
  readonly limit: Limit | undefined;
  /** The limit's counter family on this route ('' without a limit). */
  readonly limiter: string;
  /** Counted in this process's memory (HOT_ROUTES). */
  readonly hot: boolean;
  /** Where clients authenticate and the per-client limit is on: its requests are charged to their client. */
  readonly charges: boolean;
}

function refuse(ctx: Parameters<Middleware>[0], seconds: number, endpoint: string, limit: 'ip' | 'client', metrics: Metrics | undefined) {
  const wait = Math.max(1, seconds);
  metrics?.rateLimited.inc({ endpoint, limit });
  ctx.set('Retry-After', String(wait));
  // With RFC 6749 §5.1's Pragma, as every other answer at the token, introspection and revocation endpoints.
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  jsonError(ctx, 429, 'temporarily_unavailable', `too many requests; retry in ${wait} s`);
  // A person's browser is answered a page instead, saying how long to wait (app.ts rateLimited): the
  // pages and the sign-in and sign-out flows are limited too, not only the endpoints programs call.
  ctx.state.rateLimited = wait;
}

/**
 * The client a request announces by HTTP Basic (RFC 6749 §2.3.1: the id form-urlencoded, then
 * base64), read the way oidc-provider reads it; undefined for anything else. Only a hint: what
 * oidc-provider then looks up is what counts (see provider/patches/announced-client-limit.ts).
 */
function announcedByBasic(header: string): string | undefined {
  if (header.length < 7 || header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
}

/** A client's wait, read together with the per-address charge (one round trip), for the client lookup. */
export interface AnnouncedClientWait {
  readonly clientId: string;
  readonly wait: number;
}

/** Longest an authenticated client's charge waits for a script to ride with (ms). */
const CHARGE_DELAY = 10;

/** One fixed-window limit: its counter family, and how many requests each window allows. */
interface Limit {
  readonly limiter: string;
  readonly points: number;
  /** Allowance reserved in Redis at a time for this process (see leaseOf). */
  readonly lease: number;
}

/**
 * How much of a limit's allowance a process reserves at a time (store/rate-limit.ts leasedWindows):
 * 1% of it, at most 100. The trade-off: with N processes (instances × workers) sharing Redis, a
 * counter can refuse up to N × 1.5 leases of requests early (allowance reserved by a process that does not
 * spend it), and never admits more than the limit, because every lease was counted in Redis before
 * any of it was spent. Limits under 100 get none: each of their requests is counted in Redis, exact
 * across processes, as a lease of 1 would already refuse early by a visible share of so small a limit.
 */
const leaseOf = (points: number) => Math.min(100, Math.floor(points / 100));

export class RateLimits {
  readonly #stored: FixedWindows;
  readonly #inMemory = memoryWindows();
  readonly #window: number;
  readonly #perIp: Limit | undefined;
  readonly #hotPerIp: Limit | undefined;
  readonly #registrationPerIp: Limit | undefined;
  readonly #perClient: Limit | undefined;
  readonly #metrics: Metrics | undefined;
  /** Authenticated clients' charges not sent yet, by counter (see chargeAuthenticatedClient). */
  #owed = new Map<string, WindowHit>();
  #flushTimer: NodeJS.Timeout | undefined;

  /** `metrics`: the running server's, which counts refusals (CLI commands pass none). */
  constructor(kv: Kv, settings: Settings, metrics?: Metrics) {
    this.#metrics = metrics;
    this.#stored = fixedWindows(kv);
    this.#window = settings.window;
    const limit = (limiter: string, points: number) => (points > 0 ? { limiter, points, lease: leaseOf(points) } : undefined);
    this.#perIp = limit(HTTP_LIMITERS.perIp, settings.perIp);
    this.#registrationPerIp = limit(HTTP_LIMITERS.registrationPerIp, settings.registrationPerIp);
    this.#perClient = limit(HTTP_LIMITERS.perClient, settings.perClient);
    this.#hotPerIp = limit(HTTP_LIMITERS.metadataPerIp, settings.metadataPerIp);
  }

  #hit(limit: Limit, key: string, by: number): WindowHit {
    return { limiter: limit.limiter, key, by, window: this.#window, lease: limit.lease };
  }

  #route(name: string): LimitedRoute {
    const hot = HOT_ROUTES.has(name);
    const limit = hot ? this.#hotPerIp : name === 'registration' ? this.#registrationPerIp : this.#perIp;
    return { name, limit, limiter: limit ? httpLimiter(limit.limiter, name) : '', hot, charges: !!this.#perClient && CLIENT_AUTH_ROUTES.has(name) };
  }

  /**
   * `hits` in the store, after the charges owed (one script); the counts of `hits`. Only when they
   * are not all served from this process's leases (try `this.#stored.hitHere` first): the charges
   * owed ride with a script that goes anyway, never make one.
   */
  async #storedHit(hits: readonly WindowHit[]): Promise<WindowCount[]> {
    const owed = this.#takeOwed();
    const counts = await this.#stored.hit([...owed, ...hits]);
    return counts.slice(owed.length);
  }

  #takeOwed(): WindowHit[] {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const owed = [...this.#owed.values()];
    this.#owed.clear();
    return owed;
  }

  /** Seconds to wait for a client whose allowance `count` is (0: none); its allowance is `points` requests. */
  #clientWaitOf(count: WindowCount): number {
    return count.count >= this.#perClient!.points ? Math.ceil(count.ms / 1000) : 0;
  }

  /**
   * Seconds until the client `clientId` may be served again (0: now), when its own authenticated
   * requests have used up its allowance. Nothing is charged. A number when it is known without a
   * round trip (no per-client limit, or this process's lease of the client's allowance is live).
   */
  clientWait(clientId: string): number | Promise<number> {
    if (!this.#perClient) return 0;
    const read = this.#hit(this.#perClient, clientId, 0);
    const here = this.#stored.hitHere(read);
    if (here) return this.#clientWaitOf(here);
    return this.#storedHit([read]).then(([count]) => this.#clientWaitOf(count!));
  }

  /**
   * Charges the client the request authenticated as (a confidential one, on the client-authenticating
   * routes), once. Called as the answer is settled (provider/patches/deferred-consumption.ts), else
   * by the middleware after the request. The answer does not wait for the charge: it is spent from
   * this process's lease of the client's allowance when one is live (counted in Redis already), else
   * it rides with the next script this process sends (which applies it before reading any counter,
   * so every later decision here sees it, and reserves the next lease), or goes alone after
   * CHARGE_DELAY ms when none goes. Other instances see it that much later at most.
   */
  chargeAuthenticatedClient(ctx: Parameters<Middleware>[0]): void {
    if (!this.#perClient || ctx.state.clientCharged) return;
    const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
    if (!oidc?.route || !CLIENT_AUTH_ROUTES.has(oidc.route)) return;
    // oidc-provider knows the client before checking its credentials: a 401 was not this client.
    // Nor was a request with attestation headers: that authentication is off (provider.ts), yet
    // oidc-provider looks up the client they or client_id name and may refuse with 400 after.
    // Present at all, as oidc-provider tests them (an empty value counts).
    const attested = ctx.headers['oauth-client-attestation'] !== undefined || ctx.headers['oauth-client-attestation-pop'] !== undefined;
    const client = ctx.status === 401 || attested ? undefined : oidc.client;
    if (!client || client.clientAuthMethod === 'none') return;
    ctx.state.clientCharged = true;
    if (this.#stored.hitHere(this.#hit(this.#perClient, client.clientId, 1))) return;
    const owed = this.#owed.get(client.clientId);
    this.#owed.set(client.clientId, this.#hit(this.#perClient, client.clientId, (owed?.by ?? 0) + 1));
    this.#flushTimer ??= setTimeout(() => {
      // When the store is down the charges are lost with it (requests fail with 503 meanwhile).
      this.#stored.hit(this.#takeOwed()).catch(() => {});
    }, CHARGE_DELAY).unref();
  }

  /** Hot routes by name (#route), for admitsAhead. */
  readonly #hotRoutes = new Map<string, LimitedRoute>();

  /**
   * A request on a hot route (discovery, the JWKS) answered ahead of the app (http/ahead.ts):
   * counted against its per-address limit as the middleware counts it, and true; or false,
   * counting nothing, when the middleware would refuse it (the app then counts it and answers its 429).
   */
  admitsAhead(name: string, ip: string): boolean {
    let route = this.#hotRoutes.get(name);
    if (!route) this.#hotRoutes.set(name, (route = this.#route(name)));
    if (!route.hot) return false; // counted in the store: never answered ahead
    const limit = route.limit;
    if (!limit) return true;
    const key = addressKey(ip);
    const read = this.#inMemory.hitHere({ limiter: route.limiter, key, by: 0, window: this.#window, lease: limit.lease });
    if (read!.count + 1 > limit.points) return false;
    this.#inMemory.hitHere({ limiter: route.limiter, key, by: 1, window: this.#window, lease: limit.lease });
    return true;
  }

  /** The 429 answer for a client over its allowance (used before it is authenticated). */
  refuseClient(ctx: Parameters<Middleware>[0], seconds: number, route: string): void {
    refuse(ctx, seconds, route, 'client', this.#metrics);
  }

  /**
   * App middleware, in front of our routes and the provider: see the top of this file. `also`:
   * our own surfaces, limited per address like the provider's routes (name → an exact path, or a
   * pattern for a surface with sub-paths such as the admin API).
   */
  middleware(provider: Provider, also: Record<string, string | RegExp> = {}): Middleware {
    // Every limit off (rateLimit settings of 0): nothing to count nor charge on any route.
    if (!this.#perIp && !this.#hotPerIp && !this.#registrationPerIp && !this.#perClient) return (_ctx, next) => next();
    const routes = new Map<string, LimitedRoute>();
    const routeOf = (name: string) => routes.get(name) ?? routes.set(name, this.#route(name)).get(name)!;
    const table: [LimitedRoute, RegExp][] = providerRoutes(provider).map(({ name, pattern }) => [routeOf(name), pattern]);
    for (const [name, path] of Object.entries(also)) table.push([routeOf(name), typeof path === 'string' ? exactly(escape(path)) : path]);
    // A route's own spelling (what canonical-paths.ts gives every request for one of the provider's
    // routes) finds its route in one lookup, the one the patterns would give it; anything else
    // (parameters, our prefixed surfaces, other paths) is tried against the patterns in order.
    const spelled = new Map<string, LimitedRoute>();
    for (const { segments } of providerRoutes(provider)) {
      if (segments.includes(undefined)) continue;
      const path = segments.join('/');
      spelled.set(path, table.find((entry) => entry[1].test(path))![0]);
    }
    // On every request (the app's dispatcher runs it unscoped); one that is on none of these routes
    // passes without a promise of its own.
    return (ctx, next) => {
      const path = ctx.path;
      const route = spelled.get(path);
      if (route !== undefined) return this.#limited(route, ctx, next);
      for (const entry of table) if (entry[1].test(path)) return this.#limited(entry[0], ctx, next);
      return next();
    };
  }

  /**
   * The per-address `charge` in the store and, in the same script, the allowance of a client the
   * request announces by HTTP Basic, for the client lookup to decide on (announced-client-limit.ts).
   * A charge served from this process's lease makes no round trip and reads no client: the lookup
   * then reads the allowance itself (from its lease too, mostly), so the header is not decoded.
   */
  async #storedCharge(route: LimitedRoute, ctx: Parameters<Middleware>[0], charge: WindowHit): Promise<WindowCount> {
    const announced = route.charges ? announcedByBasic(ctx.get('Authorization')) : undefined;
    if (announced === undefined) return (await this.#storedHit([charge]))[0]!;
    const [counted, client] = await this.#storedHit([charge, this.#hit(this.#perClient!, announced, 0)]);
    ctx.state.announcedClientWait = { clientId: announced, wait: this.#clientWaitOf(client!) } satisfies AnnouncedClientWait;
    return counted!;
  }

  /**
   * A request on one of the limited routes: counted before it is processed, its client charged after.
   * Not an async function: a charge served in this process (a live lease, the hot routes' memory)
   * goes straight on, with one `then` for the client's charge; only a charge that goes to the store waits.
   */
  #limited(route: LimitedRoute, ctx: Parameters<Middleware>[0], next: () => Promise<unknown>): Promise<unknown> | void {
    const limit = route.limit;
    if (!limit) return this.#processed(route, ctx, next);
    const charge: WindowHit = { limiter: route.limiter, key: addressKey(ctx.ip), by: 1, window: this.#window, lease: limit.lease };
    const here = route.hot ? this.#inMemory.hitHere(charge) : this.#stored.hitHere(charge);
    if (here) return this.#charged(limit, here, route, ctx, next);
    return this.#storedCharge(route, ctx, charge).then((counted) => this.#charged(limit, counted, route, ctx, next));
  }

  /** Refused over the per-address `limit`, else processed. */
  #charged(limit: Limit, charged: WindowCount, route: LimitedRoute, ctx: Parameters<Middleware>[0], next: () => Promise<unknown>): Promise<unknown> | void {
    if (charged.count > limit.points) return refuse(ctx, Math.ceil(charged.ms / 1000), route.name, 'ip', this.#metrics);
    return this.#processed(route, ctx, next);
  }

  /** Processed, and charged to its client after (a route where none can be charged: no `then` of its own). */
  #processed(route: LimitedRoute, ctx: Parameters<Middleware>[0], next: () => Promise<unknown>): Promise<unknown> {
    return route.charges ? next().then(() => this.chargeAuthenticatedClient(ctx)) : next();
  }
}
