/**
 * A layer over a store object without a Proxy: an object whose prototype is the store (so
 * `instanceof` and its plain fields read through) with, as its own properties, every method of the
 * store's class chain, either `wrap`'s replacement or the method bound to the store (backends keep
 * their connection in private fields, so a method must run with the store itself as `this`), and
 * every accessor read on the store. A Proxy ran a trap (and a map lookup) at every property read,
 * each store call reading through two layers of them.
 */
export function delegate<T extends object>(target: T, wrap: (name: string, method: (...args: unknown[]) => unknown) => ((...args: unknown[]) => unknown) | undefined): T {
  const layer = Object.create(target) as T;
  const seen = new Set<PropertyKey>(['constructor']);
  // The store itself and its class chain, up to (not including) Object.prototype, whose methods
  // need no particular receiver.
  for (let from: object | null = target; from && from !== Object.prototype; from = Object.getPrototypeOf(from) as object | null) {
    for (const property of Reflect.ownKeys(from)) {
      if (seen.has(property)) continue;
      seen.add(property);
      const descriptor = Object.getOwnPropertyDescriptor(from, property)!;
      if (descriptor.get || descriptor.set) {
        Object.defineProperty(layer, property, { get: () => Reflect.get(target, property, target), configurable: true });
        continue;
      }
      const value: unknown = descriptor.value;
      if (typeof value !== 'function') continue; // a plain field: read through the prototype
      const method = value as (...args: unknown[]) => unknown;
      const own = (typeof property === 'string' ? wrap(property, method) : undefined) ?? method.bind(target);
      Object.defineProperty(layer, property, { value: own, writable: true, configurable: true });
    }
  }
  return layer;
}
