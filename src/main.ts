/**
 * `serve`: configuration → store → keys → accounts → provider → app → listen. The key ring is
 * followed while serving: each change (a rotation here, on another instance, or by the CLI)
 * builds a new provider that takes over new requests.
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Provider } from 'oidc-provider';
import { Accounts, finishPersonEnding } from './accounts/accounts.js';
import { Apis } from './apis/apis.js';
import { AccountSessions, throughUpstream } from './accounts/sessions.js';
import { endingsThrough } from './upstreams/removal.js';
import { SessionCredentials } from './accounts/session-credentials.js';
import { LoginThrottle } from './accounts/throttle.js';
import { SecondFactors } from './accounts/second-factors.js';
import { Sealer } from './keyring/sealing.js';
import { SessionActivity } from './accounts/session-activity.js';
import { adminApi } from './registration/admin-api.js';
import { Clients } from './registration/clients.js';
import { developerPages } from './registration/developer-pages.js';
import { accountPages } from './accounts/page/account-pages.js';
import { SESSION_SIGN_OUT_PATH, sessionSignOutFailed } from './accounts/page/sessions-section.js';
import { passkeysSection } from './accounts/page/passkeys-section.js';
import { authenticatorSection } from './accounts/page/authenticator-section.js';
import { recoveryCodesSection } from './accounts/page/recovery-codes-section.js';
import { linksSection } from './accounts/page/links-section.js';
import { WaysIn } from './accounts/ways-in.js';
import { OwedEndings } from './accounts/owed-endings.js';
import { checkConfiguredClients } from './registration/policy.js';
import { answerClientErrors, createApp } from './app.js';
import { providerFactory } from './provider-factory.js';
import { BackchannelDelivery } from './provider/backchannel-delivery.js';
import { DueEndings } from './store/due-endings.js';
import { envFileWarning, issuerWarnings, publicSecretsWarning, type Config } from './config.js';
import { homePage } from './interactions/home.js';
import { interactionRoutes } from './interactions/routes.js';
import { keyRevocationHorizon, openKeyring, publishedRotationPolicy } from './keyring/index.js';
import { jwksEndpoint, WELL_KNOWN_JWKS_PATH } from './keyring/jwks-endpoint.js';
import { DpopNonces, dpopNonceSecret } from './keyring/dpop-nonces.js';
import { fixedHeaders } from './http/preset-headers.js';
import type { KeyringService } from './keyring/service.js';
import { createLogger, type Logger } from './ops/logger.js';
import { listen, portInUse, StartConflicts } from './ops/listen.js';
import { Metrics, serveMetrics, type MetricsListener } from './ops/metrics.js';
import { scoped } from './http/layers.js';
import { ProviderHost } from './provider/host.js';
import { acceptedDocumentsKept } from './provider/provider.js';
import { configuredClientsChanged } from './provider/client-endings.js';
import { recordConfiguredClientsAgain } from './store/configured-clients.js';
import { documentsSwitchedOff } from './registration/client-metadata-documents.js';
import { ClientMetadataDocumentCache } from './store/client-metadata-documents.js';
import { mfaEverywhereChange, notRequiredNow, notRequiredSince } from './store/mfa-everywhere.js';
import { CLOCK_TOLERANCE, longestAccessTokenLifetime, sessionRecordsLifetime } from './lifetimes.js';
import { CLOCK_AGREEMENT_MS, epochSeconds, followStoreClock, untilSecond } from './clock.js';
import { discoveryDocuments } from './provider/discovery.js';
import { revocationFeed } from './revocation/feed.js';
import { SenderConstraint } from './http/sender-constraint.js';
import { FEED_PATH } from './apis/feed-server.js';
import { GrantRevocation } from './revocation/grants.js';
import { RevocationList } from './revocation/list.js';
import { tellLoweredLifetimes } from './revocation/lowered-lifetimes.js';
import { UpstreamLinks } from './accounts/links.js';
import { LogoutTokenReplays } from './upstreams/logout-tokens.js';
import { PendingSignIns } from './upstreams/pending.js';
import { Upstreams } from './upstreams/registry.js';
import { announceIssuer, announceServer, evictingStore, ringServedElsewhere, servedElsewhere, unreachableStore } from './store/control.js';
import { openStore, type Kv } from './store/index.js';
import { isStoreOutage } from './store/outage.js';
import { inBatches } from './store/kv.js';
import { AdapterIndexes } from './store/adapter-indexes.js';
import { unlessConfigured } from './interactions/client-branding.js';

export interface Running {
  /** Where it listens, e.g. http://127.0.0.1:3000 (not the issuer, which may be a proxy's URL). */
  readonly url: string;
  readonly port: number;
  /** The provider in service now (it is replaced when the key ring changes). */
  readonly provider: Provider;
  readonly providers: ProviderHost;
  readonly kv: Kv;
  readonly accounts: Accounts;
  /** Passkeys, authenticator apps and recovery codes. */
  readonly secondFactors: SecondFactors;
  /** APIs and operator grants. */
  readonly apis: Apis;
  /** Registered clients, as the admin API and the developer page change them (a re-made id waits out its predecessor's endings). */
  readonly clients: Clients;
  readonly keys: KeyringService;
  readonly revocations: RevocationList;
  /** Revokes grants (and their JWT access tokens): for sign-out, disabling a person, admin tools. */
  readonly grants: GrantRevocation;
  /** The sweeps that send logout tokens again and end expired sessions (provider/backchannel-delivery.ts). */
  readonly backchannel: BackchannelDelivery;
  /** Where Prometheus scrapes this process, when it serves metrics itself. */
  readonly metricsUrl: string | undefined;
  /** Stops accepting connections, lets in-flight requests finish, closes the store. */
  close(): Promise<void>;
}

