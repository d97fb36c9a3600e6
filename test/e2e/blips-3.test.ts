/**
 * The third blips pass (2026-12-04), black box: an ending whose Redis connection is cut (the relay
 * drops every connection, as a proxy restarted or a redis-server killed and started again with its
 * data) after one of its writes, that write passed on to Redis and its answer lost, swept write by
 * write over the whole ending: an RFC 7009 revocation, a sign-out everywhere (RP-initiated logout),
 * `latchkey users disable`, `latchkey clients remove`, the admin API's DELETE, `latchkey grants
 * revoke`, the account page's withdrawal. The house rule: a cut-off ending is said not done (503 with
 * Retry-After, a non-zero exit) and finishes when run again, or it is done whole; afterwards every
 * token got before is refused at introspection, userinfo, refresh and by `latchkey/resource-server`
 * following the feed. The HTTP endings (the account page's withdrawal among them) under a Redis
 * paused at each write in turn as well. And a client made (admin API, developer page, RFC 7591)
 * while Redis pauses at its record's write: answered 503, it was made once Redis resumed, and the
 * retry made a second one (fixed: a 503 made nothing).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually, pastOutages } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { type RedisServer } from '../helpers/redis.js';
import { hasWrite, scriptOn, startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';
import { developerSignIn } from '../helpers/developer.js';
import { initialAccessToken } from '../helpers/operator.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { type TestServer } from '../helpers/server.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, basic, clientCredentialsToken, grantFeed, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'third blips pass test password';
const REDIRECT = 'https://app.example.test/callback';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };


/** What an ending answered: done, or said not done (503 with Retry-After, a non-zero exit). */
type Outcome = 'done' | 'not done';
/**
 * How Redis goes away at the ending's k-th write: every connection cut with that write passed on
 * and its answer lost (`cut`) or dropped unsent (`cut-dropped`), or Redis paused with it in its
 * socket past REDIS_COMMAND_TIMEOUT and resumed after the answer (`pause`).
 */
type Blip = 'cut' | 'cut-dropped' | 'pause';

interface Tokens {
  /** A JWT for the API (the code exchange's, asked for it). */
  readonly jwt: string;
  /** An opaque access token (a second, silent sign-in's), for userinfo. */
  readonly opaque: string;
  /** The refresh tokens of both (none without offline access). */
  readonly refresh: readonly string[];
}

