/**
 * Red team, twenty-fifth endings pass (docs/security-passes.md, "Looked at in the twenty-fifth endings
 * pass"): an attacker holding an app's credentials or a person's tokens while an operator ends
 * something, black box, against servers on a redis-server of the test's own reached through the test
 * relay (test/helpers/relay.ts), which holds a request at the Redis traffic named, cuts every
 * connection there or lets Redis pause past the server's command timeout.
 *
 * - An operator's ending of a person (the admin API's disable, `latchkey users disable`), a person's
 *   sign-out everywhere or of another session on the account page, cut off by Redis at the session's
 *   ending: the retry said done, and the app signed in in that session was never told by back-channel
 *   logout (nothing was left to tell it from); fixed, each fails without.
 * - The admin API's disable with an enable at once after it, across the same held requests (held).
 * - `latchkey keys revoke` while a code exchange, a refresh or a device's poll is held before it
 *   signs and after it signed (held, pinned).
 * - The admin API's disable while a refresh or a device's poll is held after it read its grant
 *   (held, pinned).
 * - `latchkey grants revoke --client` with its connection cut at each of its writes in turn (held).
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { Agent, postToAccount } from '../helpers/agent.js';
import { eventually, pastOutages } from '../helpers/eventually.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { latchkey } from '../helpers/process.js';
import { BLIP_COMMAND_TIMEOUT, commandsIn, isTimerWrite, scriptOn, startRelayedServer, WRITE_COMMANDS, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, basic, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'twenty-fifth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const DEVICE = 'device-app';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const SCOPE = 'openid offline_access read';

const form = (fields: Record<string, string>) => new URLSearchParams(fields);
const post = (url: string, fields: Record<string, string>, client?: ClientCredentials) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(client ? { authorization: basic(client) } : {}) }, body: form(fields) });

/** The server's store connection is back (ioredis reconnects after a cut). */
/**
 * A server on its own Redis through a relay (a command waits half a second: a Redis paused longer is
 * an outage, 503) with the app `id` telling `receiver` of its logouts (one the app did not take is
 * sent again a second later, swept every 0.2 s), `others` beside it, and an admin token of OPS's.
 */
