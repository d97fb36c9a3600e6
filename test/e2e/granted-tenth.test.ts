/**
 * The tenth fresh-eyes pass at "more than was granted" (2026-12-07, docs/security-passes.md,
 * "more than was granted, tenth pass"), black box. Found and fixed here: an operator's `require_mfa`
 * on a client left its people's access tokens from password-only sign-ins good to their `exp` at
 * introspection, userinfo and every API, and its `dpop_bound_access_tokens` its bearer tokens, its own
 * and its people's (the last two tests). Its other fix (an ID token of a grant without
 * offline access outlived its session) is in session-bound-jwt. This also pins what it performed that
 * no test held: a scope name two APIs both offer, allowed at one, is nothing at the other (a silent
 * request, the consent page, a refresh), and an API's scope asked without `resource` is nothing at
 * that API later.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, introspect, type ClientCredentials } from '../helpers/tokens.js';
import { Secret, TOTP } from 'otpauth';

const REDIRECT = 'https://tenth.example.test/callback';
const PASSWORD = 'tenth fresh eyes granting passphrase';
const APP: ClientCredentials = { id: 'tenth', secret: 'tenth-client-secret-with-plenty-of-entropy-0123456789' };
const NOTES = 'https://notes.tenth.example.test';
/** The notes API's introspector. */
const NOTES_API: ClientCredentials = { id: 'tenth-notes-api', secret: 'tenth-notes-api-secret-with-plenty-of-entropy-0123456789' };
const FILES = 'https://files.tenth.example.test';

