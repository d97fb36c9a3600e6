/**
 * The second blips pass (2026-12-04), black box: a Redis that goes away (a redis-server of the
 * test's own, killed and started again with its append-only file, or paused with SIGSTOP past
 * REDIS_COMMAND_TIMEOUT, so that it runs what waited in its socket only after the request's 503;
 * and a relay holding a connection's traffic at the command the test names) in the newest code
 * paths: what a start ends before it serves (Client ID Metadata Documents switched off) and its
 * one line, a start with Redis paused, a document read as gone, the code exchange, refresh and
 * device poll through the patches added last, a sign-in's resume, an upstream's answer, a passkey
 * sign-in, and the per-address rate limit. The house rule: a request fails with 503 (Retry-After,
 * `temporarily_unavailable` at OAuth endpoints, a page for people), a start fails in one line, and
 * once Redis is back everything recovers by itself with nothing lost: no ending skipped, no code,
 * refresh token, sign-in or challenge spent by a failed request, none honoured twice.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually, pastOutages } from '../helpers/eventually.js';
import { CLI } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { BLIP_COMMAND_TIMEOUT, commandsIn, startRelay, type Relay } from '../helpers/relay.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { documentHost } from '../helpers/document-host.js';
import { API, grantFeed, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const PASSWORD = 'second blips pass test password';

/** `latchkey serve` (the built CLI) until it exits or is killed: its exit code and stderr. */
/**
 * A relay matcher for the first command, after a document client's accepted record is read, on the
 * connection that read it and naming that document (its URL, or the hash its records are keyed by).
 */
function afterAcceptedRecordRead(): (chunk: string, connection: number) => boolean {
  let read: { connection: number; hash: string } | undefined;
  return (chunk, connection) => {
    const hash = /client-metadata-document-accepted:([\w-]+)/.exec(chunk)?.[1];
    if (hash) {
      read = { connection, hash };
      return false;
    }
    return connection === read?.connection && (chunk.includes(read.hash) || chunk.includes('/agent.json'));
  };
}

function serveUntilExit(env: Record<string, string>, args: string[] = []) {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  process.once('exit', () => child.kill('SIGKILL'));
  return { exited, stderr: () => stderr, kill: () => child.kill('SIGKILL') };
}

describe('e2e: second blips pass: a start whose Redis goes away midway', function () {
  this.timeout(90_000);
  const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
  let redis: RedisServer;
  let relay: Relay;
  let dir: string;
  let port: number;
  let server: TestServer | undefined;
  const host = documentHost('openid offline_access read');

  before(async () => {
    // Kept across the kill, as a restarted or failed-over Redis keeps it.
    redis = await startRedisServer({ appendonly: true });
    relay = await startRelay(redis.port);
    dir = testDir();
    port = await freePort();
  });
  after(async () => {
    relay?.release();
    await server?.stop();
    relay?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const settings = (enabled: boolean) => ({ RESOURCE_SERVERS, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_ENABLED: String(enabled), CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '2' });
  async function start(enabled: boolean): Promise<TestServer> {
    await server?.stop();
    server = undefined;
    server = await startServer({ redisUrl: redis.url, dir, port, clients: [machineClient(RS)], env: settings(enabled) });
    await grantFeed(server, RS.id);
    return server;
  }

  it('Client ID Metadata Documents switched off, the start killed with Redis as it ends a document client: one line, exit 1; the next start ends the client (before the fix its record was gone with the failed start, and the client’s refresh token refreshed once switched on again)', async () => {
    const started = await start(true);
    await started.accounts.create('ines', PASSWORD);
    const clientId = `${host.base}/agent.json`;
    const callback = `${host.base}/callback`;
    const config = await oidc.discovery(new URL(started.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, callback, { scope: 'openid offline_access read', prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username: 'ines', password: PASSWORD, stopAt: callback, consent: 'required' });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API });
    assert.ok(tokens.refresh_token);
    await server!.stop();
    server = undefined;

    // Switched off; the start reads the document client's accepted record, and Redis dies at the
    // next command after it (the client's ending, or before the fix the record's deletion's answer
    // already in: the ending after it).
    const held = relay.holdFrom(afterAcceptedRecordRead());
    const run = serveUntilExit(testEnv(dir, port, { redisUrl: relay.url, clients: [machineClient(RS)], env: settings(false) }));
    try {
      const reached = await Promise.race([held.then(() => true), run.exited.then(() => false)]);
      assert.ok(reached, `the start ended before its ending was held: ${run.stderr()}`);
      await redis.kill();
      relay.release();
      assert.equal(await run.exited, 1);
      // One line naming the setting, as a start that cannot reach Redis at first says it (before: ioredis's "max retries per request").
      assert.match(run.stderr(), /^latchkey: REDIS_URL: cannot reach Redis redis:\/\/127\.0\.0\.1:\d+ \([^\n]*\)[^\n]*\n$/);
    } finally {
      run.kill();
      relay.release();
    }

    await redis.restart();
    await start(false);
    // Switched on again: what was issued before does not come back.
    await start(true);
    const refresh = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: clientId, resource: API }),
    });
    // Before the fix: 200, new tokens (the ending was lost with the failed start).
    assert.equal(refresh.status, 400, `the refresh token from before the feature was switched off: ${refresh.status}`);
  });
});

