/**
 * Second-factor credentials in a real Redis: the TOTP secret is sealed at rest (not in any stored
 * value), codes are single-use within their window and wrong ones refused, recovery codes are
 * stored as hashes and each works once (also when two sign-ins race), an operator's reset forgets
 * everything. Passkey ceremonies are driven by a real browser in test/e2e/passkeys.test.ts.
 */
import assert from 'node:assert/strict';
import { Secret, TOTP } from 'otpauth';
import { SecondFactors } from '../../src/accounts/second-factors.js';
import { assurance, requiredAcr, satisfies } from '../../src/accounts/assurance.js';
import { Sealer } from '../../src/keyring/sealing.js';
import { allKeys, backends, dumpValue, type OpenBackend } from '../helpers/backends.js';

const redis = backends.find((backend) => backend.name === 'single redis-server')!;
const SUB = '6f1c2d3e-0000-4000-8000-000000000001';

/** The code an authenticator app shows now (or `steps` periods from now). */
const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

describe('second-factor credentials (real Redis)', function () {
  this.timeout(20_000);
  let store: OpenBackend;
  let factors: SecondFactors;

  before(async () => {
    store = await redis.open();
    factors = new SecondFactors(store.kv, new Sealer(['a test secret long enough for the sealer']), 'http://localhost:3000');
  });
  after(() => store?.stop());

  it('TOTP: enrolment needs a right code; the secret is sealed at rest; a code works once; wrong codes fail', async () => {
    const { uri, secret } = await factors.totp.begin(SUB, 'alice');
    assert.match(uri, /^otpauth:\/\/totp\/localhost%3A3000:alice\?/);
    assert.equal(await factors.totp.confirm(SUB, codeFor(secret, 10)), false, 'a code outside the window does not confirm');
    assert.equal(await factors.totp.confirm(SUB, codeFor(secret)), true);
    assert.ok((await factors.summary(SUB)).totp);

    for (const key of await allKeys(store.raw!)) assert.ok(!(await dumpValue(store.raw!, key)).includes(secret), `${key} holds the secret in clear`);

    // The code confirming the enrolment was spent: it cannot sign in.
    assert.equal(await factors.totp.verify(SUB, codeFor(secret)), 'replayed');
    const next = codeFor(secret, 1); // the next step's code is accepted (clock drift), once
    assert.equal(await factors.totp.verify(SUB, next), 'ok');
    assert.equal(await factors.totp.verify(SUB, next), 'replayed');
    assert.equal(await factors.totp.verify(SUB, codeFor(secret, 5)), 'wrong');
    assert.equal(await factors.totp.verify(SUB, 'abcdef'), 'wrong');
    // A replay marker lives only as long as the code could be accepted.
    const markers = (await allKeys(store.raw!, '*totp-used*'));
    assert.ok(markers.length >= 2);
    for (const key of markers) assert.ok((await store.raw!.ttl(key)) > 0);
  });

  it('TOTP secrets follow a rotation of keys.secrets: sealed again under the new first secret at use; unreadable (not a crash) once the old one is gone', async () => {
    const sub = `${SUB}-rotation`;
    const { secret } = await factors.totp.begin(sub, 'rotating');
    assert.ok(await factors.totp.confirm(sub, codeFor(secret, -1)));
    const rotated = new SecondFactors(store.kv, new Sealer(['a new secret that came first', 'a test secret long enough for the sealer']), 'http://localhost:3000');
    const before = (await rotated.records.read(sub)).totp!.sealed;
    assert.equal(await rotated.totp.verify(sub, codeFor(secret)), 'ok');
    const after = (await rotated.records.read(sub)).totp!.sealed;
    assert.notEqual(after, before, 'sealed again');
    const retired = new SecondFactors(store.kv, new Sealer(['a new secret that came first']), 'http://localhost:3000');
    assert.equal(await retired.totp.verify(sub, codeFor(secret, 1)), 'ok', 'the new secret alone opens it');
    const lost = new SecondFactors(store.kv, new Sealer(['a secret that never sealed it']), 'http://localhost:3000');
    assert.equal(await lost.totp.verify(sub, codeFor(secret, 1)), 'unreadable');
  });

  it('recovery codes: ten, stored hashed, each works once even when two uses race', async () => {
    const codes = await factors.recoveryCodes.generate(SUB);
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const key of await allKeys(store.raw!)) {
      const value = await dumpValue(store.raw!, key);
      for (const code of codes) assert.ok(!value.includes(code) && !value.includes(code.replaceAll('-', '')), `${key} holds a code in clear`);
    }
    const [first, second] = await Promise.all([factors.recoveryCodes.use(SUB, codes[0]!), factors.recoveryCodes.use(SUB, codes[0]!)]);
    assert.deepEqual([first, second].sort(), [false, true]);
    assert.equal(await factors.recoveryCodes.use(SUB, codes[0]!), false);
    assert.equal(await factors.recoveryCodes.use(SUB, codes[1]!.toUpperCase().replaceAll('-', ' ')), true, 'typed in capitals with spaces');
    assert.equal(await factors.recoveryCodes.use(SUB, 'aaaa-bbbb-cccc-dddd'), false);
    assert.equal((await factors.summary(SUB)).recoveryCodesLeft, 8);
  });

  it("an operator's reset forgets every second factor", async () => {
    await factors.reset(SUB);
    assert.deepEqual(await factors.summary(SUB), { passkeys: [], totp: undefined, recoveryCodesLeft: 0 });
  });

  it('assurance levels: amr and acr of each way of signing in, and what a request requires', () => {
    assert.deepEqual(assurance(['password']), { acr: 'pwd', amr: ['pwd'] });
    assert.deepEqual(assurance(['password', 'totp']), { acr: 'mfa', amr: ['pwd', 'otp', 'mfa'] });
    assert.deepEqual(assurance(['password', 'recovery-code']), { acr: 'mfa', amr: ['pwd', 'mfa'] });
    assert.deepEqual(assurance(['passkey-device-bound']), { acr: 'phr', amr: ['hwk', 'mfa'] });
    assert.deepEqual(assurance(['passkey-synced']), { acr: 'phr', amr: ['swk', 'mfa'] });
    assert.equal(requiredAcr(undefined, false), 'pwd');
    assert.equal(requiredAcr(undefined, true), 'mfa');
    assert.equal(requiredAcr('phr mfa', false), 'mfa');
    assert.equal(requiredAcr('phr', true), 'phr');
    assert.equal(requiredAcr('urn:unknown', false), 'pwd');
    assert.ok(satisfies('phr', 'mfa') && !satisfies('pwd', 'mfa') && !satisfies(undefined, 'mfa') && satisfies(undefined, 'pwd'));
  });
});
