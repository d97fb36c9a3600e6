/**
 * Accounts on a real Redis: argon2id at the configured parameters, re-hashing when they grow,
 * case- and width-insensitive unique usernames, disabled accounts, and the dummy verification
 * that makes an unknown username cost what a wrong password costs.
 */
import assert from 'node:assert/strict';
import argon2 from 'argon2';
import { Accounts, AccountError, claimsFor, untilEndingPassed } from '../../src/accounts/accounts.js';
import { RevocationList } from '../../src/revocation/list.js';
import { Argon2Slots } from '../../src/accounts/argon2-slots.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { delegate } from '../../src/store/delegate.js';
import type { Kv } from '../../src/store/kv.js';
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

  it('two sign-ins at once that both re-hash the password both sign in (the second finds the first one\'s hash)', async () => {
    await accounts.create('dora', PASSWORD);
    const stronger = new Accounts(kv, { ...OWASP, memoryCost: 24576, timeCost: 3 });
    const [first, second] = await Promise.all([stronger.verify('dora', PASSWORD), stronger.verify('dora', PASSWORD)]);
    assert.ok(first, 'the first sign-in');
    assert.ok(second, 'the second sign-in, whose re-hash lost the race');
    assert.match((await accounts.findByUsername('dora'))!.passwordHash, /\$m=24576,p=1,t=3\$/, 'stored');
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

  it('refuses lookalikes of an existing username: invisible characters with their own line, confusables naming the code point', async () => {
    await accounts.create('alice', PASSWORD);
    const before = (await accounts.list()).length;
    await assert.rejects(accounts.create('ali\u200bce', PASSWORD), { message: 'a username cannot contain invisible or text-direction characters (found U+200B)' });
    await assert.rejects(accounts.create('\u202ealice', PASSWORD), /invisible or text-direction characters \(found U\+202E\)/);
    for (const [lookalike, code] of [['аlice', 'U+0430'], ['alıce', 'U+0131'], ['a1ice', ''], ['aIice', '']] as const) {
      await assert.rejects(accounts.create(lookalike, PASSWORD), (error: AccountError) => {
        assert.ok(error instanceof AccountError && error.conflict);
        assert.match(error.message, new RegExp(`^the username "${lookalike}" looks like the existing username "alice"${code ? ` \\(it has ${code.replace('+', '\\+')}\\)` : ''}; choose one that does not$`));
        return true;
      });
    }
    assert.equal((await accounts.list()).length, before, 'no account was made');
    assert.equal(await accounts.findByUsername('аlice'), undefined, 'a lookalike does not find alice');
    // Removing alice frees her name and its lookalikes.
    await accounts.remove('alice');
    const cyrillic = await accounts.create('аlice', PASSWORD);
    assert.equal((await accounts.findByUsername('аlice'))?.sub, cyrillic.sub);
    await accounts.remove('аlice');
  });

  it('of lookalikes created at the same time, exactly one becomes an account', async () => {
    const names = ['quinn', 'QUINN', 'qu\u0456nn' /* Cyrillic і */, 'quınn', 'ｑｕｉｎｎ'];
    const outcomes = await Promise.allSettled(names.map((name) => accounts.create(name, PASSWORD)));
    assert.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 1, JSON.stringify(outcomes.map((o) => o.status)));
    for (const outcome of outcomes) if (outcome.status === 'rejected') assert.ok(outcome.reason instanceof AccountError && outcome.reason.conflict);
  });

  it('accounts made before PRECIS (keyed by NFKC + lowercase) still sign in, and their lookalikes are refused', async () => {
    // The layout an earlier version wrote, on a store of its own.
    const legacy = new RedisKv(connect({ url: redis.url, mode: 'standalone', sentinels: [], sentinelName: 'x', clusterNodes: [], keyPrefix: 'legacy:', commandTimeout: 2000 }));
    try {
      const old = { sub: 'old-sub-1', username: 'Ｍallory', passwordHash: await argon2.hash(PASSWORD, { type: argon2.argon2id, ...OWASP }), disabled: false, claims: {}, updatedAt: 1 };
      await legacy.set(`account:${old.sub}`, JSON.stringify(old));
      await legacy.set('account:name:mallory', old.sub);
      await legacy.addToSet('accounts', old.sub);
      const upgraded = new Accounts(legacy, OWASP);
      assert.equal((await upgraded.verify('MALLORY', PASSWORD))?.sub, old.sub, 'found by the enforced form');
      assert.equal((await upgraded.verify('ｍａｌｌｏｒｙ', PASSWORD))?.sub, old.sub);
      // The sign-in's read: the account with the person's other records, by the username's index (one script).
      await legacy.set(`mfa:${old.sub}`, '{"passkeys":[]}');
      const found = await upgraded.findByUsernameWith('ｍａｌｌｏｒｙ', ['mfa:', 'nothing:']);
      assert.deepEqual({ sub: found?.sub, username: found?.account?.username, values: found?.values }, { sub: old.sub, username: old.username, values: ['{"passkeys":[]}', undefined] });
      assert.equal(await upgraded.findByUsernameWith('nobody-here', ['mfa:']), undefined);
      await assert.rejects(upgraded.create('mallory', PASSWORD), /is taken/);
      await assert.rejects(upgraded.create('rnallory', PASSWORD), /looks like the existing username "Ｍallory"/);
      await assert.rejects(upgraded.create('maIlory', PASSWORD), /looks like/);
      assert.equal((await upgraded.list()).length, 1);
    } finally {
      await legacy.close();
    }
  });

  it('a disabled account cannot sign in, even with the right password', async () => {
    await accounts.create('frank', PASSWORD);
    await accounts.setDisabled('frank', true);
    assert.equal(await accounts.verify('frank', PASSWORD), undefined);
    await accounts.setDisabled('frank', false);
    assert.ok(await accounts.verify('frank', PASSWORD));
  });

  describe('an operator\'s write during a slower one of the person\'s (a thief\'s) is kept', () => {
    const endings = { revokeSubject: async () => true };
    /** kv, on which `operator` runs once, just before the first write to the account of `sub`: the operator's write lands in the other's window. */
    function racing(sub: string, operator: () => Promise<unknown>): Kv {
      let pending: (() => Promise<unknown>) | undefined = operator;
      const hold = async (key: string) => {
        if (key !== `account:${sub}` || !pending) return;
        const run = pending;
        pending = undefined;
        await run();
      };
      return delegate(kv as Kv, (name, method) =>
        name === 'set' || name === 'compareAndSet' ? async (...args: unknown[]) => (await hold(args[0] as string), method.apply(kv, args)) : undefined,
      );
    }

    it('a password change by the person (verified, then hashed) does not undo a disable, its cutoff or a password an operator set meanwhile', async () => {
      for (const operator of ['disable', 'passwd'] as const) {
        const username = `race-${operator}`;
        const { sub } = await accounts.create(username, PASSWORD);
        const act = () => (operator === 'disable' ? accounts.setDisabled(username, true, endings) : accounts.setPassword(username, 'the operator s new passphrase', endings));
        const thief = new Accounts(racing(sub, act), OWASP);
        const changed = await thief.changePassword(sub, PASSWORD, 'the thief s own passphrase');
        const stored = (await accounts.find(sub))!;
        assert.equal(changed, false, `${operator}: the change is refused`);
        assert.equal(typeof stored.endedAt, 'number', `${operator}: the cutoff is kept`);
        assert.equal(stored.disabled, operator === 'disable', `${operator}: disabled as the operator left it`);
        assert.equal(await accounts.verify(username, 'the thief s own passphrase'), undefined, `${operator}: the thief's password was not written`);
        if (operator === 'passwd') assert.ok(await accounts.verify(username, 'the operator s new passphrase'), 'the operator\'s password holds');
      }
    });

    it('a re-hash at sign-in and an upstream\'s claims do not undo a disable and its cutoff made meanwhile', async () => {
      const { sub } = await new Accounts(kv, { ...OWASP, memoryCost: 8192 }).create('race-rehash', PASSWORD);
      const rehashing = new Accounts(racing(sub, () => accounts.setDisabled('race-rehash', true, endings)), OWASP);
      assert.equal(await rehashing.verify('race-rehash', PASSWORD), undefined, 'no sign-in of a person disabled meanwhile');
      let stored = (await accounts.find(sub))!;
      assert.equal(stored.disabled, true);
      assert.equal(typeof stored.endedAt, 'number');

      const { sub: other } = await accounts.create('race-claims', PASSWORD);
      const upstream = new Accounts(racing(other, () => accounts.setDisabled('race-claims', true, endings)), OWASP);
      assert.deepEqual((await upstream.updateClaims(other, { name: 'Renamed' }))?.claims, { name: 'Renamed' });
      stored = (await accounts.find(other))!;
      assert.equal(stored.disabled, true, 'still disabled');
      assert.equal(typeof stored.endedAt, 'number', 'the cutoff is kept');
      assert.deepEqual(stored.claims, { name: 'Renamed' }, 'and the claims written');
    });
  });

  it('once a disable has waited (untilEndingPassed), what the person is issued next is past every entry it wrote, the list\'s entry written after the cutoff\'s second included', async () => {
    const list = new RevocationList(kv, { skew: 15, accessTokenLifetime: 900 });
    const { sub } = await accounts.create('late-entry', PASSWORD);
    let calls = 0;
    // The second entry (written after the account) lands in the next second, as it does when the second turns between the two writes.
    const endings = {
      revokeSubject: async (who: string) => {
        calls += 1;
        if (calls === 2) await new Promise((done) => setTimeout(done, 1000 - (Date.now() % 1000) + 5));
        return list.revokeSubject(who);
      },
    };
    const disabled = await accounts.setDisabled('late-entry', true, endings);
    await untilEndingPassed(disabled);
    const enabled = await accounts.setDisabled('late-entry', false);
    await untilEndingPassed(enabled);
    // A token issued to the person now, under a new grant (a sign-in after `users enable`).
    const issuedNow = { jti: 'after-enable', gid: 'a-new-grant', sub, client_id: 'some-app', iat: Math.floor(Date.now() / 1000) };
    assert.equal(await list.isRevoked(issuedNow), false, 'a new token of the enabled person is not on the list');
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

  it('makes its dummy hash at the first verification, whatever the username, once: holding Accounts (a CLI command, a helper) hashes nothing', async () => {
    const hashed: string[] = [];
    const verified: string[] = [];
    const [originalHash, originalVerify] = [argon2.hash, argon2.verify];
    argon2.hash = ((...args: Parameters<typeof argon2.hash>) => {
      hashed.push(String(args[0]));
      return originalHash(...args);
    }) as typeof argon2.hash;
    argon2.verify = async (hash, password, options) => {
      verified.push(hash);
      return originalVerify(hash, password, options);
    };
    try {
      await accounts.create('ivan', PASSWORD);
      hashed.length = 0;
      const fresh = new Accounts(kv, OWASP);
      assert.equal((await fresh.findByUsername('ivan'))?.username, 'ivan');
      assert.deepEqual(hashed, [], 'made and used, never verifying: no hash');
      assert.equal((await fresh.verify('ivan', PASSWORD))?.username, 'ivan', 'a known username first');
      assert.equal(hashed.length, 1, 'the dummy hash, made for the first verification though the username was known');
      assert.equal(await fresh.verify('nobody-by-this-name', PASSWORD), undefined);
      assert.equal(await fresh.verify('ivan', 'a wrong password, long enough'), undefined);
      assert.equal(hashed.length, 1, 'made once');
      assert.equal(verified.length, 3, 'one verification each, known or not');
      assert.match(verified[1]!, /^\$argon2id\$v=19\$m=19456,p=1,t=2\$/, 'the unknown username against the dummy hash');
    } finally {
      [argon2.hash, argon2.verify] = [originalHash, originalVerify];
    }
  });

  it('runs no more argon2 verifications at once than it has slots: sign-ins beyond them wait their turn', async () => {
    await accounts.create('heidi', PASSWORD);
    const oneSlot = new Accounts(kv, OWASP, new Argon2Slots(1));
    let running = 0;
    let peak = 0;
    const original = argon2.verify;
    argon2.verify = async (hash, password, options) => {
      running += 1;
      peak = Math.max(peak, running);
      try {
        return await original(hash, password, options);
      } finally {
        running -= 1;
      }
    };
    try {
      const results = await Promise.all([
        oneSlot.verify('heidi', PASSWORD),
        oneSlot.verify('heidi', 'wrong password'),
        oneSlot.verify('nobody-by-this-name', PASSWORD),
        oneSlot.verify('heidi', PASSWORD),
      ]);
      assert.deepEqual(
        results.map((account) => account?.username),
        ['heidi', undefined, undefined, 'heidi'],
      );
    } finally {
      argon2.verify = original;
    }
    assert.equal(peak, 1);
  });

  it('claims carry sub and updated_at with the profile', async () => {
    const account = await accounts.create('grace', PASSWORD, { name: 'Grace Hopper', email: 'grace@example.test', email_verified: true });
    const claims = claimsFor(account);
    assert.equal(claims.sub, account.sub);
    assert.equal(claims.name, 'Grace Hopper');
    assert.equal(typeof claims.updated_at, 'number');
  });
});
