/**
 * Which credentials signed a session in, in a real Redis: two sign-ins finishing at once on one
 * session both count (the record is added to, never read, merged and written back), a record
 * written in the former layout (one merged JSON) is still read, and a credential removed during the
 * sign-in's own resume (after its check, before its record) ends the session it signed in.
 *
 * The race is driven through the resume middleware with the engine's parts it reads stood in for
 * (no black-box request can land a removal between two steps of one resume); the store is real.
 */
import assert from 'node:assert/strict';
import type { Provider } from 'oidc-provider';
import type { Context } from 'koa';
import { CREDENTIAL_RESULT, SessionCredentials, type SessionCredential } from '../../src/accounts/session-credentials.js';
import { backends, type OpenBackend } from '../helpers/backends.js';

const redis = backends.find((backend) => backend.name === 'single redis-server')!;

describe('session credentials (real Redis)', function () {
  this.timeout(20_000);
  let store: OpenBackend;
  let credentials: SessionCredentials;

  before(async () => {
    store = await redis.open();
    credentials = new SessionCredentials(store.kv, 3600);
  });
  after(() => store?.stop());

  it('two sign-ins recorded at once on one session: both are kept', async () => {
    await Promise.all([
      credentials.record('session-race', { methods: ['federated'], links: ['corp:person-1'] }),
      credentials.record('session-race', { methods: ['password', 'passkey-synced'], passkeys: ['key-1'] }),
    ]);
    const both = await credentials.of('session-race');
    assert.deepEqual(new Set(both?.methods), new Set(['federated', 'password', 'passkey-synced']));
    assert.deepEqual(both?.links, ['corp:person-1']);
    assert.deepEqual(both?.passkeys, ['key-1']);
    assert.equal(await credentials.of('session-never-signed-in'), undefined);
  });

  it('a record in the former layout is read, and merged with later sign-ins', async () => {
    await store.kv.set('session-credential:session-former', JSON.stringify({ methods: ['password', 'passkey-synced'], passkeys: ['key-old'] }), { ttl: 3600 });
    assert.deepEqual(await credentials.of('session-former'), { methods: ['password', 'passkey-synced'], passkeys: ['key-old'] });
    await credentials.record('session-former', { methods: ['federated'], links: ['corp:person-2'] });
    const merged = await credentials.of('session-former');
    assert.deepEqual(new Set(merged?.methods), new Set(['password', 'passkey-synced', 'federated']));
    assert.deepEqual(merged?.passkeys, ['key-old']);
    assert.deepEqual(merged?.links, ['corp:person-2']);
  });

  it('a credential removed during the resume that signs a session in with it: once recorded, the session is ended', async () => {
    const credential: SessionCredential = { methods: ['passkey-synced'], passkeys: ['stolen'] };
    const result = { login: { accountId: 'person-1' }, [CREDENTIAL_RESULT]: credential };
    // The engine's parts the middleware reads: its paths, the resume cookie, the interaction.
    const provider = {
      pathFor: (name: string) => (name === 'authorization' ? '/auth' : '/device'),
      cookieName: () => '_interaction_resume',
      Interaction: { find: async () => ({ result, persist: async () => {} }) },
    } as unknown as Provider;
    // Held at the check before the engine runs; removed by the time the sign-in is recorded.
    let removed = false;
    const checked = new SessionCredentials(store.kv, 3600, async () => !removed);
    const ended: string[] = [];
    const ctx = { path: '/auth/interaction-1', cookies: { get: () => 'interaction-1' }, oidc: { result, session: { uid: 'session-removed', accountId: 'person-1' } } } as unknown as Context;
    await checked.recordAtSignIn(provider, async (uid) => void ended.push(uid))(ctx, async () => {
      removed = true;
    });
    assert.deepEqual(ended, ['session-removed'], 'the session is ended');
    assert.deepEqual(await checked.of('session-removed'), credential, 'after its record was written (so a removal after this finds it)');

    const kept: string[] = [];
    const still = { ...ctx, oidc: { result, session: { uid: 'session-kept', accountId: 'person-1' } } } as unknown as Context;
    await new SessionCredentials(store.kv, 3600, async () => true).recordAtSignIn(provider, async (uid) => void kept.push(uid))(still, async () => {});
    assert.deepEqual(kept, [], 'a credential still held ends nothing');
  });
});
