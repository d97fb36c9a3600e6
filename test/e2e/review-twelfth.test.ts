/**
 * The review of the twelfth fresh-eyes passes' changes (2026-12-07), black box: what a change made
 * that day opened, each found with a test here before it was fixed.
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const PASSWORD = 'review of the twelfth passes test password';
const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'review-twelfth-client-secret-with-plenty-of-entropy-0123';

describe('e2e: review of the twelfth passes: an upstream link the person removed', function () {
  this.timeout(120_000);
  let server: TestServer;
  let links: UpstreamLinks;

  before(async () => {
    const port = await freePort();
    // The server is its own upstream provider ("self"), where it is the client "latchkey".
    const latchkey = { client_id: 'latchkey', client_secret: SECRET, redirect_uris: [`http://localhost:${port}/upstream/self/callback`] };
    server = await startServer({
      port,
      ownRedis: true,
      cheapHashing: true,
      clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }, latchkey],
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
    });
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'self', issuer: server.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Self', linkByEmail: false, endSession: false });
    links = new UpstreamLinks(server.kv, server.accounts);
  });
  after(async () => {
    await server?.stop();
  });

  /** `username` (a person at the upstream) signs in to the app through the upstream in a new browser: that browser, where it ended. */
  async function throughUpstream(username: string): Promise<{ agent: Agent; page: Page }> {
    const agent = new Agent();
    const upstreamBrowser = new Agent();
    const login = await agent.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT);
    const back = `${server.issuer}/upstream/self/callback`;
    const toUpstream = await agent.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, back), { username, password: PASSWORD, stopAt: back });
    assert.ok(answer.url.startsWith(back), `the upstream answers: ${answer.status} ${answer.url}`);
    const page = await signInSteps(agent, await agent.follow(answer.url, {}, REDIRECT), { username: '', password: '', stopAt: REDIRECT });
    assert.ok(page.url.startsWith(REDIRECT), `signed in: ${page.status} ${page.url}`);
    return { agent, page };
  }

  it('a link the person removed on the account page is not made again by the next sign-in through it: that sign-in does not reach their account (before the fix: the account made for the identity was linked again)', async () => {
    const { sub: upstreamSub } = await server.accounts.create('renata', PASSWORD);
    const { agent } = await throughUpstream('renata');
    const made = (await links.find('self', upstreamSub))!;
    assert.ok(made, 'the first sign-in made an account and linked it');
    const account = (await server.accounts.find(made.sub))!;
    // A way of its own to sign in (an operator's), so that the link is not the last and may go.
    await server.accounts.setPassword(account.username, 'a password of the account made through the upstream');
    let page = await agent.follow(`${server.issuer}/account`);
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {});
    assert.equal(new URL(page.url).pathname, '/account', `the account page: ${page.status} ${page.url}`);
    const removed = await agent.submit(page, '/account/links/remove', {});
    assert.match(new URL(removed.url).search, /^\?done=links\.removed\./, `removed: ${removed.status} ${removed.url}`);
    assert.equal(await links.find('self', upstreamSub), undefined, 'the link is gone');

    // The identity at the upstream (its person, or whoever holds it now) signs in through it again.
    await throughUpstream('renata');
    const now = await links.find('self', upstreamSub);
    assert.ok(now, 'that sign-in starts afresh, with an account of its own');
    assert.notEqual(now.sub, account.sub, 'not the account the link was removed from');
    assert.deepEqual(await links.list(account.sub), [], 'that account has no link to the upstream again');
  });
});

