import assert from 'node:assert/strict';
import { shareOidcGetter } from '../../src/provider/patches/shared-oidc-getter.js';

/**
 * The engine reads `ctx.oidc` many times a request; its own getter makes the OIDCContext at the first
 * read and answers that object after (`oidcCtx ||= new OIDCContext(ctx)`). The shared getter
 * (provider/patches/shared-oidc-getter.ts) asks the engine's getter once per request and answers
 * what it made at every read after (its call at every read was the largest frame of ours by
 * instructions on the token path: docs/performance.md, seventeenth passes).
 */
describe('shared-oidc-getter.ts (seventeenth passes)', () => {
  before(() => shareOidcGetter());

  /** A Koa context as ensureOIDC sees it, `oidc` defined as the engine does, with a getter that counts. */
  function engineContext(make: () => unknown) {
    const ctx = { req: {}, res: {} } as { req: object; res: object; oidc?: unknown };
    let calls = 0;
    Object.defineProperty(ctx, 'oidc', {
      get: () => {
        calls += 1;
        return make();
      },
    });
    return { ctx, calls: () => calls };
  }

  it('the engine\'s getter is asked once per context however often ctx.oidc is read, and each context reads its own', () => {
    const one = engineContext(() => ({ made: 'one' }));
    const two = engineContext(() => ({ made: 'two' }));
    const first = one.ctx.oidc;
    for (let i = 0; i < 50; i += 1) assert.equal(one.ctx.oidc, first);
    assert.equal(one.calls(), 1);
    assert.deepEqual(two.ctx.oidc, { made: 'two' });
    assert.equal(two.calls(), 1);
    assert.notEqual(one.ctx.oidc, two.ctx.oidc);
    // Still the engine's shape: an own accessor, shared, not configurable nor enumerable, no setter.
    const descriptor = Object.getOwnPropertyDescriptor(one.ctx, 'oidc')!;
    assert.equal(descriptor.get, Object.getOwnPropertyDescriptor(two.ctx, 'oidc')!.get);
    assert.deepEqual([descriptor.configurable, descriptor.enumerable, descriptor.set], [false, false, undefined]);
    assert.deepEqual(Object.keys(one.ctx), ['req', 'res']);
    assert.throws(() => Object.defineProperty(one.ctx, 'oidc', { get: () => undefined }), TypeError);
  });

  it('a first read that throws, or answers no object, is asked again at the next read, as the engine\'s own would be', () => {
    let attempt = 0;
    const flaky = engineContext(() => {
      attempt += 1;
      if (attempt === 1) throw new Error('not yet');
      if (attempt === 2) return undefined;
      return { made: attempt };
    });
    assert.throws(() => flaky.ctx.oidc, /not yet/);
    assert.equal(flaky.ctx.oidc, undefined);
    assert.deepEqual(flaky.ctx.oidc, { made: 3 });
    assert.deepEqual(flaky.ctx.oidc, { made: 3 });
    assert.equal(flaky.calls(), 3);
  });
});
