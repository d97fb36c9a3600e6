/**
 * The tenth fresh-eyes pass at "more than was granted" (2026-12-07, docs/security-passes.md,
 * "more than was granted, tenth pass"), black box. Its fix (an ID token of a grant without offline
 * access outlived its session) is pinned in session-bound-jwt; this pins what it performed that no
 * test held: a scope name two APIs both offer, allowed at one, is nothing at the other (a silent
 * request, the consent page, a refresh), and an API's scope asked without `resource` is nothing at
 * that API later.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://tenth.example.test/callback';
const PASSWORD = 'tenth fresh eyes granting passphrase';
const APP: ClientCredentials = { id: 'tenth', secret: 'tenth-client-secret-with-plenty-of-entropy-0123456789' };
const NOTES = 'https://notes.tenth.example.test';
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
      env: { RESOURCE_SERVERS: JSON.stringify([{ identifier: NOTES, scopes: ['read', 'shared'], format: 'jwt' }, { identifier: FILES, scopes: ['write', 'shared'], format: 'jwt' }]) },
      clients: [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }],
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
});
