/**
 * An attacker's review of the second factor, step-up, device, CIMD, DPoP/PAR and account-page
 * surfaces, black box: each test performs one attack against a running Latchkey on a real Redis,
 * with openid-client as the app and a cookie-keeping agent as the browser, and asserts that it
 * fails. Each title names the attack and the section of the spec it is about; docs/security.md's
 * threat model points here.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { AccountSessions } from '../../src/accounts/sessions.js';
import { clientCredentialsToken, introspect } from '../helpers/tokens.js';
import { adapterFactory } from '../../src/store/adapter.js';
import { MAX_PASSKEYS } from '../../src/accounts/passkeys.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { assertion, attestation, isSecondFactor, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const OPS_SECRET = 'ops-client-secret-with-plenty-of-entropy-0123456789';
/** A client name with a right-to-left override: shown as "bank.org" and reversing what follows it. */
const RLO_NAME = 'TV \u202Egro.knab';
const PASSWORD = 'correct horse battery staple';
const MAX_FAILURES = 3;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

/** A code that is none of the ones valid now (±1 step): a wrong guess. */
const wrongCode = (secret: string, i: number) => {
  const valid = new Set([-1, 0, 1].map((step) => codeFor(secret, step)));
  for (let n = i; ; n += 1) {
    const guess = String((123_457 * (n + 1)) % 1_000_000).padStart(6, '0');
    if (!valid.has(guess)) return guess;
  }
};


