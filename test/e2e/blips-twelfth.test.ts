/**
 * The twelfth fresh-eyes passes (2026-12-07), bad input and Redis blips at every endpoint: what a
 * Redis connection cut in the middle of a multi-write request left half written, black box (a
 * person signing in through an upstream provider, in a browser-like agent, the connection cut by
 * the test relay at a chosen write), then asserted through what the person, the account page and an
 * operator see. The house rule: a request cut off is answered 503 with Retry-After, and the same
 * thing asked again is done whole, nothing half made left behind.
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from '../helpers/agent.js';
import { eventually, pastOutages } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { commandsIn, hasWrite, startRelay, startRelayedAdmin, type Relay, type RelayedAdmin } from '../helpers/relay.js';
import { startSelfUpstreamServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const PASSWORD = 'twelfth blips pass test password';
const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'twelfth-blips-client-secret-with-plenty-of-entropy-0123';

describe('e2e: twelfth blips pass: an upstream’s first sign-in cut off at a write', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let links: UpstreamLinks;

  before(async () => {
    redis = await startRedisServer({ appendonly: true });
    relay = await startRelay(redis.port);
    // The server is its own upstream provider ("self"), where it is the client "latchkey".
    server = await startSelfUpstreamServer({ secret: SECRET, redirect: REDIRECT, redisUrl: relay.url, cheapHashing: true });
    links = new UpstreamLinks(server.kv, server.accounts);
  });
  after(async () => {
    relay?.release();
    await server?.stop();
    relay?.close();
    await redis?.stop();
  });

  const authorize = (agent: Agent) =>
    agent.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT);

  /**
   * `username` (a person at the upstream) signs in to the app through the upstream in `agent`, from
   * the app's authorization request to the upstream's answer reaching Latchkey's callback, which
   * `callback` sends (a cut may be armed by then). What the callback led to.
   */
  async function throughUpstream(agent: Agent, upstreamBrowser: Agent, username: string, callback: (url: string) => Promise<Page> = (url) => agent.follow(url, {}, REDIRECT)): Promise<Page> {
    const login = await authorize(agent);
    const back = `${server.issuer}/upstream/self/callback`;
    const toUpstream = await agent.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, back), { username, password: PASSWORD, stopAt: back });
    assert.ok(answer.url.startsWith(back), `the upstream answers: ${answer.status} ${answer.url}`);
    return callback(answer.url);
  }

  /** The accounts an upstream sign-in made (named after the upstream). */
  const madeThroughUpstream = async () => (await server.accounts.list()).filter((account) => account.username.startsWith('self-'));

  /** The sign-in cut off at the write `matches` names: 503 with Retry-After; then, Redis reached again, the person signs in again from the app. */
  async function cutThenAgain(agent: Agent, username: string, matches: (chunk: string) => boolean): Promise<Page> {
    const upstreamBrowser = new Agent();
    const blip = await throughUpstream(agent, upstreamBrowser, username, async (url) => {
      const cut = relay.cut(matches);
      const page = await agent.follow(url, {}, REDIRECT);
      relay.release();
      assert.equal(await cut, true, 'the cut was reached');
      return page;
    });
    assert.equal(blip.status, 503, `${blip.status} ${blip.url}`);
    assert.ok(Number(blip.headers.get('retry-after')) > 0, 'Retry-After');
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    // The upstream's answer was spent by the first try: the person starts again at the app.
    return eventually(async () => {
      const page = await throughUpstream(agent, upstreamBrowser, username);
      assert.notEqual(page.status, 503, 'Redis is back');
      return page;
    });
  }

  /** The app's consent, when asked, given: where the front channel ends. */
  const consented = (agent: Agent, page: Page) => signInSteps(agent, page, { username: '', password: '', stopAt: REDIRECT });

  it('cut off after the account was made, before its link: signed in again, the person gets that one account, linked (before the fix: a second account, the first left unlinked for ever)', async () => {
    const { sub: upstreamSub } = await server.accounts.create('ursula', PASSWORD);
    const agent = new Agent();
    const again = await consented(agent, await cutThenAgain(agent, 'ursula', (chunk) => hasWrite(chunk) && chunk.includes(`account:link:self:${upstreamSub}`)));
    assert.ok(again.url.startsWith(REDIRECT), `signed in: ${again.status} ${again.url} ${/class="error[^>]*>([^<]*)/.exec(again.html)?.[1] ?? ''}`);
    const made = await madeThroughUpstream();
    const link = await links.find('self', upstreamSub);
    assert.ok(link, 'linked');
    const unlinked = [];
    for (const account of made) if (!(await links.list(account.sub)).length) unlinked.push(account.username);
    assert.deepEqual(unlinked, [], 'no account made through the upstream is left without its link');
    assert.equal(made.length, 1, `one account made through the upstream: ${made.map((account) => account.username).join(', ')}`);
    assert.equal(made[0]!.sub, link.sub);
  });

  it('cut off as its link was indexed: signed in again, the account page lists the link and removing the upstream finds the person (before the fix: neither, for ever)', async () => {
    const { sub: upstreamSub } = await server.accounts.create('valerie', PASSWORD);
    const agent = new Agent();
    const again = await consented(agent, await cutThenAgain(agent, 'valerie', (chunk) => hasWrite(chunk) && chunk.includes('account:links:')));
    assert.ok(again.url.startsWith(REDIRECT), `signed in: ${again.status} ${again.url}`);
    const link = await links.find('self', upstreamSub);
    assert.ok(link, 'linked');
    assert.deepEqual((await links.list(link.sub)).map((listed) => listed.id), [`self:${upstreamSub}`], 'the account page lists the link (and lets the person remove it)');
    assert.ok((await links.peopleLinkedTo('self')).includes(link.sub), 'removing the upstream finds the person, to end what was granted through it');
  });
});

