/**
 * The APIs and grants store (src/apis/) on every store: two instances (as two servers, or the CLI
 * and a server) see each other's changes at once, also when each keeps them in memory
 * (cachingRedis); concurrent grants lose nothing; removing an API takes its grants with it;
 * configured APIs and grants are merged in and cannot be changed here; a revocation of what the
 * API or the client does not have is refused, not answered as done.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ApiError, Apis } from '../../src/apis/apis.js';
import { backends, cachingRedis, type OpenBackend } from '../helpers/backends.js';
import { eventually } from '../helpers/eventually.js';

const CONFIGURED = 'https://configured.example.test';
const BUILTIN = 'https://id.example.test/admin';

for (const backend of [...backends, cachingRedis]) {
  describe(`APIs and grants: ${backend.name}`, function () {
    this.timeout(30_000);
    let open: OpenBackend;
    let one: Apis;
    let two: Apis;

    before(async () => {
      open = await backend.open();
      const options = {
        builtin: [{ identifier: BUILTIN, scopes: ['admin'], format: 'opaque' as const, privileged: true }],
        configured: [{ identifier: CONFIGURED, scopes: ['read', 'write'], format: 'jwt' as const, grants: [{ client_id: 'svc', scopes: ['read'] }] }],
        maxAccessTokenTTL: 900,
      };
      one = new Apis(open.kv, options);
      two = new Apis(open.second ?? open.kv, options);
      if (backend === cachingRedis) {
        // Both caches subscribed to their invalidations, so that the tests meet kept entries.
        await eventually(async () => assert.equal(String(await open.raw!.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).match(/ sub=1 /g)?.length, 2));
      }
    });
    after(async () => open?.stop());

    it('an API added by one instance is seen by the other; a grant too, and its revocation', async () => {
      const api = `https://api-${randomUUID()}.example.test`;
      await one.add({ identifier: api, scopes: ['a', 'b'] });
      assert.deepEqual((await two.find(api))?.scopes, ['a', 'b']);
      await two.grant('svc', api, { scopes: ['a'] });
      assert.deepEqual((await one.grantAt('svc', api))?.scopes, ['a']);
      await one.revoke('svc', api);
      assert.equal(await two.grantAt('svc', api), undefined);
    });

    it("grants and APIs read again unchanged are the same frozen values; another instance's change is seen at the next read", async () => {
      const api = `https://api-${randomUUID()}.example.test`;
      await one.add({ identifier: api, scopes: ['a', 'b'] });
      await one.grant('svc', api, { scopes: ['a'] });
      const first = await two.grantsOf('svc');
      assert.equal(await two.grantsOf('svc'), first);
      assert.equal(await two.find(api), await two.find(api));
      // Shared by every caller: none can change what the next one reads.
      assert.throws(() => (first[api]!.scopes as string[]).push('b'), TypeError);
      assert.throws(() => ((first as Record<string, unknown>)[api] = undefined), TypeError);
      await one.grant('svc', api, { scopes: ['b'] });
      await eventually(async () => assert.deepEqual((await two.grantsOf('svc'))[api]?.scopes, ['a', 'b']));
      assert.deepEqual((await two.grantsOf('svc'))[CONFIGURED]?.scopes, ['read']);
    });

    it('concurrent grants to one client from two instances are all kept', async () => {
      const client = `c-${randomUUID()}`;
      const apis = await Promise.all([0, 1, 2, 3, 4, 5].map(async (n) => {
        const identifier = `https://api-${n}-${randomUUID()}.example.test`;
        await one.add({ identifier, scopes: ['x'] });
        return identifier;
      }));
      await Promise.all(apis.map((identifier, n) => (n % 2 ? one : two).grant(client, identifier, { scopes: ['x'] })));
      assert.deepEqual(Object.keys(await one.grantsOf(client)).sort(), [...apis].sort());
    });

    it('removing an API removes every grant at it, so re-adding it starts with none; a default moves, one per client', async () => {
      const api = `https://gone-${randomUUID()}.example.test`;
      await one.add({ identifier: api, scopes: ['x'] });
      await one.grant('a', api, { scopes: ['x'], default: true });
      assert.equal(await two.defaultApiOf('a'), api);
      await one.grant('a', CONFIGURED, { scopes: ['write'], default: true });
      assert.equal(await two.defaultApiOf('a'), CONFIGURED, 'the newer default replaces the older');
      await two.remove(api);
      await one.add({ identifier: api, scopes: ['x'] });
      assert.equal(await one.grantAt('a', api), undefined);
      await one.remove(api);
    });

    it('configured and built-in APIs: listed with their source, granted like others, never removed or redefined here', async () => {
      const sources = Object.fromEntries((await one.list()).map((api) => [api.identifier, api.source]));
      assert.equal(sources[CONFIGURED], 'config');
      assert.equal(sources[BUILTIN], 'builtin');
      assert.deepEqual((await one.grantAt('svc', CONFIGURED))?.scopes, ['read'], 'a grant from the configuration');
      await assert.rejects(one.revoke('svc', CONFIGURED), (error: Error) => error instanceof ApiError && error.status === 409, 'a configured grant is not revoked here');
      await one.grant('svc', CONFIGURED, { scopes: ['write'] });
      assert.deepEqual([...(await two.grantAt('svc', CONFIGURED))!.scopes].sort(), ['read', 'write'], 'merged with the stored one');
      for (const change of [() => one.remove(CONFIGURED), () => one.remove(BUILTIN), () => one.add({ identifier: CONFIGURED }), () => one.add({ identifier: BUILTIN })]) {
        await assert.rejects(change(), (error: Error) => error instanceof ApiError && error.status === 409);
      }
    });

    it('refuses a scope the API lacks, an unknown API, a lifetime beyond the bound, and a malformed or overlong identifier', async () => {
      await assert.rejects(one.grant('svc', CONFIGURED, { scopes: ['delete'] }), (error: Error) => error instanceof ApiError && error.status === 400);
      await assert.rejects(one.grant('svc', 'https://nowhere.example.test', { scopes: [] }), (error: Error) => error instanceof ApiError && error.status === 404);
      await assert.rejects(one.add({ identifier: 'https://long.example.test', accessTokenTTL: 901 }), (error: Error) => error instanceof ApiError && error.status === 400);
      // What the URL parser mends (spaces and controls dropped or escaped) is no URI (RFC 3986) either:
      // stored as sent, it was the identifier (the `aud`) of tokens (bad input and blips, tenth pass).
      for (const identifier of ['not a uri', 'https://x.example.test/#frag', ' https://x.example.test', 'https://x.example.test/\u0000', 'https://x.example.test/a b', 'https://x.example.test/\n', 'https://bücher.example.test']) {
        await assert.rejects(one.add({ identifier }), (error: Error) => error instanceof ApiError && error.status === 400 && /not an absolute URI/.test(error.message), JSON.stringify(identifier));
      }
      const long = `https://x.example.test/${'a'.repeat(500)}`;
      await assert.rejects(one.add({ identifier: long }), (error: Error) => error instanceof ApiError && error.status === 400 && error.message.includes('at most 512 characters'), 'an identifier of 523 characters');
      await assert.rejects(one.add({ identifier: 'https://bad-scope.example.test', scopes: ['a b'] }), ApiError);
    });

    it('revoking refuses a scope the API lacks, as granting does, and one the client does not hold or a grant it lacks: nothing changed, never answered as done', async () => {
      const api = `https://api-${randomUUID()}.example.test`;
      await one.add({ identifier: api, scopes: ['read', 'write'] });
      await one.grant('typo', api, { scopes: ['read'] });
      await assert.rejects(one.revoke('typo', api, ['wirte']), (error: Error) => error instanceof ApiError && error.status === 400 && /has no scope wirte/.test(error.message));
      await assert.rejects(one.revoke('typo', api, ['read', 'write']), (error: Error) => error instanceof ApiError && error.status === 404 && /holds no scope write/.test(error.message));
      await assert.rejects(one.revoke('typo', 'https://nowhere.example.test', ['read']), (error: Error) => error instanceof ApiError && error.status === 404);
      await assert.rejects(one.revoke('nobody', api, ['read']), (error: Error) => error instanceof ApiError && error.status === 404);
      assert.deepEqual((await two.grantAt('typo', api))?.scopes, ['read'], 'nothing changed');
      assert.deepEqual(await one.revoke('typo', api, ['read']), { scopes: [] });
    });
  });
}
