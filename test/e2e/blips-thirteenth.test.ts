/**
 * The thirteenth fresh-eyes passes (2026-12-07), Redis blips in the flows earlier sweeps left: a
 * person's passkeys, authenticator app and recovery codes, password, sessions, apps and links on
 * the account page, and a developer's apps on the developer page. Each action is cut off (the test
 * relay drops every connection to Redis) at each of its writes in turn, the write dropped, or run
 * and its answer lost; the house rule: answered 503 (a page, no stack trace), then, Redis reached
 * again, what was written is whole (no index without its record, no record without its index) and
 * the same action asked again is done.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { hasWrite, scriptOn, startRelay, type Relay } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { authenticatorAdded, signedInToAccountPage, signInSteps, totpCode } from '../helpers/sign-in.js';
import { developerSignIn } from '../helpers/developer.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { assertion, attestation, passkeyChallenge, softPasskey } from '../helpers/soft-passkeys.js';

const PASSWORD = 'thirteenth blips pass password';
const NEW_PASSWORD = 'thirteenth blips pass new password';
const REDIRECT = 'https://notes.example.test/callback';
const NOTES_SECRET = 'notes-thirteenth-secret-with-plenty-of-entropy-0123';

describe('e2e: thirteenth blips pass: account and developer pages cut off at each write', function () {
  this.timeout(600_000);
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let direct: Redis;
  let people = 0;
  let links: UpstreamLinks;

  before(async () => {
    redis = await startRedisServer();
    relay = await startRelay(redis.port);
    server = await startServer({ port: await freePort(), redisUrl: relay.url, cheapHashing: true, clients: [{ client_id: 'notes', client_secret: NOTES_SECRET, redirect_uris: [REDIRECT] }] });
    links = new UpstreamLinks(server.kv, server.accounts);
    direct = new Redis(redis.url, { keyPrefix: server.config.redis.keyPrefix });
  });
  after(async () => {
    relay?.release();
    direct?.disconnect();
    await server?.stop();
    relay?.close();
    await redis?.stop();
  });

  const person = async () => {
    const username = `blip-${(people += 1)}`;
    const { sub } = await server.accounts.create(username, PASSWORD);
    return { username, sub, ...(await signedInToAccountPage(server.issuer, username, PASSWORD)) };
  };

  /** The words of a page's error, if any. */
  const errorOf = (page: Page) => /class="error[^>]*>([^<]*)/.exec(page.html)?.[1] ?? '';

  /**
   * `act` cut off at its `n`th write (a chunk with a write on any connection, the server's timers'
   * aside): what it answered, or undefined when it had fewer writes than `n`.
   */
  async function cutAt<T extends { status: number }>(n: number, answered: boolean, act: () => Promise<T>): Promise<T | undefined> {
    let seen = 0;
    const cut = relay.cut((chunk) => hasWrite(chunk) && (seen += 1) === n, { answered });
    const answer = await act();
    relay.release();
    if (!(await cut)) return undefined;
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    return answer;
  }

  /** A blip's answer: 503 with Retry-After, a page that says so, no stack trace. */
  function blip(page: Page, what: string) {
    assert.equal(page.status, 503, `${what}: ${page.status} ${page.url} ${errorOf(page)}`);
    assert.ok(Number(page.headers.get('retry-after')) > 0, `${what}: Retry-After`);
    assert.doesNotMatch(page.html, /\bat .*\.(js|ts):\d+/, `${what}: no stack trace`);
  }

  /**
   * Sweeps `act` (from what `prepare` made): cut off at its first write, its second, … until it has
   * no more, each write dropped and then run with its answer lost; after each, `whole` holds, and
   * `again` (the same thing asked again, by the person) is done, with `whole` holding after it too.
   */
  async function sweep<S>(what: string, prepare: () => Promise<S>, act: (state: S) => Promise<Page>, whole: (state: S, settled: boolean) => Promise<void>, again: (state: S) => Promise<void>) {
    for (const answered of [false, true]) {
      for (let n = 1; ; n += 1) {
        const state = await prepare();
        const cut = `${what}, cut at write ${n}${answered ? ' (run, its answer lost)' : ''}`;
        const page = await cutAt(n, answered, () => act(state));
        if (!page) {
          assert.ok(n > 1, `${what} writes something`);
          break;
        }
        // A write run before the cut may have been the last that mattered: done is done.
        if (page.status !== 503) assert.ok(page.status < 500, `${cut}: ${page.status} ${errorOf(page)}`);
        else blip(page, cut);
        await whole(state, false).catch((error: Error) => assert.fail(`${cut}: ${error.message}`));
        await again(state).catch((error: Error) => assert.fail(`${cut}, then again: ${error.message}`));
        await whole(state, true).catch((error: Error) => assert.fail(`${cut}, then again: ${error.message}`));
      }
    }
  }

  /**
   * No durable passkey owner claim of `sub` names a passkey their record does not hold (a claim of
   * nothing, for ever), unless `removing`: a removal cut off after its record let go of the passkey
   * leaves its claim durable (one made to expire before could run out under a passkey still held, for
   * another to register: review of the thirteenth passes, h17), and `#claim` takes it over as one a
   * reset leaves. `settled` (asked again), every passkey they hold is claimed, durably, by them.
   */
  async function passkeysWhole(sub: string, settled: boolean, removing = false) {
    const held = (await server.secondFactors.records.read(sub)).passkeys.map((passkey) => passkey.id).sort();
    const prefix = server.config.redis.keyPrefix;
    const durable: string[] = [];
    for (const key of await direct.keys(`${prefix}mfa:passkey-owner:*`)) {
      const bare = key.slice(prefix.length);
      if ((await direct.get(bare)) === sub && (await direct.ttl(bare)) === -1) durable.push(bare.slice('mfa:passkey-owner:'.length));
    }
    const orphans = durable.filter((id) => !held.includes(id));
    if (!removing) assert.deepEqual(orphans, [], 'no durable claim names a passkey the person does not hold');
    if (!settled) return;
    // Durably, or for a week (a registration cut off as its claim was made durable), till its next sign-in.
    const claimed = [];
    for (const id of held) if ((await direct.get(`mfa:passkey-owner:${id}`)) === sub) claimed.push(id);
    assert.deepEqual(claimed, held, 'every passkey the person holds is theirs');
  }

  const origin = () => new URL(server.issuer).origin;
  const accountPage = (agent: Agent) => agent.follow(`${server.issuer}/account`);
  const addPasskey = async (agent: Agent, page: Page, key = softPasskey()) =>
    agent.submit(page, '/account/passkeys/add', { name: 'laptop', credential: attestation(key, origin(), passkeyChallenge(page)) });
  const passkeyIds = async (sub: string) => (await server.secondFactors.records.read(sub)).passkeys.map((passkey) => passkey.id);

  it('a passkey added: a 503, nothing claimed for ever that the person does not hold, added when asked again', async () => {
    await sweep(
      'a passkey added',
      person,
      ({ agent, page }) => addPasskey(agent, page),
      ({ sub }, settled) => passkeysWhole(sub, settled),
      async ({ agent, sub }) => {
        const before = (await passkeyIds(sub)).length;
        const added = await addPasskey(agent, await accountPage(agent));
        assert.match(added.url, /done=passkeys\.added/, `${added.status} ${errorOf(added)}`);
        assert.equal((await passkeyIds(sub)).length, before + 1);
      },
    );
  });

  it('a passkey whose registration was cut off as its claim was made durable: claimed for a week, durably once it signs in', async () => {
    const { sub, agent, page } = await person();
    const key = softPasskey();
    const cut = relay.cut(scriptOn('mfa:passkey-owner:'));
    const blipped = await addPasskey(agent, page, key);
    relay.release();
    assert.equal(await cut, true, 'the cut was reached');
    blip(blipped, 'the claim made durable');
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    assert.deepEqual(await passkeyIds(sub), [key.id], 'the record holds the passkey');
    assert.ok((await direct.ttl(`mfa:passkey-owner:${key.id}`)) > 0, 'claimed for a while');
    const browser = new Agent();
    const login = await browser.follow(`${server.issuer}/account`);
    const signedIn = await browser.submit(login, '/passkey', { credential: assertion(key, origin(), passkeyChallenge(login), sub, 1) });
    assert.equal(signedIn.url, `${server.issuer}/account`, `signed in with the passkey: ${signedIn.status} ${signedIn.url} ${errorOf(signedIn)}`);
    assert.equal(await direct.ttl(`mfa:passkey-owner:${key.id}`), -1, 'claimed durably');
    await passkeysWhole(sub, true);
  });

  it('a passkey removed: a 503, every passkey still held claimed, removed when asked again', async () => {
    await sweep(
      'a passkey removed',
      async () => {
        const made = await person();
        await addPasskey(made.agent, made.page);
        await addPasskey(made.agent, await accountPage(made.agent));
        const [id] = await passkeyIds(made.sub);
        return { ...made, id: id!, page: await accountPage(made.agent) };
      },
      ({ agent, page, id }) => agent.submit(page, `/account/passkeys/remove`, { id }),
      ({ sub }, settled) => passkeysWhole(sub, settled, true),
      async ({ agent, sub, id }) => {
        if (!(await passkeyIds(sub)).includes(id)) return;
        const page = await accountPage(agent);
        const removed = await agent.follow(new URL('/account/passkeys/remove', page.url).href, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf: formIn(page.html, '/account/passkeys/remove').hidden.csrf!, id }),
        });
        assert.match(removed.url, /done=passkeys\.removed/, `${removed.status} ${errorOf(removed)}`);
        assert.ok(!(await passkeyIds(sub)).includes(id));
      },
    );
  });

  it('an authenticator app set up: a 503, then set up when asked again', async () => {
    await sweep(
      'an authenticator app confirmed',
      async () => {
        const made = await person();
        const setup = await made.agent.submit(made.page, '/account/authenticator/start', {});
        const secret = setup.html.match(/id="totp-secret">([^<]+)</)?.[1]?.replace(/\s/g, '');
        assert.ok(secret, `a setup page: ${setup.status} ${errorOf(setup)}`);
        return { ...made, setup, secret };
      },
      ({ agent, setup, secret }) => agent.submit(setup, '/account/authenticator/confirm', { code: totpCode(secret, -1) }),
      async ({ sub }) => void (await server.secondFactors.summary(sub)),
      async ({ agent, sub }) => {
        if ((await server.secondFactors.summary(sub)).totp) return;
        await authenticatorAdded(agent, await accountPage(agent));
        assert.ok((await server.secondFactors.summary(sub)).totp);
      },
    );
  });

  it('an authenticator app removed: a 503, then removed when asked again', async () => {
    await sweep(
      'an authenticator app removed',
      async () => {
        const made = await person();
        const { page } = await authenticatorAdded(made.agent, made.page);
        return { ...made, page };
      },
      ({ agent, page }) => agent.submit(page, '/account/authenticator/remove', {}),
      async ({ sub }) => void (await server.secondFactors.summary(sub)),
      async ({ agent, sub }) => {
        if (!(await server.secondFactors.summary(sub)).totp) return;
        const removed = await agent.submit(await accountPage(agent), '/account/authenticator/remove', {});
        assert.match(removed.url, /done=authenticator\.removed/, `${removed.status} ${removed.url} ${errorOf(removed)}`);
        assert.equal((await server.secondFactors.summary(sub)).totp, undefined);
      },
    );
  });

  it('recovery codes made: a 503, then made when asked again, the codes shown working', async () => {
    await sweep(
      'recovery codes made',
      async () => {
        const made = await person();
        const { page, secret } = await authenticatorAdded(made.agent, made.page);
        return { ...made, page, secret };
      },
      ({ agent, page }) => agent.submit(page, '/account/recovery-codes', {}),
      async ({ sub }) => void (await server.secondFactors.summary(sub)),
      async ({ agent, sub, username, secret }) => {
        let page = await accountPage(agent);
        // A blip as this browser's session was given its new id signs it out (sessions.ts renewId): it signs in again.
        if (page.url !== `${server.issuer}/account`) ({ agent, page } = await signedInToAccountPage(server.issuer, username, PASSWORD, () => totpCode(secret)));
        const shown = await agent.submit(page, '/account/recovery-codes', {});
        const codes = [...shown.html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((match) => match[1]!);
        assert.equal(codes.length, 10, `${shown.status} ${shown.url} ${errorOf(shown)}`);
        assert.equal((await server.secondFactors.summary(sub)).recoveryCodesLeft, 10);
        assert.ok(await server.secondFactors.recoveryCodes.use(sub, codes[0]!, 'a test sign-in'), 'a code shown works');
      },
    );
  });

  it('another session signed out: a 503, then signed out when asked again', async () => {
    await sweep(
      'another session signed out',
      async () => {
        const made = await person();
        const other = await signedInToAccountPage(server.issuer, made.username, PASSWORD);
        const page = await accountPage(made.agent);
        // The current session is listed first: the other is the second.
        const uid = [...page.html.matchAll(/name="session" value="([^"]+)"/g)].map((match) => match[1]!)[1];
        assert.ok(uid, 'the other session is listed');
        return { ...made, page, other: other.agent, uid };
      },
      ({ agent, page, uid }) => agent.submit(page, `/account/sessions/sign-out`, { session: uid }),
      async () => {},
      async ({ agent, other, uid }) => {
        const stillIn = async () => (await accountPage(other)).url === `${server.issuer}/account`;
        if (await stillIn()) {
          const page = await accountPage(agent);
          const out = await agent.follow(new URL('/account/sessions/sign-out', page.url).href, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ csrf: formIn(page.html, '/account/recovery-codes').hidden.csrf!, session: uid }),
          });
          assert.match(out.url, /done=sessions\.signed-out/, `${out.status} ${out.url} ${errorOf(out)}`);
        }
        assert.equal(await stillIn(), false, 'the other session is signed out');
      },
    );
  });

  /** A POST of the account page's form `action` with `fields`, this page's CSRF token (the page shown again, signed in again if a blip signed this browser out). */
  async function postAgain(state: { agent: Agent; username: string }, action: string, fields: Record<string, string>, password = PASSWORD): Promise<Page> {
    let page = await accountPage(state.agent);
    if (page.url !== `${server.issuer}/account`) ({ agent: state.agent, page } = await signedInToAccountPage(server.issuer, state.username, password));
    return state.agent.follow(new URL(action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: formIn(page.html, '/account/recovery-codes').hidden.csrf!, ...fields }),
    });
  }

  it('the password changed (every other session signed out): a 503, then one password works, changed when asked again', async () => {
    const change = (agent: Agent, page: Page) => agent.submit(page, '/account/password', { current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD, sign_out_others: 'yes' });
    const works = async (username: string, password: string) => (await server.accounts.verify(username, password)) !== undefined;
    await sweep(
      'the password changed',
      person,
      ({ agent, page }) => change(agent, page),
      async ({ username }) => assert.notEqual(await works(username, PASSWORD), await works(username, NEW_PASSWORD), 'one password works, the old or the new'),
      async (state) => {
        if (await works(state.username, PASSWORD)) {
          const changed = await postAgain(state, '/account/password', { current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD, sign_out_others: 'yes' });
          assert.match(changed.url, /done=password\.changed/, `${changed.status} ${errorOf(changed)}`);
        }
        assert.ok(await works(state.username, NEW_PASSWORD), 'the new password works');
      },
    );
  });

  it('an app’s access withdrawn: a 503, then withdrawn when asked again', async () => {
    const allowed = async (sub: string) => (await server.grants.ofAccount(sub)).some((grant) => grant.clientId === 'notes');
    await sweep(
      'an app’s access withdrawn',
      async () => {
        const made = await person();
        const asked = await made.agent.follow(`${server.issuer}/auth?client_id=notes&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT);
        const back = await signInSteps(made.agent, asked, { username: made.username, password: PASSWORD, stopAt: REDIRECT });
        assert.ok(back.url.startsWith(REDIRECT), `allowed: ${back.status} ${back.url}`);
        const page = await accountPage(made.agent);
        assert.match(page.html, /name="client" value="notes"/, 'the app is listed');
        return { ...made, page };
      },
      ({ agent, page }) => agent.submit(page, '/account/apps/withdraw', { client: 'notes' }),
      async () => {},
      async (state) => {
        if (await allowed(state.sub)) {
          const withdrawn = await postAgain(state, '/account/apps/withdraw', { client: 'notes' });
          assert.match(withdrawn.url, /done=apps\.withdrawn/, `${withdrawn.status} ${errorOf(withdrawn)}`);
        }
        assert.equal(await allowed(state.sub), false, 'no grant of the app is left');
        assert.doesNotMatch((await accountPage(state.agent)).html, /name="client" value="notes"/, 'the app is not listed');
      },
    );
  });

  it('an upstream link removed: a 503, then removed when asked again, the link gone and unlisted', async () => {
    await sweep(
      'an upstream link removed',
      async () => {
        const made = await person();
        const upstreamSub = `upstream-${made.username}`;
        assert.ok(await links.linkConfirmed('corp', upstreamSub, made.sub, {}), 'linked');
        return { ...made, upstreamSub, id: `corp:${upstreamSub}`, page: await accountPage(made.agent) };
      },
      ({ agent, page, id }) => agent.submit(page, '/account/links/remove', { id }),
      async ({ sub, upstreamSub }) => {
        // The account page lists the link while it stands (and lets the person remove it).
        const link = await links.find('corp', upstreamSub);
        if (link) assert.deepEqual((await links.list(sub)).map((listed) => listed.id), [`corp:${upstreamSub}`]);
      },
      async (state) => {
        if (await links.find('corp', state.upstreamSub)) {
          const removed = await postAgain(state, '/account/links/remove', { id: state.id });
          assert.match(removed.url, /done=links\.removed/, `${removed.status} ${errorOf(removed)}`);
        }
        assert.equal(await links.find('corp', state.upstreamSub), undefined, 'the link is gone');
        assert.deepEqual(await links.list(state.sub), []);
      },
    );
  });

  /** Every client the store lists is stored, and every one stored is listed (a deletion cut off is finished by the sweep of what is owed). */
  const clientsWhole = () => eventually(async () => {
    const prefix = server.config.redis.keyPrefix;
    const listed = (await direct.smembers('oidc:clients')).sort();
    const stored = (await direct.keys(`${prefix}oidc:Client:*`)).map((key) => key.slice(`${prefix}oidc:Client:`.length)).sort();
    assert.deepEqual(listed, stored, 'the clients listed are those stored');
  }, 120, 250);

  const developerPerson = async () => {
    const username = `dev-${(people += 1)}`;
    const { sub } = await server.accounts.create(username, PASSWORD);
    return { username, sub, ...(await developerSignIn(server.issuer, username, PASSWORD)) };
  };
  const developerPage = (agent: Agent) => agent.follow(`${server.issuer}/developer`);
  // Posted to the registration form itself (the first form whose action holds /developer/apps is an app's, once there is one).
  const makeApp = (agent: Agent, page: Page) =>
    agent.follow(`${server.issuer}/developer/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: formIn(page.html, '/developer/apps').hidden.csrf!, name: 'Blip app', type: 'web', redirect_uris: 'https://blip.example.test/callback' }),
    });
  const owned = async (sub: string) => (await server.clients.ownedBy(sub)).map((app) => app.client_id as string);

  it('an app made on the developer page: a 503, nothing listed but not stored, made when asked again', async () => {
    await sweep(
      'an app made',
      developerPerson,
      ({ agent, page }) => makeApp(agent, page),
      () => clientsWhole(),
      async ({ agent, sub }) => {
        const before = (await owned(sub)).length;
        // A claim cut off as it was let go is let go once the store is back: until then the person is told to try again.
        const made = await eventually(async () => {
          const page = await makeApp(agent, await developerPage(agent));
          assert.doesNotMatch(errorOf(page), /being registered at this moment/);
          return page;
        }, 20, 250);
        assert.match(made.html, /App registered/, `${made.status} ${errorOf(made)}`);
        assert.equal((await owned(sub)).length, before + 1);
      },
    );
  });

  it('an app’s secret rotated: a 503, then rotated when asked again, the secret shown working', async () => {
    await sweep(
      'a secret rotated',
      async () => {
        const made = await developerPerson();
        await makeApp(made.agent, made.page);
        const [id] = await owned(made.sub);
        return { ...made, id: id!, page: await developerPage(made.agent) };
      },
      ({ agent, page, id }) => agent.submit(page, `/developer/apps/${id}/secret`, { leaked: 'yes' }),
      () => clientsWhole(),
      async ({ agent, id }) => {
        const rotated = await agent.submit(await developerPage(agent), `/developer/apps/${id}/secret`, { leaked: 'yes' });
        const secret = /id="client-secret"[^>]*>([^<]+)</.exec(rotated.html)?.[1] ?? /<code[^>]*>([A-Za-z0-9_-]{40,})<\/code>/.exec(rotated.html)?.[1];
        assert.ok(secret, `${rotated.status} ${errorOf(rotated)}`);
        const token = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` }, body: new URLSearchParams({ grant_type: 'client_credentials' }) });
        assert.notEqual(token.status, 401, `the secret shown works: ${await token.text()}`);
      },
    );
  });

  it('an app deleted: a 503, nothing listed but not stored, deleted when asked again', async () => {
    await sweep(
      'an app deleted',
      async () => {
        const made = await developerPerson();
        await makeApp(made.agent, made.page);
        const [id] = await owned(made.sub);
        return { ...made, id: id!, page: await developerPage(made.agent) };
      },
      ({ agent, page, id }) => agent.submit(page, `/developer/apps/${id}/delete`, {}),
      () => clientsWhole(),
      async ({ agent, sub, id }) => {
        if ((await owned(sub)).includes(id)) {
          const deleted = await agent.submit(await developerPage(agent), `/developer/apps/${id}/delete`, {});
          assert.equal(deleted.url, `${server.issuer}/developer`, `${deleted.status} ${errorOf(deleted)}`);
        }
        assert.deepEqual(await owned(sub), []);
        assert.equal(await server.clients.get(id), undefined);
      },
    );
  });
});
