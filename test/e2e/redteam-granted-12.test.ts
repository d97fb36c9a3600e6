/**
 * The red team's twelfth pass at "Latchkey hands out more than was granted" (2026-12-03), the
 * person's side in Chromium, black box: the consent form edited or posted by hand, from another
 * tab's sign-in, from another site and after its sign-in ended; silent requests in every response
 * mode for scopes never consented, and the form_post page's headers; the device flow's `scope` at
 * polling and a user code confirmed twice. Everything tried held; this file pins what no earlier
 * test performed, and docs/security-passes.md lists the rest of what was tried.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'red team granted twelve passphrase';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789abcdef';
const ATTACKER = 'https://attacker.example.net';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('e2e (Chromium): red team, twelfth granting pass, the consent form and silent answers give no more than the page showed', function () {
  this.timeout(90_000);
  let server: TestServer;
  let browser: Browser;
  // The apps' redirect URIs: a listener of this test on loopback (a confidential client's), which keeps every answer it gets.
  let apps: Server;
  const seen: string[] = [];
  let NOTES_REDIRECT = '';
  let TASKS_REDIRECT = '';

  before(async () => {
    apps = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        seen.push(`${req.url} ${body}`);
        res.writeHead(200, { 'content-type': 'text/html' }).end('<p>back at the app</p>');
      });
    });
    await new Promise<void>((resolve) => apps.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(apps.address() as AddressInfo).port}`;
    NOTES_REDIRECT = `${base}/notes/callback`;
    TASKS_REDIRECT = `${base}/tasks/callback`;
    server = await startServer({
      ownRedis: true,
      clients: [
        { client_id: 'notes', client_name: 'Notes', client_secret: SECRET, redirect_uris: [NOTES_REDIRECT], grant_types: ['authorization_code'] },
        { client_id: 'tasks', client_name: 'Tasks', client_secret: SECRET, redirect_uris: [TASKS_REDIRECT], grant_types: ['authorization_code'] },
        { client_id: 'tv', client_name: 'TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] },
      ],
      env: { DEVICE_FLOW_POLL_INTERVAL: '1' },
    });
    await server.accounts.create('alice', PASSWORD, { email: 'alice@example.test', email_verified: true, name: 'Alice Example' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    apps?.close();
  });

  async function authUrl(clientId: string, redirectUri: string, scope: string, extra: Record<string, string> = {}): Promise<string> {
    const url = new URL(`${server.issuer}/auth`);
    const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
    for (const [name, value] of Object.entries({ client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope, state: 'st', code_challenge: challenge, code_challenge_method: 'S256', ...extra })) url.searchParams.set(name, value);
    return url.href;
  }

  async function signIn(page: Page): Promise<void> {
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
  }

  /** The consent form of a page showing one: where it posts and its token. */
  async function consentForm(page: Page): Promise<{ action: string; csrf: string }> {
    await page.waitForSelector('button:has-text("Allow")');
    const form = page.locator('form:has(button:has-text("Allow"))');
    return { action: new URL((await form.getAttribute('action'))!, server.issuer).href, csrf: (await form.locator('input[name="csrf"]').getAttribute('value'))! };
  }

  /** A silent request's answer at the app: the error or code it got, in whatever response mode. */
  async function silent(page: Page, clientId: string, redirectUri: string, scope: string, responseMode?: string): Promise<string> {
    const before = seen.length;
    // Until commit only: the form_post page posts itself at once, and a wait for its load would race that navigation.
    const answer = await page.goto(await authUrl(clientId, redirectUri, scope, { prompt: 'none', ...(responseMode ? { response_mode: responseMode } : {}) }), { waitUntil: 'commit' });
    if (responseMode === 'form_post') {
      // The page that posts the answer can be neither framed nor kept by a window that opened it.
      const headers = (await answer!.request().response())!.headers();
      assert.equal(headers['x-frame-options'], 'DENY');
      assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
      assert.equal(headers['cross-origin-opener-policy'], 'same-origin');
      assert.equal(headers['cache-control'], 'no-store');
    }
    await page.waitForURL(`${redirectUri}**`);
    // A fragment never reaches the app's server: read it from the page's URL.
    return responseMode === 'fragment' ? page.url() : seen.slice(before).join(' ');
  }

  it("a consent form posts only for its own sign-in and page: edited fields, another tab's token, another site's post and a replay after the sign-in ended give nothing the person did not allow", async () => {
    const context = await browser.newContext();
    try {
      // Tab one: notes asks for openid only; the person signs in there.
      const notesTab = await context.newPage();
      await notesTab.goto(await authUrl('notes', NOTES_REDIRECT, 'openid'));
      await signIn(notesTab);
      const notes = await consentForm(notesTab);
      // Tab two: tasks asks for openid email profile; its consent page waits.
      const tasksTab = await context.newPage();
      await tasksTab.goto(await authUrl('tasks', TASKS_REDIRECT, 'openid email profile'));
      const tasks = await consentForm(tasksTab);
      assert.notEqual(notes.action, tasks.action);

      // By hand from the person's browser (its cookies): each sign-in's form with the other's token is refused.
      for (const [action, csrf] of [[notes.action, tasks.csrf], [tasks.action, notes.csrf]] as const) {
        const answer = await notesTab.request.post(action, { form: { csrf }, maxRedirects: 0 });
        assert.equal(answer.status(), 403, `${action}: ${answer.status()}`);
      }
      // Another site posts the notes form with its own valid token (a token seen, e.g. over a shoulder or in a log):
      // the interaction cookies are SameSite=Lax, so the cross-site POST carries none and confirms nothing.
      const attacker = await context.newPage();
      await attacker.route(`${ATTACKER}/**`, (route) => route.fulfill({
        status: 200,
        contentType: 'text/html',
        body: `<form method="post" action="${notes.action}"><input type="hidden" name="csrf" value="${notes.csrf}"></form><script>document.forms[0].submit()</script>`,
      }));
      await attacker.goto(`${ATTACKER}/win-a-prize`);
      await attacker.waitForURL(`${server.issuer}/**`);
      await attacker.waitForSelector('main h1');
      assert.match(await attacker.locator('main').innerText(), /expired or was already completed|not started in this browser|not sent from this sign-in page/);
      assert.doesNotMatch(await attacker.locator('main').innerText(), /back at the app/);
      assert.equal(seen.filter((url) => url.startsWith('/notes/')).length, 0, `a cross-site post confirmed the consent: ${seen.join(' | ')}`);

      // The person allows notes, the form edited to ask for more (fields the server does not read).
      const added = { scope: 'openid email profile', claims: '{"id_token":{"email":null}}', resource: 'https://api.example.test', client_id: 'tasks', grantId: 'x', prompt: 'none' };
      // Test code has no DOM types: the script is a string run in the page.
      const fields = await notesTab.evaluate(`(() => {
        const form = document.querySelector('form[action$="/confirm"]');
        for (const [name, value] of Object.entries(${JSON.stringify(added)})) {
          const input = document.createElement('input');
          input.type = 'hidden';
          input.name = name;
          input.value = value;
          form.appendChild(input);
        }
        return form.elements.length;
      })()`);
      assert.equal(fields, 2 + Object.keys(added).length);
      await notesTab.click('button:has-text("Allow")');
      await notesTab.waitForURL(`${NOTES_REDIRECT}?**`);
      assert.match(notesTab.url(), /code=/);
      // The same POST again, after that sign-in ended: no code, no redirect.
      const replay = await notesTab.request.post(notes.action, { form: { csrf: notes.csrf }, maxRedirects: 0 });
      assert.equal(replay.status(), 400);
      assert.doesNotMatch(replay.headers().location ?? '', /code=/);

      // What notes holds is openid only; tasks holds nothing, its page still waiting.
      assert.match(await silent(notesTab, 'notes', NOTES_REDIRECT, 'openid'), /code=/);
      assert.match(await silent(notesTab, 'notes', NOTES_REDIRECT, 'openid email'), /error=consent_required/);
      assert.match(await silent(notesTab, 'tasks', TASKS_REDIRECT, 'openid'), /error=consent_required/);
      await tasksTab.reload();
      await consentForm(tasksTab);
    } finally {
      await context.close();
    }
  });

  it('a silent request for a scope never consented is consent_required in every response mode (query, fragment, form_post), with no code; the form_post page can be neither framed nor read by its opener', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(await authUrl('tasks', TASKS_REDIRECT, 'openid'));
      await signIn(page);
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${TASKS_REDIRECT}?**`);
      for (const mode of ['query', 'fragment', 'form_post']) {
        const answer = await silent(page, 'tasks', TASKS_REDIRECT, 'openid email', mode);
        assert.match(answer, /error=consent_required/, `${mode}: ${answer}`);
        assert.doesNotMatch(answer, /code=/, mode);
        assert.match(await silent(page, 'tasks', TASKS_REDIRECT, 'openid', mode), /code=/, mode);
      }
    } finally {
      await context.close();
    }
  });

  it('the device flow: scope, offline access and claims sent at polling (RFC 8628 §3.4 has no scope) give nothing beyond what the confirmation page listed, and a user code confirmed once is not confirmed again', async () => {
    const post = (path: string, form: Record<string, string>) => fetch(`${server.issuer}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
    const device = (await (await post('/device/auth', { client_id: 'tv', scope: 'openid' })).json()) as { device_code: string; user_code: string; verification_uri: string };
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(device.verification_uri);
      await page.fill('#user_code', device.user_code);
      await page.click('button[type=submit]');
      const listed = await page.locator('ul.scopes').innerText();
      assert.doesNotMatch(listed, /email|profile|offline/i);
      await page.click('button[name=confirm]');
      await signIn(page);
      await page.click('form[action$="/confirm"] button[type=submit]');
      assert.equal(await page.locator('h1').innerText(), 'Device connected');
      // The same code typed again: already used, no second confirmation.
      await page.goto(device.verification_uri);
      await page.fill('#user_code', device.user_code);
      await page.click('button[type=submit]');
      assert.match(await page.locator('main').innerText(), /already used/);
      assert.equal(await page.locator('button[name=confirm]').count(), 0);
    } finally {
      await context.close();
    }
    const tokens = (await (await post('/token', { grant_type: DEVICE_GRANT, client_id: 'tv', device_code: device.device_code, scope: 'openid email profile offline_access', claims: '{"userinfo":{"email":null},"id_token":{"email":null}}' })).json()) as Record<string, string>;
    assert.ok(tokens.access_token, JSON.stringify(tokens));
    assert.equal(tokens.scope, 'openid');
    assert.equal(tokens.refresh_token, undefined);
    const idToken = JSON.parse(Buffer.from(tokens.id_token!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(idToken.email, undefined);
    const userinfo = (await (await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(userinfo), ['sub']);
  });
});
