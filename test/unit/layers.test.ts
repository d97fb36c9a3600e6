/**
 * The dispatchers of http/layers.ts and provider/layers.ts: a request meets every layer whose own
 * test can pass on its path, in the declared order, and the unscoped ones always.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { Context, Middleware } from 'koa';
import { Provider } from 'oidc-provider';
import { dispatch, pathKey, scoped, type Scope } from '../../src/http/layers.js';
import { useLayers } from '../../src/provider/layers.js';

/** oidc-provider's router folding (lib/helpers/router.js `fold`), to test against its own rule. */
function fold(value: string): string {
  let out = '';
  for (const char of value) {
    const upper = char.toUpperCase();
    out += upper.length === 1 && !(char.codePointAt(0)! > 127 && upper.codePointAt(0)! < 128) ? upper : char;
  }
  return out;
}
const routerMatches = (path: string, route: string) =>
  fold(path) === fold(route) || (path.length > 1 && path.endsWith('/') && fold(path.slice(0, -1)) === fold(route));

interface Probe {
  readonly name: string;
  readonly scope?: Scope;
  /** The layer's own test: true where it would act. */
  readonly acts: (path: string) => boolean;
}

/** Layers with each kind of own test a scoped layer of Latchkey has. */
const PROBES: Probe[] = [
  { name: 'universal-first', acts: () => true },
  { name: 'exact', scope: { paths: ['/healthz'] }, acts: (path) => path === '/healthz' },
  { name: 'router', scope: { paths: ['/token'] }, acts: (path) => routerMatches(path, '/token') },
  { name: 'regex', scope: { paths: ['/token/introspection'] }, acts: (path) => /^\/token\/introspection\/?$/i.test(path) },
  { name: 'lowered', scope: { paths: ['/device'] }, acts: (path) => path.toLowerCase().replace(/\/$/, '') === '/device' },
  { name: 'root', scope: { paths: ['/', '/favicon.ico'] }, acts: (path) => path === '/' || path === '/favicon.ico' },
  { name: 'resume', scope: { prefixes: ['/auth/', '/device/'] }, acts: (path) => path.startsWith('/auth/') || path.startsWith('/device/') },
  { name: 'authorization', scope: { prefixes: ['/auth'] }, acts: (path) => path === '/auth' || path.startsWith('/auth/') },
  { name: 'under-prefix', scope: { prefixes: ['/Admin'] }, acts: (path) => path.slice(0, 6).toLowerCase() === '/admin' },
  { name: 'universal-middle', acts: () => true },
  { name: 'registration', scope: { prefixes: ['/reg'], paths: ['/reg'] }, acts: (path) => path === '/reg' || path.startsWith('/reg/') },
  { name: 'universal-last', acts: () => true },
];

/** The probes `path` meets through one dispatcher, in the order met. */
async function met(path: string): Promise<string[]> {
  const seen: string[] = [];
  const layers: Middleware[] = PROBES.map(({ name, scope }) => {
    const layer: Middleware = (_ctx, next) => {
      seen.push(name);
      return next();
    };
    return scope ? scoped(scope, layer) : layer;
  });
  let reached = false;
  await dispatch(layers)({ path } as Context, async () => {
    reached = true;
  });
  assert.ok(reached, 'the next middleware is reached');
  return seen;
}

const characters = fc.constantFrom('/', '/', 'a', 'A', 'd', 'D', 'e', 'E', 'g', 'i', 'I', 'k', 'K', 'm', 'n', 'N', 'o', 'r', 's', 't', 'T', 'u', 'h', 'z', 'c', 'v', '.', 'f', '\u212a', '\u0130', '\u017f', '%');
const paths = fc.oneof(
  fc.array(characters, { maxLength: 24 }).map((chars) => `/${chars.join('')}`),
  fc.constantFrom('/token', '/TOKEN', '/token/', '/Token/', '/token//', '/to\u212aen', '/healthz', '/HEALTHZ', '/healthz/', '/device', '/DEVICE/', '/device/abc', '/auth', '/AUTH/x', '/auth/', '/admin', '/ADMIN/x', '/adm', '/reg', '/reg/x', '/', '//', '/favicon.ico'),
);

