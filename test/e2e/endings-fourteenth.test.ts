/**
 * The fourteenth fresh-eyes passes of 2026-12-07, "endings that do not end" (docs/security-passes.md,
 * "Looked at in the fourteenth fresh-eyes passes of 2026-12-07: endings that do not end"), black box:
 * cells of the endings table no earlier pass performed, kept as what held.
 *
 * - A device's poll (RFC 8628 §3.4) held, through the test relay, after it read its grant, at the
 *   consumption of its device code that begins its writes, while the person ends at another instance
 *   what the approval rested on: the authenticator app, or the (stolen) passkey, removed on the
 *   account page, an operator's `users mfa reset`, the password changed with the other sessions signed out, the approving
 *   browser's session signed out on the account page. Whatever the poll is answered, what it gets
 *   works nowhere: not at `latchkey/resource-server` following the feed, not at introspection, and
 *   its refresh token refreshes nothing (each poll is answered invalid_grant).
 * - "Only sign out of <app>" (RP-initiated logout of the app alone) at another instance while a
 *   refresh of the app's offline grant is held the same way (the thirteenth passes' leftover): the
 *   JWT the refresh gets is ended with those issued before the sign-out; offline access goes on.
 * - A signing key revoked while `latchkey/resource-server` fetches the JWKS for a token the key
 *   signed (the thirteenth passes' leftover, beside their replay-store wait): refused.
 * - In Chromium, a device's consent page left open in one tab while the person signs out everywhere,
 *   or signs this browser out on the account page, in another; Allow then connects nothing.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { Browser, Page as BrowserPage } from 'playwright-core';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { freePort } from '../helpers/redis.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { latchkey } from '../helpers/process.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, basic, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'fourteenth held device endings password';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const TV = 'tv';
const CONSUMED = scriptOn('oidc:DeviceCode:');
const REFRESH_CONSUMED = scriptOn('oidc:RefreshToken:');
const REDIRECT = 'https://app.fourteenth.example.test/callback';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };

describe("e2e: fourteenth fresh-eyes pass, endings at another instance while a device's poll or an app's refresh is held after it read its grant", function () {
  this.timeout(120_000);
  let relayed: RelayedServer;
  let b: TestServer;
  let helper: ResourceServer;

  before(async () => {
    const clients = JSON.stringify([
      machineClient(RS),
      { client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access read' },
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' },
    ]);
    const env = { CLIENTS: clients, RESOURCE_SERVERS, DEVICE_FLOW_POLL_INTERVAL: '1' };
    relayed = await startRelayedServer(env);
    const a = relayed.server;
    b = await startServer({ dir: dirname(a.env.KEYS_DIR!), port: await freePort(), redisUrl: relayed.redis.url, env: { ...env, ISSUER: a.issuer } });
    await grantFeed(a, RS.id);
    helper = await createResourceServer({ issuer: a.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await b?.stop();
    await relayed?.stop();
  });

  const form = (url: string, fields: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
  const poll = (deviceCode: string, url = relayed.server.url) => form(`${url}/token`, { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: TV, resource: API });

  /** A person, with an authenticator app when `totp`: its next code each call (never one twice). */
  async function person(name: string, totp: boolean) {
    const { server } = relayed;
    const account = await server.accounts.create(name, PASSWORD);
    if (!totp) return { code: undefined };
    const secret = (await server.secondFactors.totp.begin(account.sub, name, 'test-session')).secret;
    let step = -1;
    const code = () => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + step++ * 30_000 });
    assert.equal(await server.secondFactors.totp.confirm(account.sub, code(), 'test-session'), true);
    return { code };
  }

  /** `issuer`'s sign-in steps, the second factor's when asked. */
  async function signedIn(agent: Agent, page: Page, username: string, code?: () => string): Promise<Page> {
    page = await signInSteps(agent, page, { username, password: PASSWORD, consent: 'stop' });
    if (page.html.includes('/second-factor')) page = await agent.submit(page, '/second-factor', { method: 'totp', code: code!() });
    return signInSteps(agent, page, { username, password: PASSWORD });
  }

  /** The device asks (openid-client); the person approves in a browser of their own, at instance A: the device code. */
  async function approvedDevice(username: string, scope: string, code?: () => string): Promise<{ deviceCode: string; browser: Agent }> {
    const { server } = relayed;
    const config = await oidc.discovery(new URL(server.issuer), TV, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(config, { scope, resource: API });
    const browser = new Agent();
    const confirm = await browser.submit(await browser.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const done = await signedIn(browser, await browser.submit(confirm, '/device', { confirm: 'yes' }), username, code);
    assert.match(done.html, /Device connected/, `${done.status} ${done.url}`);
    return { deviceCode: device.device_code, browser };
  }

  /** Another browser of the person's, signed in to the account page (its sign-in at instance A). */
  async function accountPage(username: string, code?: () => string): Promise<{ agent: Agent; page: Page }> {
    const agent = new Agent();
    const { issuer } = relayed.server;
    const page = await signedIn(agent, await agent.follow(`${issuer}/account`), username, code);
    assert.equal(page.url, `${issuer}/account`, `expected the account page, got ${page.status} ${page.url}`);
    return { agent, page };
  }

  /** That browser's form at `path` of the account page, sent to instance B (its issuer is A's): where it was sent. */
  async function atB({ agent, page }: { agent: Agent; page: Page }, path: string, fields: Record<string, string>): Promise<string> {
    const done = await fetch(`${b.url}/account${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: agent.cookieHeader(relayed.server.issuer) },
      body: new URLSearchParams({ csrf: formIn(page.html, path).hidden.csrf!, ...fields }),
      redirect: 'manual',
    });
    assert.equal(done.status, 303, `${path} at instance B: ${done.status} ${(await done.text()).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
    return done.headers.get('location') ?? '';
  }

  /** `request` at instance A, held after it read its grant, at the script `consumed` says begins its writes. */
  async function heldAfterGrant(consumed: (chunk: string) => boolean, request: () => Promise<Response>) {
    let sawGrant = false;
    return relayed.relay.hold((chunk) => {
      if (sawGrant) return consumed(chunk);
      if (chunk.includes('oidc:Grant:')) sawGrant = true;
      return false;
    }, request);
  }

  /** The poll held after it read its grant while `ending` runs; what it gets, checked everywhere. */
  async function heldAcross(deviceCode: string, ending: () => Promise<void>, name: string) {
    const held = await heldAfterGrant(CONSUMED, () => poll(deviceCode));
    try {
      await ending();
    } catch (error) {
      await held.release().catch(() => {});
      throw error;
    }
    // The ending's marks are of this second or an earlier one; the held poll goes on in a later one.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const answered = await held.release();
    assert.notEqual(answered.status, 503, 'the held poll timed out: nothing was tried');
    const body = (await answered.json()) as { access_token?: string; refresh_token?: string; error?: string };
    if (!body.access_token) {
      assert.deepEqual([answered.status, body.error], [400, 'invalid_grant'], `${name}: the held poll's refusal`);
    } else {
      assert.equal(decodeJwt(body.access_token).aud, API, 'a JWT for the API');
      await helper.sync();
      assert.equal(await acceptedBy(helper, body.access_token), false, `${name}: the JWT the held poll got is accepted`);
      assert.equal((await introspect(b.url, RS, body.access_token)).active, false, `${name}: the JWT the held poll got is active`);
      if (body.refresh_token) {
        const again = await form(`${b.url}/token`, { grant_type: 'refresh_token', refresh_token: body.refresh_token, client_id: TV, resource: API });
        assert.notEqual(again.status, 200, `${name}: the refresh token the held poll got still refreshes`);
      }
    }
    // Asked again, nothing either.
    const after = (await (await poll(deviceCode, b.url)).json()) as { access_token?: string };
    assert.equal(after.access_token, undefined, `${name}: the device code polled again got tokens`);
  }

  it('the authenticator app the approval signed in with, removed on the account page at another instance: what the poll gets works nowhere', async () => {
    const { code } = await person('tess', true);
    const { deviceCode } = await approvedDevice('tess', 'openid offline_access read', code);
    const browser = await accountPage('tess', code);
    await heldAcross(
      deviceCode,
      async () => assert.match(await atB(browser, '/authenticator/remove', {}), /done=authenticator\.removed/),
      'authenticator app removed',
    );
  });

  it("an operator's `users mfa reset` of the person who approved with their authenticator app: what the poll gets works nowhere", async () => {
    const { code } = await person('ursula', true);
    const { deviceCode } = await approvedDevice('ursula', 'openid offline_access read', code);
    await heldAcross(
      deviceCode,
      async () => {
        const run = await latchkey(relayed.env, ['users', 'mfa', 'reset', 'ursula']);
        assert.equal(run.status, 0, run.stderr);
      },
      'users mfa reset',
    );
  });

  it('the password changed at another instance, the other sessions signed out: what the poll of a device approved in one gets works nowhere', async () => {
    await person('vera', false);
    const { deviceCode } = await approvedDevice('vera', 'openid offline_access read');
    const browser = await accountPage('vera');
    const next = 'fourteenth pass new password of vera';
    await heldAcross(
      deviceCode,
      async () => assert.match(await atB(browser, '/password', { current_password: PASSWORD, new_password: next, confirm_password: next, sign_out_others: 'yes' }), /done=password/),
      'password changed',
    );
  });

  it('the approving browser signed out on the account page at another instance (no offline access): what the poll gets works nowhere', async () => {
    await person('wanda', false);
    const { deviceCode } = await approvedDevice('wanda', 'openid read');
    const browser = await accountPage('wanda');
    const other = browser.page.html
      .split('<div class="listed">')
      .filter((block) => block.includes('name="session"') && !block.includes('This browser'))
      .map((block) => block.match(/name="session" value="([^"]+)"/)![1]!);
    assert.equal(other.length, 1, 'the approving browser is listed');
    await heldAcross(
      deviceCode,
      async () => assert.match(await atB(browser, '/sessions/sign-out', { session: other[0]! }), /signed-out/),
      'session signed out',
    );
  });

  it('a passkey the approval signed in with (a thief\'s copy), removed on the account page at another instance: what the poll gets works nowhere', async () => {
    const { server } = relayed;
    const { sub } = await server.accounts.create('yolanda', PASSWORD);
    const [stolen, kept] = [softPasskey(), softPasskey()];
    await registerSoftPasskeys(server, sub, stolen, kept);
    const origin = new URL(server.issuer).origin;
    // The person, on the account page with the passkey they keep.
    const own = new Agent();
    const login = await own.follow(`${server.issuer}/account`);
    const page = await own.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), sub, 1) });
    assert.equal(page.url, `${server.issuer}/account`, `expected the account page, got ${page.url}`);
    // Whoever holds the other approves a device with it.
    const config = await oidc.discovery(new URL(server.issuer), TV, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access read', resource: API });
    const thief = new Agent();
    const confirm = await thief.submit(await thief.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const signIn = await thief.submit(confirm, '/device', { confirm: 'yes' });
    const consent = await thief.submit(signIn, '/passkey', { credential: assertion(stolen, origin, passkeyChallenge(signIn), sub, 1) });
    const done = await signInSteps(thief, consent, { username: 'yolanda', password: PASSWORD });
    assert.match(done.html, /Device connected/, `${done.status} ${done.url}`);
    await heldAcross(
      device.device_code,
      async () => assert.match(await atB({ agent: own, page }, '/passkeys/remove', { id: stolen.id }), /done=passkeys\.removed/),
      'passkey removed',
    );
  });

  it('"Only sign out of web" (RP-initiated logout, the app alone) at another instance while a refresh of its offline grant is held after it read the grant: the JWT it got is ended, the refresh token goes on (offline access)', async () => {
    const { server } = relayed;
    await server.accounts.create('xena', PASSWORD);
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const browser = new Agent();
    const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access read', prompt: 'consent', resource: API });
    const back = await signInSteps(browser, page, { username: 'xena', password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier }, { resource: API });
    assert.ok(tokens.refresh_token, 'offline access: a refresh token');
    const refresh = (refreshToken: string, url = server.url) =>
      fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, resource: API }) });

    const held = await heldAfterGrant(REFRESH_CONSUMED, () => refresh(tokens.refresh_token!));
    try {
      // The same browser's sign-out, sent to instance B (the issuer is A's: its cookies, by hand).
      const atB = async (path: string, init: RequestInit = {}) => {
        const response = await fetch(`${b.url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), cookie: browser.cookieHeader(server.issuer) }, redirect: 'manual' });
        browser.keepCookies(server.issuer, response);
        return response;
      };
      const ask = await atB(`/session/end?client_id=${WEB.id}`);
      const html = await ask.text();
      assert.match(html, /Only sign out of/, `${ask.status}`);
      const done = await atB('/session/end/confirm', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ xsrf: formIn(html, '/session/end/confirm').hidden.xsrf! }),
      });
      assert.match(done.headers.get('location') ?? '', /\/session\/end\/success/, `${done.status} ${done.headers.get('location')}`);
    } catch (error) {
      await held.release().catch(() => {});
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const answered = await held.release();
    assert.notEqual(answered.status, 503, 'the held refresh timed out: nothing was tried');
    const body = (await answered.json()) as { access_token?: string; refresh_token?: string; error?: string };
    await helper.sync();
    assert.equal(await acceptedBy(helper, tokens.access_token), false, "the code's JWT, issued before the sign-out, is accepted");
    assert.equal((await introspect(b.url, RS, tokens.access_token)).active, false, "the code's JWT, issued before the sign-out, is active");
    let refreshToken = tokens.refresh_token!;
    if (body.access_token) {
      assert.equal(await acceptedBy(helper, body.access_token), false, 'the JWT the held refresh got (its iat before the sign-out) is accepted');
      assert.equal((await introspect(b.url, RS, body.access_token)).active, false, 'the JWT the held refresh got is active');
      refreshToken = body.refresh_token!;
    } else {
      assert.deepEqual([answered.status, body.error], [400, 'invalid_grant'], "the held refresh's refusal");
    }
    // Offline access outlives signing out of the app (by design): the app refreshes for a JWT of now.
    const again = await refresh(refreshToken, b.url);
    if (body.access_token) {
      const fresh = (await again.json()) as { access_token?: string };
      assert.ok(fresh.access_token, 'offline access is kept: the app refreshes');
      await helper.sync();
      assert.equal(await acceptedBy(helper, fresh.access_token), true, 'a JWT refreshed after the sign-out works');
    }
  });
});

describe('e2e: fourteenth fresh-eyes pass, a signing key revoked while latchkey/resource-server fetches the JWKS for a token it signed', function () {
  this.timeout(90_000);
  const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
  let server: TestServer;
  let helper: ResourceServer | undefined;
  const realFetch = globalThis.fetch;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [machineClient(MACHINE), machineClient(RS)], env: { RESOURCE_SERVERS } });
    await grantFeed(server, RS.id);
  });
  after(async () => {
    globalThis.fetch = realFetch;
    helper?.close();
    await server?.stop();
  });

  it("the JWKS's answer held (read before the revocation, given after the helper read the feed): the token is refused, not accepted", async () => {
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    const config = await oidc.discovery(new URL(server.issuer), MACHINE.id, MACHINE.secret, oidc.ClientSecretBasic(MACHINE.secret), { execute: [oidc.allowInsecureRequests] });
    const { access_token: token } = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'read' });
    const { kid } = decodeProtectedHeader(token);
    assert.equal(kid, server.keys.ring.current!.kid);

    // jose's first JWKS fetch (the helper's probe at its start is not its cache): answered by
    // Latchkey with the key still in it, and handed to jose only once the key is revoked and the
    // helper has read the feed.
    let reached!: () => void;
    const atJwks = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    globalThis.fetch = async (input, init) => {
      const answer = await realFetch(input, init);
      const url = String(input instanceof Request ? input.url : input);
      if (!held && url.endsWith('/jwks')) {
        held = true;
        reached();
        await released;
      }
      return answer;
    };
    const checked = helper.verify(`Bearer ${token}`).then(
      () => 'accepted',
      (error: Error) => (error instanceof TokenRejected ? error.message : Promise.reject(error)),
    );
    await atJwks;
    globalThis.fetch = realFetch;
    const run = await latchkey(server.env, ['keys', 'revoke', '--', kid!]);
    assert.equal(run.status, 0, run.stderr);
    await helper.sync();
    release();
    const answer = await checked;
    assert.match(answer, /revoked/, `the token the revoked key signed, whose check ended after the helper knew of the revocation: ${answer}`);
    assert.equal((await introspect(server.url, RS, token)).active, false, 'introspection refuses it');
  });
});

describe('e2e: fourteenth fresh-eyes pass, in Chromium: a device consent page left open in one tab while the person ends the session in another', function () {
  this.timeout(120_000);
  let server: TestServer;
  let browser: Browser;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      clients: [{ client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access' }],
      env: { DEVICE_FLOW_POLL_INTERVAL: '1' },
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  for (const [ending, end] of Object.entries({
    'signs out everywhere (RP-initiated logout)': async (tab: BrowserPage) => {
      await tab.goto(`${server.issuer}/session/end`);
      await tab.getByRole('button', { name: 'Sign out everywhere' }).click();
      await tab.waitForURL(/\/session\/end\/success/);
    },
    'signs this browser out on the account page': async (tab: BrowserPage) => {
      await tab.goto(`${server.issuer}/account`);
      await tab.locator('form[action$="/sessions/sign-out"] button').first().click();
      await tab.waitForLoadState();
    },
  })) {
    it(`the person ${ending}, then presses Allow in the first tab: the device is not connected and gets nothing`, async () => {
      const username = `yara-${ending.includes('account page') ? 'page' : 'logout'}`;
      await server.accounts.create(username, PASSWORD);
      const config = await oidc.discovery(new URL(server.issuer), TV, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access' });
      const context = await browser.newContext();
      try {
        const first = await context.newPage();
        // Signed in (the account page), then the device's code typed and confirmed: its consent page.
        await first.goto(`${server.issuer}/account`);
        await first.fill('#username', username);
        await first.fill('#password', PASSWORD);
        await first.getByRole('button', { name: 'Sign in', exact: true }).click();
        await first.waitForURL(`${server.issuer}/account`);
        await first.goto(`${server.issuer}/device`);
        await first.fill('#user_code', device.user_code);
        await first.getByRole('button', { name: 'Continue' }).click();
        await first.getByRole('button', { name: 'Continue', exact: true }).click();
        await first.getByRole('button', { name: 'Allow' }).waitFor();

        const second = await context.newPage();
        await end(second);

        await first.getByRole('button', { name: 'Allow' }).click();
        await first.waitForLoadState();
        const text = await first.locator('body').innerText();
        assert.doesNotMatch(text, /Device connected/, `the device was connected after the session ended: ${text.slice(0, 300)}`);
        const response = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: TV }),
        });
        const body = (await response.json()) as { access_token?: string; error?: string };
        assert.equal(body.access_token, undefined, 'the device got tokens');
        assert.notEqual(response.status, 500);
      } finally {
        await context.close();
      }
    });
  }
});
