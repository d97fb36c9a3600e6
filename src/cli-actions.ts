/**
 * What each `latchkey` command does (src/cli.ts holds the commands' words, options and help, and
 * loads this module only when a command runs). Every command reads the same configuration
 * (config/ + env), so it talks to the same store as the server: Redis when REDIS_URL is set, else
 * the embedded store — a running server's, through its control socket, so the command acts on its
 * live state (see src/store/control.ts). Each command says on stderr which store it acted on.
 */
import cluster from 'node:cluster';
import { z } from 'zod';
import type { Command } from 'commander';
import { AccountError, Accounts, untilEndingPassed } from './accounts/accounts.js';
import { Apis } from './apis/apis.js';
import { ConfigError, DEFAULT_KEYRING_SECRET, envWarnings, loadConfig, MAX_WORKERS, type Config } from './config.js';
import { SealError, UnknownSecret } from './keyring/sealing.js';
import { StartConflicts } from './ops/listen.js';
import { builtinResourceServers } from './apis/builtin.js';
import { CLOCK_TOLERANCE, longestAccessTokenLifetime, longestSignedLifetime, sessionRecordsLifetime } from './lifetimes.js';
import { epochSeconds, followStoreClock } from './clock.js';
import type { Clients, ClientMetadata } from './registration/clients.js';
import type { GrantRevocation } from './revocation/grants.js';
import type { Consents } from './provider/consents.js';
import type { SignedInWith } from './accounts/sessions.js';
import { RevocationList } from './revocation/list.js';
import { grantEndings } from './revocation/api-endings.js';
import type { KeepsOwed } from './store/due-endings.js';
import type { Kv } from './store/index.js';
import type { Keyring } from './keyring/keyring.js';
import { openTarget, StoreAccessError, unreachableStore } from './store/control.js';
import { isStoreOutage, storeRefusal } from './store/outage.js';

/** Failures a user can fix (by class name: ClientError's and RotationError's modules are loaded lazily): one line, exit 1. */
const USER_ERRORS = new Set([
  ConfigError.name, AccountError.name, 'ClientError', 'ApiError', 'RotationError', SealError.name, StoreAccessError.name, 'StartupError',
  'UpstreamError', 'InitialAccessTokenError', 'RingUnusable', 'EmbeddedFileUnusable',
]);

class UsageError extends Error {
  override name = 'UsageError';
}

/** The command being run, e.g. `users add`, for "see latchkey users add --help". */
let commandPath = '';
const seeHelp = () => `see latchkey ${commandPath ? `${commandPath} ` : ''}--help`;

