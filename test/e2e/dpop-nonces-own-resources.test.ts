/**
 * `dpop.requireNonce` at Latchkey's own protected resources, the admin API and the revocation feed
 * (docs/security-passes.md, "the seventh fresh-eyes passes: the issuer's address and the new kinds of clients"). The
 * setting promises that every DPoP proof sent to Latchkey carries a nonce it issued (RFC 9449 §8,
 * §11.2: a proof made in advance by whoever held the key for a moment is useless). The engine asked
 * it at the token endpoint, PAR and userinfo; the admin API and the feed, which check proofs
 * themselves (http/sender-constraint.ts), took a proof without one. Now they answer 401
 * `use_dpop_nonce` with a `DPoP-Nonce` (§9), and take the engine's nonces, so a client library that
 * keeps one nonce per origin (openid-client, oauth4webapi) needs no second round trip.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, machineClient, type ClientCredentials } from '../helpers/tokens.js';

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

const OPS: ClientCredentials = { id: 'ops', secret: 'ops-secret-with-plenty-of-entropy-0123456789abcdef' };
const RS: ClientCredentials = { id: 'rs', secret: 'rs-secret-with-plenty-of-entropy-0123456789abcdef' };

async function proof(key: KeyPair, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
    .sign(key.privateKey);
}
const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

describe('dpop.requireNonce at the admin API and the revocation feed', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { DPOP_REQUIRE_NONCE: 'true' }, clients: [machineClient(OPS), machineClient(RS)] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.apis.grant(RS.id, `${server.issuer}/revocations`, { scopes: ['revocations'] });
  });
  after(() => server?.stop());

  /** A DPoP-bound client_credentials token, taken as a client does: the engine's nonce asked for, then used. */
  async function boundToken(key: KeyPair, client: ClientCredentials, resource: string, scope: string): Promise<{ token: string; nonce: string }> {
    const ask = (nonce?: string) =>
      proof(key, { htm: 'POST', htu: `${server.issuer}/token`, ...(nonce && { nonce }) }).then((dpop) =>
        fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client), dpop },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
        }),
      );
    const first = await ask();
    assert.equal(((await first.json()) as { error: string }).error, 'use_dpop_nonce', 'the token endpoint asks for a nonce');
    const nonce = first.headers.get('dpop-nonce')!;
    const issued = await ask(nonce);
    const body = (await issued.json()) as { access_token: string; token_type: string };
    assert.equal(issued.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'DPoP');
    return { token: body.access_token, nonce };
  }

  for (const [what, client, resource, scope, path] of [
    ['the admin API', OPS, '/admin', 'admin', '/admin/users'],
    ['the revocation feed', RS, '/revocations', 'revocations', '/revocations'],
  ] as const) {
    it(`${what}: a proof without a nonce is 401 use_dpop_nonce with a DPoP-Nonce; one with it, or with the token endpoint's, is taken; a made-up one is not (RFC 9449 §8, §9, §11.2)`, async () => {
      const key = await generateKeyPair('ES256', { extractable: true });
      const { token, nonce: engineNonce } = await boundToken(key, client, `${server.issuer}${resource}`, scope);
      const url = `${server.issuer}${path}`;
      const call = async (nonce?: string) =>
        fetch(`${server.url}${path}`, { headers: { authorization: `DPoP ${token}`, dpop: await proof(key, { htm: 'GET', htu: url, ath: ath(token), ...(nonce && { nonce }) }) } });

      const without = await call();
      assert.equal(without.status, 401, `${what}: a proof made without a nonce (as one made in advance is)`);
      assert.match(without.headers.get('www-authenticate') ?? '', /^DPoP error="use_dpop_nonce"/);
      assert.equal(((await without.json()) as { error: string }).error, 'use_dpop_nonce');
      const told = without.headers.get('dpop-nonce');
      assert.ok(told, 'the nonce to use');

      assert.equal((await call('A'.repeat(43))).status, 401, `${what}: a made-up nonce`);
      assert.equal((await call(told)).status, 200, `${what}: with the nonce it was told`);
      assert.equal((await call(engineNonce)).status, 200, `${what}: with the token endpoint's nonce (one per origin, as client libraries keep it)`);
      // And the other way: the nonce told here is the engine's.
      const again = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client), dpop: await proof(key, { htm: 'POST', htu: `${server.issuer}/token`, nonce: told }) },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}${resource}`, scope }),
      });
      assert.equal(again.status, 200, `${what}: its nonce at the token endpoint: ${await again.clone().text()}`);
    });
  }
});
