/**
 * The red team's eighth pass at "Latchkey hands out more than was granted" (2026-12-02), black box:
 * a refresh token a client got while it authenticated (a confidential client: its secret or key
 * constrains the token, RFC 9700 §4.14.2) was redeemed with the client's `client_id` alone once the
 * client became public by a change Latchkey does not see as a write: its entry in the configuration
 * (`CLIENTS`) changed to `token_endpoint_auth_method: none` and the server restarted, or a Client ID
 * Metadata Document dropping its key. A stored client made public ends what it holds (the delegated
 * mark); these did not, so whoever had taken a refresh token from the client's server refreshed it
 * without its secret. That was so before its fix; the rest of the pass held, and docs/security-passes.md
 * lists what was tried.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';

const PASSWORD = 'red team granted eight passphrase';
const REDIRECT = 'https://notes.example.test/callback';
const SECRET = 'notes-client-secret-with-plenty-of-entropy-0123456789';
const CONFIDENTIAL = { client_id: 'notes', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
const PUBLIC = { client_id: 'notes', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };

describe('e2e: red team, eighth pass, what a client got while it authenticated is not redeemed once it is public', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer | undefined;
  let dir: string;
  let port: number;

  before(async () => {
    redis = await startRedisServer();
    dir = testDir();
    port = await freePort();
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(client: Record<string, unknown>): Promise<TestServer> {
    await server?.stop();
    server = await startServer({ redisUrl: redis.url, dir, port, clients: [client] });
    return server;
  }

  /** A sign-in with offline access at `config`'s client; its refresh token. */
  async function refreshTokenOf(config: oidc.Configuration): Promise<string> {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'sasha', password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(tokens.refresh_token, 'a refresh token');
    return tokens.refresh_token;
  }

  /** A refresh as a public client sends it: its client_id, no secret. */
  async function refreshWithClientIdAlone(refreshToken: string, clientId = 'notes'): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('a confidential client made public in the configuration (restart): its earlier refresh token needs the secret it no longer has; one got while public refreshes (RFC 9700 §4.14.2)', async () => {
    let running = await start(CONFIDENTIAL);
    await running.accounts.create('sasha', PASSWORD);
    const confidential = await oidc.discovery(new URL(running.issuer), 'notes', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const gotWhileConfidential = await refreshTokenOf(confidential);

    running = await start(PUBLIC);
    const taken = await refreshWithClientIdAlone(gotWhileConfidential);
    assert.equal(taken.status, 400, `a refresh token got with the secret, redeemed with the client_id alone: ${JSON.stringify(taken.body)}`);
    assert.equal(taken.body.error, 'invalid_grant');

    // The client as it is now works as any public client: a refresh token got while public refreshes.
    const publicConfig = await oidc.discovery(new URL(running.issuer), 'notes', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const own = await refreshWithClientIdAlone(await refreshTokenOf(publicConfig));
    assert.equal(own.status, 200, JSON.stringify(own.body));

    // Made confidential again, the refresh token of its confidential days stays ended: the change to
    // public, seen at the restart, ended what the client held on people's behalf, as the same change
    // through the admin API does (tenth endings pass; it refreshed with the secret before).
    running = await start(CONFIDENTIAL);
    const again = await fetch(`${running.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`notes:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: gotWhileConfidential }),
    });
    assert.equal(again.status, 400);
    assert.equal(((await again.json()) as { error?: string }).error, 'invalid_grant');
  });

  it('a Client ID Metadata Document that drops its key (private_key_jwt to none): the refresh token got with the key is not redeemed with the client_id alone', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'agent', alg: 'ES256', use: 'sig' }] });
    let document = '';
    const documents = http.createServer((req, res) => {
      if (req.url === '/keys.json') return res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
      if (req.url === '/agent.json') return res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' }).end(document);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(documents.address() as AddressInfo).port}`;
      const clientId = `${base}/agent.json`;
      const callback = `${base}/callback`;
      const described = (extra: Record<string, unknown>) =>
        JSON.stringify({ client_id: clientId, client_name: 'Agent', redirect_uris: [callback], grant_types: ['authorization_code', 'refresh_token'], ...extra });
      document = described({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${base}/keys.json` });
      await server?.stop();
      server = await startServer({ redisUrl: redis.url, dir, port, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1' } });
      await server.accounts.create('robin', PASSWORD);
      const keyed = await oidc.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'private_key_jwt' }, oidc.PrivateKeyJwt(privateKey), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const { page, verifier } = await startAuthorization(agent, keyed, callback, { scope: 'openid offline_access', prompt: 'consent' });
      const done = await signInSteps(agent, page, { username: 'robin', password: PASSWORD, stopAt: callback });
      const tokens = await oidc.authorizationCodeGrant(keyed, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
      assert.ok(tokens.refresh_token, 'a refresh token got with the key');

      document = described({ token_endpoint_auth_method: 'none' });
      // Until the cached copy expires the client still authenticates (invalid_client, nothing spent); then it is public.
      let answer: { status: number; body: Record<string, unknown> } | undefined;
      await eventually(async () => {
        answer = await refreshWithClientIdAlone(tokens.refresh_token!, clientId);
        assert.notEqual(answer.status, 401, JSON.stringify(answer.body));
      }, 50, 200);
      assert.equal(answer!.status, 400, `a refresh token got with the key, redeemed with the client_id alone: ${JSON.stringify(answer!.body)}`);
      assert.equal(answer!.body.error, 'invalid_grant');
    } finally {
      documents.closeAllConnections();
      documents.close();
    }
  });
});
