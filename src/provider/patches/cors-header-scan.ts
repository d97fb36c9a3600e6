/**
 * The engine's CORS step (oidc-provider lib/shared/cors.js), on the token, introspection, revocation,
 * userinfo and every other CORS route, first looks for an `Access-Control-*` header already set on
 * the response: `Object.keys(ctx.response.headers).find((x) => x.toLowerCase().startsWith('access-control-'))`.
 * Koa's `response.headers` is Node's `getHeaders()`, a copy of every header into a new dictionary
 * object, and each name is lower-cased again: with the security headers every answer starts with
 * (app.ts, about fourteen), about 17 K instructions a request (callgrind, docs/performance.md),
 * where the bare provider has two or three headers at that point.
 *
 * What it changes: nothing in what the engine decides. Each of the engine's CORS steps is given to
 * its router wrapped: the wrapper asks the same question of Node's header names (`getHeaderNames()`:
 * the same names, lower-cased already), and when the answer is no, the engine's step, whose first
 * statement is that scan, reads an empty header object instead of the copy (Koa's `headers` getter
 * answers it once, for that read only, then as before); when the answer is yes, the engine's step
 * reads the real headers, as it does unpatched. Everything else the step does (Vary, the allowed
 * origin, the exposed headers, the client-based check) is the engine's own.
 *
 * The engine's steps are closures its router composes when a provider is built, out of reach
 * afterwards: its Router's registration methods are wrapped, once per process, before any provider
 * is built (provider.ts), and a CORS step is recognised by its source. Pinned by
 * test/unit/provider-patches.test.ts (the step's source, its first read, and that a built
 * provider's token route runs the wrapper and reads no copy of the headers).
 */
import Router from 'oidc-provider/lib/helpers/router.js';
import koaResponse from 'koa/lib/response.js';
import type { ServerResponse } from 'node:http';

type Step = (ctx: { res: ServerResponse }, next: () => Promise<unknown>) => unknown;

/** The engine's CORS step, by what it does first (cors.js's default export). */
const isEngineCors = (step: unknown): step is Step => {
  if (typeof step !== 'function') return false;
  // Spaces and quotes as written or as a transpiler printed them (tsx under the tests).
  const text = Function.prototype.toString.call(step).replace(/\s+/g, '').replaceAll("'", '"');
  return text.includes('=Object.keys(ctx.response.headers);') && text.includes('.startsWith("access-control-")');
};

/** What the engine's scan reads while `scanning`: no header. */
const NO_HEADERS: Record<string, never> = Object.freeze(Object.create(null) as Record<string, never>);
/** Set just before an engine CORS step runs whose scan would find nothing; cleared by its one read. */
let scanning = false;

/** Whether a header whose name starts with `access-control-` is set (names are lower-case in Node). */
function hasAccessControlHeader(res: ServerResponse): boolean {
  const names = res.getHeaderNames();
  for (let i = 0; i < names.length; i += 1) {
    const name = names[i]!;
    if (name.charCodeAt(0) === 0x61 && name.startsWith('access-control-')) return true;
  }
  return false;
}

const wrapped = new WeakMap<Step, Step>();
function wrap(engine: Step): Step {
  let step = wrapped.get(engine);
  if (!step) {
    step = function corsHeaderScan(ctx, next) {
      scanning = !hasAccessControlHeader(ctx.res);
      try {
        return engine(ctx, next);
      } finally {
        scanning = false;
      }
    };
    wrapped.set(engine, step);
  }
  return step;
}

const INSTALLED = Symbol.for('latchkey.corsHeaderScan');

/** Once per process, before any provider is built. */
export function cheaperCorsHeaderScan(): void {
  const router = Router.prototype as unknown as Record<string | symbol, unknown>;
  if (router[INSTALLED]) return;
  const headers = Object.getOwnPropertyDescriptor(koaResponse, 'headers');
  if (typeof headers?.get !== 'function') throw new Error("Koa's response has no headers getter where expected: review src/provider/patches/cors-header-scan.ts");
  const koaHeaders = headers.get;
  Object.defineProperty(koaResponse, 'headers', {
    ...headers,
    get(this: unknown) {
      if (scanning) {
        scanning = false;
        return NO_HEADERS;
      }
      return koaHeaders.call(this) as unknown;
    },
  });
  for (const method of ['get', 'post', 'put', 'delete', 'options']) {
    const register = router[method];
    if (typeof register !== 'function') throw new Error(`oidc-provider's router has no ${method}(): review src/provider/patches/cors-header-scan.ts`);
    router[method] = function (this: unknown, name: string, path: string, ...steps: unknown[]) {
      return (register as (...args: unknown[]) => unknown).call(this, name, path, ...steps.map((step) => (isEngineCors(step) ? wrap(step) : step)));
    };
  }
  router[INSTALLED] = true;
}
