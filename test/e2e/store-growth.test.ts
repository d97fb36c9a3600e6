/**
 * The store-growth pass (2026-12-04), black box: what an anonymous caller, or an app (a public
 * client, as anyone may register or host one), makes Latchkey write to Redis, driven hundreds of
 * times, must each be bounded: every key it leaves expires (a TTL) and no index keeps members past
 * their records' lifetimes. A redis-server of the test's own, read with SCAN, TTL and cardinality.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { Agent } from '../helpers/agent.js';
import { fakeUpstreamOf } from '../helpers/fake-upstream.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';
import { AccountSessions } from '../../src/accounts/sessions.js';
import { AdapterIndexes } from '../../src/store/adapter-indexes.js';
import { digestOf } from '../../src/store/record-keys.js';

const PREFIX = 'lk:';
const DEVICE = 'tv-app';
const WEB = 'web-app';
const REDIRECT = 'http://localhost:5173/cb';
const clients = [
  { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
  { client_id: WEB, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code'] },
];

/** Keys an operator's configuration or a start writes, durable by design (none of them per caller). */
const OPERATOR_OWNED = [/^keyring$/, /^configured-clients$/, /^configured-apis$/, /^oidc:clients$/, new RegExp(`^oidc:Client:(${DEVICE}|${WEB})$`), /^revoked:\{rv\}:epoch$/, /^revoked:\{rv\}:lifetimes?(:.*)?$/, /^accounts:skeletons$/, /^account:linked-indexed$/, /^mfa-everywhere$/];

