/**
 * Back-channel logout that reaches the app (OpenID Connect Back-Channel Logout 1.0): a logout token
 * the app's endpoint did not take (no answer, 503) is sent again, freshly signed, after each delay of
 * backchannel.retrySchedule, and given up after the last; a session that expires tells its apps; two
 * instances sweeping one store deliver a retry once; a store outage during the sweeps is survived.
 * The apps are real node:http endpoints; the tokens are verified with jose against our JWKS.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Redis } from 'ioredis';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { createLogger } from '../../src/ops/logger.js';

const PASSWORD = 'back-channel delivery password';
const REDIRECT = 'https://app.example.test/callback';
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** The apps, each with its own path at the one endpoint server. */
const APPS = ['recovers', 'never', 'refuses', 'expiry', 'twice', 'outage', 'guarded'] as const;
type AppName = (typeof APPS)[number];
const secretOf = (name: string) => `${name}-client-secret-with-plenty-of-entropy-0123456789`;

/** How an app's endpoint answers now: 200, 503, 400 (the token refused), or not at all (the connection dropped). */
type Mode = 200 | 400 | 503 | 'down';

interface Endpoint {
  readonly server: Server;
  readonly url: string;
  readonly mode: Map<string, Mode>;
  /** Answers for an app's next posts, one each, in order, before `mode` again. */
  readonly next: Map<string, Mode[]>;
  /** Every logout token posted, by app, with how it was answered. */
  readonly posts: Map<string, { token: string; answered: Mode }[]>;
}

async function startEndpoint(): Promise<Endpoint> {
  const mode = new Map<string, Mode>();
  const next = new Map<string, Mode[]>();
  const posts = new Map<string, { token: string; answered: Mode }[]>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const app = (req.url ?? '').slice(1);
      const token = new URLSearchParams(body).get('logout_token') ?? '';
      const answered = next.get(app)?.shift() ?? mode.get(app) ?? 200;
      (posts.get(app) ?? posts.set(app, []).get(app)!).push({ token, answered });
      if (answered === 'down') return void req.socket.destroy();
      if (answered === 400) return void res.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"error":"invalid_request","error_description":"the logout failed"}');
      res.writeHead(answered, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, mode, next, posts };
}

