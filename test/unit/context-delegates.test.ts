/**
 * http/context-delegates.ts: every one of Koa's context delegates gets a function of its own on
 * the app's context, which reads, writes and calls exactly what Koa's reads, writes and calls.
 */
import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Koa from 'koa';
import { ownContextDelegates } from '../../src/http/context-delegates.js';

// koa/lib/context.js (3.3): what it delegates to the response, then to the request.
const RESPONSE = {
  methods: ['attachment', 'redirect', 'remove', 'vary', 'has', 'set', 'append', 'flushHeaders', 'back'],
  accessors: ['status', 'message', 'body', 'length', 'type', 'lastModified', 'etag'],
  getters: ['headerSent', 'writable'],
};
const REQUEST = {
  methods: ['acceptsLanguages', 'acceptsEncodings', 'acceptsCharsets', 'accepts', 'get', 'is'],
  accessors: ['querystring', 'idempotent', 'socket', 'search', 'method', 'query', 'path', 'url', 'accept'],
  getters: ['origin', 'href', 'subdomains', 'protocol', 'host', 'hostname', 'URL', 'header', 'headers', 'secure', 'stale', 'fresh', 'ips', 'ip'],
};

function contexts() {
  const plain = new Koa();
  const owned = new Koa();
  ownContextDelegates(owned.context);
  const make = (app: Koa) => {
    const req = new IncomingMessage(new Socket());
    Object.assign(req, { method: 'POST', url: '/token/?a=1', headers: { host: 'example.test', 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' } });
    return app.createContext(req, new ServerResponse(req));
  };
  return { plain: make(plain), owned: make(owned), app: owned };
}

describe("Koa's context delegates, a function each", () => {
  it('gives each delegate of the context a function of its own, with the same attributes', () => {
    const { app } = contexts();
    const prototype = Object.getPrototypeOf(app.context) as object;
    for (const name of [...RESPONSE.methods, ...RESPONSE.accessors, ...RESPONSE.getters, ...REQUEST.methods, ...REQUEST.accessors, ...REQUEST.getters]) {
      const own = Object.getOwnPropertyDescriptor(app.context, name);
      const koa = Object.getOwnPropertyDescriptor(prototype, name)!;
      assert.ok(own, `${name} is the context's own`);
      assert.equal(own.enumerable, koa.enumerable, name);
      assert.equal(own.configurable, koa.configurable, name);
      assert.equal(typeof own.set, typeof koa.set, name);
      assert.equal(typeof own.get, typeof koa.get, name);
      for (const kind of ['get', 'set', 'value'] as const) if (koa[kind]) assert.notEqual(own[kind], koa[kind], `${name} ${kind}`);
    }
    // Koa's own methods and accessors (not delegates) stay inherited.
    for (const name of ['inspect', 'toJSON', 'assert', 'throw', 'onerror', 'cookies']) assert.ok(!Object.hasOwn(app.context, name), name);
  });

  it('reads what Koa reads', () => {
    const { owned, app } = contexts();
    const prototype = Object.getPrototypeOf(app.context) as object;
    for (const name of [...REQUEST.accessors, ...REQUEST.getters, ...RESPONSE.accessors, ...RESPONSE.getters]) {
      const koa = Object.getOwnPropertyDescriptor(prototype, name)!.get!.call(owned);
      assert.deepEqual((owned as unknown as Record<string, unknown>)[name], koa, name);
    }
    assert.equal(owned.path, '/token/');
    assert.equal(owned.method, 'POST');
    assert.equal(owned.accept, owned.request.accept);
  });

  it('writes where Koa writes, and calls the same methods on the same objects', () => {
    const { plain, owned } = contexts();
    for (const ctx of [plain, owned]) {
      ctx.status = 201;
      ctx.body = { ok: true };
      ctx.set('X-One', '1');
      ctx.append('X-One', '2');
      ctx.vary('Origin');
      ctx.path = '/other';
      ctx.method = 'GET';
      ctx.type = 'text/plain';
    }
    assert.equal(owned.response.status, 201);
    assert.deepEqual(owned.response.body, { ok: true });
    assert.deepEqual(owned.response.get('X-One'), ['1', '2']);
    assert.deepEqual(owned.response.headers, plain.response.headers);
    assert.equal(owned.request.path, '/other');
    assert.equal(owned.request.method, 'GET');
    assert.equal(owned.get('Host'), 'example.test');
    assert.equal(owned.is('urlencoded'), plain.is('urlencoded'));
    assert.equal(owned.accepts('json'), 'json');
    assert.equal(owned.has('X-One'), true);
    owned.remove('X-One');
    assert.equal(owned.response.get('X-One'), undefined);
  });

  it('leaves alone what is not a delegate, and what the context has already', () => {
    const prototype = {
      get cookies() { return 'own getter'; },
      set stamp(value: unknown) { void value; },
    };
    Object.defineProperty(prototype, 'path', { get() { return (this as { request: { path: string } }).request.path.toUpperCase(); }, enumerable: true, configurable: true });
    const context = Object.create(prototype) as Record<string, unknown>;
    Object.defineProperty(context, 'own', { value: 1 });
    ownContextDelegates(context);
    assert.deepEqual(Object.getOwnPropertyNames(context), ['own']);
  });
});
