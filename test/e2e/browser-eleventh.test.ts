/**
 * What a person clicks, in Debian's Chromium, in flows no earlier pass drove in a browser (the
 * eleventh fresh-eyes passes of 2026-12-07, docs/security-passes.md): signing in at /device with a
 * passkey (Chromium's virtual authenticator) and through an upstream provider, a device app that
 * requires a second factor met by a person without one, and single sign-on across sites under an
 * https issuer behind a TLS proxy (a Node https server with a self-signed certificate made here by
 * openssl; Chromium resolves the test's host names to it and is told to accept the certificate),
 * with a same-site attacker's forms posted at every account form. One browser for the file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshots, watchCsp } from '../helpers/browser.js';
import { fakeUpstreamOf } from '../helpers/fake-upstream.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'a passphrase for the eleventh pass';
const SECRET = 'browser-eleventh-client-secret-with-plenty-of-entropy';
const insecure = { execute: [oidc.allowInsecureRequests] };
/** The https issuer's host, the apps' site (another site) and an attacker's page on the issuer's own site. */
const ID_HOST = 'id.example.test';
const APPS = 'example.org';
const EVIL_HOST = 'evil.example.test';

const deviceClient = (id: string, name: string, extra: Record<string, unknown> = {}) => ({
  client_id: id,
  client_name: name,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: [DEVICE_GRANT],
  response_types: [],
  redirect_uris: [],
  ...extra,
});

