/**
 * The seventeenth passes' web attacks on Latchkey's own pages (h19, docs/security-passes.md "web
 * attacks on Latchkey's own pages"): what a person is told when the account or developer page
 * cannot take a request. Opening the address of one of their forms (the new secret's or the
 * recovery codes' page, restored in a tab or pasted) answered 405, and a form too large 413, under
 * the sign-in flow's words, "Invalid sign-in request: the application sent a sign-in request that
 * is not valid", where no application and no sign-in were involved and the person was not told
 * whether anything had changed.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://app.example.test/callback';

describe("Latchkey's own pages, seventeenth pass (h19): a request the account or developer page cannot take", function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ clients: [{ client_id: 'app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }] });
  });
  after(() => server?.stop());

  const html = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

  async function page(path: string, init: RequestInit = {}) {
    const response = await fetch(`${server.url}${path}`, { ...init, headers: { ...html, ...(init.headers as Record<string, string>) }, redirect: 'manual' });
    return { response, body: await response.text() };
  }

  for (const [what, path, home] of [
    ['the recovery codes’ address on the account page', '/account/recovery-codes', '/account'],
    ['a passkey’s removal on the account page', '/account/passkeys/remove', '/account'],
    ['a new secret’s address on the developer page', '/developer/apps/app-x/secret', '/developer'],
  ] as const) {
    it(`${what}, opened: 405 with Allow, in the page's own words (nothing changed, a link back), not the sign-in flow's`, async () => {
      const { response, body } = await page(path);
      assert.equal(response.status, 405);
      assert.equal(response.headers.get('allow'), 'POST');
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      assert.doesNotMatch(body, /sign-in request|The application sent/, body);
      assert.match(body, /nothing was changed/i, body);
      assert.match(body, new RegExp(`href="${home}"`), body);
    });
  }

  it('a form too large for the account page: 413 in the page’s words', async () => {
    const { response, body } = await page('/account/password', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=x&password=${'a'.repeat(200_000)}`,
    });
    assert.equal(response.status, 413);
    assert.doesNotMatch(body, /sign-in request|The application sent/, body);
    assert.match(body, /nothing was changed/i, body);
    assert.match(body, /href="\/account"/, body);
  });

  it('a program is still answered with JSON, and an app’s bad sign-in request keeps the sign-in words', async () => {
    const program = await fetch(`${server.url}/account/recovery-codes`, { headers: { accept: 'application/json' } });
    assert.equal(program.status, 405);
    assert.equal(((await program.json()) as { error: string }).error, 'invalid_request');

    const { response, body } = await page(`/auth?client_id=app&client_id=app&${new URLSearchParams({ redirect_uri: REDIRECT, response_type: 'code', scope: 'openid' })}`);
    assert.equal(response.status, 400);
    assert.match(body, /<h1>Invalid sign-in request<\/h1>/, body);
  });
});
