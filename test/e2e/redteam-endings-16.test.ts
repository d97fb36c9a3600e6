/**
 * Red team, sixteenth endings pass (docs/security-passes.md, "Looked at in the sixteenth endings pass"):
 * endings with no cutoff (the person's password change, a credential removed) racing what a thief's
 * session is doing, held deterministically by the test relay, the ending at a second instance.
 *
 * Found and fixed: a consent page confirmed in a session signed in with the old password (or a code
 * of the lost phone), its confirmation held at its write of the grant while the person changed their
 * password signing every other session out (or removed the authenticator app): the confirmation
 * remembered its consent after the ending had forgotten the consents given elsewhere, so the app (a
 * thief's) got the person's code silently (prompt=none) in the person's own session afterwards. And
 * the same confirmed while an operator's second-factor reset (CLI) was held between its forgetting
 * of the consents and its ending of the sessions. A first consent confirmed across `grants revoke
 * --client` or `--user` (held likewise, the CLI straight on Redis): the app got a code after the
 * operator was told, and its consent was remembered. And a sign-in through an upstream whose resume was
 * held back (by the browser, or by the relay at its writes) across the upstream's back-channel logout
 * of the session it came from: it completed, a code and a session the logout never found.
 *
 * Held: a device approved in such a session, held at its resume's write of the approval across the
 * password change, gets nothing; nor do a refresh and a code exchange of such a session's grant held
 * after their read of the grant.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer } from '../helpers/server.js';
import { basic } from '../helpers/tokens.js';
import { fakeUpstreamOf } from '../helpers/fake-upstream.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { latchkey } from '../helpers/process.js';

const PASSWORD = 'sixteenth endings pass test password';
const NEW_PASSWORD = 'a new passphrase nobody else knows';
const REDIRECT = 'https://gallery.example.test/callback';
const DEVICE = 'thiefs-tv';
const THIEFS = { id: 'gallery', secret: 'gallery-client-secret-with-plenty-of-entropy-0123456789' };
/** A consent confirmation's write of the grant (its record, with its payload). */
const GRANT_WRITE = (chunk: string) => chunk.includes('oidc:Grant:') && chunk.includes('"kind":"Grant"');

