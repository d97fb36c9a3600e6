/**
 * After `latchkey keys rotate --now --revoke-current` through one instance (the CLI next to it),
 * another instance on the same store signs nothing more with the revoked key, though it follows
 * the ring only every keys.refreshInterval (here 300 s: without the fix, the window is the whole
 * test). Its very next ID token and client_credentials JWT carry the key that replaced the revoked
 * one, verify against the JWKS it serves now, and are active at introspection; before, both were
 * signed by the revoked key, refused everywhere (a sign-in that fails at the app).
 */
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { frontChannel } from '../helpers/front-channel.js';
import { ringStore } from '../../src/keyring/index.js';
import { revokeFromRing } from '../../src/keyring/service.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'revoked key signing test password';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const KEEPER = { id: 'keeper', secret: 'keeper-app-secret-with-plenty-of-entropy-0123456' };

describe('e2e: an instance signs nothing with a key revoked through another', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let first: TestServer;
  let second: TestServer;
  let firstEnv: Record<string, string>;

  before(async () => {
    redis = await startRedisServer();
    const CLIENTS = JSON.stringify([
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] },
      { client_id: KEEPER.id, client_secret: KEEPER.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
      machineClient(MACHINE),
      machineClient(RS),
    ]);
    // Neither instance reads the ring again on its own during the test: the window is deterministic.
    const env = { CLIENTS, RESOURCE_SERVERS, KEYS_REFRESH_INTERVAL: '300', KEYS_PUBLISH_LEAD: '600' };
    const start = async () => {
      const dir = testDir();
      const port = await freePort();
      const settings = { redisUrl: redis.url, dir, port, env };
      return { server: await startServer(settings), env: testEnv(dir, port, settings) };
    };
    const a = await start();
    first = a.server;
    firstEnv = a.env;
    second = (await start()).server;
    await first.accounts.create('alice', PASSWORD);
  });
  after(async () => {
    await second?.stop();
    await first?.stop();
    await redis?.stop();
  });

  const publishedBy = async (server: TestServer) => createLocalJWKSet((await (await fetch(`${server.url}/jwks`)).json()) as { keys: JWK[] });

  /** `keys rotate --now --revoke-current` through the CLI next to the first instance: the kid it revoked. */
  async function revokeCurrent(): Promise<string> {
    const run = await latchkey(firstEnv, ['keys', 'rotate', '--now', '--revoke-current']);
    assert.equal(run.status, 0, run.stderr);
    const [revoked] = (JSON.parse(run.stdout) as { revoked: string[] }).revoked;
    return revoked!;
  }

  it("the other instance's next ID token (a code redeemed there) is signed by the key that replaced it", async () => {
    const signing = second.keys.ring.current!.kid;
    const config = await oidc.discovery(new URL(second.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    // A sign-in at the other instance, its code redeemed after the revocation.
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid' }, agent: new Agent() });
    assert.equal(await revokeCurrent(), signing);

    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
    assert.notEqual(decodeProtectedHeader(tokens.id_token!).kid, signing, 'ID token signed by the revoked key');
    assert.equal(decodeProtectedHeader(tokens.id_token!).kid, second.keys.ring.current!.kid);
    await jwtVerify(tokens.id_token!, await publishedBy(second), { issuer: second.issuer, audience: WEB.id });
  });

  it("the other instance's next client_credentials JWT is signed by the key that replaced it", async () => {
    const signing = second.keys.ring.current!.kid;
    // Before: the other instance signs with the current key (and has read its kid entry's absence).
    assert.equal(decodeProtectedHeader(await clientCredentialsToken(second.url, MACHINE)).kid, signing);
    assert.equal(await revokeCurrent(), signing);

    const token = await clientCredentialsToken(second.url, MACHINE);
    assert.notEqual(decodeProtectedHeader(token).kid, signing, 'signed by the revoked key');
    await jwtVerify(token, await publishedBy(second), { issuer: second.issuer, audience: API, typ: 'at+jwt' });
    assert.equal((await introspect(second.url, RS, token)).active, true);
  });

  it('between the kid entry and the ring that replaces the key, the other instance answers 503, then signs with the replacing key', async () => {
    const signing = second.keys.ring.current!.kid;
    // What `keys revoke` writes first; the ring is written after (here: not yet).
    await first.revocations.revokeKey(signing, 60);
    const response = await fetch(`${second.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${MACHINE.id}:${MACHINE.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
    });
    assert.equal(response.status, 503, await response.text());
    assert.ok(response.headers.get('retry-after'));

    assert.equal(await revokeCurrent(), signing);
    const token = await clientCredentialsToken(second.url, MACHINE);
    assert.equal(decodeProtectedHeader(token).kid, second.keys.ring.current!.kid);
    assert.notEqual(decodeProtectedHeader(token).kid, signing);
  });

  it('a refresh and a code exchange answered 503 in that window spend nothing: sent again once the ring is written, the same refresh token and the same code are taken (before, both were spent, and the retries were refused as replays, the grant revoked)', async () => {
    const config = await oidc.discovery(new URL(second.issuer), KEEPER.id, KEEPER.secret, oidc.ClientSecretBasic(KEEPER.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const signIn = () => frontChannel(config, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' }, agent });
    const initial = await signIn();
    const { refresh_token: refreshToken } = await oidc.authorizationCodeGrant(config, initial.callback, { pkceCodeVerifier: initial.verifier });
    assert.ok(refreshToken);
    const pending = await signIn();
    const token = (body: Record<string, string>) =>
      fetch(`${second.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${KEEPER.id}:${KEEPER.secret}`).toString('base64')}` },
        body: new URLSearchParams(body),
      });
    const refresh = () => token({ grant_type: 'refresh_token', refresh_token: refreshToken });
    const exchange = () => token({ grant_type: 'authorization_code', code: pending.callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pending.verifier });

    const signing = second.keys.ring.current!.kid;
    await first.revocations.revokeKey(signing, 60);
    for (const [what, answer] of [['refresh', await refresh()], ['code exchange', await exchange()]] as const) {
      const body = (await answer.json()) as { error?: string };
      assert.equal(answer.status, 503, `${what}: ${JSON.stringify(body)}`);
      assert.equal(body.error, 'temporarily_unavailable', what);
    }

    assert.equal(await revokeCurrent(), signing);
    for (const [what, answer] of [['refresh', await refresh()], ['code exchange', await exchange()]] as const) {
      const body = (await answer.json()) as { id_token?: string; refresh_token?: string; error?: string };
      assert.equal(answer.status, 200, `${what} sent again: ${JSON.stringify(body)}`);
      assert.equal(decodeProtectedHeader(body.id_token!).kid, second.keys.ring.current!.kid, what);
      assert.ok(body.refresh_token, what);
    }
  });

  it('a request signing between the kid entry and the ring written a moment after waits for the ring, and is signed by the replacing key (no 503: the CLI writes the ring right after the entry)', async () => {
    const signing = second.keys.ring.current!.kid;
    await first.revocations.revokeKey(signing, 60);
    const answer = clientCredentialsToken(second.url, MACHINE);
    // The ring, as `keys revoke` writes it after its kid entry (here a little later than the CLI would).
    await new Promise((done) => setTimeout(done, 100));
    await revokeFromRing(await ringStore(first.config, first.kv), [signing], first.config.keys.rsaBits);
    const token = await answer;
    assert.notEqual(decodeProtectedHeader(token).kid, signing, 'signed by the revoked key');
    assert.equal(decodeProtectedHeader(token).kid, second.keys.ring.current!.kid);
    await jwtVerify(token, await publishedBy(second), { issuer: second.issuer, audience: API, typ: 'at+jwt' });
  });
});
