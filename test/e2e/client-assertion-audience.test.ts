/**
 * Client assertion audience injection (CVE-2025-27370/27371; draft-ietf-oauth-rfc7523bis; FAPI 2.0
 * §5.3.2.1): a malicious authorization server advertises one of our endpoint URLs (our token
 * endpoint, or our issuer) as an endpoint of its own, a client of both signs a private_key_jwt
 * assertion for it, and the malicious server replays the assertion here as that client. So an
 * assertion's aud must be our issuer identifier: an endpoint URL alone names no authorization server
 * and is refused with invalid_client at every endpoint that takes client authentication (token,
 * introspection, revocation, pushed authorization requests, device authorization). The assertions
 * here are signed with jose, as an attacker replaying a genuine one would hold them; the unmodified
 * client library (openid-client v6, which sends the issuer) keeps working at each endpoint.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.js';

const API = 'https://api.example.test';
const REDIRECT = 'https://signer.example.test/callback';
const EVIL_ISSUER = 'https://evil-as.example.test';
const insecure = { execute: [oidc.allowInsecureRequests] };

describe('client assertions name our issuer: endpoint-only audiences refused (audience injection)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let key: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    server = await startServer({
      ownRedis: true,
      env: { RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'signer', scopes: ['read'] }] }]) },
      clients: [
        {
          client_id: 'signer',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'signer-key', alg: 'ES256', use: 'sig' }] },
          grant_types: ['authorization_code', 'client_credentials'],
          response_types: ['code'],
          redirect_uris: [REDIRECT],
        },
        {
          client_id: 'tv',
          application_type: 'native',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'signer-key', alg: 'ES256', use: 'sig' }] },
          grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
          response_types: [],
          redirect_uris: [],
        },
      ],
    });
  });
  after(() => server?.stop());

  const assertion = (aud: JWTPayload['aud'], typ?: string, client = 'signer') => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: client, sub: client, aud, jti: randomUUID(), iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'signer-key', ...(typ && { typ }) })
      .sign(key);
  };

  const post = async (path: string, params: Record<string, string>, clientAssertion: string, client = 'signer') => {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ ...params, client_id: client, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion }),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, string> };
  };

  const clientCredentials = async () => {
    const answer = await post('/token', { grant_type: 'client_credentials', resource: API, scope: 'read' }, await assertion(server.issuer));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.access_token!;
  };

  /** Each endpoint that takes client authentication, with a request it answers when the client is authenticated. */
  const endpoints: { path: string; params: () => Promise<Record<string, string>>; ok: number; client?: string }[] = [
    { path: '/token', params: async () => ({ grant_type: 'client_credentials', resource: API, scope: 'read' }), ok: 200 },
    { path: '/token/introspection', params: async () => ({ token: await clientCredentials() }), ok: 200 },
    { path: '/token/revocation', params: async () => ({ token: await clientCredentials() }), ok: 200 },
    {
      path: '/request',
      params: async () => ({ response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }),
      ok: 201,
    },
    { path: '/device/auth', params: async () => ({ scope: 'openid' }), ok: 200, client: 'tv' },
  ];

  for (const endpoint of endpoints) {
    it(`${endpoint.path}: an assertion whose aud is only an endpoint URL (the token endpoint's, or its own) is invalid_client; the issuer identifier is accepted`, async () => {
      for (const aud of [`${server.issuer}/token`, `${server.issuer}${endpoint.path}`, [`${server.issuer}/token`], [`${server.issuer}/token`, `${server.issuer}${endpoint.path}`]]) {
        const refused = await post(endpoint.path, await endpoint.params(), await assertion(aud, undefined, endpoint.client), endpoint.client);
        assert.equal(refused.status, 401, `aud ${JSON.stringify(aud)}: ${JSON.stringify(refused.body)}`);
        assert.equal(refused.body.error, 'invalid_client', JSON.stringify(aud));
      }
      const accepted = await post(endpoint.path, await endpoint.params(), await assertion(server.issuer, undefined, endpoint.client), endpoint.client);
      assert.equal(accepted.status, endpoint.ok, JSON.stringify(accepted.body));
    });
  }

  it('an array holding our issuer with anyone else is refused (another server\'s issuer, a URL not ours); with our own endpoint URLs only (openid-client before v6: [issuer, token_endpoint]) or alone it is accepted', async () => {
    const token = { grant_type: 'client_credentials', resource: API, scope: 'read' };
    // The malicious server's issuer beside ours: it advertised our issuer as one of its endpoints.
    for (const aud of [[EVIL_ISSUER, server.issuer], [server.issuer, `${EVIL_ISSUER}/token`], [server.issuer, 'signer']]) {
      const refused = await post('/token', token, await assertion(aud));
      assert.equal(refused.status, 401, JSON.stringify(aud));
      assert.equal(refused.body.error, 'invalid_client');
    }
    for (const aud of [[server.issuer], [server.issuer, `${server.issuer}/token`]]) {
      assert.equal((await post('/token', token, await assertion(aud))).status, 200, JSON.stringify(aud));
    }
  });

  it('an assertion explicitly typed client-authentication+jwt (rfc7523bis) names the issuer alone', async () => {
    const token = { grant_type: 'client_credentials', resource: API, scope: 'read' };
    const both = await post('/token', token, await assertion([server.issuer, `${server.issuer}/token`], 'client-authentication+jwt'));
    assert.equal(both.status, 401, JSON.stringify(both.body));
    assert.equal((await post('/token', token, await assertion(server.issuer, 'client-authentication+jwt'))).status, 200);
    assert.equal((await post('/token', token, await assertion([server.issuer], 'client-authentication+jwt'))).status, 200);
  });

  it("a JWT the client typed as something else (a DPoP proof, a request object, an access token, a logout token) is no client assertion, whatever its claims; untyped or typed JWT it is (RFC 8725 §3.11, RFC 7523 §3)", async () => {
    const token = { grant_type: 'client_credentials', resource: API, scope: 'read' };
    for (const typ of ['dpop+jwt', 'oauth-authz-req+jwt', 'at+jwt', 'logout+jwt', 'application/dpop+jwt']) {
      const refused = await post('/token', token, await assertion(server.issuer, typ));
      assert.equal(refused.status, 401, `typ ${typ}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, 'invalid_client', typ);
    }
    for (const typ of [undefined, 'JWT', 'jwt', 'application/jwt']) {
      assert.equal((await post('/token', token, await assertion(server.issuer, typ))).status, 200, `typ ${typ}`);
    }
  });

  it('openid-client v6 with private_key_jwt, unmodified, authenticates at the token, introspection, revocation and pushed authorization request endpoints', async () => {
    const config = await oidc.discovery(new URL(server.issuer), 'signer', { token_endpoint_auth_method: 'private_key_jwt' }, oidc.PrivateKeyJwt({ key, kid: 'signer-key' }), insecure);
    const tokens = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'read' });
    assert.ok(tokens.access_token);
    const introspected = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(introspected.active, true);
    await oidc.tokenRevocation(config, tokens.access_token);
    const pushed = await oidc.buildAuthorizationUrlWithPAR(config, { scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    assert.ok(pushed.searchParams.get('request_uri'));
  });
});
