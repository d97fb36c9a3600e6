/**
 * The revocation endpoint's answer as client libraries read it (RFC 7009 §2.2): 200, the body
 * `{}`, Content-Type application/json. oidc-client-ts (a library we did not write) revokes an
 * opaque refresh token, an opaque access token and a JWT access token; before, its
 * revokeToken() failed on the text/plain answer. @badgateway/oauth2-client's revoke() parses
 * every JSON-labelled answer but a 204, as the first test does; it failed on an empty body.
 */
import assert from 'node:assert/strict';
import { InMemoryWebStorage, OidcClient, WebStorageStateStore } from 'oidc-client-ts';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, introspect, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const PASSWORD = 'correct horse battery staple';

describe('e2e: the revocation answer suits client libraries (oidc-client-ts revokeToken)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      env: {
        RESOURCE_SERVERS,
        CLIENTS: JSON.stringify([
          { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
          machineClient(MACHINE),
        ]),
      },
    });
    await server.accounts.create('alice', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), {
      execute: [oidc.allowInsecureRequests],
    });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  /** oidc-client-ts as a confidential client (it also runs in Node, given a state store). */
  const library = (client: { id: string; secret: string }) =>
    new OidcClient({
      authority: server.issuer,
      client_id: client.id,
      client_secret: client.secret,
      client_authentication: 'client_secret_basic',
      redirect_uri: REDIRECT,
      stateStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
    });

  async function signedIn() {
    const flow = await frontChannel(config, {
      redirectUri: REDIRECT,
      username: 'alice',
      password: PASSWORD,
      params: { scope: 'openid offline_access', prompt: 'consent' },
    });
    return oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
  }

  it('answers 200 with a JSON body ({}) labelled application/json, for opaque and JWT tokens alike', async () => {
    const tokens = await signedIn();
    const jwt = await clientCredentialsToken(server.url, MACHINE, API);
    const cases: [string, { id: string; secret: string }, string][] = [
      ['opaque access token', WEB, tokens.access_token],
      ['JWT access token', MACHINE, jwt],
      ['unknown token', WEB, 'no-such-token'],
    ];
    for (const [what, client, token] of cases) {
      const response = await fetch(`${server.url}/token/revocation`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token }),
      });
      assert.equal(response.status, 200, what);
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/, what);
      // As @badgateway/oauth2-client reads it: a JSON label means a body that parses.
      assert.deepEqual(await response.json(), {}, what);
    }
    // Errors keep their JSON bodies.
    const refused = await tokenEndpoint(server.url, '/token/revocation', { id: WEB.id, secret: 'wrong' }, tokens.access_token);
    assert.equal(refused.status, 401);
    assert.equal((refused.body as { error?: string }).error, 'invalid_client');
  });

  it('oidc-client-ts revokes an opaque refresh token and access token: its promise resolves and the tokens are dead', async () => {
    const tokens = await signedIn();
    const client = library(WEB);
    await client.revokeToken(tokens.access_token, 'access_token');
    await client.revokeToken(tokens.refresh_token!, 'refresh_token');
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), oidc.ResponseBodyError);
    assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, false);
  });

  it('oidc-client-ts revokes a JWT access token (answered by Latchkey, not oidc-provider)', async () => {
    const jwt = await clientCredentialsToken(server.url, MACHINE, API);
    const kept = await clientCredentialsToken(server.url, MACHINE, API);
    await library(MACHINE).revokeToken(jwt, 'access_token');
    assert.equal((await introspect(server.url, MACHINE, jwt)).active, false);
    assert.equal((await introspect(server.url, MACHINE, kept)).active, true);
  });
});
