/**
 * Koa's context delegates (`ctx.path`, `ctx.status = 200`, `ctx.set(...)`: koa/lib/context.js
 * through the `delegates` package) are closures of one function literal each kind, reading
 * `this[target][name]`. Closures of one literal share one feedback vector, so V8 sees every
 * delegated name and both targets at the same load: each access is a megamorphic keyed load or
 * store through an IC trampoline (about 18 K instructions a token request in the getters, 76 calls,
 * and the setters' stores beside them; docs/performance.md). Each delegate of the app's context is
 * given here its own function, compiled from its own source (`this.request.path`), whose loads V8
 * caches by shape like any other property access.
 *
 * Same behaviour: a delegate is recognised by its source (the `delegates` package's three
 * functions) and its target found by calling it on a probe, so each replacement reads, writes or
 * calls the same property of the same object; anything else on the prototype is left as it is.
 * The replacements are the app context's own properties, with the delegates' attributes.
 */

/** The `delegates` package's getter, setter and method, whitespace removed. */
const DELEGATE_SOURCES = {
  get: 'function(){returnthis[target][name];}',
  set: 'function(val){returnthis[target][name]=val;}',
  method: 'function(){returnthis[target][name].apply(this[target],arguments);}',
} as const;
const TARGETS = ['request', 'response'] as const;
type Target = (typeof TARGETS)[number];

const sourceOf = (fn: unknown) => (typeof fn === 'function' ? Function.prototype.toString.call(fn).replace(/\s+/g, '') : undefined);

type Probe = Record<Target, Record<string, unknown>>;
/** The one target of which `acted` holds after `act` on a probe of both (undefined: none or both). */
function targetOf(act: (probe: Probe) => unknown, acted: (probe: Probe, target: Target, result: unknown) => boolean): Target | undefined {
  const probe: Probe = { request: {}, response: {} };
  const result = act(probe);
  const found = TARGETS.filter((target) => acted(probe, target, result));
  return found.length === 1 ? found[0] : undefined;
}

type Compiled = (...args: unknown[]) => unknown;
/** A function of its own for one name (`name` is a checked identifier, `target` one of TARGETS: never input). */
const compile = (parameter: string, body: string) => new Function(parameter, body) as Compiled;

/** Gives `context` (a Koa app's `app.context`) a function of its own for each of Koa's delegates. */
export function ownContextDelegates(context: object): void {
  const prototype = Object.getPrototypeOf(context) as object;
  for (const [name, { get, set, value, enumerable, configurable }] of Object.entries(Object.getOwnPropertyDescriptors(prototype))) {
    if (!/^[A-Za-z_$][\w$]*$/.test(name) || Object.hasOwn(context, name)) continue;
    if (sourceOf(value) === DELEGATE_SOURCES.method) {
      // Each target's method answers its target's name when called on that target.
      const target = targetOf((probe) => {
        for (const t of TARGETS) probe[t][name] = function (this: unknown) { return this === probe[t] ? t : undefined; };
        return (value as Compiled).call(probe);
      }, (_probe, t, result) => result === t);
      if (target) Object.defineProperty(context, name, { value: compile('', `const target = this.${target}; return target.${name}.apply(target, arguments);`), writable: true, enumerable, configurable });
      continue;
    }
    if (sourceOf(get) !== DELEGATE_SOURCES.get || (set && sourceOf(set) !== DELEGATE_SOURCES.set)) continue;
    const target = targetOf((probe) => {
      for (const t of TARGETS) probe[t][name] = t;
      return get!.call(probe);
    }, (_probe, t, result) => result === t);
    if (!target) continue;
    const written = Symbol(name);
    if (set && targetOf((probe) => set.call(probe, written), (probe, t) => probe[t][name] === written) !== target) continue;
    Object.defineProperty(context, name, {
      get: compile('', `return this.${target}.${name};`),
      set: set ? compile('value', `this.${target}.${name} = value;`) : undefined,
      enumerable,
      configurable,
    });
  }
}
