/**
 * Resource servers (RFC 8707 resource indicators): the APIs our access tokens are for, and what a
 * client may have at each (src/apis/ keeps APIs and operator grants). Each API's identifier becomes
 * the token's `aud`. JWT access tokens follow RFC 9068 (oidc-provider sets `typ: at+jwt`) and are
 * signed with our current RS256 key.
 *
 * Two ways to get an API's scopes:
 * - client_credentials (the client acts for itself): exactly the scopes an operator granted this
 *   client at this API. Anything beyond is refused with invalid_scope, never silently narrowed.
 * - a person delegating (authorization_code, refresh_token): the API's scopes, within the client's
 *   registered `scope` when it has one; the consent page asks the person. Privileged APIs (the admin
 *   API, the revocation feed) are never delegated through a person.
 */
import { errors, type Client, type KoaContextWithOIDC, type Provider, type ResourceServer } from 'oidc-provider';
import { predates, type ApiDefinition, type Apis, type ClientGrant } from '../apis/apis.js';
import { predatesClient } from './consents.js';
import { COMMA_RULE, joinedWithCommas } from '../apis/scope-commas.js';
import { scopesBeyond } from './patches/current-registration.js';
import { refreshLevelMet } from './patches/step-up.js';
import { grantGivenAt } from './patches/grant-given-at.js';
import { isStoreOutage } from '../store/outage.js';
import { GRANT_CLAIM } from '../revocation/list.js';

/** True for a token request in which the client acts for itself. */
function clientCredentials(ctx: KoaContextWithOIDC): boolean {
  return ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';
}

function requestedScopes(ctx: KoaContextWithOIDC): string[] {
  const scope = ctx.oidc.params?.scope;
  return typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
}

interface GrantScopes {
  getResourceScopeFiltered(resource: string, filter: Set<string> | string[]): string;
}

/**
 * At the token endpoint, for a person's token: whether the person granted anything at `indicator`
 * among the scopes `allowed` (all, when not given) that this request carries (the code's or device
 * code's scopes, or the refresh's). A token with the API as its audience and no scope would be accepted, as the person's,
 * by an API that checks only `aud`, where the person was never asked about that API (the consent
 * page asks about an API only for its scopes). Undefined: not a token request with a grant.
 */
export function grantedAt(ctx: KoaContextWithOIDC, indicator: string, allowed?: readonly string[]): boolean | undefined {
  if (ctx.oidc.route !== 'token') return undefined;
  const { Grant: grant, RefreshToken, AuthorizationCode, DeviceCode } = ctx.oidc.entities as { Grant?: GrantScopes; RefreshToken?: { scopes: Set<string> }; AuthorizationCode?: { scopes: Set<string> }; DeviceCode?: { scopes: Set<string> } };
  if (!grant) return undefined;
  const carried = ctx.oidc.params?.scope ? ctx.oidc.requestParamScopes : (RefreshToken ?? AuthorizationCode ?? DeviceCode)?.scopes ?? new Set<string>();
  return grant.getResourceScopeFiltered(indicator, allowed ? allowed.filter((scope) => carried.has(scope)) : [...carried]) !== '';
}

/**
 * The refusal of a person's token for an API at which nothing was granted among the scopes this
 * request carries (grantedAt). A request that names its scopes is told those: something else may
 * have been granted at the API (a refresh asking one API for another API's scope, or for `email`
 * alone, of a token the engine resolves to its API), and "nothing was granted" sent the client to ask
 * the person again for what it holds (seventeenth passes).
 */
export function nothingGrantedAt(ctx: KoaContextWithOIDC, indicator: string): Error {
  const asked = requestedScopes(ctx);
  if (asked.length) {
    return new errors.InvalidTarget(`none of the scopes asked for (${asked.join(' ')}) was granted at ${indicator}, the API this token would be for`);
  }
  return new errors.InvalidTarget(`nothing was granted at ${indicator}: ask for its scopes in the authorization request, for the person to allow`);
}

/**
 * RFC 8707 §2.2: an access token is for one API. A request that named several is refused in the
 * engine's words; one that named none, of a code or refresh token issued for several (the engine
 * then resolves the request to all of them), is told to name one: the engine's words ("only a
 * single resource indicator value must be requested") told a client that had sent no `resource` to
 * send a single one (seventeenth passes).
 */
