/**
 * The sixteenth fresh-eyes passes of 2026-12-07, "endings must end" (docs/security-passes.md,
 * "Looked at in the sixteenth passes: endings must end (h2)"), black box: what is kept beside a
 * sign-in session (which upstream session it rests on, which credentials signed it in) must live
 * as long as the session does. A session lives `ttl.session` from its last use, up to
 * `ttl.sessionMax` after its sign-in; those records were kept `ttl.session` from the sign-in only,
 * so a session in use for longer than that was no longer found by the endings that look it up
 * there: the upstream's back-channel logout, the upstream link's removal on the account page, the
 * upstream's removal by an operator.
 * Beside them, held: a device approved through the upstream and not yet polled, across the
 * upstream's logout of that sign-in.
 * Lifetimes are shortened here (ttl.session 5 s, ttl.sessionMax 120 s) to play days in seconds.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const REDIRECT = 'https://app.sixteenth.example.test/callback';
const SECRET = 'sixteenth-session-records-secret-with-plenty-of-entropy-01';
const UPSTREAM_SECRET = 'sixteenth-upstream-client-secret-with-plenty-of-entropy-0';
const PASSWORD = 'sixteenth session records test password';
const IDLE = 5;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const OPS = { id: 'ops', secret: 'sixteenth-session-records-operator-secret-with-entropy-01' };

describe('e2e: sixteenth fresh-eyes pass, a session in use longer than ttl.session is still found by the endings of how it signed in', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', TTL_SESSION: String(IDLE), TTL_SESSION_MAX: '120', TTL_INTERACTION: String(IDLE) },
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        machineClient(OPS),
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access' },
      ],
    });
    fake = await fakeUpstreamOf(server, UPSTREAM_SECRET);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  /** What a silent request of the app gets in `agent`'s browser: a code, or the error. */
  const silently = async (agent: Agent) => {
    const answer = new URL((await startAuthorization(agent, app, REDIRECT, { prompt: 'none' })).page.url).searchParams;
    return answer.get('code') ? 'code' : (answer.get('error') ?? 'nothing');
  };

  /** A browser signed in to the app through the fake upstream as its person `sub` (session `sid` there). */
  async function throughUpstream(sub: string, sid: string): Promise<Agent> {
    fake.state.mode = 'good';
    fake.state.sub = sub;
    fake.state.sid = sid;
    const agent = new Agent();
    const first = await startAuthorization(agent, app, REDIRECT, { upstream: 'fake' });
    const signedIn = isConsent(first.page) ? await agent.submit(first.page, '/confirm', {}, REDIRECT) : first.page;
    assert.ok(signedIn.url.startsWith(REDIRECT), `signed in through the upstream, got ${signedIn.status} ${signedIn.url}`);
    return agent;
  }

  /** The session kept in use (a silent request each second) until more than ttl.session has passed since its sign-in. */
  async function keptInUse(agent: Agent): Promise<void> {
    for (let second = 0; second <= IDLE + 1; second += 1) {
      await delay(1000);
      assert.equal(await silently(agent), 'code', `the session in use lives (${second + 1} s after its sign-in)`);
    }
  }

  it("the upstream's back-channel logout of the upstream session a browser signed in with, more than ttl.session after that sign-in, the session in use all along: the session ends", async () => {
    const agent = await throughUpstream('fake-person-logout', 'sid-in-use');
    await keptInUse(agent);
    const token = await fake.logoutToken({ sid: 'sid-in-use' });
    const response = await fetch(`${server.url}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
    assert.equal(response.status, 200, await response.text());
    assert.equal(await silently(agent), 'login_required', "the session outlived the upstream's logout");
  });

  it('the upstream link removed on the account page more than ttl.session after a browser signed in through it, that session in use all along: the session ends', async () => {
    const agent = await throughUpstream('fake-person-link', 'sid-link');
    const links = new UpstreamLinks(server.kv, server.accounts);
    const made = (await links.find('fake', 'fake-person-link'))!;
    const account = (await server.accounts.find(made.sub))!;
    await server.accounts.setPassword(account.username, PASSWORD);
    await keptInUse(agent);
    // Another browser of the person's (the password), on the account page.
    const other = new Agent();
    let page = await signInSteps(other, await other.follow(`${server.issuer}/account`), { username: account.username, password: PASSWORD });
    if (isConsent(page)) page = await other.submit(page, '/confirm', {});
    assert.equal(new URL(page.url).pathname, '/account', `the account page: ${page.status} ${page.url}`);
    const removed = await other.submit(page, '/account/links/remove', {});
    assert.match(new URL(removed.url).search, /^\?done=links\.removed\./, `removed: ${removed.status} ${removed.url}`);
    assert.equal(await silently(agent), 'login_required', "the session signed in through the link outlived the link's removal");
  });

  it("a device approved through the upstream, not yet polled, across the upstream's back-channel logout of that sign-in: the device gets nothing (held)", async () => {
    fake.state.mode = 'good';
    fake.state.sub = 'fake-person-device';
    fake.state.sid = 'sid-device';
    const form = (fields: Record<string, string>) => fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'tv', ...fields }) });
    const started = (await (await fetch(`${server.url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'tv', scope: 'openid' }) })).json()) as Record<string, string>;
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
    let done = await agent.submit(login, '/upstream/fake', {});
    if (isConsent(done)) done = await agent.submit(done, '/confirm', {});
    assert.match(done.html, /Device connected/, `${done.status} ${done.url}`);
    const token = await fake.logoutToken({ sid: 'sid-device' });
    const response = await fetch(`${server.url}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
    assert.equal(response.status, 200, await response.text());
    const polled = (await (await form({ grant_type: DEVICE_GRANT, device_code: started.device_code! })).json()) as Record<string, string>;
    assert.equal(polled.access_token, undefined, `the device got tokens: ${JSON.stringify(polled)}`);
    assert.equal(polled.error, 'invalid_grant', JSON.stringify(polled));
  });

  // Last: the upstream goes.
  it('the upstream removed by an operator (admin API) more than ttl.session after a browser signed in through it, that session in use all along: the session ends', async () => {
    const agent = await throughUpstream('fake-person-removal', 'sid-removal');
    await keptInUse(agent);
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const removed = await adminJson(server.url, token, 'DELETE', '/upstreams/fake');
    assert.ok(removed.status < 300, `removed: ${removed.status} ${JSON.stringify(removed.body)}`);
    assert.equal(await silently(agent), 'login_required', "the session signed in through the upstream outlived the upstream's removal");
  });
});