/** People whose authenticator-app records resealUnderFirstSecret reads at once. */
const RESEAL_BATCH = 64;

/**
 * Seals again under the first of keys.secrets what is sealed under another of them besides the
 * key ring (which its own maintenance re-seals): upstreams' client secrets and people's
 * authenticator-app secrets, so that an operator who rotated KEYS_SECRETS (a new secret put first)
 * can drop the old one once every instance runs with the new one first and one has started since.
 * Each record is rewritten by compare-and-set, so instances starting at once lose nothing. Only
 * while more than one secret is configured (with one, nothing is sealed under another that opens).
 * A failure is logged, not fatal: the next start tries again. Pending enrolments (at most
 * ENROLMENT_TTL, ten minutes) are not: the person starts again.
 */
export async function resealUnderFirstSecret(
  config: Config,
  { accounts, secondFactors, upstreams }: { accounts: Accounts; secondFactors: SecondFactors; upstreams: Upstreams },
  logger?: Logger,
): Promise<{ upstreams: number; authenticatorApps: number } | undefined> {
  if (config.keys.secrets.length < 2) return undefined;
  try {
    const resealedUpstreams = await upstreams.resealSecrets();
    const authenticatorApps = (await inBatches(await accounts.subs(), RESEAL_BATCH, (sub) => secondFactors.totp.reseal(sub))).filter(Boolean).length;
    const resealed = { upstreams: resealedUpstreams, authenticatorApps };
    if (resealedUpstreams || authenticatorApps) logger?.info({ event: 'keys.resealed', ...resealed }, 'sealed again under the first of keys.secrets');
    return resealed;
  } catch (error) {
    logger?.error({ event: 'keys.reseal_failed', err: error instanceof Error ? error.message : String(error) }, 'sealing again under the first of keys.secrets failed; the next start tries again');
    return undefined;
  }
}

/** Seconds between two publications of this server's lifetimes (revocation/list.ts publishLifetimes). */
const LIFETIMES_EVERY = 60;

