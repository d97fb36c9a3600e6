/**
 * The sixteenth passes' web and input attacks (h7, docs/security-passes.md "the attack suite: web
 * and input attacks"): what a person's browser is answered when the per-address limit refuses it.
 * Every other refusal a browser meets (404, 405, 413, 400, 503) is a page; the limit's 429 was the
 * protocol's JSON whatever the request accepted, so a person signing in, entering a device's code
 * or signing out behind a busy address (an office's NAT) saw `{"error":"temporarily_unavailable"…}`,
 * and one whose sign-out was refused was not told they were still signed in.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://app.example.test/callback';
const LIMIT = 2;

describe('web and input attacks, sixteenth pass (h7): the per-address limit answers a person with a page', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      clients: [{ client_id: 'app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }],
      env: { RATE_LIMIT_PER_IP: String(LIMIT) },
    });
  });
  after(() => server?.stop());

  /** Requests to `path` until the limit refuses one: that refusal. */
  async function refused(path: string, init: RequestInit & { headers: Record<string, string> }): Promise<Response> {
    for (let tries = 0; tries <= LIMIT + 1; tries += 1) {
      const response = await fetch(`${server.url}${path}`, { ...init, redirect: 'manual' });
      if (response.status === 429) return response;
      await response.arrayBuffer();
    }
    assert.fail(`${path} was never refused by the per-address limit of ${LIMIT}`);
  }

  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const html = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
  const auth = `/auth?${new URLSearchParams({ client_id: 'app', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })}`;

  for (const [what, path, init] of [
    ['the authorization endpoint', auth, { headers: html }],
    ['a sign-in step', '/interaction/no-such-sign-in', { headers: html }],
    ['the device page', '/device', { headers: html }],
    ['the developer page', '/developer', { headers: html }],
    ['the account page', '/account', { headers: html }],
  ] as const) {
    it(`${what}: a page saying to wait, with Retry-After and the security headers; a program still gets JSON`, async () => {
      const page = await refused(path, init);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      const body = await page.text();
      assert.match(body, /<h1>Too many requests<\/h1>/, body);
      assert.match(body, /try again/i);
      assert.ok(Number(page.headers.get('retry-after')) >= 1);
      assert.equal(page.headers.get('cache-control'), 'no-store');
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');

      const program = await fetch(`${server.url}${path}`, { headers: { accept: 'application/json' }, redirect: 'manual' });
      assert.equal(program.status, 429);
      assert.deepEqual(Object.keys((await program.json()) as object), ['error', 'error_description']);
    });
  }

  it("a sign-out's confirmation refused by the limit says the person is not signed out, and offers it again", async () => {
    const page = await refused('/session/end/confirm', { method: 'POST', headers: { ...html, ...form }, body: 'xsrf=x&logout=yes' });
    const body = await page.text();
    assert.match(body, /<h1>Not signed out<\/h1>/, body);
    assert.match(body, new RegExp(`href="${server.issuer}/session/end"`));
  });

  it("the account page's sign-out of a session refused by the limit says that session may still be signed in", async () => {
    const page = await refused('/account/sessions/sign-out', { method: 'POST', headers: { ...html, ...form }, body: 'csrf=x&session=y' });
    const body = await page.text();
    assert.match(body, /<h1>Not signed out<\/h1>/, body);
    assert.match(body, /Sign it out again/);
  });
});
