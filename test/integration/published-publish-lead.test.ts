/**
 * A next key signs only once it has been published as long as the servers said (their
 * `keys.publishLead`, published in the store beside their lifetimes), not only as long as the
 * settings of the process that rotates say; and a revoked key's entry lasts as long as the servers'
 * JWKS may be cached (half their lead). Ninth fresh-eyes passes, "keys and caches, ninth pass":
 * `keys rotate` run from a shell without the servers' KEYS_PUBLISH_LEAD (7 days: the JWKS cached
 * 3.5 days) promoted a next key published 2 days before, whose tokens a verifier caching the JWKS
 * as it was told did not know; and `keys revoke` there kept the kid entry 12 hours, while such a
 * verifier may hold the revoked key 3.5 days. Likewise their `keys.refreshInterval`: a key retired
 * by the CLI signs at a server that has not looked yet for up to that long, and its tokens live on.
 * And a server's first maintenance, at its start, plans with them too (it planned with its own alone).
 */
import assert from 'node:assert/strict';
import { Keyring } from '../../src/keyring/keyring.js';
import { ringStore } from '../../src/keyring/index.js';
import { readRing } from '../../src/keyring/stores.js';
import { RevocationList } from '../../src/revocation/list.js';
import { latchkey } from '../helpers/process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const WEEK = 7 * 24 * 3600;

describe('key ring: the publish lead the servers said holds for a rotation or revocation run elsewhere', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    // A week's lead: the JWKS is served with max-age 3.5 days; the CLI's own default is one day.
    // Instances that look at the ring every 300 s (the CLI's own default: 2 s) may sign with a key retired elsewhere that long.
    server = await startServer({ redisUrl: redis.url, env: { KEYS_PUBLISH_LEAD: String(WEEK), KEYS_REFRESH_INTERVAL: '300' } });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  /** Retires the current key `seconds` ago in the store (its next key current since then), as a rotation there would have. */
  const retireCurrentSecondsAgo = async (seconds: number) => {
    const store = await ringStore(server.config, server.kv);
    const before = (await readRing(store))!;
    const retiredAt = new Date(Date.now() - seconds * 1000).toISOString();
    const old = before.ring.current!;
    const successor = before.ring.next!;
    const keys = before.ring.keys.map((key) =>
      key.kid === old.kid ? { ...key, state: 'retired' as const, retiredAt } : key.kid === successor.kid ? { ...key, state: 'current' as const, activatedAt: retiredAt } : key,
    );
    assert.ok(await store.write(new Keyring(keys), before.raw));
    return { store, old };
  };

  it('keys rotate run without the servers\' KEYS_PUBLISH_LEAD refuses a next key published 2 days ago (the servers\' JWKS is cached 3.5 days); keys list says when it may sign by the servers\' lead', async () => {
    const jwks = await fetch(new URL('/jwks', server.url));
    assert.equal(jwks.headers.get('cache-control'), `public, max-age=${WEEK / 2}`);
    const store = await ringStore(server.config, server.kv);
    const before = (await readRing(store))!;
    const createdAt = new Date(Date.now() - 2 * 24 * 3600 * 1000).toISOString();
    const next = before.ring.next!;
    const keys = before.ring.keys.map((key) => (key.kid === next.kid ? { ...key, createdAt } : key));
    assert.ok(await store.write(new Keyring(keys), before.raw));

    const { KEYS_PUBLISH_LEAD, ...withoutLead } = server.env;
    assert.equal(KEYS_PUBLISH_LEAD, String(WEEK));
    const rotated = await latchkey(withoutLead, ['keys', 'rotate']);
    assert.notEqual(rotated.status, 0, `a next key published 2 days ago was promoted: ${rotated.stdout}`);
    assert.match(rotated.stderr, /keys\.publishLead/);
    assert.equal((await readRing(store))!.ring.current!.kid, before.ring.current!.kid);

    const listed = JSON.parse((await latchkey(withoutLead, ['keys', 'list'])).stdout) as { kid: string; usableFrom?: string }[];
    const usableFrom = Date.parse(listed.find((key) => key.kid === next.kid)!.usableFrom!);
    assert.ok(usableFrom >= Date.parse(createdAt) + WEEK * 1000, `said usable from ${new Date(usableFrom).toISOString()}, before the servers' lead`);
  });

  it('keys revoke run without the servers\' KEYS_PUBLISH_LEAD keeps the kid entry at least as long as the servers\' JWKS may be cached (3.5 days)', async () => {
    const { KEYS_PUBLISH_LEAD: _lead, ...withoutLead } = server.env;
    const revokedKid = (await readRing(await ringStore(server.config, server.kv)))!.ring.next!.kid;
    const revokedAt = Math.floor(Date.now() / 1000);
    const revoked = await latchkey(withoutLead, ['keys', 'revoke', revokedKid]);
    assert.equal(revoked.status, 0, revoked.stderr);
    const list = new RevocationList(server.kv, { skew: 0, accessTokenLifetime: 60 });
    const { entries } = await list.feed(undefined, 1000);
    const entry = entries.find((line) => line.type === 'kid' && line.kid === revokedKid);
    assert.ok(entry, 'no kid entry on the feed');
    assert.ok(entry.exp >= revokedAt + WEEK / 2, `the kid entry ends ${entry.exp - revokedAt} s after the revocation, before the servers' JWKS cached then expires (${WEEK / 2} s)`);
  });

  it('keys rotate --now run without the servers\' KEYS_REFRESH_INTERVAL keeps a key retired 3,700 s ago (ID tokens of 3,600 s, signed up to 300 s after it retired at a server that had not looked yet)', async () => {
    // Past the CLI's own retention (3,600 + 15 + 2), within the servers' (3,600 + 15 + 300).
    const { store, old } = await retireCurrentSecondsAgo(3_700);

    const { KEYS_REFRESH_INTERVAL, KEYS_PUBLISH_LEAD: _lead, ...withoutKeys } = server.env;
    assert.equal(KEYS_REFRESH_INTERVAL, '300');
    const rotated = await latchkey(withoutKeys, ['keys', 'rotate', '--now']);
    assert.equal(rotated.status, 0, rotated.stderr);
    const after = (await readRing(store))!.ring;
    assert.ok(after.keys.some((key) => key.kid === old.kid && key.state === 'retired'), `the key retired 3,700 s ago was removed: ${JSON.stringify(after.keys.map((key) => [key.kid, key.state]))}`);
  });

  it('a server started without the others\' KEYS_REFRESH_INTERVAL keeps, at its start, a key retired 3,700 s ago', async () => {
    const { store, old } = await retireCurrentSecondsAgo(3_700);
    const other = await startServer({ redisUrl: redis.url });
    try {
      const after = (await readRing(store))!.ring;
      assert.ok(after.keys.some((key) => key.kid === old.kid && key.state === 'retired'), `the key retired 3,700 s ago was removed at the start: ${JSON.stringify(after.keys.map((key) => [key.kid, key.state]))}`);
    } finally {
      await other.stop();
    }
  });
});
