/**
 * The sixteenth passes' review of the merged changes (h9; docs/security-passes.md, "Looked at in the
 * sixteenth passes: review of the merged changes (h9)"), black box. The records kept beside a
 * session are now kept ttl.sessionMax (lifetimes.ts sessionRecordsLifetime) "as long as the
 * session may": ttl.sessionMax after its *last* sign-in (the engine's loginTs). The record of which
 * upstream session a session rests on (upstreams/sessions.ts) was written at a sign-in through the
 * upstream only, so a session signed in again on the same uid otherwise (prompt=login with the
 * password) lived up to ttl.sessionMax past it while that record, and the upstream's back-channel
 * logout with it, ended ttl.sessionMax after the upstream sign-in: the same logout ended the session
 * before that moment and not after. Lifetimes shortened (ttl.session 4 s, ttl.sessionMax 10 s).
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, isLogin, startAuthorization } from '../helpers/sign-in.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const REDIRECT = 'https://app.h9.example.test/callback';
const SECRET = 'sixteenth-h9-review-client-secret-with-plenty-of-entropy-01';
const UPSTREAM_SECRET = 'sixteenth-h9-upstream-client-secret-with-plenty-of-entropy';
const PASSWORD = 'sixteenth h9 review test password';
const IDLE = 4;
const MAX = 10;

describe('e2e: sixteenth passes, review (h9): what is kept beside a session lives as long as the session', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', TTL_SESSION: String(IDLE), TTL_SESSION_MAX: String(MAX), TTL_INTERACTION: String(IDLE) },
      clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }],
    });
    fake = await fakeUpstreamOf(server, UPSTREAM_SECRET);
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  const silently = async (agent: Agent) => {
    const answer = new URL((await startAuthorization(agent, app, REDIRECT, { prompt: 'none' })).page.url).searchParams;
    return answer.get('code') ? 'code' : (answer.get('error') ?? 'nothing');
  };

  it("a session signed in through the upstream, then again with the password (prompt=login), in use past ttl.sessionMax after the upstream sign-in: the upstream's back-channel logout of that sign-in still ends it, as it did before then", async () => {
    fake.state.mode = 'good';
    fake.state.sub = 'fake-person-again';
    fake.state.sid = 'sid-again';
    const agent = new Agent();
    const started = Date.now();
    const first = await startAuthorization(agent, app, REDIRECT, { upstream: 'fake' });
    const signedIn = isConsent(first.page) ? await agent.submit(first.page, '/confirm', {}, REDIRECT) : first.page;
    assert.ok(signedIn.url.startsWith(REDIRECT), `signed in through the upstream, got ${signedIn.status} ${signedIn.url}`);
    const made = (await new UpstreamLinks(server.kv, server.accounts).find('fake', 'fake-person-again'))!;
    const account = (await server.accounts.find(made.sub))!;
    await server.accounts.setPassword(account.username, PASSWORD);

    // In use; half-way to ttl.sessionMax, signed in again on the same session with the password.
    const until = async (ms: number) => {
      while (Date.now() - started < ms) {
        await delay(1000);
        assert.equal(await silently(agent), 'code', `the session in use lives (${Math.round((Date.now() - started) / 1000)} s)`);
      }
    };
    await until((MAX / 2) * 1000);
    const again = await startAuthorization(agent, app, REDIRECT, { prompt: 'login' });
    assert.ok(isLogin(again.page), `the login page: ${again.page.status} ${again.page.url}`);
    let page = await agent.submit(again.page, '/login', { username: account.username, password: PASSWORD }, REDIRECT);
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, REDIRECT);
    assert.ok(page.url.startsWith(REDIRECT) && new URL(page.url).searchParams.get('code'), `signed in again: ${page.status} ${page.url}`);

    // Past ttl.sessionMax after the upstream sign-in, before ttl.sessionMax after the password's.
    await until((MAX + 2) * 1000);
    const token = await fake.logoutToken({ sid: 'sid-again' });
    const response = await fetch(`${server.url}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
    assert.equal(response.status, 200, await response.text());
    assert.equal(await silently(agent), 'login_required', "the session outlived the upstream's logout of the sign-in it rests on");
  });
});
