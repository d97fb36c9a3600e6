/**
 * The fifteenth fresh-eyes passes of 2026-12-07, "endings that do not end" (docs/security-passes.md,
 * "Looked at in the fifteenth fresh-eyes passes of 2026-12-07: endings that do not end"), black box.
 *
 * A Redis that appends no write to a file (`appendonly no`, Redis's own default, and that of the
 * official image) but keeps RDB snapshots (its default save points) comes back from a crash, an OOM kill or a container killed on its last RDB
 * snapshot: every ending acknowledged since (an RFC 7009 revocation, a sign-out, a password changed,
 * a person disabled, a key revoked) is undone, and what it ended works again. The store's epoch does
 * not see it (the snapshot holds the epoch): performed, a client's token revoked after a `SAVE`, the
 * redis-server killed and started again, was active again at introspection. Nothing said so: a
 * server said so of a master without `min-replicas-to-write` (store.unreplicated_acks) and refused
 * one that evicts, but was silent on one that persists nothing. It now says so at start
 * (store.unpersisted_acks), as it does of the replicas.
 *
 * Where a running server knows better than such a store, it no longer takes the past back: a
 * signing key revoked (`keys revoke`) after the snapshot came back with the ring, and the server
 * adopted it, published it and signed with it again, and the tokens it had signed before its
 * revocation were active again at introspection (its kid entry gone too). A key is made new each
 * time, so one that left the ring in service and comes back is a store gone back in time: the server
 * now writes its kid entry again and writes the ring it signs with back over it (keys.came_back).
 */
import assert from 'node:assert/strict';
import { decodeProtectedHeader } from 'jose';
import { Redis } from 'ioredis';
import { keyRevocationHorizon, ringStore } from '../../src/keyring/index.js';
import { revokeFromRing } from '../../src/keyring/service.js';
import { createLogger } from '../../src/ops/logger.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

interface LogLine {
  readonly event?: string;
  readonly msg?: string;
}

describe('e2e: fifteenth fresh-eyes pass, endings undone by a Redis that persists nothing', function () {
  this.timeout(60_000);
  let redis: RedisServer;

  before(async () => {
    redis = await startRedisServer(); // appendonly no
  });
  after(async () => {
    await redis?.stop();
  });

  async function startedOn(url: string): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    const server: TestServer = await startServer({ redisUrl: url, cheapHashing: true, logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }) });
    await server.stop();
    return lines;
  }
  const warned = (lines: readonly LogLine[]) => lines.filter((line) => line.event === 'store.unpersisted_acks');

  it('a Redis with snapshots but without appendonly (its restart brings back the last snapshot, every ending since undone) is said at start; with appendonly, or with nothing kept on disk (it comes back empty), it is not', async () => {
    const admin = new Redis(redis.url);
    try {
      // save "": a restart comes back empty, and the store's epoch ends every token from before.
      assert.deepEqual(warned(await startedOn(redis.url)), [], 'not said of a Redis that keeps nothing on disk');

      await admin.config('SET', 'save', '3600 1 300 100');
      const unset = warned(await startedOn(redis.url));
      assert.equal(unset.length, 1, 'said at start of a Redis with snapshots and appendonly no');
      assert.match(unset[0]!.msg ?? '', /appendonly yes/);

      await admin.config('SET', 'appendonly', 'yes');
      assert.deepEqual(warned(await startedOn(redis.url)), [], 'not said once Redis appends every write');
    } finally {
      await admin.config('SET', 'appendonly', 'no').catch(() => {});
      await admin.config('SET', 'save', '').catch(() => {});
      admin.disconnect();
    }
  });

  it('a signing key revoked after the snapshot, Redis killed and started again on it: the server neither publishes nor signs with it again, and what it signed stays inactive', async () => {
    const lines: LogLine[] = [];
    const server = await startServer({
      redisUrl: redis.url,
      cheapHashing: true,
      clients: [machineClient(MACHINE), machineClient(RS)],
      env: { RESOURCE_SERVERS },
      logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }),
    });
    const admin = new Redis(redis.url);
    try {
      for (const client of [MACHINE, RS]) await server.apis.grant(client.id, 'https://api.example.test', { scopes: ['read'] });
      const signed = await clientCredentialsToken(server.url, MACHINE);
      const { kid } = decodeProtectedHeader(signed);
      await admin.save();
      // `keys revoke`, as the CLI does it: the kid entry, then the ring.
      await server.revocations.revokeKey(kid!, keyRevocationHorizon(server.config, await server.revocations.lifetimes()));
      await revokeFromRing(await ringStore(server.config, server.kv), [kid!], server.config.keys.rsaBits);
      await eventually(async () => assert.notEqual(decodeProtectedHeader(await clientCredentialsToken(server.url, MACHINE)).kid, kid));
      assert.equal((await introspect(server.url, RS, signed)).active, false);

      admin.disconnect();
      await redis.kill();
      await redis.restart(); // on the snapshot: the ring with the key, no kid entry
      // The server's next look at the store: it took the ring back (before the fix), or wrote its own over it.
      const looked = () => lines.some((line) => line.event === 'keys.came_back' || (line.msg === 'key ring changed' && (line as { current?: string }).current === kid));
      await eventually(async () => assert.ok(looked(), 'the server looked at the ring again'));
      await eventually(async () => assert.equal((await introspect(server.url, RS, signed)).active, false, 'what the revoked key signed is inactive again'));
      const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] };
      assert.ok(!jwks.keys.some((key) => key.kid === kid), `the revoked key is not published: ${jwks.keys.map((key) => key.kid).join(', ')}`);
      assert.notEqual(decodeProtectedHeader(await clientCredentialsToken(server.url, MACHINE)).kid, kid, 'nor signed with');
      assert.ok(lines.some((line) => line.event === 'keys.came_back'), 'said');
      // Written again in the store itself, not only read from a cache kept across the restart.
      const after = new Redis(redis.url);
      try {
        assert.equal(await after.exists(`${server.config.redis.keyPrefix}revoked:{rv}:kid:${kid}`), 1, 'its kid entry is in the store again');
      } finally {
        after.disconnect();
      }
    } finally {
      admin.disconnect();
      await server.stop();
    }
  });
});
