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
import { isConsent, registerPublicClient, signInSteps, silentAnswers, startAuthorization } from '../helpers/sign-in.js';
import type { ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const TRACKER_REDIRECT = 'https://tracker.example.test/callback';
const PASSWORD = 'red team granted passphrase';
const APP: ClientCredentials = { id: 'app', secret: 'app-secret-with-plenty-of-entropy-0123456789abcdef' };
const SPA = 'spa';
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
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], backchannel_logout_uri: receiver.url },
        // A browser app: public, its refresh tokens rotated (RFC 9700 §4.14.2).
        { client_id: SPA, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
      ],
    });
    await server.accounts.create('pat', PASSWORD, { email: 'pat@example.test', email_verified: true });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), insecure);
  });
  after(async () => {
    await server?.stop();
    receiver?.server.close();
  });

  /** An app that registers itself (RFC 7591, open registration) as a public client, with `metadata` on top. */
  const registerTracker = (metadata: Record<string, unknown> = {}) => registerPublicClient(server.url, server.issuer, TRACKER_REDIRECT, metadata);

  it("an app the person never allowed (a silent prompt=none answered consent_required, or a consent page declined) is not sent their sub in a logout token when they sign out everywhere (Back-Channel Logout 1.0 §2.5, OIDC Core §2)", async () => {
    for (const attempt of ['prompt=none', 'declined'] as const) {
      // The tracker registers itself with a back-channel logout URI of its own.
      const { id: trackerId, config: tracker } = await registerTracker({ backchannel_logout_uri: receiver.url });

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

  it("an app the person never allowed cannot tell by silent prompt=none requests who is signed in at the browser: a login_hint or a sub asked by value, naming them or someone else, gets the answer a request without it gets (another app's ID token is no id_token_hint of its) (OIDC Core §3.1.2.1, §3.1.2.6, §5.5.1)", async () => {
    await server.accounts.create('quinn', PASSWORD, { email: 'quinn@example.test' });
    const { config: tracker } = await registerTracker();
    /** `username` signed in at the app in `agent`: their sub and ID token (what any app they allowed holds). */
    const signIn = async (agent: Agent, username: string) => {
      const { page, verifier } = await startAuthorization(agent, app, REDIRECT);
      const back = new URL((await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT })).url);
      const tokens = await oidc.authorizationCodeGrant(app, back, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
      return { sub: tokens.claims()!.sub, idToken: tokens.id_token! };
    };
    const quinn = await signIn(new Agent(), 'quinn');
    // Pat is signed in at this browser.
    const agent = new Agent();
    const pat = await signIn(agent, 'pat');

    // The tracker, which pat never allowed anything, guesses silently who they are: names and addresses, subs another app learnt.
    const probes: Record<string, Record<string, string>> = {
      'nothing more': {},
      'login_hint: pat': { login_hint: 'pat' },
      'login_hint: pat@example.test': { login_hint: 'pat@example.test' },
      'login_hint: quinn': { login_hint: 'quinn' },
      'login_hint: nobody@example.test': { login_hint: 'nobody@example.test' },
      "sub: pat's": { claims: JSON.stringify({ id_token: { sub: { value: pat.sub } } }) },
      "sub: quinn's": { claims: JSON.stringify({ id_token: { sub: { value: quinn.sub } } }) },
    };
    const answers = await silentAnswers(agent, tracker, TRACKER_REDIRECT, probes);
    // Nor is an ID token the person's app holds an id_token_hint of the tracker's (its audience is that app).
    const hinted = await startAuthorization(agent, tracker, TRACKER_REDIRECT, { prompt: 'none', id_token_hint: pat.idToken });
    assert.equal(new URL(hinted.page.url).searchParams.get('error'), 'invalid_request', hinted.page.url);
    assert.deepEqual(new Set(Object.values(answers)), new Set(['consent_required: requested scopes not granted']), `the answers tell the tracker who is at the browser: ${JSON.stringify(answers, null, 1)}`);

    // The app pat allowed is still told login_required for someone else (never given pat's code), and gets pat's code for pat.
    const someoneElse: Record<string, string>[] = [{ login_hint: 'quinn' }, { id_token_hint: quinn.idToken }, { claims: JSON.stringify({ id_token: { sub: { value: quinn.sub } } }) }];
    for (const params of someoneElse) {
      const other = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', ...params });
      assert.equal(new URL(other.page.url).searchParams.get('error'), 'login_required', `${JSON.stringify(params)}: ${other.page.url}`);
    }
    const own = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', login_hint: 'pat@example.test' });
    assert.ok(new URL(own.page.url).searchParams.get('code'), own.page.url);
  });

  it("a public client's refresh token raced by its thief (the same token sent many times at once) is rotated once, and the race revokes the grant: no second line of tokens survives (RFC 9700 §4.14.2, RFC 6749 §10.4)", async () => {
    const spa = await oidc.discovery(new URL(server.issuer), SPA, { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, spa, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const back = new URL((await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url);
    const refreshToken = (await oidc.authorizationCodeGrant(spa, back, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck })).refresh_token!;
    assert.ok(refreshToken, 'offline access gives a refresh token');

    const refresh = async (token: string) => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: SPA }) });
      return { status: response.status, body: (await response.json()) as { access_token?: string; refresh_token?: string; error?: string } };
    };
    const raced = await Promise.all(Array.from({ length: 8 }, () => refresh(refreshToken)));
    const won = raced.filter(({ status }) => status === 200);
    assert.ok(won.length <= 1, `${won.length} of 8 refreshes of one token succeeded`);
    for (const { body } of won) {
      assert.equal((await refresh(body.refresh_token!)).body.error, 'invalid_grant', 'the winner\'s refresh token outlives the race');
      assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${body.access_token}` } })).status, 401, 'the winner\'s access token outlives the race');
    }
  });
});
