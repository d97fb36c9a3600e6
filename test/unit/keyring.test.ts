/**
 * The rotation schedule (next → current → retired → removed) as pure functions of time, and the
 * sealing of private keys for the shared store.
 */
import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';
import { generateKey, Keyring, PRIVATE_JWK_MEMBERS, type StoredKey } from '../../src/keyring/keyring.js';
import { signingKeys } from '../../src/keyring/signing-keys.js';
import { apply, describeRing, isEmpty, NextKeyNotPublishedEverywhere, plan, planRevocation, planRotation, publishedEverywhereFrom, RotationError, type RotationPolicy } from '../../src/keyring/lifecycle.js';
import { Sealer, SealError } from '../../src/keyring/sealing.js';
import { dpopNonceSecret } from '../../src/keyring/dpop-nonces.js';

const DAY = 86_400_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');
const POLICY: RotationPolicy = { interval: 30 * 86_400, lead: 86_400, retention: 3_600, refresh: 2 };
const iso = (ms: number) => new Date(ms).toISOString();

describe('key ring: the rotation schedule', function () {
  this.timeout(20_000);
  let first: Keyring;

  before(async () => {
    first = await apply(undefined, plan(undefined, T0, POLICY), T0, 2048);
  });

  it('an empty ring gets a current key and a next key, published at once', () => {
    assert.deepEqual(plan(undefined, T0, POLICY), { bootstrap: true, promote: false, remove: [], addNext: true });
    assert.deepEqual(first.keys.map((key) => key.state), ['current', 'next']);
    assert.equal(first.current!.activatedAt, iso(T0));
    assert.equal(first.next!.createdAt, iso(T0));
    assert.notEqual(first.current!.kid, first.next!.kid);
    assert.equal(signingKeys(first).keys[0]!.kid, first.current!.kid, 'the current key is the one oidc-provider signs with');
  });

  it('the engine gets each key as a signer: RS256 signatures by the key, its public half only, no private JWK member', () => {
    const [current] = signingKeys(first).keys;
    assert.ok(current instanceof ExternalSigningKey, 'oidc-provider signs through the key, never with a private JWK of its own');
    assert.equal(current.kid, first.current!.kid);
    assert.equal(current.alg, 'RS256');
    const input = Buffer.from('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0');
    const publicKey = current.keyObject() as import('node:crypto').KeyObject;
    assert.equal(publicKey.type, 'public');
    assert.ok(verify('sha256', input, publicKey, current.sign(input) as Buffer), 'a PKCS#1 v1.5 SHA-256 signature by the current key');
    assert.equal(current.n, first.current!.jwk.n);
    for (const member of PRIVATE_JWK_MEMBERS) assert.equal((current as unknown as Record<string, unknown>)[member], undefined, member);
  });

  it('the next key becomes current after the interval, the current one retires, a new next key appears', async () => {
    assert.ok(isEmpty(plan(first, T0 + 29 * DAY, POLICY)), 'nothing to do before the interval');
    const due = plan(first, T0 + 30 * DAY, POLICY);
    assert.deepEqual(due, { bootstrap: false, promote: true, remove: [], addNext: true });
    const second = await apply(first, due, T0 + 30 * DAY, 2048);
    assert.deepEqual(second.keys.map((key) => [key.state, key.kid]), [
      ['current', first.next!.kid],
      ['next', second.next!.kid],
      ['retired', first.current!.kid],
    ]);
    assert.equal(second.current!.activatedAt, iso(T0 + 30 * DAY));
    assert.equal(second.keys.find((key) => key.state === 'retired')!.retiredAt, iso(T0 + 30 * DAY));
    assert.ok(isEmpty(plan(second, T0 + 30 * DAY, POLICY)));
  });

  it('a retired key is removed once no token it signed can still be valid', async () => {
    const second = await apply(first, plan(first, T0 + 30 * DAY, POLICY), T0 + 30 * DAY, 2048);
    const retired = second.keys.find((key) => key.state === 'retired')!;
    assert.deepEqual(plan(second, T0 + 30 * DAY + 3_599_000, POLICY).remove, []);
    const later = plan(second, T0 + 30 * DAY + 3_600_000, POLICY);
    assert.deepEqual(later.remove, [retired.kid]);
    const third = await apply(second, later, T0 + 30 * DAY + 3_600_000, 2048);
    assert.ok(!third.keys.some((key) => key.kid === retired.kid), 'removed');
    assert.deepEqual(third.keys.map((key) => key.state), ['current', 'next']);
  });

  it('a next key never signs before it has been published for the lead, even when the interval is due', () => {
    const young: StoredKey = { ...first.next!, createdAt: iso(T0 + 29.5 * DAY) };
    const ring = new Keyring([first.current!, young]);
    assert.equal(plan(ring, T0 + 30 * DAY, POLICY).promote, false);
    assert.equal(plan(ring, T0 + 30.5 * DAY, POLICY).promote, true);
    assert.equal(describeRing(ring, POLICY).find((key) => key.state === 'next')!.rotatesAt, iso(T0 + 30.5 * DAY));
  });

  it('with interval 0 keys rotate only on demand', () => {
    assert.ok(isEmpty(plan(first, T0 + 3650 * DAY, { ...POLICY, interval: 0 })));
    assert.equal(describeRing(first, { ...POLICY, interval: 0 }).find((key) => key.state === 'next')!.rotatesAt, undefined);
  });

  it('on-demand rotation is refused before the lead, allowed after it, and forced with --now', async () => {
    assert.throws(() => planRotation(first, T0 + 3_600_000, POLICY, false), (error: Error) => {
      assert.ok(error instanceof RotationError);
      assert.match(error.message, new RegExp(`may sign from ${iso(T0 + DAY).replace(/[.]/g, '\\.')}`));
      return true;
    });
    assert.equal(planRotation(first, T0 + DAY, POLICY, false).promote, true);
    const forced = await apply(first, planRotation(first, T0 + 3000, POLICY, true), T0 + 3000, 2048);
    assert.equal(forced.current!.kid, first.next!.kid);

    // --now skips the verifiers' cache, not the instances' look at the ring: a next key written a
    // moment ago (by a forced rotation just before) waits until every instance publishes it.
    assert.throws(() => planRotation(forced, T0 + 4000, POLICY, true), (error: Error) => {
      assert.ok(error instanceof NextKeyNotPublishedEverywhere);
      assert.equal(error.until, publishedEverywhereFrom(forced.next!, POLICY));
      assert.ok(error.until >= T0 + 3000 + POLICY.refresh * 1000, 'not before every instance looked at the ring');
      assert.match(error.message, /keys\.refreshInterval/);
      return true;
    });
    assert.equal(planRotation(forced, publishedEverywhereFrom(forced.next!, POLICY), POLICY, true).promote, true);

    const withoutNext = new Keyring([first.current!]);
    assert.throws(() => planRotation(withoutNext, T0 + DAY, POLICY, false), /no next key/);
    const emergency = await apply(withoutNext, planRotation(withoutNext, T0 + DAY, POLICY, true), T0 + DAY, 2048);
    assert.deepEqual(emergency.keys.map((key) => key.state), ['current', 'next', 'retired']);
    assert.notEqual(emergency.current!.kid, first.current!.kid);
  });

  it('revoking the current key: it leaves at once, the published next key signs now (no lead), a new next key appears', async () => {
    const revoked = first.current!.kid;
    const work = planRevocation(first, [revoked]);
    assert.deepEqual(work, { bootstrap: false, promote: true, remove: [revoked], addNext: true });
    const after = await apply(first, work, T0 + 1000, 2048);
    assert.deepEqual(after.keys.map((key) => key.state), ['current', 'next']);
    assert.equal(after.current!.kid, first.next!.kid, 'verifiers know the published next key already');
    assert.equal(after.current!.activatedAt, iso(T0 + 1000));
    assert.ok(!after.keys.some((key) => key.kid === revoked), 'not retired: gone from the JWKS and the signing keys');
    assert.ok(!after.publicJwks().keys.some((key) => key.kid === revoked));
    assert.equal(signingKeys(after).keys[0]!.kid, after.current!.kid);
  });

  it('revoking the current and the next key: a brand-new key signs; revoking only the next key or a retired one keeps the current', async () => {
    const both = await apply(first, planRevocation(first, [first.current!.kid, first.next!.kid]), T0 + 1000, 2048);
    assert.deepEqual(both.keys.map((key) => key.state), ['current', 'next']);
    assert.ok(![first.current!.kid, first.next!.kid].includes(both.current!.kid));
    assert.ok(![first.current!.kid, first.next!.kid].includes(both.next!.kid));

    const nextOnly = await apply(first, planRevocation(first, [first.next!.kid]), T0 + 1000, 2048);
    assert.equal(nextOnly.current!.kid, first.current!.kid);
    assert.notEqual(nextOnly.next!.kid, first.next!.kid);
    assert.equal(nextOnly.next!.createdAt, iso(T0 + 1000), 'the new next key waits its lead before it signs');

    const second = await apply(first, plan(first, T0 + 30 * DAY, POLICY), T0 + 30 * DAY, 2048);
    const retired = second.keys.find((key) => key.state === 'retired')!.kid;
    const third = await apply(second, planRevocation(second, [retired]), T0 + 30 * DAY + 1000, 2048);
    assert.deepEqual(third.keys.map((key) => [key.state, key.kid]), [
      ['current', second.current!.kid],
      ['next', second.next!.kid],
    ]);
  });

  it('revoking a kid the ring does not hold is refused (a typo must not look like success)', () => {
    assert.throws(() => planRevocation(first, [first.current!.kid, 'no-such-kid']), (error: Error) => {
      assert.ok(error instanceof RotationError);
      assert.match(error.message, /no key no-such-kid in the ring/);
      return true;
    });
  });

  it('a scheduled rotation is unchanged by removal coming first: a due retired key goes, the current one retires', async () => {
    const second = await apply(first, plan(first, T0 + 30 * DAY, POLICY), T0 + 30 * DAY, 2048);
    const due = plan(second, T0 + 60 * DAY, POLICY);
    assert.equal(due.promote, true);
    assert.equal(due.remove.length, 1);
    const third = await apply(second, due, T0 + 60 * DAY, 2048);
    assert.deepEqual(third.keys.map((key) => [key.state, key.kid]), [
      ['current', second.next!.kid],
      ['next', third.next!.kid],
      ['retired', second.current!.kid],
    ]);
  });

  it('keys list dates: when a next key may sign, when a retired key goes', async () => {
    const second = await apply(first, plan(first, T0 + 30 * DAY, POLICY), T0 + 30 * DAY, 2048);
    const listed = describeRing(second, POLICY);
    assert.deepEqual(listed.map((key) => key.state), ['current', 'next', 'retired']);
    assert.equal(listed[1]!.usableFrom, iso(T0 + 31 * DAY));
    assert.equal(listed[2]!.removeAfter, iso(T0 + 30 * DAY + 3_600_000));
    assert.equal(listed[0]!.alg, 'RS256');
  });
});