describe('e2e: twelfth blips pass: what an operator adds, cut off before it is listed', function () {
  this.timeout(60_000);
  let relayed: RelayedAdmin;
  let server: TestServer;

  before(async () => {
    // A long command timeout: the cut is the blip; nothing else may time out on a loaded runner.
    relayed = await startRelayedAdmin();
    ({ server } = relayed);
  });
  after(() => relayed?.stop());

  const call = (method: string, path: string, body?: unknown) => relayed.call(method, path, body);
  /** A write (a script) to the set that lists what the admin API lists at `path` (its key, whatever the store's prefix). */
  const toTheList = (list: string) => (chunk: string) =>
    commandsIn(chunk).some(([name = '', , count = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(count)).some((key) => key === list || key.endsWith(`:${list}`)));

  const cases: { what: string; path: string; list: string; body: Record<string, unknown>; named: (listed: Record<string, unknown>) => boolean }[] = [
    { what: 'a person (POST /admin/users)', path: '/users', list: 'accounts', body: { username: 'listed-twelfth', password: 'a long enough password for sure' }, named: (user) => user.username === 'listed-twelfth' },
    { what: 'an API (POST /admin/apis)', path: '/apis', list: 'apis', body: { identifier: 'https://ledger-twelfth.example.test', scopes: ['read'] }, named: (api) => api.identifier === 'https://ledger-twelfth.example.test' },
    {
      what: 'an upstream provider (POST /admin/upstreams)',
      path: '/upstreams',
      list: 'upstreams',
      body: { id: 'corp-twelfth', issuer: 'https://idp-twelfth.example.test', client_id: 'latchkey', client_secret: 'an upstream client secret', scope: 'openid' },
      named: (upstream) => upstream.id === 'corp-twelfth',
    },
  ];
  for (const { what, path, list, body, named } of cases) {
    it(`${what}, the connection cut as it was to be listed: 503, and sent again it is made and listed (before the fix: made, never listed, and "exists already" for ever)`, async () => {
      const cut = relayed.relay.cut(toTheList(list));
      const blip = await call('POST', path, body);
      relayed.relay.release();
      assert.equal(await cut, true, 'the cut was reached');
      assert.equal(blip.status, 503, `${blip.status} ${await blip.text()}`);
      assert.ok(Number(blip.headers.get('retry-after')) > 0, 'Retry-After');
      const again = await pastOutages(() => call('POST', path, body));
      assert.ok(again.status === 201 || again.status === 409, `sent again: ${again.status} ${await again.clone().text()}`);
      const listed = await pastOutages(() => call('GET', path));
      assert.equal(listed.status, 200);
      assert.equal(((await listed.json()) as Record<string, unknown>[]).filter(named).length, 1, `${what} is listed once`);
    });
  }

  it('a person (POST /admin/users), the connection cut at the write of their record (run, its answer lost; its taking back failed too): added again, listed once, the one their name finds (held; listed twice had the list read only its set)', async () => {
    const body = { username: 'recorded-twelfth', password: 'a long enough password for sure' };
    const record = (chunk: string) => commandsIn(chunk).some(([name = '', key = '', value = '']) => /^set$/i.test(name) && /(^|:)account:[0-9a-f-]{36}$/.test(key) && value.includes('"recorded-twelfth"'));
    const cut = relayed.relay.cut(record, { answered: true });
    const blip = await call('POST', '/users', body);
    relayed.relay.release();
    assert.equal(await cut, true, 'the cut was reached');
    assert.equal(blip.status, 503);
    const again = await pastOutages(() => call('POST', '/users', body));
    assert.equal(again.status, 201, `added again: ${await again.clone().text()}`);
    const { sub } = (await again.json()) as { sub: string };
    const listed = await pastOutages(() => call('GET', '/users'));
    assert.deepEqual(((await listed.json()) as { sub: string; username: string }[]).filter((user) => user.username === body.username).map((user) => user.sub), [sub]);
    assert.equal((await server.accounts.findByUsername(body.username))?.sub, sub);
  });
});