describe('e2e (Chromium): flows a person clicks that no pass drove in a browser (eleventh pass)', function () {
  this.timeout(90_000);
  let browser: Browser;
  const shot = screenshots('browser/eleventh');
  const cspViolations: string[] = [];

  before(async () => {
    browser = await launchChromium(['--ignore-certificate-errors', `--host-resolver-rules=MAP ${ID_HOST} 127.0.0.1, MAP *.${APPS} 127.0.0.1, MAP ${EVIL_HOST} 127.0.0.1`]);
  });
  after(async () => {
    await browser?.close();
    assert.deepEqual(cspViolations, []);
  });

  describe('the device flow at /device', () => {
    let server: TestServer;
    let fake: Awaited<ReturnType<typeof fakeUpstreamOf>>;
    let context: BrowserContext;
    let page: Page;
    /** Whether the virtual authenticator answers at once, as if touched (passkeys.test.ts). */
    let presence: (enabled: boolean) => Promise<unknown>;

    before(async () => {
      server = await startServer({
        ownRedis: true,
        env: { DEVICE_FLOW_POLL_INTERVAL: '1', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
        clients: [deviceClient('ledger-cli', 'Ledger CLI'), deviceClient('vault-cli', 'Vault CLI', { require_mfa: true })],
      });
      await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
      await server.accounts.create('bob', PASSWORD, { name: 'Bob' });
      fake = await fakeUpstreamOf(server, SECRET);
      context = await browser.newContext({ viewport: { width: 900, height: 800 } });
      page = watchCsp(await context.newPage(), cspViolations);
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: false },
      });
      presence = (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
    });
    after(async () => {
      await context?.close();
      await fake?.close();
      await server?.stop();
    });

    const text = async () => (await page.locator('main, body').first().innerText()).replace(/\s+/g, ' ');

    /** A device of `clientId` asks; the person opens verification_uri_complete, continues and confirms; returns what the device's polling ends with. */
    async function deviceAsks(clientId: string): Promise<{ polled: Promise<string> }> {
      await context.clearCookies();
      const config = await oidc.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const polled = oidc.pollDeviceAuthorizationGrant(config, device).then(
        (tokens) => `amr ${String(tokens.claims()?.amr)}`,
        (error: Error & { error?: string }) => error.error ?? error.message,
      );
      await page.goto(device.verification_uri_complete!);
      await page.click('button[type=submit]');
      await page.click('button[name=confirm]');
      await page.waitForSelector('h1:has-text("Sign in")');
      return { polled };
    }

    async function allowUntilDone() {
      // The consent page or the end, whichever comes: a load state alone may be the page before them.
      await page.waitForSelector('h1:has-text("Allow access?"), h1:has-text("Device connected")');
      if ((await page.locator('h1:has-text("Allow access?")').count()) > 0) await page.click('button:has-text("Allow")');
      await page.waitForSelector('h1:has-text("Device connected")');
    }

    it('a passkey signs in at /device: the person enrols one on the account page, then the device\'s sign-in takes it (amr swk)', async () => {
      await page.goto(`${server.issuer}/account`);
      await page.fill('#username', 'alice');
      await page.fill('#password', PASSWORD);
      await page.press('#password', 'Enter');
      await page.waitForSelector('#passkeys');
      await page.fill('#passkey-name', 'Laptop');
      await presence(true);
      await page.click('#passkey-enrol-button');
      await page.waitForSelector('text=Passkey added.');
      await presence(false);

      const { polled } = await deviceAsks('ledger-cli');
      await presence(true);
      await page.click('#passkey-button');
      await allowUntilDone();
      await presence(false);
      await shot(page, 'device-passkey-connected');
      assert.equal(await polled, 'amr swk,mfa');
    });

    it('reloading the "Device connected" page (its sign-in is spent) does not tell the person to enter the spent code again', async () => {
      const { polled } = await deviceAsks('ledger-cli');
      await page.fill('#username', 'alice');
      await page.fill('#password', PASSWORD);
      await page.press('#password', 'Enter');
      await page.waitForSelector('h1:has-text("Confirm it is you")');
      await presence(true);
      await page.click('#passkey-button');
      await allowUntilDone();
      await presence(false);
      assert.equal(await polled, 'amr pwd,swk,mfa');
      await page.reload();
      const said = await text();
      assert.doesNotMatch(said, /Enter the code again/, said);
      assert.match(said, /already used or has expired[^.]*\. If your device shows it is connected, there is nothing more to do; if not, start again on your device/, said);
    });

    it('an upstream provider signs in at /device (amr fed)', async () => {
      const { polled } = await deviceAsks('ledger-cli');
      await page.click('button:has-text("Continue with Fake")');
      await allowUntilDone();
      assert.equal(await polled, 'amr fed');
    });

    it('a device app requiring a second factor, met by a person without one: the page says the device was not connected and why, and to start again on the device, not "enter the code again" (the code is spent)', async () => {
      const { polled } = await deviceAsks('vault-cli');
      await page.fill('#username', 'bob');
      await page.fill('#password', PASSWORD);
      await page.press('#password', 'Enter');
      await page.waitForSelector('h1:has-text("Second factor required")');
      const asked = await text();
      assert.match(asked, /start again on your device/, asked);
      assert.doesNotMatch(asked, /the application/, `a device has no application page to go back to: ${asked}`);
      await shot(page, 'device-second-factor-required');
      await page.click('form[action$="/unmet"] button');
      await page.waitForSelector('h1:has-text("Connect a device")');
      const said = await text();
      await shot(page, 'device-second-factor-required-after');
      // RFC 8628 §3.5's code, the reason in its description (device-token-errors.ts, fifteenth pass at the new kinds of clients).
      assert.equal(await polled, 'access_denied');
      assert.doesNotMatch(said, /Enter the code again|expired/, said);
      assert.match(said, /Vault CLI was not connected/, said);
      assert.match(said, /passkey or an authenticator app/, said);
      assert.match(said, /start again on your device/, said);
    });
  });

  describe('single sign-on across sites under an https issuer (a TLS proxy in front)', () => {
    let server: TestServer;
    let proxy: Server;
    let context: BrowserContext;
    let page: Page;
    let port: number;
    let issuer: string;
    let certs: string;
    const app = (n: number) => `https://app${n}.${APPS}:${port}`;

    before(async () => {
      certs = mkdtempSync(join(tmpdir(), 'latchkey-tls-'));
      const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', `/CN=${ID_HOST}`], { cwd: certs, encoding: 'utf8' });
      assert.equal(made.status, 0, made.stderr);
      port = await freePort();
      issuer = `https://${ID_HOST}:${port}`;
      const appClient = (n: number) => ({ client_id: `app${n}`, client_secret: SECRET, client_name: `App ${n}`, redirect_uris: [`https://app${n}.${APPS}:${port}/cb`], post_logout_redirect_uris: [`https://app${n}.${APPS}:${port}/bye`] });
      server = await startServer({ ownRedis: true, env: { ISSUER: issuer, PROXY: 'true' }, clients: [appClient(1), appClient(2)] });
      await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
      // One TLS port for every host: the issuer's requests go on to Latchkey's plain http port, as a
      // TLS proxy's would; the apps' pages link to the issuer; the attacker's page posts a form.
      proxy = createServer({ key: readFileSync(join(certs, 'key.pem')), cert: readFileSync(join(certs, 'cert.pem')) }, (req, res) => {
        const url = new URL(req.url ?? '/', `https://${req.headers.host}`);
        const attribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
        if (url.hostname === ID_HOST) {
          const forwarded = httpRequest(`${server.url}${req.url}`, { method: req.method, headers: { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': '127.0.0.1' } }, (answer) => {
            res.writeHead(answer.statusCode!, answer.headers);
            answer.pipe(res);
          });
          req.pipe(forwarded);
          return;
        }
        if (url.hostname === EVIL_HOST) {
          const fields = JSON.parse(url.searchParams.get('fields') ?? '{}') as Record<string, string>;
          const inputs = Object.entries(fields).map(([name, value]) => `<input type="hidden" name="${attribute(name)}" value="${attribute(value)}">`).join('');
          res.writeHead(200, { 'content-type': 'text/html' }).end(`<form method="post" action="${attribute(url.searchParams.get('to') ?? '')}">${inputs}</form><script>document.forms[0].submit()</script>`);
          return;
        }
        if (url.pathname === '/start') {
          res.writeHead(200, { 'content-type': 'text/html' }).end(`<a id="go" href="${attribute(url.searchParams.get('to') ?? '')}">Sign in</a>`);
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`back at ${url.hostname}`);
      });
      await new Promise<void>((listening) => proxy.listen(port, '127.0.0.1', listening));
      context = await browser.newContext({ viewport: { width: 900, height: 800 } });
      page = watchCsp(await context.newPage(), cspViolations);
    });
    after(async () => {
      await context?.close();
      await new Promise((closed) => (proxy ? proxy.close(closed) : closed(undefined)));
      await server?.stop();
      if (certs) rmSync(certs, { recursive: true, force: true });
    });

    const authorization = (n: number, extra: Record<string, string> = {}) =>
      `${issuer}/auth?${new URLSearchParams({ client_id: `app${n}`, response_type: 'code', scope: 'openid profile', redirect_uri: `${app(n)}/cb`, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 'st', ...extra })}`;
    /** A link on app n's page to `to`, followed (a top-level cross-site navigation). */
    async function fromApp(n: number, to: string) {
      await page.goto(`${app(n)}/start?to=${encodeURIComponent(to)}`);
      await page.click('#go');
      await page.waitForLoadState();
    }
    async function allowIfAsked() {
      if ((await page.locator('h1:has-text("Allow access?")').count()) > 0) await page.click('button:has-text("Allow")');
      await page.waitForLoadState();
    }
    /** Where the browser is now, which must be app n's page. */
    const returned = (n: number) => {
      const url = new URL(page.url());
      assert.equal(url.origin, app(n), page.url());
      return url;
    };

    it('sign-in at app1, then app2 with no password, prompt=none; the session cookie is __Host-, Secure, HttpOnly, SameSite=Lax; sign-out from app1 ends it for both', async () => {
      await fromApp(1, authorization(1));
      await page.fill('#username', 'alice');
      await page.fill('#password', PASSWORD);
      await page.press('#password', 'Enter');
      await page.waitForSelector('h1:has-text("Allow access?")');
      await allowIfAsked();
      assert.ok(returned(1).searchParams.get('code'), page.url());

      const cookies = await context.cookies(issuer);
      assert.deepEqual(cookies.map((cookie) => cookie.name).sort(), ['__Host-lk_session', '__Host-lk_session.sig']);
      for (const cookie of cookies) {
        assert.deepEqual([cookie.secure, cookie.httpOnly, cookie.sameSite, cookie.path, cookie.domain], [true, true, 'Lax', '/', ID_HOST], cookie.name);
      }

      await fromApp(2, authorization(2));
      await page.waitForSelector('h1:has-text("Allow access?")');
      assert.doesNotMatch(await page.locator('body').innerText(), /Password/, 'no password asked at app2');
      await allowIfAsked();
      assert.ok(returned(2).searchParams.get('code'), page.url());
      await fromApp(2, authorization(2, { prompt: 'none' }));
      assert.ok(returned(2).searchParams.get('code'), page.url());

      await page.goto(`${issuer}/account`);
      await page.waitForSelector('#passkeys');

      await fromApp(1, `${issuer}/session/end?${new URLSearchParams({ client_id: 'app1', post_logout_redirect_uri: `${app(1)}/bye`, state: 'out' })}`);
      await page.click('button[name=logout]');
      await page.waitForURL(`${app(1)}/bye?state=out`);
      assert.deepEqual(await context.cookies(issuer), []);
      for (const n of [1, 2]) {
        await fromApp(n, authorization(n, { prompt: 'none' }));
        assert.equal(returned(n).searchParams.get('error'), 'login_required', page.url());
      }
    });

    it('a page on a sibling host (same site: SameSite=Lax cookies go along) posting every account form without the token or with a wrong one changes nothing: "This form is out of date"', async () => {
      await page.goto(`${issuer}/account`);
      await page.fill('#username', 'alice');
      await page.fill('#password', PASSWORD);
      await page.press('#password', 'Enter');
      await page.waitForSelector('#passkeys');
      // The page as it reads whatever the clock says: "Last seen" moves on with every visit.
      const accountPage = async () => (await page.locator('main').innerText()).replace(/Last seen [^.]*\./g, 'Last seen (when).');
      const before = await accountPage();
      const forms = await page.$$eval('form[method="post"]', (all) =>
        all.map((form) => ({
          action: form.getAttribute('action') ?? '',
          fields: Object.fromEntries([...form.querySelectorAll('input[name]')].map((input) => [input.getAttribute('name')!, (input as unknown as { value: string }).value])),
        })),
      );
      assert.ok(forms.length >= 6, JSON.stringify(forms.map((form) => form.action)));
      for (const form of forms) {
        const filled: Record<string, string> = { ...form.fields };
        for (const name of Object.keys(filled)) if (/password/.test(name)) filled[name] = name.startsWith('current') ? PASSWORD : 'an attacker chose this passphrase';
        for (const csrf of [undefined, 'x'.repeat(43)]) {
          const fields: Record<string, string> = { ...filled };
          if (csrf) fields.csrf = csrf;
          else delete fields.csrf;
          await page.goto(`https://${EVIL_HOST}:${port}/?${new URLSearchParams({ to: new URL(form.action, issuer).href, fields: JSON.stringify(fields) })}`);
          await page.waitForURL((url) => url.hostname === ID_HOST);
          assert.match(await page.locator('body').innerText(), /This form is out of date/, `${form.action} (${csrf ? 'wrong token' : 'no token'})`);
        }
      }
      await page.goto(`${issuer}/account`);
      assert.equal(await accountPage(), before, 'nothing changed on the account page');
    });
  });
});
