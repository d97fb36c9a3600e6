/**
 * Starts Latchkey in process for a test, on a free port, with its own keys directory and (unless
 * a Redis URL is given) its own embedded store file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config.js';
import { serve, type Running } from '../../src/main.js';
import { createLogger, type Logger } from '../../src/ops/logger.js';
import { freePort } from './redis.js';

export interface TestServer extends Running {
  readonly config: Config;
  readonly issuer: string;
  /** Stops the server and removes its temporary files (unless keepFiles). */
  stop(): Promise<void>;
}

export interface TestServerOptions {
  readonly redisUrl?: string;
  /** Extra env-style settings, e.g. { RESOURCE_SERVERS: '[...]' }. */
  readonly env?: Record<string, string>;
  /** Reuse a directory (keys, embedded store) from an earlier server, e.g. to test restarts. */
  readonly dir?: string;
  readonly port?: number;
  /** Where the server logs (silent by default). */
  readonly logger?: Logger;
}

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
    ...options.env,
  };
}

export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = options.dir ?? testDir();
  const port = options.port ?? (await freePort());
  const config = loadConfig(testEnv(dir, port, options));
  const running = await serve(config, options.logger ?? createLogger('silent'));
  return {
    ...running,
    // Tests talk to the server by the host name of the default test issuer, as people and apps use
    // the issuer's: the server builds every URL (redirects included) from the issuer, whatever host
    // a request names, and the test agents keep cookies per host.
    url: `http://localhost:${port}`,
    config,
    issuer: config.issuer,
    async stop() {
      await running.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
