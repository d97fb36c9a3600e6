/**
 * The seventeenth passes, "endings that do not end" (docs/security-passes.md, "Looked at in the
 * seventeenth passes: endings that do not end (h2)"), black box: the cells of the endings matrix the
 * earlier passes left untried.
 *
 * Found and fixed: an upstream removed and added again (admin API, the same issuer and client) while
 * a sign-in through it had finished at Latchkey and only its resume was left (the browser held the
 * redirect back) signed the person in, and the app got a code; and a link offered by email across
 * the same removal and addition was made when the person confirmed it with their password. The
 * addition's `made` is now carried by what was under way (the sign-in's credential, the offer) and
 * compared where it is weighed (accounts/session-credentials.ts, interactions/routes.ts confirmLink).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { startSelfUpstreamServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const PASSWORD = 'seventeenth endings password of the person';
const REDIRECT = 'https://app.endings-seventeenth.example.test/callback';
const SECRET = 'endings-seventeenth-client-secret-with-plenty-of-entropy-0123';
const OPS = { id: 'ops', secret: 'endings-seventeenth-operator-secret-with-plenty-of-entropy-01' };

describe('e2e: seventeenth passes, endings that do not end', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let corp: Awaited<ReturnType<typeof startFakeUpstream>>;
  const back = () => `${server.issuer}/upstream/self/callback`;
  const self = () => ({ id: 'self', issuer: server.issuer, client_id: 'latchkey', client_secret: SECRET, scope: 'openid', display_name: 'Self', link_by_email: false, end_session: false });
  const corpSettings = () => ({ id: 'corp', issuer: corp.state.issuer, client_id: 'latchkey', client_secret: SECRET, scope: 'openid email', display_name: 'Corp', link_by_email: true, end_session: false });

  before(async () => {
    server = await startSelfUpstreamServer({ secret: SECRET, redirect: REDIRECT, ownRedis: true, cheapHashing: true, clients: [machineClient(OPS)] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
    corp = await startFakeUpstream(SECRET);
    await admin('POST', '/upstreams', corpSettings());
  });
  after(async () => {
    await corp?.close();
    await server?.stop();
  });

  async function admin(method: string, path: string, body?: unknown) {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const answer = await adminJson(server.url, token, method, path, body);
    assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  }

  const removedAndAddedAgain = async (settings: { id: string }) => {
    await admin('DELETE', `/upstreams/${settings.id}`);
    await admin('POST', '/upstreams', settings);
  };

  /** The app's sign-in in `browser` taken to the upstream ("self") and signed in there as `username`: the upstream's answer, not yet followed. */
  async function atUpstreamCallback(browser: Agent, username: string, params: Record<string, string> = {}) {
    const { page: login } = await startAuthorization(browser, app, REDIRECT, params);
    const toUpstream = await browser.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    const upstreamBrowser = new Agent();
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, back()), { username, password: PASSWORD, stopAt: back() });
    assert.ok(answer.url.startsWith(back()), `the upstream answers: ${answer.status} ${answer.url}`);
    return answer.url;
  }

  const followed = async (browser: Agent, url: string) => signInSteps(browser, await browser.follow(url, {}, REDIRECT), { username: '', password: '', stopAt: REDIRECT });
  const codeOf = (page: { url: string }) => (page.url.startsWith(REDIRECT) ? new URL(page.url).searchParams.get('code') : null);

  it('a sign-in through an upstream finished at Latchkey, its resume held back across the upstream removed and added again (admin API, the same issuer): no code, no session', async () => {
    await server.accounts.create('rhea', PASSWORD);
    // The account the upstream's identity signs in to, and the app's consent, from a first sign-in.
    const first = new Agent();
    assert.ok(codeOf(await followed(first, await atUpstreamCallback(first, 'rhea'))), 'the first sign-in gives a code');

    const browser = new Agent();
    const callback = await atUpstreamCallback(browser, 'rhea');
    // The callback and the interaction page done (the sign-in finished here), the resume not followed.
    const resume = await browser.follow(callback, {}, `${server.issuer}/auth/`);
    assert.ok(resume.url.startsWith(`${server.issuer}/auth/`), `held at the resume: ${resume.status} ${resume.url}`);
    await removedAndAddedAgain(self());
    let done = await browser.follow(resume.url, {}, REDIRECT);
    if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, REDIRECT);
    assert.equal(codeOf(done), null, `a code: ${done.status} ${done.url}`);
    assert.ok(done.status < 500, `${done.status} ${done.url}`);
    // Nor a session that a silent request finds.
    const silent = await startAuthorization(browser, app, REDIRECT, { prompt: 'none' });
    assert.equal(codeOf(silent.page), null, `a silent code: ${silent.page.url}`);
    // The upstream made again signs people in from now on.
    const again = new Agent();
    assert.ok(codeOf(await followed(again, await atUpstreamCallback(again, 'rhea'))), 'a sign-in begun after the addition gives a code');
  });

  it('a link offered by email (an account with the address), the upstream removed and added again (admin API, the same issuer) before the person confirms with their password: nothing is linked', async () => {
    const links = new UpstreamLinks(server.kv, server.accounts);
    const offer = async (sub: string, email: string) => {
      corp.state.sub = sub;
      corp.state.email = email;
      const browser = new Agent();
      const { page } = await startAuthorization(browser, app, REDIRECT, { upstream: 'corp' });
      assert.match(page.html, /already exists here\. Sign in to it/, `the offer: ${page.status} ${page.url}`);
      return { browser, page };
    };
    await server.accounts.create('olga', PASSWORD, { email: 'olga@endings-seventeenth.example.test', email_verified: true });
    const { browser, page } = await offer('corp-olga', 'olga@endings-seventeenth.example.test');
    await removedAndAddedAgain(corpSettings());
    // The login page shown again no longer promises the link: it says nothing will be linked.
    const again = await browser.follow(page.url, {}, REDIRECT);
    assert.doesNotMatch(again.html, /already exists here/, 'the page still offers the link');
    assert.match(again.html, /can no longer be linked/, `the page says so: ${again.status} ${again.url}`);
    await signInSteps(browser, again, { username: 'olga', password: PASSWORD, stopAt: REDIRECT });
    assert.equal(await links.find('corp', 'corp-olga'), undefined, 'linked across the removal');

    // The control: an offer made after the addition is made by the same confirmation.
    const { sub } = await server.accounts.create('oona', PASSWORD, { email: 'oona@endings-seventeenth.example.test', email_verified: true });
    const fresh = await offer('corp-oona', 'oona@endings-seventeenth.example.test');
    await signInSteps(fresh.browser, fresh.page, { username: 'oona', password: PASSWORD, stopAt: REDIRECT });
    assert.equal((await links.find('corp', 'corp-oona'))?.sub, sub, 'an offer of now is linked');
  });

  it('a link offered by email, the person disabled and enabled again (admin API) before they confirm with their password: nothing is linked, no code', async () => {
    const links = new UpstreamLinks(server.kv, server.accounts);
    await server.accounts.create('otto', PASSWORD, { email: 'otto@endings-seventeenth.example.test', email_verified: true });
    corp.state.sub = 'corp-otto';
    corp.state.email = 'otto@endings-seventeenth.example.test';
    const browser = new Agent();
    const { page } = await startAuthorization(browser, app, REDIRECT, { upstream: 'corp' });
    assert.match(page.html, /already exists here\. Sign in to it/, `the offer: ${page.status} ${page.url}`);
    await admin('POST', '/users/otto/disable');
    await admin('POST', '/users/otto/enable');
    const done = await signInSteps(browser, page, { username: 'otto', password: PASSWORD, stopAt: REDIRECT });
    assert.equal(codeOf(done), null, `a code: ${done.status} ${done.url}`);
    assert.equal(await links.find('corp', 'corp-otto'), undefined, 'linked by a sign-in begun before the disable');
  });
});
