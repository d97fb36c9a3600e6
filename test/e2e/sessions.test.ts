/**
 * Sessions and single sign-on across instances: two Latchkey processes on one Redis behind one
 * issuer URL, two relying parties (openid-client), a back-channel logout receiver, and a
 * cookie-keeping agent as the person.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { serveProcess, type ServerProcess } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const PASSWORD = 'a passphrase long enough';
const SECRET = 'relying-party-secret-with-plenty-of-entropy-0123456789';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

interface App {
  readonly id: string;
  readonly redirect: string;
  readonly signedOut: string;
  config: oidc.Configuration;
}

interface Tokens {
  readonly idToken: string;
  readonly accessToken: string;
  readonly refreshToken: string | undefined;
  readonly sid: string;
}

/** Collects logout tokens posted to /<client_id>. */
async function startReceiver(): Promise<{ url: string; tokens: Map<string, string[]>; server: Server }> {
  const tokens = new Map<string, string[]>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      const client = (req.url ?? '/').slice(1);
      if (req.method !== 'POST' || !token) {
        res.writeHead(400).end();
        return;
      }
      tokens.set(client, [...(tokens.get(client) ?? []), token]);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tokens, server };
}

describe('e2e: sessions and single sign-on across two instances on one Redis', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let balancer: Balancer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let inProcess: TestServer;
  let separate: ServerProcess;
  const apps: Record<'app1' | 'app2', App> = {
    app1: { id: 'app1', redirect: 'https://app1.example.test/callback', signedOut: 'https://app1.example.test/bye', config: undefined! },
    app2: { id: 'app2', redirect: 'https://app2.example.test/callback', signedOut: 'https://app2.example.test/bye', config: undefined! },
  };

  before(async () => {
    [redis, balancer, receiver] = await Promise.all([startRedisServer(), startBalancer(), startReceiver()]);
    const clients = Object.values(apps).map((app) => ({
      client_id: app.id,
      client_secret: SECRET,
      client_name: app.id === 'app1' ? 'App One' : 'App Two',
      redirect_uris: [app.redirect],
      post_logout_redirect_uris: [app.signedOut],
      grant_types: ['authorization_code', 'refresh_token'],
      backchannel_logout_uri: `${receiver.url}/${app.id}`,
      backchannel_logout_session_required: true,
    }));
    // Both instances: the same issuer (the balancer), Redis, keys directory and cookie keys.
    const env = { ISSUER: balancer.url, CLIENTS: JSON.stringify(clients), OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' };
    const [portA, portB] = [await freePort(), await freePort()];
    inProcess = await startServer({ redisUrl: redis.url, dir, port: portA, env });
    separate = await serveProcess(testEnv(dir, portB, { redisUrl: redis.url, env }));
    balancer.route(inProcess.url);
    await inProcess.accounts.create('alice', PASSWORD, { name: 'Alice', email: 'alice@example.test' });
    await inProcess.accounts.create('bob', PASSWORD, { name: 'Bob' });
    for (const app of Object.values(apps)) {
      app.config = await oidc.discovery(new URL(balancer.url), app.id, SECRET, oidc.ClientSecretBasic(SECRET), {
        execute: [oidc.allowInsecureRequests],
      });
    }
  });

  after(async () => {
    await separate?.stop();
    await inProcess?.stop();
    await balancer?.close();
    receiver?.server.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts an authorization request and follows it to a page of ours or back to the app. */
  async function authorize(agent: Agent, app: App, params: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(app.config, {
      redirect_uri: app.redirect,
      scope: 'openid profile',
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...params,
    });
    const page = await agent.follow(url.href, {}, app.redirect);
    return { page, verifier, state };
  }

  async function redeem(app: App, flow: { page: Page; verifier: string; state: string }): Promise<Tokens> {
    assert.ok(flow.page.url.startsWith(app.redirect), `expected a redirect to ${app.id}, got ${flow.page.url}`);
    const tokens = await oidc.authorizationCodeGrant(app.config, new URL(flow.page.url), {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
    });
    const claims = tokens.claims()!;
    return { idToken: tokens.id_token!, accessToken: tokens.access_token, refreshToken: tokens.refresh_token, sid: String(claims.sid) };
  }

  const isLogin = (page: Page) => page.html.includes('name="password"');
  const isConsent = (page: Page) => page.url.includes('/interaction/') && page.html.includes('/confirm');

  async function login(agent: Agent, page: Page, app: App, username = 'alice', extra: Record<string, string> = {}) {
    return signInSteps(agent, page, { username, password: PASSWORD, fields: extra, login: 'required', consent: 'stop', stopAt: app.redirect });
  }

  it('a session made through one instance signs the person in through the other', async () => {
    const agent = new Agent();
    balancer.route(inProcess.url);
    let flow = await authorize(agent, apps.app1);
    flow.page = await login(agent, flow.page, apps.app1);
    assert.ok(isConsent(flow.page));
    flow.page = await agent.submit(flow.page, '/confirm', {}, apps.app1.redirect);
    const first = await redeem(apps.app1, flow);

    balancer.route(separate.url);
    flow = await authorize(agent, apps.app2);
    assert.ok(!isLogin(flow.page), 'no password asked at the other instance');
    assert.ok(isConsent(flow.page), `app2 asks for consent first: ${flow.page.url}`);
    assert.match(flow.page.html, /App Two/);
    flow.page = await agent.submit(flow.page, '/confirm', {}, apps.app2.redirect);
    const second = await redeem(apps.app2, flow);
    assert.equal(decodeJwt(second.idToken).sub, decodeJwt(first.idToken).sub);

    // And back: the session the second instance updated is the one the first reads.
    balancer.route(inProcess.url);
    const silent = await authorize(agent, apps.app1, { prompt: 'none' });
    await redeem(apps.app1, silent);
  });

  it('prompt=none answers login_required for a person who is not signed in', async () => {
    const { page } = await authorize(new Agent(), apps.app1, { prompt: 'none' });
    assert.equal(new URL(page.url).searchParams.get('error'), 'login_required');
  });

  it('prompt=login and max_age force the password again; an id_token_hint for someone else is not answered silently', async () => {
    const agent = new Agent();
    let flow = await authorize(agent, apps.app1);
    flow.page = await signInSteps(agent, flow.page, { username: 'alice', password: PASSWORD, login: 'required', stopAt: apps.app1.redirect });
    const alice = await redeem(apps.app1, flow);

    assert.ok(isLogin((await authorize(agent, apps.app1, { prompt: 'login' })).page), 'prompt=login');
    assert.ok(isLogin((await authorize(agent, apps.app1, { max_age: '0' })).page), 'max_age=0');

    const hinted = await authorize(agent, apps.app1, { prompt: 'none', id_token_hint: alice.idToken });
    await redeem(apps.app1, hinted);

    // Bob signs in on his own device; his ID token is no hint for Alice's session.
    const bobAgent = new Agent();
    flow = await authorize(bobAgent, apps.app1);
    flow.page = await signInSteps(bobAgent, flow.page, { username: 'bob', password: PASSWORD, login: 'required', stopAt: apps.app1.redirect });
    const bob = await redeem(apps.app1, flow);
    const mismatch = await authorize(agent, apps.app1, { prompt: 'none', id_token_hint: bob.idToken });
    assert.equal(new URL(mismatch.page.url).searchParams.get('error'), 'login_required');
  });

  it('"keep me signed in" makes the session cookie persistent; otherwise it ends with the browser', async () => {
    const sessionCookie = (agent: Agent) => agent.setCookies.filter((line) => line.startsWith('lk_session=')).at(-1) ?? '';
    for (const remember of [true, false]) {
      const agent = new Agent();
      const flow = await authorize(agent, apps.app1);
      await login(agent, flow.page, apps.app1, 'alice', remember ? { remember: 'yes' } : {});
      const cookie = sessionCookie(agent);
      assert.match(cookie, /httponly/i);
      assert.match(cookie, /samesite=lax/i);
      assert.equal(/expires=/i.test(cookie), remember, `remember=${remember}: ${cookie}`);
    }
  });

  it('remembers consent per person and client, also after signing out; only new permissions are asked for', async () => {
    const agent = new Agent();
    let flow = await authorize(agent, apps.app1);
    flow.page = await signInSteps(agent, flow.page, { username: 'alice', password: PASSWORD, login: 'required', stopAt: apps.app1.redirect });
    const tokens = await redeem(apps.app1, flow);
    await signOut(agent, apps.app1, tokens.idToken);

    flow = await authorize(agent, apps.app1);
    flow.page = await login(agent, flow.page, apps.app1);
    assert.ok(!isConsent(flow.page), 'no consent screen for the same scopes');
    await redeem(apps.app1, flow);

    flow = await authorize(agent, apps.app1, { scope: 'openid profile email' });
    assert.ok(isConsent(flow.page), 'a new scope is asked for');
    assert.match(flow.page.html, /email address/);
    assert.doesNotMatch(flow.page.html, /name and profile/, 'what was allowed before is not asked again');
  });

  /** RP-initiated logout from `app`: our confirmation page, then "Sign out everywhere". */
  async function signOut(agent: Agent, app: App, idToken: string, state = 'bye-state') {
    const url = oidc.buildEndSessionUrl(app.config, { id_token_hint: idToken, post_logout_redirect_uri: app.signedOut, state });
    const confirm = await agent.follow(url.href);
    assert.equal(confirm.status, 200);
    assert.match(confirm.html, /Sign out everywhere/);
    const done = await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' }, app.signedOut);
    assert.ok(done.url.startsWith(app.signedOut), `back at the app: ${done.url}`);
    assert.equal(new URL(done.url).searchParams.get('state'), state);
  }

  it('signing out at one app sends the other a signed logout token, ends the session and revokes non-offline tokens', async () => {
    const agent = new Agent();
    let flow = await authorize(agent, apps.app1);
    flow.page = await signInSteps(agent, flow.page, { username: 'alice', password: PASSWORD, login: 'required', stopAt: apps.app1.redirect });
    const app1 = await redeem(apps.app1, flow);

    balancer.route(separate.url);
    flow = await authorize(agent, apps.app2, { scope: 'openid offline_access', prompt: 'consent' });
    flow.page = await agent.submit(flow.page, '/confirm', {}, apps.app2.redirect);
    const app2 = await redeem(apps.app2, flow);
    assert.ok(app2.refreshToken, 'offline access was granted');

    receiver.tokens.clear();
    await signOut(agent, apps.app1, app1.idToken);

    const [logoutToken] = receiver.tokens.get('app2') ?? [];
    assert.ok(logoutToken, 'app2 received a logout token');
    const { payload, protectedHeader } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL(`${balancer.url}/jwks`)), {
      issuer: balancer.url,
      audience: 'app2',
      typ: 'logout+jwt',
      algorithms: ['RS256'],
    });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
    assert.equal(payload.sid, app2.sid);
    assert.equal(payload.nonce, undefined, 'a logout token never carries a nonce');

    const silent = await authorize(agent, apps.app1, { prompt: 'none' });
    assert.equal(new URL(silent.page.url).searchParams.get('error'), 'login_required', 'the session is gone');

    const introspect = (app: App, token: string) => oidc.tokenIntrospection(app.config, token);
    assert.equal((await introspect(apps.app1, app1.accessToken)).active, false, "app1's access token is revoked");
    const refreshed = await oidc.refreshTokenGrant(apps.app2.config, app2.refreshToken!);
    assert.ok(refreshed.access_token, 'offline access outlives the session, as its grant asked');
    balancer.route(inProcess.url);
  });

  it('a disabled person cannot sign in, and their refresh tokens stop working', async () => {
    const agent = new Agent();
    const flow = await authorize(agent, apps.app2, { scope: 'openid offline_access', prompt: 'consent' });
    flow.page = await login(agent, flow.page, apps.app2, 'bob');
    flow.page = await agent.submit(flow.page, '/confirm', {}, apps.app2.redirect);
    const tokens = await redeem(apps.app2, flow);

    await inProcess.accounts.setDisabled('bob', true);
    await assert.rejects(oidc.refreshTokenGrant(apps.app2.config, tokens.refreshToken!), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    const other = new Agent();
    const again = await authorize(other, apps.app2);
    const refused = await other.submit(again.page, '/login', { username: 'bob', password: PASSWORD }, apps.app2.redirect);
    assert.equal(refused.status, 401);
    assert.match(refused.html, /do not match/);
    await inProcess.accounts.setDisabled('bob', false);
  });
});