/** Posts a form of the person's account page (`page`, read in `agent`) to the instance at `url`: its answer, a 303. */
async function postAccountForm(url: string, agent: Agent, issuer: string, page: Page, action: string, fields: Record<string, string>): Promise<Response> {
  const answer = await fetch(`${url}${action}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: agent.cookieHeader(issuer) },
    body: new URLSearchParams({ ...formIn(page.html, action).hidden, ...fields }),
  });
  assert.equal(answer.status, 303, await answer.clone().text());
  // A change of how the person signs in renews this browser's session id (accounts/sessions.ts renewId).
  agent.keepCookies(issuer, answer);
  return answer;
}

describe('e2e: red team, sixteenth endings pass: a thief\'s session confirming across an ending with no cutoff', function () {
  this.timeout(120_000);
  let relayed: RelayedServer;

  before(async () => {
    relayed = await startRelayedServer({
      CLIENTS: JSON.stringify([
        { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access' },
        { client_id: THIEFS.id, client_secret: THIEFS.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email' },
      ]),
    });
  });
  after(async () => {
    await relayed?.stop();
  });

  /** The person's endings on their account page that forget the consents given in other sessions, posted to `url`: the form, its fields. */
  const ENDINGS = {
    'a password change signing every other session out': {
      form: '/account/password',
      fields: { current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD, sign_out_others: 'yes' },
      done: /done=password\.changed-everywhere/,
    },
    'the authenticator app removed': { form: '/account/authenticator/remove', fields: {}, done: /done=authenticator\.removed/ },
  } as const;

  for (const [ending, { form: action, fields, done }] of Object.entries(ENDINGS)) {
    it(`a thief's consent page, its confirmation held at its write of the grant across ${ending} on the account page (another instance): the app gets no code silently after`, async () => {
      const { server, relay, env } = relayed;
      // A second instance on the same Redis, not through the relay: the ending is not held with the confirmation.
      const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, CLIENTS: env.CLIENTS! } });
      try {
        const person = `pat-${action.split('/').pop()}`;
        const account = await server.accounts.create(person, PASSWORD);
        const totp = action.includes('authenticator');
        let step = 0;
        let secondFactor: ((agent: Agent, page: Page) => Promise<Page>) | undefined;
        if (totp) {
          const enrolled = (await server.secondFactors.totp.begin(account.sub, person, 'test-session')).secret;
          const code = (steps: number) => TOTP.generate({ secret: Secret.fromBase32(enrolled), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
          assert.equal(await server.secondFactors.totp.confirm(account.sub, code(-1), 'test-session'), true);
          secondFactor = (agent, page) => agent.submit(page, '/second-factor', { method: 'totp', code: code(step++) }, REDIRECT);
        }
        const config = await oidc.discovery(new URL(server.issuer), THIEFS.id, THIEFS.secret, oidc.ClientSecretBasic(THIEFS.secret), { execute: [oidc.allowInsecureRequests] });

        // The person, on their account page.
        const own = new Agent();
        let page = await signInSteps(own, await own.follow(`${server.issuer}/account`), { username: person, password: PASSWORD, login: 'required', consent: 'stop' });
        if (secondFactor) page = await secondFactor(own, page);
        assert.equal(page.url, `${server.issuer}/account`, `expected the account page, got ${page.url}`);

        // The thief, signed in with the old password (and a code of the lost phone), at the consent page of an app of theirs.
        const thief = new Agent();
        let consent = await signInSteps(thief, (await startAuthorization(thief, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' })).page, {
          username: person,
          password: PASSWORD,
          consent: 'stop',
        });
        if (secondFactor) consent = await secondFactor(thief, consent);
        assert.ok(isConsent(consent), `expected the consent page, got ${consent.url}`);

        const held = await relay.hold(GRANT_WRITE, () => thief.submit(consent, '/confirm', {}, REDIRECT));
        const ended = await postAccountForm(other.url, own, server.issuer, page, action, fields);
        assert.match(String(ended.headers.get('location')), done);
        const confirmed = await held.release();
        assert.ok(!confirmed.url.startsWith(REDIRECT), `the thief's ended session went back to the app: ${confirmed.url}`);

        // The person's own session, still signed in: the thief's app asks silently.
        const silent = await startAuthorization(own, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'none' });
        const answer = new URL(silent.page.url).searchParams;
        assert.equal(answer.get('code'), null, `${ending}: the consent confirmed across it was remembered: the thief's app gets the person's code without asking`);
        assert.equal(answer.get('error'), 'consent_required', silent.page.url);
        assert.match(confirmed.html, /signed out while this was confirmed/, `${ending}: the confirmation's answer (${confirmed.status} ${confirmed.url})`);
      } finally {
        await other.stop();
      }
    });
  }

  for (const ending of ['grants revoke --client', 'grants revoke --user', 'users disable'] as const) {
    it(`a first consent, its confirmation held at its write of the grant across ${ending}: the app gets no code silently after`, async () => {
      const { server, relay, env } = relayed;
      const person = `pat-first-${ending.replace(/[^a-z]+/g, '-')}`;
      await server.accounts.create(person, PASSWORD);
      const config = await oidc.discovery(new URL(server.issuer), THIEFS.id, THIEFS.secret, oidc.ClientSecretBasic(THIEFS.secret), { execute: [oidc.allowInsecureRequests] });
      const browser = new Agent();
      const consent = await signInSteps(browser, (await startAuthorization(browser, config, REDIRECT, { scope: 'openid email' })).page, { username: person, password: PASSWORD, consent: 'stop' });
      assert.ok(isConsent(consent), `expected the consent page, got ${consent.url}`);
      const held = await relay.hold(GRANT_WRITE, () => browser.submit(consent, '/confirm', {}, REDIRECT));
      const args = { 'grants revoke --client': ['grants', 'revoke', '--client', THIEFS.id], 'grants revoke --user': ['grants', 'revoke', '--user', person], 'users disable': ['users', 'disable', person] }[ending];
      const run = await latchkey(env, args);
      assert.equal(run.status, 0, run.stderr);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const confirmed = await held.release();
      assert.ok(!confirmed.url.startsWith(REDIRECT), `${ending}: the confirmation across it went back to the app: ${confirmed.url}`);
      if (ending === 'users disable') assert.equal((await latchkey(env, ['users', 'enable', person])).status, 0);
      const again = new Agent();
      const next = await signInSteps(again, (await startAuthorization(again, config, REDIRECT, { scope: 'openid email' })).page, { username: person, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(isConsent(next), `${ending}: the consent confirmed across it was remembered: the app got a code without asking (${next.url})`);
    });
  }

  for (const ending of ['grants revoke --client', 'grants revoke --user'] as const) {
    it(`a sign-in answered from a remembered consent (a new grant), held at its writes across ${ending}: its code works nowhere, the app is asked again`, async () => {
      const { server, relay, env } = relayed;
      const person = `pat-remembered-${ending.replace(/[^a-z]+/g, '-')}`;
      await server.accounts.create(person, PASSWORD);
      const config = await oidc.discovery(new URL(server.issuer), THIEFS.id, THIEFS.secret, oidc.ClientSecretBasic(THIEFS.secret), { execute: [oidc.allowInsecureRequests] });
      const first = new Agent();
      const done = await signInSteps(first, (await startAuthorization(first, config, REDIRECT, { scope: 'openid email' })).page, { username: person, password: PASSWORD, stopAt: REDIRECT });
      assert.ok(new URL(done.url).searchParams.get('code'), done.url);
      // Another browser signs in: the remembered consent makes a new grant at the resume, with the code.
      const browser = new Agent();
      const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email' });
      const held = await relay.hold(scriptOn('oidc:AuthorizationCode:'), () => signInSteps(browser, page, { username: person, password: PASSWORD, consent: 'stop', stopAt: REDIRECT }));
      const args = { 'grants revoke --client': ['grants', 'revoke', '--client', THIEFS.id], 'grants revoke --user': ['grants', 'revoke', '--user', person] }[ending];
      const run = await latchkey(env, args);
      assert.equal(run.status, 0, run.stderr);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const answered = await held.release();
      const code = new URL(answered.url).searchParams.get('code');
      if (code) {
        const exchanged = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(THIEFS) },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
        });
        assert.equal(exchanged.status, 400, `${ending}: the code made across it is redeemed`);
      }
      const silent = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `${ending}: the app gets a code without asking after it`);
    });
  }

  for (const what of ['a refresh', 'a code exchange'] as const) {
    it(`${what} of a thief's grant (offline access), held after it read the grant, across the person's password change signing every other session out: what it got works nowhere`, async () => {
      const { server, relay, env } = relayed;
      const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, CLIENTS: env.CLIENTS! } });
      try {
        const person = `pat-${what.replace(/[^a-z]+/g, '-')}`;
        await server.accounts.create(person, PASSWORD);
        const own = new Agent();
        const page = await signInSteps(own, await own.follow(`${server.issuer}/account`), { username: person, password: PASSWORD, login: 'required', consent: 'stop' });
        assert.equal(page.url, `${server.issuer}/account`);
        const config = await oidc.discovery(new URL(server.issuer), THIEFS.id, THIEFS.secret, oidc.ClientSecretBasic(THIEFS.secret), { execute: [oidc.allowInsecureRequests] });
        const thief = new Agent();
        const { page: start, verifier } = await startAuthorization(thief, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' });
        const done = await signInSteps(thief, start, { username: person, password: PASSWORD, stopAt: REDIRECT });
        const code = new URL(done.url).searchParams.get('code');
        assert.ok(code, done.url);
        const token = (params: Record<string, string>) =>
          fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(THIEFS) }, body: new URLSearchParams(params) });
        const exchange = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
        let request = exchange as Record<string, string>;
        if (what === 'a refresh') {
          const got = (await (await token(exchange)).json()) as Record<string, string>;
          assert.ok(got.refresh_token, JSON.stringify(got));
          request = { grant_type: 'refresh_token', refresh_token: got.refresh_token };
        }
        // Held at its writes, after the read of its grant's record: they begin with the consumption of
        // its refresh token or code (a read of the signing key's revocation mark may come between).
        const consumed = scriptOn(what === 'a refresh' ? 'oidc:RefreshToken:' : 'oidc:AuthorizationCode:');
        let sawGrant = false;
        const held = await relay.hold((chunk) => {
          if (sawGrant) return consumed(chunk);
          if (chunk.includes('oidc:Grant:')) sawGrant = true;
          return false;
        }, () => token(request));
        await postAccountForm(other.url, own, server.issuer, page, '/account/password', ENDINGS['a password change signing every other session out'].fields);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const answered = await held.release();
        assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
        const body = (await answered.json()) as Record<string, string>;
        if (!body.access_token) return assert.deepEqual([answered.status, body.error], [400, 'invalid_grant']);
        const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${body.access_token}` } });
        assert.equal(userinfo.status, 401, `${what}: the access token it got works at userinfo`);
        const again = await token({ grant_type: 'refresh_token', refresh_token: body.refresh_token! });
        assert.notEqual(again.status, 200, `${what}: the refresh token it got refreshes`);
      } finally {
        await other.stop();
      }
    });
  }

  it("a thief's consent confirmed while an operator's second-factor reset (CLI) is held between forgetting the consents and ending the sessions: the person is asked again at the app", async () => {
    const { server, relay, env, relayedEnv } = relayed;
    // The confirmation at a second instance, not through the relay: the reset (the CLI, through it) is held alone.
    const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, CLIENTS: env.CLIENTS! } });
    try {
      const person = 'pat-reset';
      const account = await server.accounts.create(person, PASSWORD);
      const enrolled = (await server.secondFactors.totp.begin(account.sub, person, 'test-session')).secret;
      const code = (steps: number) => TOTP.generate({ secret: Secret.fromBase32(enrolled), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
      assert.equal(await server.secondFactors.totp.confirm(account.sub, code(-1), 'test-session'), true);
      const config = await oidc.discovery(new URL(server.issuer), THIEFS.id, THIEFS.secret, oidc.ClientSecretBasic(THIEFS.secret), { execute: [oidc.allowInsecureRequests] });
      // Whoever holds the lost phone signs in with it and stops at the consent page of an app of theirs.
      const thief = new Agent();
      let consent = await signInSteps(thief, (await startAuthorization(thief, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' })).page, { username: person, password: PASSWORD, consent: 'stop' });
      consent = await thief.submit(consent, '/second-factor', { method: 'totp', code: code(0) }, REDIRECT);
      assert.ok(isConsent(consent), `expected the consent page, got ${consent.url}`);

      // The reset forgets the consents given with the factor, then lists the person's sessions to end them: held there.
      const held = await relay.hold((chunk) => chunk.includes('oidc:sessions:account:'), () => latchkey(relayedEnv, ['users', 'mfa', 'reset', person]));
      const form = formIn(consent.html, '/confirm');
      const confirmed = await fetch(new URL(form.action, `${other.url}/`), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: thief.cookieHeader(server.issuer) },
        body: new URLSearchParams(form.hidden),
      });
      const run = await held.release();
      assert.equal(confirmed.status, 303, 'the confirmation, in a session not ended yet, was taken');
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /ended 1 session/);

      // The person, without a second factor now, signs in at the app (a link the thief sends, say).
      const agent = new Agent();
      const next = await signInSteps(agent, (await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access email' })).page, { username: person, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(isConsent(next), `the consent the thief gave while the reset was under way outlives it: the app got the person's code without asking (${next.url})`);
    } finally {
      await other.stop();
    }
  });

  it("a device approved in a thief's session, held at its resume's write of the approval across the person's password change signing every other session out: the device gets nothing that works", async () => {
    const { server, relay, env } = relayed;
    const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, CLIENTS: env.CLIENTS! } });
    try {
      const person = 'pat-device';
      await server.accounts.create(person, PASSWORD);
      const own = new Agent();
      const page = await signInSteps(own, await own.follow(`${server.issuer}/account`), { username: person, password: PASSWORD, login: 'required', consent: 'stop' });
      assert.equal(page.url, `${server.issuer}/account`);
      const tv = await oidc.discovery(new URL(server.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      // The thief, signed in with the old password, connected a device of theirs once.
      const thief = new Agent();
      const approve = async (userCode: string) => {
        const confirm = await thief.submit(await thief.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
        return thief.submit(confirm, '/device', { confirm: 'yes' });
      };
      const first = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid offline_access' });
      assert.match((await signInSteps(thief, await approve(first.user_code), { username: person, password: PASSWORD })).html, /Device connected/);
      // Another device, approved in the same session (its consent page again): held at the resume's writes.
      const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid offline_access' });
      const confirm = await thief.submit(await thief.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
      const consent = await thief.submit(confirm, '/device', { confirm: 'yes' });
      assert.ok(isConsent(consent), `expected the consent page, got ${consent.url}`);
      // The consent's own writes go (the grant, the consent); the resume's approval of the device code is held.
      const held = await relay.hold((chunk) => chunk.includes('"kind":"DeviceCode"'), () => thief.submit(consent, '/confirm', {}));
      await postAccountForm(other.url, own, server.issuer, page, '/account/password', ENDINGS['a password change signing every other session out'].fields);
      await held.release();
      const polled = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: DEVICE }),
      });
      const body = (await polled.json()) as Record<string, string>;
      if (body.refresh_token) {
        const again = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: body.refresh_token, client_id: DEVICE }),
        });
        assert.notEqual(again.status, 200, 'the refresh token the device got after the password change refreshes');
      }
      assert.equal(body.access_token, undefined, 'the device got tokens');
    } finally {
      await other.stop();
    }
  });
});

