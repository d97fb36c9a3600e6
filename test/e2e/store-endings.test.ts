/**
 * What Redis must keep for an ending to hold: every revocation entry, a session's ending and each
 * single-use mark has a TTL, which is what a Redis with an eviction policy drops first once its
 * memory is full (volatile-lru, the default of several managed offerings, drops only such keys).
 * Filling its memory (anyone's load can) then brings a revoked token back. Latchkey refuses such a
 * Redis at start, says so at /readyz when it is set so later, and a full Redis that evicts nothing
 * (noeviction) is answered 503 like any outage: the revocation is asked again, never half-done.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, introspect, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const CLIENTS = JSON.stringify([machineClient(MACHINE), machineClient(RS)]);

describe('e2e: revocations are kept by a Redis that evicts nothing', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let raw: Redis;
  const dir = testDir();

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
  });
  afterEach(async () => {
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    await raw.config('SET', 'maxmemory', '0');
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  const start = () => startServer({ redisUrl: redis.url, dir, env: { CLIENTS, RESOURCE_SERVERS } });
  const memoryUsed = async () => Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);

  it('a Redis that evicts keys under memory pressure (volatile-lru) is refused at start: served by it, a flood of data made it drop a revocation and the revoked token worked again', async () => {
    await raw.config('SET', 'maxmemory-policy', 'volatile-lru');
    const started = await start().catch((error: Error) => error);
    if (started instanceof Error) {
      assert.match(started.message, /^REDIS_URL: Redis redis:\/\/127\.0\.0\.1:\d+ evicts keys under memory pressure \(maxmemory-policy volatile-lru\).*set maxmemory-policy noeviction/);
      return;
    }
    // Accepted: the attack. A token revoked, then the memory filled (as any load fills it).
    const server: TestServer = started;
    try {
      const token = await clientCredentialsToken(server.url, MACHINE, API);
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
      assert.equal((await introspect(server.url, RS, token)).active, false);
      await raw.config('SET', 'maxmemory', String((await memoryUsed()) + 2_000_000));
      const filler = 'x'.repeat(10_000);
      for (let i = 0; i < 1000; i += 1) await raw.set(`filler:${i}`, filler, 'EX', 600).catch(() => undefined);
      assert.equal((await introspect(server.url, RS, token)).active, false, 'a revoked token works again once Redis evicted its revocation entry');
    } finally {
      await server.stop();
    }
  });

  it('set to evict once the server runs: /readyz says not ready, naming the policy, until it is set back', async () => {
    const server = await start();
    try {
      assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      await raw.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const refused = await fetch(`${server.url}/readyz`);
      assert.equal(refused.status, 503);
      assert.match(((await refused.json()) as { store: string }).store, /evicts keys \(maxmemory-policy allkeys-lru\)/);
      await raw.config('SET', 'maxmemory-policy', 'noeviction');
      assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    } finally {
      await server.stop();
    }
  });

  it('a full Redis that evicts nothing answers a revocation 503 (an outage), not 500; asked again with room, it holds', async () => {
    const server = await start();
    try {
      const token = await clientCredentialsToken(server.url, MACHINE, API);
      await raw.config('SET', 'maxmemory', '1');
      const full = await tokenEndpoint(server.url, '/token/revocation', MACHINE, token);
      assert.equal(full.status, 503, JSON.stringify(full.body));
      await raw.config('SET', 'maxmemory', '0');
      assert.equal((await introspect(server.url, RS, token)).active, true, 'nothing was revoked: the client was told so');
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
      assert.equal((await introspect(server.url, RS, token)).active, false);
    } finally {
      await server.stop();
    }
  });
});