export function oneResourceNeeded(ctx: KoaContextWithOIDC, resources: readonly unknown[]): Error {
  if (ctx.oidc.params?.resource !== undefined) return new errors.InvalidTarget('only a single resource indicator value must be requested');
  return new errors.InvalidTarget(`this was granted for more than one API (${resources.join(', ')}): name the one this access token is for with the resource parameter (RFC 8707)`);
}

/**
 * The API an unknown `resource` was probably meant to name, as "; did you mean …?": the same
 * identifier with or without a trailing slash, in another case of its scheme or host, or with the
 * other loopback name (`127.0.0.1` for `localhost`), where that API exists and, for a client acting
 * for itself, holds a grant of this client's (so that no one learns of an API by guessing near it).
 * An identifier is compared exactly (RFC 8707 §2), so `https://api.example.com/` is refused for
 * `https://api.example.com`, and the refusal said only "unknown resource server" (sixteenth passes,
 * the developer and the operator). Only on the refusal's path.
 */
async function nearMiss(apis: Apis, indicator: string, clientId: string | undefined): Promise<string> {
  const candidates = new Set<string>();
  const add = (value: string) => {
    candidates.add(value);
    candidates.add(value.endsWith('/') ? value.slice(0, -1) : `${value}/`);
  };
  add(indicator);
  let url: URL | undefined;
  try {
    url = new URL(indicator);
  } catch {
    // no URL: only the slash
  }
  if (url && /^https?:$/.test(url.protocol)) {
    add(url.href);
    const swapped = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname === '127.0.0.1' ? 'localhost' : undefined;
    if (swapped) {
      const other = new URL(url.href);
      other.hostname = swapped;
      add(other.href);
    }
  }
  candidates.delete(indicator);
  for (const candidate of [...candidates].slice(0, 8)) {
    if (!(await apis.find(candidate))) continue;
    if (clientId !== undefined && !(await apis.grantAt(clientId, candidate))) continue;
    return `; did you mean ${candidate}? (an API's identifier is compared exactly)`;
  }
  return '';
}

/** Whether the request names more than one API (the same one twice is one). */
function severalNamed(ctx: KoaContextWithOIDC): boolean {
  const resource = ctx.oidc.params?.resource;
  return Array.isArray(resource) && new Set(resource).size > 1;
}

/** oidc-provider's features.resourceIndicators.getResourceServerInfo. */
export async function resourceServerInfo(apis: Apis, ctx: KoaContextWithOIDC, indicator: string, client: Client): Promise<ResourceServer> {
  const ownBehalf = clientCredentials(ctx);
  // The engine looks each named API up before it counts them (grants/client_credentials.js), so a
  // scope held at one of two APIs was refused as not granted at the other: the count first.
  if (ownBehalf && severalNamed(ctx)) throw new errors.InvalidTarget('only a single resource indicator value is supported for this grant type');
  // The token endpoint is hot: the API and the client's grant at it are read together.
  const [api, grant] = await Promise.all([apis.find(indicator), ownBehalf ? apis.grantAt(client.clientId, indicator) : undefined]);
  if (!api) throw new errors.InvalidTarget(`unknown resource server: ${indicator}${await nearMiss(apis, indicator, ownBehalf ? client.clientId : undefined)}`);

  let allowed: readonly string[];
  if (ownBehalf) {
    const requested = requestedScopes(ctx);
    if (!grant) {
      throw new errors.InvalidScope(`this client holds no grant at ${indicator} (an operator grants one: latchkey apis grant)`, requested.join(' '));
    }
    const held = heldUnder(api, grant);
    const refused = requested.filter((scope) => !held.allowed.has(scope));
    if (refused.length) {
      const commas = joinedWithCommas(refused, (part) => held.allowed.has(part)) ? `; ${COMMA_RULE}` : '';
      throw new errors.InvalidScope(`scope not granted to this client at ${indicator}: ${refused.join(' ')}${commas}`, refused.join(' '));
    }
    // A grant with none of the API's scopes (introspection only, or every scope revoked since) is no
    // leave to call it: a token without scope would still be taken by an API that checks only `aud`.
    // An API without scopes is reached by the grant alone, but for one that only makes the client
    // serve as the API (`--introspect`): its introspector was not granted to call it either.
    if (api.scopes.length > 0 && held.allowed.size === 0) {
      throw new errors.InvalidScope(`this client holds none of ${indicator}'s scopes (an operator grants them: latchkey apis grant --scope)`, requested.join(' '));
    }
    if (api.scopes.length === 0 && grant.introspect === true) {
      throw new errors.InvalidScope(`this client serves as ${indicator} (introspection), which is no leave to call it`, requested.join(' '));
    }
    return held.info;
  } else {
    if (api.privileged) throw new errors.InvalidTarget(`${indicator} accepts only client_credentials tokens of clients an operator granted it`);
    const givenAt = grantGivenAt(ctx);
    if (givenAt !== undefined && predates(api, givenAt)) throw new errors.InvalidTarget(`${indicator} was removed and added again since this was granted: ask the person again`);
    const registered = client.scope ? new Set(client.scope.split(' ')) : undefined;
    allowed = registered ? api.scopes.filter((scope) => registered.has(scope)) : api.scopes;
    if (grantedAt(ctx, indicator, allowed) === false) throw nothingGrantedAt(ctx, indicator);
  }

  return serverInfo(api, allowed);
}

