/**
 * What ends with a client removed or changed, whichever way it was: a stored client's deletion and
 * write (the store's hooks), a configured client's across a restart, a metadata document's change.
 */
import type { AdapterPayload } from 'oidc-provider';
import type { Apis } from '../apis/apis.js';
import { epochSeconds, untilSecond } from '../clock.js';
import type { Config } from '../config.js';
import { CLOCK_TOLERANCE } from '../lifetimes.js';
import { forgetPreviousSecret } from '../registration/clients.js';
import { onThisMachine } from '../http/this-machine.js';
import { serverOf } from '../registration/policy.js';
import { GrantRevocation } from '../revocation/grants.js';
import type { RevocationList } from '../revocation/list.js';
import { endClientsRecords, endPendingRequests, endPendingSignIns, type AdapterHooks } from '../store/adapter.js';
import { configuredClientChanges } from '../store/configured-clients.js';
import type { Kv } from '../store/kv.js';
import type { Consents } from './consents.js';
import { DEFAULT_GRANT_TYPES, DEFAULT_RESPONSE_TYPES, registrationPolicy } from './registration-policy.js';
import { replacedCredentials } from './replaced-credentials.js';
import { REQUIRE_MFA_PROPERTY } from './patches/step-up.js';

/** What the endings act on. */
export interface ClientEndingDependencies {
  readonly config: Config;
  readonly kv: Kv;
  readonly apis: Apis;
  readonly revocations: RevocationList;
  readonly consents: Consents;
}

/**
 * What ends with a client removed or changed, whichever way: the store's hooks for a stored client's
 * deletion and write, and configuredClientsChanged for a configured client's, across a restart.
 */
