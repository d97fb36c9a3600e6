/**
 * The eighteenth passes, endings raced (docs/security-passes.md, "Looked at in the eighteenth
 * passes: endings raced (h18)"), black box but for the account page's removal, called as its route
 * calls it: an upstream link removed by its owner and made again while a sign-in through the old one
 * was held at its resume (the seventeenth passes' Left).
 *
 * Found and fixed: the resume asked only whether the link was the person's; the link made again is,
 * and the held sign-in signed in. A link now carries its making (Link.made), the sign-in's credential
 * the making it went through (UpstreamWord.link), and the resume compares them.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { startSelfUpstreamServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const PASSWORD = 'eighteenth link endings password of the person';
const REDIRECT = 'https://app.link-endings-eighteenth.example.test/callback';
const SECRET = 'link-endings-eighteenth-client-secret-with-plenty-of-entropy-0';
const OPS = { id: 'ops', secret: 'link-endings-eighteenth-operator-secret-with-plenty-of-entropy' };
const EMAIL = 'lena@link-endings-eighteenth.example.test';

describe('e2e: eighteenth passes, an upstream link removed and made again across a held resume', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let corp: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startSelfUpstreamServer({ secret: SECRET, redirect: REDIRECT, ownRedis: true, cheapHashing: true, clients: [machineClient(OPS)] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
    corp = await startFakeUpstream(SECRET);
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const settings = { id: 'corp', issuer: corp.state.issuer, client_id: 'latchkey', client_secret: SECRET, scope: 'openid email', display_name: 'Corp', link_by_email: true, end_session: false };
    const answer = await adminJson(server.url, token, 'POST', '/upstreams', settings);
    assert.ok(answer.status < 300, `the upstream: ${answer.status}`);
  });
  after(async () => {
    await corp?.close();
    await server?.stop();
  });

  const codeOf = (page: { url: string }) => (page.url.startsWith(REDIRECT) ? new URL(page.url).searchParams.get('code') : null);

  /** The link offered by email and confirmed with the person's password (as its owner makes it). */
  async function linked(): Promise<void> {
    const browser = new Agent();
    const { page } = await startAuthorization(browser, app, REDIRECT, { upstream: 'corp' });
    assert.match(page.html, /already exists here\. Sign in to it/, `the offer: ${page.status} ${page.url}`);
    let done = await signInSteps(browser, page, { username: 'lena', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, REDIRECT);
    assert.ok(codeOf(done), `the confirming sign-in gives a code: ${done.status} ${done.url}`);
  }

  it('a sign-in through the link held at its resume, the link removed on the account page and made again by its owner: no code, no session', async () => {
    const links = new UpstreamLinks(server.kv, server.accounts);
    const { sub } = await server.accounts.create('lena', PASSWORD, { email: EMAIL, email_verified: true });
    corp.state.sub = 'corp-lena';
    corp.state.email = EMAIL;
    await linked();
    const first = await links.find('corp', 'corp-lena');
    assert.equal(first?.sub, sub, 'linked');

    // The thief's sign-in through the upstream, finished at Latchkey, its resume held back.
    // (startAuthorization stops at the app only: built here to stop at the resume.)
    const thief = new Agent();
    const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid', upstream: 'corp', code_challenge: challenge, code_challenge_method: 'S256' });
    const resume = await thief.follow(url.href, {}, `${server.issuer}/auth/`);
    assert.ok(resume.url.startsWith(`${server.issuer}/auth/`), `held at the resume: ${resume.status} ${resume.url}`);

    // The owner removes the link (as the account page's /links/remove does), then makes it again.
    assert.ok(await links.remove(sub, 'corp:corp-lena'), 'removed');
    await linked();
    assert.equal((await links.find('corp', 'corp-lena'))?.sub, sub, 'linked again');

    let done = await thief.follow(resume.url, {}, REDIRECT);
    if (isConsent(done)) done = await thief.submit(done, '/confirm', {}, REDIRECT);
    assert.equal(codeOf(done), null, `a code through the removed link: ${done.status} ${done.url}`);
    assert.ok(done.status < 500, `${done.status} ${done.url}`);
    const silent = await startAuthorization(thief, app, REDIRECT, { prompt: 'none' });
    assert.equal(codeOf(silent.page), null, `a silent code: ${silent.page.url}`);

    // The control: a sign-in through the link made again signs in.
    const owner = new Agent();
    let again = (await startAuthorization(owner, app, REDIRECT, { upstream: 'corp' })).page;
    if (isConsent(again)) again = await owner.submit(again, '/confirm', {}, REDIRECT);
    assert.ok(codeOf(again), `a sign-in through the link of now: ${again.status} ${again.url}`);
  });
});