async function startWithLogoutReceiver(receiver: LogoutReceiver, { id, secret }: ClientCredentials, others: Record<string, unknown>[]): Promise<{ relayed: RelayedServer; admin: string }> {
  const app = { client_id: id, client_secret: secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE, backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true };
  const relayed = await startRelayedServer(
    { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', BACKCHANNEL_RETRY_SCHEDULE: '1', BACKCHANNEL_SWEEP_INTERVAL: '0.2', RESOURCE_SERVERS },
    // Hashing at its cheapest: each cut signs a new person in, the sweep's setup; no ending here hashes,
    // and no hold or pause is timed by a hash (they wait on Redis traffic).
    { commandTimeout: BLIP_COMMAND_TIMEOUT, cheapHashing: true, clients: [app, ...others, machineClient(OPS)] },
  );
  await relayed.server.apis.grant(OPS.id, `${relayed.server.issuer}/admin`, { scopes: ['admin'] });
  return { relayed, admin: await clientCredentialsToken(relayed.server.url, OPS, `${relayed.server.issuer}/admin`, 'admin') };
}

const reconnected = (url: string) => eventually(async () => assert.equal((await fetch(`${url}/readyz`)).status, 200));

describe('e2e: red team, twenty-fifth endings pass: an ending of a person cut off by Redis at the session’s ending, and the app signed in there', function () {
  this.timeout(120_000);
  let receiver: LogoutReceiver;
  let relayed: RelayedServer;
  let admin: string;
  let made = 0;

  before(async () => {
    receiver = await startLogoutReceiver();
    ({ relayed, admin } = await startWithLogoutReceiver(receiver, WEB, []));
  });
  after(async () => {
    await relayed?.stop();
    receiver?.server.close();
  });

  /** A new person signed in to the web app in `agent`: their username, sub, the session's sid and the app's refresh token. */
  async function signedIn(agent: Agent): Promise<{ username: string; sub: string; sid: string; refresh: string }> {
    const { server } = relayed;
    made += 1;
    const username = `person-${made}`;
    await server.accounts.create(username, PASSWORD);
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: SCOPE, prompt: 'consent' });
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    const claims = tokens.claims()!;
    return { username, sub: claims.sub, sid: String(claims.sid), refresh: tokens.refresh_token! };
  }

  /** Whether the app was sent a logout token for `sid` (its signature is the server's: the receiver takes what is posted). */
  const told = (sid: string) => receiver.tokens.some((token) => decodeJwt(token).sid === sid);

  /** The app is told within a few seconds: a retry is due a second after a failure, swept every 0.2 s. */
  async function appTold(sid: string, what: string): Promise<void> {
    const deadline = Date.now() + 8000;
    while (!told(sid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(told(sid), `${what}: the app signed in in the ended session was never told (no logout token for its sid)`);
  }

  /** The session's ending (a script on oidc:Session:…), the connection cut there with it run and its answer lost, or Redis paused past the command timeout with it in its socket. */
  async function blipAtTheSessionsEnding<T>(blip: 'cut' | 'pause', ending: () => Promise<T>): Promise<T> {
    const { relay } = relayed;
    if (blip === 'cut') {
      void relay.cut(scriptOn('oidc:Session:'), { answered: true });
      const answer = await ending();
      relay.release();
      return answer;
    }
    return relayed.pausedAt(scriptOn('oidc:Session:'), ending);
  }

  const disable = (username: string) => fetch(`${relayed.server.url}/admin/users/${username}/disable`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } });

  for (const blip of ['cut', 'pause'] as const) {
    it(`the admin API’s disable, ${blip === 'cut' ? 'the connection cut at the session’s ending (run, its answer lost)' : 'Redis paused at the session’s ending'}: 503, the retry done, and the app is told (before the fix: never)`, async () => {
      const { server } = relayed;
      const agent = new Agent();
      const { username, sid, refresh } = await signedIn(agent);
      const first = await blipAtTheSessionsEnding(blip, () => disable(username));
      assert.equal(first.status, 503, `the disable cut off answered ${first.status}`);
      assert.ok(first.headers.get('retry-after'));
      await reconnected(server.url);
      const again = await pastOutages(() => disable(username));
      assert.equal(again.status, 200, 'the retry is done');
      const refreshed = await post(`${server.url}/token`, { grant_type: 'refresh_token', refresh_token: refresh }, WEB);
      assert.equal(refreshed.status, 400, 'the refresh token is ended');
      await appTold(sid, `admin disable, ${blip}`);
    });
  }

  it('the admin API’s disable not cut off tells the app once: the logout kept before its post is dropped once posted (held)', async () => {
    const { sid, username } = await signedIn(new Agent());
    assert.equal((await disable(username)).status, 200);
    await appTold(sid, 'admin disable');
    // Past the kept logout's due time (the schedule's first delay, a second) and a few sweeps.
    await new Promise((resolve) => setTimeout(resolve, 1800));
    assert.equal(receiver.tokens.filter((token) => decodeJwt(token).sid === sid).length, 1, 'the app is told once');
  });

  it('latchkey users disable, its connection cut at the session’s ending: a non-zero exit, run again done, and the app is told (before the fix: never)', async () => {
    const { server, relayedEnv } = relayed;
    const { username, sid } = await signedIn(new Agent());
    const first = await blipAtTheSessionsEnding('cut', () => latchkey(relayedEnv, ['users', 'disable', username]));
    assert.notEqual(first.status, 0, 'the disable cut off is said not done');
    await reconnected(server.url);
    const again = await latchkey(relayedEnv, ['users', 'disable', username]);
    assert.equal(again.status, 0, again.stderr);
    await appTold(sid, 'users disable, cut');
  });

  it('another session signed out on the account page, the connection cut at its ending: said not done, and the app signed in there is told (before the fix: never)', async () => {
    const { server } = relayed;
    const phone = new Agent();
    const { username, sid } = await signedIn(phone);
    const own = new Agent();
    const account = await signInSteps(own, await own.follow(`${server.issuer}/account`), { username, password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(account.url, `${server.issuer}/account`);
    const other = account.html
      .split('<div class="listed">')
      .filter((block) => block.includes('name="session"') && !block.includes('This browser'))
      .map((block) => block.match(/name="session" value="([^"]+)"/)![1]!);
    assert.equal(other.length, 1, 'the phone’s session is listed');
    const signOut = () => postToAccount(own, account, '/sessions/sign-out', { session: other[0]! });
    const first = await blipAtTheSessionsEnding('cut', signOut);
    assert.equal(first.status, 503, `the sign-out cut off answered ${first.status}`);
    await reconnected(server.url);
    // Asked again: signed out already ("not signed in any more"), or signed out now.
    const again = await pastOutages(signOut);
    assert.ok(again.status === 200 || again.status === 404, `asked again: ${again.status}`);
    await appTold(sid, 'account page sign-out, cut');
  });

  it('a sign-out everywhere (RP-initiated), the connection cut at the session’s ending as it is confirmed: said not done, the retry signs nobody in, and the app is told (before the fix: never)', async () => {
    const { server } = relayed;
    const agent = new Agent();
    const { sid } = await signedIn(agent);
    const confirmation = await agent.follow(`${server.url}/session/end`);
    assert.match(confirmation.html, /session\/end\/confirm/);
    // The confirmation's first write of the session is its ending (patches/logout-order.ts, before any app is told).
    const first = await blipAtTheSessionsEnding('cut', () => agent.submit(confirmation, '/session/end/confirm', { logout: 'yes' }));
    assert.equal(first.status, 503, `the sign-out cut off answered ${first.status}`);
    await reconnected(server.url);
    // Confirmed again (the page as the person has it), or asked again: nobody is signed in.
    const again = await pastOutages(() => agent.submit(confirmation, '/session/end/confirm', { logout: 'yes' }));
    assert.ok(again.status < 500, `confirmed again: ${again.status}`);
    await appTold(sid, 'sign-out everywhere, cut');
  });
});

/** A person's token requests, each ready to send: a code exchange, a refresh, a device's poll (RFC 8628) of a code the person approved. */
function tokenRequests(relayed: () => RelayedServer) {
  const discovery = () => oidc.discovery(new URL(relayed().server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
  const token = (fields: Record<string, string>, client?: ClientCredentials) => post(`${relayed().server.url}/token`, fields, client);

  async function codeExchange(person: string): Promise<() => Promise<Response>> {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, await discovery(), REDIRECT, { scope: SCOPE, prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username: person, password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(done.url).searchParams.get('code');
    assert.ok(code, `no code at ${done.url}`);
    return () => token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API }, WEB);
  }

  async function refresh(person: string): Promise<() => Promise<Response>> {
    const tokens = (await (await (await codeExchange(person))()).json()) as { refresh_token?: string };
    assert.ok(tokens.refresh_token, JSON.stringify(tokens));
    return () => token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: API }, WEB);
  }

  async function devicePoll(person: string): Promise<() => Promise<Response>> {
    const { server } = relayed();
    const config = await oidc.discovery(new URL(server.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(config, { scope: SCOPE, resource: API });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const page = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: person, password: PASSWORD });
    assert.match(page.html, /Device connected/);
    return () => token({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: DEVICE, resource: API });
  }

  /** Each request, what it reads first (held there: before it signs) and what it consumes (its writes: held there, after it signed). */
  return {
    'a code exchange': { start: codeExchange, reads: 'oidc:AuthorizationCode:', client: WEB.id },
    'a refresh': { start: refresh, reads: 'oidc:RefreshToken:', client: WEB.id },
    'a device’s poll': { start: devicePoll, reads: 'oidc:DeviceCode:', client: DEVICE },
  };
}

