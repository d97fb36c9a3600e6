/**
 * Red team, seventeenth endings pass (docs/security-passes.md, "Looked at in the seventeenth endings pass"):
 * the sixteenth pass's "not done", performed against running servers. Nothing found; all held.
 *
 * A code exchange held by the test relay at its writes (after its one read of the code, grant,
 * account and session) across RP-initiated logout (sign out everywhere, this app only) or the
 * upstream's back-channel logout at a second instance: of a grant without offline access (the
 * exchange is refused), and of a grant an earlier sign-in of the session gave offline access (kept by
 * design; the exchange's tokens, bound to the session, work nowhere: userinfo, introspection,
 * latchkey/resource-server following the feed). A silent authorization of the session held at its
 * write of the code across the same (its code refused, the session stays ended). A consent confirmation held at its write of the
 * grant, and a sign-in's resume held at its write of the session, in a session a stolen passkey
 * signed in, across the passkey's removal. A signing key revoked (`keys rotate --now
 * --revoke-current`) while `serve --workers 2` signs: every token it signed, those signed as it was
 * revoked among them, refused at both workers and by latchkey/resource-server. A PAR request_uri
 * pushed and a device approved before `users disable` or `grants revoke --client`, used after.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { dirname } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { fakeUpstreamOf } from '../helpers/fake-upstream.js';
import { latchkey, serveProcess, type ServerProcess } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { acceptedBy, API, basic, grantFeed, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';

const PASSWORD = 'seventeenth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/bye';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const CLIENTS = JSON.stringify([
  { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT], grant_types: ['authorization_code', 'refresh_token'] },
  machineClient(MACHINE),
  machineClient(RS),
]);

const form = (fields: Record<string, string>) => new URLSearchParams(fields);
/** A code exchange's first write: the code's consumption. */
const CODE_CONSUMED = scriptOn('oidc:AuthorizationCode:');

/**
 * A person (`person`, PASSWORD) with two passkeys, one of them stolen, signed in with the one they
 * keep on their account page (`page`, in `own`).
 */
async function withStolenPasskey(server: TestServer, person: string) {
  const { sub } = await server.accounts.create(person, PASSWORD);
  const [stolen, kept] = [softPasskey(), softPasskey()];
  await registerSoftPasskeys(server, sub, stolen, kept);
  const origin = new URL(server.issuer).origin;
  const own = new Agent();
  const login = await own.follow(`${server.issuer}/account`);
  const page = await own.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), sub, 1) });
  assert.equal(page.url, `${server.issuer}/account`, `expected the account page, got ${page.url}`);
  return { sub, stolen, origin, own, page };
}

/** Removes passkey `id` on the person's account page (`page`, read in `agent`), posted to the instance at `url`: its answer, a 303. */
async function removePasskey(url: string, agent: Agent, issuer: string, page: Page, id: string): Promise<Response> {
  const removed = await fetch(`${url}/account/passkeys/remove`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: agent.cookieHeader(issuer) },
    body: form({ ...formIn(page.html, '/account/passkeys/remove').hidden, id }),
  });
  assert.equal(removed.status, 303, await removed.clone().text());
  // The removal renews this browser's session id (accounts/sessions.ts renewId).
  agent.keepCookies(issuer, removed);
  return removed;
}
const token = (url: string, fields: Record<string, string>) =>
  fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) }, body: form(fields) });