/** What went wrong, in one line (a stack trace only for what is a bug). */
function oneLine(error: unknown): string {
  if (error instanceof UsageError) return `${error.message}; ${seeHelp()}`;
  // The CLI beside a server must hold the server's secrets; `serve` itself is the server.
  if (error instanceof UnknownSecret && commandPath !== 'serve') {
    // Sealed under the public default: the server runs without KEYS_SECRETS, where "the same as the
    // server" sent a newcomer who had exported their own to look for one there (tenth newcomer pass).
    const unset = error.sealedWith(DEFAULT_KEYRING_SECRET) ? 'it was sealed with the public development secret, which a server started without KEYS_SECRETS uses; unset KEYS_SECRETS here to act on its store, or ' : '';
    return `${error.message}: ${unset}give latchkey the same KEYS_SECRETS as the server`;
  }
  // The server's own: the secret that sealed them is the one to start with (a new one goes in front of it, not instead).
  // Sealed under the public development secret (a first start without KEYS_SECRETS): named, since
  // no message said what "old" was there (newcomer pass of 2026-12-06).
  if (error instanceof UnknownSecret && error.sealedWith(DEFAULT_KEYRING_SECRET)) {
    const way = `KEYS_SECRETS=<yours>,${DEFAULT_KEYRING_SECRET}`;
    // Production refuses the public secret among keys.secrets (review): the ring is sealed again under the first secret at a start outside it.
    return process.env.NODE_ENV === 'production'
      ? `${error.message}: it was sealed with the public development secret (keys.secrets in config/default.yaml), which production refuses; start once without NODE_ENV=production and with ${way} (the ring is sealed again under yours), then in production with yours`
      : `${error.message}: it was sealed with the public development secret (keys.secrets in config/default.yaml); list yours first and keep that one after it: ${way}`;
  }
  if (error instanceof UnknownSecret) return `${error.message}: start with the KEYS_SECRETS that sealed it (to change the secret, list the new one first and keep the old one after it: KEYS_SECRETS=new,old)`;
  // Several conflicts at start: one line each, each as fail() begins a line.
  if (error instanceof StartConflicts) return error.lines.join('\nlatchkey: ');
  if (error instanceof Error && USER_ERRORS.has(error.name)) return error.message;
  if (isStoreOutage(error)) return `the store is unreachable (${(error as Error).message})`;
  const refusal = storeRefusal(error);
  if (refusal) return `the store refused the command (${refusal.message})`;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

function fail(error: unknown): never {
  console.error(`latchkey: ${oneLine(error)}`);
  process.exit(1);
}

/** Said once a process (a server's workers read the same environment: the primary says it), before the settings are read. */
let envChecked = cluster.isWorker;

/** `serving`: for `serve` (loadConfig). */
function config(serving = false): Config {
  try {
    // A misspelt setting (REDIS_ULR) is no setting, so nothing else would mention it: one line each, never a failure.
    if (!envChecked) for (const warning of envWarnings()) console.error(`latchkey: ${warning}`);
    envChecked = true;
    return loadConfig(process.env, undefined, { serving });
  } catch (error) {
    fail(error);
  }
}

/**
 * Runs a command against the store a running server serves (or the configured one when none
 * runs), says which on stderr, and closes it afterwards. The settings carry that server's issuer.
 * `needsServer`: what the command makes lives in a server's memory on the embedded store.
 */
async function withStore<T>(run: (kv: Kv, settings: Config) => Promise<T>, needsServer = false): Promise<void> {
  const configured = config();
  const target = await openTarget(configured, { needsServer, command: commandPath }).catch(fail);
  console.error(`latchkey: acting on ${target.description}`);
  if (target.warning) console.error(`latchkey: ${target.warning}`);
  const { kv } = target;
  // The running server's outbound policy too: a back-channel logout this command posts to an app on
  // the private network the server reaches would otherwise be refused here, and on the embedded store
  // (no sweep to hand it to) never sent (newcomer pass, 2026-12-06).
  const outbound = { allowPrivateNetworks: configured.outbound.allowPrivateNetworks || target.allowPrivateNetworks === true };
  if (outbound.allowPrivateNetworks && !configured.outbound.allowPrivateNetworks) {
    console.error(`latchkey: posting to apps on loopback and private addresses as the server at ${target.issuer} does (its OUTBOUND_ALLOW_PRIVATE_NETWORKS)`);
  }
  const settings: Config = { ...configured, issuer: target.issuer, outbound };
  try {
    // What this command stamps or cuts off is on the store's clock, as the servers' (clock.ts).
    // Under an ACL without TIME, this machine's clock, as before (it must then agree with the
    // servers', which warn at start); the command itself says what else the store refuses.
    if (kv.time) {
      await followStoreClock(() => kv.time!()).catch((error: unknown) => {
        if (isStoreOutage(error)) throw error;
      });
    }
    await run(kv, settings);
  } catch (error) {
    await kv.close().catch(() => {});
    // Which setting and why, as serve says it (not ioredis's "max retries per request").
    fail(kv.kind === 'redis' && isStoreOutage(error) ? unreachableStore(configured, kv, error) : error);
  }
  await kv.close();
}

/**
 * The key ring's modules, loaded only by the commands that read, change or make a ring (keys,
 * sessions, upstreams add, a throwaway provider): they load jose, which the rest need not.
 */
async function ringModules() {
  const [index, keyring, lifecycle, service, stores] = await Promise.all([
    import('./keyring/index.js'),
    import('./keyring/keyring.js'),
    import('./keyring/lifecycle.js'),
    import('./keyring/service.js'),
    import('./keyring/stores.js'),
  ]);
  return { ...index, ...keyring, ...lifecycle, ...service, ...stores };
}

/** The revocation list; `owed`: keeps a person's ending owed while it runs (commands that end a person's tokens: owedKeeperOn). */
function revocationList(kv: Kv, settings: Config, owed?: KeepsOwed): RevocationList {
  return new RevocationList(kv, { skew: CLOCK_TOLERANCE, accessTokenLifetime: longestAccessTokenLifetime(settings), grantLifetime: settings.ttl.grant, signedLifetime: longestSignedLifetime(settings), ...(owed ? { owed } : {}) });
}


/** Revoking grants goes through the oidc-provider adapter, so it is loaded only when needed. */
async function grantRevocation(kv: Kv, settings: Config): Promise<GrantRevocation> {
  const { GrantRevocation } = await import('./revocation/grants.js');
  return new GrantRevocation(kv, revocationList(kv, settings, await owedKeeperOn(kv, settings)));
}

/**
 * People's remembered consents, for forgetting them. Whether an API was removed and added again
 * since a consent matters only when a grant is made from it, which the CLI never does.
 */
async function consentsOn(kv: Kv, settings: Config): Promise<Consents> {
  const { Consents } = await import('./provider/consents.js');
  return new Consents(kv, settings.ttl.grant, async () => false);
}

/** oidc-provider is imported only by the commands that need it: the rest start faster. */
async function clientsOn(kv: Kv, settings: Config): Promise<Clients> {
  const { Clients } = await import('./registration/clients.js');
  return new Clients(kv, { current: await validatingProvider(kv, settings) }, apisOn(kv, settings), revocationList(kv, settings), settings.clients.map((client) => client.client_id));
}

/**
 * A provider for commands that validate client metadata or store tokens and sign nothing: a
 * throwaway key will do, and the real ring (sealed in Redis) is not opened.
 */
async function validatingProvider(kv: Kv, settings: Config) {
  const [{ providerFactory }, { generateKey, Keyring }] = await Promise.all([import('./provider-factory.js'), ringModules()]);
  return providerFactory(settings, kv).build(new Keyring([await generateKey(2048, 'current')]));
}

/**
 * Ends a person's sessions that `signedInWith` picks, each with every grant it made (offline access
 * too) and the consent each was made under: what was signed in with a credential taken away goes with it. `opened`: sessionsOn's, taken
 * before anything changed (so a wrong KEYS_SECRETS refuses first). How many ended.
 */
async function endSessionsWithGrants(opened: Opened | undefined, kv: Kv, settings: Config, sub: string, signedInWith: SignedInWith): Promise<number> {
  if (!opened) return 0;
  const [{ SessionCredentials }, revocation, consents] = await Promise.all([import('./accounts/session-credentials.js'), grantRevocation(kv, settings), consentsOn(kv, settings)]);
  // ...and the consent each grant was made under (given, perhaps, by whoever held the credential).
  const endGrant = revocation.revokingWithConsent(consents);
  return opened.sessions.endSignedInWith(sub, new SessionCredentials(kv, sessionRecordsLifetime(settings.ttl)), signedInWith, endGrant, undefined, consents);
}

/**
 * What an operator's change ends, kept as owed until done (accounts/owed-endings.ts): a command cut
 * off after its write (exit 1) is finished by a running server's sweep. Undefined when no server
 * ever ran (`opened` undefined: no sessions either).
 */
async function owedEndingsOn(opened: Opened | undefined, kv: Kv, settings: Config) {
  if (!opened) return undefined;
  const [{ OwedEndings }, keeper, { SessionCredentials }, grants, consents] = await Promise.all([
    import('./accounts/owed-endings.js'),
    owedKeeperOn(kv, settings),
    import('./accounts/session-credentials.js'),
    grantRevocation(kv, settings),
    consentsOn(kv, settings),
  ]);
  const credentials = new SessionCredentials(kv, sessionRecordsLifetime(settings.ttl));
  return new OwedEndings({ keeper, sessions: opened.sessions, credentials, grants, consents });
}

/** Keeps what a command ends owed while it runs: a running server's sweep finishes one cut off (store/due-endings.ts, which loads the engine's adapter: only commands that end something load it). */
async function owedKeeperOn(kv: Kv, settings: Config): Promise<KeepsOwed> {
  const { OwedKeeper } = await import('./store/due-endings.js');
  return new OwedKeeper(kv, settings.ttl);
}

type Opened = Awaited<ReturnType<typeof sessionsOn>>;

/**
 * People's sessions, to end them, with the real ring: apps with back-channel logout get a logout
 * token signed with the current key. Opened before a command changes anything, so settings that
 * cannot open the ring (another KEYS_SECRETS than the server's) leave the person as they were
 * instead of half done. Undefined without a ring: no server ever ran on this store (no sessions
 * either), or the store lost everything under running servers (sessions made since, which the
 * servers' recheck ends at their next use, but whose apps this command cannot tell: said on stderr).
 */
async function sessionsOn(kv: Kv, settings: Config) {
  const ring = await ringOfSessions(kv, settings);
  return ring && sessionsWith(kv, settings, ring);
}

/** sessionsOn's ring (undefined, said on stderr, when there is none). */
async function ringOfSessions(kv: Kv, settings: Config): Promise<Keyring | undefined> {
  const { readRing, ringStore } = await ringModules();
  const snapshot = await readRing(await ringStore(settings, kv));
  if (!snapshot) {
    console.error('latchkey: the store has no key ring (no server has started on it, or it lost everything): no session was ended here and no app told; a running server ends them at their next use. After a loss, restart the servers and run this again (docs/operating.md)');
    return undefined;
  }
  return snapshot.ring;
}

async function sessionsWith(kv: Kv, settings: Config, ring: Keyring) {
  const [{ providerFactory }, { AccountSessions }] = await Promise.all([import('./provider-factory.js'), import('./accounts/sessions.js')]);
  const factory = providerFactory(settings, kv);
  const provider = factory.build(ring);
  return { sessions: new AccountSessions(kv, { current: provider }, factory.accounts), provider };
}

/**
 * `users disable` and `users remove`: ends every session of a person. The ring is opened now, as
 * sessionsOn's (before anything changes); the engine is built only when the person has a session
 * to end (endAll reads the person's sessions before it touches the engine), since loading it is
 * most of such a command's CPU and most people disabled or removed have no session open.
 */
async function allSessionsEnder(kv: Kv, settings: Config): Promise<((sub: string) => Promise<void>) | undefined> {
  const ring = await ringOfSessions(kv, settings);
  if (!ring) return undefined;
  return async (sub) => {
    const { AdapterIndexes } = await import('./store/adapter-indexes.js');
    if (!(await new AdapterIndexes(kv).sessionIds(sub)).length) return;
    await (await sessionsWith(kv, settings, ring)).sessions.endAll(sub);
  };
}

/**
 * A password is only ever read from standard input (never an argument, which `ps` and shell history
 * show): piped, with --password-stdin; at a terminal, asked for with or without it (the quick start's
 * `users add <name>` said "it asks for a password" and was refused, newcomer pass of 2026-12-06).
 */
function requirePasswordStdin(options: { passwordStdin?: boolean; password?: string }, command: string): void {
  if (options.password !== undefined) {
    throw new UsageError(`a password is not taken on the command line (shell history, ps): pipe it to --password-stdin, e.g. printf '%s' "$PASSWORD" | latchkey ${command} --password-stdin, or give --password-stdin alone at a terminal to be asked for it`);
  }
  if (!options.passwordStdin && !process.stdin.isTTY) {
    throw new UsageError(`--password-stdin is required: the password is read from standard input, e.g. printf '%s' "$PASSWORD" | latchkey ${command} --password-stdin`);
  }
}

/**
 * A password (or a client secret: `label`) typed at a terminal (not echoed), or piped in. Typed, a
 * password is asked twice: unseen, a slip of the finger would be the password (newcomer pass).
 */
async function readStdin(label = 'Password'): Promise<string> {
  if (process.stdin.isTTY) {
    const typed = await promptHidden(`${label}: `);
    if (label === 'Password' && (await promptHidden('Password again: ')) !== typed) throw new AccountError('the two passwords typed are not the same; nothing was changed');
    return typed;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Reads one line from the terminal without echoing it (raw mode); Ctrl-C or Ctrl-D give up. */
function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  input.setRawMode(true); // before the prompt: what is typed after it is never echoed
  process.stderr.write(prompt);
  input.resume();
  input.setEncoding('utf8');
  let typed = '';
  return new Promise((done, fail) => {
    const finish = (outcome: () => void) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      outcome();
    };
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') return finish(() => done(typed));
        if (char === '\u0003' || char === '\u0004') return finish(() => fail(new AccountError('no password given')));
        if (char === '\u007f' || char === '\b') typed = [...typed].slice(0, -1).join('');
        else if (char >= ' ') typed += char;
      }
    };
    input.on('data', onData);
  });
}

