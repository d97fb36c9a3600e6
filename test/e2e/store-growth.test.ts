/**
 * The store-growth pass (2026-12-04), black box: what an anonymous caller, or an app (a public
 * client, as anyone may register or host one), makes Latchkey write to Redis, driven hundreds of
 * times, must each be bounded: every key it leaves expires (a TTL) and no index keeps members past
 * their records' lifetimes. A redis-server of the test's own, read with SCAN, TTL and cardinality.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { fakeUpstreamOf, linkedBySignIn } from '../helpers/fake-upstream.js';

const PREFIX = 'lk:';
const DEVICE = 'tv-app';
const WEB = 'web-app';
const REDIRECT = 'http://localhost:5173/cb';
const clients = [
  { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
  { client_id: WEB, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code'] },
];

/** Keys an operator's configuration or a start writes, durable by design (none of them per caller). */
const OPERATOR_OWNED = [/^keyring$/, /^configured-clients$/, /^configured-apis$/, /^oidc:clients$/, new RegExp(`^oidc:Client:(${DEVICE}|${WEB})$`), /^revoked:\{rv\}:epoch$/, /^revoked:\{rv\}:lifetimes?(:.*)?$/, /^accounts:skeletons$/, /^account:linked-indexed$/];

describe('e2e: store growth, what outsiders make Latchkey keep', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    // Short device codes and sessions, so that a test sees their indexes outlive them or not; the
    // fake upstream is on loopback.
    // The rate limits bound how fast, not how much in the end: off, so that a test drives hundreds quickly.
    server = await startServer({ redisUrl: redis.url, clients, env: { TTL_DEVICE_CODE: '2', TTL_SESSION: '3', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', RATE_LIMIT_PER_IP: '0', RATE_LIMIT_PER_CLIENT: '0' } });
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body), redirect: 'manual' });
  const deviceAuthorization = () => form('/device/auth', { client_id: DEVICE, scope: 'openid' });
  const pushed = () => form('/request', { client_id: WEB, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSwSsqqM', code_challenge_method: 'S256', state: 's' });

  /** Every key in the store, without the key prefix (REDIS_KEY_PREFIX, `lk:` by default). */
  async function allKeys(): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await raw.scan(cursor, 'COUNT', 1000);
      keys.push(...batch.map((key) => key.slice(PREFIX.length)));
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }

  it('an app asking for device codes and pushing requests again and again: its pending index keeps only the live ones', async () => {
    for (let round = 0; round < 200; round++) assert.equal((await deviceAuthorization()).status, 200);
    const first = new Set((await allKeys()).filter((key) => key.startsWith('oidc:DeviceCode:')));
    assert.equal(first.size, 200);
    // The app goes on asking, one every 200 ms, until every one of those first device codes has
    // ended (TTL_DEVICE_CODE 2, and the store's grace): an index renewed by each add outlives them.
    let since = 0;
    while ((await allKeys()).some((key) => first.has(key))) {
      assert.equal((await deviceAuthorization()).status, 200);
      since++;
      await sleep(200);
    }
    await sleep(1000);
    assert.equal((await deviceAuthorization()).status, 200);
    since++;
    const indexed = await indexedUnder('oidc:pending');
    assert.ok(indexed <= since, `the app's pending index holds ${indexed} members, of which only ${since} can be live`);

    // Pushed requests go into the same index.
    for (let round = 0; round < 50; round++) assert.equal((await pushed()).status, 201);
    const pushedLive = (await allKeys()).filter((key) => key.startsWith('oidc:PushedAuthorizationRequest:')).length;
    assert.equal(pushedLive, 50);
  });

  /** Members of the indexes whose keys start with `prefix` (plain sets and expiring ones alike). */
  async function indexedUnder(prefix: string): Promise<number> {
    let indexed = 0;
    for (const key of (await allKeys()).filter((key) => key.startsWith(prefix))) {
      indexed += (await raw.type(PREFIX + key)) === 'zset' ? await raw.zcard(PREFIX + key) : await raw.scard(PREFIX + key);
    }
    return indexed;
  }

  it('hundreds of anonymous requests at every open endpoint leave no key without a TTL', async () => {
    const junk = (n: number) => `junk-${n}-${'x'.repeat(40)}`;
    for (let round = 0; round < 100; round++) {
      const answers = await Promise.all([
        deviceAuthorization(),
        pushed(),
        fetch(`${server.url}/auth?${new URLSearchParams({ client_id: WEB, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSwSsqqM', code_challenge_method: 'S256', state: String(round) })}`, { redirect: 'manual' }),
        form('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: DEVICE, device_code: junk(round) }),
        form('/token/introspection', { token: junk(round), client_id: WEB }),
        form('/token/revocation', { token: junk(round), client_id: WEB }),
        fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${junk(round)}` } }),
      ]);
      for (const answer of answers) await answer.arrayBuffer();
    }
    const durable: string[] = [];
    for (const key of await allKeys()) if ((await raw.ttl(PREFIX + key)) === -1 && !OPERATOR_OWNED.some((owned) => owned.test(key))) durable.push(key);
    assert.deepEqual(durable, [], 'keys an outsider made that never expire');
  });

  it("people signing in through an upstream again and again: the upstream's session indexes keep only the live sessions", async () => {
    const fake = await fakeUpstreamOf(server, 'upstream-secret-with-plenty-of-entropy-0123');
    try {
      const signIn = async () => assert.ok(await linkedBySignIn(server, fake, { upstream: 'fake', sub: 'same-person', clientId: WEB, redirectUri: REDIRECT }));
      for (let round = 0; round < 40; round++) await signIn();
      const first = new Set((await allKeys()).filter((key) => key.startsWith('upstream:session:')));
      assert.ok(first.size > 0);
      // Sign-ins go on until every one of those sessions has ended (TTL_SESSION 3).
      let since = 0;
      while ((await allKeys()).some((key) => first.has(key))) {
        await signIn();
        since++;
        await sleep(200);
      }
      await sleep(1000);
      await signIn();
      since++;
      for (const prefix of ['upstream:sessions', 'upstream:sub', 'upstream:sid']) {
        const indexed = await indexedUnder(prefix);
        assert.ok(indexed <= since, `${prefix}: ${indexed} members, of which only ${since} can be live`);
      }
    } finally {
      await fake.close();
    }
  });
});
