/**
 * Every store a Kv test runs against: the embedded one, a single redis-server, and a 3-master
 * Redis Cluster (which rejects any cross-slot multi-key command). Redis backends come with a raw
 * ioredis client so that tests can look at what was really written (TTLs, key names).
 */
import { rmSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.js';
import { announceServer, controlPaths, RemoteKv } from '../../src/store/control.js';
import { EmbeddedKv } from '../../src/store/embedded.js';
import type { Kv } from '../../src/store/kv.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { startRedisCluster, startRedisServer } from './redis.js';
import { testDir, testEnv } from './server.js';

export const PREFIX = 'lk:';

export interface OpenBackend {
  readonly kv: Kv;
  /** Another store on the same data, as a second server would open it (cachingRedis: its own cache). */
  readonly second?: Kv;
  readonly raw?: Redis | Cluster;
  stop(): Promise<void>;
}

export interface Backend {
  readonly name: string;
  readonly redis: boolean;
  open(): Promise<OpenBackend>;
}

/** Redis settings as a test server's, over `overrides`. */
export const redisSettings = (overrides: Partial<Config['redis']>): Config['redis'] => ({
  url: '',
  mode: 'standalone',
  sentinels: [],
  sentinelName: 'x',
  clusterNodes: [],
  keyPrefix: PREFIX,
  commandTimeout: 2000,
  ...overrides,
});

export const backends: Backend[] = [
  {
    name: 'embedded store',
    redis: false,
    async open() {
      const dir = testDir();
      const kv = new EmbeddedKv(`${dir}/store.json`);
      return { kv, stop: async () => { await kv.close(); rmSync(dir, { recursive: true, force: true }); } };
    },
  },
  {
    name: 'single redis-server',
    redis: true,
    async open() {
      const server = await startRedisServer();
      const kv = new RedisKv(connect(redisSettings({ url: server.url })));
      const raw = new Redis(server.url);
      return { kv, raw, stop: async () => { await kv.close(); raw.disconnect(); await server.stop(); } };
    },
  },
  {
    name: '3-master Redis Cluster',
    redis: true,
    async open() {
      const cluster = await startRedisCluster(3);
      const nodes = cluster.nodes.map(({ host, port }) => `${host}:${port}`);
      const kv = new RedisKv(connect(redisSettings({ mode: 'cluster', clusterNodes: nodes })));
      const raw = new Cluster(cluster.nodes);
      return { kv, raw, stop: async () => { await kv.close(); raw.disconnect(); await cluster.stop(); } };
    },
  },
];

/**
 * A single redis-server with the store as the server opens it: reads through cachedReads come from
 * memory, invalidated by Redis (src/store/tracked-cache.ts).
 */
export const cachingRedis: Backend = {
  name: 'single redis-server, with the server\'s cache',
  redis: true,
  async open() {
    const server = await startRedisServer();
    const store = () => new RedisKv(connect(redisSettings({ url: server.url })), undefined, { maxEntries: 1000, maxAge: 60_000 });
    const [kv, second] = [store(), store()];
    const raw = new Redis(server.url);
    return { kv, second, raw, stop: async () => { await Promise.all([kv.close(), second.close()]); raw.disconnect(); await server.stop(); } };
  },
};

/**
 * The embedded store as the CLI sees it next to a running server: a RemoteKv on the control
 * socket, every operation one JSON line each way (so the Kv tests check the protocol keeps
 * undefined, numbers, arrays and errors as they are).
 */
export const remoteEmbedded: Backend = {
  name: 'embedded store through the control socket',
  redis: false,
  async open() {
    const dir = testDir();
    const config = loadConfig(testEnv(dir, 0));
    const served = new EmbeddedKv(config.embedded.file);
    const unannounce = await announceServer(config, served, process.pid, (message) => {
      throw new Error(message);
    });
    const kv = await RemoteKv.connect(controlPaths(config).socket);
    return {
      kv,
      stop: async () => {
        await kv.close();
        await unannounce();
        await served.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** Every key in a Redis store, from every master when it is a cluster. */
export async function allKeys(raw: Redis | Cluster, pattern = `${PREFIX}*`): Promise<string[]> {
  const nodes = raw instanceof Cluster ? raw.nodes('master') : [raw];
  const keys = await Promise.all(nodes.map((node) => node.keys(pattern)));
  return keys.flat();
}

/** Everything stored under a key, flattened to text, whatever its type. */
export async function dumpValue(raw: Redis | Cluster, key: string): Promise<string> {
  switch (await raw.type(key)) {
    case 'string':
      return (await raw.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await raw.hgetall(key));
    case 'set':
      return JSON.stringify(await raw.smembers(key));
    case 'stream':
      return JSON.stringify(await raw.xrange(key, '-', '+'));
    case 'list':
      return JSON.stringify(await raw.lrange(key, 0, -1));
    case 'zset':
      return JSON.stringify(await raw.zrange(key, '0', '-1'));
    default:
      return '';
  }
}