export function clientEndings({ config, kv, apis, revocations, consents }: ClientEndingDependencies): Required<Pick<AdapterHooks, 'clientRemoved' | 'clientReplaced'>> {
  const grants = new GrantRevocation(kv, revocations);
  // As long as a sign-in begun before a cutoff can live (its interaction record, kept that long past its
  // end), or a code issued before it (the token endpoint holds a code to the cutoff too: patches/
  // current-registration.ts): with ttl.interaction alone, a code outliving it (ttl.authorizationCode
  // may be longer) was redeemed once the cutoff had gone (the review of the twelfth passes).
  // Or a device code asked for before it (approved against the cutoff too, however late in its lifetime).
  const signIns = Math.max(config.ttl.interaction, config.ttl.authorizationCode, config.ttl.deviceCode) + CLOCK_TOLERANCE;
  return {
    // A client removed: everything it held ends (GrantRevocation.clientRemoved), and its operator
    // grants at APIs, its rotated-out secret and people's remembered consent go, so a client made
    // again with the id starts with none (RFC 7592's DELETE left the secret before, and every path
    // left the consents). Its pending requests (device codes, pushed requests) go on every path too:
    // a configured client taken out, or a document gone, left them to a client put back (twenty-first
    // endings pass; a stored client's deletion ended them already, in the adapter). So do its sign-ins
    // in progress (twenty-fourth endings pass): a client put back with the id does not finish them.
    clientRemoved: async (clientId) => {
      await grants.clientRemoved(clientId);
      await Promise.all([apis.forgetClient(clientId), forgetPreviousSecret(kv, clientId), consents.forgetClient(clientId), endClientsRecords(kv, clientId), endPendingSignIns(kv, clientId, signIns)]);
    },
    // A client that may no longer get tokens for itself (client_credentials taken from its grant
    // types, or made public), whoever changed it: the tokens it got so far end at every API it
    // holds a grant at (client_grant entries, as for a grant revoked), at introspection, the
    // admin API, the feed and resource servers. Its grants stay: given client_credentials back,
    // it gets new tokens; the old ones stay dead.
    // A client made public (token_endpoint_auth_method "none"), whoever changed it, loses likewise
    // what it holds on people's behalf: the refresh tokens, codes and access tokens it got while it
    // authenticated were constrained by its secret or key (RFC 9700 §4.14.2), and would otherwise be
    // redeemed with its client_id alone (one leaked from its server, say); the delegated mark ends
    // them everywhere, and the consents given before it, so each person is asked again.
    // A client that sends people's codes to a server it did not before (a redirect URI on another
    // site added), whoever changed it, likewise: the consents and grants given before were given to
    // an app that sent people back elsewhere (the sign-in and consent pages name where). Kept, a
    // leaked registration access token added its holder's site and got a code there for everyone who
    // had allowed the app, silently, which a public client's client_id redeems, and a confidential
    // one's too once the same token gave it a key of the holder's (eighth fresh-eyes pass of
    // 2026-12-06). Each person is asked again, on a page naming the new site. A new path on a server
    // it had is no other site; a loopback port is one where no request to it asks the person (a
    // confidential web client's: seventeenth passes).
    // A credential replaced (a key removed from its jwks, another jwks_uri, another authentication
    // method, a secret replaced without grace: replaced-credentials.ts), whoever changed it, ends
    // likewise the tokens the client got for itself, with any credential (the one a thief used is
    // not known); and a secret that stops authenticating it takes its rotated-out predecessor along.
    // A client narrowed so that its pending requests are refused (a redirect URI, a response type or
    // a grant type they are made with taken away: requestsNarrowed), whoever changed it: they end.
    // Each was refused against the client as it is (patches/current-registration.ts) but kept, and
    // the client widened again within its lifetime took it up (twenty-second endings pass). A scope
    // or offline access taken away is not such a narrowing: what asks it goes on without it.
    // Its sign-ins in progress end too, by a cutoff read as they resume (endPendingSignIns), on such
    // a narrowing or pushed requests required since (signInsNarrowed): a sign-in left at the login
    // page across a redirect URI taken out and put back ended in a code to it (twenty-fourth endings
    // pass). The change answers once the cutoff's second has passed, so that a sign-in begun after
    // it (by the very request that read a changed metadata document again, say) is of a later second.
    clientReplaced: async (clientId, previous, next) => {
      if (!previous) return;
      const replaced = await replacedCredentials(kv, clientId, previous, next);
      await Promise.all([
        // Answered once the cutoff's second has passed: a token the client gets at once with its new
        // secret is of a later second, never ended with the old one's (newcomer pass, 2026-12-06).
        // And once it must bind its tokens to a key (dpop_bound_access_tokens): its bearer ones of before end.
        getsOwnTokens(previous) && (!getsOwnTokens(next) || replaced.any || raised(previous, next, DPOP_BOUND)) ? apis.endOwnTokens(clientId).then(() => untilSecond(epochSeconds() + 1)) : undefined,
        (authenticates(previous) && !authenticates(next)) || gainsRedirectServer(previous, next)
          ? revocations.revokeDelegated(clientId).then(() => untilSecond(epochSeconds() + 1))
          : undefined,
        // Scopes taken from its `scope` metadata: refreshes are narrowed and introspection refuses
        // the tokens carrying them already (resource-servers.ts heldByClientNow); the feed tells
        // the APIs that verify JWTs locally (a scoped delegated entry), and it keeps those tokens
        // ended at userinfo and introspection should the scopes be put back. Answered once its second
        // has passed: a token issued after the scope is put back is of a later second.
        scopesTaken(previous, next, async () => [...registrationPolicy(config).scopes, ...(await apis.delegableScopes())])
          .then((taken) => revocations.revokeNarrowed(clientId, taken))
          .then((revoked) => (revoked ? untilSecond(epochSeconds() + 1) : undefined)),
        // A requirement raised, the sign-in level (`require_mfa`) or sender-constrained tokens
        // (`dpop_bound_access_tokens`): its people's access tokens of before end (revokeRaised), as
        // refreshes, codes and device codes of a weaker sign-in are refused (patches/step-up.ts) and
        // refreshes without a proof are (the engine). Answered once its second has passed, as above.
        raised(previous, next, REQUIRE_MFA_PROPERTY) || raised(previous, next, DPOP_BOUND) ? revocations.revokeRaised(clientId).then(() => untilSecond(epochSeconds() + 1)) : undefined,
        requestsNarrowed(previous, next) ? endPendingRequests(kv, clientId) : undefined,
        signInsNarrowed(previous, next) ? endPendingSignIns(kv, clientId, signIns).then((at) => untilSecond(at + 1)) : undefined,
      ]);
      if (replaced.secret) await forgetPreviousSecret(kv, clientId);
    },
  };
}

