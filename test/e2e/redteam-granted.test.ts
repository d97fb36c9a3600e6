/**
 * A fresh attacker's pass at "Latchkey hands out more than was granted", black box: each test
 * performs one attack with real clients (openid-client) against a running Latchkey; those that
 * succeeded before their fix say so in docs/security.md.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import type { ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const TRACKER_REDIRECT = 'https://tracker.example.test/callback';
const PASSWORD = 'red team granted passphrase';
const APP: ClientCredentials = { id: 'app', secret: 'app-secret-with-plenty-of-entropy-0123456789abcdef' };
const insecure = { execute: [oidc.allowInsecureRequests] };

describe('e2e: red team, Latchkey hands out more than was granted', function () {
  this.timeout(60_000);
  let receiver: LogoutReceiver;
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    receiver = await startLogoutReceiver();
    server = await startServer({
      // Open registration (RFC 7591) and a back-channel logout URI on loopback, for the test's receiver.
      env: { REGISTRATION_OPEN: 'true', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], backchannel_logout_uri: receiver.url }],
    });
    await server.accounts.create('pat', PASSWORD, { email: 'pat@example.test' });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), insecure);
  });
  after(async () => {
    await server?.stop();
    receiver?.server.close();
  });

  it("an app the person never allowed (a silent prompt=none answered consent_required, or a consent page declined) is not sent their sub in a logout token when they sign out everywhere (Back-Channel Logout 1.0 §2.5, OIDC Core §2)", async () => {
    for (const attempt of ['prompt=none', 'declined'] as const) {
      // The tracker registers itself (RFC 7591) with a back-channel logout URI of its own.
      const registered = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [TRACKER_REDIRECT], token_endpoint_auth_method: 'none', backchannel_logout_uri: receiver.url }),
      });
      const trackerId = ((await registered.json()) as { client_id: string }).client_id;
      const tracker = await oidc.discovery(new URL(server.issuer), trackerId, { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);

      // Pat signs in at the app they use.
      const agent = new Agent();
      const { page } = await startAuthorization(agent, app, REDIRECT);
      const signedIn = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
      assert.ok(new URL(signedIn.url).searchParams.get('code'), `${attempt}: signed in at the app: ${signedIn.url}`);

      // Pat's browser is sent to the tracker's authorization request (a link, a hidden frame), which gets no code.
      const asked = await startAuthorization(agent, tracker, TRACKER_REDIRECT, attempt === 'prompt=none' ? { prompt: 'none' } : {});
      let answer = asked.page;
      if (attempt === 'declined') {
        assert.ok(isConsent(answer), `${attempt}: the tracker's consent page: ${answer.url}`);
        answer = await agent.submit(answer, '/abort', {}, TRACKER_REDIRECT);
      }
      const error = new URL(answer.url).searchParams.get('error');
      assert.equal(error, attempt === 'prompt=none' ? 'consent_required' : 'access_denied', answer.url);

      // Pat signs out everywhere.
      receiver.tokens.length = 0;
      const confirm = await agent.follow(`${server.issuer}/session/end`);
      const done = await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' });
      assert.match(done.url, /\/session\/end\/success/);

      const told = receiver.tokens.map((token) => decodeJwt(token));
      assert.deepEqual(told.filter(({ aud }) => aud === trackerId), [], `${attempt}: the tracker was told pat's sub, which pat never allowed it`);
      assert.deepEqual(told.map(({ aud }) => aud), [APP.id], `${attempt}: the app pat signed in to is told`);
    }
  });

});