describe('key ring: sealing private keys for the shared store', () => {
  let key: StoredKey;
  const secret = 'a-keyring-secret-of-enough-length-0123456789';

  before(async () => {
    key = await generateKey(2048, 'current');
  });

  it('round-trips, and the sealed text holds no private member', () => {
    const sealer = new Sealer([secret]);
    const sealed = sealer.seal(key.kid, key.jwk);
    assert.match(sealed, /^v1\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
    for (const member of PRIVATE_JWK_MEMBERS) {
      const value = (key.jwk as Record<string, unknown>)[member];
      if (typeof value === 'string') assert.ok(!sealed.includes(value), `${member} in the clear`);
    }
    assert.deepEqual(sealer.open(key.kid, sealed), key.jwk);
    assert.notEqual(sealer.seal(key.kid, key.jwk), sealed, 'a fresh IV each time');
  });

  it('refuses another kid, tampering, and an unknown secret', () => {
    const sealed = new Sealer([secret]).seal(key.kid, key.jwk);
    assert.throws(() => new Sealer([secret]).open('another-kid', sealed), SealError);
    const parts = sealed.split('.');
    const flipped = Buffer.from(parts[3]!, 'base64url');
    flipped[0] = flipped[0]! ^ 1;
    parts[3] = flipped.toString('base64url');
    assert.throws(() => new Sealer([secret]).open(key.kid, parts.join('.')), /cannot be opened/);
    assert.throws(() => new Sealer(['another-secret-of-enough-length-0123456789']).open(key.kid, sealed), /not in keys\.secrets/);
    assert.throws(() => new Sealer([secret]).open(key.kid, 'garbage'), /not a sealed key/);
  });

  it('the first secret seals and every secret opens, so the secret can be rotated', () => {
    const old = new Sealer([secret]).seal(key.kid, key.jwk);
    const rotated = new Sealer(['the-new-keyring-secret-of-enough-length-42', secret]);
    assert.deepEqual(rotated.open(key.kid, old), key.jwk);
    assert.equal(rotated.isCurrent(old), false, 'to be re-sealed');
    assert.equal(rotated.isCurrent(rotated.seal(key.kid, key.jwk)), true);
  });
});

describe('key ring: the DPoP nonce secret', () => {
  it('is 32 bytes derived from the first keys.secrets entry: the same on every instance, another for another secret', () => {
    const secret = dpopNonceSecret(['first-secret-of-at-least-32-characters', 'older-secret-of-at-least-32-characters']);
    assert.equal(secret.length, 32, 'oidc-provider takes a 32-byte secret');
    assert.deepEqual(dpopNonceSecret(['first-secret-of-at-least-32-characters']), secret, 'only the first secret counts');
    assert.notDeepEqual(dpopNonceSecret(['older-secret-of-at-least-32-characters']), secret);
    assert.ok(!secret.equals(Buffer.from('first-secret-of-at-least-32-characters').subarray(0, 32)), 'not the secret itself');
    assert.throws(() => dpopNonceSecret([]), TypeError);
  });
});