const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

/** The PAR, DPoP and second-factor flags of `clients add` and `clients update`, as client metadata (only those given). */
function requirements(options: { requirePar?: boolean; dpopBoundAccessTokens?: boolean; requireMfa?: boolean }): Record<string, boolean> {
  return {
    ...(options.requirePar !== undefined ? { require_pushed_authorization_requests: options.requirePar } : {}),
    ...(options.dpopBoundAccessTokens !== undefined ? { dpop_bound_access_tokens: options.dpopBoundAccessTokens } : {}),
    ...(options.requireMfa !== undefined ? { require_mfa: options.requireMfa } : {}),
  };
}

/** APIs and operator grants (configuration and store together, as the server sees them). `owed`: keeps a removal owed (a server's sweep finishes one cut off). */
function apisOn(kv: Kv, settings: Config, owed?: KeepsOwed): Apis {
  return new Apis(kv, {
    builtin: builtinResourceServers(settings),
    configured: settings.resourceServers,
    maxAccessTokenTTL: settings.ttl.apiAccessTokenMax,
    endings: grantEndings(revocationList(kv, settings)),
    ...(owed ? { owed } : {}),
  });
}

/** `--scope a --scope "b c"` → [a, b, c]. */
const scopesOf = (values: string[] | undefined) => (values ?? []).flatMap((value) => value.split(' ')).filter(Boolean);

