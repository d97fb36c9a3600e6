/**
 * ioredis's Pipeline constructor (built/Pipeline.js, ioredis 6.0.0) ends with
 * `Object.defineProperty(this, "length", { get: function () { return _this._queue.length; } })`:
 * an accessor defined on each pipeline with a closure of its own. As with the engine's `ctx.oidc`
 * (provider/patches/shared-oidc-getter.ts), an object holding such an accessor stays reachable for
 * V8's young-generation collector until the next mark-compact, however soon it dies: every
 * auto-pipeline (one per Redis turn, several per request, each with its commands, their replies and
 * timers, and the store's scripts copied onto it) survived each scavenge and was promoted. In the
 * SSO flow that was most of what ioredis left to the scavenger (docs/performance.md).
 *
 * What it changes: that one definition is made with one getter shared by every pipeline, which
 * reads the pipeline it is called on (`this._queue.length`, where the closure read the same object
 * as `_this`). The property stays an own, non-configurable, non-enumerable accessor without a
 * setter. Only a getter-only definition of `length` on a Pipeline that has none yet is changed;
 * every other call of Object.defineProperty goes straight through (define-property-hook.ts). Added
 * once per process, before the first connection. Pinned by test/unit/shared-pipeline-length.test.ts.
 */
import { Pipeline } from 'ioredis';
import { addDefinitionRule } from '../define-property-hook.js';

function length(this: { _queue: unknown[] }): number {
  return this._queue.length;
}

const hasOwn = (object: object, key: PropertyKey) => Object.prototype.hasOwnProperty.call(object, key);

/** The constructor's definition exactly: `{ get }` and nothing else, on a Pipeline without `length`. */
function isPipelineLength(object: unknown, descriptor: PropertyDescriptor): boolean {
  if (!(object instanceof Pipeline) || typeof descriptor.get !== 'function') return false;
  for (const field in descriptor) if (field !== 'get') return false;
  return !hasOwn(object, 'length') && Array.isArray((object as unknown as { _queue?: unknown })._queue);
}

export function sharePipelineLength(): void {
  addDefinitionRule({
    name: 'ioredis Pipeline#length',
    key: 'length',
    define(object, descriptor, define) {
      if (!isPipelineLength(object, descriptor)) return false;
      define(object as object, 'length', { get: length });
      return true;
    },
  });
}