const PEOPLES_CLIENTS = [
  { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE },
  { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: SCOPE },
  machineClient(RS),
  machineClient(OPS),
];

/** The refresh of `refreshToken` (for `client`): its answer. */
const refreshWith = (url: string, client: string, refreshToken: string) =>
  post(`${url}/token`, { grant_type: 'refresh_token', refresh_token: refreshToken, resource: API, ...(client === WEB.id ? {} : { client_id: client }) }, client === WEB.id ? WEB : undefined);

describe('e2e: red team, twenty-fifth endings pass: latchkey keys revoke while a code exchange, a refresh or a device’s poll is held at its Redis traffic', function () {
  this.timeout(120_000);
  let relayed: RelayedServer;
  let helper: ResourceServer;
  let made = 0;

  before(async () => {
    relayed = await startRelayedServer({ RESOURCE_SERVERS, CLIENTS: JSON.stringify(PEOPLES_CLIENTS) });
    await grantFeed(relayed.server, RS.id);
    await relayed.server.apis.grant(OPS.id, API, { scopes: ['read'] });
    helper = await createResourceServer({ issuer: relayed.server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await relayed?.stop();
  });

  /** Nothing signed by `revoked` is taken: introspection, latchkey/resource-server, and an ID token as id_token_hint. */
  async function refusedEverywhere(what: string, access: readonly string[], idTokens: readonly string[]): Promise<void> {
    const { server } = relayed;
    for (const value of access) {
      assert.equal((await introspect(server.url, RS, value)).active, false, `${what}: a token the revoked key signed is active at introspection`);
      await eventually(async () => assert.equal(await acceptedBy(helper, value), false, `${what}: latchkey/resource-server accepts a token the revoked key signed`));
    }
    for (const value of idTokens) {
      const hinted = await fetch(`${server.url}/session/end?${form({ id_token_hint: value })}`);
      assert.equal(hinted.status, 400, `${what}: an ID token the revoked key signed is taken as id_token_hint`);
    }
  }

  for (const [what, { start, reads, client }] of Object.entries(tokenRequests(() => relayed))) {
    const HOLDS = {
      'before it signs (its first read)': () => (chunk: string) => chunk.includes(reads),
      'after it signed (its writes)': () => {
        // The writes begin with the consumption of what it presented, after the script that read the grant.
        let sawGrant = false;
        return (chunk: string) => (sawGrant ? scriptOn(reads)(chunk) : ((sawGrant = chunk.includes('oidc:Grant:')), false));
      },
    };
    for (const [where, matches] of Object.entries(HOLDS)) {
      it(`${what} held ${where} across the signing key revoked: nothing the revoked key signed is taken, before or after, and the grant goes on under the next key (held)`, async () => {
        const { server, relay, env } = relayed;
        made += 1;
        const person = `keys-${made}`;
        await server.accounts.create(person, PASSWORD);
        const request = await start(person);
        // A token the current key signed before the revocation (an app's own), and that key's kid.
        const before = await clientCredentialsToken(server.url, OPS);
        const revoked = decodeProtectedHeader(before).kid!;

        const held = await relay.hold(matches(), request);
        // A kid may start with "-": after "--" (the CLI takes it as an option otherwise).
        const run = await latchkey(env, ['keys', 'revoke', '--', revoked]);
        assert.equal(run.status, 0, run.stderr);
        const answered = await held.release();
        assert.equal(answered.status, 200, `${what}: answered ${answered.status}`);
        const body = (await answered.json()) as { access_token: string; id_token: string; refresh_token: string };
        const signedByRevoked = [body.access_token, body.id_token].filter((value) => decodeProtectedHeader(value).kid === revoked);
        if (where.startsWith('before')) assert.deepEqual(signedByRevoked, [], `${what}: signed by the revoked key after its revocation was written`);
        // Signed before the revocation, answered after it: the case this hold is for.
        else assert.deepEqual(signedByRevoked, [body.access_token, body.id_token], `${what}: the hold after it signed held nothing signed`);
        await refusedEverywhere(
          what,
          [before, ...(signedByRevoked.includes(body.access_token) ? [body.access_token] : [])],
          signedByRevoked.includes(body.id_token) ? [body.id_token] : [],
        );
        // What the next key signed is taken.
        if (!signedByRevoked.includes(body.access_token)) assert.equal((await introspect(server.url, RS, body.access_token)).active, true);
        // The grant goes on (a key revocation ends what the key signed, not the grant): its refresh token refreshes under the next key.
        const next = (await (await refreshWith(server.url, client, body.refresh_token)).json()) as { access_token: string };
        assert.notEqual(decodeProtectedHeader(next.access_token).kid, revoked);
        assert.equal((await introspect(server.url, RS, next.access_token)).active, true);
      });
    }
  }
});

describe('e2e: red team, twenty-fifth endings pass: the admin API’s disable (at another instance) while a person’s refresh or device poll is held at its Redis traffic', function () {
  this.timeout(120_000);
  let relayed: RelayedServer;
  let other: TestServer;
  let helper: ResourceServer;
  let admin: string;
  let made = 0;

  before(async () => {
    const settings = { RESOURCE_SERVERS, CLIENTS: JSON.stringify(PEOPLES_CLIENTS) };
    relayed = await startRelayedServer(settings);
    // A second instance of the deployment on the same Redis, reached directly: the operator's call is not held.
    other = await startServer({ redisUrl: relayed.redis.url, dir: dirname(relayed.env.KEYS_DIR!), env: { ISSUER: relayed.server.issuer, ...settings } });
    await grantFeed(relayed.server, RS.id);
    await relayed.server.apis.grant(OPS.id, `${relayed.server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(other.url, OPS, `${relayed.server.issuer}/admin`, 'admin');
    helper = await createResourceServer({ issuer: relayed.server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await other?.stop();
    await relayed?.stop();
  });

  const requests = tokenRequests(() => relayed);
  for (const what of ['a refresh', 'a device’s poll'] as const) {
    const { start, reads, client } = requests[what];
    const HOLDS = {
      'before it read its grant (its first read)': () => (chunk: string) => chunk.includes(reads),
      'after it read its grant (its writes)': () => {
        let sawGrant = false;
        return (chunk: string) => (sawGrant ? scriptOn(reads)(chunk) : ((sawGrant = chunk.includes('oidc:Grant:')), false));
      },
    };
    for (const [where, matches] of Object.entries(HOLDS)) for (const enabledAgain of [false, true]) {
      it(`${what} held ${where} across POST /admin/users/{username}/disable${enabledAgain ? ' and /enable at once' : ''}: what it answers works nowhere (held)`, async () => {
        const { server, relay } = relayed;
        made += 1;
        const person = `disabled-${made}`;
        await server.accounts.create(person, PASSWORD);
        const request = await start(person);
        const held = await relay.hold(matches(), request);
        for (const action of enabledAgain ? ['disable', 'enable'] : ['disable']) {
          const answer = await fetch(`${other.url}/admin/users/${person}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } });
          assert.equal(answer.status, 200, await answer.clone().text());
        }
        const answered = await held.release();
        assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
        const body = (await answered.json()) as { access_token?: string; refresh_token?: string; error?: string };
        if (!body.access_token) {
          assert.deepEqual([answered.status, body.error], [400, 'invalid_grant'], `${what}: the held request's refusal`);
          return;
        }
        assert.equal(decodeJwt(body.access_token).aud, API, 'a JWT for the API');
        assert.equal((await introspect(server.url, RS, body.access_token)).active, false, `${what}: the JWT it got after the disable is active`);
        await helper.sync();
        assert.equal(await acceptedBy(helper, body.access_token), false, `${what}: the JWT it got after the disable is accepted by an API following the feed`);
        assert.ok(body.refresh_token, 'offline access was granted: a refresh token');
        assert.notEqual((await refreshWith(server.url, client, body.refresh_token)).status, 200, `${what}: the refresh token it got still refreshes`);
      });
    }
  }
});

