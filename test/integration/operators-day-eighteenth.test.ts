/**
 * The eighteenth passes, the operator's day (h15): what /readyz tells a load balancer and an
 * operator's alert while Redis answers PING but refuses every write (a master with
 * min-replicas-to-write and no replica, NOREPLICAS; a full one under maxmemory, OOM; one that
 * cannot persist, MISCONF). Every sign-in and token request is then a 503; /readyz said "ready".
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('integration: eighteenth operator’s day pass: /readyz and a Redis that refuses writes', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let admin: Redis;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    admin = new Redis(redis.url);
    server = await startServer({ redisUrl: redis.url, cheapHashing: true });
  });
  after(async () => {
    await server?.stop();
    admin?.disconnect();
    await redis?.stop();
  });

  const ready = async () => {
    const response = await fetch(`${server.url}/readyz`);
    return { status: response.status, body: (await response.json()) as { status: string; store: string; keys: number } };
  };

  for (const [what, refuse, allow, code] of [
    ['min-replicas-to-write with no replica (NOREPLICAS)', ['min-replicas-to-write', '1'], ['min-replicas-to-write', '0'], 'NOREPLICAS'],
    ['a full Redis under maxmemory (OOM)', ['maxmemory', '1'], ['maxmemory', '0'], 'OOM'],
  ] as const) {
    it(`is not ready while Redis refuses writes: ${what}, and says so; ready again once it takes them (before the fix: 200 "ready")`, async () => {
      assert.equal((await ready()).status, 200);
      await admin.config('SET', ...refuse);
      try {
        const refused = await ready();
        assert.equal(refused.status, 503, JSON.stringify(refused.body));
        assert.equal(refused.body.status, 'not ready');
        assert.equal(refused.body.store, `redis: refuses writes (${code})`);
        // What the balancer would have sent on: refused, as /readyz now says.
        const token = await fetch(`${server.url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'x', client_secret: 'y' }) });
        assert.equal(token.status, 503);
      } finally {
        await admin.config('SET', ...allow);
      }
      const back = await ready();
      assert.deepEqual([back.status, back.body.store], [200, 'redis: ok']);
    });
  }
});
