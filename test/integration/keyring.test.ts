/**
 * The key ring in Redis, as instances and operators see it: sealed at rest, shared by instances
 * that pick up each other's rotations without a restart, rotated on schedule by exactly one of
 * them, and published with cache headers that let verifiers revalidate cheaply.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { Redis } from 'ioredis';
import { PRIVATE_JWK_MEMBERS } from '../../src/keyring/keyring.js';
import { allKeys, dumpValue } from '../helpers/backends.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const SECRET = 'a-keyring-secret-for-these-tests-0123456789';
const env = (extra: Record<string, string> = {}) => ({
  CLIENTS: JSON.stringify([machineClient(MACHINE)]),
  RESOURCE_SERVERS,
  KEYS_SECRETS: SECRET,
  KEYS_REFRESH_INTERVAL: '0.2',
  ...extra,
});

async function jwks(server: TestServer, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/jwks`, { headers });
  const text = await response.text();
  return { response, keys: text ? ((JSON.parse(text) as { keys: Record<string, unknown>[] }).keys) : [] };
}

/** Every private key member value the instance holds: what must never show up anywhere else. */
function privateValues(server: TestServer): string[] {
  return server.keys.ring.keys.flatMap(({ jwk }) =>
    PRIVATE_JWK_MEMBERS.map((member) => (jwk as Record<string, unknown>)[member]).filter((value): value is string => typeof value === 'string'),
  );
}

