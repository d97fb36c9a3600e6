/**
 * A retired signing key stays published as long as what any instance signed with it may live, as
 * the servers said in the store (RevocationList lifetimes), not only as long as the settings of
 * the process that rotates say (fifth fresh-eyes passes, 2026-12-06: `keys rotate` from a shell
 * without the servers' TTL settings removed a key whose ID tokens had 11 minutes left; every
 * verifier then refused them, and id_token_hint too).
 */
import assert from 'node:assert/strict';
import { Keyring } from '../../src/keyring/keyring.js';
import { ringStore } from '../../src/keyring/index.js';
import { readRing } from '../../src/keyring/stores.js';
import { latchkey } from '../helpers/process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('key ring: a retired key is kept as long as the servers said their tokens live', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    // ID tokens of two hours: longer than the CLI's own default (one hour), as the store says (published at start).
    server = await startServer({ redisUrl: redis.url, env: { TTL_ID_TOKEN: '7200' } });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it('keys rotate run without the servers\' TTL settings keeps a key retired 4,000 s ago (its ID tokens live 7,200 s); keys list says it goes after the servers\' lifetime, not the CLI\'s', async () => {
    const store = await ringStore(server.config, server.kv);
    const before = (await readRing(store))!;
    // The current key retired 4,000 s ago, a new current beside it: past the CLI's own retention
    // (3,600 + skew + refresh), within the servers' (7,200 + ...).
    const retiredAt = new Date(Date.now() - 4_000_000).toISOString();
    const old = before.ring.current!;
    const successor = before.ring.next!;
    const keys = before.ring.keys.map((key) =>
      key.kid === old.kid ? { ...key, state: 'retired' as const, retiredAt } : key.kid === successor.kid ? { ...key, state: 'current' as const, activatedAt: retiredAt } : key,
    );
    assert.ok(await store.write(new Keyring(keys), before.raw));

    const { TTL_ID_TOKEN, ...withoutTtl } = server.env;
    assert.equal(TTL_ID_TOKEN, '7200');
    const rotated = await latchkey(withoutTtl, ['keys', 'rotate', '--now']);
    assert.equal(rotated.status, 0, rotated.stderr);
    const after = (await readRing(store))!.ring;
    assert.ok(after.keys.some((key) => key.kid === old.kid && key.state === 'retired'), `the key retired 4,000 s ago was removed: ${JSON.stringify(after.keys.map((key) => [key.kid, key.state]))}`);

    const listed = JSON.parse((await latchkey(withoutTtl, ['keys', 'list'])).stdout) as { kid: string; removeAfter?: string }[];
    const removeAfter = Date.parse(listed.find((key) => key.kid === old.kid)!.removeAfter!);
    assert.ok(removeAfter >= Date.parse(retiredAt) + 7_200_000, `removed after ${new Date(removeAfter).toISOString()}, before the servers' ID tokens expire`);
  });
});
