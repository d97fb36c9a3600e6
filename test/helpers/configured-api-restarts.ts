/**
 * A server on a redis-server of the test's own, started again on the same store, directory and port
 * with other configured APIs (RESOURCE_SERVERS), the feed's reader granted at each start, and an API
 * following the feed: what a change to the configuration across a restart ends. Registers the calling
 * describe's beforeEach and afterEach: each test has a fresh store, and ends with everything stopped.
 */
import { rmSync } from 'node:fs';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { freePort, startRedisServer, type RedisServer } from './redis.js';
import { startServer, testDir, type TestServer } from './server.js';
import { grantFeed, type ClientCredentials } from './tokens.js';

export interface ConfiguredApiRestarts {
  /** (Re)starts the server with these configured APIs; the feed's reader granted. */
  start(apis: unknown[]): Promise<TestServer>;
  /** An API at `audience` following the feed of the server running now, started now (it reads what is on the list). */
  api(audience: string): Promise<ResourceServer>;
}

export function configuredApiRestarts(clients: readonly Record<string, unknown>[], feedReader: ClientCredentials): ConfiguredApiRestarts {
  let redis: RedisServer | undefined;
  let dir: string;
  let port: number;
  let server: TestServer | undefined;
  let helper: ResourceServer | undefined;

  beforeEach(async () => {
    redis = await startRedisServer();
    dir = testDir();
    port = await freePort();
  });
  afterEach(async () => {
    helper?.close();
    helper = undefined;
    await server?.stop();
    server = undefined;
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    async start(apis) {
      helper?.close();
      helper = undefined;
      await server?.stop();
      server = await startServer({ redisUrl: redis!.url, dir, port, clients: [...clients], env: { RESOURCE_SERVERS: JSON.stringify(apis) } });
      await grantFeed(server, feedReader.id);
      return server;
    },
    async api(audience) {
      helper?.close();
      helper = await createResourceServer({ issuer: server!.issuer, audience, clientId: feedReader.id, clientSecret: feedReader.secret, onError: () => {} });
      await helper.sync();
      return helper;
    },
  };
}
