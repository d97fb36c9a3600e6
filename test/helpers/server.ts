/**
 * The one way tests start Latchkey: in process (startServer) or as its own `latchkey serve`
 * process (startServerProcess), on a free port, with its own keys directory and (unless a Redis
 * URL is given, or a redis-server of its own is asked for) its own embedded store file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { loadConfig, type Config } from '../../src/config.js';
import { serve, type Running } from '../../src/main.js';
import { createLogger, type Logger } from '../../src/ops/logger.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { serveProcess } from './process.js';
import { freePort, startRedisServer, type RedisServer } from './redis.js';

export interface TestServer extends Running {
  readonly config: Config;
  readonly issuer: string;
  /** The env the server was configured with, for CLI runs against the same store. */
  readonly env: Record<string, string>;
  /** The private signing JWK, when the test provisioned it (provisionKey). */
  readonly signingKey: JWK | undefined;
  /** Stops the server (and its own redis-server) and removes its temporary files (unless keepFiles). */
  stop(): Promise<void>;
}

export interface TestServerOptions {
  readonly redisUrl?: string;
  /** Start a redis-server of its own for this server, stopped with it (instead of redisUrl or the embedded store). */
  readonly ownRedis?: boolean;
  /** Static clients (RFC 7591 metadata), as an operator configures them (CLIENTS). */
  readonly clients?: readonly Record<string, unknown>[];
  /** Provision the signing key ring (keys/keyring.json) before the first start, and keep its private JWK. */
  readonly provisionKey?: boolean;
  /** Extra env-style settings, e.g. { RESOURCE_SERVERS: '[...]' }. */
  readonly env?: Record<string, string>;
  /** Reuse a directory (keys, embedded store) from an earlier server, e.g. to test restarts. */
  readonly dir?: string;
  readonly port?: number;
  /** Where the server logs (silent by default). */
  readonly logger?: Logger;
  /**
   * Hash passwords at CHEAP_ARGON2 in this in-process server, for a suite that signs many people in
   * and is about neither hashing nor a race a hash's duration could open: a hash at the OWASP
   * parameters (19 MiB, two passes) is about 60 ms of CPU, a tenth or more of such a suite's.
   */
  readonly cheapHashing?: boolean;
}

/**
 * Below config.ts's OWASP minimums on purpose: set here, past the configuration's check, so no
 * setting an operator can make reaches it. A hash keeps its parameters, so one made at the OWASP
 * ones (a CLI's `users add`) is still verified at them.
 */
export const CHEAP_ARGON2 = { memoryCost: 1024, timeCost: 1, parallelism: 1 } as const;

export function testDir(): string {
  return mkdtempSync(join(tmpdir(), 'latchkey-test-'));
}

/** The env a test server (or a CLI run next to it) reads its configuration from. */
export function testEnv(dir: string, port: number, options: TestServerOptions = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://localhost:${port}`,
    KEYS_DIR: join(dir, 'keys'),
    EMBEDDED_FILE: join(dir, 'store.json'),
    LOG_LEVEL: 'silent',
    METRICS_PORT: '0',
    // Suites register many clients from one address; the limit has its own test (operations).
    RATE_LIMIT_REGISTRATION_PER_IP: '0',
    // Fast hashing for tests that are not about hashing; OWASP minimums still apply.
    ACCOUNTS_ARGON2_MEMORY_COST: '19456',
    ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}),
    ...(options.clients ? { CLIENTS: JSON.stringify(options.clients) } : {}),
    ...options.env,
  };
}

/** A key ring as an operator provisions it: one current RS256 key whose kid is its thumbprint. */
export async function provisionKeyring(keysDir: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const exported = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(exported, 'sha256');
  const jwk: JWK = { ...exported, kid, alg: 'RS256', use: 'sig' };
  const at = new Date().toISOString();
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(keysDir, 'keyring.json'),
    `${JSON.stringify({ version: 1, keys: [{ kid, state: 'current', createdAt: at, activatedAt: at, jwk }] }, null, 2)}\n`,
    { mode: 0o600 },
  );
  return jwk;
}

