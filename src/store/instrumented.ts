/**
 * Every store operation timed into latchkey_store_command_duration_seconds, by operation and
 * outcome: one wrapper around whichever Kv is in use, instead of timing code in each backend.
 */
import type { Metrics } from '../ops/metrics.js';
import type { Kv } from './kv.js';

export function instrumented<T extends Kv>(kv: T, metrics: Metrics): T {
  const wrappers = new Map<PropertyKey, unknown>();
  return new Proxy(kv, {
    get(target, property) {
      // Read with the real object as receiver: backends keep their connection in private fields.
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function' || property === 'constructor') return value;
      // Not a store operation: it makes a cache, whose reads are the store's own.
      if (property === 'cachedReads') return (value as (...a: unknown[]) => unknown).bind(target);
      if (!wrappers.has(property)) {
        // The operation's two label sets, bound once: prom-client's startTimer merged and hashed
        // the labels again at every command.
        const operation = String(property);
        const ok = metrics.storeCommands.labels(operation, 'ok');
        const failed = metrics.storeCommands.labels(operation, 'error');
        wrappers.set(property, (...args: unknown[]) => {
          const started = performance.now();
          const took = () => (performance.now() - started) / 1000;
          try {
            const result = (value as (...a: unknown[]) => unknown).apply(target, args);
            if (result instanceof Promise) {
              result.then(() => ok.observe(took()), () => failed.observe(took()));
            } else {
              ok.observe(took());
            }
            return result;
          } catch (error) {
            failed.observe(took());
            throw error;
          }
        });
      }
      return wrappers.get(property);
    },
  });
}
