/**
 * Second-factor credentials in a real Redis: the TOTP secret is sealed at rest (not in any stored
 * value), codes are single-use within their window and wrong ones refused, recovery codes are
 * stored as hashes and each works once (also when two sign-ins race), an operator's reset forgets
 * everything. Passkey ceremonies are driven by a real browser in test/e2e/passkeys.test.ts; a
 * sign-in challenge's rules (sealed, single-use, bound to its interaction, expiring) are pinned here
 * with a software authenticator (P-256 assertions made by node:crypto).
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import { Secret, TOTP } from 'otpauth';
import { SecondFactors } from '../../src/accounts/second-factors.js';
import { enrolmentStamp } from '../../src/accounts/credentials.js';
import { assurance, requiredAcr, satisfies } from '../../src/accounts/assurance.js';
import { Sealer } from '../../src/keyring/sealing.js';
import { allKeys, backends, dumpValue, type OpenBackend } from '../helpers/backends.js';

const redis = backends.find((backend) => backend.name === 'single redis-server')!;
const SUB = '6f1c2d3e-0000-4000-8000-000000000001';

/** The code an authenticator app shows now (or `steps` periods from now). */
const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

/** A passkey of a software authenticator: its stored record and assertions over any challenge. */
function softwarePasskey(rpId: string, origin: string, sub: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const cose = isoCBOR.encode(new Map<number, number | Uint8Array>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]));
  const id = randomBytes(16).toString('base64url');
  return {
    stored: { id, publicKey: Buffer.from(cose).toString('base64url'), counter: 0, name: 'Software', deviceType: 'singleDevice' as const, createdAt: 1 },
    /** The assertion answering `challenge` (base64url, as the options give it), with sign counter `counter`. */
    assertion(challenge: string, counter: number, clientData: Record<string, unknown> = { crossOrigin: false }) {
      const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin, ...clientData }));
      const count = Buffer.alloc(4);
      count.writeUInt32BE(counter);
      // rpIdHash, flags user present and verified, counter
      const authenticatorData = Buffer.concat([createHash('sha256').update(rpId).digest(), Buffer.from([0x05]), count]);
      const signature = sign('sha256', Buffer.concat([authenticatorData, createHash('sha256').update(clientDataJSON).digest()]), privateKey);
      return {
        id,
        rawId: id,
        type: 'public-key',
        clientExtensionResults: {},
        response: {
          clientDataJSON: clientDataJSON.toString('base64url'),
          authenticatorData: authenticatorData.toString('base64url'),
          signature: signature.toString('base64url'),
          userHandle: Buffer.from(sub).toString('base64url'),
        },
      };
    },
  };
}

