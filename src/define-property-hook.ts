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

export function addDefinitionRule(rule: DefinitionRule): void {
  const global = globalThis as Record<symbol, Map<string, DefinitionRule> | undefined>;
  let rules = global[RULES];
  if (!rules) {
    const installed = new Map<string, DefinitionRule>();
    rules = global[RULES] = installed;
    const define = Object.defineProperty;
    Object.defineProperty = function defineProperty<T>(object: T, key: PropertyKey, descriptor: PropertyDescriptor & ThisType<unknown>): T {
      if (typeof descriptor === 'object' && descriptor !== null) {
        for (const candidate of installed.values()) {
          if (candidate.key === key && candidate.define(object, descriptor, define)) return object;
        }
      }
      return define(object, key, descriptor);
    } as Define;
  }
  if (!rules.has(rule.name)) rules.set(rule.name, rule);
}
