/**
 * The eighteenth pass at the new kinds of clients (docs/security-passes.md, "the new kinds of
 * clients, attacked (h22)"), black box against two Latchkey instances sharing one Redis: a machine
 * client's private_key_jwt assertion replayed at the other instance, and a pushed request's
 * request_uri used again, at either instance, or opened in two browsers at once. All held: pinned.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { Agent } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const API = 'https://api.example.test';
const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'new clients eighteenth password';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const now = () => Math.floor(Date.now() / 1000);

describe('e2e: new kinds of clients, eighteenth pass (two instances, one store)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let one: TestServer;
  let two: TestServer;
  let key: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'machine-key', alg: 'ES256', use: 'sig' };
    const clients = [
      { client_id: 'machine', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
      { client_id: 'pusher', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code'], require_pushed_authorization_requests: true },
    ];
    const env = { RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['read'] }] }]) };
    redis = await startRedisServer();
    one = await startServer({ redisUrl: redis.url, clients, env, cheapHashing: true });
    two = await startServer({ redisUrl: redis.url, clients, env: { ...env, ISSUER: one.issuer }, cheapHashing: true });
    await one.accounts.create('erin', PASSWORD);
  });
  after(async () => {
    await two?.stop();
    await one?.stop();
    await redis?.stop();
  });

  const form = (url: string, params: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });

  it('held: a private_key_jwt assertion spent at one instance is refused at the other (RFC 7523 §3 jti, one store)', async () => {
    const assertion = () =>
      new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid: 'machine-key' })
        .setIssuer('machine').setSubject('machine').setAudience(one.issuer).setIssuedAt().setExpirationTime(now() + 60)
        .sign(key);
    const params = async () => ({ grant_type: 'client_credentials', resource: API, scope: 'read', client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion() });
    const spent = await params();
    const first = await form(`${one.url}/token`, spent);
    assert.equal(first.status, 200, await first.clone().text());
    const again = await form(`${two.url}/token`, spent);
    assert.equal(again.status, 401);
    assert.equal(((await again.json()) as { error: string }).error, 'invalid_client');
    // The other instance takes the client's fresh assertions: it was the replay it refused.
    const fresh = await form(`${two.url}/token`, await params());
    assert.equal(fresh.status, 200, await fresh.clone().text());
  });

  it('held: a request_uri opens one sign-in: used again, at either instance, it is refused (RFC 9126 §2.2, §4)', async () => {
    const pushed = await form(`${one.issuer}/request`, {
      client_id: 'pusher', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
    });
    assert.equal(pushed.status, 201);
    const { request_uri: requestUri } = (await pushed.json()) as { request_uri: string };
    const at = (server: TestServer) => `${server.url}/auth?${new URLSearchParams({ client_id: 'pusher', request_uri: requestUri })}`;
    const agent = new Agent();
    const done = await signInSteps(agent, await agent.follow(at(one), {}, REDIRECT), { username: 'erin', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(done.url).searchParams.get('code'), done.url);
    for (const server of [one, two]) {
      const page = await new Agent().follow(at(server), {}, REDIRECT);
      assert.ok(page.url.startsWith(REDIRECT), `${page.status} ${page.url}`);
      assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request_uri', page.url);
    }
    // A request pushed at one instance opens at the other: it was the spent one that was refused.
    const fresh = await form(`${one.url}/request`, {
      client_id: 'pusher', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', code_challenge: 'z'.repeat(43), code_challenge_method: 'S256',
    });
    const opened = await new Agent().follow(`${two.url}/auth?${new URLSearchParams({ client_id: 'pusher', request_uri: ((await fresh.json()) as { request_uri: string }).request_uri })}`, {}, REDIRECT);
    assert.match(opened.url, /\/interaction\//, opened.url);
  });

  it('held: a request_uri opened in two browsers before either finishes gives one code: the sign-in finished second is told invalid_request_uri (RFC 9126 §2.2)', async () => {
    const pushed = await form(`${one.issuer}/request`, {
      client_id: 'pusher', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', code_challenge: 'y'.repeat(43), code_challenge_method: 'S256',
    });
    const { request_uri: requestUri } = (await pushed.json()) as { request_uri: string };
    const url = `${one.url}/auth?${new URLSearchParams({ client_id: 'pusher', request_uri: requestUri })}`;
    const first = new Agent();
    const firstPage = await first.follow(url, {}, REDIRECT);
    const second = new Agent();
    const secondPage = await second.follow(url, {}, REDIRECT);
    const secondDone = await signInSteps(second, secondPage, { username: 'erin', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(secondDone.url).searchParams.get('code'), secondDone.url);
    const firstDone = await signInSteps(first, firstPage, { username: 'erin', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(firstDone.url.startsWith(REDIRECT), firstDone.url);
    assert.equal(new URL(firstDone.url).searchParams.get('error'), 'invalid_request_uri', firstDone.url);
    assert.equal(new URL(firstDone.url).searchParams.get('code'), null);
  });
});
