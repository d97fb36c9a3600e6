/**
 * Every store operation timed into latchkey_store_command_duration_seconds, by operation and
 * outcome: one wrapper around whichever Kv is in use, instead of timing code in each backend.
 */
import type { Metrics } from '../ops/metrics.js';
import { delegate } from './delegate.js';
import type { Kv } from './kv.js';

type Observer = ReturnType<Metrics['storeCommand']>;

const since = (started: number) => (performance.now() - started) / 1000;

export function instrumented<T extends Kv>(kv: T, metrics: Metrics): T {
  return delegate(kv, (operation, method) => {
    // Not a store operation: it makes a cache, whose reads are the store's own.
    if (operation === 'cachedReads') return undefined;
    // The operation's two series, bound at its first call: prom-client's startTimer merged and
    // hashed the labels again at every command (and its observe, ops/metrics.ts observerOf).
    let ok: Observer | undefined;
    let failed: Observer | undefined;
    const succeeded = (started: number) => (ok ??= metrics.storeCommand(operation, 'ok')).observe(since(started));
    const threw = (started: number) => (failed ??= metrics.storeCommand(operation, 'error')).observe(since(started));
    return (...args: unknown[]) => {
      const started = performance.now();
      let result: unknown;
      try {
        result = method.apply(kv, args);
      } catch (error) {
        threw(started);
        throw error;
      }
      if (result instanceof Promise) result.then(() => succeeded(started), () => threw(started));
      else succeeded(started);
      return result;
    };
  });
}
