/**
 * latchkey/resource-server's refusals of a developer's likely slips say what differs, in
 * error.message (for the API's log), rather than jose's words ("unexpected "aud" claim value",
 * "signature verification failed"): a token asked for without `resource` (opaque), for another
 * API, from another issuer, an ID token, a clock ahead of Latchkey's, and a DPoP proof for another
 * URL (an API behind a TLS proxy giving its internal http:// URL) or from a skewed clock
 * (docs/security-passes.md, "Looked at in the sixteenth passes: the developer and the operator
 * (h14)"). The far side is the stand-in issuer of test/helpers/stand-in-issuer.ts.
 */
import assert from 'node:assert/strict';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { startStandInIssuer, type StandInIssuer } from '../helpers/stand-in-issuer.js';

const AUDIENCE = 'https://api.example.test';

describe('latchkey/resource-server: a refused slip says what differs (sixteenth passes, h14)', () => {
  let standIn: StandInIssuer;
  let helper: ResourceServer;

  before(async () => {
    standIn = await startStandInIssuer('k1', () => ({ entries: [], cursor: null, more: false }));
    helper = await createResourceServer({ issuer: standIn.issuer, audience: AUDIENCE, clientId: 'api', clientSecret: 'secret' });
  });
  after(async () => {
    helper?.close();
    await standIn?.close();
  });

  const now = () => Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>, { typ = 'at+jwt', key = standIn.privateKey } = {}) =>
    new SignJWT({ iss: standIn.issuer, aud: AUDIENCE, sub: 'caller', client_id: 'caller', jti: `j${Math.random()}`, iat: now(), exp: now() + 900, scope: 'read', ...claims })
      .setProtectedHeader({ alg: 'RS256', typ, kid: 'k1' })
      .sign(key);
  const refusal = (header: string, options?: Parameters<ResourceServer['verify']>[1]) =>
    helper.verify(header, options).then(
      () => assert.fail('accepted'),
      (error: unknown) => {
        assert.ok(error instanceof TokenRejected, String(error));
        assert.equal(error.status, 401);
        return error;
      },
    );

  it('an opaque token (asked for without resource) is "not a JWT", naming the resource to ask for', async () => {
    const error = await refusal('Bearer pHbQtkSNG0eAZDn7jUnvwFz73lZ7l4tOmVp2-1E6nl5H');
    assert.equal(error.code, 'invalid_token');
    assert.match(error.message, /^not a JWT: an opaque token .*resource=https:\/\/api\.example\.test/);
  });

  it('a token for another API names its audience and this one', async () => {
    // (one a slip away, such as a trailing slash, also names it as the audience option to give:
    // resource-server-audience-seventeenth.test.ts)
    const error = await refusal(`Bearer ${await sign({ aud: 'https://other.example.test' })}`);
    assert.equal(error.message, 'the access token is for "https://other.example.test", not this API (https://api.example.test): the caller asks for it with resource=https://api.example.test');
  });

  it('a token of another issuer (another Latchkey, its own key; or this key and another iss) names the issuer', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const otherKey = await refusal(`Bearer ${await sign({ iss: 'http://localhost:3000' }, { key: privateKey })}`);
    assert.match(otherKey.message, /^the access token was issued by "http:\/\/localhost:3000", not http:\/\/127\.0\.0\.1:\d+ \(signature verification failed\)$/);
    const otherIss = await refusal(`Bearer ${await sign({ iss: 'http://localhost:3000' })}`);
    assert.match(otherIss.message, /^the access token was issued by "http:\/\/localhost:3000", not http:\/\/127\.0\.0\.1:\d+ /);
  });

  it('an ID token is "not an access token", naming its typ', async () => {
    const error = await refusal(`Bearer ${await sign({ aud: 'caller', nonce: 'n' }, { typ: 'JWT' })}`);
    assert.equal(error.message, 'not an access token: its typ is "JWT", not "at+jwt" (an ID token? send the access token)');
  });

  it('an expired token says when, by how much, and that a clock ahead of Latchkey\'s does this', async () => {
    const error = await refusal(`Bearer ${await sign({ iat: now() - 1000, exp: now() - 100 })}`);
    assert.match(error.message, /^the access token has expired: issued \S+Z, expired \S+Z, 10\d s before this machine's clock \(\S+Z\); .*clock ahead of Latchkey's \(clockTolerance is 15 s\)$/);
  });

  it('a DPoP proof for another URL names both URLs; one from a skewed clock says by how much', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const token = await sign({ cnf: { jkt: await calculateJwkThumbprint(jwk) } });
    const { createHash } = await import('node:crypto');
    const ath = createHash('sha256').update(token).digest('base64url');
    const proof = (claims: Record<string, unknown>) =>
      new SignJWT({ htm: 'GET', htu: 'https://api.example.test/things', ath, jti: `p${Math.random()}`, iat: now(), ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(privateKey);
    const internal = await refusal(`DPoP ${token}`, { dpop: { proof: await proof({}), method: 'GET', url: 'http://10.0.0.5:4000/things' } });
    assert.equal(internal.code, 'invalid_dpop_proof');
    assert.equal(internal.message, 'DPoP proof: htu "https://api.example.test/things" is not the request URL "http://10.0.0.5:4000/things" (give dpop.url as the client called it: your public origin)');
    const ahead = await refusal(`DPoP ${token}`, { dpop: { proof: await proof({ iat: now() + 120 }), method: 'GET', url: 'https://api.example.test/things' } });
    assert.match(ahead.message, /^DPoP proof: iat is outside the accepted window \(1[12]\d s ahead of this machine's clock; accepted: up to 75 s behind, 15 s ahead\)$/);
    // Held: the right URL and clock pass.
    const claims = await helper.verify(`DPoP ${token}`, { dpop: { proof: await proof({}), method: 'GET', url: 'https://api.example.test/things' } });
    assert.equal(claims.sub, 'caller');
  });
});
