/**
 * The store side of deferred consumption (store/adapter.ts, settleRequest), on a real
 * redis-server: inside a token request, consume() and the records written after it reach Redis
 * only when the request settles, together in one round trip; a consumption that lost makes the
 * settlement throw invalid_grant and deletes what the request wrote.
 */
import assert from 'node:assert/strict';
import type { AsyncLocalStorage } from 'node:async_hooks';
import { Redis } from 'ioredis';
import { errors } from 'oidc-provider';
import { loadConfig } from '../../src/config.js';
import { adapterFactory } from '../../src/store/adapter.js';
import { settleRequest } from '../../src/store/held-writes.js';
import { digestOf } from '../../src/store/record-keys.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

// oidc-provider's own request context (Provider.ctx): the adapter defers only inside a token request.
const { default: als } = (await import('oidc-provider/lib/helpers/als.js' as string)) as { default: AsyncLocalStorage<object> };

describe('store: a token request consumes together with what it writes', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let raw: Redis;
  let kv: RedisKv;
  let adapter: ReturnType<typeof adapterFactory>;
  const reads = async () => Number(/total_reads_processed:(\d+)/.exec(await raw.info('stats'))![1]);
  const tokenRequest = <T>(fn: (request: object) => Promise<T>) => {
    const request = { oidc: { route: 'token' } };
    return als.run(request, () => fn(request));
  };
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    server = await startRedisServer();
    raw = new Redis(server.url);
    kv = new RedisKv(connect(loadConfig({ REDIS_URL: server.url }).redis));
    adapter = adapterFactory(kv);
  });
  after(async () => {
    await kv?.close();
    raw?.disconnect();
    await server?.stop();
  });

  async function issued(id: string, grantId: string) {
    await adapter('Grant').upsert(grantId, { iat: now(), exp: now() + 600, accountId: 'a', clientId: 'c' }, 600);
    await adapter('AuthorizationCode').upsert(id, { iat: now(), exp: now() + 60, grantId, clientId: 'c' }, 60);
  }

  it('sends the consumption and the new records together when the request settles', async () => {
    await issued('code-1', 'grant-1');
    await tokenRequest(async (request) => {
      await adapter('AuthorizationCode').consume('code-1');
      await adapter('AccessToken').upsert('at-1', { iat: now(), exp: now() + 60, grantId: 'grant-1', clientId: 'c' }, 60);
      assert.equal(await raw.hget(`lk:oidc:AuthorizationCode:${digestOf('code-1')}`, 'c'), null, 'not consumed before settling');
      assert.equal(await raw.exists(`lk:oidc:AccessToken:${digestOf('at-1')}`), 0, 'not written before settling');
      const before = await reads();
      await settleRequest(request);
      assert.equal((await reads()) - before, 2, 'one round trip, and the INFO');
    });
    assert.notEqual(await raw.hget(`lk:oidc:AuthorizationCode:${digestOf('code-1')}`, 'c'), null);
    assert.equal(await raw.exists(`lk:oidc:AccessToken:${digestOf('at-1')}`), 1);
  });

  it('a code gone before the request settles: invalid_grant, and what the request wrote is deleted', async () => {
    await issued('code-2', 'grant-2');
    await tokenRequest(async (request) => {
      await adapter('AuthorizationCode').consume('code-2');
      await adapter('AccessToken').upsert('at-2', { iat: now(), exp: now() + 60, grantId: 'grant-2', clientId: 'c' }, 60);
      await raw.del(`lk:oidc:AuthorizationCode:${digestOf('code-2')}`);
      await assert.rejects(settleRequest(request)!, (error) => error instanceof errors.InvalidGrant && /not found/.test(error.error_detail!));
    });
    assert.equal(await raw.exists(`lk:oidc:AccessToken:${digestOf('at-2')}`), 0);
  });

  it('a code consumed by another request first: invalid_grant, the grant is revoked with what this request wrote', async () => {
    await issued('code-3', 'grant-3');
    await tokenRequest(async (request) => {
      await adapter('AuthorizationCode').consume('code-3');
      await adapter('AccessToken').upsert('at-3', { iat: now(), exp: now() + 60, grantId: 'grant-3', clientId: 'c' }, 60);
      await raw.hset(`lk:oidc:AuthorizationCode:${digestOf('code-3')}`, 'c', String(Date.now() / 1000));
      await assert.rejects(settleRequest(request)!, (error) => error instanceof errors.InvalidGrant && /already consumed/.test(error.error_detail!));
    });
    assert.equal(await raw.exists(`lk:oidc:AccessToken:${digestOf('at-3')}`), 0);
    assert.equal(await raw.exists('lk:oidc:Grant:grant-3'), 0);
    assert.equal(await raw.exists(`lk:oidc:AuthorizationCode:${digestOf('code-3')}`), 0);
  });

  it('outside a token request consume() goes to the store at once, as before', async () => {
    await issued('code-4', 'grant-4');
    await adapter('AuthorizationCode').consume('code-4');
    assert.notEqual(await raw.hget(`lk:oidc:AuthorizationCode:${digestOf('code-4')}`, 'c'), null);
    await assert.rejects(adapter('AuthorizationCode').consume('code-4'), errors.InvalidGrant);
  });
});
