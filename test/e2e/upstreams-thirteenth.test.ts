/**
 * Upstream identity providers, attacked: thirteenth fresh-eyes pass (docs/security-passes.md,
 * "Looked at in the thirteenth fresh-eyes passes of 2026-12-07: upstream identity providers").
 *
 * The fake upstream of test/helpers/fake-upstream.ts against a Latchkey with its own store, through
 * a cookie-keeping agent.
 */
import assert from 'node:assert/strict';
import { Secret, TOTP } from 'otpauth';
import { Agent } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent } from '../helpers/sign-in.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const SECRET = 'upstream-thirteenth-client-secret-with-plenty-of-entropy';
const APP = { client_id: 'app1', client_secret: SECRET, redirect_uris: ['http://app1.localhost:1/callback'], grant_types: ['authorization_code'] };
const REDIRECT = APP.redirect_uris[0]!;

describe('e2e: upstream identity providers, attacked (thirteenth pass)', function () {
  this.timeout(60_000);
  let latchkey: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;
  let upstreams: Upstreams;
  let links: UpstreamLinks;

  before(async () => {
    latchkey = await startServer({ ownRedis: true, port: await freePort(), clients: [APP], env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', UPSTREAMS_TIMEOUT: '2' } });
    fake = await fakeUpstreamOf(latchkey, SECRET);
    upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
    links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
  });
  after(async () => {
    await latchkey?.stop();
    await fake?.close();
  });

  /** A sign-in through the fake upstream as `sub`, in a fresh browser, then the account page. */
  async function accountPageThrough(sub: string) {
    fake.state.mode = 'good';
    fake.state.sub = sub;
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'fake' });
    const browser = new Agent();
    await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT);
    let page = await browser.follow(`${latchkey.issuer}/account`);
    if (isConsent(page)) page = await browser.submit(page, '/confirm', {});
    assert.equal(new URL(page.url).pathname, '/account', `expected the account page, got ${page.status} ${page.url}`);
    const account = (await latchkey.accounts.find((await links.find('fake', sub))!.sub))!;
    return { browser, page, account };
  }

  it("a link to an upstream no longer offered (removed, or its id given to another issuer) is no way in: the account page keeps the person's last working link, and removes the dead one", async () => {
    const { browser, page, account } = await accountPageThrough('person-dead-link');
    const gone = { id: 'gone', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Gone', linkByEmail: false, endSession: false };
    await upstreams.add(gone);
    // The person's second link, as signing in to the account to link it makes it (link-confirmation.ts).
    assert.ok(await links.linkConfirmed('gone', 'person-at-gone', account.sub, {}, gone.issuer));
    await upstreams.remove('gone');
    const tryRemoving = (id: string) => browser.submit(page, '/account/links/remove', { id });

    const removed = await tryRemoving('fake:person-dead-link');
    assert.equal(removed.status, 409, `the upstream removed: its link signs no one in, so fake's is the last way in (${removed.status} ${removed.url})`);
    assert.match(removed.html, /only way you can sign in/);
    assert.ok(await links.find('fake', 'person-dead-link'));

    // Another provider under the id: the old link does not follow it (links.ts signIn), so it is still no way in.
    await upstreams.add({ ...gone, issuer: fake.state.issuer.replace('127.0.0.1', 'localhost') });
    const again = await tryRemoving('fake:person-dead-link');
    assert.equal(again.status, 409, `the id given to another issuer: the old link still signs no one in (${again.status} ${again.url})`);
    assert.match((await browser.follow(`${latchkey.issuer}/account`)).html, /gone \(no longer offered\)/, 'listed as the dead link it is, not under the new provider\'s name');
    assert.ok(await links.find('fake', 'person-dead-link'));

    // The dead link itself may go, though the person has one way in only.
    const dropped = await tryRemoving('gone:person-at-gone');
    assert.match(new URL(dropped.url).search, /^\?done=links\.removed\.[\w-]+$/, `${dropped.status} ${dropped.url}`);
    assert.equal(await links.find('gone', 'person-at-gone'), undefined);
    assert.ok(await links.find('fake', 'person-dead-link'));
    await upstreams.remove('gone');
  });

  it("the account page of a person linked to an upstream whose client secret this server cannot open shows the page, the link counted as a way in (the operator can restore the secret)", async () => {
    const { browser, page, account } = await accountPageThrough('person-sealed-elsewhere');
    // As a CLI run with other secrets once did, or a secret dropped after a rotation.
    const sealedElsewhere = { id: 'sealed', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Sealed Elsewhere', linkByEmail: false, endSession: false };
    await new Upstreams(latchkey.kv, ['a secret this server does not hold, long enough to seal']).add(sealedElsewhere);
    try {
      assert.ok(await links.linkConfirmed('sealed', 'person-at-sealed', account.sub, {}, sealedElsewhere.issuer));
      const shown = await browser.follow(`${latchkey.issuer}/account`);
      assert.equal(shown.status, 200, `${shown.status} ${shown.html.slice(0, 300)}`);
      assert.match(shown.html, /Sealed Elsewhere/);
      const removed = await browser.submit(page, '/account/links/remove', { id: 'fake:person-sealed-elsewhere' });
      assert.match(new URL(removed.url).search, /^\?done=links\.removed\.[\w-]+$/, `${removed.status} ${removed.url}`);
    } finally {
      await upstreams.remove('sealed');
    }
  });

  it("a passkey beside a link to an upstream no longer offered is the person's last way in: the account page keeps it", async () => {
    const { account } = await accountPageThrough('person-passkey-dead-link');
    const gone = { id: 'gone', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Gone', linkByEmail: false, endSession: false };
    await upstreams.add(gone);
    assert.ok(await links.linkConfirmed('gone', 'person-passkey-at-gone', account.sub, {}, gone.issuer));
    await upstreams.remove('gone');
    const key = softPasskey();
    await registerSoftPasskeys(latchkey, account.sub, key);
    // Signed in with the passkey alone, in another browser: a recent sign-in that may change credentials.
    const browser = new Agent();
    const login = await browser.follow(`${latchkey.issuer}/account`);
    let page = await browser.submit(login, '/passkey', { credential: assertion(key, new URL(latchkey.issuer).origin, passkeyChallenge(login), account.sub, 1) });
    if (isConsent(page)) page = await browser.submit(page, '/confirm', {});
    assert.equal(new URL(page.url).pathname, '/account', `${page.status} ${page.url}`);
    // Two ways in: the passkey and fake's link. fake's goes.
    page = await browser.submit(page, '/account/links/remove', { id: 'fake:person-passkey-dead-link' });
    assert.match(new URL(page.url).search, /^\?done=links\.removed\.[\w-]+$/, `${page.status} ${page.url}`);
    const refused = await browser.submit(page, '/account/passkeys/remove', { id: key.id });
    assert.equal(refused.status, 409, `the passkey is the last way in beside a dead link (${refused.status} ${refused.url})`);
    assert.match(refused.html, /only way you can sign in/);
    assert.equal((await latchkey.secondFactors.summary(account.sub)).passkeys.length, 1);
  });

  /** A person with an authenticator app, at the second-factor page of a sign-in through the upstream `id` (added now at the fake's issuer). */
  async function waitingForSecondFactor(id: string, sub: string) {
    const first = { id, issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'First', linkByEmail: false, endSession: false };
    await upstreams.add(first);
    const { account } = (await links.signIn(first, sub, {})) as { account: { sub: string; username: string } };
    const { secret } = await latchkey.secondFactors.totp.begin(account.sub, account.username, 'test-session');
    assert.ok(await latchkey.secondFactors.totp.confirm(account.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'));
    fake.state.mode = 'good';
    fake.state.sub = sub;
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: id });
    const browser = new Agent();
    const page = await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT);
    assert.ok(page.html.includes('/second-factor'), `expected the second-factor page, got ${page.status} ${page.url}`);
    const code = () => TOTP.generate({ secret: Secret.fromBase32(secret) });
    // The operator withdraws the provider and gives its id to another.
    const swap = async () => {
      await upstreams.remove(id);
      await upstreams.add({ ...first, issuer: fake.state.issuer.replace('127.0.0.1', 'localhost'), displayName: 'Another' });
    };
    return { browser, page, code, swap };
  }

  /** Where the sign-in ended at the app: access_denied, no code. */
  async function deniedAtApp(browser: Agent, page: Awaited<ReturnType<Agent['follow']>>) {
    const done = isConsent(page) ? await browser.submit(page, '/confirm', {}, REDIRECT) : page;
    assert.ok(done.url.startsWith(REDIRECT), `expected the app, got ${done.status} ${done.url}`);
    assert.equal(new URL(done.url).searchParams.get('error'), 'access_denied', `the app got ${done.url}`);
    assert.equal(new URL(done.url).searchParams.get('code'), null);
  }

  it("an upstream removed and another provider added under its id while a sign-in through the first waits for its second factor: the sign-in does not complete, the app gets access_denied", async () => {
    const { browser, page, code, swap } = await waitingForSecondFactor('swapped', 'person-swapped-waiting');
    await swap();
    try {
      await deniedAtApp(browser, await browser.submit(page, '/second-factor', { method: 'totp', code: code() }, REDIRECT));
    } finally {
      await upstreams.remove('swapped');
    }
  });

  it("an upstream removed and another provider added under its id while a finished sign-in through the first holds back its resume: the sign-in does not complete, the app gets access_denied", async () => {
    const { browser, page, code, swap } = await waitingForSecondFactor('swapheld', 'person-swapped-held');
    const held = await browser.submit(page, '/second-factor', { method: 'totp', code: code() }, `${latchkey.issuer}/auth/`);
    assert.match(held.url, /\/auth\/[^/?]+$/, `expected the resume, got ${held.status} ${held.url}`);
    await swap();
    try {
      await deniedAtApp(browser, await browser.follow(held.url, {}, REDIRECT));
    } finally {
      await upstreams.remove('swapheld');
    }
  });

  it("a link offered by email by an upstream whose id is given to another provider before the person signs in to the account: the sign-in goes on, nothing is linked", async () => {
    const first = { id: 'offering', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email', displayName: 'Offering', linkByEmail: true, endSession: false };
    await upstreams.add(first);
    const password = 'erin has a local password';
    await latchkey.accounts.create('erin', password, { email: 'erin@fake.example', email_verified: true });
    try {
      fake.state.mode = 'good';
      fake.state.sub = 'erin';
      const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'offering' });
      const browser = new Agent();
      const offered = await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT);
      assert.match(offered.html, /already exists here\. Sign in to it/, `${offered.status} ${offered.url}`);
      await upstreams.remove('offering');
      await upstreams.add({ ...first, issuer: fake.state.issuer.replace('127.0.0.1', 'localhost'), displayName: 'Another' });
      let done = await browser.submit(offered, '/login', { username: 'erin', password }, REDIRECT);
      if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, REDIRECT);
      assert.ok(new URL(done.url).searchParams.get('code'), `erin signed in with her password: ${done.status} ${done.url}`);
      assert.equal(await links.find('offering', 'erin'), undefined, 'the offer was the removed provider\'s: nothing linked');
    } finally {
      await upstreams.remove('offering');
    }
  });
});
