/**
 * The eighteenth passes at what the resource servers accept (docs/security-passes.md, "more than
 * was granted, at the resource servers' side (h10)"): latchkey/resource-server's DPoP check
 * (src/resource-server/dpop.ts) and what it remembers of a proof.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { DPoPProblem, DPoPVerifier, MemoryReplayStore, type ReplayStore } from '../../src/resource-server/dpop.js';

const URL_CALLED = 'https://api.example.test/things';
const TOKEN = 'an-access-token';
const ath = createHash('sha256').update(TOKEN).digest('base64url');

describe('resource server: a DPoP proof at the edge of its window, eighteenth passes', () => {
  it('refuses a proof taken once again in the last second it is accepted (its jti remembered as long as it is accepted)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const jkt = await calculateJwkThumbprint(jwk);
    const proofMaxAge = 60;
    const clockTolerance = 5;
    const verifier = new DPoPVerifier(['ES256'], clockTolerance, { proofMaxAge, replay: new MemoryReplayStore() });
    // As old as a proof may be: its iat is the oldest the check accepts this second.
    const iat = Math.floor(Date.now() / 1000) - proofMaxAge - clockTolerance;
    const proof = await new SignJWT({ jti: randomUUID(), htm: 'GET', htu: URL_CALLED, ath })
      .setIssuedAt(iat)
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(privateKey);
    const request = { proof, method: 'GET', url: URL_CALLED };
    try {
      await verifier.check(request, TOKEN, jkt);
    } catch (error) {
      // The second turned between the iat and the check: the proof is too old, which is not this case.
      if (error instanceof DPoPProblem && /iat is outside/.test(error.message)) return;
      throw error;
    }
    // Its replay: refused, as replayed or (the second turned meanwhile) as too old, never accepted.
    await assert.rejects(verifier.check(request, TOKEN, jkt), (error: DPoPProblem) => error.code === 'invalid_dpop_proof');
  });

  it("asks any replay store (Latchkey's own for the admin API and the feed too) to keep a jti until after the last second its proof is accepted", async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const jkt = await calculateJwkThumbprint(jwk);
    const asked: number[] = [];
    const replay: ReplayStore = { unique: (_key, expiresAt) => (asked.push(expiresAt), true) };
    const proofMaxAge = 60;
    const clockTolerance = 5;
    const verifier = new DPoPVerifier(['ES256'], clockTolerance, { proofMaxAge, replay });
    const iat = Math.floor(Date.now() / 1000);
    const proof = await new SignJWT({ jti: randomUUID(), htm: 'GET', htu: URL_CALLED, ath })
      .setIssuedAt(iat)
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(privateKey);
    await verifier.check({ proof, method: 'GET', url: URL_CALLED }, TOKEN, jkt);
    // The check reads the clock in whole seconds: the proof is taken while that second is at most
    // iat + proofMaxAge + clockTolerance, so up to one second past it.
    const acceptedUntil = iat + proofMaxAge + clockTolerance + 1;
    assert.equal(asked.length, 1);
    assert.ok(asked[0]! >= acceptedUntil, `the jti is kept until ${asked[0]! - iat} s after iat; the proof is accepted until ${acceptedUntil - iat} s after`);
  });
});
