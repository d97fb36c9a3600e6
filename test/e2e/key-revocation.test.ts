/**
 * A compromised signing key: `latchkey keys revoke KID`. The attack: keep using tokens the key
 * signed, and forge new ones with a stolen copy of its private key, at introspection, at the
 * revocation feed (its own access token check), as an id_token_hint, and at latchkey/resource-server
 * (whose cached JWKS still holds the key). All refused; the key leaves the JWKS; the next key signs
 * at once and what it signs verifies; a refresh token (opaque, not signed) gets new tokens.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/bye';
const PASSWORD = 'key revocation test password';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

describe('e2e: latchkey keys revoke, for a compromised signing key', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  let helper: ResourceServer;
  let config: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const CLIENTS = JSON.stringify([
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT], grant_types: ['authorization_code', 'refresh_token'] },
      machineClient(MACHINE),
      machineClient(RS),
    ]);
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS, RESOURCE_SERVERS } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    await grantFeed(server, RS.id);
    await server.accounts.create('alice', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    await redis?.stop();
  });

  async function signIn() {
    const agent = new Agent();
    const flow = await frontChannel(config, {
      redirectUri: REDIRECT,
      username: 'alice',
      password: PASSWORD,
      params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' },
      agent,
    });
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
    return { agent, tokens };
  }

  const now = () => Math.floor(Date.now() / 1000);
  /** What an attacker signs with a stolen copy of the private key: any claims, any iat. */
  const forge = async (jwk: JWK, typ: string | undefined, claims: Record<string, unknown>) =>
    new SignJWT({ iat: now(), exp: now() + 600, jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid!, ...(typ ? { typ } : {}) })
      .sign(await importJWK(jwk, 'RS256'));

  const jwks = async () => ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: JWK[] }).keys.map((key) => key.kid);
  const feedStatus = async (token: string) => (await fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${token}` } })).status;
  const endSession = (hint: string) =>
    new Agent().follow(`${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: SIGNED_OUT })}`);
  const helperRejects = (token: string) =>
    eventually(() => assert.rejects(helper.verify(token), (error: Error) => error instanceof TokenRejected && /revoked/.test(error.message)));

  it('refuses everything the revoked key signed and every forgery, at once; the next key signs and verifies', async () => {
    const stolen = server.keys.ring.current!;
    const nextKid = server.keys.ring.next!.kid;
    const feedAudience = `${server.issuer}/revocations`;

    // What the key signed, and what a thief signs with it.
    const { tokens } = await signIn();
    const own = await clientCredentialsToken(server.url, MACHINE);
    const feedToken = await clientCredentialsToken(server.url, RS, feedAudience, 'revocations');
    for (const token of [tokens.access_token, tokens.id_token!, own, feedToken]) assert.equal(decodeProtectedHeader(token).kid, stolen.kid);
    const forgedAccess = await forge(stolen.jwk, 'at+jwt', { iss: server.issuer, aud: API, sub: 'anyone', client_id: MACHINE.id, scope: 'read write' });
    const forgedFeed = await forge(stolen.jwk, 'at+jwt', { iss: server.issuer, aud: feedAudience, sub: RS.id, client_id: RS.id, scope: 'revocations' });
    const forgedIdToken = await forge(stolen.jwk, undefined, { ...decodeJwt(tokens.id_token!), iat: now(), exp: now() + 600 });

    // Before the revocation, the forgeries work: this is the attack.
    assert.equal((await introspect(server.url, RS, forgedAccess)).active, true);
    assert.equal((await helper.verify(forgedAccess)).scope, 'read write');
    assert.equal(await feedStatus(forgedFeed), 200);
    assert.equal((await endSession(forgedIdToken)).status, 200);

    // After "--": a kid (base64url) may start with "-".
    const run = await latchkey(env, ['keys', 'revoke', '--', stolen.kid]);
    assert.equal(run.status, 0, run.stderr);
    const printed = JSON.parse(run.stdout) as { revoked: string[]; current: string; previous: string; next: string };
    assert.deepEqual(printed.revoked, [stolen.kid]);
    assert.equal(printed.previous, stolen.kid);
    assert.equal(printed.current, nextKid, 'the published next key signs at once');

    // At once, before any instance has followed the ring: the list's kid entry.
    for (const token of [tokens.access_token, own, forgedAccess, feedToken]) {
      assert.deepEqual(await introspect(server.url, RS, token), { active: false });
    }
    assert.equal(await feedStatus(forgedFeed), 401);
    assert.equal(await feedStatus(feedToken), 401);
    for (const hint of [tokens.id_token!, forgedIdToken]) {
      const refused = await endSession(hint);
      assert.equal(refused.status, 400);
      assert.match(refused.html, /id_token_hint/);
    }

    // Within keys.refreshInterval every instance follows the ring: the key leaves the JWKS and signing.
    await eventually(async () => assert.ok(!(await jwks()).includes(stolen.kid)), 100);
    assert.ok((await jwks()).includes(nextKid));
    for (const hint of [tokens.id_token!, forgedIdToken]) {
      const refused = await endSession(hint);
      assert.equal(refused.status, 400);
      assert.match(refused.html, /id_token_hint/);
    }

    // The helper: its cached JWKS still holds the key; the feed's kid entry makes it refuse anyway.
    for (const token of [tokens.access_token, own, forgedAccess]) await helperRejects(token);

    // The feed lists the key (read with a token signed by the new key).
    const freshFeedToken = await clientCredentialsToken(server.url, RS, feedAudience, 'revocations');
    assert.equal(decodeProtectedHeader(freshFeedToken).kid, nextKid);
    const feed = (await (await fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${freshFeedToken}` } })).json()) as {
      entries: { type: string; kid?: string; exp: number }[];
    };
    const entry = feed.entries.find((line) => line.type === 'kid' && line.kid === stolen.kid);
    assert.ok(entry, JSON.stringify(feed.entries));
    assert.ok(entry.exp >= now() + 900, 'it lasts at least as long as a token the key signed');

    // New tokens are signed by the new key and verify everywhere.
    const fresh = await clientCredentialsToken(server.url, MACHINE);
    assert.equal(decodeProtectedHeader(fresh).kid, nextKid);
    assert.equal((await introspect(server.url, RS, fresh)).active, true);
    assert.equal((await helper.verify(fresh)).client_id, MACHINE.id);
    const again = await signIn();
    assert.equal(decodeProtectedHeader(again.tokens.id_token!).kid, nextKid);
    const published = createLocalJWKSet((await (await fetch(`${server.url}/jwks`)).json()) as { keys: JWK[] });
    await jwtVerify(again.tokens.id_token!, published, { issuer: server.issuer, audience: WEB.id });
    assert.equal((await endSession(again.tokens.id_token!)).status, 200, 'a new ID token is a good hint');

    // A refresh token is opaque, signed by nothing: the person's app recovers with it.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: API });
    assert.equal(decodeProtectedHeader(refreshed.access_token).kid, nextKid);
    assert.equal((await helper.verify(refreshed.access_token)).sub, decodeJwt(tokens.access_token).sub);
  });

  it('keys rotate --now --revoke-current does the same for the current key', async () => {
    const current = server.keys.ring.current!.kid;
    const next = server.keys.ring.next!.kid;
    const signed = await clientCredentialsToken(server.url, MACHINE);
    assert.equal(decodeProtectedHeader(signed).kid, current);
    const without = await latchkey(env, ['keys', 'rotate', '--revoke-current']);
    assert.equal(without.status, 1);
    assert.match(without.stderr, /--revoke-current goes with --now/);

    const run = await latchkey(env, ['keys', 'rotate', '--now', '--revoke-current']);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual((JSON.parse(run.stdout) as { revoked: string[] }).revoked, [current]);
    assert.deepEqual(await introspect(server.url, RS, signed), { active: false });
    await helperRejects(signed);
    await eventually(async () => assert.ok(!(await jwks()).includes(current)), 100);
    const fresh = await clientCredentialsToken(server.url, MACHINE);
    assert.equal(decodeProtectedHeader(fresh).kid, next);
    assert.equal((await introspect(server.url, RS, fresh)).active, true);
    // This next key was made by the first revocation, seconds ago: a verifier fetching the JWKS has it.
    const published = createLocalJWKSet((await (await fetch(`${server.url}/jwks`)).json()) as { keys: JWK[] });
    await jwtVerify(fresh, published, { issuer: server.issuer, audience: API, typ: 'at+jwt' });
  });

  it('refuses an unknown kid without writing anything; keys rotate --now says to revoke instead', async () => {
    const before = await jwks();
    const run = await latchkey(env, ['keys', 'revoke', 'no-such-kid']);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /no key no-such-kid in the ring/);
    assert.deepEqual(await jwks(), before);
    const help = await latchkey(env, ['keys', 'rotate', '--help']);
    assert.match(help.stdout, /keys revoke/);
  });
});

