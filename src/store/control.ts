/**
 * How the CLI finds the state of a running server, so that its commands act on what the server
 * serves (not on a copy of it).
 *
 * A running server writes a run file next to the embedded store file (`<embedded.file>.server`):
 * which store it runs on and its issuer. On the embedded store it also listens on a control
 * socket (`<embedded.file>.sock`, mode 0600) that serves the store's Kv operations, one JSON line
 * per call; the CLI then uses a RemoteKv on that socket instead of opening the file, so every
 * command acts on the live state (tokens, grants, sessions live in the server's memory).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Config } from '../config.js';
import { ROOT } from '../paths.js';
import { connectionError, everReached, openStore, usesRedis } from './index.js';
import { storeRefusal } from './outage.js';
import { withoutQuerySecrets } from '../url-secrets.js';
import { WRONG_DATABASE } from './redis.js';
import type { Kv, RecordEnding } from './kv.js';
import { SERVERS_ANNOUNCED_KEY } from './keys.js';

/** The Kv operations the socket serves (not close: the CLI's close ends its connection only). */
const OPERATIONS = [
  'get', 'set', 'del', 'getRecord', 'putRecord', 'endRecord', 'consumeRecord', 'addToSet', 'removeFromSet', 'members',
  'addExpiring', 'liveMembers', 'removeExpiring',
  'compareAndSet', 'deleteIfEquals', 'raiseMarkAndLog', 'readLog', 'ping',
] as const;
type Operation = (typeof OPERATIONS)[number];
const isOperation = (name: unknown): name is Operation => OPERATIONS.includes(name as Operation);

/** What a running server records about itself. */
export interface RunInfo {
  readonly pid: number;
  readonly store: 'redis' | 'embedded';
  readonly issuer: string;
  /** Where the store is, for people: the Redis URL without its password, or the embedded file. */
  readonly location: string;
  /** Its outbound.allowPrivateNetworks: a CLI acting on its store posts what it does (back-channel logout) as it would. */
  readonly allowPrivateNetworks?: boolean;
}

export class StoreAccessError extends Error {
  override name = 'StoreAccessError';
}

export function controlPaths(config: Config) {
  const file = resolve(config.embedded.file);
  return { run: `${file}.server`, socket: `${file}.sock` };
}

/** A Redis URL for people: no password, before the host or in the query (url-secrets.ts). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return withoutQuerySecrets(parsed.href.replace(/\/$/, ''));
  } catch {
    return '(a URL that does not parse)';
  }
}

export function storeLocation(config: Config): string {
  const { redis } = config;
  if (redis.mode === 'sentinel') return `Redis Sentinel ${redis.sentinels.join(',')} (${redis.sentinelName})`;
  if (redis.mode === 'cluster') return `Redis Cluster ${redis.clusterNodes.join(',')}`;
  if (redis.url) return `Redis ${redactUrl(redis.url)}`;
  return config.embedded.file;
}

/** The setting that says where Redis is, for an error that names it. */
function storeSetting(config: Config): string {
  if (config.redis.mode === 'sentinel') return 'REDIS_SENTINELS';
  if (config.redis.mode === 'cluster') return 'REDIS_CLUSTER_NODES';
  return 'REDIS_URL';
}

const MASTER = (config: Config) => (config.redis.mode === 'standalone' ? 'its master, or Sentinel (REDIS_MODE=sentinel) to find it' : 'a master that takes writes');

/** Redis's refusals at start that say what it is, by reply code: what it is, and what was expected. */
const ANSWERED_REFUSALS: readonly (readonly [string, string, string | ((config: Config) => string)])[] = [
  ['READONLY', 'is a read-only replica', MASTER],
  ['MASTERDOWN', 'is a replica whose master is down', MASTER],
  ['OOM', 'is full and refuses writes', 'a Redis with room under its maxmemory'],
  ['LOADING', 'is still loading its data', 'it to finish: start again once it has'],
  // A Redis with requirepass or ACLs, asked without a password: it was reached, and wants one
  // (seventeenth passes, the newcomer's first hour: said as "cannot reach").
  ['NOAUTH', 'asks for a password, which REDIS_URL does not give', 'the password in REDIS_URL: redis://:PASSWORD@host:6379 (redis://USER:PASSWORD@host:6379 for an ACL user; percent-encode @, : and / in it)'],
];

