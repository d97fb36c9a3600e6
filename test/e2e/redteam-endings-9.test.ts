/**
 * Red team, ninth endings pass (docs/security-passes.md, "Looked at in the ninth endings pass").
 *
 * On Redis Sentinel, an RFC 7009 revocation answered 200 by a master that had not passed it to its
 * replica was lost when the replica was promoted, and the revoked token was active again at
 * introspection (performed: the replica's link cut, the revocation acknowledged, the master killed).
 * Replication is asynchronous; only the master's own setting (min-replicas-to-write with
 * min-replicas-max-lag) makes it refuse a write no replica takes, which Latchkey answers 503 (not
 * done, try again) rather than acknowledging an ending it may lose. Nothing said the setting was
 * missing: a server now says so at start (store.unreplicated_acks), on a master that may fail over.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/ops/logger.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisSentinel, type RedisSentinelGroup } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, clientCredentialsToken, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

interface LogLine {
  readonly event?: string;
  readonly msg?: string;
}

describe('e2e: red team, ninth endings pass', function () {
  this.timeout(60_000);
  let group: RedisSentinelGroup;
  let master: Redis;
  const servers: TestServer[] = [];

  before(async () => {
    group = await startRedisSentinel();
    master = new Redis(group.masterPort, '127.0.0.1');
  });
  after(async () => {
    for (const server of servers) await server.stop();
    master?.disconnect();
    await group?.stop();
  });

  /** A server on the Sentinel group, and what it logged at start. */
  async function started(): Promise<{ server: TestServer; lines: LogLine[] }> {
    const lines: LogLine[] = [];
    const server = await startServer({
      clients: [machineClient(MACHINE), machineClient(RS)],
      env: { REDIS_MODE: 'sentinel', REDIS_SENTINELS: group.sentinels.join(','), REDIS_SENTINEL_NAME: group.masterName, RESOURCE_SERVERS },
      logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }),
    });
    servers.push(server);
    return { server, lines };
  }
  const warned = (lines: readonly LogLine[]) => lines.filter((line) => line.event === 'store.unreplicated_acks');

  it("a Sentinel master that acknowledges writes no replica has (min-replicas-to-write 0) is said at start; set, it is not, and an ending while no replica takes it is answered 503, not acknowledged and lost", async () => {
    // A standalone Redis with no replica has nothing to fail over to: nothing to say.
    const lone: LogLine[] = [];
    servers.push(await startServer({ ownRedis: true, logger: createLogger('info', { write: (line: string) => void lone.push(JSON.parse(line) as LogLine) }) }));
    assert.deepEqual(warned(lone), [], 'not said of a Redis without replicas');

    const unset = await started();
    assert.equal(warned(unset.lines).length, 1, 'said at start');
    assert.match(warned(unset.lines)[0]!.msg ?? '', /min-replicas-to-write 1/);

    await master.config('SET', 'min-replicas-to-write', '1');
    await master.config('SET', 'min-replicas-max-lag', '10');
    const set = await started();
    assert.deepEqual(warned(set.lines), [], 'not said once the master waits for a replica');

    // The replica's link cut: the master refuses writes (NOREPLICAS), so the revocation is not acknowledged.
    const token = await clientCredentialsToken(set.server.url, MACHINE);
    const { revocation_endpoint } = (await (await fetch(`${set.server.url}/.well-known/openid-configuration`)).json()) as { revocation_endpoint: string };
    const revoke = () =>
      fetch(revocation_endpoint.replace(set.server.issuer, set.server.url), {
        method: 'POST',
        headers: { authorization: basic(MACHINE), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }),
      });
    const replicaPort = Number(/^slave0:ip=[^,]+,port=(\d+)/m.exec(await master.info('replication'))![1]);
    const replica = new Redis(replicaPort, '127.0.0.1');
    const replicaPid = Number(/^process_id:(\d+)/m.exec(await replica.info('server'))![1]);
    replica.disconnect();
    // Stopped, and its link cut: it cannot take the write nor connect again until it goes on.
    process.kill(replicaPid, 'SIGSTOP');
    try {
      await master.call('CLIENT', 'KILL', 'TYPE', 'replica');
      const refused = await revoke();
      assert.equal(refused.status, 503, 'not acknowledged');
      assert.ok(refused.headers.get('retry-after'), 'with Retry-After');
    } finally {
      process.kill(replicaPid, 'SIGCONT');
    }
    // (Every write is refused meanwhile, introspection's too.) The replica back: not revoked, as the 503 said.
    // (The replica connects again within a second or two; up to 15 s under load.)
    await eventually(async () => assert.equal((await introspect(set.server.url, RS, token)).active, true), 150);
    // Revoked again, it is taken, and the token is refused.
    assert.equal((await revoke()).status, 200);
    assert.equal((await introspect(set.server.url, RS, token)).active, false);
  });
});