const SHORT = { TTL_DEVICE_CODE: '2', TTL_SESSION: '6', TTL_GRANT: '3', TTL_REFRESH_TOKEN: '3', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', RATE_LIMIT_PER_IP: '0', RATE_LIMIT_PER_CLIENT: '0', REGISTRATION_OPEN: 'true' };

describe('e2e: store growth, what outsiders make Latchkey keep', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    // Short device codes, sessions and grants, so that a test sees their indexes outlive them or not (a
    // session's 6 s: a browser kept in use must stay signed in on a loaded machine, where its exp, whole
    // seconds, leaves it a little over 5 s between visits); the
    // fake upstream is on loopback; anyone may register an app (REGISTRATION_OPEN).
    // The rate limits bound how fast, not how much in the end: off, so that a test drives hundreds quickly.
    // Hashing at its cheapest (no test here is about hashing or a race a hash could time): the sign-ins
    // again and again cost less, and keep within the short lifetimes on a loaded machine.
    server = await startServer({ redisUrl: redis.url, clients, cheapHashing: true, env: SHORT });
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body), redirect: 'manual' });
  const deviceAuthorization = () => form('/device/auth', { client_id: DEVICE, scope: 'openid' });
  const pushed = () => form('/request', { client_id: WEB, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSwSsqqM', code_challenge_method: 'S256', state: 's' });

  /** Every key in the store under a key prefix (REDIS_KEY_PREFIX, `lk:` by default), without it. */
  async function allKeys(prefix = PREFIX): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      keys.push(...batch.map((key) => key.slice(prefix.length)));
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }

  it('an app asking for device codes and pushing requests again and again: its pending index keeps only the live ones', async () => {
    for (let round = 0; round < 200; round++) assert.equal((await deviceAuthorization()).status, 200);
    const first = new Set((await allKeys()).filter((key) => key.startsWith('oidc:DeviceCode:')));
    assert.equal(first.size, 200);
    // The app goes on asking, one every 200 ms, until every one of those first device codes has
    // ended (TTL_DEVICE_CODE 2, and the store's grace): an index renewed by each add outlives them.
    while ((await allKeys()).some((key) => first.has(key))) {
      assert.equal((await deviceAuthorization()).status, 200);
      await sleep(200);
    }
    await sleep(2500);
    assert.equal((await deviceAuthorization()).status, 200);
    const kept = (await membersUnder('oidc:pending')).filter((member) => first.has(member));
    assert.equal(kept.length, 0, `the app's pending index still holds ${kept.length} of the ${first.size} device codes that ended`);

    // Pushed requests go into the same index.
    for (let round = 0; round < 50; round++) assert.equal((await pushed()).status, 201);
    const pushedLive = (await allKeys()).filter((key) => key.startsWith('oidc:PushedAuthorizationRequest:')).length;
    assert.equal(pushedLive, 50);
  });

  /** Members of an index (a plain set or an expiring one), by its key without the prefix. */
  async function membersOf(key: string, keyPrefix = PREFIX): Promise<string[]> {
    return (await raw.type(keyPrefix + key)) === 'zset' ? raw.zrange(keyPrefix + key, '0', '-1') : raw.smembers(keyPrefix + key);
  }

  /** Members of the indexes whose keys start with `prefix` (plain sets and expiring ones alike). */
  async function membersUnder(prefix: string, keyPrefix = PREFIX): Promise<string[]> {
    const members: string[] = [];
    for (const key of (await allKeys(keyPrefix)).filter((key) => key.startsWith(prefix))) members.push(...(await membersOf(key, keyPrefix)));
    return members;
  }

  it('hundreds of anonymous requests at every open endpoint leave no key without a TTL', async () => {
    const junk = (n: number) => `junk-${n}-${'x'.repeat(40)}`;
    for (let round = 0; round < 100; round++) {
      const answers = await Promise.all([
        deviceAuthorization(),
        pushed(),
        fetch(`${server.url}/auth?${new URLSearchParams({ client_id: WEB, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSwSsqqM', code_challenge_method: 'S256', state: String(round) })}`, { redirect: 'manual' }),
        form('/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: DEVICE, device_code: junk(round) }),
        form('/token/introspection', { token: junk(round), client_id: WEB }),
        form('/token/revocation', { token: junk(round), client_id: WEB }),
        fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${junk(round)}` } }),
      ]);
      for (const answer of answers) await answer.arrayBuffer();
    }
    const durable: string[] = [];
    for (const key of await allKeys()) if ((await raw.ttl(PREFIX + key)) === -1 && !OPERATOR_OWNED.some((owned) => owned.test(key))) durable.push(key);
    assert.deepEqual(durable, [], 'keys an outsider made that never expire');
  });

  it("people signing in through an upstream to an app again and again: the upstream's session indexes and the app's and the person's grant indexes keep only the live ones", async () => {
    // What is kept beside a session lives as long as the session may (ttl.sessionMax after its sign-in,
    // lifetimes.ts sessionRecordsLifetime): a server of its own, on the same Redis under a prefix of its
    // own, whose sessions live at most TTL_SESSION_MAX 6 after their sign-in, so that they all end.
    const prefix = 'up:';
    const short = await startServer({ redisUrl: redis.url, clients, cheapHashing: true, env: { ...SHORT, TTL_SESSION_MAX: '6', REDIS_KEY_PREFIX: prefix } });
    const fake = await fakeUpstreamOf(short, 'upstream-secret-with-plenty-of-entropy-0123');
    try {
      fake.state.sub = 'same-person';
      const params = new URLSearchParams({ client_id: WEB, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'fake' });
      /** A sign-in through the upstream in a fresh browser, allowing the app: a code. */
      const signIn = async () => {
        const agent = new Agent();
        let page = await agent.follow(`${short.issuer}/auth?${params}`, {}, REDIRECT);
        if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, REDIRECT);
        assert.ok(new URL(page.url).searchParams.get('code'), `a code: ${page.url}`);
      };
      for (let round = 0; round < 40; round++) await signIn();
      const first = new Set((await allKeys(prefix)).filter((key) => key.startsWith('upstream:session:') || key.startsWith('oidc:Grant:')));
      assert.ok([...first].some((key) => key.startsWith('oidc:Grant:')), 'the sign-ins made grants');
      assert.ok([...first].some((key) => key.startsWith('upstream:session:')), 'the sign-ins recorded their upstream sessions');
      // Sign-ins go on until every one of those sessions and grants has ended (TTL_SESSION and
      // TTL_SESSION_MAX 6, TTL_GRANT 3), and the longest of their lifetimes as the store gave them (a
      // grant's is its record's TTL, even when it is ended with its session first) has passed, with a second of margin.
      let longest = 0;
      for (const key of first) longest = Math.max(longest, await raw.pttl(prefix + key));
      const until = Date.now() + longest + 1000;
      while ((await allKeys(prefix)).some((key) => first.has(key)) || Date.now() < until) {
        await signIn();
        await sleep(200);
      }
      await sleep(2500);
      await signIn();
      const ended = new Set([...first].map((key) => key.replace(/^(upstream:session|oidc:Grant):/, '')));
      for (const index of ['upstream:sessions', 'upstream:sub', 'upstream:sid', 'oidc:grants:client', 'oidc:grants-ends:client', 'oidc:grants:account', 'oidc:grants-ends:account']) {
        const kept = (await membersUnder(index, prefix)).filter((member) => ended.has(member));
        assert.equal(kept.length, 0, `${index}: still holds ${kept.length} sessions or grants that ended`);
      }
    } finally {
      await fake.close();
      await short.stop();
    }
  });
  it("a person signing in again and again: their session index keeps only the live sessions, and ending them all still finds every live one", async () => {
    const person = 'pat-again';
    const password = 'pat signs in again and again';
    const { sub } = await server.accounts.create(person, password);
    const authorize = `${server.issuer}/auth?${new URLSearchParams({ client_id: WEB, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' })}`;
    /** A sign-in with the password in a fresh browser, left at the consent page (no app needed: what anyone with the password can do). */
    const signIn = async () => {
      const agent = new Agent();
      const page = await signInSteps(agent, await agent.follow(authorize, {}, REDIRECT), { username: person, password, login: 'required', consent: 'stop' });
      assert.ok(isConsent(page), `the consent page: ${page.status} ${page.url}`);
      return agent;
    };
    /** The browser's session at the app: its consent asked (signed in), or its sign-in (not). */
    const silent = async (agent: Agent) => new URL((await agent.follow(`${authorize}&prompt=none`, {}, REDIRECT)).url).searchParams.get('error');
    const sessionOf = (agent: Agent) => digestOf(agent.cookieHeader(server.issuer).split('; ').find((pair) => pair.startsWith('lk_session='))!.slice('lk_session='.length));
    /** What the person's session index holds (the plain set and the expiring one alike). */
    const indexed = async () => {
      const members: string[] = [];
      for (const key of (await allKeys()).filter((key) => key.startsWith('oidc:sessions') && key.endsWith(`{${sub}}`))) members.push(...(await membersOf(key)));
      return members;
    };
    const uidOf = async (agent: Agent) => (JSON.parse((await raw.hget(`${PREFIX}oidc:Session:${sessionOf(agent)}`, 'p'))!) as { uid: string }).uid;

    // One browser signs in first and stays in use all along (each visit saves its session, moving its
    // end later, TTL_SESSION 6 from then): its index entry must follow it, or ending everything misses it.
    const kept = await signIn();
    const keptSession = sessionOf(kept);
    const visit = async () => assert.ok(isConsent(await kept.follow(authorize, {}, REDIRECT)), 'the browser kept in use is still signed in');
    // Visited every 300 ms from its sign-in on, whatever the other sign-ins take on a loaded machine (a
    // session ends at its exp, TTL_SESSION 6 after its last use: patches/exact-expiry.ts).
    let keeping = true;
    const keeper = (async () => {
      while (keeping) {
        await visit();
        await sleep(300);
      }
    })();
    let first = new Set<string>();
    try {
      for (let round = 0; round < 20; round++) await signIn();
      first = new Set((await indexed()).filter((member) => member !== keptSession));
      assert.equal(first.size, 20, 'every sign-in is indexed');
      // Sign-ins go on until every one of those sessions' records has ended (TTL_SESSION 6 and the
      // store's grace), then the index's second of margin: a set renewed by each sign-in outlives them.
      while ((await allKeys()).some((key) => key.startsWith('oidc:Session:') && first.has(key.slice('oidc:Session:'.length)))) {
        await signIn();
        await sleep(300);
      }
      await sleep(1500);
    } finally {
      keeping = false;
      await keeper;
    }
    const last = await signIn();
    await visit();
    const stale = (await indexed()).filter((member) => first.has(member));
    assert.equal(stale.length, 0, `the person's session index still holds ${stale.length} of the ${first.size} sessions that ended`);

    // Every live session is still found: listed (the account page), and ended with the rest (what
    // disabling the person, the CLI and the admin API run), the one kept in use among them.
    const sessions = new AccountSessions(server.kv, server.providers, server.accounts);
    const listed = new Set((await sessions.list(sub)).map((session) => session.uid));
    assert.ok(listed.has(await uidOf(kept)) && listed.has(await uidOf(last)), 'the browser kept in use and the last sign-in are listed');
    assert.ok((await sessions.endAll(sub)) >= 2);
    assert.equal(await silent(kept), 'login_required', 'the browser kept in use is signed out');
    assert.equal(await silent(last), 'login_required', 'the last sign-in is signed out');
    assert.deepEqual(await indexed(), [], 'the index is emptied');
  });
  it("pages anyone may ask for without a cookie (a sign-out's, the device page) leave sessions kept no longer than a sign-in in progress; a sign-in on one keeps it for the session's lifetime", async () => {
    // The shipped lifetimes (TTL_SESSION two weeks, TTL_INTERACTION an hour), on the same Redis under a prefix of its own.
    const prefix = 'anon:';
    const plain = await startServer({ redisUrl: redis.url, clients, env: { REDIS_KEY_PREFIX: prefix, RATE_LIMIT_PER_IP: '0' } });
    try {
      const interaction = plain.config.ttl.interaction;
      assert.ok(interaction < plain.config.ttl.session);
      /** Each page, asked without a cookie: the session its answer made (the lk_session cookie), and when the cookie says it ends. */
      const made: { readonly path: string; readonly key: string; readonly expires: number }[] = [];
      for (let round = 0; round < 20; round++) {
        for (const path of ['/session/end', '/device', '/device?user_code=BCDF-GHJK', `/session/end?client_id=${WEB}`]) {
          const answer = await fetch(`${plain.url}${path}`, { redirect: 'manual' });
          await answer.arrayBuffer();
          assert.equal(answer.status, 200, `${path} answered ${answer.status}`);
          const cookie = answer.headers.getSetCookie().find((line) => line.startsWith('lk_session='));
          assert.ok(cookie, `${path} made no session`);
          const value = cookie.slice('lk_session='.length, cookie.indexOf(';'));
          made.push({ path, key: `${prefix}oidc:Session:${digestOf(value)}`, expires: Date.parse(/expires=([^;]+)/i.exec(cookie)![1]!) });
        }
      }
      for (const { path, key, expires } of made) {
        const ttl = await raw.ttl(key);
        assert.ok(ttl > 0 && ttl <= interaction + 60, `a session ${path} made without a cookie is kept ${ttl} s (ttl.interaction: ${interaction} s)`);
        assert.ok(expires <= Date.now() + (interaction + 60) * 1000, `${path}'s session cookie ends ${new Date(expires).toISOString()}`);
      }
      // Every record an anonymous session leaves (its uid's index too) ends as soon.
      for (const key of (await raw.keys(`${prefix}oidc:*`)).filter((key) => /^anon:oidc:(Session|uid):/.test(key))) {
        const ttl = await raw.ttl(key);
        assert.ok(ttl > 0 && ttl <= interaction + 60, `${key} is kept ${ttl} s`);
      }

      // A browser that asked for the device page first, then signs in: its session lives as long as a sign-in's.
      const person = 'anna-anonymous-first';
      const password = 'anna asked for the device page first';
      await plain.accounts.create(person, password);
      const agent = new Agent();
      await agent.follow(`${plain.issuer}/device`);
      const authorize = `${plain.issuer}/auth?${new URLSearchParams({ client_id: WEB, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' })}`;
      const page = await signInSteps(agent, await agent.follow(authorize, {}, REDIRECT), { username: person, password, login: 'required', consent: 'stop' });
      assert.ok(isConsent(page), `the consent page: ${page.status} ${page.url}`);
      const session = agent.cookieHeader(plain.issuer).split('; ').find((pair) => pair.startsWith('lk_session='))!.slice('lk_session='.length);
      const ttl = await raw.ttl(`${prefix}oidc:Session:${digestOf(session)}`);
      assert.ok(ttl > plain.config.ttl.session - 60, `the signed-in session is kept ${ttl} s (ttl.session: ${plain.config.ttl.session} s)`);
    } finally {
      await plain.stop();
    }
  });
  it('an app that registered itself updating its registration again and again: its registration token index keeps only the live token', async () => {
    const metadata = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' };
    const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    assert.equal(created.status, 201, await created.clone().text());
    const client = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const update = (token: string) =>
      fetch(client.registration_client_uri, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ ...metadata, client_id: client.client_id }) });
    // Each update rotates the registration access token (RFC 7592 §2.2): the one used ends.
    const used = [client.registration_access_token];
    for (let round = 0; round < 30; round++) {
      const answer = await update(used.at(-1)!);
      assert.equal(answer.status, 200, await answer.clone().text());
      used.push(((await answer.json()) as { registration_access_token: string }).registration_access_token);
    }
    const live = used.at(-1)!;
    assert.equal((await update(used[0]!)).status, 401, 'a rotated-out token is refused');
    const index = `oidc:rat:client:${client.client_id}`;
    const members = await membersOf(index);
    assert.deepEqual(members, [`oidc:RegistrationAccessToken:${digestOf(live)}`], `the app's registration token index holds ${members.length} tokens, one of them live`);
    // Still what ends the live one when an operator writes the app (registration/clients.ts update).
    assert.equal(await new AdapterIndexes(server.kv).endRegistrationTokens(client.client_id), 1);
    assert.equal((await update(live)).status, 401, 'the live token is ended through the index');
  });
});
