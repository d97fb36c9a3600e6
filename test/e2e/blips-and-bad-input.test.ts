/**
 * The newer surfaces, black box. Redis blips in the middle of a flow: the answer is 503 with
 * Retry-After, and once Redis is back the same flow completes without a restart, whatever the blip
 * left half written (Redis keeps its data across the blip: append-only file, fsync always, as a
 * restarted or failed-over Redis does). Bad input: a protocol error, never a 5xx.
 */
import assert from 'node:assert/strict';
import { Secret, TOTP } from 'otpauth';
import { Agent, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { scriptOn, startRelay, type Relay } from '../helpers/relay.js';
import { startSelfUpstreamServer, startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const PASSWORD = 'blips and bad input password';
const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'blips-client-secret-with-plenty-of-entropy-0123456789';

describe('e2e: Redis blips mid-flow', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer({ appendonly: true });
    relay = await startRelay(redis.port);
    // The server is its own upstream provider ("self"), where it is the client "latchkey".
    server = await startSelfUpstreamServer({ secret: SECRET, redirect: REDIRECT, redisUrl: relay.url });
  });
  after(async () => {
    relay?.release();
    await server?.stop();
    relay?.close();
    await redis?.stop();
  });

  const authorize = (agent: Agent) =>
    agent.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT);

  it('a recovery code spent just before Redis went away still finishes that sign-in once Redis is back (it is not lost to the blip)', async () => {
    const { sub } = await server.accounts.create('rowan', PASSWORD);
    // Recovery codes come with an authenticator app (alone they are no second factor).
    const { secret } = await server.secondFactors.totp.begin(sub, 'rowan', 'setup-session');
    const now = TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
    assert.equal(await server.secondFactors.totp.confirm(sub, now, 'setup-session'), true);
    const [code] = await server.secondFactors.recoveryCodes.generate(sub);
    const agent = new Agent();
    const factor = await agent.submit(await authorize(agent), '/login', { username: 'rowan', password: PASSWORD }, REDIRECT);
    assert.match(factor.html, /name="code"/, `expected the second-factor page, got ${factor.status} ${factor.url}`);
    const uid = new URL(factor.url).pathname.split('/')[2]!;

    // The code is spent; Redis dies as the sign-in is written to the interaction.
    const held = await relay.hold(scriptOn(`oidc:Interaction:${uid}`), () => agent.submit(factor, '/second-factor', { method: 'recovery', code: code! }, REDIRECT));
    await redis.kill();
    const blip: Page = await held.answer;
    assert.equal(blip.status, 503, `${blip.status} ${blip.url}`);
    assert.ok(Number(blip.headers.get('retry-after')) > 0, 'Retry-After');
    assert.match(blip.headers.get('content-type') ?? '', /text\/html/);

    await redis.restart();
    relay.release();
    const after = await eventually(async () => {
      const page = await agent.submit(factor, '/second-factor', { method: 'recovery', code: code! }, REDIRECT);
      assert.notEqual(page.status, 503, 'Redis is back');
      return page;
    });
    assert.ok(after.url.startsWith(REDIRECT) || /Allow access/.test(after.html), `the sign-in goes on with the same code, got ${after.status} ${after.url} ${/class="error[^>]*>([^<]*)/.exec(after.html)?.[1] ?? ''}`);
    assert.equal((await server.secondFactors.summary(sub)).recoveryCodesLeft, 9, 'the code is spent once');
  });

  it("the upstream's answer reaching Latchkey as Redis goes away: 503, and once Redis is back the same answer signs the person in", async () => {
    await server.accounts.create('uma', PASSWORD);
    const agent = new Agent();
    const login = await authorize(agent);
    const callback = `${server.issuer}/upstream/self/callback`;
    const toUpstream = await agent.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    // At the upstream (this same server: another browser, so that its session there is not this one's here).
    const upstreamBrowser = new Agent();
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, callback), { username: 'uma', password: PASSWORD, stopAt: callback });
    assert.ok(answer.url.startsWith(callback), `the upstream answers: ${answer.status} ${answer.url}`);

    // Redis goes away as the callback takes the pending sign-in.
    const held = await relay.hold((chunk) => chunk.includes('upstream:state:'), () => agent.follow(answer.url, {}, REDIRECT));
    await redis.kill();
    const blip = await held.answer;
    assert.equal(blip.status, 503, `${blip.status} ${blip.url}`);
    assert.ok(Number(blip.headers.get('retry-after')) > 0, 'Retry-After');

    await redis.restart();
    relay.release();
    const after = await eventually(async () => {
      const page = await agent.follow(answer.url, {}, REDIRECT);
      assert.notEqual(page.status, 503, 'Redis is back');
      return page;
    });
    assert.ok(after.url.startsWith(REDIRECT) || /Allow access/.test(after.html), `the sign-in goes on, got ${after.status} ${after.url} ${after.html.slice(0, 300)}`);
  });
});

describe('e2e: bad input at the newer surfaces', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
  });
  after(async () => {
    await server?.stop();
  });

  it("an upstream's back-channel logout endpoint refuses what is no signed JWT with 400 invalid_request, even while the upstream is down", async () => {
    const upstreams = new Upstreams(server.kv, server.config.keys.secrets);
    await upstreams.add({ id: 'gone', issuer: `http://127.0.0.1:${await freePort()}`, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Gone', linkByEmail: false, endSession: false });
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const post = async (body: string) => {
      const response = await fetch(`${server.url}/upstream/gone/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      return { status: response.status, json: (await response.json()) as { error?: string } };
    };
    for (const token of ['x', 'a.b.c', '%E0%A4%A', `${b64({ alg: 'none' })}.${b64({ sub: 'x' })}.`, `${b64({ alg: 'RS256' })}.${b64({})}.AA.AA.AA`, `e30.${b64({})}.AA`]) {
      const { status, json } = await post(`logout_token=${token}`);
      assert.deepEqual([status, json.error], [400, 'invalid_request'], `logout_token=${token}`);
    }
    // A signed JWT it is: the upstream's keys are needed, and it is down.
    const { status, json } = await post(`logout_token=${b64({ alg: 'RS256', kid: 'k' })}.${b64({ sub: 'x' })}.AA`);
    assert.deepEqual([status, json.error], [503, 'temporarily_unavailable']);
  });
});
