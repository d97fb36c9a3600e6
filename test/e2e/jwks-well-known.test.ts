/**
 * The JWKS at `/.well-known/jwks.json` too, for verifiers that take only an issuer and do not read
 * discovery: get-jwks (@fastify/jwt's documented recipe) fetches `<iss>/.well-known/jwks.json` by
 * default and found a 404, so no token of ours verified there. The test does what get-jwks does:
 * the token's `iss`, that path, the key of the token's `kid` and `alg`, then the signature.
 */
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };

describe('e2e: the JWKS at /.well-known/jwks.json (get-jwks)', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    // A low per-address JWKS allowance, for the last test (the tests before make 4 JWKS requests).
    server = await startServer({ env: { RESOURCE_SERVERS, CLIENTS: JSON.stringify([machineClient(MACHINE)]), RATE_LIMIT_METADATA_PER_IP: '8' } });
  });
  after(async () => server?.stop());

  it("a JWT access token verifies against <iss>/.well-known/jwks.json, found by its kid and alg as get-jwks finds it", async () => {
    const token = await clientCredentialsToken(server.url, MACHINE, API);
    const { iss } = decodeJwt(token);
    const { kid, alg } = decodeProtectedHeader(token);
    // get-jwks: `${domain}/.well-known/jwks.json`, domain given a trailing slash.
    const response = await fetch(new URL('.well-known/jwks.json', `${iss}/`));
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/jwk-set\+json/);
    const jwks = (await response.json()) as JSONWebKeySet;
    assert.ok(jwks.keys.some((key) => key.kid === kid && key.alg === alg), 'the key of the token is there by kid and alg');
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer: server.issuer, audience: API });
    assert.equal(payload.client_id, MACHINE.id);
  });

  it('answers as the JWKS route does: the same keys, cacheable, any origin, 304 on a matching ETag', async () => {
    const engine = await fetch(`${server.url}/jwks`);
    const known = await fetch(`${server.url}/.well-known/jwks.json`);
    assert.deepEqual(await known.json(), await engine.json());
    for (const header of ['cache-control', 'etag', 'access-control-allow-origin', 'cross-origin-resource-policy']) {
      assert.equal(known.headers.get(header), engine.headers.get(header), header);
    }
    assert.match(known.headers.get('cache-control') ?? '', /^public, max-age=\d+$/);
    const unchanged = await fetch(`${server.url}/.well-known/jwks.json`, { headers: { 'if-none-match': known.headers.get('etag')! } });
    assert.equal(unchanged.status, 304);
    // Discovery still names the engine's path.
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
    assert.equal(discovery.jwks_uri, `${server.issuer}/jwks`);
  });

  it('is counted against the JWKS allowance per address, as the JWKS route is', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1) statuses.push((await fetch(`${server.url}/.well-known/jwks.json`)).status);
    assert.ok(statuses.includes(200), statuses.join());
    assert.ok(statuses.includes(429), statuses.join());
    assert.equal((await fetch(`${server.url}/jwks`)).status, 429, 'one allowance for both paths');
  });
});