/** `keys revoke`: kid entries on the revocation list first (if the ring cannot be written, running again finishes the job), then the ring. */
async function revokeKeys(kv: Kv, settings: Config, kids: readonly string[]): Promise<void> {
  const { ringStore, readRing, RotationError, planRevocation, keyRevocationHorizon, revokeFromRing, describeRing, publishedRotationPolicy } = await ringModules();
  const store = await ringStore(settings, kv);
  const snapshot = await readRing(store);
  if (!snapshot) throw new RotationError('there is no key ring yet: `latchkey serve` creates it at its first start');
  planRevocation(snapshot.ring, kids); // refuses an unknown kid before anything is written
  const list = revocationList(kv, settings);
  // As long as the servers' JWKS may be cached (their publish lead and refresh), not only this process's settings say.
  const horizon = keyRevocationHorizon(settings, await list.lifetimes());
  for (const kid of new Set(kids)) await list.revokeKey(kid, horizon);
  const { before, after } = await revokeFromRing(store, kids, settings.keys.rsaBits);
  print({
    revoked: [...new Set(kids)],
    current: after.current?.kid,
    ...(before.current?.kid !== after.current?.kid ? { previous: before.current?.kid } : {}),
    next: after.next?.kid,
    keys: describeRing(after, await publishedRotationPolicy(settings, revocationList(kv, settings))),
  });
}

/** A person by username or sub (one line, exit 1, when there is none). */
async function findAccount(kv: Kv, settings: Config, user: string) {
  const accounts = new Accounts(kv, settings.accounts.argon2);
  const account = (await accounts.findByUsername(user)) ?? (await accounts.find(user));
  if (!account) throw new AccountError(`no user "${user}" (give a username or a sub)`);
  return account;
}

/** `--claim email=mail --claim name=display_name` → { email: 'mail', name: 'display_name' }. */
function claimMapping(values: string[] | undefined, mapped: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    (values ?? []).map((value) => {
      const [ours = '', theirs = ''] = value.split('=');
      if (!mapped.includes(ours) || !theirs) throw new UsageError(`--claim: expected <claim>=<upstream claim> with <claim> one of ${mapped.join(', ')}, got "${value}"`);
      return [ours, theirs];
    }),
  );
}

/** The second factors of the person named `username` (one line, exit 1, when there is none). */
async function secondFactorsOf(kv: Kv, settings: Config, username: string) {
  const account = await new Accounts(kv, settings.accounts.argon2).findByUsername(username);
  if (!account) throw new AccountError(`no user "${username}"`);
  const [{ SecondFactors }, { Sealer }] = await Promise.all([import('./accounts/second-factors.js'), import('./keyring/sealing.js')]);
  return { account, factors: new SecondFactors(kv, new Sealer(settings.keys.secrets), settings.issuer) };
}

/** A BCP 47 tag that Intl accepts (it refuses what is not well-formed, e.g. xx_yy). */
function isLocale(tag: string): boolean {
  try {
    return Intl.getCanonicalLocales(tag).length === 1;
  } catch {
    return false;
  }
}

/** A client that is missing or cannot take what the command asks (one line, exit 1: not a usage error). */
class ClientMissing extends Error {
  override name = 'ClientError';
}

/** `users disable` and `users enable`. */
function setUserDisabled(username: string, disabled: boolean): Promise<void> {
  return withStore(async (kv, settings) => {
    const endAll = disabled ? await allSessionsEnder(kv, settings) : undefined;
    // Disabling ends everything issued to the person up to now in its own write, one entry
    // first (accounts.ts endedAt): what follows, grant by grant and session by session, may
    // fail half-way and leave none of it working, enabled again or not.
    const account = await new Accounts(kv, settings.accounts.argon2).setDisabled(username, disabled, revocationList(kv, settings, disabled ? await owedKeeperOn(kv, settings) : undefined));
    if (disabled) {
      // The remembered consents go too: enabled again, the person is asked by each app, and an
      // app someone else consented to in their name while the account was taken gets no code silently.
      await (await grantRevocation(kv, settings)).revokeAccountWithConsents(account.sub, await consentsOn(kv, settings));
      await endAll?.(account.sub);
      await untilEndingPassed(account);
    }
    console.log(`${disabled ? 'disable' : 'enable'}d ${username}`);
  });
}

/** Commander's arguments to an action: the command's arguments, its options, the command itself. */
type Action = (...args: Parameters<Parameters<Command['action']>[0]>) => Promise<void>;

