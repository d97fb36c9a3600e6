/**
 * One hook on Object.defineProperty for the few definitions we make differently: libraries that
 * define an accessor with a getter closure of its own on each short-lived object (oidc-provider's
 * `ctx.oidc`: provider/patches/shared-oidc-getter.ts; ioredis's Pipeline#length:
 * store/shared-pipeline-length.ts), which keeps every such object reachable for V8's young-generation
 * collector until the next mark-compact. Their code defines it inline, out of reach, so the global
 * function is wrapped, once per process, by one wrapper however many rules there are (each rule is
 * added once, by name). A rule claims a definition by its key and its own test and makes it itself;
 * every other definition goes straight through. Node's own modules use their captured copy.
 */
type Define = typeof Object.defineProperty;

export interface DefinitionRule {
  /** Names the rule: a rule added again (another provider, another connection) is added once. */
  readonly name: string;
  /** The property key it is about; the only key it is asked of. */
  readonly key: PropertyKey;
  /** True when the definition is the rule's, made with `define` (the original); false to let it through. */
  define(object: unknown, descriptor: PropertyDescriptor, define: Define): boolean;
}

const RULES = Symbol.for('latchkey.definePropertyRules');

/** The rules of the process, by name (each added once) and by the key they are about. */
interface Installed {
  readonly names: Set<string>;
  readonly byKey: Map<PropertyKey, readonly DefinitionRule[]>;
}

export function addDefinitionRule(rule: DefinitionRule): void {
  const global = globalThis as Record<symbol, Installed | undefined>;
  let installed = global[RULES];
  if (!installed) {
    // Every definition of the process comes through here (the engine's payloads define each of
    // their fields: about 20 a token request, 80 an SSO request): one lookup by key, and straight to
    // the original when no rule names the key, which is nearly always; a rule is asked only of its
    // own key (docs/performance.md, seventeenth passes).
    const byKey = new Map<PropertyKey, readonly DefinitionRule[]>();
    installed = global[RULES] = { names: new Set(), byKey };
    const define = Object.defineProperty;
    Object.defineProperty = function defineProperty<T>(object: T, key: PropertyKey, descriptor: PropertyDescriptor & ThisType<unknown>): T {
      const rules = byKey.get(key);
      if (rules !== undefined && typeof descriptor === 'object' && descriptor !== null) {
        for (const candidate of rules) {
          if (candidate.define(object, descriptor, define)) return object;
        }
      }
      return define(object, key, descriptor);
    } as Define;
  }
  if (installed.names.has(rule.name)) return;
  installed.names.add(rule.name);
  // The key is read once, here: a rule's key does not change.
  const key = rule.key;
  installed.byKey.set(key, [...(installed.byKey.get(key) ?? []), rule]);
}