describe('e2e: tenth fresh-eyes pass, more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;
  let config: oidc.Configuration;

  const token = async (params: Record<string, string>) => {
    const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) }, body: new URLSearchParams(params) });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { RESOURCE_SERVERS: JSON.stringify([{ identifier: NOTES, scopes: ['read', 'shared'], format: 'jwt', grants: [{ client_id: NOTES_API.id, introspect: true }] }, { identifier: FILES, scopes: ['write', 'shared'], format: 'jwt' }]) },
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: NOTES_API.id, client_secret: NOTES_API.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
      ],
    });
    config = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  it('held: `shared`, a scope name both APIs offer, allowed at the notes API is nothing at the files API: a silent request is consent_required, the page asks for it there, and the refresh token is invalid_target there', async () => {
    await server.accounts.create('tam', PASSWORD, { email: 'tam@example.test' });
    const agent = new Agent();
    const first = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access shared', resource: NOTES });
    const page = await signInSteps(agent, first.page, { username: 'tam', password: PASSWORD, consent: 'stop' });
    assert.match(page.html, /Act on https:\/\/notes\.tenth\.example\.test with: shared</);
    const code = new URL((await agent.submit(page, '/confirm', {}, REDIRECT)).url).searchParams.get('code');
    assert.ok(code);
    const redeemed = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: first.verifier, resource: NOTES });
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    assert.deepEqual([decodeJwt(redeemed.body.access_token!).aud, decodeJwt(redeemed.body.access_token!).scope], [NOTES, 'shared']);

    const silent = await startAuthorization(agent, config, REDIRECT, { scope: 'openid shared', resource: FILES, prompt: 'none' });
    assert.equal(new URL(silent.page.url).searchParams.get('code'), null, silent.page.url);
    assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required');
    const asked = await startAuthorization(agent, config, REDIRECT, { scope: 'openid shared', resource: FILES });
    assert.ok(isConsent(asked.page), `${asked.page.status} ${asked.page.url}`);
    assert.match(asked.page.html, /Act on https:\/\/files\.tenth\.example\.test with: shared</);
    assert.doesNotMatch(asked.page.html, /notes\.tenth/);

    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: redeemed.body.refresh_token!, resource: FILES, scope: 'shared' });
    assert.equal(refreshed.status, 400, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.error, 'invalid_target');
  });

  it("held: an API's scopes asked without `resource` are not listed or granted: neither the refresh token nor a silent request gets them at that API later", async () => {
    await server.accounts.create('uma', PASSWORD, { email: 'uma@example.test' });
    const agent = new Agent();
    const first = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access read write' });
    const page = await signInSteps(agent, first.page, { username: 'uma', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(page), `${page.status} ${page.url}`);
    assert.doesNotMatch(page.html, /Act on|&quot;read&quot;|&quot;write&quot;|"read"|"write"/, 'no API is named, so none of its scopes is asked');
    const code = new URL((await agent.submit(page, '/confirm', {}, REDIRECT)).url).searchParams.get('code');
    assert.ok(code);
    const redeemed = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: first.verifier });
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    assert.equal(redeemed.body.scope, 'openid offline_access');

    for (const resource of [NOTES, FILES]) {
      const refreshed = await token({ grant_type: 'refresh_token', refresh_token: redeemed.body.refresh_token!, resource });
      assert.equal(refreshed.status, 400, `${resource}: ${JSON.stringify(refreshed.body)}`);
      assert.equal(refreshed.body.error, 'invalid_target');
    }
    const silent = await startAuthorization(agent, config, REDIRECT, { scope: 'openid read', resource: NOTES, prompt: 'none' });
    assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required', silent.page.url);
  });

  it("a client's second-factor requirement raised ends its people's access tokens of before (introspection, userinfo, the feed): one signed in with a password alone gets nothing more, one signed in with a second factor refreshes", async () => {
    const LEVEL: ClientCredentials = { id: 'tenth-level', secret: 'tenth-level-secret-with-plenty-of-entropy-0123456789' };
    const metadata = { client_id: LEVEL.id, client_secret: LEVEL.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
    await server.clients.add(metadata);
    const level = await oidc.discovery(new URL(server.issuer), LEVEL.id, LEVEL.secret, oidc.ClientSecretBasic(LEVEL.secret), { execute: [oidc.allowInsecureRequests] });
    const call = async (params: Record<string, string>) => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(LEVEL) }, body: new URLSearchParams(params) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    /** `username`'s tokens through the app: a JWT for the notes API (offline access), then, refreshed, an opaque one for userinfo. */
    async function tokensOf(username: string, secret?: string) {
      const agent = new Agent();
      const started = await startAuthorization(agent, level, REDIRECT, { scope: 'openid email offline_access read', resource: NOTES });
      let page = await signInSteps(agent, started.page, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      if (secret) page = await agent.submit(page, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(secret) }) }, REDIRECT);
      if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, REDIRECT);
      const code = new URL(page.url).searchParams.get('code');
      assert.ok(code, `${username}: a code (${page.url})`);
      const api = await call({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: started.verifier, resource: NOTES });
      assert.equal(api.status, 200, JSON.stringify(api.body));
      const userinfo = await call({ grant_type: 'refresh_token', refresh_token: api.body.refresh_token! });
      assert.equal(userinfo.status, 200, JSON.stringify(userinfo.body));
      return { jwt: api.body.access_token!, opaque: userinfo.body.access_token!, refresh: userinfo.body.refresh_token! };
    }
    await server.accounts.create('vic', PASSWORD, { email: 'vic@example.test' });
    await server.accounts.create('wyn', PASSWORD, { email: 'wyn@example.test' });
    const wyn = (await server.accounts.findByUsername('wyn'))!;
    const { secret } = await server.secondFactors.totp.begin(wyn.sub, 'wyn', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(wyn.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'), true);
    const password = await tokensOf('vic');
    const strong = await tokensOf('wyn', secret);
    assert.equal(decodeJwt(password.jwt).acr, 'pwd');
    assert.equal(decodeJwt(strong.jwt).acr, 'mfa');
    assert.equal((await introspect(server.url, NOTES_API, password.jwt)).active, true);

    // The operator requires a second factor of the app's people.
    await server.clients.update(LEVEL.id, { ...metadata, require_mfa: true });
    assert.equal((await introspect(server.url, NOTES_API, password.jwt)).active, false, "a password-only sign-in's JWT at its API's introspection");
    assert.equal((await introspect(server.url, LEVEL, password.opaque)).active, false, "a password-only sign-in's opaque token at the app's own introspection");
    assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${password.opaque}` } })).status, 401, "a password-only sign-in's token at userinfo");
    const feed = await server.revocations.feed(undefined, 1000);
    assert.ok(feed.entries.some((entry) => entry.type === 'delegated' && entry.client_id === LEVEL.id && !('scope' in entry)), `an unscoped delegated entry tells the APIs that verify JWTs locally: ${JSON.stringify(feed.entries)}`);
    assert.equal((await call({ grant_type: 'refresh_token', refresh_token: password.refresh, resource: NOTES })).status, 400, 'nor does it refresh');

    // A grant signed in with the second factor ends its access tokens of before too (an opaque token keeps no level), and refreshes.
    assert.equal((await introspect(server.url, NOTES_API, strong.jwt)).active, false);
    const refreshed = await call({ grant_type: 'refresh_token', refresh_token: strong.refresh, resource: NOTES });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal((await introspect(server.url, NOTES_API, refreshed.body.access_token!)).active, true);
  });

  it("a client made to require DPoP (dpop_bound_access_tokens) ends the bearer tokens it holds from before, its own and its people's (RFC 9449 §5): a DPoP-bound one got after works", async () => {
    const BOUND: ClientCredentials = { id: 'tenth-bound', secret: 'tenth-bound-secret-with-plenty-of-entropy-0123456789' };
    const metadata = { client_id: BOUND.id, client_secret: BOUND.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] };
    await server.clients.add(metadata);
    await server.apis.grant(BOUND.id, NOTES, { scopes: ['read'] });
    const call = async (params: Record<string, string>, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(BOUND), ...headers }, body: new URLSearchParams(params) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const own = await call({ grant_type: 'client_credentials', resource: NOTES, scope: 'read' });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    await server.accounts.create('xan', PASSWORD, { email: 'xan@example.test' });
    const bound = await oidc.discovery(new URL(server.issuer), BOUND.id, BOUND.secret, oidc.ClientSecretBasic(BOUND.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const started = await startAuthorization(agent, bound, REDIRECT, { scope: 'openid offline_access read', resource: NOTES });
    const back = await signInSteps(agent, started.page, { username: 'xan', password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(back.url).searchParams.get('code');
    assert.ok(code, back.url);
    const person = await call({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: started.verifier, resource: NOTES });
    assert.equal(person.status, 200, JSON.stringify(person.body));
    for (const token of [own.body.access_token!, person.body.access_token!]) assert.equal((await introspect(server.url, NOTES_API, token)).active, true);

    await server.clients.update(BOUND.id, { ...metadata, dpop_bound_access_tokens: true });
    assert.equal((await introspect(server.url, NOTES_API, own.body.access_token!)).active, false, "the client's own bearer token of before");
    assert.equal((await introspect(server.url, NOTES_API, person.body.access_token!)).active, false, "a person's bearer token of before");

    const key = await generateKeyPair('ES256', { extractable: true });
    const proof = await new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: 'POST', htu: `${server.issuer}/token` })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
      .sign(key.privateKey);
    const again = await call({ grant_type: 'client_credentials', resource: NOTES, scope: 'read' }, { dpop: proof });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.token_type, 'DPoP');
    assert.equal((await introspect(server.url, NOTES_API, again.body.access_token!)).active, true);
  });
});