/** What the engine is told of `api` for a token holding `allowed` of its scopes. */
function serverInfo(api: ApiDefinition, allowed: readonly string[]): ResourceServer {
  return {
    audience: api.identifier,
    scope: allowed.join(' '),
    accessTokenFormat: api.format,
    ...(api.accessTokenTTL ? { accessTokenTTL: api.accessTokenTTL } : {}),
    ...(api.format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
  };
}

interface HeldUnder {
  /** The API's scopes the grant holds. */
  readonly allowed: ReadonlySet<string>;
  /** What the engine is told of the API for a client_credentials token under the grant (frozen, shared). */
  readonly info: ResourceServer;
}

/**
 * What a client's grant holds at an API, worked out once per API and grant as read: both are the
 * values Apis parsed (frozen, the same objects while the stored text is unchanged, a new one at any
 * change, an API from the configuration fixed for the process), so an entry is never found for an
 * API or grant changed or removed since. Weak: an entry goes with the values it was made of.
 * The engine copies what it is told into its own ResourceServer (lib/helpers/resource_server.js).
 */
const heldUnderGrant = new WeakMap<ApiDefinition, WeakMap<ClientGrant, HeldUnder>>();
function heldUnder(api: ApiDefinition, grant: ClientGrant): HeldUnder {
  let byGrant = heldUnderGrant.get(api);
  if (!byGrant) heldUnderGrant.set(api, (byGrant = new WeakMap()));
  let held = byGrant.get(grant);
  if (!held) {
    const allowed = api.scopes.filter((scope) => grant.scopes.includes(scope));
    byGrant.set(grant, (held = { allowed: new Set(allowed), info: deepFrozen(serverInfo(api, allowed)) }));
  }
  return held;
}

function deepFrozen<T extends object>(value: T): T {
  for (const member of Object.values(value)) if (typeof member === 'object' && member !== null) deepFrozen(member as object);
  return Object.freeze(value);
}

/**
 * oidc-provider's features.resourceIndicators.defaultResource: client_credentials without
 * `resource` is for the client's default API when an operator set one with its grant. Without one,
 * a request naming any scope is refused: oidc-provider would otherwise issue a token with no
 * audience that still carries it, an API's scope (good at no API) or an OpenID scope (`openid`,
 * `email`: a person's, and a client acting for itself has no person). Asked for at an API, the
 * OpenID scopes are refused like any scope not granted there (resourceServerInfo).
 */
export function defaultResource(apis: Apis, oidcScopes: readonly string[]) {
  return async (ctx: KoaContextWithOIDC, client: Client, oneOf?: string[]): Promise<string | string[] | undefined> => {
    if (oneOf) {
      // The engine's resolution of a code or refresh token issued for several APIs, none named.
      if (oneOf.length > 1 && ctx.oidc.params?.resource === undefined) throw oneResourceNeeded(ctx, oneOf);
      return oneOf;
    }
    if (!clientCredentials(ctx)) return undefined;
    const api = await apis.defaultApiOf(client.clientId);
    if (api) return api;
    const requested = requestedScopes(ctx);
    const foreign = requested.filter((scope) => !oidcScopes.includes(scope));
    if (foreign.length) {
      throw new errors.InvalidScope(`scope ${foreign.join(' ')} is no OpenID Connect scope: a client acting for itself gets an API's scopes, naming the API with the resource parameter (RFC 8707)`, foreign.join(' '));
    }
    if (requested.length) {
      throw new errors.InvalidScope(`scope ${requested.join(' ')} is a person's: a client acting for itself gets only an API's scopes, named with the resource parameter (RFC 8707)`, requested.join(' '));
    }
    return undefined;
  };
}

/** A token as introspection sees it: opaque (oidc-provider's model) or a JWT's claims. */
export interface IntrospectedToken {
  readonly clientId?: string;
  readonly aud?: unknown;
  readonly scope?: string;
  /** Issued by client_credentials: the client acting for itself, under an operator's grant. */
  readonly clientCredentials: boolean;
}

/**
 * RFC 7662 §4: who may learn about a token at introspection. The client it was issued to, and a
 * client that serves as the token's audience (an operator granted it `introspect` at that API);
 * either only when it authenticated (RFC 7662 §2.1): never a public client.
 * A client_credentials token for an API is active only while its client still holds the grant
 * for every scope it carries: revoking a grant ends the opaque tokens issued under it at once.
 */
export async function mayIntrospect(apis: Apis, caller: { clientId: string; clientAuthMethod?: string }, token: IntrospectedToken): Promise<boolean> {
  // RFC 7662 §2.1: the endpoint MUST require some authorization of its caller. A public client's
  // client_id is known to anyone and proves nothing: whoever holds a token of such a client (leaked
  // in a log, say) would learn whose it is, for what and how long, without the API it is for. A
  // public client learns nothing, not even about its own tokens (it reads them or calls userinfo).
  if (caller.clientAuthMethod === 'none') return false;
  const callerId = caller.clientId;
  const audiences = [token.aud].flat().filter((aud): aud is string => typeof aud === 'string');
  const own = token.clientId !== undefined && token.clientId === callerId;
  const servesAsApi = !own && audiences.length > 0;
  const issuedUnderGrant = token.clientCredentials && !!token.clientId && audiences.length > 0;
  // Introspection is hot: both clients' grants are read together.
  const [ownerGrants, callerGrants] = await Promise.all([
    issuedUnderGrant ? apis.grantsOf(token.clientId!) : undefined,
    servesAsApi ? apis.grantsOf(callerId) : undefined,
  ]);
  if (ownerGrants) {
    const scopes = (token.scope ?? '').split(' ').filter(Boolean);
    if (!audiences.every((aud) => ownerGrants[aud] && scopes.every((scope) => ownerGrants[aud]!.scopes.includes(scope)))) return false;
  }
  if (own) return true;
  return !!callerGrants && audiences.some((aud) => callerGrants[aud]?.introspect === true);
}

/**
 * RFC 7662 §2.2: a token for an API is active only while that API is still offered with every scope
 * the token carries. An operator who took a scope out of an API's definition (its `resourceServers`
 * entry, at the next start), or the API out of the configuration, no longer offers it: refreshes
 * are narrowed to what the API has now (resourceServerInfo), and no resource server is told at
 * introspection that a token issued before still holds the scope taken away (it was, until the token
 * expired). A stored API removed is answered by the revocation list; a stored API's reserved scope
 * read away (apis.ts withoutReserved) is taken away alike. Tokens without an audience (userinfo's, a
 * client's own without `resource`) are not an API's.
 */
export async function heldByApiNow(apis: Apis, token: { readonly aud?: unknown; readonly scope?: unknown }): Promise<boolean> {
  const audiences = [token.aud].flat().filter((aud): aud is string => typeof aud === 'string');
  if (!audiences.length) return true;
  const scopes = typeof token.scope === 'string' ? token.scope.split(' ').filter(Boolean) : [];
  const found = await Promise.all(audiences.map((aud) => apis.find(aud)));
  return found.every((api) => api !== undefined && scopes.every((scope) => api.scopes.includes(scope)));
}

/**
 * How long an access token for the audience `aud` may live under the configuration as it is now, as
 * it is issued (provider.ts ttl): its API's own accessTokenTTL (a stored API's held to
 * ttl.apiAccessTokenMax: Apis.find), else ttl.accessToken for a person's ('AccessToken') and
 * ttl.clientCredentials for a client's own ('ClientCredentials'). A token issued under a longer one,
 * lowered since, ends at its `iat` plus this (patches/lifetimes-as-configured.ts accessTokensAsConfigured,
 * and jwt-access-tokens.ts for JWTs). No read for a token without audience or for a built-in or
 * configured API; a stored API's is a cached read.
 */
export function accessTokenLifetimes(apis: Apis, ttl: { readonly accessToken: number; readonly clientCredentials: number }) {
  return async (model: 'AccessToken' | 'ClientCredentials', aud: unknown): Promise<number> => {
    const audience = [aud].flat().find((value): value is string => typeof value === 'string');
    const api = audience === undefined ? undefined : await apis.find(audience);
    return api?.accessTokenTTL ?? (model === 'ClientCredentials' ? ttl.clientCredentials : ttl.accessToken);
  };
}

/** Whether a JWT access token's claims are a client's own (client_credentials): a person's carries the grant claim and their sub. */
export function ownToken(claims: { readonly sub?: unknown; readonly client_id?: unknown; readonly [GRANT_CLAIM]?: unknown }): boolean {
  return claims[GRANT_CLAIM] === undefined && claims.sub === claims.client_id;
}

/**
 * A person's access token introspects active only while every scope it carries is one its client may
 * still request (a refresh token (`refresh`) while it would still refresh: offlineAccessHeld, and the
 * sign-in level its client requires now): an operator who narrowed the client's `scope` metadata (admin API, CLI) has
 * refreshes narrowed (refresh-rotation.ts) and the account's claims withheld (id-token-claims.ts),
 * and no resource server reading `scope` at introspection is told the token still holds the rest.
 * A client_credentials token is bounded by its operator grant instead (mayIntrospect). A client
 * that is gone is answered by the revocation list, and holds nothing here either (for the moment its
 * deletion's ending may wait for the sweep); nor does one that cannot be loaded.
 */
export async function heldByClientNow(
  provider: Provider,
  caller: Client,
  token: { clientId?: unknown; scope?: unknown; clientCredentials: boolean; iat?: unknown; refresh?: { readonly acr: unknown; readonly mfaEverywhere: boolean } },
): Promise<boolean> {
  if (token.clientCredentials || typeof token.clientId !== 'string' || typeof token.scope !== 'string') return true;
  let client: Client | undefined;
  try {
    // The authenticated caller introspecting its own token is that client as registered now: not loaded again.
    client = caller.clientId === token.clientId ? caller : await provider.Client.find(token.clientId);
  } catch (error) {
    // The store away: 503, as every other read of the request. A client that cannot be loaded: what
    // it may hold now is unknown, so its token is not said to hold anything.
    if (isStoreOutage(error)) throw error;
    return false;
  }
  // Gone (a deletion cut off after its record went, its ending owed to the sweep): the engine's
  // introspection would read the gone client's subject type next (a 500).
  if (!client) return false;
  // A person's token of a client deleted since, whose id was given again, is not the new client's.
  if (predatesClient(client.clientIdIssuedAt, token.iat)) return false;
  const scopes = token.scope.split(' ').filter(Boolean);
  // A refresh token stays good while its client may keep offline access (its refresh is narrowed to
  // what is left), and while its sign-in is as strong as its client requires now (patches/step-up.ts).
  if (token.refresh) return offlineAccessHeld(client, scopes) && refreshLevelMet(client, token.refresh.acr, token.refresh.mfaEverywhere);
  return scopesBeyond(client, scopes).length === 0;
}

/**
 * Whether a client may still keep the offline access a refresh token of it holds (`scopes`): the
 * engine issues a refresh token only with offline_access granted, to a client allowed the
 * refresh_token grant. Once an operator (or the client, RFC 7592) took either away, its refresh
 * tokens are good for nothing: each refresh would otherwise rotate into a new one for as long as it
 * kept refreshing, the offline access it may no longer ask for. Given back, they work again (a
 * person's access tokens from before stay ended: revocation/list.ts's narrowed entries).
 */
export function offlineAccessHeld(client: { readonly scope?: string; grantTypeAllowed(type: string): boolean } | undefined, scopes: Iterable<string>): boolean {
  if (!client?.grantTypeAllowed('refresh_token')) return false;
  return scopesBeyond(client, [...scopes].filter((scope) => scope === 'offline_access')).length === 0;
}
