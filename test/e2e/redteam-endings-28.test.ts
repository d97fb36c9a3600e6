/**
 * Red team, twenty-eighth endings pass (docs/security-passes.md, "Looked at in the twenty-eighth endings pass").
 *
 * A session's grant is taken up again by the app's next authorization request in that session
 * (provider/consents.ts loadExistingGrant) unless it was given before an ending's cutoff: its
 * person's (`grantsEndedAt`, the person's cutoff for the client, `endedAt`), its client's
 * (`delegated`, `clientIdIssuedAt`) or an API's re-addition (`addedAt`), each written on the
 * store's clock. A grant made from a remembered consent (a sign-in in another browser, no consent
 * page) was dated by oidc-provider on the clock of the machine of the instance that made it: one
 * made at an instance whose clock ran ahead just before the ending counted as given after it, and
 * was taken up again, silently, by the next request: a code for the API removed and added again,
 * a code after `grants revoke --user` or the withdrawal of the app whose revocation of the grants
 * failed half-way, a code after the app was made public (its grants kept, its `delegated` mark). One made at an instance behind just after an ending counted as given before it:
 * the consent page asking the person for one scope more was refused as withdrawn. A grant is dated
 * on the store's clock now (patches/grants-on-store-clock.ts).
 * A password change signing the other sessions out, cut off by Redis at its second sign-out (after
 * the password's write): a session signed in with the old password meanwhile outlived it, and the
 * person's retry, refused as the wrong current password, signed nothing out; a refused change signs
 * the others out all the same now (accounts/page/password-section.ts). The change cut at each of
 * its writes in turn, sent again, holds.
 * Performed through one front door (test/helpers/balancer.ts) to three instances: this process,
 * and two `latchkey serve` processes whose clocks are SKEW_MS ahead and behind (the fixture of
 * redteam-endings-26).
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import * as oidc from 'openid-client';
import { Agent, answerAt as answerAtRedirect, type Page } from '../helpers/agent.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { hasWrite } from '../helpers/relay.js';
import { twoInstancesBehindOneDoor } from '../helpers/front-door.js';
import { isConsent, isLogin, signedInToAccountPage, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, startServerProcess, type TestServer, type TestServerProcess } from '../helpers/server.js';
import { skewedClock } from '../helpers/skewed-clock.js';

const PASSWORD = 'twenty-eighth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const APP = { id: 'app-28', secret: 'twenty-eighth-endings-app-secret-with-plenty-of-entropy-1' };
/** How far off the other instances' clocks are (one ahead, one behind): a few seconds. */
const SKEW_MS = 8_000;

/** The error an answer at REDIRECT carries, or 'code' when it carries a code. */
const answerAt = (page: Page): string => answerAtRedirect(page, REDIRECT);

