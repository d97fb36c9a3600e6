/**
 * The fifth blips pass (2026-12-04), black box: what a person does on the account page and the
 * consent page with Redis paused (past REDIS_COMMAND_TIMEOUT, the write and what follows run once
 * it resumes, after the answer) at a chosen write. The house rule: a 503 means not done (and done
 * when asked again) or done whole, never half, never a state the person cannot leave by retrying.
 * A password change paused at the account's write answered 503 and was then made (the person's
 * retry with the password they held as current refused, and counted as a wrong guess); new recovery
 * codes paused at their write answered 503 and then replaced the ones the person held with ones
 * never shown; an authenticator app's confirmation answered 503 was then set up, its retry told
 * "set up already" (fixed, the class: an account's and a person's credentials' compare-and-set is
 * bounded, not made when Redis runs it after the caller stopped waiting).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, type Page } from '../helpers/agent.js';
import { BLIP_COMMAND_TIMEOUT, commandsIn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { type TestServer } from '../helpers/server.js';
import { signedInToAccountPage, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { attestation, isSecondFactor, passkeyChallenge, softPasskey } from '../helpers/soft-passkeys.js';
import { basic } from '../helpers/tokens.js';

const PASSWORD = 'fifth blips pass password';
const REDIRECT = 'https://notes.example.test/callback';
const NOTES = { id: 'notes', secret: 'notes-app-secret-with-plenty-of-entropy-0123456789' };
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
const secretShown = (page: Page) => page.html.match(/id="totp-secret">([^<]+)</)?.[1]?.replace(/\s/g, '');
const codesShown = (page: Page) => [...page.html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((match) => match[1]!);

describe('e2e: fifth blips pass: the account page and the consent page with Redis paused at a write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let server: TestServer;
  let notes: oidc.Configuration;

  before(async () => {
    // A command waits half a second: a Redis paused longer is an outage (503).
    relayed = await startRelayedServer({}, {
      commandTimeout: BLIP_COMMAND_TIMEOUT,
      clients: [
        { client_id: NOTES.id, client_secret: NOTES.secret, redirect_uris: [REDIRECT] },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
      ],
    });
    ({ server } = relayed);
    notes = await oidc.discovery(new URL(server.issuer), NOTES.id, NOTES.secret, oidc.ClientSecretBasic(NOTES.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => relayed?.stop());

  /** A trigger: a script whose KEYS hold exactly `key` (under the server's prefix). */
  const scriptOnExactly = (key: string) => (chunk: string) =>
    commandsIn(chunk).some(([name = '', , keys = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(keys)).includes(`${server.config.redis.keyPrefix}${key}`));

  /** A trigger: any command with a word starting with `key` (under the server's prefix). */
  const commandOn = (key: string) => (chunk: string) => commandsIn(chunk).some((words) => words.some((word) => word.startsWith(`${server.config.redis.keyPrefix}${key}`)));

  const accountPage = (username: string, code?: () => string) => signedInToAccountPage(server.issuer, username, PASSWORD, code);

  const blip = (page: Page) => {
    assert.equal(page.status, 503, `answered ${page.status} ${page.url}`);
    assert.ok(page.headers.get('retry-after'), 'a 503 says when to retry');
  };

  describe('password change', () => {
    it('answered 503 at the account’s write: the old password still works, not the new; the same form sent again changes it', async () => {
      const { sub } = await server.accounts.create('pat', PASSWORD);
      const { agent, page } = await accountPage('pat');
      const change = { current_password: PASSWORD, new_password: 'pat has a new password', confirm_password: 'pat has a new password' };
      const first = await relayed.pausedAt(scriptOnExactly(`account:${sub}`), () => agent.submit(page, '/password', change));
      blip(first);
      const [oldWorks, newWorks] = [await server.accounts.verify('pat', PASSWORD), await server.accounts.verify('pat', change.new_password)];
      assert.ok(Boolean(oldWorks) !== Boolean(newWorks), 'exactly one of the old and new passwords works');
      assert.ok(oldWorks, 'a change answered 503 is not done: the old password, which the person still holds as current, works');
      const again = await agent.submit(await agent.follow(`${server.issuer}/account`), '/password', change);
      assert.match(again.html, /Your password has been changed/, `the retry goes through: ${again.status} ${again.html.match(/class="error"[^>]*>([^<]*)/)?.[1] ?? ''}`);
      assert.ok(await server.accounts.verify('pat', change.new_password), 'the new password works');
      assert.ok(!(await server.accounts.verify('pat', PASSWORD)), 'the old one does not');
    });
  });

  describe('authenticator app', () => {
    async function begun(username: string) {
      const { sub } = await server.accounts.create(username, PASSWORD);
      const owner = await accountPage(username);
      const setup = await owner.agent.submit(owner.page, '/account/authenticator/start', {});
      const secret = secretShown(setup);
      assert.ok(secret, `a setup page with a secret: ${setup.status}`);
      return { sub, ...owner, setup, secret };
    }
    const enrolled = async (sub: string) => Boolean((await server.secondFactors.records.read(sub)).totp);

    for (const [write, key, username] of [
      ['the enrolment’s write', (sub: string) => `mfa:${sub}`, 'tia'],
      ['the code’s step spent', (sub: string) => `mfa:totp-used:${sub}:`, 'ted'],
    ] as const) {
      it(`a confirmation answered 503 at ${write}: sent again with a code of the secret shown, set up with that secret`, async () => {
        const { sub, agent, setup, secret } = await begun(username);
          const matches = write.includes('step') ? commandOn(key(sub)) : scriptOnExactly(key(sub));
        const first = await relayed.pausedAt(matches, () => agent.submit(setup, '/account/authenticator/confirm', { code: codeFor(secret, -1) }));
        blip(first);
        const again = await agent.submit(setup, '/account/authenticator/confirm', { code: codeFor(secret, 0) });
        assert.match(again.url, /done=authenticator\.added/, `the retry sets it up: ${again.status} ${again.url} ${again.html.match(/class="error"[^>]*>([^<]*)/)?.[1] ?? ''}`);
        assert.ok(await enrolled(sub));
        // The secret shown is the one set up: it signs in.
        await accountPage(username, () => codeFor(secret, 1));
      });
    }

    it('a removal answered 503 at the enrolment’s write: sent again, removed', async () => {
      const { sub, agent, setup, secret } = await begun('tomas');
      const added = await agent.submit(setup, '/account/authenticator/confirm', { code: codeFor(secret, -1) });
      assert.match(added.url, /done=authenticator\.added/);
      const page = await agent.follow(`${server.issuer}/account`);
      const first = await relayed.pausedAt(scriptOnExactly(`mfa:${sub}`), () => agent.submit(page, '/account/authenticator/remove', {}));
      blip(first);
      // Not done (sent again, removed) or done whole (the page offers no removal).
      if (await enrolled(sub)) {
        const again = await agent.submit(await agent.follow(`${server.issuer}/account`), '/account/authenticator/remove', {});
        assert.match(again.url, /done=authenticator\.removed/, `the retry removes it: ${again.status} ${again.url}`);
      }
      assert.equal(await enrolled(sub), false);
    });
  });

  describe('recovery codes', () => {
    it('made anew, answered 503 at the codes’ write: the codes the person holds still work (not new ones never shown); made again, the codes shown work', async () => {
      const { sub } = await server.accounts.create('rita', PASSWORD);
      // Recovery codes are made only beside a second factor: an authenticator app set up elsewhere.
      const { secret } = await server.secondFactors.totp.begin(sub, 'rita', 'elsewhere');
      assert.ok(await server.secondFactors.totp.confirm(sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'elsewhere'));
      const { agent, page } = await accountPage('rita', () => TOTP.generate({ secret: Secret.fromBase32(secret) }));
      const made = await agent.submit(page, '/account/recovery-codes', {});
      const held = codesShown(made);
      assert.equal(held.length, 10, `codes shown: ${made.status}`);
      const first = await relayed.pausedAt(scriptOnExactly(`mfa:${sub}`), async () => agent.submit(await agent.follow(`${server.issuer}/account`), '/account/recovery-codes', {}));
      blip(first);
      // Before the fix: the new codes written once Redis resumed, the ones rita holds stopped.
      assert.ok(await server.secondFactors.recoveryCodes.use(sub, held[0]!, 'a-sign-in'), 'a code rita holds still works');
      const again = await agent.submit(await agent.follow(`${server.issuer}/account`), '/account/recovery-codes', {});
      const shown = codesShown(again);
      assert.equal(shown.length, 10, `made again: ${again.status}`);
      assert.ok(await server.secondFactors.recoveryCodes.use(sub, shown[0]!, 'another-sign-in'), 'a code shown works');
      assert.equal(await server.secondFactors.recoveryCodes.use(sub, held[1]!, 'a-third-sign-in'), undefined, 'an old one does not');
    });
  });

  describe('consent', () => {
    for (const [write, key] of [
      ['the grant’s save', 'oidc:Grant:'],
      ['the consent’s save', 'consent:'],
      ['the interaction’s save', 'oidc:Interaction:'],
    ] as const) {
      it(`Allow answered 503 at ${write}: Allow again (or the app asked again) gets a code that redeems`, async () => {
        const username = `cora${key.length}`;
        await server.accounts.create(username, PASSWORD);
        const agent = new Agent();
        const { page, verifier } = await startAuthorization(agent, notes, REDIRECT);
        const consent = await signInSteps(agent, page, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
        assert.match(consent.html, /\/confirm/, `the consent page: ${consent.status} ${consent.url}`);
        const first = await relayed.pausedAt(commandOn(key), () => agent.submit(consent, '/confirm', {}, REDIRECT));
        blip(first);
        let again = await agent.submit(consent, '/confirm', {}, REDIRECT);
        let used = verifier;
        if (!again.url.startsWith(REDIRECT)) {
          // The page sent again is refused: the app asks again, as it does after any error.
          const restarted = await startAuthorization(agent, notes, REDIRECT);
          again = await signInSteps(agent, restarted.page, { username, password: PASSWORD, stopAt: REDIRECT });
          used = restarted.verifier;
        }
        assert.ok(again.url.startsWith(REDIRECT), `back at the app: ${again.status} ${again.url}`);
        const tokens = await oidc.authorizationCodeGrant(notes, new URL(again.url), { pkceCodeVerifier: used, expectedState: oidc.skipStateCheck });
        assert.ok(tokens.access_token);
      });
    }
  });

  describe('passkey registration', () => {
    for (const [write, username, matches] of [
      ['its challenge’s spending', 'pia', (_sub: string) => commandOn('mfa:webauthn-challenge-used:')],
      ['its owner’s claim', 'pim', (_sub: string) => commandOn('mfa:passkey-owner:')],
      ['the credentials’ write', 'pol', (sub: string) => scriptOnExactly(`mfa:${sub}`)],
    ] as const) {
      it(`answered 503 at ${write}: added once, by the retry (from the page shown again) if not by the first`, async () => {
        const { sub } = await server.accounts.create(username, PASSWORD);
        const { agent, page } = await accountPage(username);
        const key = softPasskey();
        const add = (shown: Page) => agent.submit(shown, '/account/passkeys/add', { name: 'laptop', credential: attestation(key, new URL(server.issuer).origin, passkeyChallenge(shown)) });
        const first = await relayed.pausedAt(matches(sub), () => add(page));
        blip(first);
        const listed = async () => (await server.secondFactors.records.read(sub)).passkeys.filter((passkey) => passkey.id === key.id).length;
        if ((await listed()) === 0) {
          const again = await add(await agent.follow(`${server.issuer}/account`));
          assert.match(again.html, /Passkey added/, `the retry adds it: ${again.status} ${again.html.match(/class="error"[^>]*>([^<]*)/)?.[1] ?? ''}`);
        }
        assert.equal(await listed(), 1, 'the passkey is the person’s, once');
      });
    }
  });

  describe('a recovery code at sign-in', () => {
    it('answered 503 at its spending: the same code sent again signs in; it is spent once', async () => {
      const { sub } = await server.accounts.create('remy', PASSWORD);
      const { secret } = await server.secondFactors.totp.begin(sub, 'remy', 'test-session');
      assert.equal(await server.secondFactors.totp.confirm(sub, codeFor(secret, -1), 'test-session'), true);
      const [code] = await server.secondFactors.recoveryCodes.generate(sub);
      const agent = new Agent();
      const { page, verifier } = await startAuthorization(agent, notes, REDIRECT);
      const second = await signInSteps(agent, page, { username: 'remy', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(isSecondFactor(second), `the second-factor page: ${second.status} ${second.url}`);
      const first = await relayed.pausedAt(scriptOnExactly(`mfa:${sub}`), () => agent.submit(second, '/second-factor', { method: 'recovery', code: code! }, REDIRECT));
      blip(first);
      const again = await signInSteps(agent, await agent.submit(second, '/second-factor', { method: 'recovery', code: code! }, REDIRECT), { username: 'remy', password: PASSWORD, stopAt: REDIRECT });
      assert.ok(again.url.startsWith(REDIRECT), `the same code sent again signs in: ${again.status} ${again.url} ${again.html.match(/class="error"[^>]*>([^<]*)/)?.[1] ?? ''}`);
      const tokens = await oidc.authorizationCodeGrant(notes, new URL(again.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
      assert.ok(tokens.access_token);
      assert.equal(await server.secondFactors.recoveryCodes.use(sub, code!, 'another-sign-in'), undefined, 'spent once');
    });
  });

  describe('PAR and the device flow', () => {
    it('a pushed authorization request answered 503 at its save: pushed again, its request_uri signs in', async () => {
      const push = () =>
        fetch(notes.serverMetadata().pushed_authorization_request_endpoint!, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(NOTES) },
          body: new URLSearchParams({ client_id: NOTES.id, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }),
        });
      const first = await relayed.pausedAt(commandOn('oidc:PushedAuthorizationRequest:'), push);
      assert.equal(first.status, 503);
      assert.ok(first.headers.get('retry-after'));
      await server.accounts.create('paz', PASSWORD);
      const again = await push();
      assert.equal(again.status, 201);
      const { request_uri } = (await again.json()) as { request_uri: string };
      const agent = new Agent();
      const url = new URL(notes.serverMetadata().authorization_endpoint!);
      url.search = new URLSearchParams({ client_id: NOTES.id, request_uri }).toString();
      const back = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'paz', password: PASSWORD, stopAt: REDIRECT });
      assert.ok(back.url.startsWith(REDIRECT), `back at the app: ${back.status} ${back.url}`);
      const tokens = await oidc.authorizationCodeGrant(notes, new URL(back.url), { pkceCodeVerifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', expectedState: oidc.skipStateCheck });
      assert.ok(tokens.access_token);
    });

    const tv = () => oidc.discovery(new URL(server.issuer), 'tv', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const poll = (deviceCode: string) =>
      fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv' }) });

    it('a device authorization answered 503 at its save: asked again, its user code is approved and its poll gets tokens', async () => {
      const config = await tv();
      const ask = () => fetch(config.serverMetadata().device_authorization_endpoint!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'tv', scope: 'openid' }) });
      const first = await relayed.pausedAt(commandOn('oidc:DeviceCode:'), ask);
      assert.equal(first.status, 503);
      assert.ok(first.headers.get('retry-after'));
      const again = await ask();
      assert.equal(again.status, 200);
      const device = (await again.json()) as { device_code: string; user_code: string };
      await server.accounts.create('dev', PASSWORD);
      const agent = new Agent();
      const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
      const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'dev', password: PASSWORD });
      assert.match(approved.html, /Device connected/);
      const polled = await poll(device.device_code);
      assert.equal(polled.status, 200, `polled: ${polled.status} ${await polled.clone().text()}`);
    });
  });
});