describe('second-factor credentials (real Redis)', function () {
  this.timeout(20_000);
  let store: OpenBackend;
  let factors: SecondFactors;

  before(async () => {
    store = await redis.open();
    factors = new SecondFactors(store.kv, new Sealer(['a test secret long enough for the sealer']), 'http://localhost:3000');
  });
  after(() => store?.stop());

  it('passkey sign-in: a challenge is written nowhere; it signs in once, only for its own interaction, and not once expired', async () => {
    const sub = `${SUB}-passkey`;
    const passkey = softwarePasskey('localhost', 'http://localhost:3000', sub);
    await factors.records.update(sub, (current) => ({ next: { ...current, passkeys: [passkey.stored] }, result: true }));
    const keysBefore = (await allKeys(store.raw!)).sort();
    const options = await factors.passkeys.authenticationOptions('interaction-a');
    const elsewhere = await factors.passkeys.authenticationOptions('interaction-b');
    const late = await factors.passkeys.authenticationOptions('interaction-a');
    // The login page shows one at every view: nothing is stored for it (it was a write per view).
    assert.deepEqual((await allKeys(store.raw!)).sort(), keysBefore);
    assert.notEqual(options.challenge, late.challenge);

    // Another interaction's challenge does not sign in here (and is not spent by the try).
    assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(elsewhere.challenge, 1)), undefined);
    // One that is not ours at all: random bytes, or ours altered.
    assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(randomBytes(32).toString('base64url'), 1)), undefined);
    const altered = Buffer.from(options.challenge, 'base64url');
    altered[altered.length - 3]! ^= 1;
    assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(altered.toString('base64url'), 1)), undefined);

    const signedIn = await factors.passkeys.authenticate('interaction-a', passkey.assertion(options.challenge, 1));
    assert.equal(signedIn?.sub, sub);
    // Single-use: the same challenge again, even in a fresh assertion with a higher counter, is refused.
    assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(options.challenge, 2)), undefined);
    const markers = await allKeys(store.raw!, '*webauthn-challenge-used*');
    assert.equal(markers.length, 1);
    assert.ok((await store.raw!.ttl(markers[0]!)) > 300, 'the marker outlives the challenge');
    // Said to have run in another origin's frame (Latchkey's pages refuse framing), with that origin
    // named or not: refused (WebAuthn L3 §7.2 step 13), though all else (a higher counter) is right.
    const framed = await factors.passkeys.authenticationOptions('interaction-a');
    assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(framed.challenge, 10, { crossOrigin: true })), undefined);
    const framedBy = await factors.passkeys.authenticationOptions('interaction-a');
    assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(framedBy.challenge, 11, { crossOrigin: true, topOrigin: 'https://evil.example' })), undefined);
    // Not a boolean (§5.8.1): refused too.
    for (const [at, crossOrigin] of (['true', 1] as const).entries()) {
      const odd = await factors.passkeys.authenticationOptions('interaction-a');
      assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(odd.challenge, 12 + at, { crossOrigin })), undefined, JSON.stringify(crossOrigin));
    }

    // Its own interaction's, another view's challenge, once expired: refused.
    const now = Date.now;
    Date.now = () => now() + 301_000;
    try {
      assert.equal(await factors.passkeys.authenticate('interaction-a', passkey.assertion(late.challenge, 23)), undefined);
    } finally {
      Date.now = now;
    }
    // The other interaction's still signs in there, once.
    assert.equal((await factors.passkeys.authenticate('interaction-b', passkey.assertion(elsewhere.challenge, 24)))?.sub, sub);
    assert.equal(await factors.passkeys.authenticate('interaction-b', passkey.assertion(elsewhere.challenge, 25)), undefined);
  });

  it('TOTP: the sign-in that spent a code may offer it again (its retry after the store went away before it could go on), no other sign-in may', async () => {
    const sub = 'totp-retry-sub';
    const { secret } = await factors.totp.begin(sub, 'rita', 'enrolling-session');
    assert.ok(await factors.totp.confirm(sub, codeFor(secret, -1), 'enrolling-session'));
    const code = codeFor(secret, 0);
    assert.equal((await factors.totp.verify(sub, code, 'sign-in-a')).outcome, 'ok');
    assert.equal((await factors.totp.verify(sub, code, 'sign-in-a')).outcome, 'ok', 'the same sign-in, retrying');
    assert.equal((await factors.totp.verify(sub, code, 'sign-in-b')).outcome, 'replayed', 'another sign-in (a thief who saw the code)');
  });

  it('TOTP: enrolment needs a right code; the secret is sealed at rest; a code works once; wrong codes fail', async () => {
    const { uri, secret } = await factors.totp.begin(SUB, 'alice', 'test-session');
    assert.match(uri, /^otpauth:\/\/totp\/localhost%3A3000:alice\?/);
    assert.equal(await factors.totp.confirm(SUB, codeFor(secret, 10), 'test-session'), false, 'a code outside the window does not confirm');
    assert.equal(await factors.totp.confirm(SUB, codeFor(secret), 'test-session'), true);
    assert.ok((await factors.summary(SUB)).totp);

    for (const key of await allKeys(store.raw!)) assert.ok(!(await dumpValue(store.raw!, key)).includes(secret), `${key} holds the secret in clear`);

    // The code confirming the enrolment was spent: it cannot sign in.
    assert.equal((await factors.totp.verify(SUB, codeFor(secret), 'sign-in-a')).outcome, 'replayed');
    const next = codeFor(secret, 1); // the next step's code is accepted (clock drift), once
    const verified = await factors.totp.verify(SUB, next, 'sign-in-a');
    assert.equal(verified.outcome, 'ok');
    assert.equal((await factors.totp.verify(SUB, next, 'sign-in-b')).outcome, 'replayed');
    assert.equal((await factors.totp.verify(SUB, codeFor(secret, 5), 'sign-in-a')).outcome, 'wrong');
    assert.equal((await factors.totp.verify(SUB, 'abcdef', 'sign-in-a')).outcome, 'wrong');
    // A replay marker lives only as long as the code could be accepted.
    const markers = (await allKeys(store.raw!, '*totp-used*'));
    assert.ok(markers.length >= 2);
    for (const key of markers) assert.ok((await store.raw!.ttl(key)) > 0);
  });

  it('TOTP: a code says which enrolment it fitted; the app set up again is another enrolment', async () => {
    const sub = `${SUB}-again`;
    const first = await factors.totp.begin(sub, 'again', 'test-session');
    assert.ok(await factors.totp.confirm(sub, codeFor(first.secret, -1), 'test-session'));
    const verified = await factors.totp.verify(sub, codeFor(first.secret, 0), 'test-sign-in');
    assert.deepEqual(verified, { outcome: 'ok', enrolment: enrolmentStamp((await factors.records.read(sub)).totp) });
    await factors.totp.remove(sub);
    const second = await factors.totp.begin(sub, 'again', 'test-session');
    assert.ok(await factors.totp.confirm(sub, codeFor(second.secret, 1), 'test-session'));
    const now = enrolmentStamp((await factors.records.read(sub)).totp);
    assert.ok(now && verified.outcome === 'ok' && now !== verified.enrolment);
  });

  it('TOTP secrets follow a rotation of keys.secrets: sealed again under the new first secret at use; unreadable (not a crash) once the old one is gone', async () => {
    const sub = `${SUB}-rotation`;
    const { secret } = await factors.totp.begin(sub, 'rotating', 'test-session');
    assert.ok(await factors.totp.confirm(sub, codeFor(secret, -1), 'test-session'));
    const rotated = new SecondFactors(store.kv, new Sealer(['a new secret that came first', 'a test secret long enough for the sealer']), 'http://localhost:3000');
    const before = (await rotated.records.read(sub)).totp!.sealed;
    assert.equal((await rotated.totp.verify(sub, codeFor(secret), 'test-sign-in')).outcome, 'ok');
    const after = (await rotated.records.read(sub)).totp!.sealed;
    assert.notEqual(after, before, 'sealed again');
    const retired = new SecondFactors(store.kv, new Sealer(['a new secret that came first']), 'http://localhost:3000');
    assert.equal((await retired.totp.verify(sub, codeFor(secret, 1), 'test-sign-in')).outcome, 'ok', 'the new secret alone opens it');
    const lost = new SecondFactors(store.kv, new Sealer(['a secret that never sealed it']), 'http://localhost:3000');
    assert.equal((await lost.totp.verify(sub, codeFor(secret, 1), 'test-sign-in')).outcome, 'unreadable');
  });

  it('recovery codes: ten, stored hashed, each works once even when two uses race', async () => {
    const codes = await factors.recoveryCodes.generate(SUB);
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const key of await allKeys(store.raw!)) {
      const value = await dumpValue(store.raw!, key);
      for (const code of codes) assert.ok(!value.includes(code) && !value.includes(code.replaceAll('-', '')), `${key} holds a code in clear`);
    }
    const [first, second] = await Promise.all([factors.recoveryCodes.use(SUB, codes[0]!, 'sign-in-a'), factors.recoveryCodes.use(SUB, codes[0]!, 'sign-in-b')]);
    const spent = [first, second].filter(Boolean);
    assert.equal(spent.length, 1, 'exactly one of the racing sign-ins spends it');
    const [winner, loser] = first ? ['sign-in-a', 'sign-in-b'] : ['sign-in-b', 'sign-in-a'];
    assert.equal(await factors.recoveryCodes.use(SUB, codes[0]!, loser), undefined);
    assert.equal(await factors.recoveryCodes.use(SUB, codes[0]!, 'sign-in-c'), undefined);
    // The sign-in that spent it may offer it again (its retry after a store outage: second-factor.ts).
    assert.equal(await factors.recoveryCodes.use(SUB, codes[0]!, winner), spent[0]);
    assert.equal(await factors.recoveryCodes.use(SUB, codes[1]!.toUpperCase().replaceAll('-', ' '), winner), spent[0], 'typed in capitals with spaces; the same set');
    assert.equal(await factors.recoveryCodes.use(SUB, codes[0]!, winner), undefined, 'only the code it spent last');
    assert.equal(await factors.recoveryCodes.use(SUB, 'aaaa-bbbb-cccc-dddd', winner), undefined);
    assert.equal((await factors.summary(SUB)).recoveryCodesLeft, 8);
    // Codes made anew are another set: a sign-in with an old one can tell (session-credentials.ts).
    const [fresh] = await factors.recoveryCodes.generate(SUB);
    const again = await factors.recoveryCodes.use(SUB, fresh!, 'sign-in-d');
    assert.ok(again && again !== spent[0]);
  });

  it("an operator's reset forgets every second factor", async () => {
    await factors.reset(SUB);
    assert.deepEqual(await factors.summary(SUB), { passkeys: [], totp: undefined, recoveryCodesLeft: 0 });
  });

  it('assurance levels: amr and acr of each way of signing in, and what a request requires', () => {
    assert.deepEqual(assurance(['password']), { acr: 'pwd', amr: ['pwd'] });
    assert.deepEqual(assurance(['password', 'totp']), { acr: 'mfa', amr: ['pwd', 'otp', 'mfa'] });
    assert.deepEqual(assurance(['password', 'recovery-code']), { acr: 'mfa', amr: ['pwd', 'mfa'] });
    assert.deepEqual(assurance(['passkey-device-bound']), { acr: 'phr', amr: ['swk', 'mfa'] });
    assert.deepEqual(assurance(['passkey-synced']), { acr: 'phr', amr: ['swk', 'mfa'] });
    assert.equal(requiredAcr(undefined, false), 'pwd');
    assert.equal(requiredAcr(undefined, true), 'mfa');
    assert.equal(requiredAcr('phr mfa', false), 'mfa');
    assert.equal(requiredAcr('phr', true), 'phr');
    assert.equal(requiredAcr('urn:unknown', false), 'pwd');
    assert.ok(satisfies('phr', 'mfa') && !satisfies('pwd', 'mfa') && !satisfies(undefined, 'mfa') && satisfies(undefined, 'pwd'));
  });
});
