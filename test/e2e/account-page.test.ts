/**
 * The account page (/account) without a browser: signing in to it with Latchkey itself, a stranger
 * sent to sign in, a person who was disabled since signed out.
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'account page password';

describe('e2e: the account page', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
    await server.accounts.create('carol', PASSWORD);
  });
  after(async () => {
    await server?.stop();
  });

  async function signIn(username: string, agent = new Agent()): Promise<{ agent: Agent; page: Page }> {
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username, password: PASSWORD, login: 'required' });
    assert.equal(page.url, `${server.issuer}/account`, `expected the account page, got ${page.url} (${page.status})`);
    return { agent, page };
  }

  it('sends a stranger to sign in, and a person who signs in reaches their page', async () => {
    const agent = new Agent();
    const first = await agent.request(`${server.issuer}/account`);
    assert.equal(first.status, 302);
    assert.equal(first.headers.get('location'), '/account/sign-in');
    const { page } = await signIn('alice', agent);
    assert.equal(page.status, 200);
    assert.match(page.html, /<h1>Your account<\/h1>/);
    assert.match(page.html, /Signed in as <strong>alice<\/strong> \(Alice\)/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.doesNotMatch(page.html, /<script/);
  });

  it('signs out a person who was disabled since, and sends them to sign in', async () => {
    const { agent } = await signIn('carol');
    await server.accounts.setDisabled('carol', true);
    const again = await agent.request(`${server.issuer}/account`);
    assert.equal(again.status, 302);
    assert.equal(again.headers.get('location'), '/account/sign-in');
    await server.accounts.setDisabled('carol', false);
    const page = await agent.follow(`${server.issuer}/account`);
    assert.ok(page.html.includes('name="password"'), 'the session was ended: the login page is shown again');
  });

  it('says so when signing in to the page was cancelled', async () => {
    const page = await new Agent().follow(`${server.issuer}/account/callback?error=access_denied`);
    assert.equal(page.status, 400);
    assert.match(page.html, /signing in to the account page was cancelled/);
  });
});
