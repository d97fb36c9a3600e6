/**
 * The rate limits' own CPU per request, builds side by side in one process: what the default
 * configuration adds to a request that the bench configuration does not, without the rest of the
 * server (whose noise, on a busy machine, is larger than this part). Each simulated request is an
 * introspection from one address by one confidential client announced by HTTP Basic, as
 * `introspect-opaque` makes them: the app middleware (the per-address charge), the announced
 * client's wait (what provider/patches/announced-client-limit.ts asks) and the client's charge
 * after, against a real Redis with an allowance the rounds never exhaust (leases of 100, as the shipped
 * allowances have). The
 * builds' rounds alternate; the minimum and the median of the rounds are printed. A build
 * `<dir>:off` runs with every limit off (the harness alone).
 *
 *   cp -r dist dist-before && npm run build
 *   node --import tsx test/bench/rate-limits-ab.ts dist-before,dist,dist:off [requests=100000] [rounds=7]
 */
import { join } from 'node:path';
import type { Middleware } from 'koa';
import type { Config } from '../../src/config.js';
import type { RateLimits } from '../../src/http/rate-limits.js';
import { ROOT } from '../../src/paths.js';
import type { connect as Connect, RedisKv as Kv } from '../../src/store/redis.js';
import { startRedisServer } from '../helpers/redis.js';

const builds = (process.argv[2] ?? 'dist-before,dist').split(',');
const requests = Number(process.argv[3] ?? 100_000);
const rounds = Number(process.argv[4] ?? 7);

const redis = await startRedisServer();
const points = 1_000_000_000;
const paths: Record<string, string> = { token: '/token', introspection: '/token/introspection', revocation: '/token/revocation', jwks: '/jwks' };
// oidc-provider's pathFor, for the routes these requests need (any other: a feature that is off).
const provider = {
  pathFor(name: string) {
    if (!paths[name]) throw new Error(`${name} is off`);
    return paths[name];
  },
};

const sides = await Promise.all(
  builds.map(async (build) => {
    const [dir = 'dist', mode] = build.split(':');
    // Each build's own modules: RateLimits tells the Redis store by its own class.
    const { RateLimits: Limits } = (await import(join(ROOT, dir, 'http', 'rate-limits.js'))) as { RateLimits: typeof RateLimits };
    const store = (await import(join(ROOT, dir, 'store', 'redis.js'))) as { RedisKv: typeof Kv; connect: typeof Connect };
    const settings = { url: redis.url, mode: 'standalone', sentinels: [], sentinelName: 'x', clusterNodes: [], keyPrefix: `${build}:`, commandTimeout: 2000 } as Config['redis'];
    const kv = new store.RedisKv(store.connect(settings));
    const allowance = mode === 'off' ? 0 : points;
    const limits = new Limits(kv, { window: 60, perIp: allowance, perClient: allowance, registrationPerIp: allowance, metadataPerIp: allowance });
    return { build, kv, limits, middleware: limits.middleware(provider as never), cpu: [] as number[] };
  }),
);

const client = { clientId: 'svc', clientAuthMethod: 'client_secret_basic' };
const authorization = `Basic ${Buffer.from('svc:secret').toString('base64')}`;

/** CPU µs per request over `count` requests through one build's rate limits. */
async function run(side: (typeof sides)[number], count: number): Promise<number> {
  const { limits, middleware } = side;
  // What the engine does in between: look up the announced client (which asks for its wait).
  const engine = () => {
    const wait = limits.clientWait('svc');
    return typeof wait === 'number' ? Promise.resolve() : wait;
  };
  const started = process.cpuUsage();
  for (let i = 0; i < count; i += 1) {
    const ctx = {
      path: '/token/introspection',
      ip: '127.0.0.1',
      state: {},
      headers: {},
      status: 200,
      get: () => authorization,
      set: () => {},
      oidc: { route: 'introspection', client },
    };
    await (middleware as Middleware)(ctx as never, engine);
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / count;
}

try {
  for (const side of sides) await run(side, Math.min(requests, 20_000)); // warm-up
  for (let round = 0; round < rounds; round += 1) for (const side of sides) side.cpu.push(await run(side, requests));
  for (const { build, cpu } of sides) {
    const sorted = [...cpu].sort((a, b) => a - b);
    console.log(`${build.padEnd(16)} min ${sorted[0]!.toFixed(2)}  median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)} µs CPU per request`);
  }
} finally {
  await Promise.all(sides.map(({ kv }) => kv.close()));
  await redis.stop();
}
process.exit(0);
