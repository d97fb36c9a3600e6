/**
 * What introspection and revocation of an opaque token cost the store, and that it costs nothing
 * in correctness: a token's value says its model (its length), so it is read in that model only
 * (store/adapter.ts TOKEN_LENGTHS), and a client revoking its own client_credentials token reads and
 * deletes it in one round trip (Kv.takeRecordOwnedBy). Tokens made before the lengths differed
 * still work; another client's revocation deletes nothing; a Redis outage is a 503, and passes.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { digestOf } from '../../src/store/record-keys.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/eventually.js';
import { basic, clientCredentialsToken, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const SPA = 'spa';

describe('e2e: opaque tokens at introspection and revocation, as the store sees them', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    raw.on('error', () => {}); // while Redis is down (the last test)
    const clients = [machineClient(MACHINE), machineClient(RS), { client_id: SPA, token_endpoint_auth_method: 'none', redirect_uris: ['http://localhost:5173/cb'], grant_types: ['authorization_code'] }];
    // Rate limits off, as the bench runs: on, they add their own round trip (http/rate-limits.ts).
    server = await startServer({ redisUrl: redis.url, clients, env: { RESOURCE_SERVERS, RATE_LIMIT_PER_IP: '0', RATE_LIMIT_PER_CLIENT: '0' } });
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  const opaqueToken = () => clientCredentialsToken(server.url, MACHINE, OPAQUE_API);
  /** Calls of a Redis command so far. */
  const calls = async (command: string) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await raw.info('commandstats'))?.[1] ?? 0);
  /** Socket reads Redis has processed so far (the INFO that asks included). */
  const reads = async () => Number(/total_reads_processed:(\d+)/.exec(await raw.info('stats'))![1]);
  const revoke = (token: string, client = MACHINE) => tokenEndpoint(server.url, '/token/revocation', client, token);
  const revokeAsSpa = (token: string) =>
    fetch(`${server.url}/token/revocation`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, client_id: SPA }) });

  /**
   * A client_credentials token as Latchkey made them before the lengths differed: 43 characters,
   * kept under its value (as before tokens were kept under their digest).
   */
  async function madeBefore(): Promise<string> {
    const token = await opaqueToken();
    const [key] = await raw.keys(`*oidc:ClientCredentials:${digestOf(token)}`);
    const record = await raw.hgetall(key!);
    const old = token.slice(0, 43);
    const legacy = key!.replace(digestOf(token), old);
    await raw.hset(legacy, 'p', JSON.stringify({ ...JSON.parse(record.p!), jti: old }));
    await raw.expire(legacy, 600);
    return old;
  }

  it('introspection reads a client_credentials token in its own model only: one record read, whoever asks', async () => {
    const token = await opaqueToken();
    assert.equal(token.length, 44);
    const before = await calls('hgetall');
    assert.equal((await introspect(server.url, RS, token)).active, true);
    assert.equal((await introspect(server.url, MACHINE, token)).active, true);
    assert.equal((await calls('hgetall')) - before, 2, 'one HGETALL per introspection (the access token model is not read)');
  });

  it('a client revokes its own client_credentials token in one round trip; it is gone', async () => {
    const trips: number[] = [];
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const token = await opaqueToken();
      const before = await reads();
      assert.equal((await revoke(token)).status, 200);
      trips.push((await reads()) - before - 1);
      assert.equal((await introspect(server.url, RS, token)).active, false);
      assert.deepEqual(await raw.keys(`*${token}`), []);
    }
    // The least of a few tries: the server does other things now and then.
    assert.equal(Math.min(...trips), 1, `round trips per revocation: ${trips.join(', ')}`);
  });

  it("another client's revocation deletes nothing: a confidential one gets invalid_request, a public one 200; the token stays active", async () => {
    const token = await opaqueToken();
    const refused = await revoke(token, RS);
    assert.equal(refused.status, 400);
    assert.equal((refused.body as Record<string, unknown>).error, 'invalid_request');
    assert.equal((await revokeAsSpa(token)).status, 200);
    assert.equal((await introspect(server.url, RS, token)).active, true);
    assert.equal((await revoke(token)).status, 200);
    assert.equal((await introspect(server.url, RS, token)).active, false);
  });

  it('a token made before the lengths differed is introspected and revoked as before', async () => {
    const old = await madeBefore();
    assert.equal((await introspect(server.url, RS, old)).active, true);
    assert.equal((await introspect(server.url, MACHINE, old)).client_id, MACHINE.id);
    assert.equal((await revoke(old, RS)).status, 400);
    assert.equal((await introspect(server.url, RS, old)).active, true);
    assert.equal((await revoke(old)).status, 200);
    assert.equal((await introspect(server.url, RS, old)).active, false);
    assert.deepEqual(await raw.keys(`*${old}`), []);
  });

  it("a value of another model's length is not found in this one (nor read): an access token's or a refresh token's length", async () => {
    const token = await opaqueToken();
    const before = await calls('hgetall');
    for (const length of [45, 46]) {
      const other = token.slice(0, 43).padEnd(length, 'A');
      assert.equal((await introspect(server.url, RS, other)).active, false);
    }
    // Each in its own model only (not three): under its digest, then, not found there, under its
    // value (where the release before digests kept it): two reads each.
    assert.equal((await calls('hgetall')) - before, 4);
  });

  // Last: it restarts Redis (whose data goes with it).
  it('while Redis is down a revocation gets 503 with Retry-After; then it works again by itself', async () => {
    const token = await opaqueToken();
    await redis.kill();
    const response = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
      body: new URLSearchParams({ token }),
    });
    assert.equal(response.status, 503);
    assert.ok(Number(response.headers.get('retry-after')) > 0);
    await redis.restart();
    await eventually(async () => {
      const fresh = await opaqueToken();
      assert.equal((await revoke(fresh)).status, 200);
      assert.equal((await introspect(server.url, RS, fresh)).active, false);
    });
  });
});
