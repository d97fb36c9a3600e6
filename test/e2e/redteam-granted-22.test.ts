/**
 * The red team's twenty-second pass at "Latchkey hands out more than was granted" (2026-12-04), black
 * box (docs/security-passes.md, "Looked at in the twenty-second granting pass").
 *
 * Found and fixed: the consent page's check after its writes told an app's RFC 7009 revocation of an
 * access token (the grant kept) from a grant's ending by the second of the grant's revocation entry,
 * so an ending that stalled between its entry and the deletion of the grant's record, across a
 * consent page whose request began in between, was missed: the page wrote the ended grant back, with
 * all it held, and the app got a code from it; and an access token revoked while the page was open
 * had the page refused as a withdrawn consent. The store now marks a grant's ending by its kind
 * (revocation/list.ts endGrant), and the page is refused exactly when the grant ended.
 *
 * Held and pinned: a device approval in Chromium across the person's access withdrawn on the account
 * page, `grants revoke --user` or `--client`, or a sign-out, between the user code and the
 * confirmation, and its consent page across a person switch; a refresh token of a request naming
 * two APIs switched between them with scopes mixed across them.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { commandsIn, startRelay, startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';

const PASSWORD = 'red team granted twenty-two passphrase';
const REDIRECT = 'https://twenty-two.example.test/callback';
const APP = { id: 'twenty-two', secret: 'twenty-two-client-secret-with-plenty-of-entropy-0123456789' };

describe("e2e: red team, twenty-second granting pass, a consent page across a grant's ending told apart from an access token's revocation", function () {
  this.timeout(90_000);
  let relayed: RelayedServer;
  let config: oidc.Configuration;

  before(async () => {
    relayed = await startRelayedServer({
      CLIENTS: JSON.stringify([{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email profile' }]),
    });
    config = await oidc.discovery(new URL(relayed.server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await relayed?.stop();
  });

  /** A person signed in at a browser with a grant of `openid offline_access email` to the app: the browser and the grant's tokens. */
  async function signedIn(person: string): Promise<{ browser: Agent; tokens: oidc.TokenEndpointResponse }> {
    await relayed.server.accounts.create(person, PASSWORD, { email: `${person}@example.test`, name: person });
    const browser = new Agent();
    const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' });
    const back = await signInSteps(browser, page, { username: person, password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(tokens.refresh_token, 'offline access');
    return { browser, tokens };
  }

  const revoke = (url: string, token: string, hint: string) =>
    fetch(`${url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: hint, client_id: APP.id, client_secret: APP.secret }),
    });

  /** The store's deletion of a grant's record (the last step of its ending). */
  const grantRecordDeletion = (chunk: string) => commandsIn(chunk).some(([name = '', ...args]) => /^(del|unlink)$/i.test(name) && args.some((arg) => arg.includes('oidc:Grant:')));
  /** The consent confirmation's write of the grant (after it read and checked it). */
  const grantWrite = (chunk: string) => chunk.includes('oidc:Grant:') && chunk.includes('"kind":"Grant"');

  it("a grant's ending (the app's RFC 7009 revocation of its refresh token) stalled before the grant's record is deleted, across a consent page begun a second later: the page does not write the ended grant back, and the app gets no code (RFC 7009 §2.1)", async () => {
    const { server, relay, env } = relayed;
    // The ending at a second instance, on a relay of its own: held at the grant's deletion, after
    // the grant's revocation entry, while the person's consent page goes on at the first.
    let endingRelay: Relay | undefined;
    let other: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      endingRelay = await startRelay(Number(new URL(env.REDIS_URL!).port));
      other = await startServer({ redisUrl: endingRelay.url, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, CLIENTS: env.CLIENTS!, REDIS_COMMAND_TIMEOUT: '30000' } });
      const { browser, tokens } = await signedIn('vera');
      const ending = await endingRelay.hold(grantRecordDeletion, () => revoke(other!.url, tokens.refresh_token!, 'refresh_token'));
      // The consent page's request begins in a later second than the grant's revocation entry.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const consent = (await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access email profile' })).page;
      assert.ok(isConsent(consent), `expected the consent page adding to the grant, got ${consent.status} ${consent.url}`);
      assert.match(consent.html, /name and profile/);
      assert.doesNotMatch(consent.html, /email address|offline access/, 'the page lists only what the grant lacks');
      // Confirmed: held at its write of the grant, which it read while the grant was still stored.
      const confirming = await relay.hold(grantWrite, () => browser.submit(consent, '/confirm', {}, REDIRECT));
      // The ending goes on: the grant's record deleted, the revocation answered.
      assert.equal((await ending.release()).status, 200);
      const confirmed = await confirming.release();
      assert.equal(new URL(confirmed.url).searchParams.get('code'), null, `the ended grant was written back by the consent page, and the app got a code from it (${confirmed.url})`);
      assert.match(confirmed.html, /the earlier consent was withdrawn/);
      // Nor is anything of it taken up after: the app's silent request gets no code.
      const silent = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `a silent request got a code after the ending: ${silent.page.url}`);
    } finally {
      endingRelay?.release();
      await other?.stop();
      endingRelay?.close();
    }
  });

  it("an app's RFC 7009 revocation of one of its access tokens while its person's consent page is open ends the grant, as a refresh token's does: the page adds nothing to the ended grant, and the person's next request makes a new one (RFC 7009 §2.1; granting and endings pass of 2026-12-06)", async () => {
    const { server } = relayed;
    const { browser, tokens } = await signedIn('walt');
    const { page: consent } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access email profile' });
    assert.ok(isConsent(consent), `expected the consent page, got ${consent.status} ${consent.url}`);
    assert.equal((await revoke(server.url, tokens.access_token, 'access_token')).status, 200);
    // The grant ended (its refresh token with it): the page does not write it back.
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), (error: { error?: string }) => error.error === 'invalid_grant');
    const confirmed = await browser.submit(consent, '/confirm', {}, REDIRECT);
    assert.equal(new URL(confirmed.url).searchParams.get('code'), null, `the ended grant was written back by the consent page (${confirmed.url})`);
    assert.match(confirmed.html, /the earlier consent was withdrawn/);
    // Asked again, the person allows, and the app gets a code of a new grant that redeems.
    const again = await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access email profile' });
    const page = isConsent(again.page) ? await browser.submit(again.page, '/confirm', {}, REDIRECT) : again.page;
    const redeemed = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: again.verifier, expectedState: oidc.skipStateCheck });
    assert.match(String(redeemed.scope), /\bprofile\b/);
  });
});

describe('e2e: red team, twenty-second granting pass, a device approval in Chromium across an ending between the user code and the confirmation', function () {
  this.timeout(120_000);
  const TV = 'twenty-two-tv';
  const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
  let server: TestServer;
  let chromium: Browser;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      clients: [{ client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_CODE, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access email' }],
    });
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await server?.stop();
  });

  const post = async (path: string, params: Record<string, string>) =>
    (await (await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) })).json()) as Record<string, string>;
  const asked = () => post('/device/auth', { client_id: TV, scope: 'openid offline_access email' });
  const poll = (deviceCode: string) => post('/token', { grant_type: DEVICE_CODE, device_code: deviceCode, client_id: TV });

  /** `username` signs in at the login page `tab` shows. */
  async function signIn(tab: Page, username: string): Promise<void> {
    await tab.fill('input[name="username"]', username);
    await tab.fill('input[name="password"]', PASSWORD);
    await Promise.all([tab.waitForNavigation(), tab.click('button:has-text("Sign in")')]);
  }

  /** `tab` at the confirmation of a new device code (the code entered from verification_uri_complete): the code. */
  async function atConfirmation(tab: Page): Promise<Record<string, string>> {
    const device = await asked();
    await tab.goto(device.verification_uri_complete!);
    await Promise.all([tab.waitForNavigation(), tab.click('button[type=submit]')]);
    await tab.waitForSelector('button[name=confirm]');
    return device;
  }

  /** A device approved by `username` in `tab` (signing in there if asked, allowing if asked) and polled: its tokens. */
  async function approvedOnce(tab: Page, username: string): Promise<Record<string, string>> {
    const device = await atConfirmation(tab);
    await Promise.all([tab.waitForNavigation(), tab.click('button[name=confirm]')]);
    if (await tab.locator('input[name="password"]').count()) await signIn(tab, username);
    if (await tab.locator('button:has-text("Allow")').count()) await Promise.all([tab.waitForNavigation(), tab.click('button:has-text("Allow")')]);
    await tab.waitForSelector('text=Device connected');
    const tokens = await poll(device.device_code!);
    assert.ok(tokens.access_token, JSON.stringify(tokens));
    return tokens;
  }

  /** What `tab` shows once its confirmation is sent: the body's text. */
  async function continued(tab: Page): Promise<string> {
    await Promise.all([tab.waitForNavigation(), tab.click('button[name=confirm]')]);
    return tab.locator('body').innerText();
  }

  for (const ending of ['withdrawn on the account page', 'grants revoke --user', 'grants revoke --client'] as const) {
    it(`a device approval whose person's access for the device client was ${ending.startsWith('grants') ? `revoked (${ending})` : ending} between the user code and the confirmation: the consent is asked again, nothing is given silently, and allowed again the page says the device was not connected (RFC 8628 §3.3, §5.4)`, async () => {
      const person = `pat-${ending.replace(/[^a-z]+/g, '-')}`;
      await server.accounts.create(person, PASSWORD, { email: `${person}@example.test` });
      const context = await chromium.newContext();
      try {
        const tab = await context.newPage();
        // The TV approved once (the consent remembered), so a second approval needs no page.
        const before = await approvedOnce(tab, person);
        const device = await atConfirmation(tab);
        if (ending === 'withdrawn on the account page') {
          const account = await context.newPage();
          await account.goto(`${server.url}/account`);
          await Promise.all([account.waitForURL(/done=apps\.withdrawn/), account.locator(`form:has(input[name=client][value="${TV}"]) button`).click()]);
        } else {
          const run = await latchkey(server.env, ['grants', 'revoke', ...(ending === 'grants revoke --user' ? ['--user', person] : ['--client', TV])]);
          assert.equal(run.status, 0, run.stderr);
        }
        const text = await continued(tab);
        assert.doesNotMatch(text, /Device connected/, `the device was approved with no consent asked after the ending: ${text}`);
        assert.match(text, /Allow/, `the consent page: ${text}`);
        assert.equal((await poll(device.device_code!)).error, 'authorization_pending', 'the device got nothing before the person allowed');
        // The earlier grant is gone with it.
        assert.equal((await post('/token', { grant_type: 'refresh_token', refresh_token: before.refresh_token!, client_id: TV })).error, 'invalid_grant');
        // Allowed again: the device's request began before the ending, so its poll is refused, and
        // the page says so rather than "Device connected" (it did before); a new code connects it.
        await Promise.all([tab.waitForNavigation(), tab.click('button:has-text("Allow")')]);
        const allowed = await tab.locator('body').innerText();
        assert.match(allowed, /Device not connected/, `the page after allowing: ${allowed}`);
        assert.equal((await poll(device.device_code!)).error, 'invalid_grant', 'the device code of a request from before the ending');
        await approvedOnce(tab, person);
      } finally {
        await context.close();
      }
    });
  }

  it('a device approval whose browser signed out in another tab between the user code and the confirmation approves nothing: the device gets nothing, the answer is a page (RFC 8628 §3.3)', async () => {
    await server.accounts.create('quin', PASSWORD);
    const context = await chromium.newContext();
    try {
      const tab = await context.newPage();
      await approvedOnce(tab, 'quin');
      const device = await atConfirmation(tab);
      const other = await context.newPage();
      await other.goto(`${server.url}/session/end`);
      await Promise.all([other.waitForURL(/\/session\/end\/success/), other.click('button:has-text("Sign out everywhere")')]);
      const answer = tab.waitForResponse((response) => response.request().method() === 'POST');
      const text = await continued(tab);
      assert.equal((await answer).status(), 400, 'a page, not a 500');
      assert.match(text, /Enter the code/, `the entry page again: ${text}`);
      assert.doesNotMatch(text, /Device connected/, `approved in a signed-out browser: ${text}`);
      assert.equal((await poll(device.device_code!)).error, 'authorization_pending');
    } finally {
      await context.close();
    }
  });

  it("a device's consent page left open while the browser signs out and signs in as someone else (who let the device in before) approves nothing when allowed: the device gets nothing (RFC 8628 §3.3)", async () => {
    await server.accounts.create('rosa', PASSWORD);
    await server.accounts.create('saul', PASSWORD);
    const context = await chromium.newContext();
    try {
      const tab = await context.newPage();
      // Saul let the TV in once before (a remembered consent): an approval in his name needs no page.
      await approvedOnce(tab, 'saul');
      const out = await context.newPage();
      await out.goto(`${server.url}/session/end`);
      await Promise.all([out.waitForURL(/\/session\/end\/success/), out.click('button:has-text("Sign out everywhere")')]);
      // Rosa, at the device's consent page (she never let it in).
      const device = await atConfirmation(tab);
      await Promise.all([tab.waitForNavigation(), tab.click('button[name=confirm]')]);
      await signIn(tab, 'rosa');
      await tab.waitForSelector('button:has-text("Allow")');
      // Another tab signs out, and Saul signs in (the account page).
      const other = await context.newPage();
      await other.goto(`${server.url}/session/end`);
      await Promise.all([other.waitForURL(/\/session\/end\/success/), other.click('button:has-text("Sign out everywhere")')]);
      await other.goto(`${server.url}/account`);
      await signIn(other, 'saul');
      await other.waitForSelector('text=Withdraw access');
      const answer = tab.waitForResponse((response) => response.request().method() === 'POST');
      await tab.click('button:has-text("Allow")');
      const status = (await answer).status();
      await tab.waitForLoadState();
      const text = await tab.locator('body').innerText();
      assert.equal(status, 400, 'a page, not a 500');
      assert.match(text, /Sign-in expired/, text);
      assert.doesNotMatch(text, /Device connected/, `approved from Rosa's consent page after Saul signed in: ${text}`);
      assert.equal((await poll(device.device_code!)).error, 'authorization_pending', 'the device got nothing');
    } finally {
      await context.close();
    }
  });
});