const introspected = async (url: string, client: typeof WEB, value: string) =>
  (await (await fetch(`${url}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) }, body: form({ token: value }) })).json()) as { active: boolean };

describe('e2e: red team, seventeenth endings pass: sign-outs across a code exchange of the same session held at its writes, a passkey removed across a consent', function () {
  this.timeout(120_000);
  const SETTINGS = { CLIENTS, RESOURCE_SERVERS, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' };
  let relayed: RelayedServer;
  let helper: ResourceServer;
  let config: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof fakeUpstreamOf>>;

  before(async () => {
    relayed = await startRelayedServer(SETTINGS);
    fake = await fakeUpstreamOf(relayed.server, 'upstream-client-secret-with-plenty-of-entropy-012345');
    await grantFeed(relayed.server, RS.id);
    config = await oidc.discovery(new URL(relayed.server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    helper = await createResourceServer({ issuer: relayed.server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
  });
  after(async () => {
    helper?.close();
    await fake?.close();
    await relayed?.stop();
  });

  /** Each ending, done at the instance at `url` in the browser whose cookie is `cookie` (signed in through the upstream's session `sid`, for its logout). */
  const ENDINGS = {
    'RP-initiated logout (sign out everywhere)': (url: string, cookie: string) => signOut(url, cookie, { logout: 'yes' }),
    'RP-initiated logout (this app only)': (url: string, cookie: string) => signOut(url, cookie, {}),
    "the upstream's back-channel logout": async (url: string, _cookie: string, sid: string) => {
      const logout = await fetch(`${url}/upstream/fake/backchannel-logout`, { method: 'POST', body: form({ logout_token: await fake.logoutToken({ sid }) }) });
      assert.equal(logout.status, 200, await logout.text());
    },
  };
  /** RP-initiated logout: the app's sign-out page, then its confirmation (`fields`), at the instance at `url`. */
  async function signOut(url: string, cookie: string, fields: Record<string, string>) {
    const asked = await fetch(`${url}/session/end?${form({ client_id: WEB.id, post_logout_redirect_uri: SIGNED_OUT })}`, { headers: { cookie } });
    const page = formIn(await asked.text(), '/session/end/confirm');
    // Its action names the issuer: posted to the instance at `url`.
    const confirmed = await fetch(`${url}${new URL(page.action, relayed.server.issuer).pathname}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: form({ ...page.hidden, ...fields }),
    });
    assert.equal(confirmed.status, 303, await confirmed.text());
    assert.ok(String(confirmed.headers.get('location')).startsWith(SIGNED_OUT), String(confirmed.headers.get('location')));
  }

  // The grant the code is of: one without offline access (the sign-out revokes it), or one the session's
  // earlier sign-in gave offline access (kept by design), the code itself without (bound to the session).
  for (const grant of ['its own grant', 'a grant kept for offline access'] as const)
  for (const [ending, end] of Object.entries(ENDINGS)) {
    for (const format of ['opaque', 'jwt'] as const) {
      it(`a code exchange (${format} access token, ${grant}) held at its writes, across ${ending} at another instance: what it got works nowhere`, async () => {
        const { server, relay, env } = relayed;
        const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, ...SETTINGS } });
        try {
          const person = `pat-${format}-${grant.length}-${ending.replace(/[^a-z]+/g, '-')}`;
          await server.accounts.create(person, PASSWORD);
          // Signed in through the upstream (its session `person`) for its logout, else with the password.
          const upstream: Record<string, string> = ending.includes('upstream') ? { upstream: 'fake' } : {};
          Object.assign(fake.state, { mode: 'good', sub: `upstream-${person}`, sid: person });
          const resource: Record<string, string> = format === 'jwt' ? { resource: API } : {};
          const scope = format === 'jwt' ? 'openid read' : 'openid email';
          const browser = new Agent();
          if (grant === 'a grant kept for offline access') {
            const first = await startAuthorization(browser, config, REDIRECT, { scope: `${scope} offline_access`, prompt: 'consent', ...resource, ...upstream });
            assert.ok(new URL((await signInSteps(browser, first.page, { username: person, password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
          }
          const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope, ...resource, ...(grant === 'its own grant' ? upstream : {}) });
          const done = await signInSteps(browser, page, { username: person, password: PASSWORD, stopAt: REDIRECT });
          const code = new URL(done.url).searchParams.get('code');
          assert.ok(code, done.url);

          // Held at its writes, after its one read of the code, its grant, account and session: they
          // begin with the code's consumption (a read of the signing key's revocation mark may come between).
          let sawGrant = false;
          const held = await relay.hold(
            (chunk) => {
              if (sawGrant) return CODE_CONSUMED(chunk);
              if (chunk.includes('oidc:Grant:')) sawGrant = true;
              return false;
            },
            () => token(server.url, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...resource }),
          );
          await end(other.url, browser.cookieHeader(server.issuer), person);
          await new Promise((resolve) => setTimeout(resolve, 1100));
          const answered = await held.release();
          assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
          const body = (await answered.json()) as Record<string, string>;
          if (!body.access_token) return assert.deepEqual([answered.status, body.error], [400, 'invalid_grant']);
          if (format === 'opaque') {
            const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${body.access_token}` } });
            assert.equal(userinfo.status, 401, `${ending}: the access token the held exchange got works at userinfo`);
            assert.equal((await introspected(server.url, WEB, body.access_token)).active, false, `${ending}: the access token is active`);
          } else {
            assert.equal((await introspected(server.url, RS, body.access_token)).active, false, `${ending}: the JWT is active at introspection`);
            await eventually(async () => assert.equal(await acceptedBy(helper, body.access_token!), false, `${ending}: the JWT is accepted by latchkey/resource-server`));
          }
          assert.equal(body.refresh_token, undefined, 'a refresh token without offline access');
        } finally {
          await other.stop();
        }
      });
    }
  }

  for (const ending of ['RP-initiated logout (sign out everywhere)', "the upstream's back-channel logout"] as const) {
    it(`a silent authorization (prompt=none) of the session, held at its write of the code across ${ending} at another instance: its code works nowhere, the session stays ended`, async () => {
      const { server, relay, env } = relayed;
      const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, ...SETTINGS } });
      try {
        const person = `pat-silent-${ending.length}`;
        await server.accounts.create(person, PASSWORD);
        const upstream: Record<string, string> = ending.includes('upstream') ? { upstream: 'fake' } : {};
        Object.assign(fake.state, { mode: 'good', sub: `upstream-${person}`, sid: person });
        const browser = new Agent();
        const first = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email', ...upstream });
        assert.ok(new URL((await signInSteps(browser, first.page, { username: person, password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
        const held = await relay.hold(CODE_CONSUMED, () => startAuthorization(browser, config, REDIRECT, { scope: 'openid email', prompt: 'none' }));
        await ENDINGS[ending](other.url, browser.cookieHeader(server.issuer), person);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const { page, verifier } = await held.release();
        const code = new URL(page.url).searchParams.get('code');
        if (code) {
          const exchanged = await token(server.url, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
          assert.equal(exchanged.status, 400, `${ending}: the code the held authorization made is redeemed: ${await exchanged.text()}`);
        }
        const again = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email', prompt: 'none' });
        assert.equal(new URL(again.page.url).searchParams.get('error'), 'login_required', `${ending}: the session lives after it: ${again.page.url}`);
      } finally {
        await other.stop();
      }
    });
  }

  it("a thief's consent page, signed in with a stolen passkey, its confirmation held at its write of the grant across the passkey removed on the account page (another instance): the app gets no code silently after", async () => {
    const { server, relay, env } = relayed;
    const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, ...SETTINGS } });
    try {
      const person = 'pat-passkey';
      const { sub, stolen, origin, own, page } = await withStolenPasskey(server, person);
      // Whoever holds the passkey signs in with it, at the consent page of an app.
      const thief = new Agent();
      const login = (await startAuthorization(thief, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' })).page;
      const consent = await thief.submit(login, '/passkey', { credential: assertion(stolen, origin, passkeyChallenge(login), sub, 1) }, REDIRECT);
      assert.ok(isConsent(consent), `expected the consent page, got ${consent.status} ${consent.url}`);

      const held = await relay.hold((chunk) => chunk.includes('oidc:Grant:') && chunk.includes('"kind":"Grant"'), () => thief.submit(consent, '/confirm', {}, REDIRECT));
      const removed = await removePasskey(other.url, own, server.issuer, page, stolen.id);
      assert.match(String(removed.headers.get('location')), /done=passkeys\.removed/);
      const confirmed = await held.release();
      assert.ok(!confirmed.url.startsWith(REDIRECT), `the session the removed passkey signed in went back to the app: ${confirmed.url}`);
      const silent = await startAuthorization(own, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required', `the consent confirmed across the removal was remembered: ${silent.page.url}`);
      assert.match(confirmed.html, /signed out while this was confirmed/, `the confirmation's answer (${confirmed.status} ${confirmed.url})`);
    } finally {
      await other.stop();
    }
  });

  it('a sign-in with a stolen passkey, its resume held at its write of the session across the passkey removed on the account page (another instance): no session, no code that works', async () => {
    const { server, relay, env } = relayed;
    const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, ...SETTINGS } });
    try {
      const person = 'pat-passkey-resume';
      const { sub, stolen, origin, own } = await withStolenPasskey(server, person);
      // The app the thief signs in to was consented to before: the resume answers with a code.
      const before = await startAuthorization(own, config, REDIRECT, { scope: 'openid email' });
      assert.ok(new URL((await signInSteps(own, before.page, { username: person, password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
      const account = await own.follow(`${server.issuer}/account`);

      const thief = new Agent();
      const { page: login, verifier } = await startAuthorization(thief, config, REDIRECT, { scope: 'openid email' });
      const held = await relay.hold((chunk) => chunk.includes('"kind":"Session"'), () => thief.submit(login, '/passkey', { credential: assertion(stolen, origin, passkeyChallenge(login), sub, 1) }, REDIRECT));
      await removePasskey(other.url, own, server.issuer, account, stolen.id);
      let done = await held.release();
      if (isConsent(done)) done = await thief.submit(done, '/confirm', {}, REDIRECT);
      const code = done.url.startsWith(REDIRECT) ? new URL(done.url).searchParams.get('code') : null;
      if (code) {
        const exchanged = await token(server.url, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
        assert.equal(exchanged.status, 400, `the code of a sign-in with the removed passkey is redeemed: ${await exchanged.text()}`);
      }
      const silent = await startAuthorization(thief, config, REDIRECT, { scope: 'openid email', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('error'), 'login_required', `the session the removed passkey signed in lives: ${silent.page.url}`);
    } finally {
      await other.stop();
    }
  });
});

/** A GET or POST on a connection of its own (no keep-alive): the cluster's primary hands each new connection to the next worker. */
function fresh(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('e2e: red team, seventeenth endings pass: keys rotate --now --revoke-current against serve --workers 2', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let served: ServerProcess;
  let env: Record<string, string>;
  let helper: ResourceServer;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    env = testEnv(dir, port, { redisUrl: redis.url, env: { CLIENTS, RESOURCE_SERVERS } });
    served = await serveProcess(env, ['--workers', '2']);
    const granted = await latchkey(env, ['apis', 'grant', '--client', RS.id, '--api', `${env.ISSUER}/revocations`, '--scope', 'revocations']);
    assert.equal(granted.status, 0, granted.stderr);
    helper = await createResourceServer({ issuer: env.ISSUER!, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
    const added = await latchkey(env, ['users', 'add', 'alice', '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(added.status, 0, added.stderr);
  });
  after(async () => {
    helper?.close();
    await served?.stop();
    await redis?.stop();
  });

  it('every token the revoked key signed, those signed by either worker as it was revoked among them, is refused at every worker and by latchkey/resource-server', async () => {
    const url = served.url;
    const issue = async () => {
      const answer = await fresh(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
        body: form({ grant_type: 'client_credentials', resource: API, scope: 'read' }).toString(),
      });
      return answer.status === 200 ? (JSON.parse(answer.text) as { access_token: string }).access_token : undefined;
    };
    // An ID token, for id_token_hint, signed by the key to be revoked.
    const config = await oidc.discovery(new URL(env.ISSUER!), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const browser = new Agent();
    const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid' });
    const done = await signInSteps(browser, page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    const revokedKid = decodeProtectedHeader(tokens.id_token!).kid!;

    // Both workers sign, on their own connections, while the key is revoked.
    const signed: string[] = [];
    let revoking = true;
    const signers = Array.from({ length: 4 }, async () => {
      while (revoking) {
        const value = await issue();
        if (value) signed.push(value);
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const run = await latchkey(env, ['keys', 'rotate', '--now', '--revoke-current']);
    revoking = false;
    await Promise.all(signers);
    assert.equal(run.status, 0, run.stderr);
    const byRevoked = signed.filter((value) => decodeProtectedHeader(value).kid === revokedKid);
    const byNext = signed.filter((value) => decodeProtectedHeader(value).kid !== revokedKid);
    assert.ok(byRevoked.length > 0 && byNext.length > 0, `tokens on both sides of the revocation (${byRevoked.length} by the revoked key, ${byNext.length} after)`);

    // Each check twice, on connections of their own: the primary hands them to the workers in turn (the helper's feed polls may come between, so not pinned per token).
    for (const value of byRevoked) {
      for (let i = 0; i < 2; i++) {
        const answer = await fresh(`${url}/token/introspection`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(RS) },
          body: form({ token: value }).toString(),
        });
        assert.deepEqual(JSON.parse(answer.text), { active: false }, 'a token the revoked key signed is active at a worker');
      }
      assert.equal(await acceptedBy(helper, value), false, 'latchkey/resource-server accepts a token the revoked key signed');
    }
    for (const value of byNext.slice(-2)) assert.equal(await acceptedBy(helper, value), true, 'a token the next key signed is refused');
    for (let i = 0; i < 2; i++) {
      const hinted = await fresh(`${url}/session/end?${form({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: SIGNED_OUT })}`);
      assert.equal(hinted.status, 400, `an ID token the revoked key signed is taken as id_token_hint (${hinted.status})`);
    }
  });
});

describe('e2e: red team, seventeenth endings pass: a PAR request_uri pushed and a device approved before users disable or grants revoke --client, used after', function () {
  this.timeout(60_000);
  const DEVICE = 'tv';
  let server: TestServer;
  let config: oidc.Configuration;
  let tv: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: {
        CLIENTS: JSON.stringify([
          { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
          { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
        ]),
      },
    });
    config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    tv = await oidc.discovery(new URL(server.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  /** The CLI's arguments of each ending, for `person` and the client `client`. */
  const ENDINGS = {
    'users disable': (person: string) => ['users', 'disable', person],
    'grants revoke --client': (_person: string, client: string) => ['grants', 'revoke', '--client', client],
  };

  for (const [ending, args] of Object.entries(ENDINGS)) {
    it(`a device approved before ${ending} (of the device's client), polled after: no tokens`, async () => {
      const person = `pat-device-${ending.replace(/[^a-z]+/g, '-')}`;
      await server.accounts.create(person, PASSWORD);
      const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid offline_access' });
      const agent = new Agent();
      const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
      assert.match((await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: person, password: PASSWORD })).html, /Device connected/);
      const run = await latchkey(server.env, args(person, DEVICE));
      assert.equal(run.status, 0, run.stderr);
      const polled = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: DEVICE }),
      });
      const body = (await polled.json()) as Record<string, string>;
      assert.equal(body.access_token, undefined, `${ending}: the device approved before it got tokens after`);
      assert.equal(polled.status, 400, JSON.stringify(body));
    });

    it(`a PAR request_uri pushed before ${ending}, used after in the person's signed-in browser: no code without the person again`, async () => {
      const person = `pat-par-${ending.replace(/[^a-z]+/g, '-')}`;
      await server.accounts.create(person, PASSWORD);
      const browser = new Agent();
      const first = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email' });
      assert.ok(new URL((await signInSteps(browser, first.page, { username: person, password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
      const verifier = oidc.randomPKCECodeVerifier();
      const pushed = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      assert.ok(pushed.searchParams.get('request_uri'), pushed.href);
      const run = await latchkey(server.env, args(person, WEB.id));
      assert.equal(run.status, 0, run.stderr);
      const page = await browser.follow(pushed.href, {}, REDIRECT);
      assert.equal(new URL(page.url).searchParams.get('code'), null, `${ending}: the request pushed before it got a code after, silently`);
      if (ending === 'users disable') {
        const signedIn = await signInSteps(browser, page, { username: person, password: PASSWORD, stopAt: REDIRECT });
        assert.equal(new URL(signedIn.url).searchParams.get('code'), null, `${ending}: the disabled person signed in through the request pushed before`);
      } else {
        assert.ok(isConsent(page), `${ending}: expected the consent page, got ${page.status} ${page.url}`);
      }
    });
  }
});
