/**
 * Review of the seventeenth passes (docs/security-passes.md, "Looked at in the seventeenth passes:
 * review of 2b2d1a1d..2abc715c"), held: patches/cross-site-frames.ts reads Sec-Fetch-Dest and
 * Sec-Fetch-Site, which the sender writes, so what they change must be words alone. A signed-in
 * browser sending them still gets its code; an interactive request without a session still gets
 * the login page; `prompt=none` without a session gets `login_required` with `state` and `iss`
 * in every response mode (fragment and form_post as the query).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'seventeenth review frames passphrase';
const REDIRECT = 'https://app.frames-review.example/callback';
const CLIENT = { client_id: 'frames-app', client_secret: 'frames-app-secret-0123456789abcdef0123456789abcdef', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: [REDIRECT] };
/** What a browser sends for a frame's navigation from a page of another site (anyone can send it). */
const CROSS_SITE_FRAME = { 'sec-fetch-dest': 'iframe', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'cross-site' };

describe('e2e: seventeenth passes reviewed, a cross-site frame marked by the sender (held)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [CLIENT] });
    await server.accounts.create('ines', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), CLIENT.client_id, CLIENT.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  const request = (params: Record<string, string>) =>
    oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...params }).href;

  it('prompt=none without a session: login_required with state and iss in the query, the fragment and form_post', async () => {
    for (const mode of ['query', 'fragment', 'form_post']) {
      const answer = await fetch(request({ prompt: 'none', state: `state-${mode}`, response_mode: mode }), { headers: CROSS_SITE_FRAME, redirect: 'manual' });
      let fields: URLSearchParams;
      if (mode === 'form_post') {
        const html = await answer.text();
        fields = new URLSearchParams([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map(([, name, value]): [string, string] => [name!, value!.replace(/&#39;/g, "'")]));
      } else {
        const location = new URL(answer.headers.get('location')!);
        assert.equal(`${location.origin}${location.pathname}`, REDIRECT);
        fields = new URLSearchParams(mode === 'fragment' ? location.hash.slice(1) : location.search);
      }
      assert.equal(fields.get('error'), 'login_required', mode);
      assert.match(fields.get('error_description') ?? '', /frame of a page on another site/, mode);
      assert.equal(fields.get('state'), `state-${mode}`, mode);
      assert.equal(fields.get('iss'), server.issuer, mode);
    }
  });

  it('the headers change words only: an interactive request without a session gets the login page, and a signed-in browser sending them gets its code silently', async () => {
    const interactive = await fetch(request({ state: 'interactive' }), { headers: CROSS_SITE_FRAME, redirect: 'manual' });
    assert.equal(interactive.status, 303);
    assert.match(interactive.headers.get('location') ?? '', /\/interaction\//);

    const browser = new Agent();
    const started = await startAuthorization(browser, config, REDIRECT);
    const back = await signInSteps(browser, started.page, { username: 'ines', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(back.url).searchParams.get('code'), back.url);
    const silent = await browser.follow(request({ prompt: 'none', state: 'signed-in' }), { headers: CROSS_SITE_FRAME }, REDIRECT);
    assert.ok(new URL(silent.url).searchParams.get('code'), silent.url);
  });
});