describe("e2e: red team, sixteenth endings pass: an upstream's back-channel logout across a sign-in's resume", function () {
  this.timeout(60_000);
  const APP = { id: 'notes', secret: 'notes-client-secret-with-plenty-of-entropy-0123456789' };
  const SECRET = 'upstream-client-secret-with-plenty-of-entropy-012345';
  let relayed: RelayedServer;
  let fake: Awaited<ReturnType<typeof fakeUpstreamOf>>;
  let config: oidc.Configuration;

  before(async () => {
    relayed = await startRelayedServer({
      OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
      CLIENTS: JSON.stringify([{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email' }]),
    });
    fake = await fakeUpstreamOf(relayed.server, SECRET);
    config = await oidc.discovery(new URL(relayed.server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await fake?.close();
    await relayed?.stop();
  });

  /** Through the upstream (as `sid`) and back: its word taken at the callback, the browser at the resume, not followed yet. */
  async function atResume(sid: string): Promise<{ browser: Agent; resume: string; verifier: string }> {
    fake.state.mode = 'good';
    fake.state.sub = `upstream-person-${sid}`;
    fake.state.sid = sid;
    const browser = new Agent();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', prompt: 'consent', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', upstream: 'fake' });
    const held = await browser.follow(url.href, {}, `${relayed.server.issuer}/auth/`);
    assert.match(held.url, /\/auth\/[^/?]+$/, `expected the resume, got ${held.status} ${held.url}`);
    return { browser, resume: held.url, verifier };
  }

  /** The upstream's back-channel logout of its session `sid`, posted to the instance at `url`. */
  const logout = async (url: string, sid: string) =>
    fetch(`${url}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: await fake.logoutToken({ sid }) }) });

  it("the upstream's logout token for the session a finished sign-in came from, while the browser holds back its resume: the sign-in does not complete, the app gets access_denied", async () => {
    const { browser, resume } = await atResume('sid-browser-held');
    // Signed out there meanwhile: no Latchkey session exists yet for the logout to find.
    assert.equal((await logout(relayed.server.issuer, 'sid-browser-held')).status, 200);
    let done = await browser.follow(resume, {}, REDIRECT);
    if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, REDIRECT);
    assert.ok(done.url.startsWith(REDIRECT), `expected the app, got ${done.status} ${done.url}`);
    assert.equal(new URL(done.url).searchParams.get('code'), null, 'a sign-in the upstream had signed out completed: the app got a code');
    assert.equal(new URL(done.url).searchParams.get('error'), 'access_denied', done.url);
  });

  it("the upstream's logout token, at another instance, while the resume is held at its writes: the session and the code it made work nowhere after", async () => {
    const { server, relay, env } = relayed;
    const other = await startServer({ redisUrl: env.REDIS_URL!, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, CLIENTS: env.CLIENTS!, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    try {
      const { browser, resume, verifier } = await atResume('sid-writes-held');
      // The resume checked the sign-in and made the session and the code: held at their write.
      const held = await relay.hold((chunk) => chunk.includes('"kind":"Session"'), () => browser.follow(resume, {}, REDIRECT));
      assert.equal((await logout(other.url, 'sid-writes-held')).status, 200);
      let done = await held.release();
      // Whatever the resume answered (the consent page, once its session ended: nothing to confirm), the app gets no working code.
      if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, REDIRECT);
      const code = new URL(done.url).searchParams.get('code');
      if (code) {
        const exchanged = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
        });
        assert.equal(exchanged.status, 400, `the code the resume made across the logout is redeemed: ${await exchanged.text()}`);
      }
      const silent = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('error'), 'login_required', `the session the upstream logged out lives: ${silent.page.url}`);
    } finally {
      await other.stop();
    }
  });
});
