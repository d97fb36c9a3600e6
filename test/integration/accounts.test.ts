/**
 * Accounts on a real Redis: argon2id at the configured parameters, re-hashing when they grow,
 * case- and width-insensitive unique usernames, disabled accounts, and the dummy verification
 * that makes an unknown username cost what a wrong password costs.
 */
import assert from 'node:assert/strict';
import argon2 from 'argon2';
import { Accounts, AccountError, claimsFor } from '../../src/accounts/accounts.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

const OWASP = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
const PASSWORD = 'correct horse battery staple';

describe('accounts (redis)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let kv: RedisKv;
  let accounts: Accounts;

  before(async () => {
    redis = await startRedisServer();
    kv = new RedisKv(connect({ url: redis.url, mode: 'standalone', sentinels: [], sentinelName: 'x', clusterNodes: [], keyPrefix: 'acct:', commandTimeout: 2000 }));
    accounts = new Accounts(kv, OWASP);
  });
  after(async () => {
    await kv?.close();
    await redis?.stop();
  });

  it('hashes with argon2id at the configured parameters; sub is opaque, not the username', async () => {
    const account = await accounts.create('carol', PASSWORD, { email: 'carol@example.test' });
    assert.match(account.passwordHash, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    assert.doesNotMatch(account.sub, /carol/i);
    assert.equal((await accounts.verify('carol', PASSWORD))?.sub, account.sub);
    assert.equal(await accounts.verify('carol', 'wrong password'), undefined);
  });

  it('re-hashes a password at its next sign-in when the parameters have grown', async () => {
    await accounts.create('dave', PASSWORD);
    const stronger = new Accounts(kv, { ...OWASP, memoryCost: 24576, timeCost: 3 });
    const upgraded = await stronger.verify('dave', PASSWORD);
    assert.match(upgraded!.passwordHash, /\$m=24576,p=1,t=3\$/);
    assert.match((await accounts.findByUsername('dave'))!.passwordHash, /\$m=24576,p=1,t=3\$/, 'stored');
    // An instance still on the weaker settings verifies the stronger hash and never downgrades it.
    assert.ok(await accounts.verify('dave', PASSWORD));
    assert.match((await accounts.findByUsername('dave'))!.passwordHash, /\$m=24576,p=1,t=3\$/, 'not downgraded');
  });

  it('usernames are unique regardless of case and Unicode width', async () => {
    await accounts.create('Erin', PASSWORD);
    for (const twin of ['erin', 'ERIN', 'ｅｒｉｎ']) {
      await assert.rejects(accounts.create(twin, PASSWORD), AccountError, twin);
    }
    assert.equal((await accounts.verify('ＥＲＩＮ', PASSWORD))?.username, 'Erin');
  });

  it('refuses bad usernames and passwords with a reason', async () => {
    await assert.rejects(accounts.create(' padded', PASSWORD), /spaces/);
    await assert.rejects(accounts.create('a\u0007bell', PASSWORD), /control characters/);
    await assert.rejects(accounts.create('shorty', 'short'), /at least 8/);
    await assert.rejects(accounts.create('huge', 'x'.repeat(2000)), /at most/);
  });

  it('a disabled account cannot sign in, even with the right password', async () => {
    await accounts.create('frank', PASSWORD);
    await accounts.setDisabled('frank', true);
    assert.equal(await accounts.verify('frank', PASSWORD), undefined);
    await accounts.setDisabled('frank', false);
    assert.ok(await accounts.verify('frank', PASSWORD));
  });

  it('an unknown username still costs one argon2 verification, against a hash with our parameters', async () => {
    const verified: string[] = [];
    const original = argon2.verify;
    argon2.verify = async (hash, password, options) => {
      verified.push(hash);
      return original(hash, password, options);
    };
    try {
      assert.equal(await accounts.verify('nobody-by-this-name', PASSWORD), undefined);
    } finally {
      argon2.verify = original;
    }
    assert.equal(verified.length, 1);
    assert.match(verified[0]!, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
  });

  it('claims carry sub and updated_at with the profile', async () => {
    const account = await accounts.create('grace', PASSWORD, { name: 'Grace Hopper', email: 'grace@example.test', email_verified: true });
    const claims = claimsFor(account);
    assert.equal(claims.sub, account.sub);
    assert.equal(claims.name, 'Grace Hopper');
    assert.equal(typeof claims.updated_at, 'number');
  });
});