/** What each command does, by its words as typed. */
const actions: Record<string, Action> = {
  'serve': async (options) => {
    const settings = config(true);
    const workers = options.workers === undefined ? settings.workers : Number(options.workers);
    // Held to the bound the WORKERS setting has: past it, --workers 99999 forked processes until the machine gave out.
    if (!Number.isSafeInteger(workers) || workers < 0 || workers > MAX_WORKERS) {
      fail(new UsageError(`--workers: expected a number of processes from 0 (one per core) to ${MAX_WORKERS}, got "${options.workers}"`));
    }
    // The log's modules (pino) are loaded by serve alone: a one-shot command writes to stderr.
    const { createServerLogger, logProcessWarnings } = await import('./ops/logger.js');
    const logger = await createServerLogger(settings.log.level, settings.log.format);
    // In every server process (a --workers child runs this too), before the server's modules load: Node's warnings as log lines, not stderr text.
    logProcessWarnings(logger);
    const { serve } = await import('./main.js');
    const { runServer } = await import('./workers.js');
    await runServer({ ...settings, workers }, logger, () => serve(settings, logger), oneLine).catch((error: unknown) => {
      // The log is written in batches, the refusal at once: what was logged before it (the embedded
      // store's warning, a key generated) is written first, so that the refusal stays the last line
      // where stdout and stderr are one log (a container's, a journal; tenth newcomer pass).
      logger.flush();
      fail(error);
    });
  },

  'clients add': async (options) =>
    withStore(async (kv, settings) => {
      if (options.public && options.secret) throw new UsageError('--public and --secret exclude each other');
      // Refused, not dropped: the operator asked for a client that authenticates, or for its secret (newcomer, eleventh pass).
      if (options.public && options.authMethod && options.authMethod !== 'none') {
        throw new UsageError(`--public and --auth-method ${options.authMethod} exclude each other: a public client has no secret (its auth method is none)`);
      }
      if (options.secret && options.authMethod && !['client_secret_basic', 'client_secret_post'].includes(options.authMethod)) {
        throw new UsageError(`--secret and --auth-method ${options.authMethod} exclude each other: only client_secret_basic and client_secret_post use a secret`);
      }
      const { generateSecret, ClientError, ConfiguredClient } = await import('./registration/clients.js');
      const { DEVICE_CODE_GRANT } = await import('./registration/policy.js');
      // `device_code` is short for RFC 8628's grant type URN.
      const named: string[] | undefined = options.grantType?.map((type: string) => (type === 'device_code' ? DEVICE_CODE_GRANT : type));
      const grantTypes: string[] = named ?? (options.device ? [DEVICE_CODE_GRANT, 'refresh_token'] : ['authorization_code', 'refresh_token']);
      const device = grantTypes.includes(DEVICE_CODE_GRANT);
      if (grantTypes.includes('authorization_code') && !options.redirectUri?.length) {
        // Before the engine's "redirect_uris must contain members", which names no flag.
        throw new UsageError('--redirect-uri is required for an app people sign in to (authorization_code); a service takes --grant-type client_credentials, a device or CLI --device');
      }
      // A device's and a native app's secret would sit in every copy of the app (RFC 8252 §8.5): public unless asked.
      const publicByDefault = options.public || ((options.device || options.native) && !options.secret && !options.authMethod);
      const method: string = publicByDefault ? 'none' : (options.authMethod ?? 'client_secret_basic');
      const metadata: ClientMetadata = {
        client_id: options.clientId,
        // The device grant is for native clients only (registration/policy.ts).
        ...(device || options.native ? { application_type: 'native' } : {}),
        grant_types: grantTypes,
        response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
        redirect_uris: options.redirectUri ?? [],
        token_endpoint_auth_method: method,
        ...(options.postLogoutRedirectUri ? { post_logout_redirect_uris: options.postLogoutRedirectUri } : {}),
        ...(options.scope ? { scope: scopesOf(options.scope).join(' ') } : {}),
        ...(options.name ? { client_name: options.name } : {}),
        ...(options.jwksUri ? { jwks_uri: options.jwksUri } : {}),
        ...(options.backchannelLogoutUri
          ? { backchannel_logout_uri: options.backchannelLogoutUri, backchannel_logout_session_required: true }
          : {}),
        ...(method === 'client_secret_basic' || method === 'client_secret_post'
          ? { client_secret: options.secret ?? generateSecret() }
          : {}),
        ...requirements(options),
      };
      const added = await (await clientsOn(kv, settings)).add(metadata).catch((error: unknown) => {
        // Run again with another flag (the walkthrough's --backchannel-logout-uri): say how, since update takes only the requirements.
        if (error instanceof ClientError && error.error === 'conflict' && !(error instanceof ConfiguredClient)) {
          throw new ClientError(`${error.message}: to register it anew, latchkey clients remove ${options.clientId} first (its secret and tokens go with it)`, error.error, error.status);
        }
        // The policy's words name the metadata (application_type); here the flag is the way (newcomer pass).
        if (error instanceof ClientError && !options.native && error.message.includes('allowed only for native apps')) {
          throw new ClientError(`${error.message}: give --native`, error.error, error.status);
        }
        throw error;
      });
      print(added);
    }),

  'clients update': async (clientId: string, options) =>
    withStore(async (kv, settings) => {
      const changes = requirements(options);
      if (!Object.keys(changes).length) {
        throw new UsageError('nothing to change: give --require-par, --dpop-bound-access-tokens or --require-mfa (or their --no- forms)');
      }
      const store = await clientsOn(kv, settings);
      // Said before "no client": a configured client has no stored record to find.
      await store.notConfigured(clientId);
      const existing = await store.get(clientId);
      if (!existing) throw new ClientMissing(`no client "${clientId}"`);
      // A name the engine never used, stored before the registry refused it (policy.ts), is not written back.
      const { withoutSingularMetadata } = await import('./registration/policy.js');
      const { client_secret: _secret, ...updated } = await store.update(clientId, { ...withoutSingularMetadata(existing), ...changes });
      print(updated);
    }),

  'clients rotate-secret': async (clientId: string, options: { grace?: number }) =>
    withStore(async (kv, settings) => {
      // As the admin API's rotation: a shorter grace than the configured one may be asked for, never a longer one.
      const grace = Math.min(options.grace ?? settings.registration.secretRotationGrace, settings.registration.secretRotationGrace);
      // Said, not only shown in the answer's previous_secret_valid_for (newcomer pass: "silently capped").
      if (options.grace !== undefined && options.grace > grace) {
        console.error(`latchkey: --grace ${options.grace} is longer than registration.secretRotationGrace (REGISTRATION_SECRET_ROTATION_GRACE) allows: the old secret keeps working ${grace} seconds`);
      }
      const { client_id, client_secret, registration_access_token } = await (await clientsOn(kv, settings)).rotateSecret(clientId, grace);
      print({ client_id, client_secret, previous_secret_valid_for: grace, ...(registration_access_token && { registration_access_token }) });
    }),

  'clients list': async () =>
    withStore(async (kv, settings) => {
      const all = await (await clientsOn(kv, settings)).list();
      print(all.map(({ client_secret: _secret, ...rest }) => rest));
    }),

  'clients remove': async (clientId: string) =>
    withStore(async (kv, settings) => {
      await (await clientsOn(kv, settings)).remove(clientId);
      console.log(`removed client ${clientId}`);
    }),

  'apis list': async () =>
    withStore(async (kv, settings) => {
      const known = apisOn(kv, settings);
      for (const { identifier, scopes } of await known.reservedScopesIgnored()) {
        console.error(`latchkey: warning: the stored API ${identifier} defines the reserved scope ${scopes.join(' ')}, which is ignored (listed without it); remove the API and add it again with scopes of its own`);
      }
      print(await known.list());
    }),

  'apis add': async (identifier: string, options: { scope?: string[]; format: 'jwt' | 'opaque'; accessTokenTtl?: string }) =>
    withStore(async (kv, settings) => {
      const ttl = options.accessTokenTtl === undefined ? undefined : Number(options.accessTokenTtl);
      if (ttl !== undefined && !Number.isSafeInteger(ttl)) throw new UsageError('--access-token-ttl takes a number of seconds');
      const api = await apisOn(kv, settings).add({
        identifier,
        scopes: scopesOf(options.scope),
        format: options.format,
        ...(ttl !== undefined ? { accessTokenTTL: ttl } : {}),
      });
      print(api);
    }),

  'apis remove': async (identifier: string) =>
    withStore(async (kv, settings) => {
      await apisOn(kv, settings, await owedKeeperOn(kv, settings)).remove(identifier);
      console.log(`removed API ${identifier}`);
    }),

  'apis grants': async (options: { client: string }) =>
    withStore(async (kv, settings) => {
      const held = await apisOn(kv, settings).grantsOf(options.client);
      // As for grants revoke: a mistyped client is an error, not an empty answer.
      const known = settings.clients.some((c) => c.client_id === options.client) || (await (await clientsOn(kv, settings)).get(options.client));
      if (!Object.keys(held).length && !known) throw new ClientMissing(`no client "${options.client}" (and no grants held by it)`);
      print(held);
    }),

  'apis grant': async (options: { client: string; api: string; scope?: string[]; introspect?: boolean; default?: boolean }) =>
    withStore(async (kv, settings) => {
      const { grantableClient } = await import('./registration/admin-apis.js');
      const provider = await validatingProvider(kv, settings);
      const problem = await grantableClient(provider, options.client);
      if (problem) throw new ClientMissing(problem);
      const grant = await apisOn(kv, settings).grant(options.client, options.api, {
        scopes: scopesOf(options.scope),
        ...(options.introspect ? { introspect: true } : {}),
        ...(options.default ? { default: true } : {}),
      });
      print({ client_id: options.client, api: options.api, ...grant });
      // The scopes serve only client_credentials: a client registered without that grant type (an app
      // people sign in to) holds them unusable, and the token endpoint's unauthorized_client says no more.
      const client = await provider.Client.find(options.client);
      if (grant.scopes?.length && client && !client.grantTypes?.includes('client_credentials')) {
        console.error(
          `latchkey: client "${options.client}" has no client_credentials grant type, so it cannot use these scopes (its token requests for them get unauthorized_client); register the service as a client of its own with --grant-type client_credentials and grant it these`,
        );
      }
    }),

  'apis revoke': async (options: { client: string; api: string; scope?: string[] }) =>
    withStore(async (kv, settings) => {
      const grant = await apisOn(kv, settings, await owedKeeperOn(kv, settings)).revoke(options.client, options.api, scopesOf(options.scope));
      print({ client_id: options.client, api: options.api, ...(grant ?? { revoked: true }) });
    }),

  'registration token create': async (options: { expiresIn?: number }) =>
    withStore(async (kv, settings) => {
      const expiresIn = options.expiresIn ?? settings.registration.initialAccessTokenTTL;
      const provider = await validatingProvider(kv, settings);
      const token = await new provider.InitialAccessToken({ expiresIn }).save();
      const { initialAccessTokenId } = await import('./registration/initial-access-tokens.js');
      print({ initial_access_token: token, id: initialAccessTokenId(token), expires_in: expiresIn, registration_endpoint: `${settings.issuer}/reg` });
    }, true),

  'registration token list': async () =>
    withStore(async (kv, settings) => {
      const { outstandingInitialAccessTokens } = await import('./registration/initial-access-tokens.js');
      print(await outstandingInitialAccessTokens(await validatingProvider(kv, settings), kv));
    }, true),

  'registration token revoke': async (tokenOrId: string) =>
    withStore(async (kv, settings) => {
      const { revokeInitialAccessToken } = await import('./registration/initial-access-tokens.js');
      const id = await revokeInitialAccessToken(await validatingProvider(kv, settings), kv, tokenOrId);
      print({ id, revoked: true });
    }, true),

  'keys list': async () =>
    withStore(async (kv, settings) => {
      const { readRing, ringStore, describeRing, publishedRotationPolicy } = await ringModules();
      const snapshot = await readRing(await ringStore(settings, kv));
      print(snapshot ? describeRing(snapshot.ring, await publishedRotationPolicy(settings, revocationList(kv, settings))) : []);
    }),

  'keys rotate': async (options: { now?: boolean; revokeCurrent?: boolean }) =>
    withStore(async (kv, settings) => {
      const { readRing, ringStore, RotationError, publishedRotationPolicy, rotateRing, describeRing } = await ringModules();
      if (options.revokeCurrent) {
        if (!options.now) throw new UsageError('--revoke-current goes with --now');
        const current = (await readRing(await ringStore(settings, kv)))?.ring.current?.kid;
        if (!current) throw new RotationError('there is no key ring yet: `latchkey serve` creates it at its first start');
        return revokeKeys(kv, settings, [current]);
      }
      const policy = await publishedRotationPolicy(settings, revocationList(kv, settings));
      const { before, after } = await rotateRing(await ringStore(settings, kv), policy, settings.keys.rsaBits, Boolean(options.now), (message) => console.error(`latchkey: ${message}`));
      print({
        current: after.current?.kid,
        retired: before.current?.kid,
        next: after.next?.kid,
        keys: describeRing(after, policy),
      });
    }),

  'keys revoke': async (kids: string[]) => withStore((kv, settings) => revokeKeys(kv, settings, kids)),

  'grants revoke': async (options: { user?: string; client?: string }) =>
    withStore(async (kv, settings) => {
      if (!options.user && !options.client) throw new UsageError('give --user, --client or both');
      const [revocation, consents] = await Promise.all([grantRevocation(kv, settings), consentsOn(kv, settings)]);
      // A typo must not look like "nothing to revoke": an unknown person or client is an error.
      const account = options.user ? await findAccount(kv, settings, options.user) : undefined;
      const clientKnown = async (clientId: string) =>
        settings.clients.some((c) => c.client_id === clientId) || Boolean(await (await clientsOn(kv, settings)).get(clientId));
      // Each time the remembered consent goes first, then the grants: the other way round, an app
      // with a live session asking in between (prompt=none) gets a fresh grant made from the consent,
      // which outlives the revocation; a failure half-way leaves grants to revoke again.
      if (account && options.client) {
        // One cutoff first (a withdrawn entry on the list and feed, the account's clientGrantsEndedAt),
        // then the consent and the grants one by one: a failure half-way leaves none of them working.
        const { revoked } = await revocation.withdraw(account.sub, options.client, new Accounts(kv, settings.accounts.argon2), consents);
        if (!revoked && !(await clientKnown(options.client))) throw new ClientMissing(`no client "${options.client}" (and no grants held by it)`);
        print({ sub: account.sub, username: account.username, client_id: options.client, revoked });
      } else if (options.client) {
        await consents.forgetClient(options.client, (await revocation.ofClient(options.client)).map((grant) => grant.accountId));
        // After the consents and before the grants, one by one: one entry ends every token, code and
        // refresh token the client holds on anyone's behalf up to now (a delegated entry on the list
        // and feed), so that a failure half-way through the grants leaves none of them working.
        const endedAt = epochSeconds();
        await revocationList(kv, settings).revokeDelegated(options.client);
        const revoked = await revocation.revokeClient(options.client);
        await untilEndingPassed({ endedAt });
        if (!revoked && !(await clientKnown(options.client))) throw new ClientMissing(`no client "${options.client}" (and no grants held by it)`);
        print({ client_id: options.client, revoked });
      } else {
        // After the consents and before the grants, one by one: one cutoff ends every token, code and
        // refresh token issued to the person up to now (accounts.ts grantsEndedAt, a sub entry on the
        // list and feed), so that a failure half-way through the grants leaves none of them working.
        await revocation.forgetConsentsOf(account!.sub, consents);
        const ended = await new Accounts(kv, settings.accounts.argon2).endGrants(account!.sub, revocationList(kv, settings, await owedKeeperOn(kv, settings)));
        const revoked = await revocation.revokeAccount(account!.sub);
        if (ended) await untilEndingPassed(ended);
        print({ sub: account!.sub, username: account!.username, revoked });
      }
    }),

  'users add': async (username: string, options) => {
    requirePasswordStdin(options, `users add ${username}`);
    return withStore(async (kv, settings) => {
      // Refused, not dropped: the person was made without a verified address, exit 0 (newcomer, eleventh pass).
      if (options.emailVerified && options.email === undefined) throw new UsageError('--email-verified marks the --email given with it as verified: give --email too');
      if (options.email !== undefined && !z.email().safeParse(options.email).success) {
        throw new UsageError(`--email: expected an email address, got "${options.email}"`);
      }
      if (options.locale !== undefined && !isLocale(options.locale)) {
        throw new UsageError(`--locale: expected a BCP 47 language tag such as en-GB, got "${options.locale}"`);
      }
      const password = await readStdin();
      const accounts = new Accounts(kv, settings.accounts.argon2);
      const account = await accounts.create(username, password, {
        ...(options.email ? { email: options.email, email_verified: Boolean(options.emailVerified) } : {}),
        ...(options.name ? { name: options.name } : {}),
        ...(options.givenName ? { given_name: options.givenName } : {}),
        ...(options.familyName ? { family_name: options.familyName } : {}),
        ...(options.locale ? { locale: options.locale } : {}),
      });
      print({ sub: account.sub, username: account.username, ...account.claims });
    });
  },

  'users list': async () =>
    withStore(async (kv, settings) => {
      const all = await new Accounts(kv, settings.accounts.argon2).list();
      print(all.map(({ sub, username, disabled, claims }) => ({ sub, username, disabled, ...claims })));
    }),

  'users passwd': async (username: string, options: { passwordStdin?: boolean; keepSessions?: boolean }) => {
    requirePasswordStdin(options, `users passwd ${username}`);
    return withStore(async (kv, settings) => {
      const accounts = new Accounts(kv, settings.accounts.argon2);
      const account = await accounts.findByUsername(username);
      if (!account) throw new AccountError(`no user "${username}"`);
      const password = await readStdin();
      const opened = options.keepSessions ? undefined : await sessionsOn(kv, settings);
      // Unless kept, everything issued to the person up to now ends with the password's write, one
      // entry first (accounts.ts endedAt): a failure of what follows leaves none of it working.
      const changed = await accounts.setPassword(username, password, options.keepSessions ? undefined : revocationList(kv, settings, await owedKeeperOn(kv, settings)));
      // An operator sets a password for someone who lost theirs, or whose account was taken: a
      // session signed in with the old one (a thief's) and the refresh tokens it got must not outlive it,
      // nor a consent given in the person's name (first, as grants revoke does: no grant is made from it again).
      const revocation = options.keepSessions ? undefined : await grantRevocation(kv, settings);
      if (revocation) await revocation.forgetConsentsOf(account.sub, await consentsOn(kv, settings));
      const ended = options.keepSessions ? 0 : await endSessionsWithGrants(opened, kv, settings, account.sub, () => true);
      // ...and so must the grants of sessions that ended already (offline access got and kept).
      await revocation?.revokeAccount(account.sub);
      await untilEndingPassed(changed);
      console.log(`password changed for ${username}${options.keepSessions ? '' : `; ended ${ended} session${ended === 1 ? '' : 's'}`}`);
    });
  },

  'users disable': (username: string) => setUserDisabled(username, true),

  'users enable': (username: string) => setUserDisabled(username, false),

  'users remove': async (username: string, options: { keepApps?: boolean }) =>
    withStore(async (kv, settings) => {
      const { factors } = await secondFactorsOf(kv, settings, username);
      const endAll = await allSessionsEnder(kv, settings);
      const accounts = new Accounts(kv, settings.accounts.argon2);
      // Disabled first (nothing more is issued to them), everything they hold ended, and only then
      // the account deleted: a failure half-way leaves a disabled account to remove again, where a
      // deleted one left their tokens and sessions with no command to end them.
      const account = await accounts.setDisabled(username, true, revocationList(kv, settings, await owedKeeperOn(kv, settings)));
      await factors.reset(account.sub);
      await (await grantRevocation(kv, settings)).revokeAccount(account.sub);
      await endAll?.(account.sub);
      // The apps they registered on the developer page go too, as a client's deletion does (their
      // grants and tokens with them), unless kept: listed on no developer page once the account is
      // gone, their secrets, held by whoever held the account, still got tokens, and the grants other
      // people gave them still refreshed. After the disable (a registration after it registers
      // nothing), before the account: a failure half-way leaves it to remove again.
      const clients = await clientsOn(kv, settings);
      const owned = options.keepApps ? await clients.ownedBy(account.sub) : await clients.removeOwned(account.sub);
      await accounts.remove(username);
      const named = (app: ClientMetadata) => `${app.client_id}${typeof app.client_name === 'string' ? ` (${app.client_name})` : ''}`;
      console.log([`removed ${username}`, ...owned.map((app) => (options.keepApps ? `kept the app ${named(app)} they registered (latchkey clients remove ${app.client_id} ends it)` : `removed the app ${named(app)} they registered`))].join('; '));
    }),

  'upstreams add': async (options) =>
    withStore(async (kv, settings) => {
      const { Upstreams, MAPPED_CLAIMS, urisToRegister } = await import('./upstreams/registry.js');
      const claims = claimMapping(options.claim, MAPPED_CLAIMS);
      const clientSecret = await readStdin('Client secret');
      if (!clientSecret) throw new UsageError("--client-secret-stdin reads Latchkey's client secret at the upstream from standard input, and none came: e.g. printf '%s' \"$SECRET\" | latchkey upstreams add … --client-secret-stdin");
      // The secret is sealed under the first of keys.secrets: only the server's own secrets seal
      // it so that the server can open it (and not, say, under the public development default).
      const { readRing, ringStore } = await ringModules();
      await readRing(await ringStore(settings, kv));
      const added = await new Upstreams(kv, settings.keys.secrets).add({
        id: options.id,
        issuer: options.issuer,
        clientId: options.clientId,
        clientSecret,
        scope: options.scope,
        displayName: options.displayName ?? '',
        linkByEmail: Boolean(options.linkByEmail),
        endSession: Boolean(options.endSession),
        domains: options.domain ?? [],
        claims,
      });
      print({ ...added, ...urisToRegister(settings.issuer, added) });
    }),

  'upstreams list': async () =>
    withStore(async (kv, settings) => {
      const { Upstreams } = await import('./upstreams/registry.js');
      print(await new Upstreams(kv, settings.keys.secrets).list());
    }),

  'upstreams remove': async (id: string) =>
    withStore(async (kv, settings) => {
      const [{ Upstreams }, { FederatedSessions }, { removeUpstream, endingsThrough }, { SessionCredentials }, { UpstreamLinks }, { throughUpstream }] = await Promise.all([
        import('./upstreams/registry.js'),
        import('./upstreams/sessions.js'),
        import('./upstreams/removal.js'),
        import('./accounts/session-credentials.js'),
        import('./accounts/links.js'),
        import('./accounts/sessions.js'),
      ]);
      const links = new UpstreamLinks(kv, new Accounts(kv, settings.accounts.argon2));
      const credentials = new SessionCredentials(kv, sessionRecordsLifetime(settings.ttl));
      const [revocation, consents] = await Promise.all([grantRevocation(kv, settings), consentsOn(kv, settings)]);
      // What the upstream signed in ends with the consents its grants were made under.
      const endGrant = revocation.revokingWithConsent(consents);
      const opened = await sessionsOn(kv, settings);
      const endThrough = endingsThrough({
        federated: new FederatedSessions(kv, sessionRecordsLifetime(settings.ttl)),
        findSession: async (uid) => opened?.provider.Session.findByUid(uid),
        linksOf: async (uid) => (await credentials.of(uid))?.links,
        endSession: (session) => opened!.sessions.endWithEveryGrant(session, endGrant),
        // No server ever ran (no ring): no session or grant either.
        peopleLinked: async (upstream) => (opened ? links.peopleLinkedTo(upstream) : []),
        endSignedInThrough: (sub, upstream) => opened!.sessions.endSignedInWith(sub, credentials, throughUpstream(upstream), endGrant, undefined, consents),
      });
      // Kept owed until done: a running server's sweep finishes a removal cut off (none ever ran: nothing to end).
      const owed = opened ? await owedKeeperOn(kv, settings) : { owe: async () => undefined, drop: async () => {} };
      const ended = await removeUpstream(id, { upstreams: new Upstreams(kv, settings.keys.secrets), endThrough, owed, recordIssuer: (upstream, issuer) => links.recordIssuer(upstream, issuer) });
      console.log(`removed upstream ${id}; ended ${ended} session${ended === 1 ? '' : 's'} signed in through it`);
    }),

  'users mfa list': async (username: string) =>
    withStore(async (kv, settings) => {
      const { account, factors } = await secondFactorsOf(kv, settings, username);
      const summary = await factors.summary(account.sub);
      // Every field, none left out when empty: `"totp": null` says there is no authenticator app.
      print({ sub: account.sub, username: account.username, ...summary, totp: summary.totp ?? null });
    }),

  'users mfa reset': async (username: string) =>
    withStore(async (kv, settings) => {
      const { account, factors } = await secondFactorsOf(kv, settings, username);
      const opened = await sessionsOn(kv, settings);
      // As the admin API does: the sessions the factors signed in end, with their grants, kept as owed until done.
      const owed = await owedEndingsOn(opened, kv, settings);
      const ending = { sub: account.sub, changed: { kind: 'second-factors' } } as const;
      const member = await owed?.owe(ending);
      await factors.reset(account.sub);
      const ended = owed ? await owed.finish(ending) : 0;
      await owed?.drop(member);
      console.log(`reset the second factors of ${account.username}; ended ${ended} session${ended === 1 ? '' : 's'} signed in with them`);
    }),
};

/** Runs the command `path` ("users add") with commander's arguments; a failure is one line on stderr and exit 1. */
export async function runCommand(path: string, args: unknown[]): Promise<void> {
  commandPath = path;
  const action = actions[path];
  if (!action) fail(new Error(`latchkey ${path} has no action`));
  await action(...args).catch(fail);
}
