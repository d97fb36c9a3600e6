/**
 * The developer page in Chromium: sign in, register an app, copy its secret from the page, use it
 * for client_credentials, rotate it, delete the app; a second person sees and changes none of it.
 * An app registered here with post-logout redirect URIs and a back-channel logout URI signs out
 * with them (the sample app, openid-client's buildEndSessionUrl), under the registration policy
 * every other path applies.
 */
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshots } from '../helpers/browser.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startRelyingParty, type RelyingParty } from '../helpers/relying-party.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'developer page password';

describe('e2e (Chromium): the developer page', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let server: TestServer;
  let browser: Browser;
  const shot = screenshots('developer');
  let alice: { context: BrowserContext; page: Page };
  let appId: string;
  let firstSecret: string;
  let secondSecret: string;
  /** Carol's app, registered with its sign-out addresses, and the sample app run with it. */
  let journal: { id: string; origin: string; rp?: RelyingParty };
  let carol: { context: BrowserContext; page: Page };

  before(async () => {
    redis = await startRedisServer();
    // The sample app's back-channel logout receiver is on loopback: Latchkey posts there only with private networks allowed.
    server = await startServer({ redisUrl: redis.url, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
    await server.accounts.create('bob', PASSWORD, { name: 'Bob' });
    await server.accounts.create('carol', PASSWORD, { name: 'Carol' });
    browser = await launchChromium();
  });
  after(async () => {
    await journal?.rp?.close();
    await browser?.close();
    await server?.stop();
    await redis?.stop();
  });

  async function signIn(username: string) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.issuer}/developer`);
    assert.match(await page.locator('h1').innerText(), /Register your apps/);
    await page.click('a.button:has-text("Sign in")');
    await page.waitForSelector('input[name="username"]');
    // Latchkey's own page, back to Latchkey's own address: not "a program on this device" (with an issuer on localhost).
    assert.equal(await page.locator('.client-return').count(), 0, await page.locator('main').innerText());
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    // Straight back, no consent page: the developer page is Latchkey itself (provider/consents.ts).
    await page.waitForURL(`${server.issuer}/developer`);
    assert.match(await page.locator('h1').innerText(), /Your apps/);
    return { context, page };
  }

  const clientCredentials = (id: string, secret: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    }).then((response) => response.status);

  it('signs in and registers a web app; the secret shown once works for client_credentials', async () => {
    alice = await signIn('alice');
    await shot(alice.page, 'developer-empty');
    await alice.page.fill('#name', 'Alice Analytics');
    await alice.page.check('input[name="type"][value="web"]');
    await alice.page.fill('#redirect_uris', 'https://analytics.example.test/callback');
    await alice.page.click('button:has-text("Register app")');
    await alice.page.waitForSelector('#client-secret');
    appId = await alice.page.locator('#client-id').innerText();
    firstSecret = await alice.page.locator('#client-secret').innerText();
    assert.match(await alice.page.locator('main').innerText(), /shows it only this once/);
    await shot(alice.page, 'developer-secret-once');
    assert.equal(await clientCredentials(appId, firstSecret), 200);

    await alice.page.goto(`${server.issuer}/developer`);
    assert.match(await alice.page.locator('main').innerText(), /Alice Analytics/);
    assert.doesNotMatch(await alice.page.content(), new RegExp(firstSecret), 'never shown again');
  });

  it('refuses an unsafe redirect URI with a message a developer understands', async () => {
    await alice.page.fill('#name', 'Sloppy');
    await alice.page.check('input[name="type"][value="web"]');
    await alice.page.fill('#redirect_uris', 'http://sloppy.example.test/*');
    await alice.page.click('button:has-text("Register app")');
    await alice.page.waitForSelector('.error');
    assert.match(await alice.page.locator('.error').innerText(), /wildcards are not allowed/);
    await shot(alice.page, 'developer-policy-refusal');
  });

  it('rotates the secret: the new one works, and the old one for the grace period', async () => {
    await alice.page.goto(`${server.issuer}/developer`);
    await alice.page.click('button:has-text("Rotate secret")');
    await alice.page.waitForSelector('#client-secret');
    secondSecret = await alice.page.locator('#client-secret').innerText();
    assert.notEqual(secondSecret, firstSecret);
    assert.match(await alice.page.locator('main').innerText(), /previous secret keeps working for 24 hours\./);
    await shot(alice.page, 'developer-rotated');
    assert.equal(await clientCredentials(appId, secondSecret), 200);
    assert.equal(await clientCredentials(appId, firstSecret), 200);
  });

  it('a second person cannot see or change the first one’s apps', async () => {
    const bob = await signIn('bob');
    assert.doesNotMatch(await bob.page.locator('main').innerText(), /Alice Analytics/);
    await shot(bob.page, 'developer-other-person');
    const csrf = await bob.page.locator('input[name="csrf"]').first().inputValue();
    for (const action of ['secret', 'delete']) {
      const response = await bob.context.request.post(`${server.issuer}/developer/apps/${encodeURIComponent(appId)}/${action}`, { form: { csrf } });
      assert.equal(response.status(), 404, action);
    }
    const forged = await alice.context.request.post(`${server.issuer}/developer/apps/${encodeURIComponent(appId)}/delete`, { form: { csrf } });
    assert.equal(forged.status(), 403, "bob's CSRF token is no good in alice's session");
    assert.equal(await clientCredentials(appId, secondSecret), 200, 'still there');
    await bob.context.close();
  });

  it('registers a single-page app with PAR and DPoP required; the page lists them and the server enforces PAR', async () => {
    await alice.page.goto(`${server.issuer}/developer`);
    await alice.page.fill('#name', 'Alice Notes');
    await alice.page.check('input[name="type"][value="spa"]');
    await alice.page.fill('#redirect_uris', 'https://notes.example.test/callback');
    await alice.page.check('input[name="par"]');
    await alice.page.check('input[name="dpop"]');
    await alice.page.click('button:has-text("Register app")');
    await alice.page.waitForSelector('#client-id');
    const notesId = await alice.page.locator('#client-id').innerText();
    await alice.page.goto(`${server.issuer}/developer`);
    const section = alice.page.locator('section.app', { hasText: 'Alice Notes' });
    assert.equal(await section.locator('dd.protections').innerText(), 'PAR required, DPoP-bound tokens');
    await shot(alice.page, 'developer-protections');
    const params = new URLSearchParams({ client_id: notesId, response_type: 'code', redirect_uri: 'https://notes.example.test/callback', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const location = (await fetch(`${server.url}/auth?${params}`, { redirect: 'manual' })).headers.get('location') ?? '';
    assert.equal(new URL(location).searchParams.get('error'), 'invalid_request', location);
  });

  it('deletes the app: its secrets stop working', async () => {
    await alice.page.goto(`${server.issuer}/developer`);
    await alice.page.click('button:has-text("Delete Alice Analytics")');
    await alice.page.waitForURL(`${server.issuer}/developer`);
    assert.doesNotMatch(await alice.page.locator('main').innerText(), /Alice Analytics/);
    await shot(alice.page, 'developer-after-delete');
    assert.equal(await clientCredentials(appId, secondSecret), 401);
    assert.equal(await clientCredentials(appId, firstSecret), 401);
  });
  it("the developer and account pages' own sign-ins do not say they send you back to a program on this device", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    for (const [path, name] of [['/developer', 'Latchkey developer page'], ['/account', 'Latchkey account page']] as const) {
      await page.goto(`${server.issuer}${path}/sign-in`);
      await page.waitForSelector('input[name="username"]');
      const text = await page.locator('main').innerText();
      assert.match(text, new RegExp(name), path);
      assert.doesNotMatch(text, /Sends you back|program on this device/, `${path}: ${text}`);
    }
    await shot(page, 'developer-own-sign-in');
    await context.close();
  });

  it('registers an app with a post-logout redirect URI and a back-channel logout URI; the sample app (openid-client) signs in, then out back to that URI', async () => {
    carol = await signIn('carol');
    const port = await freePort();
    journal = { id: '', origin: `http://localhost:${port}` };
    await carol.page.fill('#name', 'Carol Journal');
    await carol.page.check('input[name="type"][value="web"]');
    await carol.page.fill('#redirect_uris', `${journal.origin}/callback`);
    await carol.page.fill('#post_logout_redirect_uris', `${journal.origin}/signed-out`);
    await carol.page.fill('#backchannel_logout_uri', `http://127.0.0.1:${port}/backchannel-logout`);
    await shot(carol.page, 'developer-logout-uris-form');
    await carol.page.click('button:has-text("Register app")');
    await carol.page.waitForSelector('#client-secret');
    journal.id = await carol.page.locator('#client-id').innerText();
    const secret = await carol.page.locator('#client-secret').innerText();
    // As the newcomer ran it: PORT=<port> CLIENT_ID=<id> CLIENT_SECRET=<secret> npm run sample-rp.
    journal.rp = await startRelyingParty({ issuer: server.issuer, clientId: journal.id, clientSecret: secret, title: 'Carol Journal', port, publicUrl: (p) => `http://localhost:${p}` });

    const status = () => carol.page.locator('#status').innerText();
    await carol.page.goto(journal.rp.url);
    await carol.page.click('#signin');
    await carol.page.waitForSelector('text=Allow access?');
    // Any other app on loopback is still said to be a program on this device.
    assert.match(await carol.page.locator('.client-return').innerText(), new RegExp(`Sends you back to a program on this device \\(localhost:${port}\\)`));
    await carol.page.click('button:has-text("Allow")');
    await carol.page.waitForURL(`${journal.rp.url}/`);
    assert.match(await status(), /Signed in as Carol/);

    await carol.page.click('#signout');
    await carol.page.waitForSelector('text=Sign out everywhere');
    assert.match(await carol.page.locator('main').innerText(), /Carol Journal asks to sign you out/);
    await carol.page.click('button:has-text("Sign out everywhere")');
    await carol.page.waitForURL(`${journal.rp.url}/signed-out`);
    assert.match(await status(), /You are signed out/);
    await shot(carol.page, 'developer-app-signed-out');
  });

  it('stores the back-channel logout URI: the page lists it with the post-logout URI, the store holds it, and the app is posted a logout token at the sign-out', async () => {
    assert.ok(journal?.rp, 'needs the app of the test before');
    const { rp } = journal;
    await eventually(async () => assert.equal(rp.loggedOut.length, 1, 'the app received a logout token'));
    assert.equal(rp.loggedOut[0], rp.idTokens[0]!.sid, 'for the session it signed in with');
    const stored = await server.clients.get(journal.id);
    assert.equal(stored?.backchannel_logout_uri, `http://127.0.0.1:${rp.port}/backchannel-logout`);
    assert.equal(stored?.backchannel_logout_session_required, true);
    assert.deepEqual(stored?.post_logout_redirect_uris, [`${journal.origin}/signed-out`]);
    assert.equal(stored?.owner !== undefined, true, "an app of the developer page's");

    await carol.context.close();
    carol = await signIn('carol');
    const section = carol.page.locator('section.app', { hasText: 'Carol Journal' });
    assert.equal((await section.locator('dd.post-logout-redirect-uris').innerText()).trim(), `${journal.origin}/signed-out`);
    assert.equal(await section.locator('dd.backchannel-logout-uri').innerText(), `http://127.0.0.1:${rp.port}/backchannel-logout`);
    await shot(carol.page, 'developer-logout-uris-listed');
  });

  it("refuses a post-logout or back-channel logout URI the registration policy refuses, as a form error with what was typed kept, never a 500", async () => {
    const page = carol.page;
    const attempt = async (postLogout: string, backchannel: string) => {
      await page.goto(`${server.issuer}/developer`);
      await page.fill('#name', 'Sloppy Journal');
      await page.check('input[name="type"][value="web"]');
      await page.fill('#redirect_uris', 'https://journal.example.test/callback');
      await page.fill('#post_logout_redirect_uris', postLogout);
      await page.fill('#backchannel_logout_uri', backchannel);
      await page.click('button:has-text("Register app")');
      await page.waitForSelector('.error');
      assert.equal(await page.inputValue('#post_logout_redirect_uris'), postLogout, 'kept');
      assert.equal(await page.inputValue('#backchannel_logout_uri'), backchannel, 'kept');
      return page.locator('.error').innerText();
    };
    assert.match(await attempt('http://journal.example.test/signed-out', ''), /post_logout_redirect_uris: http:\/\/journal\.example\.test\/signed-out: use https/);
    await shot(page, 'developer-post-logout-refused');
    assert.match(await attempt('https://journal.example.test/signed-out#top', ''), /post_logout_redirect_uris: .*must not have a fragment/);
    assert.match(await attempt('https://journal.example.test/signed-out?state=x', ''), /post_logout_redirect_uris: .*its query has state/);
    assert.match(await attempt(`${server.issuer}/account`, ''), /post_logout_redirect_uris: .*Latchkey's own address/);
    assert.match(await attempt('https://journal.example.test/signed-out', 'http://journal.example.test/backchannel-logout'), /backchannel_logout_uri must be an https URL/);
    assert.match(await attempt('https://journal.example.test/signed-out', 'https://journal.example.test/backchannel-logout#x'), /backchannel_logout_uri must not have a fragment/);
    await shot(page, 'developer-backchannel-refused');

    // What a browser's own checks would not let through (type="url"), posted as it is.
    const csrf = await page.locator('input[name="csrf"]').first().inputValue();
    const post = (fields: Record<string, string>) =>
      carol.context.request.post(`${server.issuer}/developer/apps`, {
        form: { csrf, name: 'Sloppy Journal', type: 'web', redirect_uris: 'https://journal.example.test/callback', ...fields },
        maxRedirects: 0,
      });
    for (const [fields, said] of [
      [{ backchannel_logout_uri: 'not-a-url' }, /backchannel_logout_uri must be an https URL/],
      [{ backchannel_logout_uri: 'https://a.example.test/bc https://b.example.test/bc' }, /Give one back-channel logout URI at most/],
      [{ backchannel_logout_uri: 'not a uri' }, /The back-channel logout URI is not a URI: give one https URL/],
      [{ backchannel_logout_uri: 'https://a.example.test/bc, please' }, /The back-channel logout URI is not a URI: give one https URL/],
      [{ backchannel_logout_uri: 'javascript:alert(1)' }, /backchannel_logout_uri must be an https URL/],
      [{ post_logout_redirect_uris: 'journal.example.test:443/out' }, /a host and port without a scheme/],
      [{ post_logout_redirect_uris: 'com.example.journal:/out' }, /custom scheme is allowed only for native apps/],
    ] as const) {
      const answer = await post(fields);
      const text = await answer.text();
      assert.equal(answer.status(), 400, `${JSON.stringify(fields)}: ${text.slice(0, 300)}`);
      assert.match(text, said, JSON.stringify(fields));
    }
    const owned = await server.clients.ownedBy((await server.accounts.findByUsername('carol'))!.sub);
    assert.deepEqual(owned.map((app) => app.client_name), ['Carol Journal'], 'nothing registered');
  });

  it("a sign-out asked with a post_logout_redirect_uri the app did not register names that URI on the error page, as text (a URL on the app's own origin: redteam-session-changes has what is not named)", async () => {
    assert.ok(journal?.id, 'needs the app of the tests before');
    // Markup in it, as the URL parser writes it (percent-encoded): only such a URL is named.
    const asked = `${journal.origin}/elsewhere?x=%22%3E%3Cb%20id=%22injected%22%3Ebold%3C/b%3E`;
    await carol.page.goto(`${server.issuer}/session/end?${new URLSearchParams({ client_id: journal.id, post_logout_redirect_uri: asked })}`);
    assert.equal(await carol.page.locator('h1').innerText(), 'Not signed out');
    const detail = await carol.page.locator('.detail').innerText();
    assert.ok(detail.includes(`post_logout_redirect_uri not registered: ${asked} is not one of this app's post-logout redirect URIs`), detail);
    assert.equal(await carol.page.locator('#injected').count(), 0, 'shown as text');
    await shot(carol.page, 'developer-logout-uri-not-registered');
  });

  it("takes a name of up to the registration policy's 100 characters, as the form's maxlength and the docs say", async () => {
    const page = carol.page;
    await page.goto(`${server.issuer}/developer`);
    assert.equal(await page.getAttribute('#name', 'maxlength'), '100');
    const csrf = await page.locator('input[name="csrf"]').first().inputValue();
    const post = (name: string) =>
      carol.context.request.post(`${server.issuer}/developer/apps`, { form: { csrf, name, type: 'spa', redirect_uris: 'https://long.example.test/callback' }, maxRedirects: 0 });
    const refused = await post(`L${'o'.repeat(99)}ng`);
    assert.equal(refused.status(), 400);
    assert.match(await refused.text(), /at most 100 characters/);
    await page.fill('#name', `L${'o'.repeat(98)}g`);
    await page.check('input[name="type"][value="spa"]');
    await page.fill('#redirect_uris', 'https://long.example.test/callback');
    await page.click('button:has-text("Register app")');
    await page.waitForSelector('#client-id');
  });
});
