/**
 * A TCP relay to Redis that a test can pause mid-conversation: once armed, it holds a connection's
 * traffic from the first chunk `matches` says is the one, so a request is caught in flight at the
 * write the test names while other connections (another instance, the CLI) go on. A request is
 * held with `hold`, which fails the test when the request answers before its hold is reached (a
 * trigger that named the wrong traffic held nothing of it) or while held. It can also
 * silence a connection both ways (`silence`), as a half-open one: a NAT or firewall that dropped
 * it, a paused proxy; nothing is delivered, nothing is closed, no error.
 */
import { appendFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort, startRedisServer, type RedisServer } from './redis.js';
import { startServer, testDir, testEnv, type TestServer, type TestServerOptions } from './server.js';
import { clientCredentialsToken, machineClient, type ClientCredentials } from './tokens.js';

/** A request held by `Relay.hold`: its hold was reached before it answered. */
export interface Held<T> {
  /** Its answer, once released (or once its Redis is gone). */
  readonly answer: Promise<T>;
  /** Lets everything held go on and waits for the answer; fails if it came while held (what was held was not this request's). */
  release(): Promise<T>;
}

/** A relay to Redis that, once armed, holds a connection's traffic from the first chunk `matches` says is the one. */
export interface Relay {
  readonly url: string;
  /**
   * Starts `request` with a hold armed, and resolves once the hold is reached (a chunk matching
   * `matches` is held with everything after it on that connection). Fails if the request answers
   * first: the hold is misplaced, it would hold nothing of that request. `connection` numbers the
   * connection the chunk came on, for a hold that follows one connection's conversation.
   */
  hold<T>(matches: (chunk: string, connection: number) => boolean, request: () => Promise<T>): Promise<Held<T>>;
  /** As `hold` for traffic no request of the test's waits on (a timer's): resolves once held. */
  holdFrom(matches: (chunk: string, connection: number) => boolean): Promise<void>;
  /**
   * Holds, both ways, the traffic of every open connection that has sent something `matches`
   * says is the one (what it sent so far, as one text): how many.
   */
  silence(matches: (sent: string) => boolean): number;
  /**
   * Once a chunk `matches` says is the one arrives, cuts every connection (as a proxy restarted, a
   * redis-server killed): that chunk is passed on to Redis first and its answer lost (`answered`:
   * the write ran, the caller was never told), or dropped (not run). Resolves true once cut, or
   * false once release() dropped it unreached (a request that answered without that write: a
   * command of it timed out while held on a loaded runner), so that nothing waits on it for ever.
   */
  cut(matches: (chunk: string) => boolean, options?: { answered?: boolean }): Promise<boolean>;
  /** Lets everything held go on, and drops a hold not reached yet. */
  release(): void;
  close(): void;
}

/** Commands that may write (a script may be a read too: counted all the same). */
export const WRITE_COMMANDS = /^(evalsha|eval|set|del|unlink|sadd|srem|zadd|zrem|xadd|hset|hdel|expire|pexpire|incr|incrby|decr|publish)$/i;

/**
 * Whether a command (its words) is a write the server sends on a timer of its own, for no request:
 * the tracked cache's heartbeat (SET tracked-cache:<instance>:<n>, every second), the back-channel
 * sweeper's claim of what is due (a script on its three {bc} sorted sets, every
 * BACKCHANNEL_SWEEP_INTERVAL: 0.2 s or 0.5 s in some files), the key ring's lock, the revocation
 * list's lifetimes (every minute). They go on the connection a request's commands go on, at any
 * moment: a trigger for "the request's next write" that took one cut or held the timer's instead.
 * So the same writes made by a request (an on-demand rotation's lock, a start's lifetimes, the
 * servers' announcement) are never a trigger: a test cutting at those names them itself.
 */
export function isTimerWrite([name = '', ...words]: string[]): boolean {
  const keys = /^eval(sha)?$/i.test(name) ? words.slice(2, 2 + Number(words[1] ?? 0)) : words.slice(0, 1);
  if (/^eval(sha)?$/i.test(name) && keys.length === 3 && ['backchannel:{bc}:retries', 'backchannel:{bc}:session-ends', 'backchannel:{bc}:owed-endings'].every((key, i) => keys[i]?.endsWith(key))) return true;
  return keys.length > 0 && keys.every((key) => /(^|:)tracked-cache:[0-9a-f]+:\d+$|(^|:)keyring:lock$|:\{rv\}:lifetimes?(:|$)|(^|:)servers:announced$/.test(key));
}

/**
 * Whether a chunk holds a command that may write (WRITE_COMMANDS), the server's timers' own
 * (isTimerWrite) aside: a trigger to hold or cut at a request's write.
 */
export const hasWrite = (chunk: string): boolean => commandsIn(chunk).some((command) => WRITE_COMMANDS.test(command[0] ?? '') && !isTimerWrite(command));