/**
 * A Redis that could not be used at start, in one line for `serve` and the CLI alike: the setting,
 * where, and the connection's own error (ECONNREFUSED, WRONGPASS) rather than the command's ("max
 * retries"), or what Redis said it is when it answered with a refusal (ANSWERED_REFUSALS).
 */
export function unreachableStore(config: Config, kv: Kv, error: unknown): StoreAccessError {
  const cause = connectionError(kv);
  // Something else answered (a wrong port: Latchkey's own, any HTTP server): ioredis's parser gives up on its first byte.
  const foreign = /Unknown RESP type \d+ "(.)"/s.exec((cause ?? (error as Error)).message);
  const where = config.redis.url ? redactUrl(config.redis.url) : storeLocation(config);
  if (foreign) {
    const http = foreign[1] === 'H' ? ', as an HTTP server\'s does' : '';
    return new StoreAccessError(`${storeSetting(config)}: ${where} answers, but not as Redis (its answer began with ${JSON.stringify(foreign[1])}${http}); expected the address and port of a running Redis`);
  }
  if (cause && WRONG_DATABASE.test(cause.message)) {
    return new StoreAccessError(`${storeSetting(config)}: ${where} names a database that Redis does not have (${cause.message}); expected a database number below its databases setting (16 by default), or none`);
  }
  // Reached, and answered with a refusal of what it was asked: not a Redis that "cannot be reached",
  // nor one refusing "these credentials" (bad input and blips, tenth pass).
  const refused = storeRefusal(error) ?? storeRefusal(cause);
  const answered = refused && ANSWERED_REFUSALS.find(([code]) => refused.message.startsWith(`${code} `));
  if (answered) {
    const [, what, expected] = answered;
    return new StoreAccessError(`${storeSetting(config)}: ${storeLocation(config)} ${what} (${refused.message}); expected ${typeof expected === 'string' ? expected : expected(config)}`);
  }
  // Taken and then dropped before any answer (a server that closes on what it cannot parse, as an
  // HTTP server does, or on sight): said as such, not as ioredis's "max retries per request".
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const closed = !cause && !everReached(kv) && /max retries per request|Connection is closed/.test((error as Error).message);
  const dropped = code === 'EPIPE' || code === 'ECONNRESET' ? cause!.message : closed ? 'closed' : undefined;
  if (dropped) {
    return new StoreAccessError(`${storeSetting(config)}: ${where} took the connection and closed it without a Redis answer (${dropped}); expected the address and port of a running Redis (6379 by default), not another service's`);
  }
  // No answer in time: a rediss:// URL at a Redis without TLS hangs in the handshake, which ends in
  // the command's timeout or, with the default settings, the connection's (connect ETIMEDOUT).
  const timedOut = !cause || code === 'ETIMEDOUT' || /\bETIMEDOUT\b/.test(cause.message);
  const hint = timedOut && config.redis.url.startsWith('rediss:') ? '; rediss:// needs a Redis that speaks TLS on that port (redis:// for one that does not)' : '';
  return new StoreAccessError(`${storeSetting(config)}: cannot reach ${storeLocation(config)} (${(cause ?? (error as Error)).message})${hint}; expected a running Redis that accepts these credentials`);
}

/**
 * A Redis that may evict keys under memory pressure (Kv.evictionPolicy) is not one to serve on:
 * what it drops first are the revocation entries, session endings and single-use marks.
 */
export function evictingStore(config: Config, policy: string): StoreAccessError {
  return new StoreAccessError(
    `${storeSetting(config)}: ${storeLocation(config)} evicts keys under memory pressure (maxmemory-policy ${policy}): revoked tokens would work again and spent codes be taken twice; set maxmemory-policy noeviction (a full Redis then refuses writes, answered 503)`,
  );
}

/**
 * Which data: the store's location and, on Redis, the key prefix, which is part of it (a CLI with
 * another REDIS_KEY_PREFIX than the server's acts on other keys, and must not take its issuer).
 */
