/**
 * The sealed passkey registration challenge (e8e13ce5) as an attacker would try it, in a real Redis
 * (security-passes.md, "Looked at in the eighteenth passes: review of e8e13ce5, 5fe85549 and e6b2b8b6
 * (h20)"): held, pinned. A challenge registers one passkey once (two tabs racing it, two instances on
 * one Redis), only for the person it was sealed for, only as a registration (a sign-in's challenge
 * does not register, a registration's does not sign in), not once expired, and not once the secret
 * that sealed it left keys.secrets.
 */
import assert from 'node:assert/strict';
import { SecondFactors } from '../../src/accounts/second-factors.js';
import { Sealer } from '../../src/keyring/sealing.js';
import { backends, type OpenBackend } from '../helpers/backends.js';
import { assertion, attestation, softPasskey } from '../helpers/soft-passkeys.js';

const ISSUER = 'http://localhost:3000';
const SECRET = 'a test secret long enough for the sealer';
const redis = backends.find((backend) => backend.name === 'single redis-server')!;
const register = (factors: SecondFactors, sub: string, challenge: string, key = softPasskey()) =>
  factors.passkeys.register(sub, 'mine', JSON.parse(attestation(key, ISSUER, challenge)) as unknown);
const challengeFor = async (factors: SecondFactors, sub: string) => (await factors.passkeys.registrationOptions(sub, sub))!.challenge;

describe('the sealed passkey registration challenge (eighteenth passes, h20)', function () {
  this.timeout(20_000);
  let store: OpenBackend;
  let one: SecondFactors;
  let two: SecondFactors;

  before(async () => {
    store = await redis.open();
    one = new SecondFactors(store.kv, new Sealer([SECRET]), ISSUER);
    two = new SecondFactors(store.kv, new Sealer([SECRET]), ISSUER); // a second instance on the same Redis
  });
  after(() => store?.stop());

  it('two tabs (or two instances) racing one challenge register one passkey; the challenge does not serve again', async () => {
    const challenge = await challengeFor(one, 'racer');
    const outcomes = await Promise.all([register(one, 'racer', challenge), register(two, 'racer', challenge), register(one, 'racer', challenge)]);
    assert.equal(outcomes.filter((outcome) => typeof outcome === 'object').length, 1, JSON.stringify(outcomes));
    assert.equal(await register(two, 'racer', challenge), 'unverified');
    assert.equal((await one.records.read('racer')).passkeys.length, 1);
    // Each view's own challenge still registers (the tabs of e8e13ce5).
    assert.equal(typeof (await register(two, 'racer', await challengeFor(one, 'racer'))), 'object');
  });

  it("another person's challenge, a sign-in's, an expired one and one sealed by a retired secret do not register", async () => {
    assert.equal(await register(one, 'victim', await challengeFor(one, 'attacker')), 'unverified');
    assert.equal(await register(one, 'victim', (await one.passkeys.authenticationOptions('victim')).challenge), 'unverified');
    const retired = new SecondFactors(store.kv, new Sealer(['an old secret, since taken out of keys.secrets']), ISSUER);
    assert.equal(await register(one, 'victim', await challengeFor(retired, 'victim')), 'unverified');
    const late = await challengeFor(one, 'victim');
    const now = Date.now;
    Date.now = () => now() + 301_000;
    try {
      assert.equal(await register(one, 'victim', late), 'unverified');
    } finally {
      Date.now = now;
    }
    assert.equal((await one.records.read('victim')).passkeys.length, 0);
    assert.equal(typeof (await register(one, 'victim', late)), 'object', 'in time, the same challenge registers');
  });

  it("a registration's challenge does not sign in, for the person or as any ceremony", async () => {
    const key = softPasskey();
    const challenge = await challengeFor(one, 'signer');
    assert.equal(typeof (await register(one, 'signer', challenge, key)), 'object');
    const fresh = await challengeFor(one, 'signer');
    const signed = (ceremony: string) =>
      one.passkeys.authenticate(ceremony, JSON.parse(assertion(key, ISSUER, fresh, 'signer', 1)) as unknown);
    assert.equal(await signed('signer'), undefined);
    assert.equal(await signed('an-interaction'), undefined);
    // The same assertion over a sign-in challenge of the ceremony signs in (the assertions are right).
    const own = (await one.passkeys.authenticationOptions('an-interaction')).challenge;
    const ok = await one.passkeys.authenticate('an-interaction', JSON.parse(assertion(key, ISSUER, own, 'signer', 2)) as unknown);
    assert.equal(ok?.sub, 'signer');
  });
});
