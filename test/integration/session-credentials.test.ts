/**
 * Which credentials signed a session in, in a real Redis: two sign-ins finishing at once on one
 * session both count (the record is added to, never read, merged and written back), and a record
 * written in the former layout (one merged JSON) is still read.
 */
import assert from 'node:assert/strict';
import { SessionCredentials } from '../../src/accounts/session-credentials.js';
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
});