function storeData(config: Config): string {
  return usesRedis(config) ? `${storeLocation(config)}, key prefix ${config.redis.keyPrefix || '(none)'}` : storeLocation(config);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The run file of a server that is still running, if there is one. */
export function readRunInfo(config: Config): RunInfo | undefined {
  let info: RunInfo;
  try {
    info = JSON.parse(readFileSync(controlPaths(config).run, 'utf8')) as RunInfo;
  } catch {
    return undefined;
  }
  return Number.isSafeInteger(info.pid) && alive(info.pid) ? info : undefined;
}

/** An embedded store file another latchkey process serves now (its control socket answers), said in one line. */
export async function servedElsewhere(config: Config): Promise<StoreAccessError | undefined> {
  if (!(await answers(controlPaths(config).socket))) return undefined;
  // That server's key ring is this start's too (the same KEYS_DIR): said now, since a start given
  // another EMBEDDED_FILE alone is refused next for it (seventeenth passes, the newcomer's first hour:
  // the README's "Port 3000 taken?" promises every taken one at once).
  const user = await ringUser(config);
  const ring = user && samePath(user.file, resolve(config.embedded.file)) ? ` and KEYS_DIR=keys/other (${user.ring} is that server's key ring)` : '';
  return new StoreAccessError(
    `EMBEDDED_FILE: ${config.embedded.file} is already served by another latchkey process; the embedded store is one process's store (stop that one, give this one its own with EMBEDDED_FILE=data/other.json${ring}, or set REDIS_URL)`,
  );
}

/**
 * Which running server uses the key ring in `keys.dir` (embedded store only): `<keys.dir>/keyring.json.server`.
 * Without Redis the ring is a file beside no particular store, so two embedded servers started from
 * one directory (the README's "Port 3000 taken?") shared keys/keyring.json: each rotated and revoked
 * the other's keys, and a CLI given the second one's EMBEDDED_FILE (or one with no server) rotated the
 * first's, saying it acted on the other store (twelfth newcomer pass).
 */
interface RingRunInfo {
  readonly pid: number;
  readonly issuer: string;
  /** The embedded store file that server runs on, its full path. */
  readonly file: string;
}

function ringRunPath(config: Config): string {
  return join(resolve(config.keys.dir), 'keyring.json.server');
}

/**
 * The server on the embedded store running now that uses `config`'s key ring (keys.dir), if any; `ring`: the ring's file, for messages.
 * Running: its store's control socket answers, as servedElsewhere asks. A live pid alone is not one:
 * the record of a server killed (kill -9, an OOM kill) stays, and its pid is another process's next
 * (in a container started again, pid 1: the new server itself), which refused the start on another
 * store file and kept the move to Redis from importing the keys (second review of the twelfth passes).
 */
export async function ringUser(config: Config): Promise<(RingRunInfo & { readonly ring: string }) | undefined> {
  let info: RingRunInfo;
  try {
    info = JSON.parse(readFileSync(ringRunPath(config), 'utf8')) as RingRunInfo;
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(info.pid) || typeof info.file !== 'string' || typeof info.issuer !== 'string' || !alive(info.pid)) return undefined;
  if (!(await answers(`${info.file}.sock`))) return undefined;
  return { ...info, ring: join(config.keys.dir, 'keyring.json') };
}

/** The server running now on another embedded store than `config`'s that uses `config`'s key ring, if any. */
export async function ringUsedElsewhere(config: Config): Promise<(RingRunInfo & { readonly ring: string }) | undefined> {
  const user = await ringUser(config);
  return user && !samePath(user.file, resolve(config.embedded.file)) ? user : undefined;
}

/** At a start on the embedded store: the key ring another running server on another store uses, said in one line. */
export async function ringServedElsewhere(config: Config): Promise<StoreAccessError | undefined> {
  const other = await ringUsedElsewhere(config);
  if (!other) return undefined;
  return new StoreAccessError(
    `KEYS_DIR: ${other.ring} is the signing key ring of the latchkey server at ${other.issuer} (pid ${other.pid}, on ${other.file}); two embedded stores on one key ring rotate and revoke each other's keys: give this one its own, e.g. KEYS_DIR=keys/other (or stop that one)`,
  );
}

/** How long a server's announcement lasts unless renewed: servers renew it every minute (main.ts). */
const ANNOUNCEMENT_SECONDS = 150;

/**
 * Records this server's issuer in the store (Redis), for ANNOUNCEMENT_SECONDS: a CLI run from
 * elsewhere (another directory, machine or container) finds no run file, and without the servers'
 * ISSUER it named their addresses by its own default (logout tokens it posted were refused for
 * their iss: newcomer pass of 2026-12-06). Renewed while the server runs, so a stopped one's, or
 * one moved to another issuer, does not linger.
 */
export async function announceIssuer(config: Config, kv: Kv): Promise<void> {
  await kv.set(SERVERS_ANNOUNCED_KEY, JSON.stringify({ issuer: config.issuer } satisfies Announced), { ttl: ANNOUNCEMENT_SECONDS });
}

/**
 * Serves `kv` on the control socket (embedded store only) and writes the run file; returns what
 * removes both. A server that cannot write them (a read-only directory) still runs: `warn` says so.
 */
export async function announceServer(config: Config, kv: Kv, pid: number, warn: (message: string) => void): Promise<() => Promise<void>> {
  const paths = controlPaths(config);
  const info: RunInfo = { pid, store: kv.kind, issuer: config.issuer, location: storeData(config), allowPrivateNetworks: config.outbound.allowPrivateNetworks };
  let server: Server | undefined;
  try {
    mkdirSync(dirname(paths.run), { recursive: true, mode: 0o700 }); // a first start has not written the store yet
  } catch {
    // reported below, by what needs it
  }
  if (kv.kind === 'embedded') {
    const served = await servedElsewhere(config);
    if (served) throw served;
    rmSync(paths.socket, { force: true }); // left behind by a server that did not stop cleanly
    try {
      server = await listenControl(paths.socket, kv);
    } catch (error) {
      warn(`cannot listen on the control socket ${paths.socket} (${(error as Error).message}): the CLI will not reach this server`);
    }
    try {
      writeFileSync(ringRunPath(config), JSON.stringify({ pid, issuer: config.issuer, file: resolve(config.embedded.file) } satisfies RingRunInfo), { mode: 0o600 });
    } catch {
      // keys.dir is written at start (the ring); one that cannot hold this record protects nothing less than before
    }
  }
  let announced = false;
  if (kv.kind === 'redis') {
    announced = await announceIssuer(config, kv).then(
      () => true,
      (error: unknown) => {
        warn(`cannot record this server's issuer in the store (${(error as Error).message}): a CLI run elsewhere must be given ISSUER=${config.issuer}`);
        return false;
      },
    );
  }
  // Another server from this directory (one on Redis beside one on the embedded store) keeps its
  // record: overwritten, and removed when this one stops, the CLI would no longer know it runs.
  const other = readRunInfo(config);
  if (other && other.pid !== pid) {
    // With this server's REDIS_URL the CLI takes the issuer announced in the store (openTarget); it
    // must be given it only when the announcement failed (said "needs ISSUER" either way before the tenth newcomer pass).
    const issuer = announced ? `under the issuer this server announces there (${config.issuer})` : `and needs ISSUER=${config.issuer} to name its addresses`;
    const cli = kv.kind === 'embedded' ? "this server's embedded store" : `the embedded store, not on this server; with this server's REDIS_URL it acts on its store, ${issuer}`;
    warn(`another latchkey server runs from this directory (pid ${other.pid}, ${other.issuer}, on ${other.location}); the CLI without REDIS_URL acts on ${cli}`);
  } else {
    try {
      writeFileSync(paths.run, JSON.stringify(info), { mode: 0o600 });
    } catch (error) {
      // On Redis (e.g. in the image, where only keys/ is writable) the CLI is given REDIS_URL anyway.
      if (kv.kind === 'embedded') warn(`cannot write ${paths.run} (${(error as Error).message}): the CLI cannot tell that this server runs`);
    }
  }
  return async () => {
    if (readRunInfo(config)?.pid === pid) rmSync(paths.run, { force: true });
    if (kv.kind === 'embedded' && ringRunPid(config) === pid) rmSync(ringRunPath(config), { force: true });
    if (server) {
      await new Promise<void>((done) => server.close(() => done()));
      rmSync(paths.socket, { force: true });
    }
  };
}

function ringRunPid(config: Config): number | undefined {
  try {
    return (JSON.parse(readFileSync(ringRunPath(config), 'utf8')) as RingRunInfo).pid;
  } catch {
    return undefined;
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

async function listenControl(path: string, kv: Kv): Promise<Server> {
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    createInterface({ input: socket, crlfDelay: Infinity }).on('line', (line) => void answer(socket, kv, line));
  });
  // Nobody but the owner may connect: the socket gives what the store file gives.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(path, () => done());
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  server.unref();
  const close = server.close.bind(server);
  server.close = (callback) => {
    for (const socket of connections) socket.destroy();
    return close(callback);
  };
  return server;
}

async function answer(socket: Socket, kv: Kv, line: string): Promise<void> {
  let id: unknown;
  try {
    const call = JSON.parse(line) as { id: unknown; op: unknown; args: unknown };
    id = call.id;
    if (!isOperation(call.op) || !Array.isArray(call.args)) throw new Error('not a store operation');
    // JSON has no undefined: a null argument stands for an omitted one (no Kv argument is null).
    const args = call.args.map((arg: unknown) => (arg === null ? undefined : arg));
    const result: unknown = await (kv[call.op] as (...a: unknown[]) => Promise<unknown>).apply(kv, args);
    socket.write(`${JSON.stringify({ id, result })}\n`);
  } catch (error) {
    socket.write(`${JSON.stringify({ id, error: { name: (error as Error).name, message: (error as Error).message } })}\n`);
  }
}

/** The Kv of a running server, through its control socket. */
export class RemoteKv implements Kv {
  readonly kind = 'embedded';
  readonly #socket: Socket;
  readonly #pending = new Map<number, { done: (value: unknown) => void; fail: (error: Error) => void }>();
  #next = 0;

  private constructor(socket: Socket) {
    this.#socket = socket;
    createInterface({ input: socket, crlfDelay: Infinity }).on('line', (line) => {
      const reply = JSON.parse(line) as { id: number; result?: unknown; error?: { name: string; message: string } };
      const call = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (!call) return;
      if (reply.error) call.fail(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
      else call.done(reply.result);
    });
    socket.once('close', () => {
      for (const call of this.#pending.values()) call.fail(new StoreAccessError('the server closed its control socket (did it stop?)'));
      this.#pending.clear();
    });
  }

  static connect(path: string): Promise<RemoteKv> {
    return new Promise((done, fail) => {
      const socket = connect(path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.on('error', () => socket.destroy());
        done(new RemoteKv(socket));
      });
      socket.once('error', (error) => fail(error));
    });
  }

  #call<T>(op: Operation, ...args: unknown[]): Promise<T> {
    const id = (this.#next += 1);
    return new Promise<T>((done, fail) => {
      this.#pending.set(id, { done: done as (value: unknown) => void, fail });
      this.#socket.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  get(key: string) { return this.#call<string | undefined>('get', key); }
  set(key: string, value: string, options?: { ttl?: number; onlyIfAbsent?: boolean; bounded?: boolean }) { return this.#call<boolean>('set', key, value, options); }
  del(keys: readonly string[]) { return this.#call<void>('del', keys); }
  getRecord(key: string) { return this.#call<Awaited<ReturnType<Kv['getRecord']>>>('getRecord', key); }
  putRecord(key: string, payload: string, ttl?: number, options?: { readonly bounded?: boolean }) { return this.#call<boolean>('putRecord', key, payload, ttl, options); }
  endRecord(key: string, ttl: number, successor?: string) { return this.#call<RecordEnding>('endRecord', key, ttl, successor); }
  consumeRecord(key: string, at: number, options?: { readonly drop?: boolean }) { return this.#call<Awaited<ReturnType<Kv['consumeRecord']>>>('consumeRecord', key, at, options); }
  addToSet(key: string, member: string, ttl?: number) { return this.#call<void>('addToSet', key, member, ttl); }
  removeFromSet(key: string, member: string) { return this.#call<void>('removeFromSet', key, member); }
  members(key: string) { return this.#call<string[]>('members', key); }
  addExpiring(key: string, member: string, ttl: number) { return this.#call<void>('addExpiring', key, member, ttl); }
  liveMembers(key: string) { return this.#call<string[]>('liveMembers', key); }
  removeExpiring(key: string, member: string) { return this.#call<void>('removeExpiring', key, member); }
  compareAndSet(key: string, expected: string | undefined, value: string, ttl?: number, options?: { readonly bounded?: boolean }) { return this.#call<boolean>('compareAndSet', key, expected, value, ttl, options); }
  deleteIfEquals(key: string, value: string) { return this.#call<boolean>('deleteIfEquals', key, value); }
  raiseMarkAndLog(...args: Parameters<Kv['raiseMarkAndLog']>) { return this.#call<string | undefined>('raiseMarkAndLog', ...args); }
  readLog(log: string, after: string | undefined, count: number) { return this.#call<Awaited<ReturnType<Kv['readLog']>>>('readLog', log, after, count); }
  ping() { return this.#call<void>('ping'); }

  async close() {
    await new Promise<void>((done) => this.#socket.end(() => done()));
    this.#socket.destroy();
  }
}

/** The store a CLI command acts on, and a line saying which, for stderr. */
export interface Target {
  readonly kv: Kv;
  /** The issuer of the server that serves this store (the configured one when none runs). */
  readonly issuer: string;
  /** That server's outbound.allowPrivateNetworks, when a server runs on this store from this directory. */
  readonly allowPrivateNetworks?: boolean;
  readonly description: string;
  /** Said on stderr after the description: a server runs from this directory on another store than this one. */
  readonly warning?: string;
}

/** What a server on Redis records in the store at its start and every minute after (announceIssuer). */
interface Announced {
  readonly issuer: string;
}

/**
 * What the servers on this store announced, if anything readable: a store that cannot be read now
 * is said by the command itself, as it would be without this (unreachableStore).
 */
async function announcedOn(kv: Kv): Promise<Announced | undefined> {
  try {
    const announced = JSON.parse((await kv.get(SERVERS_ANNOUNCED_KEY)) ?? 'null') as Partial<Announced> | null;
    if (typeof announced?.issuer !== 'string' || !URL.canParse(announced.issuer)) return undefined;
    return { issuer: announced.issuer };
  } catch {
    return undefined;
  }
}

/**
 * Why a command with no server to act on must not open the embedded store `file`, if it must not:
 * there is none there yet, and nobody asked for a new one there. The default file is relative to where
 * latchkey runs, so from another directory (a project that installed latchkey, say) a command would
 * make or list a store of its own that no server reads: a person added there signs in nowhere, and
 * an empty list says nothing of the server's (newcomer pass of 2026-12-06). The checkout itself is
 * where `npm start` keeps it, so a first `users add` there before any start makes it; so does an
 * EMBEDDED_FILE given on purpose.
 */
export function strayStore(file: string, given: boolean, cwd = process.cwd()): string | undefined {
  if (given || existsSync(file) || samePath(cwd, ROOT)) return undefined;
  return `no embedded store at ${file} and no server running on it: run latchkey from the directory the server runs from (the Latchkey checkout, ${resolve(ROOT)}), or set EMBEDDED_FILE to make a new store there on purpose`;
}

function samePath(a: string, b: string): boolean {
  const real = (path: string) => {
    try {
      return realpathSync(path);
    } catch {
      return resolve(path);
    }
  };
  return real(a) === real(b);
}

/**
 * Opens the store a CLI command should act on: the running server's (its control socket on the
 * embedded store), or, when none runs, the configured one. `needsServer`: the command's effect
 * lives in a server's memory on the embedded store (e.g. an initial access token).
 */
export async function openTarget(config: Config, options: { needsServer?: boolean; command?: string } = {}): Promise<Target> {
  const running = readRunInfo(config);
  if (usesRedis(config)) {
    const location = storeData(config);
    const kv = openStore(config);
    const here = running?.store === 'redis' && running.location === location ? running : undefined;
    // No server on this store runs from here: what the servers on it announced, if anything.
    const announced = here ? undefined : await announcedOn(kv);
    const taken = here ?? (config.issuerGiven ? undefined : announced);
    const issuer = taken?.issuer ?? config.issuer;
    // Another REDIS_KEY_PREFIX (or Redis) than the server's is other data: an empty list, not the server's people.
    const warning =
      running?.store === 'redis' && running.location !== location
        ? `the server at ${running.issuer} (pid ${running.pid}) runs on ${running.location}, not on this store: give latchkey its REDIS_URL and REDIS_KEY_PREFIX to act on its data`
        : running?.store === 'embedded'
          ? announced
            ? // Servers run on this Redis too (the README's "On Redis", beside the first start): acting here is right.
              `also running from this directory: the server at ${running.issuer} (pid ${running.pid}) on the embedded store ${running.location}, which this command does not act on (unset REDIS_URL to act on its data)`
            : `the server at ${running.issuer} (pid ${running.pid}) runs on the embedded store ${running.location}, not on Redis: unset REDIS_URL to act on its data (what this command makes there, it never sees)`
          : announced && announced.issuer !== issuer
          ? `the servers on this store announce the issuer ${announced.issuer}, not ${issuer} (ISSUER): what this command signs, posts or prints names ${issuer} (logout tokens the apps refuse); unset ISSUER, or give theirs`
          : undefined;
    // The outbound policy only from a server running here (its run file): the store's word for it
    // would open this host's private network to what the command posts (review of 2026-12-06).
    const allowPrivateNetworks = here?.allowPrivateNetworks;
    const from = taken && !here ? ', as the servers on it announce' : '';
    return { kv, issuer, description: `${location} (issuer ${issuer}${from})`, ...(allowPrivateNetworks !== undefined && { allowPrivateNetworks }), ...(warning ? { warning } : {}) };
  }
  // An embedded server answering on the socket is the one to act on, whatever the run file says
  // (it names the other server when one on Redis runs from this directory too).
  if (running?.store !== 'embedded' && (await answers(controlPaths(config).socket))) {
    const kv = await RemoteKv.connect(controlPaths(config).socket);
    return { kv, issuer: config.issuer, description: `the embedded store of the server running from this directory (${config.embedded.file})` };
  }
  if (running?.store === 'redis') {
    throw new StoreAccessError(
      `the server at ${running.issuer} (pid ${running.pid}) runs on ${running.location}, not on the embedded store: set REDIS_URL (and the other redis settings it uses) to act on its store`,
    );
  }
  if (running?.store === 'embedded') {
    const { socket } = controlPaths(config);
    const kv = await RemoteKv.connect(socket).catch((error: Error) => {
      throw new StoreAccessError(`cannot reach the server at ${running.issuer} (pid ${running.pid}) on its control socket ${socket}: ${error.message}`);
    });
    return {
      kv,
      issuer: running.issuer,
      ...(running.allowPrivateNetworks !== undefined && { allowPrivateNetworks: running.allowPrivateNetworks }),
      description: `the embedded store of the server at ${running.issuer} (${config.embedded.file})`,
    };
  }
  if (options.needsServer) {
    throw new StoreAccessError(
      `${options.command ?? 'this command'} needs a running server: on the embedded store what it makes lives in the server's memory; start it (npm start) or set REDIS_URL`,
    );
  }
  // The file by its full path: EMBEDDED_FILE is relative to where latchkey runs, so a command run from
  // another directory (a subdirectory of the checkout, say) would act on a store of its own, new and empty
  // (newcomer pass of 2026-12-06: it said the same words as at the server's directory).
  const file = resolve(config.embedded.file);
  const stray = strayStore(file, config.embeddedFileGiven);
  if (stray) throw new StoreAccessError(stray);
  const none = existsSync(file) ? '' : '; there is none there yet';
  return { kv: openStore(config), issuer: config.issuer, description: `the embedded store file ${file} (no server is running on it${none})` };
}
