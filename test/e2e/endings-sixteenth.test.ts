/**
 * The sixteenth fresh-eyes passes of 2026-12-07, "endings must end" (docs/security-passes.md,
 * "Looked at in the sixteenth passes: endings must end (h2)"), black box: a device (RFC 8628)
 * approved by a person who signed in through an upstream provider, across the endings of that
 * way in: the link removed on the account page, the upstream removed by an operator (the
 * fourteenth passes left them untried).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startSelfUpstreamServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'sixteenth endings test password of the upstream';
const REDIRECT = 'https://app.sixteenth.example.test/callback';
const SECRET = 'sixteenth-endings-client-secret-with-plenty-of-entropy-0123';
const TV = 'tv';
const OPS = { id: 'ops', secret: 'sixteenth-endings-operator-secret-with-plenty-of-entropy-01' };

describe('e2e: sixteenth fresh-eyes pass, a device approved through an upstream provider, across the end of that way in', function () {
  this.timeout(120_000);
  let server: TestServer;
  let links: UpstreamLinks;

  before(async () => {
    server = await startSelfUpstreamServer({
      secret: SECRET,
      redirect: REDIRECT,
      ownRedis: true,
      cheapHashing: true,
      clients: [{ client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access' }, machineClient(OPS)],
      env: { DEVICE_FLOW_POLL_INTERVAL: '1' },
    });
    links = new UpstreamLinks(server.kv, server.accounts);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
  });
  after(async () => {
    await server?.stop();
  });

  const form = (url: string, fields: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
  const poll = (deviceCode: string) => form(`${server.url}/token`, { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: TV });

  /** The device asks; `username` (a person at the upstream) approves it in a browser, signing in through the upstream. */
  async function approvedThroughUpstream(username: string, scope: string): Promise<{ deviceCode: string; browser: Agent }> {
    const config = await oidc.discovery(new URL(server.issuer), TV, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(config, { scope });
    const browser = new Agent();
    const upstreamBrowser = new Agent();
    const confirm = await browser.submit(await browser.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const login = await browser.submit(confirm, '/device', { confirm: 'yes' });
    const back = `${server.issuer}/upstream/self/callback`;
    const toUpstream = await browser.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, back), { username, password: PASSWORD, stopAt: back });
    assert.ok(answer.url.startsWith(back), `the upstream answers: ${answer.status} ${answer.url}`);
    const done = await signInSteps(browser, await browser.follow(answer.url), { username: '', password: '' });
    assert.match(done.html, /Device connected/, `${done.status} ${done.url}: ${done.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
    return { deviceCode: device.device_code, browser };
  }

  /** The account the upstream identity of `upstreamSub` signs in to, given a password of its own; its account page in another browser. */
  async function accountPageOf(upstreamSub: string): Promise<{ agent: Agent; page: Page; sub: string }> {
    const made = (await links.find('self', upstreamSub))!;
    assert.ok(made, 'the sign-in made an account and linked it');
    const account = (await server.accounts.find(made.sub))!;
    await server.accounts.setPassword(account.username, 'a password of the account made through the upstream');
    const agent = new Agent();
    let page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: account.username, password: 'a password of the account made through the upstream' });
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {});
    assert.equal(new URL(page.url).pathname, '/account', `the account page: ${page.status} ${page.url}`);
    return { agent, page, sub: made.sub };
  }

  async function nothingFor(deviceCode: string, name: string) {
    const answered = await poll(deviceCode);
    const body = (await answered.json()) as { access_token?: string; refresh_token?: string; error?: string };
    assert.equal(body.access_token, undefined, `${name}: the device got tokens (${answered.status})`);
    assert.equal(body.error, 'invalid_grant', `${name}: ${JSON.stringify(body)}`);
  }

  async function endedTokens(tokens: { access_token: string; refresh_token?: string }, name: string) {
    const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(userinfo.status, 401, `${name}: userinfo answers the access token ${userinfo.status}`);
    if (tokens.refresh_token) {
      const again = await form(`${server.url}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: TV });
      assert.equal(again.status, 400, `${name}: the refresh token refreshes (${again.status})`);
    }
  }

  it('the link removed on the account page before the device polled: the device gets nothing', async () => {
    const { sub: upstreamSub } = await server.accounts.create('ulrike', PASSWORD);
    const { deviceCode } = await approvedThroughUpstream('ulrike', 'openid offline_access');
    const { agent, page } = await accountPageOf(upstreamSub);
    const removed = await agent.submit(page, '/account/links/remove', {});
    assert.match(new URL(removed.url).search, /^\?done=links\.removed\./, `removed: ${removed.status} ${removed.url}`);
    await nothingFor(deviceCode, 'link removed');
  });

  it('the link removed on the account page after the device polled: its tokens end', async () => {
    const { sub: upstreamSub } = await server.accounts.create('ulla', PASSWORD);
    const { deviceCode } = await approvedThroughUpstream('ulla', 'openid offline_access');
    const got = await poll(deviceCode);
    const tokens = (await got.json()) as { access_token: string; refresh_token?: string };
    assert.equal(got.status, 200, JSON.stringify(tokens));
    assert.ok(tokens.refresh_token, 'offline access');
    const { agent, page } = await accountPageOf(upstreamSub);
    const removed = await agent.submit(page, '/account/links/remove', {});
    assert.match(new URL(removed.url).search, /^\?done=links\.removed\./, `removed: ${removed.status} ${removed.url}`);
    await endedTokens(tokens, 'link removed');
  });

  it('the upstream removed by an operator (admin API): a device approved through it and not yet polled gets nothing, one polled before has its tokens ended', async () => {
    await server.accounts.create('ursel', PASSWORD);
    await server.accounts.create('uta', PASSWORD);
    const pending = await approvedThroughUpstream('ursel', 'openid offline_access');
    const polled = await approvedThroughUpstream('uta', 'openid offline_access');
    const got = await poll(polled.deviceCode);
    const tokens = (await got.json()) as { access_token: string; refresh_token?: string };
    assert.equal(got.status, 200, JSON.stringify(tokens));
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const removed = await adminJson(server.url, token, 'DELETE', '/upstreams/self');
    assert.ok(removed.status < 300, `removed: ${removed.status} ${JSON.stringify(removed.body)}`);
    await nothingFor(pending.deviceCode, 'upstream removed');
    await endedTokens(tokens, 'upstream removed');
  });
});
