/**
 * What the provider stands on, and the provider built on it for a key ring: `serve` wires it into
 * the server (src/main.ts), and CLI commands that validate client metadata, store tokens or end
 * sessions build one too. Apart from main.ts so that those commands load the engine and what it
 * calls, not the whole server (the app, its pages, passkeys and metrics).
 */
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import { Accounts, endedWithPerson } from './accounts/accounts.js';
import { SessionCredentials } from './accounts/session-credentials.js';
import { accountReadFor } from './accounts/sessions.js';
import { Apis, predates } from './apis/apis.js';
import { builtinResourceServers } from './apis/builtin.js';
import type { Config } from './config.js';
import { renderProviderError } from './http/errors.js';
import { RateLimits } from './http/rate-limits.js';
import { devicePages } from './interactions/device.js';
import { unlessConfigured } from './interactions/client-branding.js';
import { logoutPages } from './interactions/logout.js';
import type { Keyring } from './keyring/keyring.js';
import type { SigningGate } from './keyring/service.js';
import { CLOCK_TOLERANCE, longestAccessTokenLifetime, longestSignedLifetime, sessionRecordsLifetime } from './lifetimes.js';
import type { Metrics } from './ops/metrics.js';
import { Consents } from './provider/consents.js';
import { clientEndings } from './provider/client-endings.js';
import { createProvider } from './provider/provider.js';
import { logoutRetryKeeper } from './provider/backchannel-delivery.js';
import { finishClientEnding, type OwedClientEnding } from './store/adapter.js';
import { AdapterIndexes } from './store/adapter-indexes.js';
import { DueEndings, OwedKeeper } from './store/due-endings.js';
import { grantEndings } from './revocation/api-endings.js';
import { RevocationList } from './revocation/list.js';
import type { Kv } from './store/index.js';
import { UpstreamClients } from './upstreams/client.js';
import { UpstreamLogout } from './upstreams/logout.js';
import { Upstreams } from './upstreams/registry.js';
import { FederatedSessions } from './upstreams/sessions.js';

/** For the server (again at each ring change), and for CLI commands that validate client metadata, store tokens or end sessions. */
export function providerFactory(config: Config, kv: Kv, metrics?: Metrics) {
  const accounts = new Accounts(kv, config.accounts.argon2);
  // What a change ends between two writes (a person's, an API's, a client's) is kept owed while it runs (accounts/owed-endings.ts).
  const owed = new OwedKeeper(kv, config.ttl);
  const revocations = new RevocationList(kv, { skew: CLOCK_TOLERANCE, accessTokenLifetime: longestAccessTokenLifetime(config), grantLifetime: config.ttl.grant, signedLifetime: longestSignedLifetime(config), publishLead: config.keys.publishLead, refreshInterval: config.keys.refreshInterval, sessionLifetimes: { idle: config.ttl.session, max: config.ttl.sessionMax }, owed });
  const apis = new Apis(kv, {
    builtin: builtinResourceServers(config),
    configured: config.resourceServers,
    maxAccessTokenTTL: config.ttl.apiAccessTokenMax,
    endings: grantEndings(revocations),
    owed,
  });
  const signedInWith = new SessionCredentials(kv, sessionRecordsLifetime(config.ttl));
  // What a person allowed at an API removed and added again since does not carry over to it.
  const consents = new Consents(
    kv,
    config.ttl.grant,
    async (identifier, givenAt) => {
      const api = await apis.find(identifier);
      return api !== undefined && predates(api, givenAt);
    },
    // A session's grant given before its person's or its client's cutoff is not taken up again (the
    // account as the session check read it; the client's mark from the cache: no round trip more).
    // `fresh`: the account and the marks read anew, and whether the grant itself ended (a check
    // after the consent's writes: an ending with no cutoff, a sign-out or an app's RFC 7009
    // revocation, ended the grant in between). Its tokens revoked with the grant kept (a sign-out
    // keeping offline access) end nothing here: see grantWasEnded.
    async ({ accountId, clientId, iat, jti }, ctx, fresh) => {
      const [account, delegated, revoked] = await Promise.all([
        (fresh ? undefined : accountReadFor(ctx, accountId)) ?? accounts.find(accountId),
        revocations.delegatedEnded(clientId, iat, fresh),
        fresh && jti !== undefined ? revocations.grantWasEnded(jti) : false,
      ]);
      return delegated || revoked || !account || endedWithPerson(account, iat, 'token', clientId);
    },
    // Which credentials signed in the session a consent is given in: removing one forgets it.
    (sessionUid) => signedInWith.of(sessionUid),
  );
  const limits = new RateLimits(kv, config.rateLimit, metrics);
  const federated = new FederatedSessions(kv, sessionRecordsLifetime(config.ttl));
  const upstreams = new Upstreams(kv, config.keys.secrets);
  const upstreamClients = new UpstreamClients(
    { timeout: config.upstreams.timeout * 1000, maxBytes: 1024 * 1024, allowPrivateNetworks: config.outbound.allowPrivateNetworks },
    (id) => `${config.issuer}/upstream/${id}/callback`,
  );
  // A logout token an app's endpoint did not take is sent again by the servers' sweeps, the CLI's endings' too.
  const keepLogoutRetry = logoutRetryKeeper(new DueEndings(kv), config.backchannel.retrySchedule, metrics);
  const upstreamLogout = new UpstreamLogout(kv, upstreams, upstreamClients, federated, config.issuer, config.upstreams.stateTtl);
  /**
   * `verifier` is the key ring service's (the server's); without one (CLI commands that only
   * validate metadata or store tokens), the ring's own public keys. `signing` too (the server's:
   * which key signs, followed at once when the current one is revoked).
   */
  const build = (keyring: Keyring, verifier: JWTVerifyGetKey = createLocalJWKSet(keyring.publicJwks()), signing?: SigningGate) =>
    createProvider({
      config,
      kv,
      keyring,
      verifier,
      ...(signing ? { signing } : {}),
      accounts,
      apis,
      revocations,
      consents,
      rateLimits: limits,
      renderError: (ctx, out, error) => renderProviderError(ctx, out, error),
      logoutPages,
      devicePages: devicePages(apis, unlessConfigured(config, (clientId) => new AdapterIndexes(kv).managesItself(clientId))),
      federated,
      upstreamLogout,
      upstreamKnown: (id, issuer, made) => upstreams.offers(id, issuer, made),
      keepLogoutRetry,
      owed,
    });
  // What ends with a client removed or changed: the store's hooks, and a configured client's change across a restart (main.ts).
  const endings = clientEndings({ config, kv, apis, revocations, consents });
  // A client's deletion or change cut off after its write, finished by the sweep (accounts/owed-endings.ts).
  const clientEnding = (ending: OwedClientEnding) => finishClientEnding(kv, endings, ending);
  return { accounts, apis, consents, revocations, limits, federated, upstreams, upstreamClients, upstreamLogout, clientEndings: endings, owed, clientEnding, build };
}

