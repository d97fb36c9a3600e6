/**
 * The twelfth fresh-eyes passes: online guessing, enumeration and secrets in logs. What an outsider
 * sends and what the flows hand out never reaches the log, nor do the arguments of a store command
 * that failed (an ioredis error carries them: record payloads, a signed-in person's session id in
 * an interaction, an upstream sign-in's PKCE verifier).
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { createLogger, createServerLogger } from '../../src/ops/logger.js';
import { Agent } from '../helpers/agent.js';
import { initialAccessToken } from '../helpers/operator.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';

const SECRET = 'a-configured-client-secret-0123456789abcdef';
const PASSWORD = 'correct horse battery staple 42';
const REDIRECT = 'https://app.example.test/cb';
const SIGNED_OUT = 'https://app.example.test/out';
const form = (body: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(body),
});
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('secrets in logs (twelfth fresh-eyes passes)', function () {
  this.timeout(60_000);

  describe('every flow at LOG_LEVEL=debug, and an outsider guessing', () => {
    let server: TestServer;
    const lines: string[] = [];
    before(async () => {
      server = await startServer({
        cheapHashing: true,
        env: { LOG_LEVEL: 'debug' },
        logger: createLogger('debug', { write: (line: string) => void lines.push(line) }),
        clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT], grant_types: ['authorization_code', 'refresh_token'] }],
      });
      await server.accounts.create('alice', PASSWORD);
    });
    after(async () => server?.stop());

    it('passwords, guessed and right, codes, verifiers, tokens, ID token hints, client secrets, registration and initial access tokens, guessed and real: none in any log line', async () => {
      const secrets = new Set([SECRET, PASSWORD]);
      const config = await oidc.discovery(new URL(server.issuer), 'app', { redirect_uris: [REDIRECT] }, oidc.ClientSecretPost(SECRET), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const guessedPassword = 'a guessed password 7f3a';
      secrets.add(guessedPassword);
      const first = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
      const refused = await agent.submit(first.page, '/login', { username: 'alice', password: guessedPassword });
      assert.equal(refused.status, 401);
      const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
      const back = new URL((await signInSteps(agent, page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT })).url);
      const code = back.searchParams.get('code')!;
      const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: back.searchParams.get('state') ?? undefined });
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      for (const value of [code, verifier, tokens.access_token, tokens.refresh_token!, tokens.id_token!, refreshed.access_token, refreshed.refresh_token!]) secrets.add(value);
      await oidc.fetchUserInfo(config, refreshed.access_token, oidc.skipSubjectCheck);
      assert.equal((await oidc.tokenIntrospection(config, refreshed.access_token)).active, true);
      // An outsider's guesses: client secrets at the token, introspection and revocation endpoints, a bearer at userinfo.
      for (const guess of ['a-guessed-client-secret-aaaaaaaaaaaaaaaaaaaaaa', 'a-guessed-client-secret-bbbbbbbbbbbbbbbbbbbbbb']) {
        secrets.add(guess);
        assert.equal((await fetch(`${server.url}/token`, form({ grant_type: 'refresh_token', refresh_token: refreshed.refresh_token! }, { authorization: basic('app', guess) }))).status, 401);
        assert.equal((await fetch(`${server.url}/token/introspection`, form({ token: refreshed.access_token, client_id: 'app', client_secret: guess }))).status, 401);
        assert.equal((await fetch(`${server.url}/token/revocation`, form({ token: refreshed.refresh_token!, client_id: 'app', client_secret: guess }))).status, 401);
        assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${guess}` } })).status, 401);
      }
      // A JSON body and credentials twice (Basic and the body): refused, not echoed.
      await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_secret: SECRET }) });
      await fetch(`${server.url}/token`, form({ grant_type: 'refresh_token', refresh_token: refreshed.refresh_token!, client_id: 'app', client_secret: SECRET }, { authorization: basic('app', SECRET) }));
      // Sign-out with the ID token as a hint in the query.
      const ending = await agent.follow(`${server.issuer}/session/end?id_token_hint=${tokens.id_token}&post_logout_redirect_uri=${encodeURIComponent(SIGNED_OUT)}`);
      assert.ok((await agent.submit(ending, '/session/end/confirm', { logout: 'yes' }, SIGNED_OUT)).url.startsWith(SIGNED_OUT));
      // Replays: a spent code (which revokes the grant) and a rotated refresh token.
      assert.equal((await fetch(`${server.url}/token`, form({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: 'app', client_secret: SECRET }))).status, 400);
      // Registration (RFC 7591, 7592): the initial access token, the client's secret and registration
      // access token, and guesses of both tokens.
      const initial = await initialAccessToken(server);
      const registered = (await (await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${initial}` }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) })).json()) as Record<string, string>;
      assert.ok(registered.client_secret && registered.registration_access_token, JSON.stringify(registered));
      const guessedToken = 'a-guessed-registration-access-token-cccc';
      for (const value of [initial, registered.client_secret, registered.registration_access_token, guessedToken]) secrets.add(value);
      assert.equal((await fetch(`${server.url}/reg/${registered.client_id}`, { headers: { authorization: `Bearer ${registered.registration_access_token}` } })).status, 200);
      assert.equal((await fetch(`${server.url}/reg/${registered.client_id}`, { headers: { authorization: `Bearer ${guessedToken}` } })).status, 401);
      assert.equal((await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${guessedToken}` }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) })).status, 401);
      assert.ok(lines.length > 20, `the flows were logged: ${lines.length} lines`);
      const everything = lines.join('\n');
      const leaked = [...secrets].filter((secret) => everything.includes(secret));
      assert.deepEqual(leaked.map((secret) => lines.find((line) => line.includes(secret))), [], 'no secret in the log');
    });
  });

  describe('a store command that failed', () => {
    let redis: RedisServer;
    let client: Redis;
    before(async () => {
      redis = await startRedisServer();
      client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await client.connect();
    });
    after(async () => {
      client?.disconnect();
      await redis?.stop();
    });

    it('an ioredis error logged (an unhandled error, a failed listener) names its command, never its arguments (the record it wrote: a session id, a PKCE verifier), in JSON and in readable lines', async () => {
      const payload = JSON.stringify({ session: { cookie: 'a-session-id-that-is-a-bearer-credential' }, verifier: 'an-upstream-pkce-verifier-0123456789' });
      await client.set('held-as-a-string', 'x');
      const failures: Error[] = [];
      // A command, and a script (whose arguments are the record too), each refused by Redis (WRONGTYPE).
      await client.hset('held-as-a-string', 'payload', payload).catch((error: Error) => failures.push(error));
      await client.eval("return redis.call('hset', KEYS[1], 'payload', ARGV[1])", 1, 'held-as-a-string', payload).catch((error: Error) => failures.push(error));
      assert.equal(failures.length, 2);
      for (const error of failures) assert.ok(JSON.stringify((error as Error & { command?: unknown }).command).includes('a-session-id'), 'ioredis keeps the arguments on the error');
      const json: string[] = [];
      const jsonLogger = createLogger('info', { write: (line: string) => void json.push(line) });
      const readable = Object.assign(new PassThrough(), { isTTY: true });
      let pretty = '';
      readable.on('data', (chunk: Buffer) => (pretty += chunk.toString()));
      const prettyLogger = await createServerLogger('info', 'pretty', readable);
      for (const error of failures) {
        for (const logger of [jsonLogger, prettyLogger]) {
          logger.error({ err: error, requestId: 'r', path: '/interaction/x/login' }, 'unhandled error');
          logger.error({ err: new Error('key ring: a listener failed', { cause: error }) }, 'a listener failed');
        }
      }
      await new Promise((resolve) => setImmediate(resolve));
      const written = `${json.join('\n')}\n${pretty}`;
      assert.ok(json.length >= 4 && pretty.length > 0, written);
      for (const secret of ['a-session-id', 'an-upstream-pkce-verifier']) assert.ok(!written.includes(secret), `${secret} logged:\n${written}`);
      // What an operator needs is still there: the reply, and which command got it.
      assert.match(json[0]!, /WRONGTYPE/);
      assert.match(json[0]!, /"name":"hset"/);
    });
  });
});
