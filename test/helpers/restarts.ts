/**
 * A server on a redis-server of the test's own, started again on the same store, directory and port
 * with other settings: what a change to the configuration across a restart ends. Registers the
 * calling describe's hooks: a fresh store for each test (`per: 'test'`, beforeEach and afterEach) or
 * one for the describe (`'describe'`, before and after), everything stopped at its end.
 * (test/helpers/configured-api-restarts.ts is the same with configured APIs and a feed follower.)
 */
import { rmSync } from 'node:fs';
import { freePort, startRedisServer, type RedisServer } from './redis.js';
import { startServer, testDir, type TestServer, type TestServerOptions } from './server.js';

export interface Restarts {
  /** Stops the server running now, if any, and starts one on the same Redis, directory and port with `options`. */
  start(options?: Omit<TestServerOptions, 'redisUrl' | 'ownRedis' | 'dir' | 'port'>): Promise<TestServer>;
  /** The server running now (undefined before the first start of a test or describe). */
  readonly server: TestServer | undefined;
}

export function serverRestarts(per: 'test' | 'describe' = 'test'): Restarts {
  let redis: RedisServer | undefined;
  let dir: string | undefined;
  let port: number;
  let server: TestServer | undefined;

  (per === 'test' ? beforeEach : before)(async () => {
    redis = await startRedisServer();
    dir = testDir();
    port = await freePort();
  });
  (per === 'test' ? afterEach : after)(async () => {
    await server?.stop();
    server = undefined;
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  return {
    async start(options = {}) {
      await server?.stop();
      server = await startServer({ ...options, redisUrl: redis!.url, dir, port });
      return server;
    },
    get server() {
      return server;
    },
  };
}
