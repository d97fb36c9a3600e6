/**
 * The sixteenth passes, Redis blips and what a page says (h10, docs/security-passes.md "Looked at
 * in the sixteenth passes: Redis blips in the newer flows, and words a request without a session is
 * told (h10)"). A form of the account or developer page that reaches Latchkey without this browser's
 * session (posted from another site, which SameSite=Lax keeps the cookie from; cookies blocked) was
 * answered "Signed out: You were signed out while this sign-in was being answered", though nothing
 * was signed out and the person is still signed in: at the account page's "Sign out" of a session,
 * it read as if the sign-out had happened. Now such a request is told nothing was done and why; one
 * whose session has ended is told that, in the page's words (not a sign-in's).
 */
import assert from 'node:assert/strict';
import type { Page } from '../helpers/agent.js';
import { formIn } from '../helpers/agent.js';
import { signedInToAccountPage } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';
const html = { accept: 'text/html,application/xhtml+xml', 'content-type': 'application/x-www-form-urlencoded' };

const heading = (body: string) => body.match(/<h1>([^<]*)<\/h1>/)?.[1];
const text = (body: string) => body.replace(/<(style|script)[^]*?<\/\1>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('a signed-in page’s form posted without this browser’s session, sixteenth pass (h10)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ cheapHashing: true });
    await server.accounts.create('alice', PASSWORD);
  });
  after(() => server?.stop());

  /** POSTs `path` with the CSRF token of `page` and `cookie` (none: as a form from another site arrives). */
  async function post(path: string, page: Page, cookie?: string): Promise<{ status: number; body: string }> {
    const csrf = formIn(page.html, '/account/recovery-codes').hidden.csrf!;
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { ...html, ...(cookie ? { cookie } : {}) },
      body: new URLSearchParams({ csrf, session: 'x', password: 'x', new_password: 'y', name: 'App', redirect_uris: 'https://app.example.test/cb' }),
      redirect: 'manual',
    });
    return { status: response.status, body: await response.text() };
  }

  for (const path of ['/account/sessions/sign-out', '/account/password', '/account/recovery-codes', '/developer/apps']) {
    it(`${path} without the session cookie: 401, "Nothing was done", no word of a sign-out; the person stays signed in`, async () => {
      const { agent, page } = await signedInToAccountPage(server.issuer, 'alice', PASSWORD);
      const answer = await post(path, page);
      assert.equal(answer.status, 401);
      assert.equal(heading(answer.body), 'Nothing was done', text(answer.body));
      assert.doesNotMatch(text(answer.body), /signed out|sign-in was being answered/i);
      assert.match(text(answer.body), /without this browser’s sign-in/);
      const again = await agent.follow(`${server.issuer}/account`);
      assert.equal(again.url, `${server.issuer}/account`, 'still signed in');
    });
  }

  it('a program (JSON) still gets login_required', async () => {
    const response = await fetch(`${server.url}/account/sessions/sign-out`, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { error: string }).error, 'login_required');
  });

  it('with the cookie of a session that has ended: 401, told its sign-in ended and nothing was done, in the page’s words (not a sign-in’s)', async () => {
    const { agent, page } = await signedInToAccountPage(server.issuer, 'alice', PASSWORD);
    const cookie = agent.cookieHeader(server.issuer);
    // Signed out of Latchkey in this browser (the confirmation posted with its own xsrf token).
    const confirm = await agent.follow(`${server.issuer}/session/end`);
    const out = await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' });
    assert.match(out.html, /You are signed out/);
    const answer = await post('/account/sessions/sign-out', page, cookie);
    assert.equal(answer.status, 401);
    assert.equal(heading(answer.body), 'Not signed in', text(answer.body));
    assert.match(text(answer.body), /Nothing was changed/);
    assert.doesNotMatch(text(answer.body), /sign-in was being answered|Go back to the application/);
  });

  it('a sign-out’s confirmation posted without the session cookie says "Not signed out" (held)', async () => {
    await signedInToAccountPage(server.issuer, 'alice', PASSWORD);
    const response = await fetch(`${server.url}/session/end/confirm`, { method: 'POST', headers: html, body: 'xsrf=x&logout=yes', redirect: 'manual' });
    const body = await response.text();
    assert.equal(response.status, 400);
    assert.equal(heading(body), 'Not signed out');
  });
});