describe('e2e: red team, twenty-second granting pass, scopes of several consented APIs mixed at a refresh and a code', function () {
  this.timeout(60_000);
  const NOTES = 'https://notes.twenty-two.example.test';
  const FILES = 'https://files.twenty-two.example.test';
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true });
    await server.accounts.create('nia', PASSWORD);
    // Both APIs offer `read`; each has a scope of its own.
    await server.apis.add({ identifier: NOTES, scopes: ['read', 'notes:write'] });
    await server.apis.add({ identifier: FILES, scopes: ['read', 'files:write'] });
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read notes:write files:write' });
    config = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  const token = async (params: [string, string][]) => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${APP.id}:${APP.secret}`).toString('base64')}` },
      body: new URLSearchParams([['client_id', APP.id], ...params]),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  it("held: a refresh token of a request that named two APIs, switched between them at each refresh with scopes mixed across them, gets each API only the scopes allowed there; a scope both offer, allowed at neither, nothing (RFC 8707 §2.2, RFC 6749 §6)", async () => {
    const agent = new Agent();
    // Noor allows `notes:write` at the notes API and `files:write` at the files API, in one request.
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid offline_access notes:write files:write', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    url.searchParams.append('resource', NOTES);
    url.searchParams.append('resource', FILES);
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'nia', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.match(page.html, /Act on https:\/\/notes\.twenty-two\.example\.test with: notes:write</);
    assert.match(page.html, /Act on https:\/\/files\.twenty-two\.example\.test with: files:write</);
    const code = new URL((await agent.submit(page, '/confirm', {}, REDIRECT)).url).searchParams.get('code');
    assert.ok(code);
    const redeemed = await token([['grant_type', 'authorization_code'], ['code', code], ['redirect_uri', REDIRECT], ['code_verifier', 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'], ['resource', FILES]]);
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    let refresh = redeemed.body.refresh_token!;
    // [resource, scope asked, what the token may carry (undefined: refused)]
    const rounds: [string, string | undefined, string | undefined][] = [
      [NOTES, 'files:write', undefined],
      [NOTES, 'notes:write files:write', 'notes:write'],
      [FILES, 'notes:write', undefined],
      [FILES, undefined, 'files:write'],
      [NOTES, undefined, 'notes:write'],
      [FILES, 'read', undefined],
      [NOTES, 'read notes:write', undefined],
    ];
    for (const [resource, scope, expected] of rounds) {
      const got = await token([['grant_type', 'refresh_token'], ['refresh_token', refresh], ['resource', resource], ...(scope ? [['scope', scope] as [string, string]] : [])]);
      const what = `at ${resource} asking ${String(scope)}: ${got.status} ${JSON.stringify(got.body).slice(0, 160)}`;
      if (expected === undefined) {
        assert.equal(got.status, 400, what);
        continue;
      }
      assert.equal(got.status, 200, what);
      const claims = decodeJwt(got.body.access_token!);
      assert.equal(claims.aud, resource, what);
      assert.equal(claims.scope, expected, what);
      assert.equal(got.body.scope, expected, what);
      refresh = got.body.refresh_token!;
    }
  });
});