describe('e2e: third blips pass: an ending whose Redis connection is cut after each of its writes', function () {
  this.timeout(600_000);
  let relayed: RelayedServer;
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let helper: ResourceServer;
  let admin: string;
  let made = 0;

  before(async () => {
    // Hashing at its cheapest: each cut signs a new person in (twice), the setup of the sweep, not what it tests; no ending hashes.
    relayed = await startRelayedServer({ RESOURCE_SERVERS }, { commandTimeout: 500, appendonly: true, cheapHashing: true, clients: [machineClient(RS), machineClient(OPS)] });
    ({ redis, relay, server } = relayed);
    await grantFeed(server, RS.id);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    await helper.sync();
  });
  after(async () => {
    helper?.close();
    await relayed?.stop();
  });

  /**
   * A new app and person (each cut gets its own, so that what one ended says nothing of another),
   * made again (up to three times) when the store timed a command of it out: with
   * REDIS_COMMAND_TIMEOUT at 500 ms, a loaded runner does now and then, as for signedIn below.
   */
  async function fresh(): Promise<{ app: ClientCredentials; username: string; sub: string }> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await made1();
      } catch (error) {
        if (attempt === 3) throw error;
        await reconnected();
      }
    }
  }

  async function made1(): Promise<{ app: ClientCredentials; username: string; sub: string }> {
    made += 1;
    const app = { id: `app-${made}`, secret: `app-${made}-client-secret-with-plenty-of-entropy-0123456789` };
    await server.clients.add({ client_id: app.id, client_secret: app.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' });
    const username = `person-${made}`;
    const { sub } = await server.accounts.create(username, PASSWORD);
    return { app, username, sub };
  }

  /** `username` signs in to `app` in `agent`: a JWT for the API, then silently an opaque token, with offline access or not. */
  async function signIn(agent: Agent, app: ClientCredentials, username: string, offline: boolean): Promise<Tokens> {
    const config = await oidc.discovery(new URL(server.issuer), app.id, app.secret, oidc.ClientSecretBasic(app.secret), { execute: [oidc.allowInsecureRequests] });
    const scope = offline ? 'openid offline_access read' : 'openid read';
    const first = await startAuthorization(agent, config, REDIRECT, { scope, prompt: 'consent', resource: API });
    const done = await signInSteps(agent, first.page, { username, password: PASSWORD, stopAt: REDIRECT });
    const jwt = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: first.verifier, expectedState: oidc.skipStateCheck }, { resource: API });
    const second = await startAuthorization(agent, config, REDIRECT, { scope: offline ? 'openid offline_access' : 'openid', prompt: offline ? 'consent' : 'none' });
    const again = second.page.url.startsWith(REDIRECT) ? second.page : await signInSteps(agent, second.page, { username, password: PASSWORD, stopAt: REDIRECT });
    const opaque = await oidc.authorizationCodeGrant(config, new URL(again.url), { pkceCodeVerifier: second.verifier, expectedState: oidc.skipStateCheck });
    const refresh = [jwt.refresh_token, opaque.refresh_token].filter((token): token is string => typeof token === 'string');
    assert.equal(refresh.length, offline ? 2 : 0);
    return { jwt: jwt.access_token, opaque: opaque.access_token, refresh };
  }

  /**
   * signIn, asked again (up to three times) when a request of it failed: with REDIS_COMMAND_TIMEOUT
   * at 500 ms, a loaded runner answers one of its requests 503 now and then (seen at a load of 13:
   * the silent request's page was a 503, not the callback). The sign-in is the sweep's setup, not
   * what it tests; a sign-in that fails three times fails the test.
   */
  async function signedIn(agent: Agent, app: ClientCredentials, username: string, offline: boolean): Promise<Tokens> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await signIn(agent, app, username, offline);
      } catch (error) {
        if (attempt === 3) throw error;
        await reconnected();
      }
    }
  }

  /** Every token got before works nowhere. */
  async function nothingWorks(tokens: Tokens, app: ClientCredentials, what: string): Promise<void> {
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(app) }, body: new URLSearchParams(params) });
    for (const token of [tokens.jwt, tokens.opaque]) {
      const introspected = await pastOutages(() => fetch(`${server.url}/token/introspection`, { ...form({ token }), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(RS) } }));
      assert.equal(introspected.status, 200, `${what}: introspection answered ${introspected.status}`);
      assert.equal(((await introspected.json()) as { active?: unknown }).active, false, `${what}: an access token is active at introspection`);
    }
    const userinfo = await pastOutages(() => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.opaque}` } }));
    assert.equal(userinfo.status, 401, `${what}: userinfo answered ${userinfo.status}`);
    for (const token of tokens.refresh) {
      const refreshed = await pastOutages(() => fetch(`${server.url}/token`, form({ grant_type: 'refresh_token', refresh_token: token })));
      assert.notEqual(refreshed.status, 200, `${what}: a refresh token refreshed`);
      assert.ok(refreshed.status < 500, `${what}: a refresh answered ${refreshed.status}`);
    }
    await helper.sync();
    assert.equal(await acceptedBy(helper, tokens.jwt), false, `${what}: the JWT is accepted by an API following the feed`);
  }

  /** The server's store connection is back (ioredis reconnects after the cut). */
  const reconnected = () => eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));

  /**
   * For each k from 1: a fresh app and person signed in, the ending run with every Redis connection
   * cut at its k-th write (passed on, its answer lost); said done, nothing may work; said not done,
   * it is run again (once the server reconnected) and must be done. Until an ending runs whole
   * before its k-th write. How many cuts were made.
   */
  async function sweep(
    what: string,
    options: { offline: boolean; blip: Blip; from?: (fresh: { app: ClientCredentials; sub: string }) => string },
    ending: (context: { app: ClientCredentials; username: string; agent: Agent; tokens: Tokens }) => Promise<Outcome>,
  ): Promise<number> {
    /** Runs said not done with no blip made (a command timed out on a loaded runner): their k is tried again, up to three times. */
    let timedOut = 0;
    for (let k = 1; k < 40; k += 1) {
      const { app, username, sub } = await fresh();
      const agent = new Agent();
      const tokens = await signedIn(agent, app, username, options.offline);
      let seen = 0;
      let blipped = false;
      // A CLI's own start-up writes are not counted: from its first write that names `from` on (when given).
      const from = options.from?.({ app, sub });
      let counting = from === undefined;
      const kth = (chunk: string) => hasWrite(chunk) && (counting ||= chunk.includes(from!)) && ++seen === k;
      if (options.blip === 'pause') {
        // The k-th write and what follows wait in a paused Redis's socket, past the command timeout.
        void relay.holdFrom(kth).then(() => {
          blipped = true;
          redis.pause();
          relay.release();
        });
      } else void relay.cut(kth, { answered: options.blip === 'cut' }).then((reached) => (blipped = reached));
      const outcome = await ending({ app, username, agent, tokens });
      relay.release();
      if (options.blip === 'pause') {
        redis.resume();
        // Redis runs what waited in its socket.
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      await reconnected();
      const at = blipped ? `${what}, ${options.blip} at write ${k}` : `${what}, run whole`;
      if (outcome === 'not done') {
        // Run again until done: on a loaded runner a command of the run again may time out too (its
        // own 503, "not done" again), which an operator or an app asks again for. So may the run
        // itself before its k-th write (no blip made): then this k is tried again.
        let again = await ending({ app, username, agent, tokens });
        for (let attempt = 1; again === 'not done' && attempt < 5; attempt += 1) {
          await reconnected();
          again = await ending({ app, username, agent, tokens });
        }
        assert.equal(again, 'done', `${at}: run again once Redis is back, it is not done`);
      }
      await nothingWorks(tokens, app, `${at} (${outcome === 'done' ? 'said done at once' : 'said not done, run again'})`);
      if (!blipped && outcome === 'done') return k - 1;
      if (!blipped && (timedOut += 1) <= 3) k -= 1;
    }
    assert.fail(`${what}: still blipped at its 40th write`);
  }

  /** An HTTP answer: 2xx done, 503 with Retry-After not done; anything else fails the test. */
  function answered(what: string, status: number, retryAfter: string | null, ok: (status: number) => boolean = (s) => s >= 200 && s < 300): Outcome {
    if (status === 503) {
      assert.ok(retryAfter, `${what}: 503 without Retry-After`);
      return 'not done';
    }
    assert.ok(ok(status), `${what}: answered ${status}`);
    return 'done';
  }

  /** A CLI run through the relay (as the server reaches Redis): exit 0 done, anything else not done (one line, no stack). */
  async function cli(args: string[], alsoDone?: RegExp): Promise<Outcome> {
    const run = await latchkey(server.env, args);
    if (run.status === 0 || alsoDone?.test(run.stderr)) return 'done';
    assert.doesNotMatch(run.stderr, /\n\s+at /, `latchkey ${args.join(' ')}: a stack trace`);
    return 'not done';
  }

  type Ending = (context: { app: ClientCredentials; username: string; agent: Agent; tokens: Tokens }) => Promise<Outcome>;

  const revocation: Ending = async ({ app, tokens }) => {
    let outcome: Outcome = 'done';
    for (const token of tokens.refresh) {
      const response = await fetch(`${server.url}/token/revocation`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(app) }, body: new URLSearchParams({ token }) });
      if (answered('revocation', response.status, response.headers.get('retry-after')) === 'not done') outcome = 'not done';
    }
    return outcome;
  };
  const signOut: Ending = async ({ agent }) => {
    const confirmation = await agent.follow(`${server.url}/session/end`);
    if (confirmation.status === 503) return answered('sign-out page', confirmation.status, confirmation.headers.get('retry-after'));
    assert.match(confirmation.html, /session\/end\/confirm/);
    const page = await agent.submit(confirmation, '/session/end/confirm', { logout: 'yes' });
    return answered('sign-out', page.status, page.headers.get('retry-after'));
  };
  const adminDelete: Ending = async ({ app }) => {
    const response = await fetch(`${server.url}/admin/clients/${app.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
    // Run again after a removal cut off once its record was gone: 404 (what it held ended before).
    return answered('admin DELETE', response.status, response.headers.get('retry-after'), (s) => s === 204 || s === 404);
  };
  const withdrawal: Ending = async ({ app, agent }) => {
    const account = await agent.follow(`${server.issuer}/account`);
    if (account.status === 503) return answered('account page', account.status, account.headers.get('retry-after'));
    // Run again after a withdrawal said not done that went through: nothing listed to withdraw.
    if (!account.html.includes(`value="${app.id}"`)) return 'done';
    const page = await agent.submit(account, '/apps/withdraw', { client: app.id });
    return answered('withdrawal', page.status, page.headers.get('retry-after'), (s) => s === 200 && /Access withdrawn/.test(page.html));
  };

  const endings: [string, boolean, Ending][] = [
    ['an RFC 7009 revocation of both refresh tokens', true, revocation],
    ['a sign-out everywhere (RP-initiated logout)', false, signOut],
    ['the admin API’s DELETE /admin/clients/{id}', true, adminDelete],
    ['the account page’s withdrawal of the app’s access', true, withdrawal],
  ];
  // (A cut with the write dropped unsent, not passed on, was performed too and held: the same states as a cut at the write before.)
  for (const blip of ['cut', 'pause'] as const) {
    for (const [what, offline, ending] of endings) {
      it(`${what}, ${blip === 'pause' ? 'Redis paused' : blip === 'cut' ? 'the connection cut (the write run, its answer lost)' : 'the connection cut (the write lost)'} at each of its writes in turn (held)`, async () => {
        assert.ok((await sweep(what, { offline, blip }, ending)) > 2, 'the ending writes');
      });
    }
  }

  // The CLI's own connection goes through the relay too: the cut is of its connection and the server's.
  it('latchkey users disable, its connection cut at each of its writes in turn (held)', async () => {
    assert.ok((await sweep('users disable', { offline: true, blip: 'cut', from: ({ sub }) => sub }, ({ username }) => cli(['users', 'disable', username]))) > 2);
  });

  it('latchkey grants revoke --user, its connection cut at each of its writes in turn (held)', async () => {
    assert.ok((await sweep('grants revoke --user', { offline: true, blip: 'cut', from: ({ sub }) => sub }, ({ username }) => cli(['grants', 'revoke', '--user', username]))) > 2);
  });

  it('latchkey clients remove, its connection cut at each of its writes in turn (held)', async () => {
    // Run again after a removal cut off once its record was gone: "no client" (what it held ended before).
    assert.ok((await sweep('clients remove', { offline: true, blip: 'cut', from: ({ app }) => app.id }, ({ app }) => cli(['clients', 'remove', app.id], /no client "/))) > 2);
  });
});

describe('e2e: third blips pass: a client made while Redis pauses at its write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let server: TestServer;
  let admin: string;

  before(async () => {
    // A command waits half a second: a Redis paused longer is an outage (503).
    relayed = await startRelayedServer({}, { commandTimeout: 500, clients: [machineClient(OPS)] });
    ({ server } = relayed);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    await server.accounts.create('dev', PASSWORD);
  });
  after(() => relayed?.stop());

  /** `request`, its write of a client's record (a script on oidc:Client:…) reaching a paused Redis, which runs it once resumed, after the answer. */
  const pausedAtTheClientsWrite = <T>(request: () => Promise<T>): Promise<T> => relayed.pausedAt(scriptOn('oidc:Client:'), request);

  const listed = async () => {
    const response = await fetch(`${server.url}/admin/clients`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { client_id: string }[]).map((client) => client.client_id).filter((id) => id !== OPS.id);
  };

  it('POST /admin/clients answered 503 made no client: the operator’s retry makes the one client, whose secret was shown (before the fix the first was made once Redis resumed, a second client with a secret nobody was shown)', async () => {
    const before = await listed();
    const metadata = { client_name: 'Reports', redirect_uris: ['https://reports.example.test/callback'] };
    const post = () => fetch(`${server.url}/admin/clients`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    const blip = await pausedAtTheClientsWrite(post);
    assert.equal(blip.status, 503);
    assert.equal(blip.headers.get('retry-after'), '2');
    // Before the fix: the client was there, made after its 503.
    assert.deepEqual(await listed(), before, 'a creation answered 503 made no client');
    const retried = await post();
    assert.equal(retried.status, 201);
    const made = (await retried.json()) as { client_id: string; client_secret: string };
    assert.deepEqual(await listed(), [...before, made.client_id].sort(), 'one client, the one the operator was shown');
    const token = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: made.client_id, secret: made.client_secret }) }, body: 'grant_type=client_credentials' });
    assert.notEqual(token.status, 401, 'and its secret is the one shown');
  });

  it('an RFC 7591 registration answered 503 at its client’s write made no client: registered again, one client (the same path: fails without the fix too)', async () => {
    const before = await listed();
    const iat = await initialAccessToken(server);
    const register = () => fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` }, body: JSON.stringify({ client_name: 'Registered', redirect_uris: ['https://registered.example.test/callback'] }) });
    const blip = await pausedAtTheClientsWrite(register);
    assert.equal(blip.status, 503);
    assert.deepEqual(await listed(), before, 'a registration answered 503 made no client');
    const again = await register();
    assert.equal(again.status, 201);
    const { client_id: id } = (await again.json()) as { client_id: string };
    assert.deepEqual(await listed(), [...before, id].sort());
  });

  it('an app registered on the developer page answered 503 made no app: the developer’s page lists none, and registered again it is the one app (before the fix: two, one whose secret nobody was shown)', async () => {
    const { agent, page } = await developerSignIn(server.issuer, 'dev', PASSWORD);
    const form = { name: 'Dev Reports', type: 'web', redirect_uris: 'https://dev.example.test/callback' };
    const blip = await pausedAtTheClientsWrite(() => agent.submit(page, '/developer/apps', form));
    assert.equal(blip.status, 503);
    const apps = async () => [...(await agent.follow(`${server.issuer}/developer`)).html.matchAll(/<h2><bdi>Dev Reports<\/bdi><\/h2>/g)].length;
    // Before the fix: listed, made after its 503.
    assert.equal(await apps(), 0, 'a registration answered 503 made no app');
    const again = await agent.submit(await agent.follow(`${server.issuer}/developer`), '/developer/apps', form);
    assert.equal(again.status, 200);
    assert.match(again.html, /App registered/);
    assert.equal(await apps(), 1);
  });
});
