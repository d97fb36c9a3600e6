/**
 * Every request the engine routes gets its `ctx.oidc` from oidc-provider's `ensureOIDC`
 * (lib/helpers/initialize_app.js), which defines it on the request's Koa context as an accessor
 * whose getter is a new closure per request: `Object.defineProperty(ctx, 'oidc', { get: () => ... })`.
 * An accessor defined on each object with a closure of its own stays reachable for V8's
 * young-generation collector until the next mark-compact, however soon the object dies (a standalone
 * script shows it; why, inside V8, was not looked into): every request's context (the closure holds
 * it, and with it the request, the response, the OIDCContext, its parameters and the
 * AsyncLocalStorage frame) survived each scavenge and was promoted, 14-17% of all that a token,
 * introspection or revocation request allocates (`--trace-gc-nvp`), where a plain Koa app keeps
 * none, nor discovery and the JWKS, which the engine does not route (docs/performance.md).
 *
 * What it changes: that one definition is made with one getter shared by every context, which calls
 * the request's own getter, kept on the context under a symbol (not enumerable, not configurable),
 * once, and keeps what it answered in the same place for every read after: the engine's getter makes
 * the OIDCContext at its first read and answers that one object at every read after
 * (`oidcCtx ||= ...`), and the engine reads `ctx.oidc` many times a request (the largest frame of
 * ours by instructions was this getter's call of the engine's, docs/performance.md, seventeenth
 * passes). The same value, made as lazily, once per request; the
 * property stays an own, non-configurable, non-enumerable accessor without a setter, and a second
 * definition on the same context fails as before. Only a getter-only definition of `oidc` on a Koa
 * context (an object with its own `req` and `res`) that has none yet is changed; every other call of
 * Object.defineProperty goes straight through. Node's own modules use their captured copy.
 *
 * The engine's step is a closure in its router, out of reach: the definition is made through
 * define-property-hook.ts, once per process. Pinned by test/unit/provider-patches.test.ts (the
 * engine's definition, and that two requests' contexts share the getter and read their own
 * OIDCContext).
 */
import { addDefinitionRule } from '../../define-property-hook.js';

/** Where a context keeps the engine's getter for its request, then the OIDCContext it answered. */
const OWN_GETTER = Symbol('latchkey.oidcGetter');

function oidc(this: Record<symbol, unknown>): unknown {
  const kept = this[OWN_GETTER];
  if (typeof kept !== 'function') return kept;
  // The first read: the engine's getter makes the context (an object); every read after answers it.
  const made: unknown = kept();
  if (typeof made === 'object' && made !== null) this[OWN_GETTER] = made;
  return made;
}

const hasOwn = (object: object, key: PropertyKey) => Object.prototype.hasOwnProperty.call(object, key);

/** ensureOIDC's definition exactly: `{ get }` and nothing else, on a Koa context without `oidc`. */
function isEnsureOidc(object: unknown, descriptor: PropertyDescriptor): boolean {
  if (typeof object !== 'object' || object === null || typeof descriptor.get !== 'function') return false;
  for (const field in descriptor) if (field !== 'get') return false;
  return hasOwn(object, 'req') && hasOwn(object, 'res') && !hasOwn(object, 'oidc') && !hasOwn(object, OWN_GETTER);
}

export function shareOidcGetter(): void {
  addDefinitionRule({
    name: 'engine ctx.oidc',
    key: 'oidc',
    define(object, descriptor, define) {
      if (!isEnsureOidc(object, descriptor)) return false;
      define(object as object, OWN_GETTER, { value: descriptor.get, writable: true });
      define(object as object, 'oidc', { get: oidc });
      return true;
    },
  });
}