/** A logger whose lines the test reads (JSON objects), for the sweeps' events. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

describe('e2e: back-channel logout reaches the app: sent again, and at session expiry', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let raw: Redis;
  let endpoint: Endpoint;
  let one: TestServer;
  let two: TestServer;
  const logs = { one: capturedLogger(), two: capturedLogger() };

  before(async () => {
    [redis, endpoint] = await Promise.all([startRedisServer(), startEndpoint()]);
    raw = new Redis(redis.url);
    const clients = [
      ...APPS.map((name) => ({ client_id: name, client_secret: secretOf(name), redirect_uris: [REDIRECT], backchannel_logout_uri: `${endpoint.url}/${name}`, backchannel_logout_session_required: true })),
      machineClient(OPS, { scope: 'admin' }),
    ];
    // Short schedules: a retry a second after the first failure, another a second later, then given up.
    // Sessions expire 8 s after their last use (the other tests end theirs at once; time enough on a
    // loaded machine for a code exchange and an operator's token and call before it). Redis commands
    // time out after 2 s, for the outage test to see a sweep fail soon: 500 ms was overrun at the
    // servers' start on a loaded machine (three copies of this file at once), and the start refused.
    const env = { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', BACKCHANNEL_RETRY_SCHEDULE: '1,1', BACKCHANNEL_SWEEP_INTERVAL: '0.2', REDIS_COMMAND_TIMEOUT: '2000', TTL_SESSION: '8' };
    one = await startServer({ redisUrl: redis.url, clients, env, logger: logs.one.logger });
    // A second instance of the same deployment (one issuer), sweeping the same store.
    two = await startServer({ redisUrl: redis.url, clients, env: { ...env, ISSUER: one.issuer }, logger: logs.two.logger });
    await one.apis.grant(OPS.id, `${one.issuer}/admin`, { scopes: ['admin'] });
  });
  after(async () => {
    await one?.stop();
    await two?.stop();
    raw?.disconnect();
    endpoint?.server.close();
    await redis?.stop();
  });

  /** `username` signs in to `app` at `server`; the person's sub and the session's sid, as the ID token says them. */
  async function signedIn(username: string, app: AppName): Promise<{ sub: string; sid: string }> {
    await one.accounts.create(username, PASSWORD);
    const config = await oidc.discovery(new URL(one.issuer), app, secretOf(app), oidc.ClientSecretBasic(secretOf(app)), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    assert.ok(done.url.startsWith(REDIRECT), `back at the app, got ${done.status} ${done.url}`);
    const claims = (await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck })).claims()!;
    return { sub: claims.sub, sid: String(claims.sid) };
  }

  /** An operator disables the person (admin API): their sessions end, and their apps are told. */
  async function disable(username: string): Promise<void> {
    const token = await clientCredentialsToken(one.url, OPS, `${one.issuer}/admin`, 'admin');
    const answer = await fetch(`${one.url}/admin/users/${username}/disable`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(answer.status, 200);
  }

  const postsTo = (app: AppName) => endpoint.posts.get(app) ?? [];

  /** The logout token verified as the app verifies it: our JWKS, issuer, its audience, typ logout+jwt. */
  async function verified(app: AppName, token: string) {
    const { jwks_uri } = (await (await fetch(`${one.url}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
    const keys = createRemoteJWKSet(new URL(jwks_uri));
    return (await jwtVerify(token, keys, { issuer: one.issuer, audience: app, typ: 'logout+jwt', maxTokenAge: '2 minutes' })).payload;
  }

  const logged = (event: string, clientId?: string) =>
    [...logs.one.lines, ...logs.two.lines].filter((line) => line.event === event && (clientId === undefined || line.client_id === clientId));

  it('an app whose endpoint answers 503, then drops the connection, then recovers, gets a valid, freshly signed logout token', async () => {
    endpoint.mode.set('recovers', 503);
    const session = await signedIn('rita', 'recovers');
    await disable('rita');
    assert.equal(postsTo('recovers').length, 1, 'told once as the session ended (503)');
    // The first retry finds it down (no answer at all), the second finds it back. Set now, for the
    // endpoint to play in order: switched to 200 by the test once the retry was seen, the second retry
    // (a second later) could come first on a loaded machine, find it down, and end the schedule.
    endpoint.next.set('recovers', ['down']);
    endpoint.mode.set('recovers', 200);
    await eventually(async () => assert.ok(postsTo('recovers').length >= 2, 'sent again'), 100);
    assert.equal(postsTo('recovers')[1]!.answered, 'down');
    await eventually(async () => assert.equal(postsTo('recovers').at(-1)!.answered, 200, 'delivered once it recovered'), 100);
    const [first, ...rest] = postsTo('recovers');
    const delivered = rest.at(-1)!;
    const payload = await verified('recovers', delivered.token);
    assert.equal(payload.sub, session.sub);
    assert.equal(payload.sid, session.sid);
    assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
    assert.equal(payload.nonce, undefined);
    // Signed anew: its own jti, issued no earlier than the first (which the app may have seen expire from its window).
    const original = decodeJwt(first!.token);
    assert.notEqual(payload.jti, original.jti);
    assert.ok(payload.iat! >= original.iat!, `iat ${payload.iat} after ${original.iat}`);
    assert.equal(new Set(postsTo('recovers').map(({ token }) => decodeJwt(token).jti)).size, postsTo('recovers').length, 'a new jti at each attempt');
    await eventually(async () => assert.equal(logged('backchannel.delivered', 'recovers').length, 1));
    // Nothing of the token in the log lines of the retries.
    for (const line of [...logs.one.lines, ...logs.two.lines].filter((entry) => String(entry.event).startsWith('backchannel.'))) {
      assert.ok(!JSON.stringify(line).includes(delivered.token.split('.')[1]!), 'no token in the log');
    }
  });

  it('an app that never recovers is given up after the schedule: one attempt and one per delay, then dropped and said', async () => {
    endpoint.mode.set('never', 503);
    await signedIn('nico', 'never');
    await disable('nico');
    await eventually(async () => assert.equal(logged('backchannel.dropped', 'never').length, 1, 'given up'), 100);
    const [dropped] = logged('backchannel.dropped', 'never');
    assert.equal(dropped!.reason, 'schedule_ended');
    // Both instances finish any sweep in progress: nothing is left to send.
    await Promise.all([one.backchannel.sweep(), two.backchannel.sweep()]);
    assert.equal(postsTo('never').length, 3, 'the first attempt, then one per delay of the schedule (1,1)');
    assert.equal(await raw.zcard('lk:backchannel:{bc}:retries'), 0, 'nothing kept');
    // Each set there is kept with a TTL (-2: none there, the sessions having ended).
    for (const key of ['lk:backchannel:{bc}:session-ends', 'lk:backchannel:{bc}:retries']) {
      const ttl = await raw.ttl(key);
      assert.ok(ttl === -2 || ttl > 0, `${key}: TTL ${ttl}`);
    }
  });

  it("an answer of the app, 400 with an error (Back-Channel Logout 1.0 §2.8: the token invalid or the logout failed), is its verdict: not sent again", async () => {
    // The same claims signed anew would get the same verdict; a 503 or no answer is no verdict.
    endpoint.mode.set('refuses', 400);
    await signedIn('rufus', 'refuses');
    await disable('rufus');
    assert.equal(postsTo('refuses').length, 1);
    assert.deepEqual((await raw.zrange('lk:backchannel:{bc}:retries', '0', '-1')).filter((member) => member.includes('"c":"refuses"')), [], 'nothing kept to send again');
  });

  it("an ending by a CLI whose outbound guard refuses the app's address (run without the servers' OUTBOUND_ALLOW_PRIVATE_NETWORKS) is kept for the servers, whose guard lets it through: the app is told", async () => {
    const { sid } = await signedIn('gina', 'guarded');
    const run = await latchkey({ ...one.env, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' }, ['users', 'disable', 'gina']);
    assert.equal(run.status, 0, run.stderr);
    await eventually(async () => assert.equal(postsTo('guarded').length, 1, 'a server sent what the CLI could not'), 100);
    assert.equal((await verified('guarded', postsTo('guarded')[0]!.token)).sid, sid);
  });

  it('a session that expires tells its app, and its grant (no offline access) is revoked', async () => {
    const session = await signedIn('eve', 'expiry');
    assert.equal((await one.grants.ofAccount(session.sub)).length, 1, 'a grant made in the session');
    assert.equal(await raw.zcard('lk:backchannel:{bc}:session-ends'), 1, 'its expiry kept for the sweep');
    assert.ok((await raw.ttl('lk:backchannel:{bc}:session-ends')) > 0, 'with a TTL');
    // Idle for ttl.session (8 s): it expires, the sweep ends it and tells the app.
    await eventually(async () => assert.equal(postsTo('expiry').length, 1, 'told of the expiry'), 200);
    const payload = await verified('expiry', postsTo('expiry')[0]!.token);
    assert.equal(payload.sub, session.sub);
    assert.equal(payload.sid, session.sid);
    assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
    await eventually(async () => assert.deepEqual(await one.grants.ofAccount(session.sub), [], 'its grant revoked'));
    await eventually(async () => assert.equal(logged('session.expired').length >= 1, true));
    // Told once, whichever instance swept it.
    await Promise.all([one.backchannel.sweep(), two.backchannel.sweep()]);
    assert.equal(postsTo('expiry').length, 1);
    assert.equal(await raw.zcard('lk:backchannel:{bc}:session-ends'), 0, 'nothing left to sweep');
  });

  it('two instances sweeping one store deliver a retry once', async () => {
    endpoint.mode.set('twice', 503);
    const session = await signedIn('tom', 'twice');
    await disable('tom');
    endpoint.mode.set('twice', 200);
    // Both sweep at once, again and again, as the retry falls due (and their timers sweep too).
    await eventually(async () => {
      await Promise.all([one.backchannel.sweep(), two.backchannel.sweep()]);
      assert.equal(postsTo('twice').filter(({ answered }) => answered === 200).length >= 1, true);
    }, 100);
    await Promise.all([one.backchannel.sweep(), two.backchannel.sweep()]);
    const delivered = postsTo('twice').filter(({ answered }) => answered === 200);
    assert.equal(delivered.length, 1, 'delivered once');
    assert.equal((await verified('twice', delivered[0]!.token)).sid, session.sid);
  });

  it('a store outage during the sweeps: no crash, said once, and the retry is delivered once the store is back', async () => {
    endpoint.mode.set('outage', 503);
    await signedIn('olga', 'outage');
    await disable('olga');
    redis.pause();
    try {
      await eventually(async () => assert.ok(logged('backchannel.sweep_failed').length >= 1, 'the failed sweep said'), 100);
    } finally {
      redis.resume();
    }
    endpoint.mode.set('outage', 200);
    // A claim sent during the pause whose sweep failed at the command timeout runs once the store
    // is back and holds the retry for the lease (15 s) with nobody to post it: delivered after it.
    await eventually(async () => assert.equal(postsTo('outage').filter(({ answered }) => answered === 200).length, 1, 'delivered after the outage'), 250);
    // The instance whose sweep failed may not be the one that delivered: it says so at its next sweep.
    await eventually(async () => assert.ok(logged('backchannel.sweep_resumed').length >= 1, 'the sweeps resumed, and said so'));
    // Both servers still answer.
    for (const server of [one, two]) assert.equal((await fetch(`${server.url}/.well-known/openid-configuration`)).status, 200);
  });
});
