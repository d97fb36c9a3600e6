/**
 * The seventeenth pass at the new kinds of clients (docs/security-passes.md, "new kinds of clients
 * (h14)"): what latchkey/resource-server's DPoP check (src/resource-server/dpop.ts) remembers of a
 * proof. A proof's jti is the client's to choose and RFC 9449 bounds neither its length nor its
 * alphabet; the API remembers each proof for its lifetime (in memory, up to 100,000 by default, or
 * in the store it gives), so a client holding a token could make the API keep as much as it sent.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { DPoPProblem, DPoPVerifier, type ReplayStore } from '../../src/resource-server/dpop.js';

const URL_CALLED = 'https://api.example.test/things';
const TOKEN = 'an-access-token';

describe('resource server: what a DPoP proof leaves in the replay store, seventeenth pass', () => {
  it("remembers a proof by a fixed-size digest of its jti, whatever the jti's length, and still refuses the same proof twice", async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const jkt = await calculateJwkThumbprint(jwk);
    const keys: string[] = [];
    const seen = new Set<string>();
    const replay: ReplayStore = { unique: (key) => (keys.push(key), !seen.has(key) && Boolean(seen.add(key))) };
    const verifier = new DPoPVerifier(['ES256'], 0, { replay });
    const proof = (jti: string) =>
      new SignJWT({ jti, htm: 'GET', htu: URL_CALLED, ath: createHash('sha256').update(TOKEN).digest('base64url') })
        .setIssuedAt()
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(privateKey);
    const request = async (jti: string) => ({ proof: await proof(jti), method: 'GET', url: URL_CALLED });

    const long = `${'x'.repeat(10_000)}${randomUUID()}`;
    const first = await request(long);
    await verifier.check(first, TOKEN, jkt);
    assert.ok(keys[0]!.length <= jkt.length + 1 + 64, `a bounded key, not the jti: ${keys[0]!.length} characters`);
    assert.doesNotMatch(keys[0]!, /x{100}/);

    await assert.rejects(verifier.check(first, TOKEN, jkt), (error: DPoPProblem) => error.code === 'invalid_dpop_proof' && /replayed/.test(error.message));
    // Another jti with the same long beginning is another proof.
    await verifier.check(await request(`${long}!`), TOKEN, jkt);
  });
});