describe('e2e: second blips pass: a start while Redis is paused', function () {
  this.timeout(60_000);

  it('serve --workers 2 with Redis paused (it takes connections and answers nothing) exits 1 with one line naming the setting, no stack (held)', async () => {
    const redis = await startRedisServer();
    const dir = testDir();
    try {
      redis.pause();
      const run = serveUntilExit(testEnv(dir, await freePort(), { redisUrl: redis.url, env: { REDIS_COMMAND_TIMEOUT: '500' } }), ['--workers', '2']);
      try {
        assert.equal(await run.exited, 1);
      } finally {
        run.kill();
      }
      assert.match(run.stderr(), /^latchkey: REDIS_URL: cannot reach Redis redis:\/\/127\.0\.0\.1:\d+ \(Command timed out\)[^\n]*\n$/);
    } finally {
      redis.resume();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('e2e: second blips pass: the rate limits while Redis is away', function () {
  this.timeout(60_000);

  it('fail closed: a request on a route limited per address in Redis (no lease: a limit under 100) is 503 temporarily_unavailable with Retry-After, not let through, and answered again once Redis is back (held)', async () => {
    const redis = await startRedisServer();
    const server = await startServer({ redisUrl: redis.url, env: { RATE_LIMIT_PER_IP: '50' } });
    // The token endpoint without client authentication needs nothing of Redis but its limit's counter.
    const unauthenticated = () => fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    try {
      assert.equal((await unauthenticated()).status, 401);
      await redis.kill();
      const away = await unauthenticated();
      assert.equal(away.status, 503);
      assert.equal(away.headers.get('retry-after'), '2');
      assert.equal(((await away.json()) as { error: string }).error, 'temporarily_unavailable');
      await redis.restart();
      await eventually(async () => assert.equal((await unauthenticated()).status, 401));
    } finally {
      await server.stop();
      await redis.stop();
    }
  });
});

describe('e2e: second blips pass: a code or refresh token sent as Redis pauses', function () {
  this.timeout(60_000);
  const REDIRECT = 'https://app.example.test/callback';
  const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    relay = await startRelay(redis.port);
    server = await startServer({
      redisUrl: relay.url,
      clients: [
        { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], scope: 'openid offline_access' },
      ],
      // A command waits 2 s (not half a second: on a loaded runner, a stall of the test process ran
      // the timer before the answer that had come, and a step no blip was made at got a 503): a Redis
      // paused longer is an outage (503).
      env: { REDIS_COMMAND_TIMEOUT: String(BLIP_COMMAND_TIMEOUT) },
    });
    await server.accounts.create('pat', PASSWORD);
  });
  after(async () => {
    redis?.resume();
    relay?.release();
    await server?.stop();
    relay?.close();
    await redis?.stop();
  });

  const token = (body: Record<string, string>) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(body.client_id ? {} : { authorization: `Basic ${Buffer.from(`${WEB.id}:${WEB.secret}`).toString('base64')}` }) },
      body: new URLSearchParams(body),
    });
  /**
   * Sends `body` to the token endpoint; its consumption of the `model`'s record (a script on it
   * whose argument is a time, sent with the tokens it made) reaches a paused Redis (SIGSTOP: its
   * socket takes the commands, it runs them once resumed, after the request's 503). That answer.
   */
  async function pausedAt(model: string, body: Record<string, string>): Promise<{ status: number; retryAfter: string | null; error: unknown }> {
    const consuming = (chunk: string) => commandsIn(chunk).some(([name = '', , , key = '', at = '']) => /^eval(sha)?$/i.test(name) && key.includes(`oidc:${model}:`) && /^\d+(\.\d+)?$/.test(at));
    const held = await relay.hold(consuming, () => token(body));
    redis.pause();
    const answer = await held.release();
    redis.resume();
    // Redis runs what waited in its socket.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { status: answer.status, retryAfter: answer.headers.get('retry-after'), error: ((await answer.json()) as { error?: string }).error };
  }

  it('a code exchange and a refresh answered 503 while Redis was paused (it ran them on resuming) spent nothing: the same code, then the same refresh token, work once after (before the fix the code was spent by the failed request, and its retry was a replay)', async () => {
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT, consent: 'required' });
    const exchange = { grant_type: 'authorization_code', code: new URL(done.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier };

    assert.deepEqual(await pausedAt('AuthorizationCode', exchange), { status: 503, retryAfter: '2', error: 'temporarily_unavailable' });
    const redeemed = await token(exchange);
    // Before the fix: 400 invalid_grant (the code was spent once Redis resumed).
    assert.equal(redeemed.status, 200, `the same code once Redis is back: ${redeemed.status} ${await redeemed.clone().text()}`);
    const { refresh_token: refreshToken } = (await redeemed.json()) as { refresh_token: string };

    assert.deepEqual(await pausedAt('RefreshToken', { grant_type: 'refresh_token', refresh_token: refreshToken }), { status: 503, retryAfter: '2', error: 'temporarily_unavailable' });
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: refreshToken });
    assert.equal(refreshed.status, 200, `the same refresh token once Redis is back: ${refreshed.status} ${await refreshed.clone().text()}`);
    const { refresh_token: next } = (await refreshed.json()) as { refresh_token: string };
    // Exactly once: the code and the rotated refresh token again are refused (a replay, as ever).
    assert.equal((await token(exchange)).status, 400);
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: next })).status, 400, 'the code replayed revoked the grant, its refresh token with it');
  });

  it('a device’s poll answered 503 while Redis was paused, once the person had approved it, spent nothing: its next poll gets the tokens, once', async () => {
    const config = await oidc.discovery(new URL(server.issuer), 'tv', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access' });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'pat', password: PASSWORD });
    assert.match(approved.html, /Device connected/);
    const poll = { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: 'tv' };

    assert.deepEqual(await pausedAt('DeviceCode', poll), { status: 503, retryAfter: '2', error: 'temporarily_unavailable' });
    const polled = await token(poll);
    // Before the fix: 400 invalid_grant (the device code was spent once Redis resumed).
    assert.equal(polled.status, 200, `the device's next poll once Redis is back: ${polled.status} ${await polled.clone().text()}`);
    assert.ok(((await polled.json()) as { access_token?: string }).access_token);
    assert.equal((await token(poll)).status, 400, 'a device code is spent once');
  });
});