/**
 * A configured client (CLIENTS) changed by editing the configuration and restarting ends what the
 * same change written to a stored client ends (clientEndings: its secret replaced, made public, scopes
 * narrowed, client_credentials taken away; removed from the configuration, as a client deleted),
 * against the clients recorded by the start before (store/configured-clients.ts), at the first start
 * with the new configuration. Each ending is a cutoff of its own second and idempotent: instances
 * starting at once may each run it; the first to record the new clients ends the comparison, and
 * one that finds other clients recorded since records nothing (said by the caller). Run before the
 * instance serves; what an instance still running the old configuration issues afterwards is not
 * ended (docs/operating.md, "Changing a configured client").
 */
export async function configuredClientsChanged(kv: Kv, clients: readonly Record<string, unknown>[], endings: ReturnType<typeof clientEndings>): Promise<{ replaced: string[]; removed: string[]; recorded: boolean }> {
  const changes = await configuredClientChanges(kv, clients);
  for (const { clientId, previous, next } of changes.replaced) await endings.clientReplaced(clientId, previous as AdapterPayload, next as AdapterPayload);
  for (const clientId of changes.removed) await endings.clientRemoved(clientId);
  // Each ending is a cutoff "issued at or before this second": the instance serves once it has
  // passed, so that what it issues under the new configuration is of a later second.
  if (changes.replaced.length || changes.removed.length) await untilSecond(epochSeconds() + 1);
  return { replaced: changes.replaced.map(({ clientId }) => clientId), removed: [...changes.removed], recorded: await changes.record() };
}


/** Whether client metadata (as stored) lets the client get tokens for itself: client_credentials among its grant types (RFC 7591 §2: authorization_code alone by default), and client authentication. */
function getsOwnTokens(metadata: { grant_types?: unknown; token_endpoint_auth_method?: unknown }): boolean {
  const grantTypes = Array.isArray(metadata.grant_types) ? metadata.grant_types : ['authorization_code'];
  return grantTypes.includes('client_credentials') && authenticates(metadata);
}

/**
 * The scopes a change of a client's `scope` metadata takes from it: those its tokens may carry
 * before (every scope offered, `offered`, when it registered none) and are beyond it after
 * (patches/current-registration.ts scopesBeyond; none when it registers no `scope` after).
 */
export async function scopesTaken(previous: { scope?: unknown }, next: { scope?: unknown }, offered: () => Promise<readonly string[]>): Promise<string[]> {
  const words = (scope: unknown) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);
  const after = new Set(words(next.scope));
  if (!after.size) return [];
  const before = words(previous.scope);
  return [...new Set(before.length ? before : await offered())].filter((scope) => !after.has(scope));
}

/** What a client's requests may name, each with the engine's default where none is registered (clientDefaults). */
const REQUESTED_METADATA: Readonly<Record<string, readonly string[]>> = { redirect_uris: [], grant_types: DEFAULT_GRANT_TYPES, response_types: DEFAULT_RESPONSE_TYPES };

/** The values of the list `name` (one of REQUESTED_METADATA) a change of client metadata takes away. */
function takenFrom(previous: Record<string, unknown>, next: Record<string, unknown>, name: string): unknown[] {
  const values = (metadata: Record<string, unknown>) => (Array.isArray(metadata[name]) ? (metadata[name] as unknown[]) : REQUESTED_METADATA[name]!);
  const after = new Set(values(next));
  return values(previous).filter((value) => !after.has(value));
}

/**
 * Whether a change of client metadata takes from it what a pending request may be made with: a
 * redirect URI, a response type, or a grant type other than refresh_token (a request asking for
 * offline access goes on without it then: patches/current-registration.ts).
 */
