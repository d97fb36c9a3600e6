/** Opens the store the configuration asks for: Redis when configured, else the embedded one. */
import { resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../ops/logger.js';
import { EmbeddedKv } from './embedded.js';
import { instrumented } from './instrumented.js';
import type { Metrics } from '../ops/metrics.js';
import type { Kv } from './kv.js';
import { connect, RedisKv } from './redis.js';
import { withReadAhead } from './read-ahead.js';

export type { Kv } from './kv.js';

export function usesRedis(config: Config): boolean {
  return Boolean(config.redis.url) || config.redis.mode !== 'standalone';
}

/** The connection error of a Redis store that has not answered yet, for a start-up failure's reason. */
const connectionErrors = new WeakMap<Kv, Error>();
export function connectionError(kv: Kv): Error | undefined {
  return connectionErrors.get(kv);
}

/** Redis stores whose connection was ready once: a failure after that is no start-up failure's reason. */
const reachedStores = new WeakSet<Kv>();
export function everReached(kv: Kv): boolean {
  return reachedStores.has(kv);
}

/**
 * The server's store on Redis keeps APIs and grants in memory, invalidated by Redis (tracked-cache.ts):
 * this many entries at most, each used for at most this long (a backstop: invalidation keeps them fresh).
 */
const CACHE = { maxEntries: 10_000, maxAge: 60_000 };

/**
 * `metrics`: the running server's, which times every operation (the CLI's stores are not timed).
 * The server's store also reads ahead for the request in progress (read-ahead.ts) and offers
 * cachedReads (tracked-cache.ts).
 */
export function openStore(config: Config, logger?: Logger, metrics?: Metrics): Kv {
  const timed = <T extends Kv>(kv: T): T => (metrics ? withReadAhead(instrumented(kv, metrics)) : kv);
  if (usesRedis(config)) {
    const client = connect(config.redis);
    // Until Redis has answered once there is nothing being served: the server is still starting.
    client.once('ready', () => reachedStores.add(kv));
    const kv: Kv = timed(
      new RedisKv(client, {
        lost: (error) => {
          // Unreachable at start, the server does not start, and says why in one line (connectionError): not logged twice.
          if (!reachedStores.has(kv)) connectionErrors.set(kv, error);
          else logger?.error({ error: error.message }, 'redis unreachable: answering 503 until it returns');
        },
        restored: () => logger?.info('redis reachable again'),
      }, metrics && {
        ...CACHE,
        unavailable: (error) =>
          logger?.warn({ err: { message: error.message } }, 'redis refused client-side caching (CLIENT TRACKING, or its heartbeat\'s write): APIs and grants are read from Redis at every request'),
        lapsed: () =>
          logger?.warn('redis invalidations stopped arriving in time (a silent connection): the in-process cache is emptied and Redis read at every request until they are confirmed again'),
      }),
    );
    return kv;
  }
  return timed(new EmbeddedKv(resolve(config.embedded.file), (error) => logger?.warn(`${error.message}; keeping what was read before`)));
}