describe('key ring in Redis: sealed, shared, rotated without restarts', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;
  const servers: TestServer[] = [];
  const start = async (extra: Record<string, string> = {}, dir?: string) => {
    const server = await startServer({ redisUrl: redis.url, env: env(extra), ...(dir ? { dir } : {}) });
    servers.push(server);
    return server;
  };

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
    await raw.flushall();
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  it('JWKS: Cache-Control max-age is half the publish lead, an ETag, 304 on If-None-Match, a new ETag after a rotation', async () => {
    const server = await start({ KEYS_PUBLISH_LEAD: '7200' });
    const { response, keys } = await jwks(server);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'public, max-age=3600');
    assert.match(response.headers.get('content-type') ?? '', /^application\/jwk-set\+json/);
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    const etag = response.headers.get('etag')!;
    assert.match(etag, /^"[\w-]+"$/);
    assert.equal(keys.length, 2, 'current and next');

    for (const condition of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const conditional = await jwks(server, { 'if-none-match': condition });
      assert.equal(conditional.response.status, 304, condition);
      assert.equal(conditional.keys.length, 0, 'no body');
      assert.equal(conditional.response.headers.get('etag'), etag);
      assert.equal(conditional.response.headers.get('cache-control'), 'public, max-age=3600');
    }
    assert.equal((await jwks(server, { 'if-none-match': '"stale"' })).response.status, 200);
    const head = await fetch(`${server.url}/jwks`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('etag'), etag);

    await server.keys.rotate(true);
    const after = await jwks(server, { 'if-none-match': etag });
    assert.equal(after.response.status, 200, 'the old ETag no longer matches');
    assert.notEqual(after.response.headers.get('etag'), etag);
    assert.equal(after.keys.length, 3, 'current, next, and the retired key');
  });

  it('the private keys never appear unencrypted in Redis (every key scanned) nor in the JWKS', async () => {
    const server = await start();
    await server.keys.rotate(true); // a retired key too
    await clientCredentialsToken(server.url, MACHINE);
    const secrets = privateValues(server);
    assert.equal(secrets.length, 3 * 6, 'three RSA keys with d, p, q, dp, dq, qi');

    const names = await allKeys(raw);
    assert.ok(names.includes('lk:keyring'), 'the ring is in Redis');
    for (const name of names) {
      const value = await dumpValue(raw, name);
      for (const secret of secrets) assert.ok(!value.includes(secret), `a private key member in the clear under ${name}`);
    }
    const stored = JSON.parse((await raw.get('lk:keyring'))!) as { keys: { kid: string; public: Record<string, unknown>; sealed: string }[] };
    for (const key of stored.keys) {
      assert.match(key.sealed, /^v1\./);
      for (const member of PRIVATE_JWK_MEMBERS) assert.equal(key.public[member], undefined);
    }

    const { keys } = await jwks(server);
    assert.equal(keys.length, 3);
    for (const key of keys) for (const member of PRIVATE_JWK_MEMBERS) assert.equal(key[member], undefined, `JWKS publishes ${member}`);
    const published = JSON.stringify(keys);
    for (const secret of secrets) assert.ok(!published.includes(secret));
  });

  it('two instances on one Redis: a rotation on one is used by the other without a restart', async () => {
    const a = await start();
    const b = await start();
    assert.deepEqual(b.keys.ring.keys.map((k) => k.kid), a.keys.ring.keys.map((k) => k.kid), 'one ring for both');
    const before = decodeProtectedHeader(await clientCredentialsToken(b.url, MACHINE)).kid;
    assert.equal(before, a.keys.ring.current!.kid);

    const rotated = await a.keys.rotate(true);
    assert.notEqual(rotated.current!.kid, before);
    await eventually(async () => {
      assert.equal(decodeProtectedHeader(await clientCredentialsToken(b.url, MACHINE)).kid, rotated.current!.kid, 'B signs with the new key');
      const published = (await jwks(b)).keys.map((key) => key.kid);
      assert.deepEqual(new Set(published), new Set(rotated.keys.map((key) => key.kid)), 'B publishes the new ring');
    });
  });

  it('keys rotate --now twice in a row (a retry after an answer lost to a blip, say): the key that signs is in the other instance\'s JWKS before it signs, so a verifier whose one refetch on the unknown kid lands there learns it (before the fix: the second promoted the next key the first had made a moment before, which the other instance, looking every 5 s, did not publish yet; jose refused the token and its 30 s cooldown barred another refetch)', async () => {
    const looks = { KEYS_REFRESH_INTERVAL: '5' };
    const a = await start(looks);
    const b = await start(looks);
    await a.keys.rotate(true);
    const rotated = await a.keys.rotate(true); // promotes the next key the first rotation made
    const promoted = rotated.current!;
    const token = await clientCredentialsToken(a.url, MACHINE);
    assert.equal(decodeProtectedHeader(token).kid, promoted.kid);
    // A verifier behind a balancer that sends its fetch to B: one fetch, then jose's cooldown.
    const atB = createRemoteJWKSet(new URL('/jwks', b.url));
    await jwtVerify(token, atB, { issuer: a.issuer });
    assert.ok(Date.parse(promoted.activatedAt!) - Date.parse(promoted.createdAt) >= 5_000, `signs ${Date.parse(promoted.activatedAt!) - Date.parse(promoted.createdAt)} ms after it was written, before every instance looked at the ring`);
  });

  it('on schedule, exactly one of three instances performs each rotation; the others pick it up', async () => {
    const schedule = { KEYS_ROTATION_INTERVAL: '1', KEYS_PUBLISH_LEAD: '1', KEYS_REFRESH_INTERVAL: '0.1' };
    const instances = [await start(schedule), await start(schedule), await start(schedule)];
    const first = instances[0]!.keys.ring.current!.kid;
    const seen = new Set([first]);
    await eventually(async () => {
      for (const instance of instances) seen.add(instance.keys.ring.current!.kid);
      assert.ok(seen.size >= 3, `two rotations so far: ${seen.size - 1}`);
    }, 100);
    for (const instance of instances) await instance.keys.close(); // stop the schedule, then count
    const stored = JSON.parse((await raw.get('lk:keyring'))!) as { keys: { state: string }[] };
    const retired = stored.keys.filter((key) => key.state === 'retired').length;
    assert.ok(retired >= 2);
    // Each rotation wrote exactly once: one promotion (with its new next key) per retired key.
    const writes = instances.reduce((sum, instance) => sum + instance.keys.changesMade, 0);
    assert.equal(writes, retired, `${writes} scheduled writes for ${retired} rotations`);
    assert.equal(stored.keys.filter((key) => key.state === 'current').length, 1);
    assert.equal(stored.keys.filter((key) => key.state === 'next').length, 1);
  });

  it('a wrong secret is refused at start with a message naming keys.secrets; a rotated secret re-seals the ring', async () => {
    const a = await start();
    const kids = a.keys.ring.keys.map((key) => key.kid);
    await assert.rejects(start({ KEYS_SECRETS: 'a-different-secret-of-enough-length-012345' }), /keys\.secrets \(KEYS_SECRETS\)/);

    const next = 'the-next-keyring-secret-of-enough-length-987';
    const b = await start({ KEYS_SECRETS: `${next},${SECRET}` });
    assert.deepEqual(b.keys.ring.keys.map((key) => key.kid), kids, 'opened with the old secret');
    const ids = async () => new Set((JSON.parse((await raw.get('lk:keyring'))!) as { keys: { sealed: string }[] }).keys.map((key) => key.sealed.split('.')[1]));
    await eventually(async () => assert.equal((await ids()).size, 1));
    const c = await start({ KEYS_SECRETS: next });
    assert.deepEqual(c.keys.ring.keys.map((key) => key.kid), kids, 're-sealed under the new secret alone');
  });

  it('moving to Redis imports the ring from keys/, so tokens signed before the move still verify', async () => {
    const dir = testDir();
    try {
      const local = await startServer({ dir, env: env() });
      const kid = local.keys.ring.current!.kid;
      const token = await clientCredentialsToken(local.url, MACHINE);
      await local.stop();
      const moved = await start({}, dir);
      assert.equal(moved.keys.ring.current!.kid, kid);
      assert.ok((await raw.get('lk:keyring'))!.includes(kid));
      const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${moved.url}/jwks`)), { issuer: local.issuer });
      assert.equal(payload.client_id, MACHINE.id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