function requestsNarrowed(previous: Record<string, unknown>, next: Record<string, unknown>): boolean {
  return Object.keys(REQUESTED_METADATA).some((name) => takenFrom(previous, next, name).some((value) => name !== 'grant_types' || value !== 'refresh_token'));
}

/**
 * Whether a change of client metadata ends its sign-ins in progress: it takes away what a request
 * is made with (requestsNarrowed), or requires pushed requests where it did not, so that a request
 * sent through the front channel is refused (patches/current-registration.ts). A scope or offline
 * access taken away is not (the request goes on without it), nor is the client made public (its
 * request without PKCE is refused while it is public, and once it authenticates again, its code
 * needs its secret or key as any code of a confidential client does), nor another authentication
 * method (not part of the request).
 */
function signInsNarrowed(previous: Record<string, unknown>, next: Record<string, unknown>): boolean {
  return requestsNarrowed(previous, next) || (previous.require_pushed_authorization_requests !== true && next.require_pushed_authorization_requests === true);
}

/**
 * Whether a change of client metadata adds a redirect URI on a server (serverOf: scheme, host, port)
 * none of its redirect URIs was on before, where the client gets codes without asking the person.
 * Custom-scheme URIs are left out: only a native client has them, and its every request asks
 * (the engine's native_client_prompt). Loopback ones (any host on the person's machine:
 * redirectServer) count only where no request to them asks: a
 * public or native client's does (patches/loopback-public-clients.ts, the engine's check), so for
 * one that authenticates and is not native, a loopback URI (each port its own, as the registration
 * matches a web client's exactly) is another server, where any program of the person's machine
 * listening on that port takes the code, which a key of the registration access token holder's
 * redeems (seventeenth passes: kept, the consents given to an app that sent people back to its
 * site sent codes silently to such a port). A loopback URI it had while a request to it asked is
 * no server it had.
 */
function gainsRedirectServer(previous: Record<string, unknown>, next: Record<string, unknown>): boolean {
  const servers = (metadata: Record<string, unknown>) => {
    const silentAtLoopback = authenticates(metadata) && metadata.application_type !== 'native';
    return new Set(
      (Array.isArray(metadata.redirect_uris) ? metadata.redirect_uris : [])
        .map((uri) => (/^https?:/i.test(String(uri)) ? redirectServer(String(uri)) : undefined))
        .filter((server): server is string => server !== undefined && (silentAtLoopback || !server.includes('//loopback:'))),
    );
  };
  const before = servers(previous);
  return [...servers(next)].some((server) => !before.has(server));
}

/**
 * The server a redirect URI reaches (serverOf), with every host a browser sends to the person's own
 * machine read as loopback, as the consent prompt reads them (http/this-machine.ts onThisMachine:
 * the hosts file's `localhost6`, `ip6-localhost`, ... too). serverOf's narrower reading took
 * `https://localhost6:8443` for a site: a public client adding it ended every consent though each
 * request to it asks, and one that had it, made confidential, kept them and got codes silently there
 * (review of the seventeenth passes).
 */
function redirectServer(uri: string): string | undefined {
  const url = URL.parse(uri);
  if (!url || !onThisMachine(url.hostname)) return serverOf(uri);
  return `${url.protocol}//loopback:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/** Client metadata: its access tokens must be DPoP-bound (RFC 9449 §5). */
const DPOP_BOUND = 'dpop_bound_access_tokens';

/** Whether a change of client metadata turns the requirement `property` on (require_mfa, dpop_bound_access_tokens). */
function raised(previous: Record<string, unknown>, next: Record<string, unknown>, property: string): boolean {
  return previous[property] !== true && next[property] === true;
}

/** Whether client metadata (as stored) has the client authenticate at the token endpoint (RFC 7591 §2: client_secret_basic by default). */
function authenticates(metadata: { token_endpoint_auth_method?: unknown }): boolean {
  return metadata.token_endpoint_auth_method !== 'none';
}

