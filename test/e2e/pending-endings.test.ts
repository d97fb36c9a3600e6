/**
 * What was begun before an ending cannot be finished after it: a device authorization pending when
 * its client is deleted (even once a client is made again with the id) or its person disabled, a
 * pushed authorization request (PAR) and a sign-in begun for a client deleted since, and a client
 * removal that failed half-way, run again. Each is driven as the device, the person (a cookie-keeping
 * agent) and the app would, against a real Redis.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import type { Clients } from '../../src/registration/clients.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'pending endings test password';
const REDIRECT = 'https://app.example.test/callback';
const insecure = { execute: [oidc.allowInsecureRequests] };

describe('e2e: what was begun before an ending cannot be finished after it (device authorizations, pushed requests, sign-ins)', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  let clients: Clients;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const settings = { redisUrl: redis.url, dir, port, env: { DEVICE_FLOW_POLL_INTERVAL: '1' } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    clients = server.clients;
    for (const name of ['alice', 'bob', 'carol', 'dave']) await server.accounts.create(name, PASSWORD);
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const deviceClient = (id: string) =>
    clients.add({ client_id: id, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] });
  const deviceConfig = (id: string) => oidc.discovery(new URL(server.issuer), id, { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);

  /** The device's one poll of the token endpoint: tokens, or the error code. */
  async function poll(clientId: string, deviceCode: string): Promise<string> {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: clientId }),
    });
    const body = (await response.json()) as { error?: string; access_token?: string };
    return body.access_token ? 'tokens' : body.error!;
  }

  /** The person at /device: types the code, confirms, signs in and allows; the last page. */
  async function approve(agent: Agent, userCode: string, username: string): Promise<Page> {
    const entry = await agent.follow(`${server.issuer}/device`);
    const confirm = await agent.submit(entry, '/device', { user_code: userCode });
    if (!/name="confirm"/.test(confirm.html)) return confirm;
    const next = await agent.submit(confirm, '/device', { confirm: 'yes' });
    return signInSteps(agent, next, { username, password: PASSWORD });
  }

  it('a device authorization pending when its client is deleted cannot be completed, nor by a client made again with the id', async () => {
    await deviceClient('tv');
    const device = await oidc.initiateDeviceAuthorization(await deviceConfig('tv'), { scope: 'openid offline_access' });
    assert.equal(await poll('tv', device.device_code), 'authorization_pending');
    await clients.remove('tv');

    const page = await approve(new Agent(), device.user_code, 'alice');
    assert.doesNotMatch(page.html, /Device connected/, `the person connected a deleted client's device (${page.status} ${page.url})`);
    assert.ok(page.status < 500, `never a 5xx (${page.status})`);
    assert.notEqual(await poll('tv', device.device_code), 'tokens');

    // An operator makes a client with the same id (another app, perhaps): the old device code is not its.
    await deviceClient('tv');
    const again = await approve(new Agent(), device.user_code, 'alice');
    assert.doesNotMatch(again.html, /Device connected/, `a deleted client's device code connects for the new client (${again.status} ${again.url})`);
    assert.notEqual(await poll('tv', device.device_code), 'tokens');
  });

  it('a client removal that fails before its device codes are ended leaves the client there, to remove again, which ends them', async () => {
    // The store refuses the index of pending requests (oidc:pending:…) to this connection only.
    const raw = new Redis(redis.url);
    const prefix = server.config.redis.keyPrefix;
    const spelled = 'oidc:pending:';
    const allowed = [...spelled].map((char, at) => `~${prefix}${spelled.slice(0, at)}[^${char}]*`);
    await raw.call('ACL', 'SETUSER', 'nopending', 'on', '>nopending-password', ...allowed, '&*', '+@all');
    raw.disconnect();
    const failing = { ...env, REDIS_URL: `redis://nopending:nopending-password@127.0.0.1:${redis.port}` };

    await deviceClient('projector');
    const device = await oidc.initiateDeviceAuthorization(await deviceConfig('projector'), { scope: 'openid' });
    assert.notEqual((await latchkey(failing, ['clients', 'remove', 'projector'])).status, 0, 'the removal fails half-way');
    const again = await latchkey(env, ['clients', 'remove', 'projector']);
    assert.equal(again.status, 0, `removed again: ${again.stderr}`);
    await deviceClient('projector');
    const page = await approve(new Agent(), device.user_code, 'alice');
    assert.doesNotMatch(page.html, /Device connected/, 'the device code outlived a removal run again');
  });

  it('a device authorization approved, then its client deleted before it polled: no tokens, nor for a client made again with the id', async () => {
    await deviceClient('console');
    const device = await oidc.initiateDeviceAuthorization(await deviceConfig('console'), { scope: 'openid offline_access' });
    const page = await approve(new Agent(), device.user_code, 'bob');
    assert.match(page.html, /Device connected/);
    await clients.remove('console');
    await deviceClient('console');
    assert.notEqual(await poll('console', device.device_code), 'tokens', "the deleted client's approved device code gets tokens");
  });

  it('a device authorization approved, then the person disabled before it polled: no tokens', async () => {
    await deviceClient('kiosk');
    const device = await oidc.initiateDeviceAuthorization(await deviceConfig('kiosk'), { scope: 'openid offline_access' });
    const page = await approve(new Agent(), device.user_code, 'carol');
    assert.match(page.html, /Device connected/);
    assert.equal((await latchkey(env, ['users', 'disable', 'carol'])).status, 0);
    assert.notEqual(await poll('kiosk', device.device_code), 'tokens', "a disabled person's approved device gets tokens");
  });

  it('a device authorization approved without offline access, then the browser that approved it signed out everywhere before it polled: no tokens', async () => {
    await deviceClient('radio');
    const agent = new Agent();
    const device = await oidc.initiateDeviceAuthorization(await deviceConfig('radio'), { scope: 'openid' });
    assert.match((await approve(agent, device.user_code, 'alice')).html, /Device connected/);
    const signOut = await agent.follow(`${server.issuer}/session/end`);
    assert.match((await agent.submit(signOut, '/session/end/confirm', { logout: 'yes' })).url, /\/session\/end\/success/);
    assert.notEqual(await poll('radio', device.device_code), 'tokens', 'a device approved in a session signed out since gets tokens');
  });

  it('a device authorization approved, then its grant revoked (grants revoke --user --client, as the account page withdraws) before it polled: no tokens', async () => {
    await deviceClient('speaker');
    const device = await oidc.initiateDeviceAuthorization(await deviceConfig('speaker'), { scope: 'openid offline_access' });
    assert.match((await approve(new Agent(), device.user_code, 'bob')).html, /Device connected/);
    const run = await latchkey(env, ['grants', 'revoke', '--user', 'bob', '--client', 'speaker']);
    assert.equal(run.status, 0, run.stderr);
    assert.notEqual(await poll('speaker', device.device_code), 'tokens', 'a device approved under a grant revoked since gets tokens');
  });

  it('a device authorization pending when its person is disabled: their live session cannot approve it', async () => {
    await deviceClient('watch');
    const agent = new Agent();
    // dave is signed in at Latchkey already (a first device), then the second one asks.
    const first = await oidc.initiateDeviceAuthorization(await deviceConfig('watch'), { scope: 'openid' });
    assert.match((await approve(agent, first.user_code, 'dave')).html, /Device connected/);
    const device = await oidc.initiateDeviceAuthorization(await deviceConfig('watch'), { scope: 'openid' });
    assert.equal((await latchkey(env, ['users', 'disable', 'dave'])).status, 0);
    const page = await approve(agent, device.user_code, 'dave');
    assert.doesNotMatch(page.html, /Device connected/);
    assert.notEqual(await poll('watch', device.device_code), 'tokens');
  });

  it('a sign-in begun for a deleted client, resumed once a client is made again with the id, sends no code to the old redirect URI', async () => {
    const metadata = { client_id: 'flip', client_secret: 'flip-client-secret-with-plenty-of-entropy-0123456', redirect_uris: [REDIRECT], grant_types: ['authorization_code'] };
    await clients.add(metadata);
    const app = await oidc.discovery(new URL(server.issuer), 'flip', metadata.client_secret, oidc.ClientSecretBasic(metadata.client_secret), insecure);
    const params = async () => ({ redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
    // Begun: one at the login page, one (alice signed in already) at the consent page.
    const [atLogin, signedIn] = [new Agent(), new Agent()];
    const login = await atLogin.follow(oidc.buildAuthorizationUrl(app, await params()).href, {}, REDIRECT);
    const consent = await signInSteps(signedIn, await signedIn.follow(oidc.buildAuthorizationUrl(app, await params()).href, {}, REDIRECT), { username: 'alice', password: PASSWORD, consent: 'stop' });
    assert.match(consent.html, /\/confirm/);

    // An operator deletes the client and makes one with the id for another app, at another address.
    await clients.remove('flip');
    await clients.add({ ...metadata, client_secret: 'another-flip-secret-with-plenty-of-entropy-012345', redirect_uris: ['https://new.example.test/cb'] });
    // At the login page, the resumed request meets the check of the client as registered now
    // (provider/patches/current-registration.ts); at the consent page, the consent step's own check
    // comes first, so that no consent given on the deleted client's page is kept for the new one.
    for (const [page, agent, steps, refusal] of [
      [login, atLogin, { username: 'bob', password: PASSWORD, stopAt: REDIRECT }, /invalid_redirect_uri/],
      [consent, signedIn, { username: 'alice', password: PASSWORD, stopAt: REDIRECT }, /changed since this sign-in began/],
    ] as const) {
      const done = await signInSteps(agent, page, steps);
      assert.ok(!done.url.startsWith(REDIRECT), `a code for the new client went to the deleted client's redirect URI: ${done.url}`);
      assert.equal(done.status, 400);
      assert.match(done.html, refusal);
    }
  });

  it('a pushed request (PAR) made before its client was deleted cannot be used, nor by a client made again with the id', async () => {
    const secret = 'par-app-client-secret-with-plenty-of-entropy-012345';
    const metadata = { client_id: 'par-app', client_secret: secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] };
    await clients.add(metadata);
    const app = await oidc.discovery(new URL(server.issuer), 'par-app', secret, oidc.ClientSecretBasic(secret), insecure);
    const params = async () => ({ redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
    const [first, second] = [await oidc.buildAuthorizationUrlWithPAR(app, await params()), await oidc.buildAuthorizationUrlWithPAR(app, await params())];
    // A person signed in already, so that nothing but the request stands between it and a code.
    const agent = new Agent();
    const signIn = await agent.follow(oidc.buildAuthorizationUrl(app, await params()).href, {}, REDIRECT);
    const back = await signInSteps(agent, signIn, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(back.url).searchParams.get('code'));
    const code = (page: Page) => (page.url.startsWith(REDIRECT) ? new URL(page.url).searchParams.get('code') : null);

    await clients.remove('par-app');
    const used = await agent.follow(first.href, {}, REDIRECT);
    assert.equal(code(used), null, "a deleted client's pushed request got a code");
    assert.ok(used.status < 500, `never a 5xx (${used.status})`);

    // An operator makes a client with the same id (another app, perhaps; its people consent again).
    await clients.add({ ...metadata, client_secret: 'another-app-with-the-same-id-and-its-own-secret-0' });
    const reused = await agent.follow(second.href, {}, REDIRECT);
    assert.equal(code(reused), null, `a deleted client's pushed request got a code for the client made again: ${reused.url}`);
    assert.ok(reused.status < 500 && /request_uri|not found|invalid/i.test(reused.url + reused.html), `refused as an unknown request_uri (${reused.status} ${reused.url})`);
  });
  it('a sign-out confirmed after an operator removed its post_logout_redirect_uri (or deleted the client) does not go there', async () => {
    const secret = 'bye-app-client-secret-with-plenty-of-entropy-0123456';
    const [removed, kept] = ['https://lost.example.test/bye', 'https://app.example.test/bye'];
    const metadata = { client_id: 'bye-app', client_secret: secret, redirect_uris: [REDIRECT], post_logout_redirect_uris: [removed, kept], grant_types: ['authorization_code'] };
    await clients.add(metadata);
    const app = await oidc.discovery(new URL(server.issuer), 'bye-app', secret, oidc.ClientSecretBasic(secret), insecure);
    /** A person signed in at the app, at the confirmation of its RP-initiated logout to `uri`. */
    const atConfirmation = async (uri: string) => {
      const agent = new Agent();
      const { page, verifier } = await startAuthorization(agent, app, REDIRECT);
      const back = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, stopAt: REDIRECT });
      const idToken = (await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier })).id_token!;
      const confirmation = await agent.follow(`${server.url}/session/end?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: uri, state: 'st' })}`);
      assert.match(confirmation.html, /session\/end\/confirm/);
      return { agent, confirmation };
    };
    const confirm = ({ agent, confirmation }: Awaited<ReturnType<typeof atConfirmation>>, logout: Record<string, string>) =>
      agent.submit(confirmation, 'session/end/confirm', logout, 'https://');

    // The person is at the confirmation when the operator takes the URI away (its domain lost, say).
    const [everywhere, onlyApp, stays] = [await atConfirmation(removed), await atConfirmation(removed), await atConfirmation(kept)];
    await clients.update('bye-app', { ...metadata, post_logout_redirect_uris: [kept] });
    for (const [pending, logout] of [[everywhere, { logout: 'yes' }], [onlyApp, {}]] as const) {
      const done = await confirm(pending, logout);
      assert.ok(!done.url.startsWith(removed), `sent to a post-logout redirect URI removed since: ${done.url}`);
      assert.ok(done.status < 400, `signed out all the same (${done.status} ${done.url})`);
    }
    assert.ok((await confirm(stays, { logout: 'yes' })).url.startsWith(`${kept}?state=st`), 'a URI still registered is followed');

    // The client deleted meanwhile: nowhere of its, nor once a client is made again with its id.
    const [deleted, remade] = [await atConfirmation(kept), await atConfirmation(kept)];
    await clients.remove('bye-app');
    assert.ok(!(await confirm(deleted, { logout: 'yes' })).url.startsWith(kept), "sent to a deleted client's post-logout redirect URI");
    await clients.add({ ...metadata, client_secret: 'another-bye-app-secret-with-plenty-of-entropy-01', post_logout_redirect_uris: ['https://new.example.test/bye'] });
    assert.ok(!(await confirm(remade, { logout: 'yes' })).url.startsWith(kept), "sent to a deleted client's URI once its id was taken again");
  });

  it("signing in as someone else at a sign-in still signs the first person out and goes back to it (the engine's own post-logout redirect, which that check leaves)", async () => {
    const secret = 'switch-app-client-secret-with-plenty-of-entropy-012';
    await clients.add({ client_id: 'switch-app', client_secret: secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] });
    const app = await oidc.discovery(new URL(server.issuer), 'switch-app', secret, oidc.ClientSecretBasic(secret), insecure);
    const agent = new Agent();
    const first = await startAuthorization(agent, app, REDIRECT);
    assert.ok((await signInSteps(agent, first.page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT })).url.startsWith(REDIRECT));
    const again = await startAuthorization(agent, app, REDIRECT, { prompt: 'login' });
    const switching = await agent.submit(again.page, '/login', { username: 'bob', password: PASSWORD });
    const back = await agent.submit(switching, 'session/end/confirm', {}, REDIRECT);
    assert.ok(/\/confirm/.test(back.html), `bob's sign-in goes on to his consent (${back.status} ${back.url})`);
  });

  it("signing in as someone else at a device's sign-in signs the first person out and goes back to the device (the engine's post-logout redirect to /device/<uid>, which that check leaves too)", async () => {
    await deviceClient('switch-tv');
    const config = await deviceConfig('switch-tv');
    const agent = new Agent();
    const first = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    assert.match((await approve(agent, first.user_code, 'alice')).html, /Device connected/);
    // max_age asks alice's session for a sign-in once it is older (whole seconds), and bob signs in.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid', max_age: '1' });
    const entry = await agent.follow(`${server.issuer}/device`);
    const confirm = await agent.submit(entry, '/device', { user_code: device.user_code });
    const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
    const switching = await agent.submit(login, '/login', { username: 'bob', password: PASSWORD });
    const back = await agent.submit(switching, 'session/end/confirm', {});
    const done = await signInSteps(agent, back, { username: 'bob', password: PASSWORD });
    assert.match(done.html, /Device connected/, `bob's sign-in goes on to connect the device (${back.status} ${back.url})`);
    assert.equal(await poll('switch-tv', device.device_code), 'tokens');
  });

  it('a device asking for a fresh sign-in (max_age=0) gets one at /device, not the consent of the session there', async () => {
    await deviceClient('fresh-tv');
    const config = await deviceConfig('fresh-tv');
    const agent = new Agent();
    const first = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    assert.match((await approve(agent, first.user_code, 'alice')).html, /Device connected/);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the session's sign-in now predates the request (whole seconds)
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid', max_age: '0' });
    const entry = await agent.follow(`${server.issuer}/device`);
    const confirm = await agent.submit(entry, '/device', { user_code: device.user_code });
    const next = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.match(next.html, /name="password"/, `alice is asked to sign in again (${next.status} ${next.url})`);
    const done = await signInSteps(agent, next, { username: 'alice', password: PASSWORD });
    assert.match(done.html, /Device connected/, 'the fresh sign-in goes on to connect the device, without asking again');
    assert.equal(await poll('fresh-tv', device.device_code), 'tokens');
  });
});
