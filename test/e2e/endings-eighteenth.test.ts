/**
 * The eighteenth passes, "some endings do not end" (docs/security-passes.md, "Looked at in the
 * eighteenth passes: endings that do not end (h2)"), black box: a server on a redis-server of the
 * test's own, the developer page and the account page through the test's browser agent, openid-client
 * as the app, the CLI as the operator.
 *
 * Found and fixed: a person removed (`latchkey users remove`) left the apps they had registered on the
 * developer page working, listed on no developer page: the app's secret (held by whoever held the
 * account) still got `client_credentials` tokens, and the grants other people had given the app
 * still refreshed. Their removal now removes the apps they own, as a client's deletion does. And a
 * registration under way as they are removed leaves no app behind: the removal waits on the owner's
 * claim the registration holds (registration/clients.ts removeOwned), and a registration that takes
 * the claim after the removal asks the page's sign-in again and registers nothing.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { developerSignIn } from '../helpers/developer.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { introspect, machineClient } from '../helpers/tokens.js';

const PASSWORD = 'eighteenth endings password of the person';
const REDIRECT = 'https://app.endings-eighteenth.example.test/callback';
const RS = { id: 'rs-eighteenth', secret: 'endings-eighteenth-introspecting-secret-with-plenty-of-entropy' };

describe('e2e: eighteenth passes, endings that do not end', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [machineClient(RS)] });
  });
  after(async () => {
    await server?.stop();
  });

  /** `username` registers a web app on the developer page: its id and secret, as the page shows them once. */
  async function developerApp(username: string, name: string): Promise<{ id: string; secret: string }> {
    const { agent, page } = await developerSignIn(server.issuer, username, PASSWORD);
    const made = await agent.submit(page, '/developer/apps', { name, type: 'web', redirect_uris: REDIRECT });
    assert.match(made.html, /App registered/, `${made.status} ${made.url}`);
    const id = /id="client-id">([^<]+)</.exec(made.html)?.[1];
    const secret = /id="client-secret">([^<]+)</.exec(made.html)?.[1];
    assert.ok(id && secret, 'the page shows the app’s id and secret');
    return { id, secret };
  }

  const token = async (app: { id: string; secret: string }, body: Record<string, string>) => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(app.id)}:${encodeURIComponent(app.secret)}`).toString('base64')}` },
      body: new URLSearchParams(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  /** `username` signs in to `app` with offline access: its tokens. */
  async function signedIn(app: { id: string; secret: string }, username: string) {
    const config = await oidc.discovery(new URL(server.issuer), app.id, app.secret, oidc.ClientSecretBasic(app.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(tokens.refresh_token, 'offline access');
    return { access: tokens.access_token, refresh: tokens.refresh_token };
  }

  it('a person removed (latchkey users remove): the apps they registered on the developer page go with them, with every token other people gave them', async () => {
    await server.accounts.create('dev', PASSWORD);
    await server.accounts.create('alice', PASSWORD);
    const app = await developerApp('dev', 'Dev Reports');
    const alices = await signedIn(app, 'alice');
    assert.equal((await token(app, { grant_type: 'client_credentials' })).status, 200, 'the app gets its own token before');
    // Another developer's app is not theirs and stays.
    await server.accounts.create('other', PASSWORD);
    const others = await developerApp('other', 'Other Reports');

    const run = await latchkey(server.env, ['users', 'remove', 'dev']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`removed dev; removed the app ${app.id} \\(Dev Reports\\) they registered`), run.stdout);

    const own = await token(app, { grant_type: 'client_credentials' });
    assert.equal(own.status, 401, `the removed person's app still gets its own token: ${JSON.stringify(own.body)}`);
    const refreshed = await token(app, { grant_type: 'refresh_token', refresh_token: alices.refresh });
    assert.notEqual(refreshed.status, 200, 'alice’s grant to the removed person’s app still refreshes');
    assert.equal((await introspect(server.url, RS, alices.access)).active, false, 'alice’s access token to it is active');
    assert.equal(await server.clients.get(app.id), undefined, 'the app is still stored');

    assert.equal((await token(others, { grant_type: 'client_credentials' })).status, 200, 'another developer’s app stays');

    // Kept when the operator says so (the app serves others), and named.
    const kept = await latchkey(server.env, ['users', 'remove', 'other', '--keep-apps']);
    assert.equal(kept.status, 0, kept.stderr);
    assert.match(kept.stdout, new RegExp(`removed other; kept the app ${others.id} \\(Other Reports\\) they registered \\(latchkey clients remove ${others.id} ends it\\)`), kept.stdout);
    assert.equal((await token(others, { grant_type: 'client_credentials' })).status, 200, 'an app kept');
  });

  /**
   * `username`'s developer page sends a registration, held at `where` (a method of the server's
   * Clients, the page's own) until `release` settles; meanwhile the operator removes them (CLI). The
   * registration's answer and the removal's run.
   */
  async function registrationAcrossRemoval(username: string, where: 'add' | 'addOwned', release: (removal: Promise<unknown>) => Promise<unknown>) {
    const { agent, page } = await developerSignIn(server.issuer, username, PASSWORD);
    const clients = server.clients as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = clients[where]!;
    let reached!: () => void;
    const atHold = new Promise<void>((resolve) => (reached = resolve));
    // Wrapped: a promise resolved with a promise would wait for it.
    let started!: (run: { removal: Promise<unknown> }) => void;
    const removalStarted = new Promise<{ removal: Promise<unknown> }>((resolve) => (started = resolve));
    clients[where] = async function (this: unknown, ...args: unknown[]) {
      clients[where] = original;
      reached();
      await release((await removalStarted).removal);
      return original.apply(this, args);
    };
    try {
      const registration = agent.submit(page, '/developer/apps', { name: `Late ${username}`, type: 'web', redirect_uris: REDIRECT });
      await atHold;
      const removal = latchkey(server.env, ['users', 'remove', username]);
      started({ removal });
      const [answer, run] = await Promise.all([registration, removal]);
      return { answer, run };
    } finally {
      clients[where] = original;
    }
  }

  const stored = async (name: string) => (await server.clients.list()).filter((app) => app.client_name === name);

  it('an app registration under way on the developer page as its person is removed: the app is not left behind (the removal waits for the registration and takes its app)', async () => {
    await server.accounts.create('dana', PASSWORD);
    // Held inside the registration's claim, after its count: released once the removal has run, or
    // (as it should) waits on the claim: a while after it disabled the person, its first write.
    const disabledAWhile = async () => {
      await eventually(async () => assert.equal((await server.accounts.findByUsername('dana'))?.disabled, true), 400, 50);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    };
    const { answer, run } = await registrationAcrossRemoval('dana', 'add', (removal) => Promise.race([removal, disabledAWhile()]));
    assert.equal(run.status, 0, run.stderr);
    assert.ok(answer.status < 500, `${answer.status}`);
    assert.deepEqual(await stored('Late dana'), [], 'an app of the removed person is left behind');
  });

  it('an app registration whose page read its person’s session before they were removed, going on after the removal: nothing is registered', async () => {
    await server.accounts.create('eric', PASSWORD);
    // Held before the registration's claim, until the removal has finished.
    const { answer, run } = await registrationAcrossRemoval('eric', 'addOwned', (removal) => removal);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(answer.status < 500, `${answer.status}`);
    assert.doesNotMatch(answer.html, /App registered/);
    assert.deepEqual(await stored('Late eric'), [], 'an app registered for a removed person');
  });
});
