/**
 * One live device code per user code (RFC 8628 §3.3: the code the person types is all that ties
 * their approval to their device). oidc-provider draws a user code at random and saves it without
 * checking it is free; the store's index of user codes was overwritten by the later code, so a
 * person typing the code their device showed was shown, and approved, another device that had
 * drawn the same code: its client's name could be the same app's, the code the same, and that
 * device got the person's tokens. Each device authorization is a guess no user-code throttle
 * counts (store/adapter.ts UserCodeTaken).
 *
 * Now the store refuses a new device code whose user code a live one holds, and the device
 * authorization draws another (a few times at most, then the error is answered), and the
 * answer's `user_code` and `verification_uri_complete` are the code that was saved.
 * Pinned by test/integration/adapter.test.ts and test/unit/provider-patches.test.ts.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Provider } from 'oidc-provider';
import { generate, normalize } from 'oidc-provider/lib/helpers/user_codes.js';
import { scoped } from '../../http/layers.js';
import { UserCodeTaken } from '../../store/adapter.js';
import { engineRequest } from '../../store/engine-request.js';

/** Draws after the first: with 20^8 codes, a fifth taken one in a row is no chance but a store in trouble. */
const REDRAWS = 4;
const REDRAWN = Symbol('latchkey.redrawn-user-code');

type Saving = { userCode?: string };

export function uniqueUserCodes(provider: Provider, charset: string, mask: string): Middleware {
  const DeviceCode = provider.DeviceCode as unknown as { prototype: { save(this: Saving, ...args: unknown[]): Promise<unknown> } };
  const save = DeviceCode.prototype.save;
  if (typeof save !== 'function') throw new Error('oidc-provider DeviceCode#save is gone: review src/provider/patches/unique-user-codes.ts');
  DeviceCode.prototype.save = async function (this: Saving, ...args: unknown[]) {
    const ctx = engineRequest() as unknown as (Context & { oidc?: { route?: string } }) | undefined;
    for (let draws = 0; ; draws += 1) {
      try {
        return await save.apply(this, args);
      } catch (err) {
        if (!(err instanceof UserCodeTaken) || draws >= REDRAWS || ctx?.oidc?.route !== 'device_authorization') throw err;
        const code = generate(charset, mask);
        this.userCode = normalize(code);
        (ctx.state as Record<symbol, string>)[REDRAWN] = code;
      }
    }
  };

  // The engine answers with the code it drew first: the answer names the one saved.
  return scoped({ routes: ['device_authorization'] }, async (ctx: Context, next: Next) => {
    await next();
    const code = (ctx.state as Record<symbol, string | undefined>)[REDRAWN];
    const body = ctx.body as Record<string, unknown> | undefined;
    if (code === undefined || ctx.status !== 200 || typeof body?.verification_uri_complete !== 'string') return;
    const complete = new URL(body.verification_uri_complete);
    complete.searchParams.set('user_code', code);
    ctx.body = { ...body, user_code: code, verification_uri_complete: complete.href };
  });
}
