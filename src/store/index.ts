/** Opens the store the configuration asks for: Redis when configured, else the embedded one. */
import { resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../ops/logger.js';
import { EmbeddedKv } from './embedded.js';
import { instrumented } from './instrumented.js';
import type { Kv } from './kv.js';
import { connect, RedisKv } from './redis.js';

export type { Kv } from './kv.js';

export function usesRedis(config: Config): boolean {
  return Boolean(config.redis.url) || config.redis.mode !== 'standalone';
}

export function openStore(config: Config, logger?: Logger): Kv {
  if (usesRedis(config)) {
    return instrumented(
      new RedisKv(connect(config.redis), {
        lost: (error) => logger?.error({ err: { message: error.message } }, 'redis unreachable: answering 503 until it returns'),
        restored: () => logger?.info('redis reachable again'),
      }),
    );
  }
  return instrumented(new EmbeddedKv(resolve(config.embedded.file)));
}