describe('e2e: second blips pass: a Client ID Metadata Document read as gone while Redis goes away', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let documents: http.Server;
  let base: string;
  let gone = false;

  before(async () => {
    documents = http.createServer((req, res) => {
      if (req.url !== '/agent.json' || gone) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' }).end(JSON.stringify({ client_id: `${base}/agent.json`, client_name: 'Agent', redirect_uris: [`${base}/callback`], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' }));
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(documents.address() as AddressInfo).port}`;
    redis = await startRedisServer({ appendonly: true });
    relay = await startRelay(redis.port);
    server = await startServer({ redisUrl: relay.url, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '1' } });
    await server.accounts.create('ana', PASSWORD);
  });
  after(async () => {
    relay?.release();
    await server?.stop();
    relay?.close();
    documents?.closeAllConnections();
    documents?.close();
    await redis?.stop();
  });

  const cacheExpired = () => new Promise((resolve) => setTimeout(resolve, 1100));

  it('its client’s removal cut short by Redis going away is finished at the next read once Redis is back: served again, its refresh token from before is refused (before the fix the removal was lost, and the refresh token refreshed)', async () => {
    const clientId = `${base}/agent.json`;
    const callback = `${base}/callback`;
    const config = await oidc.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, callback, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'ana', password: PASSWORD, stopAt: callback, consent: 'required' });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    const refresh = () =>
      fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: clientId }) });

    // The document is gone (404); the refresh reads it again, and Redis dies at the first command
    // after the client's accepted record is read (and, before the fix, deleted): its removal.
    gone = true;
    await cacheExpired();
    // The first command after it on the connection that read it naming the document (its URL, or
    // the hash its records are keyed by): other traffic then (a subscriber's, a timer's on the same
    // connection) is not the refresh's.
    const held = await relay.hold(afterAcceptedRecordRead(), refresh);
    await redis.kill();
    // Redis gone, the relay drops the held connection, and the refresh may be answered before the
    // release (a CI run's "answered while held" was that): its answer is awaited as it comes.
    relay.release();
    const answer = await held.answer;
    assert.equal(answer.status, 503);
    assert.equal(answer.headers.get('retry-after'), '2');
    assert.equal(((await answer.json()) as { error: string }).error, 'temporarily_unavailable');

    await redis.restart();
    // Read again, still gone: its client is unknown.
    const still = await eventually(async () => {
      const again = await refresh();
      if (again.status === 503) throw new Error('Redis not reached yet');
      return again;
    });
    const stillBody = await still.text();
    assert.ok(still.status < 500 && /invalid_client/.test(stillBody), `the document still gone: ${still.status} ${stillBody}`);
    // Served again: a client made again, with nothing of before.
    gone = false;
    await cacheExpired();
    const after = await refresh();
    // Before the fix: 200, new tokens.
    assert.equal(after.status, 400, `the refresh token from before the document was gone: ${after.status}`);
    assert.equal(((await after.json()) as { error: string }).error, 'invalid_grant');
  });
});

describe('e2e: second blips pass: a sign-in resumed, or an upstream’s answer taken, as Redis pauses', function () {
  this.timeout(60_000);
  const REDIRECT = 'https://app.example.test/callback';
  const SECRET = 'app-client-secret-with-plenty-of-entropy-0123456789';
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    relay = await startRelay(redis.port);
    const port = await freePort();
    // The server is its own upstream provider ("self"), where it is the client "latchkey".
    const latchkey = { client_id: 'latchkey', client_secret: SECRET, redirect_uris: [`http://localhost:${port}/upstream/self/callback`] };
    server = await startServer({ port, redisUrl: relay.url, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }, latchkey], env: { REDIS_COMMAND_TIMEOUT: String(BLIP_COMMAND_TIMEOUT), OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'self', issuer: server.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Self', linkByEmail: false, endSession: false });
    await server.accounts.create('lee', PASSWORD);
  });
  after(async () => {
    redis?.resume();
    relay?.release();
    await server?.stop();
    relay?.close();
    await redis?.stop();
  });

  it('its resume answered 503 while Redis was paused (Redis ran the resume’s taking of the sign-in on resuming) is taken up again by the retry, not "sign-in not found" (before the fix the sign-in was deleted by then)', async () => {
    const agent = new Agent();
    const login = await pastOutages(() => agent.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT));
    const uid = new URL(login.url).pathname.split('/')[2]!;
    // The password is taken; the browser is sent to resume the authorization request.
    const resume = await agent.submit(login, '/login', { username: 'lee', password: PASSWORD }, `${server.issuer}/auth/`);
    assert.ok(resume.url.startsWith(`${server.issuer}/auth/${uid}`), `the resume: ${resume.status} ${resume.url}`);

    // The resume's taking of the sign-in (a script on its interaction whose arguments are a time, not a record) reaches a paused Redis.
    const taking = (chunk: string) => commandsIn(chunk).some(([name = '', , , key = '', at = '']) => /^eval(sha)?$/i.test(name) && key.endsWith(`oidc:Interaction:${uid}`) && /^\d+(\.\d+)?$/.test(at));
    const held = await relay.hold(taking, () => agent.follow(resume.url, {}, REDIRECT));
    redis.pause();
    const blip = await held.release();
    redis.resume();
    assert.equal(blip.status, 503, `${blip.status} ${blip.url}`);
    assert.match(blip.headers.get('content-type') ?? '', /text\/html/);
    // What waited in Redis's socket runs now.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const again = await agent.follow(resume.url, {}, REDIRECT);
    // Before the fix: 400, the error page (the interaction had been deleted).
    assert.ok(again.url.startsWith(REDIRECT) || /\/confirm/.test(again.html), `the retried resume goes on to the consent or the app: ${again.status} ${again.url} ${/<title>([^<]*)/.exec(again.html)?.[1] ?? ''}`);
  });

  it('a passkey sign-in answered 503 while Redis was paused (Redis wrote its challenge’s use on resuming) is taken when the browser sends the same assertion again (before the fix: “That passkey was not accepted”)', async () => {
    const gina = await server.accounts.create('gina', PASSWORD);
    const key = softPasskey();
    await registerSoftPasskeys(server, gina.sub, key);
    const agent = new Agent();
    const page = await pastOutages(() => agent.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT));
    const credential = assertion(key, new URL(server.issuer).origin, passkeyChallenge(page), gina.sub, 1);
    // The mark of the challenge's use reaches a paused Redis.
    const held = await relay.hold((chunk) => chunk.includes('webauthn-challenge-used:'), () => agent.submit(page, '/passkey', { credential }, REDIRECT));
    redis.pause();
    const blip = await held.release();
    redis.resume();
    assert.equal(blip.status, 503, `${blip.status} ${blip.url}`);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const again = await agent.submit(page, '/passkey', { credential }, REDIRECT);
    // Before the fix: 401, the sign-in page again.
    assert.ok(again.url.startsWith(REDIRECT) || /\/confirm/.test(again.html), `the same assertion once Redis is back: ${again.status} ${again.url} ${/class="error[^>]*>([^<]*)/.exec(again.html)?.[1] ?? ''}`);
    // Used once: the same assertion in another sign-in is refused, as ever (its challenge is not that sign-in's).
    const other = new Agent();
    const otherPage = await other.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT);
    assert.equal((await other.submit(otherPage, '/passkey', { credential }, REDIRECT)).status, 401);
  });

  it('the upstream’s answer reaching Latchkey as Redis pauses: 503, and once Redis is back the same answer signs the person in (before the fix Redis spent the pending sign-in on resuming, and the retry was refused)', async () => {
    await server.accounts.create('uma', PASSWORD);
    const agent = new Agent();
    const login = await pastOutages(() => agent.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT));
    const callback = `${server.issuer}/upstream/self/callback`;
    const toUpstream = await agent.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    // At the upstream (this same server: another browser, so that its session there is not this one's here).
    const upstreamBrowser = new Agent();
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, callback), { username: 'uma', password: PASSWORD, stopAt: callback });
    assert.ok(answer.url.startsWith(callback), `the upstream answers: ${answer.status} ${answer.url}`);

    // The callback's taking of the pending sign-in reaches a paused Redis.
    const held = await relay.hold((chunk) => chunk.includes('upstream:state:'), () => agent.follow(answer.url, {}, REDIRECT));
    redis.pause();
    const blip = await held.release();
    redis.resume();
    assert.equal(blip.status, 503, `${blip.status} ${blip.url}`);
    assert.equal(blip.headers.get('retry-after'), '2');
    await new Promise((resolve) => setTimeout(resolve, 300));

    const after = await agent.follow(answer.url, {}, REDIRECT);
    // Before the fix: 400, "Invalid sign-in request".
    assert.ok(after.url.startsWith(REDIRECT) || /\/confirm/.test(after.html), `the sign-in goes on: ${after.status} ${after.url} ${/<title>([^<]*)/.exec(after.html)?.[1] ?? ''}`);
  });
});
