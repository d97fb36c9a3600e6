/**
 * The residuals pass of 2026-12-01: holes left open by the earlier red-team passes in "Latchkey
 * hands out more than was granted" and "some endings do not end", black box with real clients
 * (openid-client) against a running Latchkey; each test performs one attack that succeeded before
 * its fix (docs/security.md says which).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import type { ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const TRACKER_REDIRECT = 'https://tracker.example.test/callback';
const PASSWORD = 'red team residuals passphrase';
const APP: ClientCredentials = { id: 'app', secret: 'app-secret-with-plenty-of-entropy-0123456789abcdef' };
const insecure = { execute: [oidc.allowInsecureRequests] };

/** Resolves once the epoch second after `second` has begun. */
async function pastSecond(second: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= second) await new Promise((done) => setTimeout(done, 50));
}

describe('e2e: red team, residuals of "more than was granted" and "endings that do not end"', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({
      env: { REGISTRATION_OPEN: 'true' },
      clients: [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] }],
    });
    await server.accounts.create('pat', PASSWORD, { email: 'pat@example.test' });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), insecure);
  });
  after(async () => {
    await server?.stop();
  });

  it("an app the person never allowed learns by silent prompt=none requests neither how long ago nor how strongly they signed in (max_age, acr_values, an essential acr); the app they allowed is still told login_required (OIDC Core §3.1.2.1, §3.1.2.6)", async () => {
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [TRACKER_REDIRECT], token_endpoint_auth_method: 'none' }),
    });
    const trackerId = ((await registered.json()) as { client_id: string }).client_id;
    const tracker = await oidc.discovery(new URL(server.issuer), trackerId, { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);

    // Pat signs in with a password at the app they use.
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT);
    const signedIn = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(new URL(signedIn.url).searchParams.get('code'), signedIn.url);
    // More than a second since the sign-in, so that max_age=1 has passed (max_age=0 is the engine's prompt=login: login_required whoever asks).
    await pastSecond(Math.floor(Date.now() / 1000) + 1);

    // The tracker, which pat never allowed anything, weighs the sign-in silently: older than a second? a second factor?
    const probes: Record<string, Record<string, string>> = {
      'nothing more': {},
      'max_age=1': { max_age: '1' },
      'max_age=86400': { max_age: '86400' },
      'acr_values=mfa': { acr_values: 'mfa' },
      'acr_values=pwd': { acr_values: 'pwd' },
      'essential acr mfa': { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['mfa', 'phr'] } } }) },
      'essential acr pwd': { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'pwd' } } }) },
    };
    const answers: Record<string, string> = {};
    for (const [probe, params] of Object.entries(probes)) {
      const asked = await startAuthorization(agent, tracker, TRACKER_REDIRECT, { prompt: 'none', ...params });
      const answer = new URL(asked.page.url);
      assert.ok(asked.page.url.startsWith(TRACKER_REDIRECT), `${probe}: back at the tracker: ${asked.page.url}`);
      assert.equal(answer.searchParams.get('code'), null, `${probe}: no code for an app never allowed`);
      answers[probe] = `${answer.searchParams.get('error')}: ${answer.searchParams.get('error_description')}`;
    }
    assert.deepEqual(new Set(Object.values(answers)), new Set(['consent_required: requested scopes not granted']), `the answers weigh pat's sign-in for the tracker: ${JSON.stringify(answers, null, 1)}`);

    // The app pat allowed may still ask for a fresher or stronger sign-in, and is told it needs one.
    for (const params of [{ max_age: '1' }, { acr_values: 'mfa' }] as Record<string, string>[]) {
      const allowed = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', ...params });
      assert.equal(new URL(allowed.page.url).searchParams.get('error'), 'login_required', `${JSON.stringify(params)}: ${allowed.page.url}`);
    }
    const fresh = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', max_age: '86400' });
    assert.ok(new URL(fresh.page.url).searchParams.get('code'), fresh.page.url);
  });
});