export async function serve(config: Config, logger: Logger = createLogger(config.log.level)): Promise<Running> {
  // This server's metrics. A worker answers its primary's scrapes from the start, as it did when
  // the answerer was installed at import time.
  const metrics = new Metrics();
  if (cluster.isWorker) metrics.reportToPrimary();
  const kv = openStore(config, logger, metrics);
  // Once per server: with --workers, the primary says it (src/workers.ts), not every worker.
  const insecure = publicSecretsWarning(config);
  if (kv.kind !== 'embedded' && insecure && !cluster.isWorker) logger.warn({ settings: insecure.settings }, insecure.message);
  if (!cluster.isWorker) {
    // The INSECURE warning names the secrets ./.env holds itself; this one names every other setting there.
    const envFile = envFileWarning(kv.kind !== 'embedded' && insecure ? insecure.settings.map((setting) => /\(([A-Z_]+)\)/.exec(setting)?.[1] ?? '') : []);
    if (envFile) logger.warn({ event: 'config.env_file_ignored' }, envFile);
    for (const warning of issuerWarnings(config)) logger.warn(warning);
  }
  // METRICS_PORT is never suggested for a busy PORT, nor PORT for a busy METRICS_PORT (below).
  const listening = { port: config.port, host: config.host, names: { port: 'PORT', host: 'HOST' }, others: [config.metrics.port] };
  if (!cluster.isWorker) {
    // A second Latchkey from the same directory holds the ports (and the embedded store): said first,
    // together, before anything is made (a start that cannot listen wrote a new signing key into
    // keys/, which a later start on Redis would import: newcomer pass, 2026-12-06).
    const conflicts = (
      await Promise.all([
        portInUse(listening),
        config.metrics.enabled ? portInUse({ port: config.metrics.port, host: config.metrics.host, names: { port: 'METRICS_PORT', host: 'METRICS_HOST' }, others: [config.port] }) : undefined,
        kv.kind === 'embedded' ? servedElsewhere(config) : undefined,
        kv.kind === 'embedded' ? ringServedElsewhere(config) : undefined,
      ])
    ).filter((conflict) => conflict !== undefined);
    if (conflicts.length) {
      await kv.close();
      throw conflicts.length > 1 ? new StartConflicts(conflicts) : conflicts[0]!;
    }
  }
  // Said once the start goes on: before the conflicts above, it was the last line a refused start
  // left on the terminal, as if it ran (pino writes after the refusal's own lines; ninth newcomer pass).
  if (kv.kind === 'embedded') {
    logger.warn(
      { file: resolve(config.embedded.file) },
      'REDIS_URL is not set: using the embedded in-process store (development only: clients and users are kept in the file, sessions and tokens end with the process)',
    );
  }
  // Planned with what the other servers said from the first maintenance on (the revocation list's
  // lifetimes; the provider's list is made later), not this process's settings alone.
  const said = new RevocationList(kv, { skew: CLOCK_TOLERANCE, accessTokenLifetime: longestAccessTokenLifetime(config) });
  const keys = await openKeyring(config, kv, logger, said).catch(async (error: unknown) => {
    await kv.close();
    throw kv.kind === 'redis' && isStoreOutage(error) ? unreachableStore(config, kv, error) : error;
  });
  // A Redis that evicts keys would drop revocations first (Kv.evictionPolicy): refused, in one line.
  const evicts = await kv.evictionPolicy?.().catch((error: unknown) => {
    logger.warn({ err: { message: (error as Error).message } }, 'cannot tell whether Redis evicts keys (INFO refused): make sure its maxmemory-policy is noeviction');
    return undefined;
  });
  if (evicts) {
    await keys.close();
    await kv.close();
    throw evictingStore(config, evicts);
  }
  // A master that acknowledges writes no replica has loses, in a failover, the endings it acknowledged
  // last (Kv.acknowledgesUnreplicated); one that appends no write to a file but keeps snapshots comes
  // back from a restart on its last snapshot, every ending acknowledged since undone
  // (Kv.acknowledgesUnpersisted; fifteenth fresh-eyes passes; one that keeps nothing comes back empty,
  // and the store's epoch ends every token from before). Said at start by each process that opens the
  // store (with --workers, the primary does not), as the checks beside them are.
  const warnWhen = async (check: (() => Promise<boolean>) | undefined, refused: string, event: string, message: string) => {
    const holds = await check?.().catch((error: unknown) => {
      logger.warn({ err: { message: (error as Error).message } }, refused);
      return false;
    });
    if (holds) logger.warn({ event }, message);
  };
  await warnWhen(
    kv.acknowledgesUnreplicated?.bind(kv),
    'cannot tell whether Redis acknowledges writes before a replica has them (INFO refused): set min-replicas-to-write 1 and min-replicas-max-lag on every master that may fail over',
    'store.unreplicated_acks',
    'Redis acknowledges writes before any replica has them (min-replicas-to-write 0): a sign-out, revocation or other ending acknowledged just before a failover is lost with the master, and what it ended works again; set min-replicas-to-write 1 and min-replicas-max-lag 10 (or less) on every master (docs/operating.md)',
  );
  await warnWhen(
    kv.acknowledgesUnpersisted?.bind(kv),
    'cannot tell whether Redis appends every write to a file (INFO refused): run it with appendonly yes',
    'store.unpersisted_acks',
    'Redis appends no write to a file (appendonly no) but keeps RDB snapshots (save points, or a snapshot written or loaded since it started): a restart of it (a crash, an OOM kill, a container killed) brings back its last snapshot, every sign-out, revocation or other ending acknowledged since is undone, and what it ended works again; set appendonly yes on every master (docs/operating.md)',
  );
  // Tokens are stamped and cutoffs written on the store's clock, as every other process does
  // (clock.ts): read before anything is issued, and again with the lifetimes, every minute.
  // Said when it first differs, and again only when it moved by more than the measure can tell (no line a minute for a jitter of a millisecond).
  let told = 0;
  const followClock = async () => {
    if (!kv.time) return;
    const offset = await followStoreClock(() => kv.time!());
    if (Math.abs(offset - told) <= CLOCK_AGREEMENT_MS && (offset === 0) === (told === 0)) return;
    told = offset;
    logger.info({ event: 'clock.store_offset', offset_ms: offset }, offset ? `this machine's clock differs from Redis's by ${offset} ms: tokens are stamped and cutoffs written on Redis's clock` : "this machine's clock agrees with Redis's again");
  };
  await followClock().catch(async (error: unknown) => {
    if (!isStoreOutage(error)) return logger.warn({ err: { message: (error as Error).message } }, "cannot read Redis's clock (TIME refused): this machine's clock is used, and must agree with every other instance's and the CLI's");
    await keys.close();
    await kv.close();
    throw unreachableStore(config, kv, error);
  });
  const { accounts, apis, consents, revocations, limits, federated, upstreams, upstreamClients, upstreamLogout, clientEndings, owed: owedKeeper, clientEnding, build } = providerFactory(config, kv, metrics);
  // TOTP secrets are sealed under the same secrets as the signing keys kept in the store.
  const secondFactors = new SecondFactors(kv, new Sealer(config.keys.secrets), config.issuer);
  // How long what this server issues may live, said in the store before it issues anything and
  // again every LIFETIMES_EVERY seconds: every revocation entry, whoever writes it, then lives as
  // long as the tokens it ends, those issued under longer settings before a restart included.
  // An instance not requiring a second factor of everyone says so with them (store/mfa-everywhere.ts):
  // one started with the requirement then ends what it issued meanwhile (a rolling restart).
  const publishLifetimes = async () => {
    await revocations.publishLifetimes(LIFETIMES_EVERY);
    if (!config.accounts.mfa.required) await notRequiredNow(kv, (await revocations.accessLivesFor()) + LIFETIMES_EVERY);
  };
  // It stamps the store's epoch first, if none (revocation/list.ts epoch). Before this server says
  // its session lifetimes: whether sessions may have been saved under longer ones (moved below).
  const sessionLifetimesLowered = await (async () => {
    const lowered = await revocations.sessionLifetimesLowered();
    await publishLifetimes();
    return lowered;
  })().catch(async (error: unknown) => {
    await keys.close();
    await kv.close();
    throw kv.kind === 'redis' && isStoreOutage(error) ? unreachableStore(config, kv, error) : error;
  });
  const publishing = setInterval(() => {
    followClock().catch(() => {}); // kept as it was: the outage is told by the store's requests
    if (kv.kind === 'redis') announceIssuer(config, kv).catch(() => {}); // as the clock: a CLI run elsewhere reads it (store/control.ts)
    publishLifetimes().catch((error: unknown) => {
      logger.warn({ event: 'revocations.lifetimes_failed', err: error instanceof Error ? error.message : String(error) }, 'saying in the store how long tokens live failed; tried again in a minute');
    });
  }, LIFETIMES_EVERY * 1000);
  publishing.unref();
  // Retired keys are kept as long as any instance said what it signed may live, not only this one's settings.
  keys.retainFor(() => publishedRotationPolicy(config, revocations));
  const verifier = keys.verifier();
  // A current key revoked elsewhere is replaced before anything is signed with it (keyring/service.ts ready).
  const keyRevoked = revocations.keyRevokedCheck();
  // The store's epoch too (revocation/list.ts epoch; the same cached read): a store that lost
  // everything is stamped anew at the first signature after, so that what is issued after the loss
  // is not refused with what it forgot until the next check or publication stamps it.
  if (keyRevoked) keys.guardSigning(async (kid) => (await revocations.epoch(), keyRevoked(kid)));
  // A ring written back after a loss leaves out what the revocation list (if it outlived the ring) names.
  keys.writeBackWithout((kid) => revocations.keyRevoked(kid));
  // An older stored ring (a store gone back in time): the kid entries of its keys that left the ring
  // in service since written again, as keys revoke does (once: a write-back that waits on another's lock asks again).
  keys.keysCameBack(async (kids) => {
    const horizon = keyRevocationHorizon(config, await revocations.lifetimes());
    for (const kid of kids) if (!(await revocations.keyRevoked(kid))) await revocations.revokeKey(kid, horizon);
  });
  const providers = new ProviderHost(build(keys.ring, verifier, keys));
  // What a start ends and records before serving (configured clients and APIs changed, documents
  // switched off, secrets digested): each records what it did only once it is done, so a store that
  // goes away midway leaves it for the next start. Such a start ends as one that cannot reach the
  // store at first does, in one line naming the setting (it said ioredis's "max retries per
  // request" before the second blips pass), with what it opened closed.
  try {
    await checkConfiguredClients(providers.current, config.clients, await apis.delegableScopes());
    // A stored API that defines a reserved scope (added before such scopes were refused) is read
    // without it (apis.ts): said here, once, so the operator can re-add it with a scope of its own.
    // It no longer offers the scope: a token for it carrying the scope (issued by a release before)
    // ends at every API following the feed too, as introspection refuses it (a scoped api entry).
    if (!cluster.isWorker) {
      for (const { identifier, scopes } of await apis.reservedScopesIgnored()) {
        await revocations.revokeApiScopes(identifier, scopes);
        logger.warn({ api: identifier, scopes }, `the stored API ${identifier} defines the reserved scope ${scopes.join(' ')} (an OpenID Connect scope, or a privileged API's): it is ignored, so none of its tokens carries it and no grant gives it; remove the API and add it again with scopes of its own`);
      }
    }
    // A configured client changed in the configuration since the start before (another secret, made
    // public, narrowed, removed) ends what the same change written through the admin API would: once,
    // by the first instance that starts with the new configuration (client-endings.ts configuredClientsChanged).
    // Each worker too (with --workers the primary serves nothing): started at once, they may each end
    // it, as instances started at once may.
    {
      const changed = await configuredClientsChanged(kv, config.clients, clientEndings);
      if (changed.replaced.length || changed.removed.length) {
        logger.info({ event: 'clients.configuration_changed', replaced: changed.replaced, removed: changed.removed }, `configured clients changed since the last start (${[...changed.replaced.map((id) => `${id} changed`), ...changed.removed.map((id) => `${id} removed`)].join(', ')}): what the change ends is ended, as for the same change through the admin API`);
      }
      if (!changed.recorded) {
        logger.warn({ event: 'clients.configuration_differs' }, 'another instance recorded other configured clients while this one started: instances are running with different configurations (CLIENTS); finish the rolling restart, and every instance started with the new configuration ends what it changed');
      }
    }
    // A second factor required of everyone since the start before (accounts.mfa.required turned on):
    // the access tokens people hold from before end, as a client's own require_mfa raised ends its
    // people's (client-endings.ts); refreshes, codes and device codes of a weaker sign-in are refused
    // at the token endpoint already (patches/step-up.ts). Once, as for the configured clients.
    {
      const change = await mfaEverywhereChange(kv, config.accounts.mfa.required);
      // Or on already, while an instance not restarted yet without it signed people in after the
      // last ending (a rolling restart): what it issued ends now too.
      const issuedWithout = config.accounts.mfa.required && (await notRequiredSince(kv, await revocations.raisedEverywhereAt(), LIFETIMES_EVERY));
      if (change.turnedOn || issuedWithout) {
        await revocations.revokeRaisedEverywhere();
        // A cutoff "issued at or before this second": what this instance issues next is of a later one.
        await untilSecond(epochSeconds() + 1);
        logger.info({ event: 'accounts.mfa_required_everywhere' }, 'a second factor is required of everyone since the last start (accounts.mfa.required): the access tokens people held from before are ended; apps refresh them with a sign-in that used a second factor');
      }
      await change.record();
    }
    // Client ID Metadata Documents switched off: the clients documents named are removed, as a document
    // gone is (registration/client-metadata-documents.ts documentsSwitchedOff), once.
    if (!config.clientMetadataDocuments.enabled) {
      const ended = await documentsSwitchedOff(new ClientMetadataDocumentCache(kv, acceptedDocumentsKept(config)), clientEndings);
      if (ended.length) {
        logger.info({ event: 'client_metadata_documents.switched_off', clients: ended }, `Client ID Metadata Documents are switched off: the ${ended.length} client(s) documents named are removed, with what they were issued, as for a document gone`);
      }
    }
    // Likewise a configured API or operator grant (resourceServers) changed since the start before
    // (removed, a scope taken out, a grant narrowed), and a configured API new since then is another API (apis.ts configurationChanged).
    {
      const changed = await apis.configurationChanged();
      if (changed.removed.length || changed.narrowed.length || changed.added.length || changed.scopesTaken.length) {
        logger.info(
          { event: 'apis.configuration_changed', removed: changed.removed, added: changed.added, scopesTaken: changed.scopesTaken, narrowed: changed.narrowed },
          `configured APIs changed since the last start (${[...changed.removed.map((id) => `${id} removed`), ...changed.added.map((id) => `${id} added`), ...changed.scopesTaken.map((id) => `scopes taken out of ${id}`), ...changed.narrowed.map((id) => `grants of ${id} narrowed`)].join(', ')}): what the change ends is ended, as for the same change through the admin API`,
        );
      }
      if (!changed.recorded) {
        logger.warn({ event: 'apis.configuration_differs' }, 'another instance recorded other configured APIs while this one started: instances are running with different configurations (RESOURCE_SERVERS); finish the rolling restart, and every instance started with the new configuration ends what it changed');
      }
    }
    // A store that lost everything while this instance ran: the records the blocks above compare
    // with are written back with the key ring (keyring/service.ts afterLoss), so that a start with
    // a client or API changed or removed since still ends what was issued for it after the loss.
    keys.afterLoss(async () => {
      await recordConfiguredClientsAgain(kv, config.clients);
      await apis.recordConfigurationAgain();
    });
    // An access token lifetime lowered since tokens were issued: the APIs verifying JWTs locally are told (revocation/lowered-lifetimes.ts).
    {
      const told = await tellLoweredLifetimes(apis, revocations, config.ttl);
      if (told.length) {
        logger.info({ event: 'apis.lifetimes_bounded', apis: told }, `access tokens for ${told.length} API(s) may have been issued with a longer lifetime than configured now: APIs following the revocation feed end them at the lifetime configured now, as introspection does`);
      }
    }
    // Clients whose secret the release before kept in clear: by its digest from now on (store/adapter.ts).
    if (!cluster.isWorker) {
      const digested = await new AdapterIndexes(kv).digestClientSecrets();
      if (digested) logger.info({ event: 'clients.secrets_digested', clients: digested }, `${digested} stored client secret(s) kept in clear by the release before are now kept by their digest`);
    }
  } catch (error) {
    clearInterval(publishing);
    await keys.close();
    await kv.close();
    throw kv.kind === 'redis' && isStoreOutage(error) ? unreachableStore(config, kv, error) : error;
  }
  keys.onChange((ring) => providers.replace(build(ring, verifier, keys)));
  keys.start();
  // KEYS_SECRETS rotated (a new secret put first): the key ring is sealed again under it by its
  // maintenance, and so is everything else sealed under an older one, here.
  await resealUnderFirstSecret(config, { accounts, secondFactors, upstreams }, logger);
  // Our own routes take the host and use the provider in service per request.
  const clients = new Clients(kv, providers, apis, revocations, config.clients.map((client) => client.client_id));
  const grants = new GrantRevocation(kv, revocations);
  const sessions = new AccountSessions(kv, providers, accounts);
  const credentials = new SessionCredentials(kv, sessionRecordsLifetime(config.ttl));
  const due = new DueEndings(kv);
  const links = new UpstreamLinks(kv, accounts);
  const waysIn = new WaysIn(kv, accounts, secondFactors, links, upstreams);
  // What removing an upstream ends (the admin API's removal, and the sweep's for one cut off), with
  // the consents its grants were made under.
  const endGrantWithConsent = grants.revokingWithConsent(consents);
  const endThroughUpstream = endingsThrough({
    federated,
    findSession: (uid) => providers.current.Session.findByUid(uid),
    linksOf: async (uid) => (await credentials.of(uid))?.links,
    endSession: (session) => sessions.endWithEveryGrant(session, endGrantWithConsent),
    peopleLinked: (upstream) => links.peopleLinkedTo(upstream),
    endSignedInThrough: (sub, upstream) => sessions.endSignedInWith(sub, credentials, throughUpstream(upstream), endGrantWithConsent, undefined, consents),
  });
  // What a removed credential, a changed password, an operator's reset, an upstream's or an API's
  // removal, a client's deletion or change or a person's ending ends, finished by the sweep when its
  // request was cut off.
  const owed = new OwedEndings({
    keeper: owedKeeper,
    sessions,
    credentials,
    grants,
    consents,
    throughUpstream: endThroughUpstream,
    apiEnding: (ending) => apis.finishOwed(ending),
    clientEnding,
    personEnding: (ending) => finishPersonEnding(revocations, ending),
  });
  // The admin API and the feed take a DPoP-bound token only with its key's proof (with one of the
  // engine's nonces when dpop.requireNonce asks for them at the provider).
  const senderConstraint = new SenderConstraint(kv, CLOCK_TOLERANCE, config.dpop.requireNonce ? new DpopNonces(dpopNonceSecret(config.keys.secrets)) : undefined);

  const mfaSections = { secondFactors, logger, metrics };
  const jwksPaths = [providers.current.pathFor('jwks'), WELL_KNOWN_JWKS_PATH];
  // The JWKS at the engine's path (discovery's jwks_uri) and at /.well-known/jwks.json (keyring/jwks-endpoint.ts),
  // and discovery: answered by the app's request listener before Koa (http/ahead.ts), else by their middleware.
  const jwks = jwksEndpoint(jwksPaths, () => keys.jwks, fixedHeaders);
  const discovery = discoveryDocuments(providers);
  // Shutting down (close, below), every answer closes its connection: Node's server.close() goes on
  // serving a keep-alive connection that stays busy (a client's pool, a load balancer's connection
  // pinned to this instance) and answers it keep-alive, so such a client never moved to another
  // instance, and its connection was cut when shutdownTimeout ran out. Requests arriving from then
  // on (the answers written ahead of Koa too) here; those in flight in the app (requestContext).
  let closing = false;
  const app = createApp({
    shuttingDown: () => closing,
    config,
    providers,
    kv,
    keyring: () => keys.ring,
    logger,
    metrics,
    ahead: { answers: [jwks.ahead, discovery.ahead], admit: (route, ip) => limits.admitsAhead(route, ip) },
    failurePages: { [SESSION_SIGN_OUT_PATH]: sessionSignOutFailed },
    routes: [
      // Per-address limits on every endpoint the provider serves (the JWKS too, answered just below),
      // the feed, and our own surfaces: the admin API, the developer and account pages and the sign-in pages.
      limits.middleware(providers.current, {
        jwks: WELL_KNOWN_JWKS_PATH, // counted as the JWKS route it mirrors
        revocation_feed: FEED_PATH,
        admin: /^\/admin(?:\/|$)/i,
        developer: /^\/developer(?:\/|$)/i,
        account: /^\/account(?:\/|$)/i,
        interaction: /^\/interaction\//i,
        upstream: /^\/upstream\//i,
      }),
      homePage({ issuer: config.issuer, jwksPath: providers.current.pathFor('jwks') }),
      // Scoped here: keyring/ sits below http/ (http/layers.ts), and its own test is this exact path.
      scoped({ paths: jwksPaths }, jwks.middleware),
      discovery.middleware,
      revocationFeed({ issuer: config.issuer, keys: verifier, list: revocations, apis, clockTolerance: CLOCK_TOLERANCE, senderConstraint }),
      adminApi({
        issuer: config.issuer,
        senderConstraint,
        providers,
        clients,
        accounts,
        apis,
        grants,
        consents,
        revocations,
        sessions,
        upstreams,
        endThroughUpstream,
        links,
        owed,
        secretRotationGrace: config.registration.secretRotationGrace,
        secondFactors,
        onSecondFactorsReset: (sub) => {
          metrics.secondFactorEnrolments.inc({ method: 'all', action: 'reset' });
          logger.info({ event: 'second_factor.reset', sub, by: 'admin_api' }, "an operator reset a person's second factors");
        },
      }),
      developerPages({
        issuer: config.issuer,
        providers,
        clients,
        sessions,
        csrfKey: config.cookie.keys[0]!,
        secretRotationGrace: config.registration.secretRotationGrace,
        maxAppsPerDeveloper: config.registration.maxAppsPerDeveloper,
        reauthenticateAfter: config.accounts.reauthenticateAfter,
        mfaRequired: config.accounts.mfa.required,
      }),
      accountPages({
        // Sections of other modules (passkeys, authenticator app, recovery codes): see accounts/page/account-page.ts.
        // Passkeys, authenticator app and recovery codes (src/accounts/page/, issue 15); upstream links (issue 16).
        extensions: [
          passkeysSection({ ...mfaSections, waysIn }),
          authenticatorSection(mfaSections),
          recoveryCodesSection(mfaSections),
          linksSection({
            links,
            waysIn,
            logger,
            offered: () => upstreams.list(),
          }),
        ],
        issuer: config.issuer,
        providers,
        accounts,
        sessions,
        csrfKey: config.cookie.keys[0]!,
        throttle: new LoginThrottle(kv, config.accounts.throttle),
        grants,
        consents,
        activity: new SessionActivity(kv, config.ttl.session),
        owed,
        logger,
        reauthenticateAfter: config.accounts.reauthenticateAfter,
        secondFactorBeyond: async (sub, sessionUid) => {
          const { passkeys, totp } = await secondFactors.records.read(sub);
          return passkeys.some((passkey) => passkey.addedIn !== sessionUid) || (totp !== undefined && totp.addedIn !== sessionUid);
        },
      }),
      ...interactionRoutes({
        providers,
        accounts,
        throttle: new LoginThrottle(kv, config.accounts.throttle),
        consents,
        logger,
        metrics,
        csrfKey: config.cookie.keys[0]!,
        upstream: {
          upstreams,
          clients: upstreamClients,
          logout: upstreamLogout,
          pending: new PendingSignIns(kv, config.upstreams.stateTtl),
          links,
          federated,
          sessions,
          logoutTokens: new LogoutTokenReplays(kv),
          grants,
          stateTtl: config.upstreams.stateTtl,
        },
        secondFactors,
        mfaRequired: config.accounts.mfa.required,
        accountPage: '/account',
        managesItself: unlessConfigured(config, (clientId) => new AdapterIndexes(kv).managesItself(clientId)),
      }),
    ],
  });

  const handle = app.callback();
  const server: Server = createServer(
    metrics.arrivals((request, response) => {
      if (closing) response.setHeader('connection', 'close');
      return handle(request, response);
    }),
  );
  // Slow clients cannot hold a connection open forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  // A request Node's parser refuses (headers over 16 KiB, a control byte, an unknown method) gets a JSON answer with our headers.
  answerClientErrors(server, config);
  let unannounce: (() => Promise<void>) | undefined;
  let metricsListener: MetricsListener | undefined;
  try {
    // Taken meanwhile (checked at the start, above): said by the step that meets it.
    await listen(server, listening);
    // The CLI finds this server (and, on the embedded store, its live state) through these.
    const pid = cluster.isWorker ? process.ppid : process.pid;
    unannounce = await announceServer(config, kv, pid, (message) => logger.warn(message));
    // In a cluster the primary serves every worker's metrics; a single process serves its own.
    if (config.metrics.enabled && !cluster.isWorker) metricsListener = await serveMetrics(config.metrics.host, config.metrics.port, logger, metrics, config.metrics.hosts);
  } catch (error) {
    // A start that failed (a busy METRICS_PORT, say) leaves no control socket or record behind
    // that would tell the CLI, or a person listing data/, that a server runs here.
    clearInterval(publishing);
    await unannounce?.();
    server.close();
    await keys.close();
    await kv.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info({ port, issuer: config.issuer, store: kv.kind }, 'latchkey is listening');
  // Logout tokens an app did not take, sent again, and sessions that expired holding an app, ended
  // with their apps told: swept every backchannel.sweepInterval seconds (provider/backchannel-delivery.ts).
  const backchannel = new BackchannelDelivery({
    due,
    owed,
    providers,
    sessions,
    grants,
    schedule: config.backchannel.retrySchedule,
    interval: config.backchannel.sweepInterval,
    logger,
    metrics,
    sessionMax: config.ttl.sessionMax,
  });
  backchannel.start();
  // Sessions that end earlier under lowered session lifetimes are due then: only when an instance
  // said longer ones that sessions may still live under, or none said any (a release before said
  // none), as the scan reads every session holding an app (in the background; revocation/list.ts
  // sessionLifetimesLowered, read at the start before this server said its own).
  (sessionLifetimesLowered ? backchannel.endsAsConfigured() : Promise.resolve(0)).then(
    (moved) => moved && logger.info({ event: 'sessions.ends_moved', sessions: moved }, `${moved} session(s) end earlier under the session lifetimes configured now: their apps' session-bound tokens end with them`),
    (error: unknown) => logger.warn({ event: 'sessions.ends_move_failed', err: (error as Error).message }, 'moving the ends of sessions under the session lifetimes configured now failed: they end at their stored expiry'),
  );
  metrics.observeSigningKeys(() => keys.ring.keys);

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    get provider() {
      return providers.current;
    },
    providers,
    kv,
    accounts,
    secondFactors,
    apis,
    clients,
    keys,
    revocations,
    grants,
    metricsUrl: metricsListener?.url,
    backchannel,
    async close() {
      closing = true;
      clearInterval(publishing);
      await backchannel.close();
      await unannounce?.();
      await keys.close();
      // Stop accepting; requests in flight get shutdownTimeout seconds, then their connections go.
      const deadline = setTimeout(() => server.closeAllConnections(), config.shutdownTimeout * 1000);
      await new Promise<void>((done) => {
        server.close(() => done());
        server.closeIdleConnections();
      });
      clearTimeout(deadline);
      await metricsListener?.close();
      // Answering nothing more: the last moment it issued without the requirement (store/mfa-everywhere.ts).
      if (!config.accounts.mfa.required) await notRequiredNow(kv, (await revocations.accessLivesFor()) + LIFETIMES_EVERY, false).catch(() => {});
      await kv.close();
    },
  };
}