/** What both ways of starting share: directory, port, own redis-server, env, provisioned key; and how to clean up. */
interface Prepared {
  readonly env: Record<string, string>;
  readonly signingKey: JWK | undefined;
  cleanup(): Promise<void>;
}

async function prepare(options: TestServerOptions): Promise<Prepared> {
  const dir = options.dir ?? testDir();
  let redis: RedisServer | undefined;
  const cleanup = async () => {
    await redis?.stop();
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (options.ownRedis) redis = await startRedisServer();
    const port = options.port ?? (await freePort());
    const env = testEnv(dir, port, redis ? { ...options, redisUrl: redis.url } : options);
    const signingKey = options.provisionKey ? await provisionKeyring(env.KEYS_DIR!) : undefined;
    return { env, signingKey, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const prepared = await prepare(options);
  const { env, signingKey } = prepared;
  try {
    const loaded = loadConfig(env);
    const config = options.cheapHashing ? { ...loaded, accounts: { ...loaded.accounts, argon2: CHEAP_ARGON2 } } : loaded;
    const running = await serve(config, options.logger ?? createLogger('silent'));
    return {
      ...running,
      // Tests talk to the server by the host name of the default test issuer, as people and apps use
      // the issuer's: the server builds every URL (redirects included) from the issuer, whatever host
      // a request names, and the test agents keep cookies per host.
      url: `http://localhost:${env.PORT}`,
      config,
      issuer: config.issuer,
      env,
      signingKey,
      async stop() {
        await running.close();
        await prepared.cleanup();
      },
    };
  } catch (error) {
    await prepared.cleanup();
    throw error;
  }
}

export interface SelfUpstreamOptions extends Omit<TestServerOptions, 'port'> {
  /** The secret of both clients: the app's ("app") and the server's own at itself ("latchkey"). */
  readonly secret: string;
  /** The app's redirect URI. */
  readonly redirect: string;
}

/**
 * An in-process server that is its own upstream provider, "self" (where it is the client
 * "latchkey"), with an app ("app", redirecting to `redirect`): a person signs in to the app through
 * "self", signing in at the same server as its upstream. `clients` and `env` add to those.
 */
export async function startSelfUpstreamServer({ secret, redirect, clients = [], env = {}, ...options }: SelfUpstreamOptions): Promise<TestServer> {
  const port = await freePort();
  const latchkey = { client_id: 'latchkey', client_secret: secret, redirect_uris: [`http://localhost:${port}/upstream/self/callback`] };
  const server = await startServer({
    ...options,
    port,
    clients: [{ client_id: 'app', client_secret: secret, redirect_uris: [redirect] }, latchkey, ...clients],
    env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', ...env },
  });
  try {
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'self', issuer: server.issuer, clientId: 'latchkey', clientSecret: secret, scope: 'openid', displayName: 'Self', linkByEmail: false, endSession: false });
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

export interface TestServerProcess {
  readonly issuer: string;
  readonly env: Record<string, string>;
  readonly signingKey: JWK | undefined;
  /** Every line the process wrote so far (stdout, then stderr). */
  readonly logs: string[];
  stop(): Promise<void>;
}

/** `latchkey serve` (the built CLI) in its own process, with the same options as startServer (but no logger). */
export async function startServerProcess(options: Omit<TestServerOptions, 'logger' | 'cheapHashing'> = {}): Promise<TestServerProcess> {
  const prepared = await prepare(options);
  const { env, signingKey } = prepared;
  try {
    const child = await serveProcess(env);
    return {
      issuer: env.ISSUER!,
      env,
      signingKey,
      get logs() {
        return `${child.stdout()}\n${child.stderr()}`.split('\n').filter(Boolean);
      },
      async stop() {
        await child.stop();
        await prepared.cleanup();
      },
    };
  } catch (error) {
    await prepared.cleanup();
    throw error;
  }
}
