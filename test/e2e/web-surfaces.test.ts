/**
 * The web surfaces people and developers click, attacked black box: what each answer carries
 * (framing, sniffing, referrer, caching of pages that show a secret), the cookies' flags under an
 * https issuer behind a proxy, and bodies the server cannot read.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'a perfectly fine password';
const REDIRECT = 'https://app.example.test/callback';

/** The headers every answer carries, whatever its path, method or status. */
function assertHardened(headers: Headers, name: string): void {
  assert.equal(headers.get('x-frame-options'), 'DENY', name);
  const csp = headers.get('content-security-policy') ?? '';
  assert.match(csp, /frame-ancestors 'none'/, name);
  assert.match(csp, /default-src 'none'/, name);
  assert.doesNotMatch(/script-src ([^;]*)/.exec(csp)?.[1] ?? '', /unsafe-inline|unsafe-eval|\*|https?:|data:/, name);
  assert.equal(headers.get('x-content-type-options'), 'nosniff', name);
  assert.equal(headers.get('referrer-policy'), 'no-referrer', name);
}

describe('e2e: the web surfaces (headers, cookies, bodies)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      clients: [{ client_id: 'app', client_name: 'Surfaces App', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }],
    });
    await server.accounts.create('pat', PASSWORD);
  });
  after(() => server?.stop());

  it('a body the server cannot read (gzip, deflate or br over bytes not so compressed) is a 400 page at every form of ours, never a 500', async () => {
    const forms = ['/interaction/some-uid/login', '/interaction/some-uid/confirm', '/developer/apps', '/account/password', '/upstream/some-upstream/backchannel-logout'];
    for (const path of forms) {
      for (const encoding of ['gzip', 'deflate', 'br']) {
        const answer = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': encoding, accept: 'text/html' },
          body: 'username=pat&password=not-compressed',
        });
        const html = await answer.text();
        assert.equal(answer.status, 400, `${path} ${encoding}: ${answer.status} ${html.slice(0, 200)}`);
        assert.match(html, /could not be read/, `${path} ${encoding}`);
        assertHardened(answer.headers, `${path} ${encoding}`);
      }
    }
    // A form that really is compressed is still read: the login form of a real sign-in, gzipped.
    const agent = new Agent();
    const login = await agent.follow(`${server.url}/developer/sign-in`);
    const csrf = login.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const action = new URL(login.html.match(/action="([^"]*\/login)"/)![1]!, login.url).href;
    const gzipped = await agent.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
      body: gzipSync(new URLSearchParams({ csrf, username: 'pat', password: PASSWORD }).toString()),
    });
    assert.equal(gzipped.status, 303, 'a gzipped form is read as the form it is');
  });
});
