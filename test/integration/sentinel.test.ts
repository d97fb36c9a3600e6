/**
 * Redis Sentinel failover: one master, one replica, three sentinels spawned locally. Latchkey
 * finds the master through the sentinels; when the master dies under load, service resumes on
 * the promoted replica by itself, its in-memory APIs and grants invalidated by the new master.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { eventually } from '../helpers/eventually.js';
import { startRedisSentinel, type RedisSentinelGroup } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'sentinel-test-secret-with-plenty-of-entropy-0123456';
const API = 'https://sentinel-api.example.test';

describe('Redis Sentinel failover', function () {
  this.timeout(90_000);
  let group: RedisSentinelGroup;
  let server: TestServer;

  before(async () => {
    group = await startRedisSentinel();
    server = await startServer({
      env: {
        REDIS_MODE: 'sentinel',
        REDIS_SENTINELS: group.sentinels.join(','),
        REDIS_SENTINEL_NAME: group.masterName,
        REDIS_COMMAND_TIMEOUT: '500',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt' }]),
        CLIENTS: JSON.stringify([{ client_id: 'svc', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }]),
      },
    });
  });
  after(async () => {
    await server?.stop();
    await group?.stop();
  });

  const token = async (params: Record<string, string> = {}) =>
    (
      await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`svc:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', ...params }),
      })
    ).status;

  it('serves through the sentinels, and after the master is killed under load resumes on the promoted replica', async () => {
    assert.equal(await token(), 200);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    const outcomes: number[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        outcomes.push(await token().catch(() => 0));
        await new Promise((done) => setTimeout(done, 25));
      }
    })();

    await group.killMaster();
    await eventually(async () => assert.ok(outcomes.includes(503), 'unavailable while there is no master'), 200);
    const mark = outcomes.length;
    // down-after 1 s, then election and promotion: seconds, not minutes.
    await eventually(async () => assert.ok(outcomes.slice(mark).filter((status) => status === 200).length >= 10, 'resumed'), 400, 100);
    running = false;
    await loop;
    assert.deepEqual([...new Set(outcomes)].sort(), [200, 503], 'nothing but success or 503 with Retry-After');
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
  });

  it('after the failover, grants are kept in memory again, invalidated by the new master: a revocation stops the next request', async () => {
    const master = new Redis({ sentinels: group.sentinels.map((at) => ({ host: at.split(':')[0], port: Number(at.split(':')[1]) })), name: group.masterName });
    try {
      // The server's invalidation connection followed the master (the old one is dead anyway).
      await eventually(async () => assert.match(String(await master.call('CLIENT', 'LIST', 'TYPE', 'pubsub')), / sub=1 /));
      await server.apis.grant('svc', API, { scopes: ['read'] });
      assert.equal(await token({ resource: API, scope: 'read' }), 200);
      assert.equal(await token({ resource: API, scope: 'read' }), 200);
      await server.apis.revoke('svc', API);
      assert.equal(await token({ resource: API, scope: 'read' }), 400, 'revoked on the new master: refused at once');
    } finally {
      master.disconnect();
    }
  });
});
