/**
 * "Latchkey hands out more than was granted", attacked black box against one running Latchkey on
 * its own Redis: each test performs one attack over HTTP and asserts it is refused, and that the
 * honest request next to it still works. docs/security.md's threat model points here.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, basic, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'granting attacks passphrase';
const secret = (name: string) => `${name}-secret-with-plenty-of-entropy-0123456789abcdef`;
const APP: ClientCredentials = { id: 'app', secret: secret('app') };
const OPS: ClientCredentials = { id: 'ops', secret: secret('ops') };
const RS: ClientCredentials = { id: 'rs', secret: secret('rs') };

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };
type Answer = { status: number; body: Record<string, string> };

/** A DPoP proof made by hand (RFC 9449 §4.2). */
async function proof(key: KeyPair, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
    .sign(key.privateKey);
}
const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

describe('attacks: Latchkey hands out no more than was granted (black box)', function () {
  this.timeout(60_000);
  let server: TestServer;

  const token = async (client: ClientCredentials, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client), ...headers },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: {
        REGISTRATION_OPEN: 'true',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read', 'write'], format: 'jwt', grants: [{ client_id: RS.id, introspect: true }] }]),
      },
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: OPS.id, client_secret: OPS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
        { client_id: RS.id, client_secret: RS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
      ],
    });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.apis.grant(RS.id, `${server.issuer}/revocations`, { scopes: ['revocations'] });
    await server.accounts.create('pat', PASSWORD);
  });
  after(() => server?.stop());

  it('a DPoP-bound token for the admin API or the revocation feed, stolen and presented as a Bearer token (or with a proof by another key, or a replayed proof), is refused; with its own proof it works (RFC 9449 §7.1)', async () => {
    const key = await generateKeyPair('ES256', { extractable: true });
    const thief = await generateKeyPair('ES256', { extractable: true });
    const privileged = [
      { client: OPS, resource: `${server.issuer}/admin`, scope: 'admin', url: `${server.issuer}/admin/users` },
      { client: RS, resource: `${server.issuer}/revocations`, scope: 'revocations', url: `${server.issuer}/revocations` },
    ];
    for (const { client, resource, scope, url } of privileged) {
      const issued = await token(client, { grant_type: 'client_credentials', resource, scope }, { dpop: await proof(key, { htm: 'POST', htu: `${server.issuer}/token` }) });
      assert.equal(issued.status, 200, JSON.stringify(issued.body));
      assert.equal(issued.body.token_type, 'DPoP', resource);
      const bound = issued.body.access_token!;
      const call = (authorization: string, dpop?: string) => fetch(url, { headers: { authorization, ...(dpop ? { dpop } : {}) } });

      const asBearer = await call(`Bearer ${bound}`);
      assert.equal(asBearer.status, 401, `${url}: a DPoP-bound token as a Bearer token`);
      assert.match(asBearer.headers.get('www-authenticate') ?? '', /^DPoP /);
      assert.equal(((await asBearer.json()) as { error: string }).error, 'invalid_token');
      assert.equal((await call(`DPoP ${bound}`)).status, 401, `${url}: the DPoP scheme without a proof`);
      assert.equal((await call(`DPoP ${bound}`, await proof(thief, { htm: 'GET', htu: url, ath: ath(bound) }))).status, 401, `${url}: a proof by another key`);
      assert.equal((await call(`DPoP ${bound}`, await proof(key, { htm: 'GET', htu: `${server.issuer}/elsewhere`, ath: ath(bound) }))).status, 401, `${url}: a proof for another URL`);

      const genuine = await proof(key, { htm: 'GET', htu: url, ath: ath(bound) });
      assert.equal((await call(`DPoP ${bound}`, genuine)).status, 200, `${url}: with its key's proof`);
      assert.equal((await call(`DPoP ${bound}`, genuine)).status, 401, `${url}: the same proof again (replay)`);

      // A bearer token is not passed off as a DPoP one either.
      const plain = (await token(client, { grant_type: 'client_credentials', resource, scope })).body.access_token!;
      assert.equal((await call(`DPoP ${plain}`, await proof(key, { htm: 'GET', htu: url, ath: ath(plain) }))).status, 401, `${url}: a bearer token with the DPoP scheme`);
      assert.equal((await call(`Bearer ${plain}`)).status, 200, `${url}: a bearer token as a Bearer token`);
    }
    assert.ok(decodeJwt((await token(RS, { grant_type: 'client_credentials', resource: `${server.issuer}/revocations`, scope: 'revocations' }, { dpop: await proof(key, { htm: 'POST', htu: `${server.issuer}/token` }) })).body.access_token!).cnf);
  });
});
