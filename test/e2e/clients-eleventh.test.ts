/**
 * The eleventh fresh-eyes pass at the kinds of clients and sender constraint (docs/security-passes.md,
 * "kinds of clients and sender constraint, eleventh pass"), as an attacker, black box: what a
 * confidential client's private_key_jwt assertion (RFC 7523 §3: its jti once) is worth when sent twice
 * at once, and (held) beside a DPoP proof of the same jti, whose replay check is another.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { hasWrite, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

describe('e2e: kinds of clients and sender constraint, eleventh pass', function () {
  this.timeout(60_000);
  let key: KeyPair;
  let relayed: RelayedServer;
  let other: TestServer;

  before(async () => {
    key = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(key.publicKey)), kid: 'signer', alg: 'ES256', use: 'sig' };
    const clients = [{ client_id: 'signer', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }];
    relayed = await startRelayedServer({}, { clients });
    // A second instance of the same deployment, straight to the same Redis.
    other = await startServer({ redisUrl: relayed.redis.url, clients, port: undefined, env: { ISSUER: relayed.server.issuer } });
  });
  after(async () => {
    await other?.stop();
    await relayed?.stop();
  });

  /** client_credentials authenticated by `assertion` at `url` (with a DPoP proof when given): the status and body. */
  const authenticate = (url: string, assertion: string, dpop?: string) =>
    fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(dpop && { dpop }) },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'signer',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    }).then(async (response) => ({ status: response.status, body: (await response.json()) as { error?: string; access_token?: string } }));

  /** An assertion of the client's, for our issuer, good for a minute. */
  async function assertion(jti = randomUUID()): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti })
      .setProtectedHeader({ alg: 'ES256', kid: 'signer' })
      .setIssuer('signer')
      .setSubject('signer')
      .setAudience(relayed.server.issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(key.privateKey);
  }

  it('a private_key_jwt assertion sent twice at once authenticates once (its jti is marked atomically, as a DPoP proof is), also across instances', async () => {
    const signed = await assertion();
    // The first request held at its write of the jti (the engine's record, found none before; or the one set-if-absent),
    // and the copy sent to the other instance meanwhile.
    const held = await relayed.relay.hold((chunk) => hasWrite(chunk) && /ReplayDetection|jwt-once:/.test(chunk), () => authenticate(relayed.server.url, signed));
    const copy = await authenticate(other.url, signed);
    const first = await held.release();
    const statuses = [first.status, copy.status].sort();
    assert.deepEqual(statuses, [200, 401], `first: ${JSON.stringify(first.body)}, copy: ${JSON.stringify(copy.body)}`);
    // And sent again later: refused as before.
    assert.equal((await authenticate(other.url, signed)).status, 401);
  });

  it('held: an assertion used once, sent again beside a fresh DPoP proof of the same jti (by a key of the sender\'s), is refused: the proof is verified only after the client authenticated, so the assertion\'s check is not taken for the proof\'s', async () => {
    const jti = randomUUID();
    const signed = await assertion(jti);
    assert.equal((await authenticate(other.url, signed)).status, 200);
    const thief = await generateKeyPair('ES256', { extractable: true });
    const proof = await new SignJWT({ jti, htm: 'POST', htu: `${relayed.server.issuer}/token`, iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(thief.publicKey) })
      .sign(thief.privateKey);
    const again = await authenticate(other.url, signed, proof);
    assert.equal(again.status, 401, JSON.stringify(again.body));
    assert.equal(again.body.error, 'invalid_client');
  });
});