describe('e2e: red team, twenty-eighth endings pass: a session\'s grant taken up again across an ending, made at instances whose clocks differ', function () {
  this.timeout(60_000);
  let balancer: Balancer;
  /** This process's instance, on the store's own clock: the operator goes through it. */
  let server: TestServer;
  let fast: TestServerProcess;
  let slow: TestServerProcess;
  let app: oidc.Configuration;
  const urls: Record<'server' | 'fast' | 'slow', string> = { server: '', fast: '', slow: '' };

  before(async () => {
    balancer = await startBalancer();
    const shared = { ISSUER: balancer.url };
    server = await startServer({ ownRedis: true, env: shared });
    urls.server = server.url;
    const other = async (skew: number) => {
      const port = await freePort();
      const started = await startServerProcess({ dir: dirname(server.env.KEYS_DIR!), port, redisUrl: server.env.REDIS_URL!, env: { ...shared, ...skewedClock(skew) } });
      return { started, url: `http://127.0.0.1:${port}` };
    };
    const [ahead, behind] = await Promise.all([other(SKEW_MS), other(-SKEW_MS)]);
    [fast, slow, urls.fast, urls.slow] = [ahead.started, behind.started, ahead.url, behind.url];
    balancer.route(urls.server);
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
    app = await oidc.discovery(new URL(balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await Promise.all([fast?.stop(), slow?.stop()]);
    await server?.stop();
    await balancer?.close();
  });

  /** Every new connection through the front door goes to `instance` from now on. */
  async function routeTo(instance: keyof typeof urls) {
    balancer.route(urls[instance]);
    await eventually(() => fetch(`${balancer.url}/healthz`, { headers: { connection: 'close' } }), 5, 0);
  }

  /**
   * The person allows the app `params` on the consent page (in a browser of its own, at this
   * process's instance), then signs in in another browser at `instance`: no consent page, the
   * consent remembered makes that session's grant there. That browser, and the code it got.
   */
  async function grantMadeAt(username: string, instance: keyof typeof urls, params: Record<string, string> = {}, of = app) {
    await routeTo('server');
    const first = new Agent();
    const consented = await signInSteps(first, (await startAuthorization(first, of, REDIRECT, params)).page, { username, password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    assert.equal(answerAt(consented), 'code');
    await routeTo(instance);
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, of, REDIRECT, params);
    const back = await signInSteps(agent, page, { username, password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.equal(answerAt(back), 'code', 'signed in, the consent remembered: no consent page');
    return { agent, back, verifier };
  }

  /** What the app's silent request (prompt=none) with `params` gets in the agent's session, at this process's instance. */
  async function silently(agent: Agent, params: Record<string, string> = {}): Promise<Page> {
    await routeTo('server');
    return (await startAuthorization(agent, app, REDIRECT, { prompt: 'none', ...params })).page;
  }

  /** The code in `page` redeemed (with `resource`): the token endpoint's answer, tokens or an error. */
  async function redeemed(page: Page, verifier: string, resource?: string): Promise<string> {
    try {
      const tokens = await oidc.authorizationCodeGrant(app, new URL(page.url), { pkceCodeVerifier: verifier }, resource ? { resource } : undefined);
      return `tokens (${tokens.scope ?? ''})`;
    } catch (error) {
      if (error instanceof oidc.ResponseBodyError) return error.error;
      throw error;
    }
  }

  it(`a session's grant made at the instance ${SKEW_MS / 1000} s ahead for an API, the API removed and added again under its identifier: the app's next request in that session is asked to consent again, no code for the new API (a silent code and the new API's token before the fix)`, async () => {
    const NOTES = 'https://notes.twenty-eight.example.test';
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });
    await server.accounts.create('ines', PASSWORD);
    const params = { scope: 'openid notes:read', resource: NOTES };
    const { agent } = await grantMadeAt('ines', 'fast', params);
    // The operator removes the API and someone adds one under the same identifier (another service).
    await server.apis.remove(NOTES);
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });
    const verifier = oidc.randomPKCECodeVerifier();
    await routeTo('server');
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, prompt: 'none', ...params, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const page = await agent.follow(url.href, {}, REDIRECT);
    const answer = answerAt(page);
    assert.equal(answer, 'consent_required', answer === 'code' ? `a silent code, redeemed for the new API: ${await redeemed(page, verifier, NOTES)}` : answer);
  });

  for (const [ending, endHalfWay] of [
    // `latchkey grants revoke --user`: the cutoff (and the revocation list's entries) written, the grants not yet revoked.
    ['grants revoke --user', (sub: string) => server.accounts.endGrants(sub, server.revocations)],
    // The app withdrawn on the account page (and `grants revoke --user --client`): the person's cutoff for the client written, the consent and grants not yet.
    ['the app withdrawn on the account page', (sub: string) => server.accounts.endClientGrants(sub, APP.id, server.revocations, 3600)],
  ] as const) {
    it(`a session's grant made at the instance ${SKEW_MS / 1000} s ahead, ${ending} failing half-way after its cutoff (the session kept): the app's next request in that session gets no code (a silent code with tokens before the fix)`, async () => {
      const username = ending.startsWith('grants') ? 'gale' : 'wren';
      const { sub } = await server.accounts.create(username, PASSWORD);
      const { agent } = await grantMadeAt(username, 'fast');
      await endHalfWay(sub);
      const page = await silently(agent);
      const answer = answerAt(page);
      assert.equal(answer, 'consent_required', answer === 'code' ? 'a silent code from the grant given before the ending' : answer);
    });
  }

  it(`a session's grant made at the instance ${SKEW_MS / 1000} s ahead, its app made public by the operator (a confidential client's grants end with it): the app's next request in that session gets no code (a silent code before the fix)`, async () => {
    const id = 'app-28-made-public';
    const metadata = { client_id: id, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
    const secret = 'twenty-eighth-endings-public-later-secret-with-entropy-012';
    await server.clients.add({ ...metadata, client_secret: secret });
    const confidential = await oidc.discovery(new URL(balancer.url), id, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('pia', PASSWORD);
    const { agent } = await grantMadeAt('pia', 'fast', {}, confidential);
    await server.clients.update(id, { ...metadata, token_endpoint_auth_method: 'none' });
    const madePublic = await oidc.discovery(new URL(balancer.url), id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    await routeTo('server');
    const answer = answerAt((await startAuthorization(agent, madePublic, REDIRECT, { prompt: 'none' })).page);
    assert.equal(answer, 'consent_required', answer === 'code' ? 'a silent code from the grant given while the app was confidential' : answer);
  });

  it(`a session's grant made at the instance ${SKEW_MS / 1000} s behind just after grants revoke --user answered: the consent page asking one scope more goes on to a code (refused as withdrawn before the fix)`, async () => {
    const { sub } = await server.accounts.create('otto', PASSWORD);
    const revoked = await latchkey(server.env, ['grants', 'revoke', '--user', 'otto']);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.ok((await server.accounts.find(sub))?.grantsEndedAt, 'the cutoff is written');
    const { agent } = await grantMadeAt('otto', 'slow');
    // The app asks for a scope more, in that session, at the same instance.
    const asked = (await startAuthorization(agent, app, REDIRECT, { scope: 'openid profile' })).page;
    assert.ok(isConsent(asked), `the consent page for the scope more: ${asked.status} ${asked.url}`);
    const allowed = await agent.submit(asked, '/confirm', {}, REDIRECT);
    assert.ok(allowed.url.startsWith(REDIRECT), `the consent confirmed was refused: ${allowed.status} ${allowed.url} ${allowed.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
    assert.equal(answerAt(allowed), 'code');
  });
});

describe('e2e: red team, twenty-eighth endings pass: a password change signing the other sessions out, cut off by Redis after the password was written', function () {
  this.timeout(180_000);
  const SCOPE = 'openid offline_access';
  const client = { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE };
  const door = twoInstancesBehindOneDoor({}, [client]);
  const { routeTo, scriptOnExactly } = door;
  let app: oidc.Configuration;

  before(async () => {
    app = await oidc.discovery(new URL(door.balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });

  type Outcome = 'changed' | 'refused' | 'not done' | 'signed out';
  /** What a password change's answer says: done, refused as the wrong current password, or 503 (not done). */
  function outcome(page: Page): Outcome {
    if (page.status === 503) {
      assert.ok(page.headers.get('retry-after'), 'a 503 says when to retry');
      return 'not done';
    }
    if (/Your password has been changed/.test(page.html)) return 'changed';
    assert.match(page.html, /That is not your current password/, `${page.status} ${page.url}`);
    return 'refused';
  }

  it('a password change signing the other sessions out, the connection cut at each of its writes in turn: after the 503 and the person\'s retries, the other session, its refresh token and its access token end (held)', async () => {
    const change = { current_password: PASSWORD, new_password: 'a new password for the sweep', confirm_password: 'a new password for the sweep', sign_out_others: 'yes' };
    await routeTo(door.relayed.server.url);
    for (let k = 1; k < 60; k += 1) {
      const username = `swept-${k}`;
      const { sub } = await door.relayed.server.accounts.create(username, PASSWORD);
      // Another session of the person's, signed in to the app with offline access.
      const elsewhere = new Agent();
      const { page: login, verifier } = await startAuthorization(elsewhere, app, REDIRECT, { scope: SCOPE, prompt: 'consent' });
      const back = await signInSteps(elsewhere, login, { username, password: PASSWORD, login: 'required', stopAt: REDIRECT });
      const tokens = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier });
      assert.ok(tokens.refresh_token, 'offline access');
      const { agent, page } = await signedInToAccountPage(door.balancer.url, username, PASSWORD);
      let seen = 0;
      let counting = false;
      let cut = false;
      void door.relayed.relay.cut((chunk) => hasWrite(chunk) && (counting ||= chunk.includes(sub)) && ++seen === k, { answered: true }).then((reached) => (cut = reached));
      let said = outcome(await agent.submit(page, '/password', change));
      door.relayed.relay.release();
      const at = `cut at write ${k}`;
      for (let attempt = 0; said === 'not done' && attempt < 5; attempt += 1) {
        await eventually(async () => assert.equal((await fetch(`${door.relayed.server.url}/readyz`)).status, 200));
        const again = await agent.follow(`${door.balancer.url}/account`);
        // Cut at its last writes, the renewal of this browser's session id (destroyed, not yet written
        // anew: accounts/sessions.ts renewId): the change is done and this browser signs in again.
        said = isLogin(again) ? 'signed out' : outcome(await agent.submit(again, '/password', change));
      }
      assert.notEqual(said, 'not done', `${at}: sent again once Redis is back, still not done`);
      assert.ok(await door.relayed.server.accounts.verify(username, change.new_password), `${at}: the new password works (${said})`);
      const silent = answerAt((await startAuthorization(elsewhere, app, REDIRECT, { prompt: 'none' })).page);
      const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token!).then(
        () => 'refreshed',
        (error: Error) => (error instanceof oidc.ResponseBodyError ? error.error : String(error)),
      );
      const userinfo = await fetch(`${door.balancer.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.deepEqual({ silent, refreshed, userinfo: userinfo.status }, { silent: 'login_required', refreshed: 'invalid_grant', userinfo: 401 }, `${at} (${said})`);
      if (!cut) {
        assert.ok(k > 5, 'the change writes');
        return;
      }
    }
    assert.fail('still cut at its 60th write');
  });

  it('a session signed in with the old password while the change hashed the new one (the other sessions signed out already), Redis cut off after the password was written: the 503, the person\'s retry, and the thief\'s session, refresh token and access token end', async () => {
    const username = 'paula';
    const { sub } = await door.relayed.server.accounts.create(username, PASSWORD);
    await routeTo(door.relayed.server.url);
    const { agent, page } = await signedInToAccountPage(door.balancer.url, username, PASSWORD);
    const change = { current_password: PASSWORD, new_password: 'paula has a new password now', confirm_password: 'paula has a new password now', sign_out_others: 'yes' };
    // The change held at its write of the password (its first sign-out of the others done).
    const held = await door.relayed.relay.hold(scriptOnExactly(`account:${sub}`), () => agent.submit(page, '/password', change));
    // Meanwhile a thief holding the old password signs in to the app at the other instance.
    await routeTo(door.other.url);
    const thief = new Agent();
    const { page: login, verifier } = await startAuthorization(thief, app, REDIRECT, { scope: SCOPE, prompt: 'consent' });
    const back = await signInSteps(thief, login, { username, password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.equal(answerAt(back), 'code');
    const tokens = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier });
    assert.ok(tokens.refresh_token, 'offline access');
    // The password is written; Redis is cut off at the change's next write.
    const answer = held.release();
    const cut = door.relayed.relay.cut((chunk) => hasWrite(chunk));
    const first = await answer;
// A request may answer without the write the cut waits for (a command of it timed out while held, on a
    // loaded runner: said not done all the same): the cut is dropped then, not waited for (it hung the test).
    door.relayed.relay.release();
    await cut;
    assert.equal(first.status, 503, `the change cut off after its write: ${first.status} ${first.url}`);
    await eventually(async () => assert.equal((await fetch(`${door.relayed.server.url}/readyz`)).status, 200));
    assert.ok(await door.relayed.server.accounts.verify(username, change.new_password), 'the password was changed');
    // The person, told "not done", sends the same form again.
    await routeTo(door.relayed.server.url);
    const again = await agent.submit(await agent.follow(`${door.balancer.url}/account`), '/password', change);
    const said = again.html.match(/class="(?:error|notice)"[^>]*>([^<]*)/)?.[1] ?? '';
    // Whatever it says, what the thief got before the change works nowhere.
    assert.deepEqual(await door.whatWorks(thief, app, tokens, REDIRECT), { silent: 'login_required', refreshed: 'invalid_grant', userinfo: 401 }, `after the 503 and the retry (${again.status}: ${said})`);
  });
});