describe('e2e: a kid entry alone (before any instance follows the ring) is refused on every path', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    const CLIENTS = JSON.stringify([
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT], grant_types: ['authorization_code', 'refresh_token'] },
      machineClient(MACHINE),
      machineClient(RS),
    ]);
    server = await startServer({ env: { CLIENTS, RESOURCE_SERVERS } });
    await grantFeed(server, RS.id);
    await server.accounts.create('alice', PASSWORD);
  });
  after(async () => server?.stop());

  it('introspection, the feed and id_token_hint consult the list, though the key is still in the ring and the engine keystore', async () => {
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid' } });
    const { id_token: idToken } = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
    const access = await clientCredentialsToken(server.url, MACHINE);
    const feedToken = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const hint = () => new Agent().follow(`${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: idToken!, post_logout_redirect_uri: SIGNED_OUT })}`);
    const feed = () => fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${feedToken}` } });
    assert.equal((await hint()).status, 200);
    assert.equal((await feed()).status, 200);
    assert.equal((await introspect(server.url, RS, access)).active, true);

    const kid = server.keys.ring.current!.kid;
    await server.revocations.revokeKey(kid, 60);
    assert.equal(server.keys.ring.current!.kid, kid, 'the ring is unchanged');
    const refused = await hint();
    assert.equal(refused.status, 400);
    assert.match(refused.html, /id_token_hint/);
    assert.equal((await feed()).status, 401);
    assert.deepEqual(await introspect(server.url, RS, access), { active: false });
  });
});