describe('attacks: second factor, step-up and the new endpoints (black box)', function () {
  this.timeout(30_000);
  let server: TestServer;
  const configs: Record<string, oidc.Configuration> = {};

  async function enrolTotp(username: string): Promise<string> {
    const account = (await server.accounts.findByUsername(username))!;
    const { secret } = await server.secondFactors.totp.begin(account.sub, username, 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeFor(secret, -1), 'test-session'), true);
    return secret;
  }

  const adminToken = () => clientCredentialsToken(server.url, { id: 'ops', secret: OPS_SECRET }, `${server.issuer}/admin`, 'admin');
  const admin = async (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}/admin${path}`, { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${await adminToken()}` } });

  const discover = (id: string, secret?: string) =>
    oidc.discovery(new URL(server.issuer), id, secret, secret ? oidc.ClientSecretBasic(secret) : oidc.None(), { execute: [oidc.allowInsecureRequests] });

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: { ACCOUNTS_THROTTLE_MAX_FAILURES: String(MAX_FAILURES), REGISTRATION_OPEN: 'true' },
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        { client_id: 'strict', client_secret: SECRET, redirect_uris: [REDIRECT], require_mfa: true },
        { client_id: 'strict-tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [], require_mfa: true },
        { client_id: 'ops', client_secret: OPS_SECRET, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
        { client_id: 'offline', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: 'offline-tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] },
      ],
    });
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
    for (const name of ['alice', 'bob', 'erin', 'frank']) await server.accounts.create(name, PASSWORD);
    configs.app = await discover('app', SECRET);
    configs.strict = await discover('strict', SECRET);
    configs.offline = await discover('offline', SECRET);
  });
  after(() => server?.stop());

  /** An authorization request of `client`, followed to our first page (or straight back to the app). */
  const authorize = (agent: Agent, client: string, params: Record<string, string> = {}) => startAuthorization(agent, configs[client]!, REDIRECT, params);

  async function tokensAt(client: string, page: Page, verifier: string, agent: Agent) {
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, REDIRECT);
    assert.ok(page.url.startsWith(REDIRECT), `expected to be back at the app, got ${page.status} ${page.url}`);
    return oidc.authorizationCodeGrant(configs[client]!, new URL(page.url), { pkceCodeVerifier: verifier });
  }

  it('TOTP brute force across sign-ins: a right password does not reset the wrong-code count of the username (RFC 6238 §5.2, NIST SP 800-63B §5.2.2)', async () => {
    const secret = await enrolTotp('alice');
    // Each round: a fresh sign-in, the (stolen) right password, then wrong codes just under the limit.
    // Without the fix the password's success cleared the username's count, so rounds never ended.
    let guesses = 0;
    let paused: Page | undefined;
    for (let round = 0; round < 3 && !paused; round += 1) {
      const agent = new Agent();
      const { page } = await authorize(agent, 'app');
      let current = await signInSteps(agent, page, { username: 'alice', password: PASSWORD, login: 'required', stopAt: REDIRECT });
      if (current.status === 429) {
        paused = current;
        break;
      }
      assert.ok(isSecondFactor(current), `round ${round}: expected the second-factor page, got ${current.status} ${current.url}`);
      for (let i = 0; i < MAX_FAILURES - 1; i += 1) {
        current = await agent.submit(current, '/second-factor', { method: 'totp', code: wrongCode(secret, guesses) }, REDIRECT);
        guesses += 1;
        if (current.status === 429) {
          paused = current;
          break;
        }
        assert.equal(current.status, 401);
      }
    }
    assert.ok(paused, `${guesses} wrong codes over several sign-ins, and sign-in for the username never paused`);
    assert.ok(guesses <= MAX_FAILURES, `${guesses} wrong codes were checked before the pause (limit ${MAX_FAILURES})`);
  });

  it('step-up downgrade by refresh: a refresh token from a password-only sign-in stops working once the client requires MFA, and introspects inactive (OIDC Core §12, RFC 6749 §5.2 invalid_grant, RFC 7662 §2.2)', async () => {
    const created = await admin('/clients', {
      method: 'POST',
      // Confidential: its client is told at introspection (a public client learns nothing there, RFC 7662 §2.1).
      body: JSON.stringify({ client_id: 'later-strict', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    configs['later-strict'] = await discover('later-strict', SECRET);
    const agent = new Agent();
    const { page, verifier } = await authorize(agent, 'later-strict', { scope: 'openid offline_access', prompt: 'consent' });
    const signedIn = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const tokens = await tokensAt('later-strict', signedIn, verifier, agent);
    assert.equal(tokens.claims()?.acr, 'pwd');
    assert.ok(tokens.refresh_token, 'a refresh token');
    const refreshed = await oidc.refreshTokenGrant(configs['later-strict']!, tokens.refresh_token);
    assert.ok(refreshed.access_token, 'it refreshes while the client does not require MFA');
    assert.equal((await oidc.tokenIntrospection(configs['later-strict']!, refreshed.refresh_token!)).active, true, 'and introspects active');

    const updated = await admin('/clients/later-strict', {
      method: 'PUT',
      body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], require_mfa: true }),
    });
    assert.equal(updated.status, 200, await updated.clone().text());
    configs['later-strict'] = await discover('later-strict', SECRET);
    await assert.rejects(oidc.refreshTokenGrant(configs['later-strict']!, refreshed.refresh_token!), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    // Its client is told so at introspection too: the token it can no longer use is not active.
    const introspected = await oidc.tokenIntrospection(configs['later-strict']!, refreshed.refresh_token!);
    assert.deepEqual(introspected, { active: false });
  });

  it('step-up downgrade by a code or a device code: one from a password-only sign-in, redeemed after its client came to require MFA, gets no tokens (OIDC Core §3.1.2.1, RFC 8628 §3.5, RFC 6749 §5.2 invalid_grant)', async () => {
    const web = { token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
    const tv = { application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_GRANT, 'refresh_token'] };
    for (const [id, metadata] of [['soon-strict', web], ['soon-strict-tv', tv]] as const) {
      const created = await admin('/clients', { method: 'POST', body: JSON.stringify({ client_id: id, ...metadata }) });
      assert.equal(created.status, 201, await created.clone().text());
    }
    configs['soon-strict'] = await discover('soon-strict');
    const agent = new Agent();
    const codes = [];
    for (let i = 0; i < 2; i += 1) {
      const { page, verifier } = await authorize(agent, 'soon-strict', { scope: 'openid offline_access', prompt: 'consent' });
      let back = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, stopAt: REDIRECT });
      if (isConsent(back)) back = await agent.submit(back, '/confirm', {}, REDIRECT);
      assert.ok(back.url.startsWith(REDIRECT), back.url);
      codes.push({ callback: new URL(back.url), verifier });
    }
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'soon-strict-tv', ...params }) });
    const started = (await (await fetch(`${server.url}/device/auth`, form({ scope: 'openid offline_access' }))).json()) as Record<string, string>;
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'bob', password: PASSWORD });
    assert.match(approved.html, /Device connected/);
    // While the client does not require MFA, a password-only code gets tokens.
    const first = await oidc.authorizationCodeGrant(configs['soon-strict']!, codes[0]!.callback, { pkceCodeVerifier: codes[0]!.verifier });
    assert.equal(first.claims()?.acr, 'pwd');

    for (const [id, metadata] of [['soon-strict', web], ['soon-strict-tv', tv]] as const) {
      const updated = await admin(`/clients/${id}`, { method: 'PUT', body: JSON.stringify({ ...metadata, require_mfa: true }) });
      assert.equal(updated.status, 200, await updated.clone().text());
    }
    configs['soon-strict'] = await discover('soon-strict');
    await assert.rejects(oidc.authorizationCodeGrant(configs['soon-strict']!, codes[1]!.callback, { pkceCodeVerifier: codes[1]!.verifier }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_grant', String(error));
      return true;
    });
    const polled = await fetch(`${server.url}/token`, form({ grant_type: DEVICE_GRANT, device_code: started.device_code! }));
    const body = (await polled.json()) as Record<string, string>;
    assert.equal(polled.status, 400, `the device gets no tokens: ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_grant');
  });

  it('acr asked as an essential claim (claims parameter) is required like acr_values: a password-only person is not signed in at pwd, the app gets unmet_authentication_requirements (OIDC Core §5.5.1.1)', async () => {
    const agent = new Agent();
    const claims = JSON.stringify({ id_token: { acr: { essential: true, value: 'mfa' } } });
    const { page } = await authorize(agent, 'app', { claims });
    const afterPassword = await signInSteps(agent, page, { username: 'erin', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.equal(afterPassword.status, 403, `expected the set-up-a-second-factor page, got ${afterPassword.status} ${afterPassword.url}`);
    const back = await agent.submit(afterPassword, '/unmet', {}, REDIRECT);
    assert.equal(new URL(back.url).searchParams.get('error'), 'unmet_authentication_requirements');

    // With the second factor, the essential acr is met and the ID token says so; a forged value (not ours) is ignored.
    const secret = await enrolTotp('erin');
    const again = new Agent();
    const flow = await authorize(again, 'app', { claims });
    const second = await signInSteps(again, flow.page, { username: 'erin', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.url}`);
    const done = await again.submit(second, '/second-factor', { method: 'totp', code: codeFor(secret) }, REDIRECT);
    assert.equal((await tokensAt('app', done, flow.verifier, again)).claims()?.acr, 'mfa');
  });

  it('step-up downgrade through the device flow: a password-only session approving a code for a client requiring MFA is asked to sign in again, the device gets nothing (RFC 8628 §5, OIDC Core §3.1.2.1)', async () => {
    const agent = new Agent();
    const { page } = await authorize(agent, 'app');
    const signedIn = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(signedIn.url.startsWith(REDIRECT) || isConsent(signedIn), 'a password-only session at another app (SSO)');
    const metadata = configs.app!.serverMetadata();
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
    const started = (await (await fetch(metadata.device_authorization_endpoint!, form({ client_id: 'strict-tv', scope: 'openid' }))).json()) as Record<string, string>;
    const entry = await agent.follow(`${server.issuer}/device`);
    const confirm = await agent.submit(entry, '/device', { user_code: started.user_code! });
    const next = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.match(next.url, /\/interaction\//);
    assert.match(next.html, /name="password"/, 'the login page again, not an approval');
    const poll = await fetch(metadata.token_endpoint!, form({ grant_type: DEVICE_GRANT, device_code: started.device_code!, client_id: 'strict-tv' }));
    assert.equal(((await poll.json()) as { error: string }).error, 'authorization_pending');
  });

  it('step-up downgrade by SSO: a password-only session made at another app gets no code for a client requiring MFA with prompt=none, nor by naming unknown acr values (OIDC Core §3.1.2.1, §3.1.2.6)', async () => {
    const agent = new Agent();
    const { page } = await authorize(agent, 'app');
    await signInSteps(agent, page, { username: 'frank', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    // Frank never allowed strict anything: it is told consent_required, not how strong the session is (redteam-residuals).
    const silent = await authorize(agent, 'strict', { prompt: 'none' });
    const params = new URL(silent.page.url).searchParams;
    assert.equal(params.get('error'), 'consent_required');
    assert.equal(params.get('code'), null);
    // The app frank allowed is told login_required. Unknown values are not ours to honour (acr_values is voluntary); the known one still counts.
    const named = await authorize(agent, 'app', { acr_values: 'urn:example:gold mfa', prompt: 'none' });
    assert.equal(new URL(named.page.url).searchParams.get('error'), 'login_required');
    const unknownOnly = await authorize(agent, 'app', { acr_values: 'urn:example:gold', prompt: 'none' });
    const code = new URL(unknownOnly.page.url);
    const tokens = await oidc.authorizationCodeGrant(configs.app!, code, { pkceCodeVerifier: unknownOnly.verifier });
    assert.equal(tokens.claims()?.acr, 'pwd', 'the ID token says what happened, never the value asked for');
  });

  /** A request the client `app` pushed (PAR), with `state`: its request_uri. */
  async function pushedByApp(state: string): Promise<string> {
    const pushed = await fetch(configs.app!.serverMetadata().pushed_authorization_request_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`app:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ client_id: 'app', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state, code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' }),
    });
    assert.equal(pushed.status, 201, await pushed.clone().text());
    return ((await pushed.json()) as { request_uri: string }).request_uri;
  }

  it('PAR: parameters added next to request_uri at /auth do not override the pushed ones (RFC 9126 §4)', async () => {
    const request_uri = await pushedByApp('pushed');
    const agent = new Agent();
    const url = new URL(configs.app!.serverMetadata().authorization_endpoint!);
    url.search = new URLSearchParams({ client_id: 'app', request_uri, state: 'injected', scope: 'openid email profile', prompt: 'none', acr_values: 'pwd' }).toString();
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'bob', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const done = isConsent(page) ? await agent.submit(page, '/confirm', {}, REDIRECT) : page;
    const back = new URL(done.url);
    assert.equal(back.searchParams.get('state'), 'pushed', 'the pushed state, and no prompt=none error');
    assert.ok(back.searchParams.get('code'));
  });

  it("PAR: another client's request_uri is refused to that client with its own state, never the pushing client's (RFC 6749 §4.1.2.1), and is not spent", async () => {
    const request_uri = await pushedByApp('app-secret-state');
    const at = (params: Record<string, string>) => {
      const url = new URL(configs.app!.serverMetadata().authorization_endpoint!);
      url.search = new URLSearchParams(params).toString();
      return fetch(url, { redirect: 'manual' });
    };
    for (const own of [{ state: 'offline-own-state' }, {}] as { state?: string }[]) {
      const refused = await at({ client_id: 'offline', request_uri, ...(own.state ? { state: own.state } : {}) });
      const location = refused.headers.get('location') ?? '';
      // Before the fix: 303 to offline's redirect URI with state=app-secret-state.
      assert.doesNotMatch(location, /app-secret-state/, `${refused.status} ${location}`);
      if (location.startsWith(REDIRECT)) {
        const answer = new URL(location).searchParams;
        assert.equal(answer.get('error'), 'invalid_request_object');
        assert.equal(answer.get('state'), own.state ?? null);
      } else {
        assert.equal(refused.status, 400);
      }
    }
    // Not spent: the pushing client's own use of it still starts its sign-in.
    const own = await at({ client_id: 'app', request_uri });
    assert.equal(own.status, 303);
    assert.match(own.headers.get('location') ?? '', /\/interaction\//);
  });

  it("second factor skipped: after the password, consent, the engine's resume URL and another sign-in's form do not finish the sign-in (OIDC Core §3.1.2.3)", async () => {
    const secret = await enrolTotp('bob');
    const agent = new Agent();
    const { page } = await authorize(agent, 'app');
    const second = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.url}`);
    const csrf = second.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const post = (path: string, fields: Record<string, string>) =>
      agent.follow(`${server.url}${new URL(second.url).pathname}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf, ...fields }),
      }, REDIRECT);
    // Straight to consent: the request is still waiting for a sign-in.
    const confirm = await post('/confirm', {});
    assert.equal(confirm.status, 400);
    assert.ok(!confirm.url.startsWith(REDIRECT));
    // The engine's resume URL (the browser holds its cookie): the login prompt is asked again.
    const resumed = await agent.follow(`${server.url}/auth/${new URL(second.url).pathname.split('/').pop()}`, {}, REDIRECT);
    assert.ok(!resumed.url.startsWith(REDIRECT) || new URL(resumed.url).searchParams.get('error'), 'no code by resuming');
    assert.ok(!new URL(resumed.url).searchParams.get('code'));
    // A right code typed into another browser's sign-in of the same person: that interaction is not its own.
    const other = new Agent();
    const stranger = await other.follow(`${server.url}${new URL(second.url).pathname}/second-factor`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, method: 'totp', code: codeFor(secret) }),
    }, REDIRECT);
    assert.ok(stranger.status === 400 || stranger.status === 403, `got ${stranger.status}`);
    assert.ok(!stranger.url.startsWith(REDIRECT));
  });

  it("another person's recovery code does not pass someone's second factor (issue 15)", async () => {
    const aliceSub = (await server.accounts.findByUsername('alice'))!.sub;
    const [aliceCode] = await server.secondFactors.recoveryCodes.generate(aliceSub);
    const agent = new Agent();
    const { page } = await authorize(agent, 'app');
    const second = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const refused = await agent.submit(second, '/second-factor', { method: 'recovery', code: aliceCode! }, REDIRECT);
    assert.equal(refused.status, 401);
  });

  it('CIMD SSRF: a client_id URL naming a loopback address, by name, literal, IPv6, IPv4-mapped or decimal form, is never fetched (draft-ietf-oauth-client-id-metadata-document §6, RFC 9700 §4.16)', async () => {
    let connections = 0;
    const listener = net.createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const port = (listener.address() as net.AddressInfo).port;
    try {
      for (const host of ['localhost', '127.0.0.1', '[::1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '2130706433', '0x7f000001', '127.1', 'localhost.']) {
        const clientId = `https://${host}:${port}/client.json`;
        const url = new URL(`${server.issuer}/auth`);
        url.search = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: `https://${host}:${port}/cb`, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }).toString();
        const page = await new Agent().follow(url.href, {}, 'https://');
        assert.ok(page.status >= 400 && page.status < 500, `${host}: ${page.status}`);
        assert.ok(page.url.startsWith(server.url), `${host}: never redirected (${page.url})`);
      }
      assert.equal(connections, 0, 'no connection reached the loopback listener');
    } finally {
      listener.close();
    }
  });

  it('phishing through client_name on the device confirmation page: the name is text, never markup (RFC 8628 §5.4)', async () => {
    const name = '<b>Your bank</b><a href="https://evil.example/">verify</a><script>alert(1)</script>';
    const created = await admin('/clients', {
      method: 'POST',
      body: JSON.stringify({ client_id: 'shady-tv', client_name: name, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const metadata = configs.app!.serverMetadata();
    const started = (await (
      await fetch(metadata.device_authorization_endpoint!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'shady-tv', scope: 'openid' }) })
    ).json()) as Record<string, string>;
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    assert.equal(confirm.status, 200);
    assert.ok(!confirm.html.includes('<b>Your bank</b>') && !confirm.html.includes('<script>alert') && !confirm.html.includes('href="https://evil.example/"'));
    assert.ok(confirm.html.includes('&lt;b&gt;Your bank&lt;/b&gt;'), 'shown as text');
  });

  it('bidi controls and invisible characters in client_name: refused wherever a client is written; a name stored before is isolated (<bdi>) where pages put it in a sentence, so it cannot reverse the warning or the domain around it (RFC 8628 §5.4, Unicode UAX #9)', async () => {
    // U+202E makes what follows it in the paragraph read right to left: "Notes<RLO> asks to: …" shows
    // the page's own words reversed, and a device's warning or the consent page's domain with them.
    for (const name of ['\u202Egro.knab', 'Notes\u2067', 'Not\u200Bes', 'Notes\u0007', 'Notes\u2028x']) {
      const registered = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_name: name, redirect_uris: [REDIRECT] }) });
      assert.equal(registered.status, 400, `RFC 7591, ${JSON.stringify(name)}: ${registered.status}`);
      assert.equal(((await registered.json()) as { error: string }).error, 'invalid_client_metadata');
      const created = await admin('/clients', { method: 'POST', body: JSON.stringify({ client_id: `bidi-${name.codePointAt(name.length - 1)}`, client_name: name, client_secret: SECRET, redirect_uris: [REDIRECT] }) });
      assert.equal(created.status, 400, `admin API, ${JSON.stringify(name)}: ${created.status}`);
    }
    const rtl = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_name: 'ملاحظات', redirect_uris: [REDIRECT] }) });
    assert.equal(rtl.status, 201, 'a name in a right-to-left script is a name');

    // Clients stored before such names were refused (written straight into the store): a right-to-left override.
    const stored = adapterFactory(server.kv)('Client');
    await stored.upsert('rlo-tv', { client_id: 'rlo-tv', client_name: RLO_NAME, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] }, 0);
    await stored.upsert('rlo-app', { client_id: 'rlo-app', client_name: RLO_NAME, client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }, 0);
    const isolated = (html: string, where: string) => {
      const escaped = RLO_NAME.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const all = html.match(new RegExp(escaped, 'g'))?.length ?? 0;
      const inBdi = html.match(new RegExp(`<bdi>${escaped}</bdi>`, 'g'))?.length ?? 0;
      assert.ok(all > 0, `${where}: the name is shown`);
      assert.equal(inBdi, all, `${where}: every occurrence of the name is isolated`);
    };
    const started = (await (
      await fetch(configs.app!.serverMetadata().device_authorization_endpoint!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Smart TV' }, body: new URLSearchParams({ client_id: 'rlo-tv', scope: 'openid' }) })
    ).json()) as Record<string, string>;
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    assert.equal(confirm.status, 200);
    isolated(confirm.html, 'device confirmation');
    assert.match(confirm.html, /by a program that calls itself “<bdi>Smart TV<\/bdi>”/, "the device's own word for itself is quoted as such, and isolated");
    configs['rlo-app'] = await discover('rlo-app', SECRET);
    const { page } = await authorize(new Agent(), 'rlo-app');
    isolated(page.html, 'login page');
  });

  it("first-party pages: a client copying the account page's name and redirect URI gets no implicit consent; the page's own client cannot be sent elsewhere (issue 15)", async () => {
    const created = await admin('/clients', {
      method: 'POST',
      body: JSON.stringify({ client_id: 'copycat', client_name: 'Latchkey account page', token_endpoint_auth_method: 'none', redirect_uris: [`${server.issuer}/account/callback`, REDIRECT] }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    configs.copycat = await discover('copycat');
    const agent = new Agent();
    const { page } = await authorize(agent, 'copycat');
    const signedIn = await signInSteps(agent, page, { username: 'frank', password: PASSWORD, login: 'if-shown', consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(signedIn), `the copy asks consent, got ${signedIn.url}`);
    // The account page's own client, with an app's redirect URI: an error page, no redirect.
    const url = new URL(`${server.issuer}/auth`);
    url.search = new URLSearchParams({ client_id: 'latchkey-account', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }).toString();
    const elsewhere = await agent.follow(url.href, {}, REDIRECT);
    assert.equal(elsewhere.status, 400);
    assert.ok(!elsewhere.url.startsWith(REDIRECT));
  });

  it("clickjacking: the account and device pages cannot be framed (frame-ancestors 'none')", async () => {
    const agent = new Agent();
    for (const path of ['/account', '/device']) {
      const page = await agent.follow(`${server.url}${path}`, {}, 'never');
      const csp = page.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/, `${path}: ${csp}`);
    }
  });

  it('odd input at every new endpoint (passkey, second factor, upstream, device, account page, CIMD ids, acr in claims): an answer, never a 500 (RFC 6749 §4.1.2.1)', async () => {
    const agent = new Agent();
    const { page } = await authorize(agent, 'app');
    const uid = new URL(page.url).pathname.split('/').pop()!;
    const csrf = page.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const results: { status: number; what: string }[] = [];
    const send = async (path: string, body: string, type = 'application/x-www-form-urlencoded', method = 'POST') => {
      const r = await agent.follow(`${server.url}${path}`, method === 'GET' ? {} : { method, headers: { 'content-type': type }, body }, 'https://app.example.test');
      results.push({ status: r.status, what: `${path} ${type} ${body.slice(0, 80)}` });
    };
    const creds = ['[]', 'null', '1', '"x"', '{}', '{"id":1}', '{"id":"a","response":null}', '{"id":"a","response":{"userHandle":"AAAA"}}', '{"id":"a","response":{"userHandle":"X19wcm90b19f","clientDataJSON":1,"authenticatorData":[],"signature":{}},"type":"public-key","rawId":"a"}', '{"id":"a","rawId":"a","type":"public-key","response":{"userHandle":"' + Buffer.from('constructor').toString('base64url') + '","clientDataJSON":"e30","authenticatorData":"","signature":""}}'];
    for (const c of creds) await send(`/interaction/${uid}/passkey`, new URLSearchParams({ csrf, credential: c }).toString());
    await send(`/interaction/${uid}/passkey`, `csrf=${csrf}&credential=` + 'a'.repeat(20000));
    await send(`/interaction/${uid}/passkey`, JSON.stringify({ csrf, credential: '{}' }), 'application/json');
    await send(`/interaction/${uid}/second-factor`, `csrf=${csrf}&method=totp&code=1&code=2`);
    await send(`/interaction/${uid}/second-factor`, `csrf=${csrf}&method[]=totp&code=123456`);
    await send(`/interaction/${uid}/upstream/%2e%2e`, `csrf=${csrf}`);
    await send(`/interaction/${uid}/upstream/__proto__`, `csrf=${csrf}`);
    await send(`/interaction/${uid}/upstream/constructor`, `csrf=${csrf}`);
    await send(`/interaction/${uid}/unmet`, `csrf=${csrf}&x=1`, 'text/plain');
    await send(`/upstream/__proto__/callback?state=a&code=b`, '', 'text/plain', 'GET');
    await send(`/upstream/constructor/callback?state[]=a&code=b`, '', 'text/plain', 'GET');
    await send(`/upstream/x/callback?state=a&state=b`, '', 'text/plain', 'GET');
    await send(`/upstream/__proto__/backchannel-logout`, 'logout_token=a.b.c');
    await send(`/upstream/x/signed-out?handle[]=a`, '', 'text/plain', 'GET');
    await send(`/device?user_code[]=a`, '', 'text/plain', 'GET');
    await send(`/device`, 'user_code=a&user_code=b');
    await send(`/device`, '{"user_code":1}', 'application/json');
    await send(`/account/passkeys/add`, 'a=b');
    await send(`/account/sessions/sign-out`, '{"session":[1]}', 'application/json');
    await send(`/account/sign-in?x=1`, '', 'text/plain', 'GET');
    await send(`/account/callback?error[]=1`, '', 'text/plain', 'GET');
    await send(`/auth?client_id=https%3A%2F%2Fexample.com%2F%25zz&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fexample.com&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256`, '', 'text/plain', 'GET');
    await send(`/auth?client_id=https%3A%2F%2F%5B%3A%3A1%5D%3A1%2Fa&response_type=code`, '', 'text/plain', 'GET');
    await send(`/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256&claims=%7B%22id_token%22%3A%7B%22acr%22%3A%7B%22essential%22%3Atrue%2C%22values%22%3A%22mfa%22%7D%7D%7D`, '', 'text/plain', 'GET');
    await send(`/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256&claims=%7B%22id_token%22%3A%7B%22acr%22%3Anull%7D%7D`, '', 'text/plain', 'GET');
    await send(`/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'x'.repeat(43)}&code_challenge_method=S256&acr_values=__proto__%20constructor`, '', 'text/plain', 'GET');
    const failed = results.filter(({ status }) => status >= 500);
    assert.deepEqual(failed, [], 'no 500');
    assert.ok(results.length > 30);
  });

  it('an essential acr none of whose values is offered is a failed authentication at once, not a login page forever (OIDC Core §5.5.1.1)', async () => {
    const agent = new Agent();
    const { page } = await authorize(agent, 'app', { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:example:gold', 'urn:example:silver'] } } }) });
    assert.ok(page.url.startsWith(REDIRECT), `expected the app to be told, got ${page.status} ${page.url}`);
    const params = new URL(page.url).searchParams;
    assert.equal(params.get('error'), 'unmet_authentication_requirements');
    assert.equal(params.get('code'), null);
    // Voluntary (not essential) unknown values are ignored: the sign-in goes ahead.
    const voluntary = await authorize(new Agent(), 'app', { claims: JSON.stringify({ id_token: { acr: { values: ['urn:example:gold'] } } }) });
    assert.match(voluntary.page.html, /name="password"/);
  });

  it("passkeys: a replayed assertion, another person's passkey after a password, a userHandle naming someone else, and a counter going back are refused (WebAuthn L3 §7.2, §6.1.1)", async () => {
    const gina = await server.accounts.create('gina', PASSWORD);
    const hank = await server.accounts.create('hank', PASSWORD);
    const ginaKey = softPasskey();
    const hankKey = softPasskey();
    await registerSoftPasskeys(server, gina.sub, ginaKey);
    await registerSoftPasskeys(server, hank.sub, hankKey);
    const origin = new URL(server.issuer).origin;

    // The genuine use: the passkey alone signs in (the authenticator is what the test says it is).
    const agent = new Agent();
    const { page, verifier } = await authorize(agent, 'app');
    const genuine = assertion(ginaKey, origin, passkeyChallenge(page), gina.sub, 1);
    const done = await agent.submit(page, '/passkey', { credential: genuine }, REDIRECT);
    assert.equal((await tokensAt('app', done, verifier, agent)).claims()?.acr, 'phr');

    // The same assertion replayed in another sign-in: its challenge is not that sign-in's.
    const thief = new Agent();
    const stolen = await authorize(thief, 'app');
    const replayed = await thief.submit(stolen.page, '/passkey', { credential: genuine }, REDIRECT);
    assert.equal(replayed.status, 401);
    // Signed by gina's key but naming hank (userHandle): checked against hank's passkeys, refused.
    const named = await authorize(thief, 'app');
    const swapped = await thief.submit(named.page, '/passkey', { credential: assertion(ginaKey, origin, passkeyChallenge(named.page), hank.sub, 5) }, REDIRECT);
    assert.equal(swapped.status, 401);
    // A cloned authenticator: a counter not past the stored one.
    const clone = await authorize(thief, 'app');
    const cloned = await thief.submit(clone.page, '/passkey', { credential: assertion(ginaKey, origin, passkeyChallenge(clone.page), gina.sub, 1) }, REDIRECT);
    assert.equal(cloned.status, 401);
    // Made for another origin (a look-alike site relaying the challenge).
    const relay = await authorize(thief, 'app');
    const relayed = await thief.submit(relay.page, '/passkey', { credential: assertion(ginaKey, 'https://latchkey.example.evil', passkeyChallenge(relay.page), gina.sub, 9) }, REDIRECT);
    assert.equal(relayed.status, 401);

    // After gina's password (stolen), hank's own passkey does not pass as her second factor.
    const second = await authorize(thief, 'app');
    const factor = await signInSteps(thief, second.page, { username: 'gina', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.match(factor.html, /Confirm it is you/, 'the second-factor page (passkey only)');
    const other = await thief.submit(factor, '/passkey', { credential: assertion(hankKey, origin, passkeyChallenge(factor), hank.sub, 1) }, REDIRECT);
    assert.equal(other.status, 401);
    assert.ok(!other.url.startsWith(REDIRECT));
  });

  it("passkeys: a credential id already registered, to another person or to oneself, is refused at registration (WebAuthn L3 §7.1 step 26)", async () => {
    const ivy = await server.accounts.create('ivy', PASSWORD);
    await server.accounts.create('jack', PASSWORD);
    const ivyKey = softPasskey();
    await registerSoftPasskeys(server, ivy.sub, ivyKey);
    const origin = new URL(server.issuer).origin;
    // ivy's credential id is known to anyone who gets her second-factor page (allowCredentials);
    // she uses it once, as passkeys registered before the owner index existed are claimed then.
    const agent = new Agent();
    const { page } = await authorize(agent, 'app');
    const used = await agent.submit(page, '/passkey', { credential: assertion(ivyKey, origin, passkeyChallenge(page), ivy.sub, 1) }, REDIRECT);
    assert.ok(used.url.startsWith(REDIRECT) || isConsent(used), `ivy signed in with her passkey: ${used.status} ${used.url}`);

    const jack = new Agent();
    const accountPage = async () => {
      const shown = await jack.follow(`${server.issuer}/account`);
      return shown.url.endsWith('/account') ? shown : signInSteps(jack, shown, { username: 'jack', password: PASSWORD, login: 'required', consent: 'stop' });
    };
    const jackKey = softPasskey();
    // jack's attacker key under ivy's credential id: a 409 with the account page, never a 500.
    let shown = await accountPage();
    const copied = await jack.submit(shown, '/account/passkeys/add', { name: 'copied', credential: attestation(jackKey, origin, passkeyChallenge(shown), { id: ivyKey.id }) });
    assert.equal(copied.status, 409);
    assert.match(copied.html, /This passkey is registered already/);
    const jackSub = (await server.accounts.findByUsername('jack'))!.sub;
    assert.deepEqual((await server.secondFactors.records.read(jackSub)).passkeys, [], 'nothing was added to jack');
    // The same attestation under a fresh id is a genuine registration: the refusal was the id's.
    shown = await accountPage();
    const own = await jack.submit(shown, '/account/passkeys/add', { name: 'own', credential: attestation(jackKey, origin, passkeyChallenge(shown)) });
    assert.equal(own.status, 200, own.html.slice(0, 300));
    assert.match(own.html, /Passkey added/);
    // Registering the same credential again on one's own account is refused too.
    shown = await accountPage();
    const twice = await jack.submit(shown, '/account/passkeys/add', { name: 'again', credential: attestation(jackKey, origin, passkeyChallenge(shown)) });
    assert.equal(twice.status, 409);
    assert.equal((await server.secondFactors.records.read(jackSub)).passkeys.length, 1);
    // Once ivy removes her passkey (here by an operator's reset), its id is free again.
    await server.secondFactors.reset(ivy.sub);
    shown = await accountPage();
    const freed = await jack.submit(shown, '/account/passkeys/add', { name: 'freed', credential: attestation(jackKey, origin, passkeyChallenge(shown), { id: ivyKey.id }) });
    assert.equal(freed.status, 200, freed.html.slice(0, 300));
  });

  it(`passkeys: a person holds at most ${MAX_PASSKEYS}; the page then offers none, and one registered past the cap (a challenge shown before another was added) is refused with its credential id left free (third store-growth pass: before, a session added them without end)`, async () => {
    const lena = await server.accounts.create('lena', PASSWORD);
    const origin = new URL(server.issuer).origin;
    const agent = new Agent();
    const accountPage = () => agent.follow(`${server.issuer}/account`);
    // Given all but one, then signed in with the password and one of them (a session as strong as her sign-in).
    const keys = Array.from({ length: MAX_PASSKEYS - 1 }, () => softPasskey());
    await registerSoftPasskeys(server, lena.sub, ...keys);
    const second = await signInSteps(agent, await accountPage(), { username: 'lena', password: PASSWORD, login: 'required', consent: 'stop' });
    const signedIn = await agent.submit(second, '/passkey', { credential: assertion(keys[0]!, origin, passkeyChallenge(second), lena.sub, 1) });
    assert.ok(signedIn.url.endsWith('/account'), `${signedIn.status} ${signedIn.url}`);
    // One short of the cap: the page offers to add one, and the last is added.
    let shown = await accountPage();
    const last = await agent.submit(shown, '/account/passkeys/add', { name: 'last', credential: attestation(softPasskey(), origin, passkeyChallenge(shown)) });
    assert.match(last.html, /Passkey added/);
    shown = await accountPage();
    assert.doesNotMatch(shown.html, /passkey-enrol-form/, 'at the cap the page offers no registration');
    assert.match(shown.html, new RegExp(`You have ${MAX_PASSKEYS} passkeys, the most an account can have`));
    // A challenge shown one short of the cap, spent once another passkey made it full.
    await server.secondFactors.passkeys.remove(lena.sub, (await server.secondFactors.records.read(lena.sub)).passkeys[0]!.id);
    shown = await accountPage();
    await registerSoftPasskeys(server, lena.sub, softPasskey());
    const late = softPasskey();
    const refused = await agent.submit(shown, '/account/passkeys/add', { name: 'late', credential: attestation(late, origin, passkeyChallenge(shown)) });
    assert.equal(refused.status, 409, refused.html.slice(0, 300));
    assert.match(refused.html, /the most an account can have/);
    assert.equal((await server.secondFactors.records.read(lena.sub)).passkeys.length, MAX_PASSKEYS);
    // Refused, the credential id is not kept as lena's: another person registers it.
    const mona = new Agent();
    await server.accounts.create('mona', PASSWORD);
    const monaPage = await signInSteps(mona, await mona.follow(`${server.issuer}/account`), { username: 'mona', password: PASSWORD, login: 'required', consent: 'stop' });
    const theirs = await mona.submit(monaPage, '/account/passkeys/add', { name: 'late', credential: attestation(late, origin, passkeyChallenge(monaPage)) });
    assert.match(theirs.html, /Passkey added/, 'the refused registration kept its credential id claimed');
  });

  it("amr never claims a hardware-secured key (hwk) for a passkey no attestation vouched for: a software authenticator that registers with \"none\" attestation and says it is bound to one device (backup flags clear) signs in with amr swk, acr phr (RFC 8176 §2, WebAuthn L3 §6.1 flags)", async () => {
    await server.accounts.create('kit', PASSWORD);
    const origin = new URL(server.issuer).origin;
    const key = softPasskey();
    const agent = new Agent();
    const shown = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'kit', password: PASSWORD, login: 'required', consent: 'stop' });
    // flags UP|UV|AT, backup eligible and backed up clear: "single device", in the authenticator's own unsigned word.
    const added = await agent.submit(shown, '/account/passkeys/add', { name: 'soft', credential: attestation(key, origin, passkeyChallenge(shown)) });
    assert.match(added.html, /Passkey added/);
    const signedIn = new Agent();
    const { page, verifier } = await authorize(signedIn, 'app');
    const kitSub = (await server.accounts.findByUsername('kit'))!.sub;
    const done = await signedIn.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), kitSub, 1) }, REDIRECT);
    const claims = (await tokensAt('app', done, verifier, signedIn)).claims()!;
    assert.equal(claims.acr, 'phr', 'a passkey is phishing-resistant whatever holds its key');
    assert.ok(!(claims.amr as string[]).includes('hwk'), `no hardware key claimed: ${JSON.stringify(claims.amr)}`);
    assert.deepEqual(claims.amr, ['swk', 'mfa']);
  });

  /** Whether `agent`'s session still signs it in to the app silently (prompt=none): "signed in", or the error. */
  const silently = async (agent: Agent) => new URL((await authorize(agent, 'app', { prompt: 'none' })).page.url).searchParams.get('error') ?? 'signed in';
  const userinfo = async (accessToken: string) => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;

  it('a stolen passkey removed on the account page: the other sessions it signed in end with their tokens; those of another passkey or a password stay (WebAuthn L3 §13.4.6)', async () => {
    const kim = await server.accounts.create('kim', PASSWORD);
    const origin = new URL(server.issuer).origin;
    // A password-only session, from before kim had a passkey.
    const byPassword = new Agent();
    await signInSteps(byPassword, (await authorize(byPassword, 'app')).page, { username: 'kim', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.equal(await silently(byPassword), 'signed in');
    const [stolen, kept] = [softPasskey(), softPasskey()];
    await registerSoftPasskeys(server, kim.sub, stolen, kept);
    let counter = 1;
    const withPasskey = async (key: ReturnType<typeof softPasskey>, agent: Agent, start: Promise<{ page: Page; verifier: string }>) => {
      const { page, verifier } = await start;
      // The password step is not shown: kim's passkey alone signs in (discoverable credential).
      const done = await agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), kim.sub, (counter += 1)) }, REDIRECT);
      return { done, verifier };
    };
    // The thief's session, with the stolen passkey, and its access token.
    const thief = new Agent();
    const signedIn = await withPasskey(stolen, thief, authorize(thief, 'app'));
    const thiefTokens = await tokensAt('app', signedIn.done, signedIn.verifier, thief);
    assert.equal(await userinfo(thiefTokens.access_token), 200);
    // kim's other device, with the other passkey; and kim on the account page, with it too.
    const otherDevice = new Agent();
    const other = await withPasskey(kept, otherDevice, authorize(otherDevice, 'app'));
    await tokensAt('app', other.done, other.verifier, otherDevice);
    // A session signed in with the stolen passkey, then again (prompt=login) with the other one:
    // what it was granted in between still rests on the stolen one.
    const both = new Agent();
    await withPasskey(stolen, both, authorize(both, 'app'));
    await withPasskey(kept, both, authorize(both, 'app', { prompt: 'login' }));
    assert.equal(await silently(both), 'signed in');
    const owner = new Agent();
    const login = await owner.follow(`${server.issuer}/account`);
    const account = await owner.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), kim.sub, (counter += 1)) });
    assert.equal(new URL(account.url).pathname, '/account', `expected the account page, got ${account.status} ${account.url}`);

    const removed = await owner.submit(account, '/account/passkeys/remove', { id: stolen.id });
    assert.match(removed.url, /done=passkeys\.removed/);
    assert.equal(await silently(thief), 'login_required', "the stolen passkey's session ended");
    assert.equal(await userinfo(thiefTokens.access_token), 401, 'and its access token');
    assert.equal(await silently(both), 'login_required', 'a session the stolen passkey signed in before another sign-in ended too');
    assert.equal(await silently(otherDevice), 'signed in', "the other passkey's session stays");
    assert.equal(await silently(byPassword), 'signed in', 'the password session stays');
    assert.equal(new URL((await owner.follow(`${server.issuer}/account`)).url).pathname, '/account', 'the session that removed it stays');
  });

  // The engine's router also serves the resume at /AUTH/<uid> (any case, a trailing slash): the
  // refusal must hold under every spelling it serves.
  for (const [name, spelling] of [['lia', '/auth/'], ['lio', '/AUTH/']] as const) {
    it(`a sign-in with a stolen passkey held at its resume while the owner removes the passkey does not complete (resumed at ${spelling}<uid>): the app gets access_denied, no session is left`, async () => {
      const lia = await server.accounts.create(name, PASSWORD);
      const origin = new URL(server.issuer).origin;
      const [stolen, kept] = [softPasskey(), softPasskey()];
      await registerSoftPasskeys(server, lia.sub, stolen, kept);
      // The thief's sign-in is finished (the passkey verified), but the redirect to its resume is not followed yet.
      const thief = new Agent();
      const { page } = await authorize(thief, 'app');
      const held = await thief.submit(page, '/passkey', { credential: assertion(stolen, origin, passkeyChallenge(page), lia.sub, 1) }, `${server.issuer}/auth/`);
      assert.match(held.url, /\/auth\/[^/?]+$/, `expected the resume, got ${held.status} ${held.url}`);
      // Meanwhile lia removes the stolen passkey: no session of it exists yet to end.
      const owner = new Agent();
      const login = await owner.follow(`${server.issuer}/account`);
      const account = await owner.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), lia.sub, 2) });
      const removed = await owner.submit(account, '/account/passkeys/remove', { id: stolen.id });
      assert.match(removed.url, /done=passkeys\.removed/);

      let resumed = await thief.follow(held.url.replace('/auth/', spelling), {}, REDIRECT);
      if (isConsent(resumed)) resumed = await thief.submit(resumed, '/confirm', {}, REDIRECT);
      assert.equal(new URL(resumed.url).searchParams.get('error'), 'access_denied', `the app got ${resumed.url}`);
      assert.equal(await silently(thief), 'login_required', 'no session signed in with the removed passkey');
    });
  }

  it('a sign-in with a known password held at its resume while the owner changes the password does not complete: the app gets access_denied, no session is left', async () => {
    const lou = await server.accounts.create('lou', PASSWORD);
    // The thief's password sign-in is finished, but the redirect to its resume is not followed yet.
    const thief = new Agent();
    const { page } = await authorize(thief, 'app');
    const held = await thief.submit(page, '/login', { username: 'lou', password: PASSWORD }, `${server.issuer}/auth/`);
    assert.match(held.url, /\/auth\/[^/?]+$/, `expected the resume, got ${held.status} ${held.url}`);
    // Meanwhile lou changes the password (the account page's change, as the store sees it).
    assert.equal(await server.accounts.changePassword(lou.sub, PASSWORD, 'a different long passphrase'), true);

    let resumed = await thief.follow(held.url, {}, REDIRECT);
    if (isConsent(resumed)) resumed = await thief.submit(resumed, '/confirm', {}, REDIRECT);
    assert.equal(new URL(resumed.url).searchParams.get('error'), 'access_denied', `the app got ${resumed.url}`);
    assert.equal(await silently(thief), 'login_required', 'no session signed in with the changed password');

    // A sign-in with the password it has now completes as usual.
    const owner = new Agent();
    const again = await authorize(owner, 'app');
    let done = await owner.submit(again.page, '/login', { username: 'lou', password: 'a different long passphrase' }, REDIRECT);
    if (isConsent(done)) done = await owner.submit(done, '/confirm', {}, REDIRECT);
    assert.ok(new URL(done.url).searchParams.get('code'), `the app got ${done.url}`);
  });

  // The second factor of a thief who knows the password: a code read off the person's app, or one
  // of their recovery codes. The owner answers by setting the app up again, or by making new codes.
  for (const [name, factor] of [
    ['len', 'an authenticator-app code, and the owner sets the app up again'],
    ['lyn', 'a recovery code, and the owner makes new codes'],
  ] as const) {
    it(`a sign-in with a stolen password and ${factor} while it waits for its resume: the app gets access_denied, no session is left`, async () => {
      const person = await server.accounts.create(name, PASSWORD);
      const secret = await enrolTotp(name);
      const [recoveryCode] = await server.secondFactors.recoveryCodes.generate(person.sub);
      const thief = new Agent();
      const second = await signInSteps(thief, (await authorize(thief, 'app')).page, { username: name, password: PASSWORD, login: 'required', stopAt: REDIRECT });
      const stolen = factor.startsWith('an authenticator') ? { method: 'totp', code: codeFor(secret, 0) } : { method: 'recovery', code: recoveryCode! };
      const held = await thief.submit(second, '/second-factor', stolen, `${server.issuer}/auth/`);
      assert.match(held.url, /\/auth\/[^/?]+$/, `expected the resume, got ${held.status} ${held.url}`);
      // Meanwhile the owner acts, as the account page does (no session of the thief's exists yet to end).
      if (stolen.method === 'totp') {
        await server.secondFactors.totp.remove(person.sub);
        const again = await server.secondFactors.totp.begin(person.sub, name, 'test-session');
        assert.equal(await server.secondFactors.totp.confirm(person.sub, codeFor(again.secret, 1), 'test-session'), true);
      } else {
        await server.secondFactors.recoveryCodes.generate(person.sub);
      }

      let resumed = await thief.follow(held.url, {}, REDIRECT);
      if (isConsent(resumed)) resumed = await thief.submit(resumed, '/confirm', {}, REDIRECT);
      assert.equal(new URL(resumed.url).searchParams.get('error'), 'access_denied', `the app got ${resumed.url}`);
      assert.equal(await silently(thief), 'login_required', 'no session signed in with the old factor');
    });
  }

  it('an authenticator app removed, or recovery codes made anew, on the account page: the other sessions its codes signed in end; others stay', async () => {
    const lee = await server.accounts.create('lee', PASSWORD);
    const secret = await enrolTotp('lee');
    const [recoveryCode] = await server.secondFactors.recoveryCodes.generate(lee.sub);
    /** Password and `factor` from the page `start` leads to; past the consent page, if one is shown. */
    const withFactor = async (agent: Agent, start: Promise<Page>, factor: Record<string, string>) => {
      const second = await signInSteps(agent, await start, { username: 'lee', password: PASSWORD, login: 'required', stopAt: REDIRECT });
      const done = await agent.submit(second, '/second-factor', factor, REDIRECT);
      return isConsent(done) ? agent.submit(done, '/confirm', {}, REDIRECT) : done;
    };
    const byCode = new Agent();
    await withFactor(byCode, authorize(byCode, 'app').then(({ page }) => page), { method: 'totp', code: codeFor(secret, 0) });
    const byRecovery = new Agent();
    await withFactor(byRecovery, authorize(byRecovery, 'app').then(({ page }) => page), { method: 'recovery', code: recoveryCode! });
    assert.equal(await silently(byCode), 'signed in');
    assert.equal(await silently(byRecovery), 'signed in');
    const owner = new Agent();
    const account = await withFactor(owner, owner.follow(`${server.issuer}/account`), { method: 'totp', code: codeFor(secret, 1) });
    assert.equal(new URL(account.url).pathname, '/account', `expected the account page, got ${account.status} ${account.url}`);

    // New codes first (they are made only beside a second factor), then the app removed.
    const made = await owner.submit(account, '/account/recovery-codes', {});
    assert.equal(made.status, 200);
    assert.equal(await silently(byRecovery), 'login_required', 'the session an old recovery code signed in ended');
    assert.equal(await silently(byCode), 'signed in', "an app code's session stays");

    const removed = await owner.submit(await owner.follow(`${server.issuer}/account`), '/account/authenticator/remove', {});
    assert.match(removed.url, /done=authenticator\.removed/);
    assert.equal(await silently(byCode), 'login_required', 'the session its code signed in ended');
    assert.equal(new URL((await owner.follow(`${server.issuer}/account`)).url).pathname, '/account', 'the session that acted stays');
  });

  it("an operator's reset of a person's second factors (a lost phone) ends the sessions they signed in; a password-only one stays", async () => {
    await server.accounts.create('mia', PASSWORD);
    const byPassword = new Agent();
    await signInSteps(byPassword, (await authorize(byPassword, 'app')).page, { username: 'mia', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const secret = await enrolTotp('mia');
    const byCode = new Agent();
    const second = await signInSteps(byCode, (await authorize(byCode, 'app')).page, { username: 'mia', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const done = await byCode.submit(second, '/second-factor', { method: 'totp', code: codeFor(secret, 0) }, REDIRECT);
    if (isConsent(done)) await byCode.submit(done, '/confirm', {}, REDIRECT);
    assert.equal(await silently(byCode), 'signed in');
    assert.equal(await silently(byPassword), 'signed in');

    const reset = await admin('/users/mia/mfa/reset', { method: 'POST' });
    assert.equal(reset.status, 200);
    assert.equal(await silently(byCode), 'login_required', 'the session the lost factor signed in ended');
    assert.equal(await silently(byPassword), 'signed in', 'the password-only session stays');
  });

  /** What an app holding offline access got from a sign-in that `finish` completes from the page the request led to. */
  async function offlineTokens(agent: Agent, finish: (page: Page) => Promise<Page>) {
    const { page, verifier } = await authorize(agent, 'offline', { scope: 'openid offline_access', prompt: 'consent' });
    const tokens = await tokensAt('offline', await finish(page), verifier, agent);
    assert.ok(tokens.refresh_token, 'offline access gives a refresh token');
    return { refresh: tokens.refresh_token, access: tokens.access_token };
  }
  /** The person's sessions end (they signed out, or the sessions expired): offline access outlives them, by design. */
  async function endSessionsOf(username: string) {
    const sessions = new AccountSessions(server.kv, server.providers, server.accounts);
    for (const session of await sessions.list((await server.accounts.findByUsername(username))!.sub)) await sessions.end(session);
  }
  const OFFLINE = { id: 'offline', secret: SECRET };
  /**
   * Whether the refresh token still works; refused, it must be invalid_grant (RFC 6749 §5.2). It
   * rotates: `held.refresh` becomes the new one.
   */
  async function refreshes(held: { refresh: string }): Promise<boolean> {
    try {
      held.refresh = (await oidc.refreshTokenGrant(configs.offline!, held.refresh)).refresh_token!;
      return true;
    } catch (error) {
      assert.ok(error instanceof oidc.ResponseBodyError, String(error));
      assert.equal(error.error, 'invalid_grant');
      return false;
    }
  }
  const active = async (accessToken: string) => (await introspect(server.url, OFFLINE, accessToken)).active === true;

  it('a stolen passkey removed on the account page ends the offline access it got even after its session ended (signed out): the refresh token is invalid_grant, its access token inactive; another passkey’s stays', async () => {
    const nia = await server.accounts.create('nia', PASSWORD);
    const origin = new URL(server.issuer).origin;
    const [stolen, kept] = [softPasskey(), softPasskey()];
    await registerSoftPasskeys(server, nia.sub, stolen, kept);
    let counter = 1;
    const withPasskey = (key: ReturnType<typeof softPasskey>, agent: Agent) => (page: Page) =>
      agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), nia.sub, (counter += 1)) }, REDIRECT);
    const thief = new Agent();
    const stolenAccess = await offlineTokens(thief, withPasskey(stolen, thief));
    const owner = new Agent();
    const keptAccess = await offlineTokens(owner, withPasskey(kept, owner));
    // Both sign out (the thief left with the refresh token): no session is left to end.
    await endSessionsOf('nia');
    assert.equal(await refreshes(stolenAccess), true, 'offline access outlives signing out');

    const login = await owner.follow(`${server.issuer}/account`);
    const account = await owner.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), nia.sub, (counter += 1)) });
    assert.equal(new URL(account.url).pathname, '/account', `expected the account page, got ${account.status} ${account.url}`);
    const removed = await owner.submit(account, '/account/passkeys/remove', { id: stolen.id });
    assert.match(removed.url, /done=passkeys\.removed/);

    assert.equal(await refreshes(stolenAccess), false, "the stolen passkey's refresh token ends with it");
    assert.equal(await active(stolenAccess.access), false, 'and its access token');
    assert.equal(await active(keptAccess.access), true, "the other passkey's access token stays");
    assert.equal(await refreshes(keptAccess), true, "and its refresh token");
  });

  it("a passkey removal that fails half-way (the store refuses the revocation list) leaves the passkey to remove again, which then ends the thief's session and tokens", async () => {
    const rue = await server.accounts.create('rue', PASSWORD);
    const origin = new URL(server.issuer).origin;
    const [stolen, kept] = [softPasskey(), softPasskey()];
    await registerSoftPasskeys(server, rue.sub, stolen, kept);
    let counter = 1;
    const thief = new Agent();
    const stolenAccess = await offlineTokens(thief, (page) =>
      thief.submit(page, '/passkey', { credential: assertion(stolen, origin, passkeyChallenge(page), rue.sub, (counter += 1)) }, REDIRECT),
    );
    assert.equal(await silently(thief), 'consent_required', "the thief's session is live (the app was never consented to)");
    const owner = new Agent();
    const login = await owner.follow(`${server.issuer}/account`);
    const account = await owner.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), rue.sub, (counter += 1)) });
    assert.equal(new URL(account.url).pathname, '/account', `expected the account page, got ${account.status} ${account.url}`);

    // While the owner removes it, the store refuses the server the revocation list's keys (a failover in the middle).
    const raw = new Redis(server.env.REDIS_URL!);
    const prefix = server.config.redis.keyPrefix;
    try {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', `~${prefix}[^r]*`, `~${prefix}r[^e]*`, `~${prefix}re[^v]*`);
      const failed = await owner.submit(account, '/account/passkeys/remove', { id: stolen.id });
      assert.doesNotMatch(failed.url, /done=passkeys\.removed/, 'the removal cannot have succeeded');
    } finally {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
      raw.disconnect();
    }
    const again = await owner.submit(await owner.follow(`${server.issuer}/account`), '/account/passkeys/remove', { id: stolen.id });
    assert.match(again.url, /done=passkeys\.removed/, `the passkey can be removed again: ${again.status} ${again.html.match(/class="error"[^>]*>([^<]*)/)?.[1] ?? ''}`);
    assert.equal(await silently(thief), 'login_required', "the thief's session ended");
    assert.equal(await refreshes(stolenAccess), false, 'and its refresh token');
    assert.equal(await active(stolenAccess.access), false, 'and its access token');
  });

  it("a stolen passkey removed on the account page forgets the consent the thief gave with it though its grant ended already (signed out): the app asks the owner again; a consent given with the other passkey stays", async () => {
    const ula = await server.accounts.create('ula', PASSWORD);
    const origin = new URL(server.issuer).origin;
    const [stolen, kept] = [softPasskey(), softPasskey()];
    await registerSoftPasskeys(server, ula.sub, stolen, kept);
    let counter = 1;
    const signIn = async (agent: Agent, client: string, key: ReturnType<typeof softPasskey>) => {
      const { page, verifier } = await authorize(agent, client, { prompt: 'consent' });
      const done = await agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), ula.sub, (counter += 1)) }, REDIRECT);
      await tokensAt(client, done, verifier, agent);
    };
    // The thief lets the app in with the stolen passkey, then signs out: the grant (no offline access) ends, the consent stays.
    const thief = new Agent();
    await signIn(thief, 'app', stolen);
    const signOut = await thief.follow(`${server.issuer}/session/end`);
    assert.match((await thief.submit(signOut, '/session/end/confirm', { logout: 'yes' })).url, /\/session\/end\/success/);
    // The owner lets another app in with the other passkey.
    await signIn(new Agent(), 'offline', kept);
    const owner = new Agent();
    const login = await owner.follow(`${server.issuer}/account`);
    const account = await owner.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), ula.sub, (counter += 1)) });
    assert.match((await owner.submit(account, '/account/passkeys/remove', { id: stolen.id })).url, /done=passkeys\.removed/);

    const atApp = await authorize(owner, 'app');
    assert.ok(isConsent(atApp.page), `the thief's consent outlived the passkey: the app got the owner's code silently (${atApp.page.status} ${atApp.page.url})`);
    const atOther = await authorize(owner, 'offline');
    assert.ok(atOther.page.url.startsWith(REDIRECT), `the consent given with the other passkey stays (${atOther.page.status} ${atOther.page.url})`);
  });

  it('a passkey removed ends the offline access a single sign-on got with it, the grant made at the authorization endpoint from a remembered consent (no consent step, no resume)', async () => {
    const ona = await server.accounts.create('ona', PASSWORD);
    const origin = new URL(server.issuer).origin;
    // Offline access consented to with the password alone, before ona had a passkey: remembered, and it stays.
    const first = new Agent();
    const byPassword = await offlineTokens(first, (page) => signInSteps(first, page, { username: 'ona', password: PASSWORD, login: 'required', stopAt: REDIRECT }));
    await endSessionsOf('ona');
    const key = softPasskey();
    await registerSoftPasskeys(server, ona.sub, key);
    let counter = 1;
    const withPasskey = (agent: Agent) => (page: Page) => agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), ona.sub, (counter += 1)) }, REDIRECT);
    // Signed in with the passkey at another app; then the offline app, by single sign-on: straight back with a code.
    const device = new Agent();
    const app = await authorize(device, 'app');
    await tokensAt('app', await withPasskey(device)(app.page), app.verifier, device);
    const sso = await authorize(device, 'offline', { scope: 'openid offline_access' });
    assert.ok(sso.page.url.startsWith(REDIRECT), `expected single sign-on without a step, got ${sso.page.status} ${sso.page.url}`);
    const tokens = await tokensAt('offline', sso.page, sso.verifier, device);
    const bySso = { refresh: tokens.refresh_token!, access: tokens.access_token };
    await endSessionsOf('ona');

    const owner = new Agent();
    const login = await owner.follow(`${server.issuer}/account`);
    const account = await withPasskey(owner)(login);
    assert.equal(new URL(account.url).pathname, '/account', `expected the account page, got ${account.status} ${account.url}`);
    assert.match((await owner.submit(account, '/account/passkeys/remove', { id: key.id })).url, /done=passkeys\.removed/);

    assert.equal(await refreshes(bySso), false, "the single sign-on's refresh token ends with the passkey");
    assert.equal(await active(bySso.access), false, 'and its access token');
    assert.equal(await refreshes(byPassword), true, "the password's offline access stays");
  });

  it("an authenticator app removed on the account page, or an operator's reset of the second factors, ends the offline access a sign-in with it got after its session ended; a password-only one stays", async () => {
    /** Password and, when `secret` is given, a code: offline access for the app, then every session of the person ends. */
    const signIns = async (username: string, secret?: string) => {
      const agent = new Agent();
      return offlineTokens(agent, async (page) => {
        const next = await signInSteps(agent, page, { username, password: PASSWORD, login: 'required', consent: 'stop', stopAt: REDIRECT });
        return secret ? agent.submit(next, '/second-factor', { method: 'totp', code: codeFor(secret, 0) }, REDIRECT) : next;
      });
    };
    for (const [username, removal] of [
      ['noa', 'account page'],
      ['nora', 'operator'],
    ] as const) {
      await server.accounts.create(username, PASSWORD);
      const byPassword = await signIns(username);
      const secret = await enrolTotp(username);
      const byCode = await signIns(username, secret);
      await endSessionsOf(username);
      assert.equal(await refreshes(byCode), true, 'offline access outlives signing out');

      if (removal === 'account page') {
        const owner = new Agent();
        const second = await signInSteps(owner, await owner.follow(`${server.issuer}/account`), { username, password: PASSWORD, login: 'required', consent: 'stop' });
        const account = await owner.submit(second, '/second-factor', { method: 'totp', code: codeFor(secret, 1) });
        assert.equal(new URL(account.url).pathname, '/account', `expected the account page, got ${account.status} ${account.url}`);
        const removed = await owner.submit(account, '/account/authenticator/remove', {});
        assert.match(removed.url, /done=authenticator\.removed/);
      } else {
        assert.equal((await admin(`/users/${username}/mfa/reset`, { method: 'POST' })).status, 200);
      }

      assert.equal(await refreshes(byCode), false, `${removal}: the refresh token a code signed in for ends with the authenticator app`);
      assert.equal(await active(byCode.access), false, `${removal}: and its access token`);
      assert.equal(await refreshes(byPassword), true, `${removal}: a password-only sign-in's offline access stays`);
    }
  });

  it('a device approved with the authenticator app: resetting the second factors ends its offline access after the approving session ended (RFC 8628)', async () => {
    await server.accounts.create('pia', PASSWORD);
    const secret = await enrolTotp('pia');
    const metadata = configs.app!.serverMetadata();
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
    const started = (await (await fetch(metadata.device_authorization_endpoint!, form({ client_id: 'offline-tv', scope: 'openid offline_access' }))).json()) as Record<string, string>;
    const agent = new Agent();
    const entry = await agent.follow(`${server.issuer}/device`);
    const confirm = await agent.submit(entry, '/device', { user_code: started.user_code! });
    const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
    const second = await signInSteps(agent, login, { username: 'pia', password: PASSWORD, login: 'required', consent: 'stop' });
    const done = await agent.submit(second, '/second-factor', { method: 'totp', code: codeFor(secret, 0) });
    if (isConsent(done)) await agent.submit(done, '/confirm', {});
    const granted = (await (await fetch(metadata.token_endpoint!, form({ grant_type: DEVICE_GRANT, device_code: started.device_code!, client_id: 'offline-tv' }))).json()) as Record<string, string>;
    assert.ok(granted.refresh_token, `the device gets offline access: ${JSON.stringify(granted)}`);
    const refresh = async (token: string) => (await (await fetch(metadata.token_endpoint!, form({ grant_type: 'refresh_token', refresh_token: token, client_id: 'offline-tv' }))).json()) as Record<string, string>;
    const refreshed = await refresh(granted.refresh_token);
    assert.ok(refreshed.refresh_token, `offline access outlives nothing yet: ${JSON.stringify(refreshed)}`);
    await endSessionsOf('pia');

    assert.equal((await admin('/users/pia/mfa/reset', { method: 'POST' })).status, 200);
    assert.equal((await refresh(refreshed.refresh_token)).error, 'invalid_grant', "the device's refresh token ends with the second factors that approved it");
  });

  it("a client cannot lift its second-factor requirement itself: an RFC 7592 update without require_mfa keeps it (RFC 7592 §2.2, only an operator lowers it)", async () => {
    const metadata = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' };
    const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    assert.equal(created.status, 201, await created.clone().text());
    const client = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    // An operator requires a second factor for this app's people.
    const required = await admin(`/clients/${encodeURIComponent(client.client_id)}`, { method: 'PUT', body: JSON.stringify({ ...metadata, require_mfa: true }) });
    assert.equal(required.status, 200, await required.clone().text());
    // The operator's change ended the app's registration access token: it cannot write itself back at all.
    const afterOperator = await fetch(client.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${client.registration_access_token}` },
      body: JSON.stringify({ ...metadata, client_id: client.client_id }),
    });
    assert.equal(afterOperator.status, 401, await afterOperator.clone().text());
    // An app that required it of itself at registration (or whoever holds its registration access
    // token) writes itself back without it, or with false: kept.
    const selfRequired = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...metadata, require_mfa: true }) });
    assert.equal(selfRequired.status, 201, await selfRequired.clone().text());
    const own = (await selfRequired.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string; require_mfa?: boolean };
    assert.equal(own.require_mfa, true);
    for (const lifted of [{}, { require_mfa: false }]) {
      const updated = await fetch(own.registration_client_uri, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${own.registration_access_token}` },
        body: JSON.stringify({ ...metadata, ...lifted, client_id: own.client_id }),
      });
      assert.equal(updated.status, 200, await updated.clone().text());
      const answer = (await updated.json()) as { require_mfa?: boolean; registration_access_token?: string };
      assert.equal(answer.require_mfa, true, `still required after ${JSON.stringify(lifted)}`);
      // The engine rotates the registration access token on every update.
      own.registration_access_token = answer.registration_access_token ?? own.registration_access_token;
    }
    // And it holds at sign-in, for both: a password-only person is asked to set up a second factor.
    for (const id of [client.client_id, own.client_id]) {
      configs.selfish = await discover(id);
      const agent = new Agent();
      const { page } = await authorize(agent, 'selfish');
      const afterPassword = await signInSteps(agent, page, { username: 'frank', password: PASSWORD, login: 'if-shown', stopAt: REDIRECT });
      assert.equal(afterPassword.status, 403, `${id}: got ${afterPassword.status} ${afterPassword.url}`);
    }
    // An operator can still lift it.
    const lifted = await admin(`/clients/${encodeURIComponent(own.client_id)}`, { method: 'PUT', body: JSON.stringify({ ...metadata, require_mfa: false }) });
    assert.equal(((await lifted.json()) as { require_mfa?: boolean }).require_mfa, false);
  });

  it("a client's logo_uri on a host that smuggles a CSP directive (https://cdn.example;sandbox/…) is refused, and never reaches the account page's Content-Security-Policy, where it would stop its forms (withdrawing the app among them)", async () => {
    await server.accounts.create('gwen', PASSWORD);
    const metadata = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'Sticky', logo_uri: 'https://cdn.app.example.test/logo.png' };
    // Registered with a bad logo (or policy link) outright: refused.
    for (const [name, value] of [['logo_uri', 'https://cdn.app.example.test;sandbox/logo.png'], ['policy_uri', 'https://app.example.test;form-action/privacy']] as const) {
      const refused = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...metadata, [name]: value }) });
      assert.equal(refused.status, 400, `${name}: ${await refused.clone().text()}`);
      assert.equal(((await refused.json()) as { error: string }).error, 'invalid_client_metadata');
    }
    // Registered clean, given access by gwen, then changed by its registration access token (RFC 7592).
    const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    assert.equal(created.status, 201, await created.clone().text());
    const client = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    configs.sticky = await discover(client.client_id);
    const agent = new Agent();
    const { page } = await authorize(agent, 'sticky');
    const back = await signInSteps(agent, page, { username: 'gwen', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), `gwen allowed Sticky, got ${back.status} ${back.url}`);
    const changed = await fetch(client.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${client.registration_access_token}` },
      body: JSON.stringify({ ...metadata, client_id: client.client_id, logo_uri: 'https://cdn.app.example.test;sandbox/logo.png' }),
    });
    assert.equal(changed.status, 400, `the change is refused: ${await changed.clone().text()}`);
    // Gwen's account page: img-src widened by the logo's origin alone, no directive of the app's, and withdrawing works.
    const account = await agent.follow(`${server.issuer}/account`);
    assert.equal(account.url, `${server.issuer}/account`);
    const csp = account.headers.get('content-security-policy') ?? '';
    const names = csp.split(';').map((directive) => directive.trim().split(' ')[0]);
    assert.deepEqual(names.filter((name) => name === 'sandbox'), [], csp);
    // form-action is ours alone (redteam-web-2), none of the app's.
    assert.deepEqual(csp.split(';').map((directive) => directive.trim()).filter((directive) => directive.startsWith('form-action')), ["form-action 'self'"], csp);
    assert.match(csp, /img-src [^;]*https:\/\/cdn\.app\.example\.test(;|$)/, csp);
    const form = formIn(account.html, '/apps/withdraw');
    const withdrawn = await agent.request(new URL(form.action, account.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, client: client.client_id }),
    });
    assert.equal(withdrawn.status, 303);
  });
});
