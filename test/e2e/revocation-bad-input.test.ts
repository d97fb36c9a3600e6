/**
 * Bad input at introspection, revocation, the revocation feed and latchkey/resource-server: another
 * client's tokens, malformed tokens, tokens signed by a key we do not have, `alg: none`, HS256
 * keyed with our public key, expired tokens. Each is refused cleanly (the protocol's answer), never
 * with a 500, and revoking what one may not revoke changes nothing.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, basic, clientCredentialsToken, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, tokenEndpoint, grantFeed } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const OTHER = { id: 'other', secret: 'other-client-secret-with-plenty-of-entropy-0123' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const SPA = 'spa';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('e2e: bad input at introspection, revocation, the feed and the resource-server helper', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  let helper: ResourceServer;
  let genuine: string;
  let opaque: string;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      env: {
        RESOURCE_SERVERS,
        CLIENTS: JSON.stringify([
          machineClient(MACHINE, { grant_types: ['client_credentials'] }),
          machineClient(OTHER),
          machineClient(RS),
          { client_id: SPA, token_endpoint_auth_method: 'none', redirect_uris: ['http://localhost:5173/cb'], grant_types: ['authorization_code'] },
        ]),
      },
    });
    await grantFeed(server, RS.id);
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
    genuine = await clientCredentialsToken(server.url, MACHINE);
    opaque = await clientCredentialsToken(server.url, MACHINE, OPAQUE_API);
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    await redis?.stop();
  });

  /** Revocation as the public client: client_id in the body, no secret. */
  async function revokeAsPublic(token: string) {
    const response = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ token, client_id: SPA }),
    });
    return { status: response.status, body: await response.text() };
  }

  /** Forgeries of a genuine token's claims, each refused everywhere. */
  async function forgeries(): Promise<Record<string, string>> {
    const claims = decodeJwt(genuine);
    const current = server.keys.ring.current!;
    const header = { typ: 'at+jwt', kid: current.kid };
    const { privateKey: strangerKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicPem = createPublicKey({ key: current.jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    const ours = await importJWK(current.jwk, 'RS256');
    const now = Math.floor(Date.now() / 1000);
    return {
      'signed by a key we do not have (unknown kid)': await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'unknown-kid' }).sign(strangerKey),
      'signed by a stranger under our kid': await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', ...header }).sign(strangerKey),
      'alg none': `${b64({ alg: 'none', ...header })}.${b64(claims)}.`,
      'HS256 keyed with our public key (PEM)': await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', ...header }).sign(Buffer.from(publicPem as string)),
      'HS256 keyed with our public JWK': await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', ...header })
        .sign(Buffer.from(JSON.stringify(server.keys.ring.publicJwks().keys[0]))),
      'expired, though signed by us': await new SignJWT({ ...claims, iat: now - 7200, exp: now - 3600 }).setProtectedHeader({ alg: 'RS256', ...header }).sign(ours),
      'tampered payload': `${genuine.split('.')[0]}.${b64({ ...claims, scope: 'read write' })}.${genuine.split('.')[2]}`,
    };
  }

  const MALFORMED = ['abc', 'a.b.c', '....', 'eyJhbGciOiJSUzI1NiJ9.e30.x', 'eyJ.eyJ.eyJ', 'ü.ü.ü', 'x'.repeat(8000), `${'eyJhbGciOiJub25lIn0'}.${'A'.repeat(5000)}.`];

  it("a confidential client revoking another client's token: invalid_request (as oidc-provider answers for opaque tokens); the token stays active", async () => {
    for (const token of [genuine, opaque]) {
      const { status, body } = await tokenEndpoint(server.url, '/token/revocation', OTHER, token);
      assert.equal(status, 400, token === genuine ? 'JWT' : 'opaque');
      assert.deepEqual(body, { error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' });
      assert.equal((await introspect(server.url, RS, token)).active, true);
    }
    await helper.sync();
    await helper.verify(genuine);
  });

  it("a public client revoking another client's token: 200 and nothing happens (it is not told the token exists)", async () => {
    for (const token of [genuine, opaque]) {
      assert.deepEqual(await revokeAsPublic(token), { status: 200, body: '{}' });
      assert.equal((await introspect(server.url, RS, token)).active, true);
    }
    const spaIntrospects = await fetch(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ token: genuine, client_id: SPA }),
    });
    assert.deepEqual(await spaIntrospects.json(), { active: false }, "a public client learns nothing about another client's token");
  });

  it('malformed tokens: inactive at introspection, a no-op at revocation, refused by the helper', async () => {
    for (const token of MALFORMED) {
      assert.deepEqual(await introspect(server.url, RS, token), { active: false }, token.slice(0, 40));
      const revoked = await tokenEndpoint(server.url, '/token/revocation', RS, token);
      assert.equal(revoked.status, 200, token.slice(0, 40));
      await assert.rejects(helper.verify(token), TokenRejected);
    }
    const missing = await fetch(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic(RS) },
      body: '',
    });
    assert.equal(missing.status, 400);
    assert.equal(((await missing.json()) as { error: string }).error, 'invalid_request');
    await assert.rejects(helper.verify(undefined), /no access token/);
    // The scheme without its token breaks the header's grammar: a malformed request (RFC 6750 §3.1), as
    // Latchkey's own endpoints answer it (sixteenth passes, the letter of the specs).
    await assert.rejects(helper.verify('Bearer '), (error: Error) => error instanceof TokenRejected && error.code === 'invalid_request' && error.status === 400);
  });

  it('forged tokens (unknown kid, alg none, HS256 with our public key, expired, tampered): inactive, revocation a no-op, helper refuses', async () => {
    for (const [what, token] of Object.entries(await forgeries())) {
      assert.deepEqual(await introspect(server.url, RS, token), { active: false }, what);
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200, what);
      await assert.rejects(helper.verify(token), TokenRejected, what);
    }
    assert.equal((await introspect(server.url, RS, genuine)).active, true, 'revoking forgeries did not touch the genuine token');
  });

  it('the helper refuses a genuine token for another audience, and a token without a required scope with insufficient_scope', async () => {
    const feedToken = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    await assert.rejects(helper.verify(feedToken), (error: Error) => error instanceof TokenRejected && error.code === 'invalid_token' && /is for ".*\/revocations", not this API/.test(error.message));
    await assert.rejects(helper.verify(genuine, { scopes: ['write'] }), (error: Error) => {
      assert.ok(error instanceof TokenRejected);
      assert.equal(error.code, 'insufficient_scope');
      return true;
    });
    assert.equal((await helper.verify(genuine, { scopes: ['read'] })).scope, 'read');
  });

  it('the feed: no token → 401 challenge; a bad or foreign token → invalid_token; a bad cursor → 400; POST → 405', async () => {
    const feed = (headers: Record<string, string> = {}, query = '', method = 'GET') => fetch(`${server.url}/revocations${query}`, { headers, method });
    const bare = await feed();
    assert.equal(bare.status, 401);
    assert.match(bare.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+", scope="revocations"$/);

    for (const token of ['garbage', genuine, ...Object.values(await forgeries())]) {
      const response = await feed({ authorization: `Bearer ${token}` });
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
    const feedToken = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    assert.match(bare.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="${server.issuer}/revocations"`), 'the API identifier, as the admin API names its realm');
    for (const query of ['?after=zzz', '?after=1-2-3', '?limit=abc', '?limit=-1', '?limit=0', '?limit=1001', '?limit=01', '?limit=5&limit=6', '?limit[]=1', '?after[]=1-0']) {
      const response = await feed({ authorization: `Bearer ${feedToken}` }, query);
      assert.equal(response.status, 400, query);
      const body = (await response.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_request');
      // Names the parameter at fault, and only it.
      assert.match(body.error_description, query.includes('[]') ? /^limit and after are given once/ : query.startsWith('?after') ? /^after must be/ : /^limit must be a number from 1 to 1000$/, query);
    }
    assert.equal((await feed({ authorization: `Bearer ${feedToken}` }, '', 'POST')).status, 405);
    assert.equal((await feed({ authorization: `Bearer ${feedToken}` }, '?limit=5')).status, 200);
    assert.equal((await feed({ authorization: `Bearer ${feedToken}` }, '?limit=1000')).status, 200);
  });

  it('a client not allowed client_credentials (a public app) cannot get a token for the feed', async () => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: SPA, resource: `${server.issuer}/revocations`, scope: 'revocations' }),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { access_token?: string; error_description?: string };
    assert.equal(body.access_token, undefined);
    assert.match(body.error_description ?? '', /grant type is not allowed/);
  });

  it('the server still answers after all of the above', async () => {
    assert.equal((await fetch(`${server.url}/.well-known/openid-configuration`)).status, 200);
    assert.equal((await introspect(server.url, RS, genuine)).active, true);
  });
});
