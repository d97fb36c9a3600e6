/**
 * The bench's Redis probe (test/bench/redis-probe.ts): round trips per request exactly, whatever a
 * server sends on its own timers meanwhile. A server here makes two round trips a request and
 * writes a heartbeat like the tracked cache's (store/tracked-cache.ts) every 20 ms, and between its
 * beats reads Redis's clock (TIME) as a server does each minute (clock.ts); the probe
 * used to subtract an expected background rate, which left fractions of a read on the figures
 * (refresh's 3 round trips read 3.03 in a bench run).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { probeRedis, RedisInspector } from '../bench/redis-probe.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

describe('bench: the Redis probe', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let connection: Redis;
  let server: Server;
  let heartbeat: NodeJS.Timeout;
  let clock: NodeJS.Timeout | undefined;
  let inspector: RedisInspector;

  before(async () => {
    redis = await startRedisServer();
    connection = new Redis(redis.url, { enableAutoPipelining: true });
    let beats = 0;
    heartbeat = setInterval(() => void connection.set(`probe:tracked-cache:abc:${(beats += 1)}`, '1', 'PX', 3000), 20);
    // Between the beats, a reading of Redis's clock as a server's each minute (clock.ts: TIME, no key).
    setTimeout(() => (clock = setInterval(() => void connection.time(), 20)), 10);
    server = createServer((request, response) => {
      void (async () => {
        await connection.get('probe:one'); // two round trips: the second waits for the first
        // /script: the second a script that reads Redis's clock, as the consumption of a code or a
        // refresh token does (store/redis.ts): that TIME is the request's, not a timer's.
        if (request.url === '/script') await connection.eval("redis.call('TIME'); return 1", 0);
        else await connection.get('probe:two');
        response.end('ok');
      })();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    inspector = new RedisInspector(redis.url);
  });

  after(async () => {
    clearInterval(heartbeat);
    clearInterval(clock);
    await inspector.close();
    server.close();
    connection.disconnect();
    await redis.stop();
  });

  it('counts a request\'s own round trips and commands, leaving out the windows a timer wrote in', async () => {
    const { port } = server.address() as AddressInfo;
    const workload = { steps: [{ name: 'get', request: () => ({ method: 'GET' as const, path: '/' }), check: (r: { status: number }) => (r.status === 200 ? undefined : `status ${r.status}`) }] };
    const probe = await probeRedis(inspector, `http://127.0.0.1:${port}`, workload, 60, 'probe:');
    assert.equal(probe.errors, 0);
    assert.ok(probe.backgroundWindows > 0, 'the heartbeat fell in no window: the test proves nothing');
    assert.equal(probe.roundTripsPerIteration, 2);
    assert.equal(probe.steps.get!.maxRoundTrips, 2);
    assert.equal(probe.commandsPerIteration, 2);
    assert.deepEqual(probe.steps.get!.sample, ['GET×2']);
  });

  it("counts a TIME a request's script ran as the request's: no window is left out for it", async () => {
    const { port } = server.address() as AddressInfo;
    const workload = { steps: [{ name: 'script', request: () => ({ method: 'GET' as const, path: '/script' }), check: (r: { status: number }) => (r.status === 200 ? undefined : `status ${r.status}`) }] };
    const probe = await probeRedis(inspector, `http://127.0.0.1:${port}`, workload, 60, 'probe:');
    assert.equal(probe.errors, 0);
    // Before, every window held the script's TIME, taken for a timer's: all 60 were left out, and the
    // TIME subtracted from each made the request's 2 round trips read 1 (refresh's 3 read 2, the code
    // exchange's 2 read 1, since the consumption's bound: store/redis.ts).
    // Not "few": on a loaded runner a request's window outlasts the 20 ms beats, so most hold one
    // (43 of 60 at a load of 10); some are still counted, which none was before.
    assert.ok(probe.backgroundWindows < 60, `windows left out: ${probe.backgroundWindows} of 60`);
    assert.equal(probe.roundTripsPerIteration, 2);
    assert.equal(probe.steps.script!.maxRoundTrips, 2);
    assert.equal(probe.commandsPerIteration, 3);
    assert.deepEqual(probe.steps.script!.sample, ['EVAL', 'GET', 'TIME']);
  });

  it('puts the slow log\'s settings back', async () => {
    const check = new Redis(redis.url);
    try {
      assert.deepEqual(await check.config('GET', 'slowlog-log-slower-than'), ['slowlog-log-slower-than', '10000']);
      assert.deepEqual(await check.config('GET', 'slowlog-max-len'), ['slowlog-max-len', '128']);
    } finally {
      check.disconnect();
    }
  });
});
