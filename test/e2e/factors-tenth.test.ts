/**
 * The tenth fresh-eyes pass over passkeys, second factors and upstreams (docs/security-passes.md,
 * "passkeys, second factors and upstream providers, tenth pass"), black box: a running Latchkey on a
 * real Redis, a cookie-keeping agent as the browser, openid-client as the app, the fake upstream.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, startAuthorization } from '../helpers/sign-in.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const UPSTREAM_SECRET = 'upstream-client-secret-with-plenty-of-entropy-012345';

describe('passkeys, second factors and upstreams, tenth pass (black box)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }] });
    fake = await fakeUpstreamOf(server, UPSTREAM_SECRET);
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });
  afterEach(() => {
    fake.state.authTime = undefined;
  });

  it("an app's max_age in any spelling the engine takes for a number (\" 60\", \"60.0\", \"6e1\", \"+60\") is asked of the upstream and its auth_time checked: an upstream session of two hours ago is no sign-in within it (OIDC Core §3.1.2.1)", async () => {
    for (const maxAge of [' 60', '60.0', '6e1', '+60']) {
      // The upstream ignores max_age and answers from a session it signed in two hours ago.
      fake.state.authTime = Math.floor(Date.now() / 1000) - 7200;
      fake.state.sub = 'stale-person';
      const { page } = await startAuthorization(new Agent(), app, REDIRECT, { max_age: maxAge, upstream: 'fake' });
      assert.ok(!page.url.startsWith(REDIRECT) && !isConsent(page), `no code, nor a consent page on the way to one, for max_age=${JSON.stringify(maxAge)}: ${page.status} ${page.url}`);
      assert.equal(page.status, 403);
      assert.match(page.html, /Sign-in not completed/);
      assert.equal(fake.state.maxAge, '60', `max_age=${JSON.stringify(maxAge)} is passed on as the 60 seconds the engine reads`);
    }
  });
});
