import assert from 'node:assert/strict';
import { addDefinitionRule, type DefinitionRule } from '../../src/define-property-hook.js';

/**
 * The process-wide hook on Object.defineProperty (src/define-property-hook.ts) is on every request's
 * path: the engine defines each field of every payload through it (about 20 definitions a token
 * request, 80 an SSO request). A definition whose key no rule names must go straight to the original,
 * without asking any rule (the hook used to scan every rule at every call).
 */
describe('define-property-hook.ts (seventeenth passes)', () => {
  const unique = `seventeenth-${process.pid}-${Date.now()}`;

  /** A rule on `key` that counts how often its key was read and its test asked, claiming when told. */
  function countingRule(name: string, key: string, claims: (descriptor: PropertyDescriptor) => boolean) {
    const counts = { keyReads: 0, asked: 0 };
    const rule: DefinitionRule = {
      name,
      get key() {
        counts.keyReads += 1;
        return key;
      },
      define(object, descriptor, define) {
        counts.asked += 1;
        if (!claims(descriptor)) return false;
        define(object as object, key, { value: 'claimed', enumerable: true });
        return true;
      },
    };
    return { rule, counts };
  }

  it('a definition of a key no rule names asks no rule, and a rule is asked only of its own key', () => {
    const key = `${unique}-own`;
    const { rule, counts } = countingRule(`${unique} one`, key, () => true);
    addDefinitionRule(rule);
    const readsAtAddition = counts.keyReads;
    for (let i = 0; i < 200; i += 1) {
      const object: Record<string, unknown> = {};
      Object.defineProperty(object, 'iat', { configurable: true, enumerable: true, value: i, writable: true });
      Object.defineProperty(object, Symbol.for(key), { value: i });
      assert.equal(object.iat, i);
    }
    assert.deepEqual(counts, { keyReads: readsAtAddition, asked: 0 }, 'other keys go straight to the original');
    const claimed: Record<string, unknown> = {};
    assert.equal(Object.defineProperty(claimed, key, { value: 'theirs' }), claimed);
    assert.equal(claimed[key], 'claimed');
    assert.deepEqual(counts, { keyReads: readsAtAddition, asked: 1 });
  });

  it('rules on one key are asked in the order added, each once however often added; declined by all, the original defines it', () => {
    const key = `${unique}-shared`;
    const first = countingRule(`${unique} first`, key, (descriptor) => descriptor.value === 'first');
    const second = countingRule(`${unique} second`, key, (descriptor) => descriptor.value === 'second');
    addDefinitionRule(first.rule);
    addDefinitionRule(second.rule);
    addDefinitionRule(first.rule);
    const a: Record<string, unknown> = {};
    Object.defineProperty(a, key, { value: 'second' });
    assert.equal(a[key], 'claimed');
    assert.deepEqual([first.counts.asked, second.counts.asked], [1, 1]);
    const b: Record<string, unknown> = {};
    Object.defineProperty(b, key, { value: 'first' });
    assert.equal(b[key], 'claimed');
    assert.deepEqual([first.counts.asked, second.counts.asked], [2, 1], 'the first claims it: the second is not asked');
    const c: Record<string, unknown> = {};
    Object.defineProperty(c, key, { value: 'neither', writable: true });
    assert.deepEqual(Object.getOwnPropertyDescriptor(c, key), { value: 'neither', writable: true, enumerable: false, configurable: false });
    assert.deepEqual([first.counts.asked, second.counts.asked], [3, 2]);
    // What the original throws, the hook throws.
    assert.throws(() => Object.defineProperty(Object.freeze({}), `${unique}-frozen`, { value: 1 }), TypeError);
  });
});
