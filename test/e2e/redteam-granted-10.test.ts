/**
 * The red team's tenth pass at "Latchkey hands out more than was granted" (2026-12-02), black box:
 * an app that registers itself passing for another, where the ninth pass's "Sends you back to" is not.
 *
 * - Dynamic registration (RFC 7591) and its update (RFC 7592) took a logo, privacy policy, terms and
 *   site link on any host: an app named like the operator's showed the operator's app's own logo and
 *   linked its policy and terms, whatever its redirect URIs. RFC 7591 §5 asks that they be on the
 *   redirect URIs' hosts; a self-registered client's are now (registration/policy.ts).
 * - The device confirmation page (RFC 8628 §5.4) showed the name, the requesting address and user
 *   agent: a device client named like the operator's TV app read word for word as it. It now shows the
 *   web addresses the client registered, or that it has none.
 * - An upstream whose ID token says no auth_time (OIDC Core §2: optional unless max_age was asked)
 *   was taken as a sign-in of now: the session then met a later app's max_age (a code, prompt=none
 *   too) though the upstream may have answered from a session of any age. Such a sign-in is now of
 *   unknown age (provider/patches/sign-in-time.ts): a later max_age goes back to the upstream.
 * Each succeeded before its fix; docs/security-passes.md lists what else the pass tried.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { Agent } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { isConsent, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'red team granted ten passphrase';
const TV = {
  client_id: 'tv', client_name: 'Living-room TV', application_type: 'native', token_endpoint_auth_method: 'none',
  client_uri: 'https://tv.example.test/', logo_uri: 'https://tv.example.test/logo.png', policy_uri: 'https://tv.example.test/privacy',
  grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [],
};
const insecure = { execute: [oidc.allowInsecureRequests] };

describe('e2e (Chromium + openid-client): red team, tenth pass, a self-registered app cannot show another\'s logo and links, and the device page says where an app is registered', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true' }, clients: [TV] });
    await server.accounts.create('alice', PASSWORD);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  const register = (body: Record<string, unknown>) => fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it("dynamic registration and its RFC 7592 update refuse a logo, policy, terms or site link off the client's redirect URIs' hosts, naming the field (RFC 7591 §5)", async () => {
    const own = { client_name: 'Living-room TV', redirect_uris: ['https://tv-login.example.net/cb'], token_endpoint_auth_method: 'none' };
    for (const name of ['logo_uri', 'policy_uri', 'tos_uri', 'client_uri']) {
      const refused = await register({ ...own, [name]: `https://tv.example.test/${name}` });
      assert.equal(refused.status, 400, `${name}: ${await refused.clone().text()}`);
      const body = (await refused.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_client_metadata');
      assert.match(body.error_description, new RegExp(`^${name} must be on the host of a redirect URI \\(tv-login\\.example\\.net\\)`));
    }
    // A device client with no web redirect URI has no host to show a logo from.
    const device = await register({ client_name: 'Living-room TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [], logo_uri: TV.logo_uri });
    assert.equal(device.status, 400, await device.clone().text());
    // On its own host (or a name under it), taken; changed to the TV's by RFC 7592, refused and left as it was.
    const created = await register({ ...own, logo_uri: 'https://cdn.tv-login.example.net/logo.png', policy_uri: 'https://tv-login.example.net/privacy' });
    assert.equal(created.status, 201, await created.clone().text());
    const client = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const changed = await fetch(client.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${client.registration_access_token}` },
      body: JSON.stringify({ ...own, client_id: client.client_id, logo_uri: TV.logo_uri }),
    });
    assert.equal(changed.status, 400, await changed.clone().text());
    assert.match(((await changed.json()) as { error_description: string }).error_description, /^logo_uri must be on the host of a redirect URI/);
    const read = await fetch(client.registration_client_uri, { headers: { authorization: `Bearer ${client.registration_access_token}` } });
    assert.equal(((await read.json()) as { logo_uri: string }).logo_uri, 'https://cdn.tv-login.example.net/logo.png');
  });

  it("the device confirmation page of an app named like the operator's TV app reads apart from it: the TV's registered web address, or none (RFC 8628 §5.4)", async () => {
    const registered = await register({ client_name: 'Living-room TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] });
    assert.equal(registered.status, 201, await registered.clone().text());
    const impostorId = ((await registered.json()) as { client_id: string }).client_id;
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.route('https://tv.example.test/**', (route) => route.fulfill({ status: 404 }));
      const confirmation = async (clientId: string): Promise<string> => {
        const config = await oidc.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
        const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
        await page.goto(device.verification_uri);
        await page.fill('#user_code', device.user_code);
        await page.click('button[type=submit]');
        await page.waitForSelector('p.user-code');
        return (await page.locator('main').innerText()).replace(device.user_code, 'CODE');
      };
      const real = await confirmation('tv');
      const impostor = await confirmation(impostorId);
      assert.notEqual(impostor, real, 'the impostor’s device page reads as the TV app’s');
      assert.match(real, /Registered with the web address tv\.example\.test/);
      assert.doesNotMatch(real, /registered itself/);
      assert.match(impostor, /No web address is registered for this app/);
      assert.match(impostor, /This app registered itself here/);
      assert.doesNotMatch(impostor, /tv\.example\.test/);

      // A redirect URI proves no control of its host: one on the TV's host, never used, lists that host, and the page says whose word it is.
      const decoy = await register({ client_name: 'Living-room TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'authorization_code'], redirect_uris: ['https://tv.example.test/cb'], logo_uri: TV.logo_uri });
      assert.equal(decoy.status, 201, await decoy.clone().text());
      const decoyed = await confirmation(((await decoy.json()) as { client_id: string }).client_id);
      assert.notEqual(decoyed, real, 'the decoy’s device page reads as the TV app’s');
      assert.match(decoyed, /This app registered itself here/);
    } finally {
      await context.close();
    }
  });
});

describe("e2e: red team, tenth pass, an upstream that does not say when the person signed in (no auth_time) makes no sign-in of now", function () {
  this.timeout(60_000);
  const UPSTREAM_SECRET = 'upstream-client-secret-with-plenty-of-entropy-0123456789';
  const REDIRECT = 'https://notes.example.test/callback';
  const NOTES = { client_id: 'notes', client_secret: 'notes-client-secret-with-plenty-of-entropy-0123456789', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
  let server: TestServer;
  let notes: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, clients: [NOTES] });
    notes = await oidc.discovery(new URL(server.issuer), NOTES.client_id, NOTES.client_secret, oidc.ClientSecretBasic(NOTES.client_secret), insecure);
    fake = await fakeUpstreamOf(server, UPSTREAM_SECRET);
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  /** `agent` goes to notes with `params` (through the fake upstream when it must sign in): the page it ends on, and the tokens when that is a code. */
  async function atNotes(agent: Agent, params: Record<string, string>) {
    const { page, verifier } = await startAuthorization(agent, notes, REDIRECT, { scope: 'openid', upstream: 'fake', ...params });
    const done = isConsent(page) ? await agent.submit(page, '/confirm', {}, REDIRECT) : page;
    const code = done.url.startsWith(REDIRECT) ? new URL(done.url).searchParams.get('code') : null;
    const tokens = code ? await oidc.authorizationCodeGrant(notes, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }) : undefined;
    return { done, tokens, error: done.url.startsWith(REDIRECT) ? new URL(done.url).searchParams.get('error') : null };
  }

  it('a sign-in the upstream gave no auth_time for, unasked, meets no later max_age: asked again, the upstream owes auth_time (OIDC Core §2, §3.1.2.1); one asked with prompt=login owes it too, and is fresh', async () => {
    fake.state.sub = 'fake-person-of-unknown-age';
    fake.state.authTime = null;
    try {
      const agent = new Agent();
      const first = await atNotes(agent, {});
      assert.ok(first.tokens, `signed in: ${first.done.status} ${first.done.url}`);
      assert.equal(typeof decodeJwt(first.tokens.id_token!).auth_time, 'number', 'the ID token still says auth_time (our sign-in)');

      // An app that needs a sign-in of the last five minutes: nothing says this one is.
      const silent = await atNotes(agent, { max_age: '300', prompt: 'none' });
      assert.equal(silent.error, 'login_required', `no code from a sign-in of unknown age: ${silent.done.url}`);
      const asked = await atNotes(agent, { max_age: '300' });
      assert.equal(fake.state.maxAge, '300', 'max_age went on to the upstream');
      assert.equal(asked.tokens, undefined, `the upstream owed auth_time and did not say it: ${asked.done.status} ${asked.done.url}`);

      // The upstream says it (a sign-in of now): met, and the session is of known age from then on.
      fake.state.authTime = undefined;
      const told = await atNotes(agent, { max_age: '300' });
      assert.ok(told.tokens, `signed in again: ${told.done.status} ${told.done.url}`);
      const after = await atNotes(agent, { max_age: '300', prompt: 'none' });
      assert.ok(after.tokens, `a silent max_age is met now: ${after.done.url}`);

      // prompt=login asks the upstream for a fresh sign-in, and as max_age=0 (since 2026-12-06, second
      // pass: one ignoring prompt=login answered from its old session): without auth_time, which that
      // makes owed, no sign-in; with an auth_time of now, fresh.
      fake.state.authTime = null;
      const other = new Agent();
      const unsaid = await atNotes(other, { prompt: 'login' });
      assert.equal(fake.state.prompt, 'login');
      assert.equal(fake.state.maxAge, '0');
      assert.equal(unsaid.tokens, undefined, `the upstream owed auth_time and did not say it: ${unsaid.done.status} ${unsaid.done.url}`);
      fake.state.authTime = undefined;
      const fresh = await atNotes(other, { prompt: 'login' });
      assert.ok(fresh.tokens, `signed in: ${fresh.done.status} ${fresh.done.url}`);
      const met = await atNotes(other, { max_age: '300', prompt: 'none' });
      assert.ok(met.tokens, `a fresh sign-in meets max_age: ${met.done.url}`);
    } finally {
      fake.state.authTime = undefined;
    }
  });
});
