/**
 * The tenth fresh-eyes pass over passkeys, second factors and upstreams (docs/security-passes.md,
 * "passkeys, second factors and upstream providers, tenth pass"), black box: a running Latchkey on a
 * real Redis, a cookie-keeping agent as the browser, openid-client as the app, the fake upstream.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signedInToAccountPage, startAuthorization } from '../helpers/sign-in.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const UPSTREAM_SECRET = 'upstream-client-secret-with-plenty-of-entropy-012345';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('passkeys, second factors and upstreams, tenth pass (black box)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
      ],
    });
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

  it("an app's max_age=60 is asked of the upstream and its auth_time checked: an upstream session of two hours ago is no sign-in within it; a spelling the engine once took for the number (\" 60\", \"60.0\", \"6e1\", \"+60\") is invalid_request before any upstream is asked (OIDC Core §3.1.2.1)", async () => {
    // The eleventh spec-letter pass made max_age decimal digits only (patches/max-age-digits.ts): the
    // other spellings, which this test passed through to the upstream, are refused at /auth now.
    for (const maxAge of [' 60', '60.0', '6e1', '+60']) {
      fake.state.maxAge = null;
      const { page } = await startAuthorization(new Agent(), app, REDIRECT, { max_age: maxAge, upstream: 'fake' });
      const answer = new URL(page.url).searchParams;
      assert.ok(page.url.startsWith(REDIRECT), `max_age=${JSON.stringify(maxAge)}: ${page.status} ${page.url}`);
      assert.equal(answer.get('error'), 'invalid_request', `max_age=${JSON.stringify(maxAge)}`);
      assert.equal(answer.get('code'), null);
      assert.equal(fake.state.maxAge, null, `max_age=${JSON.stringify(maxAge)}: no upstream asked`);
    }
    // The upstream ignores max_age and answers from a session it signed in two hours ago.
    fake.state.authTime = Math.floor(Date.now() / 1000) - 7200;
    fake.state.sub = 'stale-person';
    const { page } = await startAuthorization(new Agent(), app, REDIRECT, { max_age: '60', upstream: 'fake' });
    assert.ok(!page.url.startsWith(REDIRECT) && !isConsent(page), `no code, nor a consent page on the way to one: ${page.status} ${page.url}`);
    assert.equal(page.status, 403);
    assert.match(page.html, /Sign-in not completed/);
    assert.equal(fake.state.maxAge, '60', 'max_age=60 is passed on');
  });

  it('a device authorization asking a fresh sign-in (max_age=0), signed in at /device through an upstream: the upstream is asked for a fresh sign-in too, and its session of two hours ago does not answer for the person (OIDC Core §3.1.2.1, RFC 8628)', async () => {
    // The upstream ignores prompt=login and answers from a session it signed in two hours ago.
    fake.state.authTime = Math.floor(Date.now() / 1000) - 7200;
    fake.state.sub = 'device-person';
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'tv', ...params }) });
    const started = (await (await fetch(`${server.url}/device/auth`, form({ scope: 'openid', max_age: '0' }))).json()) as Record<string, string>;
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
    let after = await agent.submit(login, '/upstream/fake', {});
    if (isConsent(after)) after = await agent.submit(after, '/confirm', {});
    const tokens = (await (await fetch(`${server.url}/token`, form({ grant_type: DEVICE_GRANT, device_code: started.device_code! }))).json()) as Record<string, string>;
    assert.equal(tokens.id_token, undefined, `no ID token: ${tokens.id_token && Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString()}`);
    assert.equal(after.status, 403, `the upstream's stale answer is refused: ${after.status} ${after.url}`);
    assert.match(after.html, /Sign-in not completed/);
    assert.equal(fake.state.prompt, 'login', 'prompt=login is asked of the upstream');
    assert.equal(fake.state.maxAge, '0', 'as max_age=0 too');
  });

  it('a device authorization asking a fresh sign-in (max_age=0), approved in a browser that signed in to another app after it through an upstream answering from its session of two hours ago: the sign-in is asked again at /device, and the device waits (OIDC Core §3.1.2.1)', async () => {
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'tv', ...params }) });
    const started = (await (await fetch(`${server.url}/device/auth`, form({ scope: 'openid', max_age: '0' }))).json()) as Record<string, string>;
    // A second later (the request's and the sign-in's seconds apart), the browser signs in to an app
    // that asks no max_age, through the upstream, which answers from its session of two hours ago.
    await new Promise((done) => setTimeout(done, 1100));
    fake.state.authTime = Math.floor(Date.now() / 1000) - 7200;
    fake.state.sub = 'device-person-elsewhere';
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT, { upstream: 'fake' });
    const back = isConsent(page) ? await agent.submit(page, '/confirm', {}, REDIRECT) : page;
    assert.ok(new URL(back.url).searchParams.get('code'), `signed in at the app: ${back.status} ${back.url}`);

    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    const next = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.ok(!isConsent(next) && next.html.includes('name="password"'), `the sign-in is asked again, not the consent: ${next.status} ${next.url}`);
    const polled = (await (await fetch(`${server.url}/token`, form({ grant_type: DEVICE_GRANT, device_code: started.device_code! }))).json()) as Record<string, string>;
    assert.equal(polled.id_token, undefined);
    assert.equal(polled.error, 'authorization_pending');
  });

  it('a passkey assertion whose flags no authenticator sends is refused at the login page: backed up but not backup-eligible (BS without BE), verified but not present (UV without UP); the same key with UP and UV signs in (WebAuthn L3 §6.1, §7.2 steps 16, 17)', async () => {
    const person = await server.accounts.create('flags-person', 'a passphrase nobody types here');
    const key = softPasskey();
    await registerSoftPasskeys(server, person.sub, key);
    const origin = new URL(server.issuer).origin;
    const agent = new Agent();
    for (const [what, flags] of [['BS without BE', 0x15], ['UV without UP', 0x04]] as const) {
      const { page } = await startAuthorization(agent, app, REDIRECT);
      const refused = await agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), person.sub, 1, { flags }) }, REDIRECT);
      assert.equal(refused.status, 401, `${what}: ${refused.status} ${refused.url}`);
    }
    const { page } = await startAuthorization(agent, app, REDIRECT);
    const signedIn = await agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), person.sub, 1) }, REDIRECT);
    assert.ok(signedIn.url.startsWith(REDIRECT) || isConsent(signedIn), `UP and UV: ${signedIn.status} ${signedIn.url}`);
  });

  it('recovery codes are not made while the person has no passkey or authenticator app: whoever held only the password made them unseen, and once the person added an app they signed in with them as strongly as the person (acr mfa)', async () => {
    const password = 'a passphrase the thief also holds';
    const person = await server.accounts.create('codes-person', password);
    const thief = await signedInToAccountPage(server.issuer, 'codes-person', password);
    const made = await thief.agent.submit(thief.page, '/account/recovery-codes', {});
    assert.equal(made.status, 409, `${made.status} ${made.url}`);
    assert.doesNotMatch(made.html, /<ol class="codes"/, 'no codes shown');
    assert.match(made.html, /add one first/);
    assert.equal((await server.secondFactors.summary(person.sub)).recoveryCodesLeft, 0, 'and none kept');
  });
});
