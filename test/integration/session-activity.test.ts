/**
 * Where a session was last seen (accounts/session-activity.ts), on a real redis-server: a visit at
 * the authorization endpoint from the browser and address this process wrote for the session less
 * than SEEN_STEP seconds ago is not written again; another browser or address, or SEEN_STEP later,
 * is written at once; the account page's visit always is.
 */
import assert from 'node:assert/strict';
import type { Context } from 'koa';
import type { Provider } from 'oidc-provider';
import { SEEN_STEP, SessionActivity } from '../../src/accounts/session-activity.js';
import { loadConfig } from '../../src/config.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15';

describe('session activity: where a session was seen, written when it changed', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let kv: RedisKv;
  const realNow = Date.now;
  let clock = 1_800_000_000_000;

  before(async () => {
    server = await startRedisServer();
    kv = new RedisKv(connect(loadConfig({ REDIS_URL: server.url }).redis));
  });
  beforeEach(() => {
    Date.now = () => clock;
  });
  afterEach(() => {
    Date.now = realNow;
  });
  after(async () => {
    await kv?.close();
    await server?.stop();
  });

  const provider = { pathFor: () => '/auth' } as unknown as Provider;
  const visit = (uid: string, userAgent: string, ip = '192.0.2.1', path = '/auth') =>
    ({ path, ip, get: (name: string) => (name === 'user-agent' ? userAgent : ''), oidc: { session: { accountId: 'someone', uid } } }) as unknown as Context;

  it('the same browser and address within SEEN_STEP is not written again; another browser or address, or SEEN_STEP later, is', async () => {
    const activity = new SessionActivity(kv, 3600);
    const record = activity.recordAtAuthorization(provider);
    const at = () => Math.floor(clock / 1000);

    await record(visit('s1', SAFARI));
    assert.deepEqual(await activity.of('s1'), { userAgent: SAFARI, ip: '192.0.2.1', at: at() });
    const first = at();

    clock += (SEEN_STEP - 1) * 1000;
    assert.equal(record(visit('s1', SAFARI)), undefined, 'the same browser and address a moment later: nothing to write');
    assert.deepEqual(await activity.of('s1'), { userAgent: SAFARI, ip: '192.0.2.1', at: first });

    // Its resume path too (a sign-in ends there).
    assert.equal(record(visit('s1', SAFARI, '192.0.2.1', '/auth/some-uid')), undefined);

    await record(visit('s1', FIREFOX));
    assert.deepEqual(await activity.of('s1'), { userAgent: FIREFOX, ip: '192.0.2.1', at: at() }, 'another browser: at once');
    await record(visit('s1', FIREFOX, '198.51.100.7'));
    assert.deepEqual(await activity.of('s1'), { userAgent: FIREFOX, ip: '198.51.100.7', at: at() }, 'another address: at once');

    clock += SEEN_STEP * 1000;
    await record(visit('s1', FIREFOX, '198.51.100.7'));
    assert.deepEqual(await activity.of('s1'), { userAgent: FIREFOX, ip: '198.51.100.7', at: at() }, 'SEEN_STEP later: written');

    // Another session of the same browser is its own.
    await record(visit('s2', FIREFOX, '198.51.100.7'));
    assert.equal((await activity.of('s2'))?.at, at());
  });

  it("a visit after its entry was forgotten (signed out on the account page) is written; the account page's is always", async () => {
    const activity = new SessionActivity(kv, 3600);
    const record = activity.recordAtAuthorization(provider);
    await record(visit('s3', SAFARI));
    await activity.forget('s3');
    assert.equal(await activity.of('s3'), undefined);
    await record(visit('s3', SAFARI));
    assert.equal((await activity.of('s3'))?.userAgent, SAFARI);

    // The account page writes its visit always.
    clock += 1000;
    await activity.seen('s3', visit('s3', SAFARI));
    assert.equal((await activity.of('s3'))?.at, Math.floor(clock / 1000));
  });
});