describe('e2e: red team, twenty-fifth endings pass: latchkey grants revoke --client and the admin API’s disable, the connection cut at each of their writes in turn', function () {
  this.timeout(300_000);
  const APP = { id: 'swept-app', secret: 'swept-app-secret-with-plenty-of-entropy-0123456789' };
  /**
   * Commands that may write (a script may be a read too: counted all the same); not those on the
   * back-channel timers alone ({bc}: the sweep's claims, every 0.2 s), though a session's ending
   * drops its timer in the same chunk; nor the server's other timers' (isTimerWrite: the tracked
   * cache's heartbeat, every second, was counted as one of the ending's writes).
   */
  const writes = (chunk: string) => commandsIn(chunk).some(([name = '', ...words]) => WRITE_COMMANDS.test(name) && !isTimerWrite([name, ...words]) && !words.some((word) => word.includes('{bc}')));
  let receiver: LogoutReceiver;
  let relayed: RelayedServer;
  let helper: ResourceServer;
  let admin: string;
  let made = 0;

  before(async () => {
    receiver = await startLogoutReceiver();
    ({ relayed, admin } = await startWithLogoutReceiver(receiver, APP, [machineClient(RS)]));
    await grantFeed(relayed.server, RS.id);
    helper = await createResourceServer({ issuer: relayed.server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await relayed?.stop();
    receiver?.server.close();
  });

  /** A new person signed in to the app: a JWT for the API and a refresh token, and the session's sid. */
  async function signedIn(): Promise<{ username: string; sub: string; sid: string; jwt: string; refresh: string }> {
    const { server } = relayed;
    made += 1;
    const username = `swept-${made}`;
    const { sub } = await server.accounts.create(username, PASSWORD);
    const config = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: SCOPE, prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API });
    return { username, sub, sid: String(tokens.claims()!.sid), jwt: tokens.access_token, refresh: tokens.refresh_token! };
  }

  type Outcome = 'done' | 'not done';

  /**
   * For each k from 1: a fresh person signed in, the ending run with every connection cut at its k-th
   * write from the first that names `from` (passed on, its answer lost); said not done, it is run again
   * once the server reconnected, until done; then nothing got before works (and, with `told`, the app
   * was sent a logout token for the session). Until the ending runs whole before its k-th write: how many cuts.
   */
  async function sweep(what: string, from: (person: { sub: string }) => string, ending: (person: { username: string }) => Promise<Outcome>, told: boolean): Promise<number> {
    const { server, relay } = relayed;
    for (let k = 1; k < 40; k += 1) {
      const person = await signedIn();
      const named = from(person);
      let seen = 0;
      let counting = false;
      let cut = false;
      void relay.cut((chunk) => writes(chunk) && (counting ||= chunk.includes(named)) && ++seen === k, { answered: true }).then((reached) => (cut = reached));
      let outcome = await ending(person);
      relay.release();
      const at = `${what}, cut at write ${k}`;
      if (cut) {
        await reconnected(server.url);
        for (let attempt = 0; outcome === 'not done' && attempt < 5; attempt += 1) {
          outcome = await ending(person);
          if (outcome === 'not done') await reconnected(server.url);
        }
        assert.equal(outcome, 'done', `${at}: run again once Redis is back, it is not done`);
      } else assert.equal(outcome, 'done', `${what}, run whole`);
      assert.equal((await pastOutages(() => fetch(`${server.url}/readyz`))).status, 200);
      assert.equal((await introspect(server.url, RS, person.jwt)).active, false, `${at}: the JWT is active at introspection`);
      await helper.sync();
      assert.equal(await acceptedBy(helper, person.jwt), false, `${at}: the JWT is accepted by an API following the feed`);
      const refreshed = await pastOutages(() => post(`${server.url}/token`, { grant_type: 'refresh_token', refresh_token: person.refresh }, APP));
      assert.equal(refreshed.status, 400, `${at}: the refresh token answered ${refreshed.status}`);
      if (told) {
        const deadline = Date.now() + 8000;
        const sent = () => receiver.tokens.some((token) => decodeJwt(token).sid === person.sid);
        while (!sent() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
        assert.ok(sent(), `${at}: the app signed in in the ended session was never told`);
      }
      if (!cut) return k - 1;
    }
    assert.fail(`${what}: still cut at its 40th write`);
  }

  it('latchkey grants revoke --client, its connection cut at each of its writes in turn: a non-zero exit, run again done, nothing works after (held)', async () => {
    const cli = async (): Promise<Outcome> => {
      const run = await latchkey(relayed.relayedEnv, ['grants', 'revoke', '--client', APP.id]);
      if (run.status === 0) return 'done';
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'a stack trace');
      return 'not done';
    };
    assert.ok((await sweep('grants revoke --client', () => APP.id, cli, false)) > 2, 'the ending writes');
  });

  it('POST /admin/users/{username}/disable, the connection cut at each of its writes in turn: 503, run again done, nothing works after and the app is told (fixed: an ending cut after the session went never told it)', async () => {
    const disable = async ({ username }: { username: string }): Promise<Outcome> => {
      const response = await fetch(`${relayed.server.url}/admin/users/${username}/disable`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } });
      if (response.status === 503) {
        assert.ok(response.headers.get('retry-after'), '503 without Retry-After');
        return 'not done';
      }
      assert.equal(response.status, 200);
      return 'done';
    };
    assert.ok((await sweep('admin disable', ({ sub }) => sub, disable, true)) > 2, 'the ending writes');
  });
});