describe('layers: dispatch by path', () => {
  it('every layer whose own test passes is met, in the declared order; unscoped ones always', async () => {
    await fc.assert(
      fc.asyncProperty(paths, async (path) => {
        const seen = await met(path);
        const order = PROBES.map((probe) => probe.name);
        assert.deepEqual(seen, order.filter((name) => seen.includes(name)), `order for ${path}`);
        for (const probe of PROBES) {
          if (probe.acts(path)) assert.ok(seen.includes(probe.name), `${probe.name} missed ${JSON.stringify(path)}`);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('skips the layers that cannot act on a path', async () => {
    assert.deepEqual(await met('/token'), ['universal-first', 'router', 'universal-middle', 'universal-last']);
    assert.deepEqual(await met('/elsewhere'), ['universal-first', 'universal-middle', 'universal-last']);
    assert.deepEqual(await met('/auth/abc'), ['universal-first', 'resume', 'authorization', 'universal-middle', 'universal-last']);
  });

  it('keys a path as oidc-provider matches it: any case, one trailing slash', () => {
    assert.equal(pathKey('/Token/'), '/token');
    assert.equal(pathKey('/token//'), '/token/');
    assert.equal(pathKey('/'), '/');
  });

  it('refuses scopes it cannot keep exactly', () => {
    assert.throws(() => scoped({ paths: ['/token/'] }, (_ctx: never, _next: never) => undefined), /trailing slash/);
    assert.throws(() => scoped({ paths: ['/t\u00f6ken'] }, (_ctx: never, _next: never) => undefined), /ASCII/);
    assert.throws(() => dispatch([scoped({ routes: ['token'] }, (_ctx, next) => next())]), /route names/);
  });
});

describe('layers: the provider dispatcher against its router', () => {
  let provider: Provider;
  let url: string;
  let close: () => void;
  const seen: { path: string; route: string | undefined; scoped: boolean }[] = [];

  before(async () => {
    provider = new Provider('http://localhost:1', { features: { devInteractions: { enabled: false }, introspection: { enabled: true }, revocation: { enabled: true } } });
    let visited = false;
    useLayers(provider, [
      async (ctx, next) => {
        visited = false;
        await next();
        seen.push({ path: ctx.path, route: (ctx as { oidc?: { route?: string } }).oidc?.route, scoped: visited });
      },
      scoped({ routes: ['token', 'introspection', 'revocation'] }, (_ctx, next) => {
        visited = true;
        return next();
      }),
    ]);
    const server = createServer(provider.callback());
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  after(() => close?.());

  it('every request the router serves as a scoped route meets the scoped layer, in any case and with a trailing slash', async () => {
    const variants = ['/token', '/TOKEN', '/token/', '/Token/', '/token//', '/tokenx', '/to\u212aen', '/token/introspection', '/TOKEN/INTROSPECTION/', '/token/revocation/', '/token/Revocation'];
    for (const path of variants) {
      for (const method of ['POST', 'OPTIONS', 'GET']) await fetch(`${url}${encodeURI(path)}`, { method, headers: { origin: 'https://a.example' } });
    }
    const served = seen.filter(({ route }) => route && /^(cors\.)?(token|introspection|revocation)$/.test(route));
    assert.ok(served.length >= 8 * 2, `the router served the variants (${served.length})`);
    for (const request of served) assert.ok(request.scoped, `${request.path} (${request.route}) skipped the scoped layer`);
    // And a path the router does not serve as those routes does not meet it.
    for (const request of seen.filter(({ path }) => path === '/tokenx' || path === '/token//')) assert.equal(request.scoped, false, request.path);
  });

  it('refuses a route name it does not know (a typo would skip the layer everywhere)', () => {
    assert.throws(() => useLayers(provider, [scoped({ routes: ['tokne'] }, (_ctx, next) => next())]), /unknown route/);
  });
});
