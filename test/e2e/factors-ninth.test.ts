/**
 * The ninth fresh-eyes pass over passkeys, second factors and upstreams (docs/security-passes.md,
 * "passkeys, second factors and upstreams, ninth pass"), black box: a running Latchkey on a real
 * Redis, a cookie-keeping agent as the browser, openid-client as the app.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signedInToAccountPage, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { isSecondFactor, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';
const UPSTREAM_SECRET = 'upstream-client-secret-with-plenty-of-entropy-012345';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const codeFor = (secret: string) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });

describe('passkeys, second factors and upstreams, ninth pass (black box)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let bobSecret = '';
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  /** Bob adds an authenticator app (elsewhere: not in the browser's session). */
  async function bobAddsAnApp(): Promise<void> {
    const bob = (await server.accounts.findByUsername('bob'))!;
    const { secret } = await server.secondFactors.totp.begin(bob.sub, 'bob', 'another-session');
    const previous = TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() - 30_000 });
    assert.equal(await server.secondFactors.totp.confirm(bob.sub, previous, 'another-session'), true);
    bobSecret = secret;
  }

  const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'tv', ...params }) });
  const poll = async (deviceCode: string) => {
    const response = await fetch(`${server.url}/token`, form({ grant_type: DEVICE_GRANT, device_code: deviceCode }));
    return (await response.json()) as Record<string, string>;
  };
  /** The device got nothing yet (polled again within its interval, it is told to slow down). */
  const waiting = async (deviceCode: string) => {
    const { error, access_token: token } = await poll(deviceCode);
    assert.equal(token, undefined);
    assert.ok(error === 'authorization_pending' || error === 'slow_down', `still waiting, got ${error}`);
  };
  /** A browser signed in with the password alone (SSO at another app), then sent to /device with the code of a request made with `params`. */
  async function deviceAfterPasswordSession(username: string, params: Record<string, string>, meanwhile?: () => Promise<void>): Promise<{ agent: Agent; page: Page; deviceCode: string }> {
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT);
    const back = await signInSteps(agent, page, { username, password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT) || isConsent(back), `a password-only session, got ${back.url}`);
    await meanwhile?.();
    const started = (await (await fetch(`${server.url}/device/auth`, form({ scope: 'openid', ...params }))).json()) as Record<string, string>;
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    return { agent, page: await agent.submit(confirm, '/device', { confirm: 'yes' }), deviceCode: started.device_code! };
  }

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
      ],
    });
    for (const name of ['bob', 'erin']) await server.accounts.create(name, PASSWORD);
    fake = await fakeUpstreamOf(server, UPSTREAM_SECRET);
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  for (const [asked, params] of [
    ['acr_values=mfa', { acr_values: 'mfa' }],
    ['an essential acr of mfa (claims parameter)', { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'mfa' } } }) }],
  ] as const) {
    it(`a device authorization asking ${asked}, approved in a browser signed in with the password alone: the sign-in is asked again, the device waits, and a person without a second factor gets the set-up page, not a code (held)`, async () => {
      const { agent, page, deviceCode } = await deviceAfterPasswordSession('erin', params);
      assert.match(page.html, /name="password"/, `the login page again, not an approval: ${page.url}`);
      await waiting(deviceCode);
      const afterPassword = await agent.submit(page, '/login', { username: 'erin', password: PASSWORD });
      assert.equal(afterPassword.status, 403, `the set-up-a-second-factor page, got ${afterPassword.status} ${afterPassword.url}`);
      await waiting(deviceCode);
    });
  }

  it('a device authorization asking acr_values=mfa, approved in a session signed in with the password alone before the person added an authenticator app: their code is asked, and the device\'s ID token says mfa (held)', async () => {
    const { agent, page, deviceCode } = await deviceAfterPasswordSession('bob', { acr_values: 'mfa' }, bobAddsAnApp);
    assert.match(page.html, /name="password"/, `the login page again, not an approval: ${page.url}`);
    const second = await agent.submit(page, '/login', { username: 'bob', password: PASSWORD });
    assert.ok(isSecondFactor(second), `the second-factor page, got ${second.url}`);
    await waiting(deviceCode);
    let done = await agent.submit(second, '/second-factor', { method: 'totp', code: codeFor(bobSecret) });
    if (isConsent(done)) done = await agent.submit(done, '/confirm', {});
    assert.match(done.html, /Device connected/);
    const tokens = await poll(deviceCode);
    assert.ok(tokens.id_token, JSON.stringify(tokens));
    const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString()) as { acr: string; amr: string[] };
    assert.equal(claims.acr, 'mfa');
    assert.deepEqual([...claims.amr].sort(), ['mfa', 'otp', 'pwd']);
  });

  for (const named of ['its sid', 'its sid and sub'] as const) {
    it(`an upstream's back-channel logout naming (${named}) the upstream session a browser signed in with before it signed in again through the same upstream (a new sid) leaves the browser's session, which rests on the new one; a logout of the new one ends it (Back-Channel Logout 1.0 §2.7)`, async () => {
      const person = `fake-person-${named.length}`;
      fake.state.mode = 'good';
      fake.state.sub = person;
      fake.state.sid = `old-sid-${named.length}`;
      const agent = new Agent();
      const first = await startAuthorization(agent, app, REDIRECT, { upstream: 'fake' });
      const signedIn = isConsent(first.page) ? await agent.submit(first.page, '/confirm', {}, REDIRECT) : first.page;
      assert.ok(signedIn.url.startsWith(REDIRECT), `signed in through the upstream, got ${signedIn.url}`);
      // The same person signs in again through it (prompt=login): the upstream has a new session.
      fake.state.sid = `new-sid-${named.length}`;
      const again = await startAuthorization(agent, app, REDIRECT, { upstream: 'fake', prompt: 'login' });
      assert.ok(again.page.url.startsWith(REDIRECT), `signed in again, got ${again.page.url}`);

      const logout = async (sid: string) => {
        const token = await fake.logoutToken({ sid, ...(named === 'its sid and sub' && { sub: person }) });
        const response = await fetch(`${server.url}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
        assert.equal(response.status, 200, await response.text());
      };
      const silently = async () => new URL((await startAuthorization(agent, app, REDIRECT, { prompt: 'none' })).page.url).searchParams;

      await logout(`old-sid-${named.length}`);
      const kept = await silently();
      assert.equal(kept.get('error'), null, `the session resting on the new upstream session stays: ${kept.get('error')}`);
      assert.ok(kept.get('code'));
      await logout(`new-sid-${named.length}`);
      assert.equal((await silently()).get('error'), 'login_required');
    });
  }

  it('an authenticator app whose setup a password-only session began before the person added a passkey elsewhere is not confirmed by that session: it is sent to sign in again and nothing is added (the confirmation is a credential change too)', async () => {
    const vera = await server.accounts.create('vera', PASSWORD);
    // Whoever has only the password signs in to the account page and begins setting up their own app:
    // one factor, so far all there is.
    const thief = await signedInToAccountPage(server.issuer, 'vera', PASSWORD);
    const begun = await thief.agent.submit(thief.page, '/account/authenticator/start', {});
    const secret = begun.html.match(/id="totp-secret">([^<]+)</)?.[1]?.replace(/\s/g, '');
    assert.ok(secret, `a setup page with a secret, got ${begun.status} ${begun.url}`);
    // Vera adds a passkey in her own browser a moment later.
    await registerSoftPasskeys(server, vera.sub, softPasskey());

    const confirmed = await thief.agent.submit(begun, '/account/authenticator/confirm', { code: codeFor(secret) }, `${server.issuer}/interaction/`);
    assert.ok(confirmed.url.startsWith(`${server.issuer}/interaction/`), `sent to sign in again, not ${confirmed.status} ${confirmed.url}`);
    assert.equal((await server.secondFactors.summary(vera.sub)).totp, undefined, 'no authenticator app added');
  });
});
