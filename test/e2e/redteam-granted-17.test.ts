/**
 * The red team's seventeenth pass at "Latchkey hands out more than was granted" (2026-12-04), black
 * box (docs/security-passes.md, "Looked at in the seventeenth granting pass"): what the consent page shows
 * against what the tokens then carry, when the app's registration changes while the page is open
 * (found: claims the page left out were given) and after a consent was remembered (held); and an
 * API's introspector at an API without scopes (found: it got tokens to call the API).
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'red team granted seventeen passphrase';
const REDIRECT = 'https://widen.example.test/callback';
/** Claims asked for by name, of the email and profile scopes. */
const CLAIMS = JSON.stringify({ userinfo: { email: null, name: null }, id_token: { email: { essential: true } } });
const PERSON_CLAIMS = ['email', 'email_verified', 'name', 'given_name', 'family_name'];

describe('e2e: red team, seventeenth pass, what the consent page shows against what the tokens carry', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true', DEVICE_FLOW_POLL_INTERVAL: '1' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  const personClaims = (claims: object) => Object.keys(claims).filter((claim) => PERSON_CLAIMS.includes(claim));
  const userinfo = async (token: string) => (await (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;

  it('an app that widens its own scope (RFC 7592) while its consent page is open gets no claim the page did not list', async () => {
    // An app registers itself for `openid` alone and asks for email and name by name: the page
    // cannot list them (claims of scopes the app may not request are never given).
    const own = { client_name: 'Widener', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', scope: 'openid' };
    const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own) });
    assert.equal(created.status, 201, await created.clone().text());
    const app = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const config = await oidc.discovery(new URL(server.issuer), app.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });

    await server.accounts.create('wren', PASSWORD, { email: 'wren@example.test', email_verified: true, name: 'Wren Example', given_name: 'Wren' });
    // The person, in Chromium: signs in and reads the consent page.
    const context = await browser.newContext();
    await context.route(`${REDIRECT}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' }));
    const page = await context.newPage();
    const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
    await page.goto(oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', claims: CLAIMS, code_challenge: challenge, code_challenge_method: 'S256' }).href);
    await page.fill('input[name="username"]', 'wren');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    const listed = await page.locator('ul.scopes').innerText();
    assert.doesNotMatch(listed, /email|name|details/i, `the page lists neither the email nor the name: ${listed}`);

    // While the person reads it, the app widens its own registration to the email and profile scopes.
    const widened = await fetch(app.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.registration_access_token}` },
      body: JSON.stringify({ ...own, client_id: app.client_id, scope: 'openid email profile' }),
    });
    assert.equal(widened.status, 200, await widened.clone().text());

    // The person allows what the page listed: that gives the app nothing the page left out. The
    // claims the app may have now are asked on a page of their own, which the person declines.
    await page.click('button:has-text("Allow")');
    await page.waitForURL((url) => url.href.startsWith(REDIRECT) || url.pathname.startsWith('/interaction/'));
    assert.ok(!page.url().startsWith(REDIRECT), `a page for what the first did not list, not the app: ${page.url()}`);
    assert.match(await page.locator('ul.scopes').innerText(), /See these details about you: email, name/);
    await page.click('button:has-text("Cancel")');
    await page.waitForURL(`${REDIRECT}**`);
    const declined = new URL(page.url());
    assert.equal(declined.searchParams.get('error'), 'access_denied');
    assert.equal(declined.searchParams.get('code'), null);
    await context.close();

    const agent = new Agent();
    const signedIn = await startAuthorization(agent, config, REDIRECT, {});
    assert.ok((await signInSteps(agent, signedIn.page, { username: 'wren', password: PASSWORD, stopAt: REDIRECT })).url.startsWith(REDIRECT));

    // Nor is the consent remembered as covering them: a silent request for them gets no code.
    const silent = await startAuthorization(agent, config, REDIRECT, { claims: CLAIMS, prompt: 'none' });
    const answer = new URL(silent.page.url);
    assert.ok(silent.page.url.startsWith(REDIRECT), `back at the app: ${silent.page.url}`);
    assert.equal(answer.searchParams.get('error'), 'consent_required');
    assert.equal(answer.searchParams.get('code'), null);

    // What was allowed is given: a request without the claims gets a code silently, and no claim.
    const plain = await startAuthorization(agent, config, REDIRECT, { prompt: 'none' });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(plain.page.url), { pkceCodeVerifier: plain.verifier, idTokenExpected: true });
    assert.deepEqual(personClaims(decodeJwt(tokens.id_token!)), []);
    assert.deepEqual(personClaims(await userinfo(tokens.access_token)), []);
  });

  it('the same through the device flow (RFC 8628): a device app that widens its own scope while the consent page is open gets no claim it did not list', async () => {
    const own = { client_name: 'Widening TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [], scope: 'openid' };
    const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own) });
    assert.equal(created.status, 201, await created.clone().text());
    const app = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const config = await oidc.discovery(new URL(server.issuer), app.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('dev', PASSWORD, { email: 'dev@example.test', email_verified: true, name: 'Dev Example' });

    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid', claims: CLAIMS });
    const polled = oidc.pollDeviceAuthorizationGrant(config, device).then(
      (tokens) => ({ tokens }),
      (error: oidc.ResponseBodyError) => ({ error: error.error }),
    );
    const agent = new Agent();
    const entered = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const shown = await signInSteps(agent, await agent.submit(entered, '/device', { confirm: 'yes' }), { username: 'dev', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(shown), `the consent page: ${shown.status} ${shown.url}`);
    assert.doesNotMatch(shown.html, /See these details/);

    const widened = await fetch(app.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.registration_access_token}` },
      body: JSON.stringify({ ...own, client_id: app.client_id, scope: 'openid email profile' }),
    });
    assert.equal(widened.status, 200, await widened.clone().text());

    const next = await agent.submit(shown, '/confirm', {});
    assert.ok(isConsent(next), `a consent page for what the first did not list: ${next.status} ${next.url}`);
    assert.match(next.html, /See these details about you: email, name/);
    await agent.submit(next, '/abort', {});
    assert.deepEqual(await polled, { error: 'access_denied' });
  });

  it("held: a consent remembered before an operator widened the app's scope and gave it a new API covers neither the new scope, the claims nor the API", async () => {
    const STOCK = 'https://stock.example.test';
    await server.apis.add({ identifier: STOCK, scopes: ['stock:read'] });
    const metadata = { client_id: 'shelf', client_name: 'Shelf', client_secret: 'shelf-client-secret-with-plenty-of-entropy-0123456789', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid' };
    await server.clients.add(metadata);
    const config = await oidc.discovery(new URL(server.issuer), 'shelf', metadata.client_secret, oidc.ClientSecretBasic(metadata.client_secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('sol', PASSWORD, { email: 'sol@example.test', email_verified: true, name: 'Sol Example' });
    const first = new Agent();
    const { page } = await startAuthorization(first, config, REDIRECT, { claims: CLAIMS });
    const back = await signInSteps(first, page, { username: 'sol', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), back.url);

    // The operator widens the app to the email scope and the new API's scope.
    await server.clients.update('shelf', { ...metadata, scope: 'openid email stock:read' });
    const probes = {
      scope: { scope: 'openid email' },
      claims: { claims: CLAIMS },
      api: { scope: 'openid stock:read', resource: STOCK },
    };
    // In a new sign-in (the consent remembered), each is asked for on a page: consent_required silently.
    const second = new Agent();
    const signedIn = await startAuthorization(second, config, REDIRECT, {});
    assert.ok((await signInSteps(second, signedIn.page, { username: 'sol', password: PASSWORD, stopAt: REDIRECT })).url.startsWith(REDIRECT));
    for (const [probe, params] of Object.entries(probes)) {
      const asked = await startAuthorization(second, config, REDIRECT, { prompt: 'none', ...params });
      const answer = new URL(asked.page.url);
      assert.equal(answer.searchParams.get('error'), 'consent_required', `${probe}: ${asked.page.url}`);
    }
    // In the first browser the session's grant refused the claims then (rejected, as beyond the
    // app's scope): they stay refused, a code without them, as the engine counts a refusal as decided.
    const silent = await startAuthorization(first, config, REDIRECT, { prompt: 'none', claims: CLAIMS });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(silent.page.url), { pkceCodeVerifier: silent.verifier, idTokenExpected: true });
    assert.deepEqual(personClaims(decodeJwt(tokens.id_token!)), []);
    assert.deepEqual(personClaims(await userinfo(tokens.access_token)), []);
  });

  it('a client an operator made the introspector of an API without scopes gets no token to call it: serving as an API is no leave to call it (RFC 7662 §4, RFC 6749 §4.4)', async () => {
    const EVENTS = 'https://events.example.test';
    const GATE: ClientCredentials = { id: 'gate', secret: 'gate-client-secret-with-plenty-of-entropy-0123456789' };
    const CALLER: ClientCredentials = { id: 'caller', secret: 'caller-client-secret-with-plenty-of-entropy-0123456789' };
    await server.apis.add({ identifier: EVENTS });
    for (const client of [GATE, CALLER]) await server.clients.add(machineClient(client));
    await server.apis.grant(GATE.id, EVENTS, { scopes: [], introspect: true });
    await server.apis.grant(CALLER.id, EVENTS, { scopes: [] });
    const configOf = (client: ClientCredentials) => oidc.discovery(new URL(server.issuer), client.id, client.secret, oidc.ClientSecretBasic(client.secret), { execute: [oidc.allowInsecureRequests] });

    // A client granted the API (no scopes to grant) calls it, and the API's introspector is told so.
    const called = await oidc.clientCredentialsGrant(await configOf(CALLER), { resource: EVENTS });
    assert.equal(decodeJwt(called.access_token).aud, EVENTS);
    assert.equal((await introspect(server.url, GATE, called.access_token)).active, true);

    // The introspector was granted to serve as the API, not to call it.
    await assert.rejects(oidc.clientCredentialsGrant(await configOf(GATE), { resource: EVENTS }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_scope', error.error_description);
      return true;
    });
  });
});
