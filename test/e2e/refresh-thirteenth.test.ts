/**
 * Refresh tokens attacked (thirteenth fresh-eyes passes): another client's revocation of a
 * person's refresh token, and a public client's DPoP-bound refresh token presented with another
 * key or none, also as a just-rotated token within ttl.refreshReuseGrace (RFC 7009 §2.1,
 * RFC 9449 §5, RFC 9700 §4.14).
 */
import assert from 'node:assert/strict';
import { generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { proof } from '../helpers/in-flight.js';
import { latchkey } from '../helpers/process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, introspect } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const OTHER = { id: 'other', secret: 'other-app-secret-with-plenty-of-entropy-012345' };
const SPA = 'spa';
const PASSWORD = 'correct horse battery staple';
const CLIENTS = JSON.stringify([
  ...[WEB, OTHER].map(({ id, secret }) => ({ client_id: id, client_secret: secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] })),
  { client_id: SPA, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
]);
/** ttl.refreshReuseGrace, seconds: long enough that nothing here leaves it. */
const GRACE = 30;

interface Answer {
  readonly status: number;
  readonly body: { refresh_token?: string; access_token?: string; error?: string };
}

async function refreshAs(server: TestServer, refreshToken: string, client: { id: string; secret: string }): Promise<Answer> {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

describe('e2e: refresh tokens attacked (thirteenth passes)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({ redisUrl: redis.url, env: { CLIENTS, TTL_REFRESH_REUSE_GRACE: String(GRACE) } });
    await server.accounts.create('alice', PASSWORD);
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  async function configFor(id: string, auth: oidc.ClientAuth, secret?: string) {
    return oidc.discovery(new URL(server.issuer), id, secret, auth, { execute: [oidc.allowInsecureRequests] });
  }

  async function signIn(config: oidc.Configuration, dpop?: oidc.DPoPHandle) {
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' } });
    return oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, undefined, dpop ? { DPoP: dpop } : undefined);
  }

  /** The OAuth error `attempt` was answered, or 'none' when it succeeded. */
  async function errorOf(attempt: Promise<unknown>): Promise<string> {
    try {
      await attempt;
      return 'none';
    } catch (error) {
      return String((error as { error?: string }).error ?? (error as Error).message);
    }
  }

  it('held: another client revoking a person’s refresh token (RFC 7009) ends nothing; the rightful client still refreshes', async () => {
    const tokens = await signIn(await configFor(WEB.id, oidc.ClientSecretBasic(WEB.secret), WEB.secret));
    const revoked = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(OTHER) },
      body: new URLSearchParams({ token: tokens.refresh_token!, token_type_hint: 'refresh_token' }),
    });
    // RFC 7009 §2.1: the token was not issued to the caller, so the request is refused with an error.
    assert.equal(revoked.status, 400);
    assert.equal(((await revoked.json()) as { error?: string }).error, 'invalid_request');
    assert.equal((await introspect(server.url, OTHER, tokens.refresh_token!)).active, false, 'not told to another client');
    const refreshed = await refreshAs(server, tokens.refresh_token!, WEB);
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  });

  it('held: a public client’s DPoP-bound refresh token gets nothing with another key or none, also rotated out within the reuse grace (RFC 9449 §5)', async () => {
    const config = await configFor(SPA, oidc.None());
    const own = oidc.getDPoPHandle(config, await generateKeyPair('ES256'));
    const thief = oidc.getDPoPHandle(config, await generateKeyPair('ES256'));
    const tokens = await signIn(config, own);
    assert.equal(await errorOf(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: thief })), 'invalid_grant');
    assert.equal(await errorOf(oidc.refreshTokenGrant(config, tokens.refresh_token!)), 'invalid_grant');
    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: own });
    // Rotated out, within the grace: the thief's key still gets nothing.
    assert.equal(await errorOf(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: thief })), 'invalid_grant');
    assert.equal(await errorOf(oidc.refreshTokenGrant(config, tokens.refresh_token!)), 'invalid_grant');
    assert.ok((await oidc.refreshTokenGrant(config, rotated.refresh_token!, undefined, { DPoP: own })).access_token);
  });

  it('held: a public client’s refresh request replayed whole (its DPoP proof too) within the reuse grace gets nothing: the proof is single-use (RFC 9449 §11.1)', async () => {
    const config = await configFor(SPA, oidc.None());
    const key = await generateKeyPair('ES256');
    const tokens = await signIn(config, oidc.getDPoPHandle(config, key));
    const request = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: SPA };
    const dpop = await proof(key, 'POST', `${server.issuer}/token`);
    const send = async () => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop }, body: new URLSearchParams(request) });
      return { status: response.status, body: (await response.json()) as Answer['body'] };
    };
    const first = await send();
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const replayed = await send();
    assert.equal(replayed.status, 400, `the replayed request got a sibling: ${JSON.stringify(replayed.body).slice(0, 80)}`);
    assert.equal(replayed.body.refresh_token, undefined);
  });

  /** A person's endings (by an operator), each after a rotation: the rotated-out token, within the reuse grace, gets no sibling. */
  const endings: [string, (person: string) => Promise<void>][] = [
    ['users passwd', async (person) => {
      const run = await latchkey(server.env, ['users', 'passwd', person, '--password-stdin'], 'another password for this person entirely');
      assert.equal(run.status, 0, run.stderr);
    }],
    ['grants revoke --user --client', async (person) => {
      const run = await latchkey(server.env, ['grants', 'revoke', '--user', person, '--client', WEB.id]);
      assert.equal(run.status, 0, run.stderr);
    }],
    ['users disable', async (person) => {
      const run = await latchkey(server.env, ['users', 'disable', person]);
      assert.equal(run.status, 0, run.stderr);
    }],
  ];
  for (const [name, end] of endings) {
    it(`held: ${name} after a rotation: neither the successor nor the rotated-out token within the reuse grace refreshes`, async () => {
      const person = `p-${name.replace(/[^a-z]+/g, '-')}`;
      await server.accounts.create(person, PASSWORD);
      const config = await configFor(WEB.id, oidc.ClientSecretBasic(WEB.secret), WEB.secret);
      const flow = await frontChannel(config, { redirectUri: REDIRECT, username: person, password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' } });
      const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
      const rotated = await refreshAs(server, tokens.refresh_token!, WEB);
      assert.equal(rotated.status, 200);
      await end(person);
      const sibling = await refreshAs(server, tokens.refresh_token!, WEB);
      assert.equal(sibling.status, 400, `${name}: the rotated-out token got a sibling: ${JSON.stringify(sibling.body).slice(0, 80)}`);
      assert.equal((await refreshAs(server, rotated.body.refresh_token!, WEB)).status, 400);
      assert.equal((await introspect(server.url, WEB, rotated.body.access_token!)).active, false);
    });
  }
});
