/**
 * A machine client with openid-client (which we did not write) against Latchkey on Redis:
 * discovery → client_credentials → verify the JWT with jose's remote JWKS → introspect → revoke
 * → introspect again.
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const API = 'https://api.example.test';
const OPAQUE_API = 'https://ledger.example.test';
const SECRET = 'machine-secret-with-plenty-of-entropy-0123456789';

/** Two APIs; the operator grants `machine` their scopes (no client gets any otherwise). */
export const resourceServersEnv = JSON.stringify([
  { identifier: API, scopes: ['read', 'write'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['read', 'write'] }] },
  { identifier: OPAQUE_API, scopes: ['read'], format: 'opaque', grants: [{ client_id: 'machine', scopes: ['read'] }] },
]);

describe('e2e: client_credentials, JWT verification, introspection and revocation (openid-client)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      env: {
        RESOURCE_SERVERS: resourceServersEnv,
        CLIENTS: JSON.stringify([
          {
            client_id: 'machine',
            client_secret: SECRET,
            grant_types: ['client_credentials'],
            response_types: [],
            redirect_uris: [],
          },
        ]),
      },
    });
    config = await oidc.discovery(new URL(server.issuer), 'machine', SECRET, oidc.ClientSecretBasic(SECRET), {
      execute: [oidc.allowInsecureRequests],
    });
  });

  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it('discovery names our issuer and endpoints', () => {
    const metadata = config.serverMetadata();
    assert.equal(metadata.issuer, server.issuer);
    assert.equal(metadata.token_endpoint, `${server.issuer}/token`);
    assert.deepEqual(metadata.response_types_supported, ['code']);
    assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
    assert.ok(metadata.grant_types_supported?.includes('client_credentials'));
  });

  it('issues an RFC 9068 JWT access token that verifies against our JWKS, then revocation makes it inactive', async () => {
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: API });
    const token = tokens.access_token;
    assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
    assert.equal(decodeProtectedHeader(token).alg, 'RS256');

    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload } = await jwtVerify(token, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' });
    assert.equal(payload.client_id, 'machine');
    assert.equal(payload.scope, 'read');
    assert.equal(payload.sub, 'machine');
    assert.ok(payload.jti && payload.exp && payload.iat);

    const before = await oidc.tokenIntrospection(config, token);
    assert.equal(before.active, true);
    assert.equal(before.jti, payload.jti);
    assert.equal(before.client_id, 'machine');
    assert.equal(before.scope, 'read');
    assert.equal(before.aud, API);

    await oidc.tokenRevocation(config, token);
    const after = await oidc.tokenIntrospection(config, token);
    assert.deepEqual(after, { active: false });
  });

  it('revoking one JWT leaves other tokens active', async () => {
    const first = (await oidc.clientCredentialsGrant(config, { scope: 'read', resource: API })).access_token;
    const second = (await oidc.clientCredentialsGrant(config, { scope: 'write', resource: API })).access_token;
    await oidc.tokenRevocation(config, first);
    assert.equal((await oidc.tokenIntrospection(config, first)).active, false);
    assert.equal((await oidc.tokenIntrospection(config, second)).active, true);
  });

  it('issues opaque tokens for an opaque resource server; introspection and revocation work on them', async () => {
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: OPAQUE_API });
    assert.throws(() => decodeProtectedHeader(tokens.access_token));
    const before = await oidc.tokenIntrospection(config, tokens.access_token);
    assert.equal(before.active, true);
    assert.equal(before.aud, OPAQUE_API);
    await oidc.tokenRevocation(config, tokens.access_token);
    assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, false);
  });

  it('a JWT signed by someone else is inactive at introspection, and revoking it is a harmless no-op', async () => {
    const genuine = (await oidc.clientCredentialsGrant(config, { scope: 'read', resource: API })).access_token;
    const [header, body] = genuine.split('.');
    const forged = `${header}.${body}.${Buffer.from('not our signature').toString('base64url')}`;
    assert.deepEqual(await oidc.tokenIntrospection(config, forged), { active: false });
    await oidc.tokenRevocation(config, forged);
    assert.equal((await oidc.tokenIntrospection(config, genuine)).active, true);
  });

  it('rejects a scope the resource server does not have', async () => {
    await assert.rejects(oidc.clientCredentialsGrant(config, { scope: 'delete', resource: API }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_scope');
      return true;
    });
  });

  it('scopes it holds joined with commas (read,write, as Grant joins them unless told scope_delimiter: " "): the refusal says scopes are separated by spaces (security-passes.md, tenth passes, client libraries)', async () => {
    await assert.rejects(oidc.clientCredentialsGrant(config, { scope: 'read,write', resource: API }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_scope');
      assert.equal(error.error_description, `scope not granted to this client at ${API}: read,write; scopes are separated by spaces, not commas (RFC 6749 section 3.3)`);
      return true;
    });
    await assert.rejects(oidc.clientCredentialsGrant(config, { scope: 'delete,purge', resource: API }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error_description, `scope not granted to this client at ${API}: delete,purge`);
      return true;
    });
  });

  it('rejects an unknown resource indicator with invalid_target', async () => {
    await assert.rejects(oidc.clientCredentialsGrant(config, { scope: 'read', resource: 'https://nowhere.example' }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_target');
      return true;
    });
  });
});
