/**
 * What the sweep reads back of an owed ending (accounts/owed-endings.ts): each kind as kept (an API's removal and a client's deletion too),
 * never something else; and which sessions each kind of removal ends, by their recorded credential
 * or, for sessions older than those records, by their amr (an operator's reset of every second factor too).
 */
import assert from 'node:assert/strict';
import { OwedEndings, signedInWith, type OwedEnding } from '../../src/accounts/owed-endings.js';

/** As DueEndings.owe keeps it: the ending's JSON, with a random part. */
const kept = (ending: object) => JSON.stringify({ ...ending, r: 'abcdefgh' });

describe('owed endings', () => {
  it('reads back every kind as kept', () => {
    const endings: OwedEnding[] = [
      { sub: 'alice', except: 'uid-1', changed: { kind: 'passkey', id: 'credential-1' } },
      { sub: 'alice', except: 'uid-1', changed: { kind: 'totp' } },
      { sub: 'alice', except: 'uid-1', changed: { kind: 'recovery-codes' } },
      { sub: 'alice', except: 'uid-1', changed: { kind: 'link', id: 'corp:12345' } },
      { sub: 'alice', except: 'uid-1', changed: { kind: 'password' } },
      // An operator's: no session of the person's is spared.
      { sub: 'alice', changed: { kind: 'second-factors' } },
      { upstream: 'corp' },
      // An API's removal, a client's deletion: their tokens.
      { api: 'https://api.example.test' },
      { client: 'app-1' },
      { clientGrants: 'svc', from: { 'https://api.example.test': { scopes: ['read', 'write'], introspect: true } }, to: { 'https://api.example.test': { scopes: ['read'], introspect: true } } },
      { clientGrants: 'svc', from: { 'https://api.example.test': { scopes: ['read'] } }, to: {} },
      // A person's ending: every token of theirs, or of theirs for one client.
      { personEnded: 'alice' },
      { personEnded: 'alice', withdrawnFrom: 'app-1' },
      { client: 'app-1', from: { client_id: 'app-1', client_secret_digest: 'a' }, to: { client_id: 'app-1', client_secret_digest: 'b' } },
    ];
    for (const ending of endings) assert.deepEqual(OwedEndings.parse(kept(ending)), ending);
  });

  it('reads nothing from what is not an owed ending: the sweep drops it, ending nothing', () => {
    for (const member of [
      'not json',
      '[]',
      'null',
      kept({ except: 'uid-1', changed: { kind: 'totp' } }),
      kept({ sub: 'alice', except: 7, changed: { kind: 'totp' } }),
      kept({ sub: 'alice', except: 'uid-1' }),
      kept({ upstream: 7 }),
      kept({ upstream: ['corp'] }),
      kept({ api: 7 }),
      kept({ client: null }),
      kept({ api: 'https://api.example.test', sub: 'alice' }),
      kept({ r: 'only' }),
      kept({ client: 'app-1', from: { client_id: 'app-1' } }),
      kept({ client: 'app-1', from: 'app-1', to: { client_id: 'app-1' } }),
      kept({ client: 'app-1', from: [], to: { client_id: 'app-1' } }),
      kept({ clientGrants: 'svc', from: { 'https://api.example.test': { scopes: ['read'] } } }),
      kept({ clientGrants: 'svc', from: { 'https://api.example.test': { scopes: 'read' } }, to: {} }),
      kept({ clientGrants: 'svc', from: { 'https://api.example.test': null }, to: {} }),
      kept({ clientGrants: 7, from: {}, to: {} }),
      kept({ personEnded: 7 }),
      kept({ personEnded: 'alice', withdrawnFrom: 7 }),
      kept({ sub: 'alice', except: 'uid-1', changed: { kind: 'everything' } }),
      kept({ sub: 'alice', except: 'uid-1', changed: { kind: 'passkey' } }),
      kept({ sub: 'alice', except: 'uid-1', changed: { kind: 'link', id: 7 } }),
      kept({ sub: 1, except: 'uid-1', changed: { kind: 'totp' } }),
    ]) {
      assert.equal(OwedEndings.parse(member), undefined, member);
    }
  });

  it('a removal ends the sessions signed in with what was removed, by their record, or by amr when older than the records', () => {
    const passkey = signedInWith({ kind: 'passkey', id: 'p1' });
    assert.equal(passkey({ methods: ['passkey-synced'], passkeys: ['p1'] }, []), true);
    assert.equal(passkey({ methods: ['passkey-synced'], passkeys: ['p2'] }, ['swk']), false, 'another passkey, recorded');
    assert.equal(passkey(undefined, ['swk']), true);
    assert.equal(passkey(undefined, ['pwd']), false);
    const totp = signedInWith({ kind: 'totp' });
    assert.equal(totp({ methods: ['password', 'totp'] }, []), true);
    assert.equal(totp({ methods: ['password'] }, ['otp']), false, 'the record says how, not the amr');
    assert.equal(totp(undefined, ['pwd', 'otp']), true);
    const codes = signedInWith({ kind: 'recovery-codes' });
    assert.equal(codes({ methods: ['password', 'recovery-code'] }, []), true);
    assert.equal(codes(undefined, ['pwd', 'otp']), false, 'amr does not tell a recovery code apart');
    const link = signedInWith({ kind: 'link', id: 'corp:1' });
    assert.equal(link({ methods: ['federated'], links: ['corp:1'] }, []), true);
    assert.equal(link({ methods: ['federated'], links: ['corp:2'] }, ['fed']), false);
    // Without its record (signed in before the records lived as long as their session): any
    // sign-in through an upstream (sixteenth fresh-eyes passes; false before, and such a session
    // outlived the link's removal).
    assert.equal(link(undefined, ['fed']), true);
    assert.equal(link(undefined, ['pwd']), false);
    const factors = signedInWith({ kind: 'second-factors' });
    assert.equal(factors({ methods: ['password', 'totp'] }, []), true);
    assert.equal(factors({ methods: ['passkey-synced'], passkeys: ['p1'] }, []), true);
    assert.equal(factors({ methods: ['password'] }, ['otp']), false, 'the record says how, not the amr');
    assert.equal(factors({ methods: ['federated'], links: ['corp:1'] }, []), false);
    assert.equal(factors(undefined, ['pwd', 'otp', 'mfa']), true);
  });
});