/** The commands in a chunk (RESP arrays of bulk strings, as ioredis sends them), each as its words. */
export function commandsIn(chunk: string): string[][] {
  const commands: string[][] = [];
  let at = 0;
  for (let head; (head = /^\*(\d+)\r\n/.exec(chunk.slice(at, at + 16))); ) {
    at += head[0].length;
    const words: string[] = [];
    for (let bulk; words.length < Number(head[1]) && (bulk = /^\$(\d+)\r\n/.exec(chunk.slice(at, at + 24))); at += Number(bulk[1]) + 2) {
      at += bulk[0].length;
      words.push(chunk.slice(at, at + Number(bulk[1])));
    }
    commands.push(words);
  }
  return commands;
}

/**
 * A trigger: a script (EVAL, EVALSHA) with a key naming `key` among its KEYS. The store writes,
 * consumes and ends records so; its reads are HGETALL, GET, or one script with the keys it reads
 * as arguments (readMany), so none of them is held by this.
 */
export const scriptOn = (key: string) => (chunk: string) =>
  commandsIn(chunk).some(([name = '', , keys = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(keys)).some((arg) => arg.includes(key)));

/** What a connection sent, kept for `silence` up to this length. */
const SENT_KEPT = 64 * 1024;

interface Link {
  readonly upstream: Socket;
  sent: string;
  /** What Redis sent it while silenced. */
  down?: Buffer[];
  /** Cut with its last chunk passed on: Redis's side closes once it has read it, its answer goes nowhere. */
  passedOn?: boolean;
}

/** RELAY_LOG=<file>: every command each connection sends, one line a chunk (held ones marked), to check what a hold holds. */
const LOG = process.env.RELAY_LOG;
const shown = (text: string) => text.replace(/\*\d+\r\n/g, '| ').replace(/\$\d+\r\n/g, '').replace(/\r\n/g, ' ').replace(/[^\x20-\x7e]/g, '.').replace(/(\S{80})\S+/g, '$1…');
const log = (line: string) => LOG && appendFileSync(LOG, `${new Date().toISOString().slice(11, 23)} ${line}\n`);
let connections = 0;

export async function startRelay(redisPort: number): Promise<Relay> {
  let armed: { matches: (chunk: string, connection: number) => boolean; held: () => void } | undefined;
  let cutting: { matches: (chunk: string) => boolean; answered: boolean; cut: (reached: boolean) => void } | undefined;
  const holding = new Map<Socket, Buffer[]>();
  const links = new Map<Socket, Link>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    const link: Link = { upstream, sent: '' };
    const id = (connections += 1);
    links.set(client, link);
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk) => (link.passedOn ? undefined : link.down ? link.down.push(chunk) : client.write(chunk)));
    client.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      if (link.sent.length < SENT_KEPT) link.sent += text.slice(0, SENT_KEPT - link.sent.length);
      if (cutting?.matches(text)) {
        const { answered, cut } = cutting;
        cutting = undefined;
        if (LOG) log(`c${id} CUT${answered ? ' (passed on)' : ''} ${shown(text)}`);
        for (const [other, each] of links) {
          if (other === client && answered) {
            each.passedOn = true;
            each.upstream.end(chunk);
          } else each.upstream.destroy();
          other.destroy();
        }
        return void cut(true);
      }
      const queue = holding.get(client);
      const hold = !queue && armed?.matches(text, id);
      if (LOG) log(`c${id}${queue ? ' (queued)' : hold ? ' HELD' : ''} ${shown(text)}`);
      if (queue) return void queue.push(chunk);
      if (hold && armed) {
        holding.set(client, [chunk]);
        armed.held();
        armed = undefined;
        return;
      }
      upstream.write(chunk);
    });
    const close = () => (client.destroy(), link.passedOn || upstream.destroy(), links.delete(client), holding.delete(client));
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  const holdFrom = (matches: (chunk: string, connection: number) => boolean) => new Promise<void>((held) => (armed = { matches, held }));
  function release() {
    log('-- released');
    // A hold (or cut) not reached by now is dropped too: it would catch a later request's traffic.
    armed = undefined;
    cutting?.cut(false);
    cutting = undefined;
    for (const [client, queue] of holding) for (const chunk of queue) links.get(client)?.upstream.write(chunk);
    holding.clear();
    for (const [client, link] of links) {
      for (const chunk of link.down ?? []) client.write(chunk);
      delete link.down;
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    async hold(matches, request) {
      if (holding.size > 0) release(); // what a test that failed before releasing left held
      const reached = holdFrom(matches);
      let answered = false;
      const answer = request();
      const settled = answer.then(
        () => (answered = true),
        () => (answered = true),
      );
      void settled.then(() => log('-- the request answered'));
      if (!(await Promise.race([reached.then(() => true), settled.then(() => false)]))) {
        armed = undefined;
        throw new Error('the request answered before its hold was reached: the hold is misplaced, it held nothing of that request');
      }
      return {
        answer,
        async release() {
          const early = answered;
          release();
          if (early) throw new Error('the request answered while held: what was held was not its traffic');
          return answer;
        },
      };
    },
    holdFrom,
    cut(matches, options = {}) {
      return new Promise<boolean>((cut) => (cutting = { matches, answered: options.answered ?? false, cut }));
    },
    silence(matches) {
      let silenced = 0;
      for (const [client, link] of links) {
        if (!matches(link.sent)) continue;
        link.down ??= [];
        if (!holding.has(client)) holding.set(client, []);
        silenced += 1;
      }
      return silenced;
    },
    release,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * A server on its own Redis, reached through a relay, and the environment of an operator's CLI that
 * reaches that Redis directly, not through the relay.
 */
export interface RelayedServer {
  readonly redis: RedisServer;
  readonly relay: Relay;
  readonly server: TestServer;
  /** The CLI's environment (`latchkey(env, …)`). */
  readonly env: Record<string, string>;
  /** The environment of a CLI that reaches Redis through the relay, as the server does. */
  readonly relayedEnv: Record<string, string>;
  /**
   * `request`, its first chunk `matches` says is the one reaching a paused Redis (past a short
   * command timeout: an outage), which runs it and what followed once resumed, after the answer.
   */
  pausedAt<T>(matches: (chunk: string) => boolean, request: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

/**
 * A REDIS_COMMAND_TIMEOUT (ms) that makes a Redis paused longer an outage, answered 503 (pausedAt),
 * soon enough for a test to pause it at each write in turn. Not shorter: at 500 ms, a loaded
 * two-core runner (CI rehearsals of 2026-12-05, early in the run, the heaviest files together)
 * timed out a command of a request no blip was made at, in a test's setup and in a retry after
 * the blip.
 */
export const BLIP_COMMAND_TIMEOUT = 2000;

export interface RelayedServerOptions {
  /**
   * The server's REDIS_COMMAND_TIMEOUT (ms). By default 30 s: a held write must not time out (503)
   * while the test acts. A short one (BLIP_COMMAND_TIMEOUT) makes a Redis paused longer an outage, answered 503.
   */
  readonly commandTimeout?: number;
  /** Redis keeps an append-only file, as a restarted or failed-over Redis keeps its data. */
  readonly appendonly?: boolean;
  readonly clients?: TestServerOptions['clients'];
  /** The in-process server hashes at CHEAP_ARGON2 (startServer's cheapHashing): for a suite about neither hashing nor a race a hash could time. */
  readonly cheapHashing?: boolean;
}

export async function startRelayedServer(env: Record<string, string> = {}, options: RelayedServerOptions = {}): Promise<RelayedServer> {
  const redis = await startRedisServer({ appendonly: options.appendonly });
  const relay = await startRelay(redis.port);
  const dir = testDir();
  const port = await freePort();
  const timeout = String(options.commandTimeout ?? 30_000);
  const server = await startServer({ dir, port, redisUrl: relay.url, clients: options.clients, cheapHashing: options.cheapHashing, env: { ...env, REDIS_COMMAND_TIMEOUT: timeout } });
  return {
    redis,
    relay,
    server,
    env: testEnv(dir, port, { redisUrl: redis.url, clients: options.clients, env }),
    relayedEnv: testEnv(dir, port, { redisUrl: relay.url, clients: options.clients, env }),
    async pausedAt(matches, request) {
      const held = await relay.hold(matches, request);
      redis.pause();
      const answer = await held.release();
      redis.resume();
      // Redis runs what waited in its socket.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return answer;
    },
    async stop() {
      redis.resume();
      relay.release();
      await server.stop();
      relay.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A relayed server whose operator ("ops", a machine client) holds an admin API token. */
export interface RelayedAdmin extends RelayedServer {
  readonly ops: ClientCredentials;
  /** The operator's admin API token. */
  readonly admin: string;
  /** A call to the admin API (`path` under /admin) with that token, `body` sent as JSON. */
  call(method: string, path: string, body?: unknown): Promise<Response>;
}

/** startRelayedServer with an operator's machine client ("ops") added, granted the admin API, and its token. */
export async function startRelayedAdmin(env: Record<string, string> = {}, options: RelayedServerOptions = {}): Promise<RelayedAdmin> {
  const ops = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
  const relayed = await startRelayedServer(env, { ...options, clients: [...(options.clients ?? []), machineClient(ops)] });
  const { server } = relayed;
  try {
    await server.apis.grant(ops.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    const admin = await clientCredentialsToken(server.url, ops, `${server.issuer}/admin`, 'admin');
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${server.url}/admin${path}`, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { ...relayed, ops, admin, call };
  } catch (error) {
    await relayed.stop();
    throw error;
  }
}
