/**
 * An attack pass over the privileged and cryptographic surfaces, black box: the admin API and the
 * revocation feed against every token that is not an operator's grant, what the JWKS publishes,
 * what the logs and metrics keep. Each test performs one attack against a running Latchkey on a
 * real Redis (LOG_LEVEL=debug, every line kept) and asserts that it fails; docs/security.md's
 * threat model points here.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { API, basic, clientCredentialsToken, grantFeed, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { frontChannel } from '../helpers/front-channel.js';
import { initialAccessToken } from '../helpers/operator.js';
import { initialAccessTokenId } from '../../src/registration/initial-access-tokens.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { createLogger } from '../../src/ops/logger.js';
import { createResourceServer } from '../../src/resource-server/index.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'privileged attacks test password';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const READER = { id: 'reader', secret: 'reader-client-secret-with-plenty-of-entropy-01234' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

/** Public RSA members, as RFC 7518 §6.3.1 names them, and the three every published key states. */
const PUBLIC_RSA_MEMBERS = new Set(['kty', 'n', 'e', 'kid', 'alg', 'use']);

describe('attacks: the privileged and cryptographic surfaces (black box)', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  const logLines: string[] = [];

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    // The operator provisions a key exported by a tool that adds what WebCrypto and key managers
    // write beside the key: usages, extractability, a certificate-ish extra and an unknown member.
    const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const exported = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(exported, 'sha256');
    const jwk: JWK & Record<string, unknown> = { ...exported, kid, alg: 'RS256', use: 'sig', key_ops: ['sign'], ext: true, 'x-backup-passphrase': 'hunter2-kept-by-the-key-manager' };
    const at = new Date().toISOString();
    mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'keys', 'keyring.json'), `${JSON.stringify({ version: 1, keys: [{ kid, state: 'current', createdAt: at, activatedAt: at, jwk }] })}\n`, { mode: 0o600 });
    const settings = {
      redisUrl: redis.url,
      dir,
      port,
      clients: [
        { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile email offline_access read' },
        machineClient(OPS),
        machineClient(READER),
        machineClient(MACHINE),
        machineClient(RS),
      ],
    };
    env = testEnv(dir, port, settings);
    server = await startServer({ ...settings, env: { LOG_LEVEL: 'debug', RESOURCE_SERVERS }, logger: createLogger('debug', { write: (line: string) => void logLines.push(line) }) });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.apis.grant(READER.id, `${server.issuer}/admin`, { scopes: ['admin:read'] });
    await grantFeed(server, RS.id);
    await server.accounts.create('alice', PASSWORD, { email: 'alice@example.test' });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it('the JWKS publishes only the public members of each key (kty, n, e, kid, alg, use), whatever else the provisioned private JWK held, and latchkey/resource-server verifies against it (RFC 7517 §4.3, RFC 7518 §6.3.1)', async () => {
    for (const path of [new URL(server.config.issuer).pathname.replace(/\/$/, '') + '/jwks', '/.well-known/jwks.json']) {
      const answer = await fetch(`${server.url}${path}`);
      assert.equal(answer.status, 200, path);
      const { keys } = (await answer.json()) as { keys: Record<string, unknown>[] };
      assert.ok(keys.length >= 2, 'current and next');
      for (const key of keys) {
        assert.deepEqual(Object.keys(key).filter((member) => !PUBLIC_RSA_MEMBERS.has(member)), [], `${path}: ${JSON.stringify(key)}`);
        assert.equal(key.alg, 'RS256');
        assert.equal(key.use, 'sig');
      }
    }
    // The key as published is one a verifier can use: a token it signed passes the helper.
    const helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
    try {
      const token = await clientCredentialsToken(server.url, MACHINE, API, 'read');
      const claims = await helper.verify(token);
      assert.equal(claims.client_id, MACHINE.id);
    } finally {
      helper.close();
    }
  });

  const admin = `/admin`;
  const token = async (client: { id: string; secret: string }, resource: string, scope: string) => clientCredentialsToken(server.url, client, resource, scope);
  const call = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, { redirect: 'manual', ...init });

  it('the admin API, every route in its OpenAPI document, refuses every token but an operator-granted admin one: none, garbage, an API\'s and the feed\'s client_credentials JWTs, admin:read at a write, a revoked admin token, an admin bearer token sent with the DPoP scheme; none changes anything, none answers with a stack or CORS (RFC 6750 §3.1, RFC 9449 §7.1, ASVS V4.1.1)', async () => {
    const document = (await (await call(`${admin}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const params: Record<string, string> = { id: WEB.id, username: 'alice', api: encodeURIComponent(API), identifier: encodeURIComponent(API) };
    const routes = Object.entries(document.paths)
      .filter(([path]) => path !== '/openapi.json')
      .flatMap(([path, methods]) => Object.keys(methods).filter((method) => ['get', 'post', 'put', 'delete'].includes(method)).map((method) => ({ method: method.toUpperCase(), path: path.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? 'x') })));
    assert.ok(routes.length >= 18, `${routes.length} routes`);
    const bodies: Record<string, unknown> = {
      '/users': { username: 'mallory', password: 'mallory would like a password' },
      '/clients': { client_id: 'mallory-app', redirect_uris: ['https://mallory.example/cb'] },
      '/apis': { identifier: 'https://mallory.example/api', scopes: ['steal'] },
      '/upstreams': { id: 'mallory', issuer: 'https://mallory.example', client_id: 'x', client_secret: 'y'.repeat(40) },
    };
    const before = { clients: await call(`${admin}/clients`, { headers: { authorization: `Bearer ${await token(READER, `${server.issuer}/admin`, 'admin:read')}` } }).then((r) => r.text()) };

    const readToken = await token(READER, `${server.issuer}/admin`, 'admin:read');
    const revoked = await token(OPS, `${server.issuer}/admin`, 'admin');
    const revocation = await call('/token/revocation', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(OPS) }, body: new URLSearchParams({ token: revoked }) });
    assert.equal(revocation.status, 200);
    const attempts: { what: string; authorization?: string; writesOnly?: boolean; status: number[] }[] = [
      { what: 'no token', status: [401] },
      { what: 'a garbage token', authorization: 'Bearer not-a-token', status: [401] },
      { what: "an API's client_credentials JWT", authorization: `Bearer ${await token(MACHINE, API, 'read')}`, status: [401] },
      { what: "the feed's client_credentials JWT", authorization: `Bearer ${await token(RS, `${server.issuer}/revocations`, 'revocations')}`, status: [401] },
      { what: 'an admin:read token at a write', authorization: `Bearer ${readToken}`, writesOnly: true, status: [403] },
      { what: 'a revoked admin token (RFC 7009)', authorization: `Bearer ${revoked}`, status: [401] },
      { what: 'an admin bearer token with the DPoP scheme', authorization: `DPoP ${await token(OPS, `${server.issuer}/admin`, 'admin')}`, status: [401] },
      { what: 'an admin token in Basic', authorization: `Basic ${Buffer.from(`ops:${await token(OPS, `${server.issuer}/admin`, 'admin')}`).toString('base64')}`, status: [401] },
    ];
    for (const { method, path } of routes) {
      for (const attempt of attempts) {
        if (attempt.writesOnly && method === 'GET') continue;
        const body = method === 'POST' || method === 'PUT' ? JSON.stringify(bodies[path] ?? { scopes: ['read'] }) : undefined;
        const answer = await call(`${admin}${path}`, { method, headers: { 'content-type': 'application/json', origin: 'https://evil.example', ...(attempt.authorization ? { authorization: attempt.authorization } : {}) }, ...(body ? { body } : {}) });
        const text = await answer.text();
        assert.ok(attempt.status.includes(answer.status), `${method} ${path} with ${attempt.what}: ${answer.status} ${text}`);
        assert.match(answer.headers.get('www-authenticate') ?? '', /^(Bearer|DPoP) /, `${method} ${path} with ${attempt.what}: a challenge`);
        assert.equal(answer.headers.get('access-control-allow-origin'), null, `${method} ${path}: no CORS`);
        assert.doesNotMatch(text, /\n\s+at |node_modules|\.ts:\d/, `${method} ${path}: no stack`);
      }
    }
    // Nothing was changed by any of them.
    assert.equal(await server.accounts.findByUsername('mallory'), undefined);
    assert.equal(await call(`${admin}/clients`, { headers: { authorization: `Bearer ${readToken}` } }).then((r) => r.text()), before.clients);
    assert.equal((await server.apis.list()).some((api) => api.identifier === 'https://mallory.example/api'), false);

    // No other origin reads the admin API or the feed with a token it holds: no CORS at all.
    const adminToken = await token(OPS, `${server.issuer}/admin`, 'admin');
    for (const path of [`${admin}/clients`, `${admin}/users`, '/revocations']) {
      const preflight = await call(path, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
      await preflight.arrayBuffer();
      assert.equal(preflight.headers.get('access-control-allow-origin'), null, `preflight ${path}`);
      assert.equal(preflight.headers.get('access-control-allow-headers'), null, `preflight ${path}`);
    }
    const read = await call(`${admin}/clients`, { headers: { origin: 'https://evil.example', authorization: `Bearer ${adminToken}` } });
    assert.equal(read.status, 200, 'the baseline: the operator token reads');
    assert.equal(read.headers.get('access-control-allow-origin'), null);
    assert.equal(read.headers.get('cache-control'), 'no-store');
  });

  it('no secret reaches the log at LOG_LEVEL=debug: admin tokens, passwords and client secrets in admin API bodies and answers, initial and registration access tokens, client secrets in Basic headers and bodies, DPoP proofs, session cookies, login_hint, codes and tokens (RFC 9700 §4.9.3, RFC 6819 §5.1.4.1, ASVS V7.1.1)', async () => {
    const secrets: Record<string, string> = {};
    const adminToken = await token(OPS, `${server.issuer}/admin`, 'admin');
    secrets['admin token'] = adminToken;
    const adminCall = (path: string, method: string, body?: unknown) =>
      call(`${admin}${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    // A person made by the admin API, a weak password refused there, a client made and its secret rotated.
    secrets['password sent to the admin API'] = 'the password bob was given by an operator';
    assert.equal((await adminCall('/users', 'POST', { username: 'bob', password: secrets['password sent to the admin API'] })).status, 201);
    secrets['weak password sent to the admin API'] = 'passwordpassword';
    assert.equal((await adminCall('/users', 'POST', { username: 'carol', password: secrets['weak password sent to the admin API'] })).status, 400);
    secrets['client secret chosen at the admin API'] = 'a-client-secret-chosen-by-the-operator-0123456789';
    assert.equal((await adminCall('/clients', 'POST', { client_id: 'chosen', client_secret: secrets['client secret chosen at the admin API'], redirect_uris: [REDIRECT] })).status, 201);
    const rotated = (await (await adminCall('/clients/chosen/secret', 'POST')).json()) as { client_secret: string };
    secrets['rotated client secret'] = rotated.client_secret;
    // A wrong secret in Basic, the right one in the body (client_secret_post is refused for a basic client, still a secret sent).
    secrets['wrong client secret in Basic'] = 'a-wrong-secret-guessed-by-someone-0123456789';
    await call('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: OPS.id, secret: secrets['wrong client secret in Basic'] }) }, body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }) }).then((r) => r.arrayBuffer());
    await call('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: MACHINE.id, client_secret: MACHINE.secret, resource: API, scope: 'read' }) }).then((r) => r.arrayBuffer());
    secrets['client secret in Basic'] = MACHINE.secret;
    // A DPoP proof at the token endpoint.
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const proof = await new SignJWT({ htm: 'POST', htu: `${server.issuer}/token`, jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
      .setIssuedAt()
      .sign(privateKey);
    secrets['DPoP proof'] = proof;
    const bound = await call('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE), dpop: proof }, body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }) });
    assert.equal(bound.status, 200, await bound.clone().text());
    secrets['DPoP-bound access token'] = ((await bound.json()) as { access_token: string }).access_token;
    // Registration with an initial access token (as the CLI makes it); the registration access token used.
    const initial = await initialAccessToken(server);
    secrets['initial access token'] = initial;
    const registered = await call('/reg', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${initial}` }, body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'registered' }) });
    assert.equal(registered.status, 201, await registered.clone().text());
    const client = (await registered.json()) as { client_id: string; client_secret: string; registration_access_token: string; registration_client_uri: string };
    secrets['registered client secret'] = client.client_secret;
    secrets['registration access token'] = client.registration_access_token;
    assert.equal((await call(new URL(client.registration_client_uri).pathname, { headers: { authorization: `Bearer ${client.registration_access_token}` } })).status, 200);
    // A person signs in with a login_hint; the code, tokens and session cookie.
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const flow = await frontChannel(config, { agent, redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid email offline_access', prompt: 'consent', login_hint: 'alice@example.test' } });
    secrets.code = flow.callback.searchParams.get('code')!;
    secrets['PKCE verifier'] = flow.verifier;
    secrets.password = PASSWORD;
    secrets.login_hint = 'alice@example.test';
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
    secrets['access token'] = tokens.access_token;
    secrets['refresh token'] = tokens.refresh_token!;
    secrets['ID token'] = tokens.id_token!;
    for (const cookie of agent.cookieHeader(server.url).split('; ')) {
      const [name, value] = cookie.split('=');
      // An interaction's own cookies hold its uid, which is its pages' path (/interaction/<uid>): not a secret; their signatures are.
      if (value && value.length >= 16 && !/^lk_(interaction|resume)$/.test(name!)) secrets[`cookie ${name}`] = value;
    }
    await call(`/me?access_token=${tokens.access_token}`).then((r) => r.arrayBuffer());
    await call(`/revocations?after=${encodeURIComponent(tokens.access_token)}`, { headers: { authorization: `Bearer ${tokens.refresh_token}` } }).then((r) => r.arrayBuffer());
    await oidc.tokenRevocation(config, tokens.refresh_token!);
    await new Promise((resolve) => setTimeout(resolve, 200));

    assert.ok(logLines.length > 20, 'the server logs');
    for (const [what, secret] of Object.entries(secrets)) {
      const leaked = logLines.find((line) => line.includes(secret));
      assert.equal(leaked, undefined, `the ${what} was logged`);
    }
  });

  it('metrics: served only on their own loopback listener, and no request an outsider sends makes a new series: random paths under every route, methods, grant types, client ids and upstream ids leave the series as they were (label cardinality DoS); /healthz and /readyz say nothing of the store\'s address (ASVS V7.4, V14.3)', async () => {
    assert.ok(server.metricsUrl, 'a metrics listener');
    assert.equal(new URL(server.metricsUrl).hostname, '127.0.0.1', 'loopback by default (metrics.host)');
    const publicMetrics = await call('/metrics');
    await publicMetrics.arrayBuffer();
    assert.equal(publicMetrics.status, 404, 'never on the public listener');
    const series = async () => {
      const text = await (await fetch(server.metricsUrl!)).text();
      return text.split('\n').filter((line) => line.startsWith('latchkey_') && !/^latchkey_(process|nodejs)_/.test(line) && !line.startsWith('latchkey_store_command'));
    };
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'MKCOL', 'LOCK', 'PURGE', 'SEARCH'];
    const round = async (salt: string) => {
      for (let i = 0; i < 3; i += 1) {
        const random = `${salt}-${i}-${crypto.randomUUID()}`;
        for (const path of [`/${random}`, `/admin/users/${random}`, `/admin/clients/${random}/grants/${random}`, `/reg/${random}`, `/interaction/${random}`, `/auth/${random}`, `/device/${random}`, `/upstreams/${random}/callback`, `/account/${random}`, `/revocations/${random}`, `/.well-known/${random}`]) {
          for (const method of methods) await call(path, { method }).then((r) => r.arrayBuffer());
        }
        await call('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: random, secret: random }) }, body: new URLSearchParams({ grant_type: random, scope: random, resource: `https://${random}.example` }) }).then((r) => r.arrayBuffer());
        await call('/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) }, body: new URLSearchParams({ grant_type: `urn:${random}`, scope: random }) }).then((r) => r.arrayBuffer());
        await call(`/auth?client_id=${random}&response_type=${random}&redirect_uri=https://${random}.example/&scope=openid`).then((r) => r.arrayBuffer());
      }
    };
    await round('first');
    const first = await series();
    await round('second');
    const second = await series();
    const grown = second.map((line) => line.replace(/ [^ ]+$/, '')).filter((name) => !first.some((line) => line.replace(/ [^ ]+$/, '') === name));
    assert.deepEqual(grown, [], 'no new series');
    assert.ok(!second.some((line) => /first-|second-/.test(line)), 'no value sent is a label');

    for (const path of ['/healthz', '/readyz']) {
      const answer = await call(path);
      const text = await answer.text();
      assert.equal(answer.status, 200, path);
      assert.doesNotMatch(text, new RegExp(`${new URL(redis.url).port}|127\\.0\\.0\\.1|redis://`), `${path}: ${text}`);
      assert.deepEqual(Object.keys(JSON.parse(text) as object).filter((key) => !['status', 'store', 'keys'].includes(key)), [], path);
    }
  });

  it('the CLI refuses to act on production without its settings, and makes no token then: no REDIS_URL (it would have written an embedded file no server reads), the public development KEYS_SECRETS or cookie keys, an http issuer; one line, exit 1 (docs/operating.md)', async () => {
    const production = { ...env, NODE_ENV: 'production', ISSUER: 'https://id.example.test', COOKIE_KEYS: 'a-production-cookie-key-of-enough-length-1,another-production-cookie-key-xyz-2', KEYS_SECRETS: 'a-production-keyring-secret-of-enough-length' };
    const cases: [string, Record<string, string>, RegExp][] = [
      ['no REDIS_URL', { ...production, REDIS_URL: '' }, /redis\.url \(REDIS_URL\)/],
      ['the development KEYS_SECRETS', (({ KEYS_SECRETS: _secrets, ...rest }) => rest)(production), /keys\.secrets \(KEYS_SECRETS\)/],
      ['the development cookie keys', (({ COOKIE_KEYS: _keys, ...rest }) => rest)(production), /cookie\.keys \(COOKIE_KEYS\)/],
      ['an http issuer', { ...production, ISSUER: 'http://id.example.test' }, /issuer \(ISSUER\)/],
    ];
    for (const [what, settings, named] of cases) {
      for (const args of [['registration', 'token', 'create'], ['users', 'add', 'mallory', '--password-stdin'], ['keys', 'list']]) {
        const run = await latchkey(settings, args, 'a password mallory would have liked\n');
        assert.equal(run.status, 1, `${what}, ${args.join(' ')}: ${run.stdout} ${run.stderr}`);
        assert.equal(run.stdout, '', `${what}, ${args.join(' ')}: nothing printed`);
        assert.match(run.stderr, named, `${what}, ${args.join(' ')}`);
        assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack');
      }
    }
    assert.equal(await server.accounts.findByUsername('mallory'), undefined);
  });

  it('the admin API with an operator\'s token, fed bodies and path parameters of every shape, answers 4xx and never a stack or an internal message (DESIGN: bad input gets the protocol\'s error, never a 500)', async () => {
    const adminToken = await token(OPS, `${server.issuer}/admin`, 'admin');
    const bodies = ['null', '[]', '"text"', '1e999', 'true', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '{"username":{"toString":"x"},"password":["a"]}', '{"client_id":"","redirect_uris":"https://x"}', `{"client_id":"${'a'.repeat(5000)}"}`, '{"identifier":"not a url","scopes":"read"}', '{"identifier":"https://x.example/api","scopes":[null,1,{}]}', '{"scopes":["read"],"introspect":"yes"}', '{"previous_secret_valid_for":-1}', '{"previous_secret_valid_for":1e308}', '{"id":"../../etc","issuer":"javascript:alert(1)","client_id":1}', '{"username":"\\u0000","password":"\\ud800"}', '{', '\u0000'];
    const segments = ['%00', '..%2F..%2Fadmin', '%E0%A4%A', encodeURIComponent('x'.repeat(3000)), '__proto__', 'constructor', '%2e%2e', encodeURIComponent(API)];
    const paths = (x: string) => [['POST', '/clients'], ['PUT', `/clients/${x}`], ['POST', `/clients/${x}/secret`], ['DELETE', `/clients/${x}`], ['GET', `/clients/${x}`], ['GET', `/clients/${x}/grants`], ['PUT', `/clients/${x}/grants/${x}`], ['DELETE', `/clients/${x}/grants/${x}`], ['POST', '/apis'], ['DELETE', `/apis/${x}`], ['POST', '/users'], ['POST', `/users/${x}/disable`], ['GET', `/users/${x}/mfa`], ['POST', `/users/${x}/mfa/reset`], ['POST', '/upstreams'], ['DELETE', `/upstreams/${x}`]] as const;
    let sent = 0;
    for (const segment of segments) {
      for (const [method, path] of paths(segment)) {
        for (const body of method === 'GET' || method === 'DELETE' ? [undefined] : bodies) {
          const answer = await call(`${admin}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body }) });
          const text = await answer.text();
          sent += 1;
          assert.ok(answer.status < 500, `${method} ${path} ${body?.slice(0, 60)}: ${answer.status} ${text.slice(0, 300)}`);
          assert.doesNotMatch(text, /\n\s+at |node_modules|\.ts:\d|TypeError|ReferenceError|Cannot read/, `${method} ${path} ${body?.slice(0, 60)}: ${text.slice(0, 300)}`);
        }
      }
    }
    assert.ok(sent > 500);
    assert.equal(await server.accounts.findByUsername('mallory'), undefined);
    assert.equal(({} as Record<string, unknown>).admin, undefined, 'nothing polluted');
  });

  it('the admin API refuses a body that is not labelled JSON (415) rather than act as if none was sent: a secret rotation asking no grace, sent with curl -d, left the leaked secret working for a day', async () => {
    const adminToken = await token(OPS, `${server.issuer}/admin`, 'admin');
    const send = (method: string, path: string, body: string, type?: string) =>
      call(`${admin}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, ...(type && { 'content-type': type }) }, body });
    const made = await send('POST', '/clients', JSON.stringify({ client_id: 'unlabelled', client_secret: 'unlabelled-secret-with-plenty-of-entropy-0123456789', grant_types: ['authorization_code', 'client_credentials'], redirect_uris: [REDIRECT] }), 'application/json');
    assert.equal(made.status, 201, await made.text());
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/merge-patch+json', 'application/json; charset=utf-16', undefined]) {
      const rotated = await send('POST', '/clients/unlabelled/secret', '{"previous_secret_valid_for": 0}', type);
      assert.equal(rotated.status, 415, `${type}: ${await rotated.clone().text()}`);
      assert.deepEqual(await rotated.json(), { error: 'invalid_request', error_description: 'send the body as application/json (UTF-8)' });
      assert.equal((await send('PUT', `/clients/unlabelled/grants/${encodeURIComponent(`${server.issuer}/revocations`)}`, '{"scopes":["revocations"]}', type)).status, 415, `${type}: a grant`);
    }
    assert.equal((await fetch(`${server.url}/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from('unlabelled:unlabelled-secret-with-plenty-of-entropy-0123456789').toString('base64')}` }, body: new URLSearchParams({ grant_type: 'client_credentials' }) })).status, 200, 'the secret was not rotated');
    // Labelled, it is read; a rotation without a body still takes the default grace.
    const rotated = await send('POST', '/clients/unlabelled/secret', '{"previous_secret_valid_for": 0}', 'application/json; charset=utf-8');
    assert.equal(((await rotated.json()) as { previous_secret_valid_for: number }).previous_secret_valid_for, 0);
    assert.equal((await call(`${admin}/clients/unlabelled/secret`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } })).status, 200);
  });

  it("a client's private key never enters its metadata, where admin:read, RFC 7592 and the developer page would show it: a jwks holding a private or symmetric key is refused at the admin API (POST, PUT) and at registration (RFC 7591), and nothing is stored (RFC 7591 §2: jwks holds public keys)", async () => {
    const adminToken = await token(OPS, `${server.issuer}/admin`, 'admin');
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = { ...(await exportJWK(privateKey)), kid: 'leaky', alg: 'ES256', use: 'sig' };
    const stored = await call(`${admin}/clients`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, body: JSON.stringify({ client_id: 'stored-app', redirect_uris: [REDIRECT] }) });
    assert.equal(stored.status, 201, await stored.text());
    const symmetric = { kty: 'oct', k: 'c2VjcmV0LXNoYXJlZC1rZXktb2YtZW5vdWdoLWxlbmd0aC0wMTIzNDU2Nzg5', kid: 'shared', alg: 'HS256' };
    for (const [what, jwk] of [['a private EC key', privateJwk], ['a symmetric key', symmetric]] as const) {
      const metadata = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } };
      const created = await call(`${admin}/clients`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, body: JSON.stringify({ client_id: `leaky-${jwk.kid}`, ...metadata }) });
      const createdText = await created.text();
      assert.equal(created.status, 400, `admin POST with ${what}: ${createdText}`);
      assert.equal(await server.provider.Client.find(`leaky-${jwk.kid}`), undefined);
      const replaced = await call(`${admin}/clients/stored-app`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, body: JSON.stringify(metadata) });
      assert.equal(replaced.status, 400, `admin PUT with ${what}: ${await replaced.text()}`);
      const initial = await initialAccessToken(server);
      const registered = await call('/reg', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${initial}` }, body: JSON.stringify(metadata) });
      const text = await registered.text();
      assert.equal(registered.status, 400, `RFC 7591 with ${what}: ${text}`);
      assert.ok(!text.includes(jwk.kty === 'oct' ? symmetric.k : (privateJwk as { d: string }).d), 'the key is not echoed');
    }
    const kept = (await (await call(`${admin}/clients/stored-app`, { headers: { authorization: `Bearer ${adminToken}` } })).json()) as Record<string, unknown>;
    assert.equal(kept.jwks, undefined, 'the stored client is as it was');
  });

  it('an operator reviewing what a leaked admin or feed client did finds its client on the request line of each of its calls, as the incident runbook says (docs/operating.md, Compromised admin client; ASVS V7.2.2)', async () => {
    const requestLines = () => logLines.map((line) => JSON.parse(line) as { requestId?: string; path?: string; method?: string; status?: number; client_id?: string; msg?: string }).filter((line) => line.msg === 'request');
    const seen = requestLines().length;
    const writer = await token(OPS, `${server.issuer}/admin`, 'admin');
    const reader = await token(READER, `${server.issuer}/admin`, 'admin:read');
    const calls: [string, string, string, unknown?][] = [
      [writer, 'POST', '/admin/users', { username: 'audited', password: 'a password an operator made for audited' }],
      [writer, 'POST', '/admin/users/audited/disable'],
      [reader, 'GET', '/admin/users'],
      [reader, 'POST', '/admin/users/audited/enable'],
    ];
    for (const [bearer, method, path, body] of calls) {
      await call(path, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }).then((r) => r.arrayBuffer());
    }
    await call('/revocations', { headers: { authorization: `Bearer ${await token(RS, `${server.issuer}/revocations`, 'revocations')}` } }).then((r) => r.arrayBuffer());
    await new Promise((resolve) => setTimeout(resolve, 250));
    const lines = requestLines().slice(seen).filter((line) => line.path?.startsWith('/admin/') || line.path === '/revocations');
    assert.deepEqual(
      lines.map(({ method, path, status, client_id }) => `${method} ${path} ${status} ${client_id}`),
      ['POST /admin/users 201 ops', 'POST /admin/users/audited/disable 200 ops', 'GET /admin/users 200 reader', 'POST /admin/users/audited/enable 403 reader', 'GET /revocations 200 api'],
    );
  });

  it('an initial access token is nowhere in the store, so a copy of the store (a backup, a replica, a dump) registers nothing: kept under its digest, listed and revoked by its id, registering once; one kept by its value before still registers once, is listed and revoked (RFC 7591 §3.1, ASVS V8.3.4)', async function () {
    // Six CLI runs, each a Node process loading the whole server: on a loaded runner over a minute.
    this.timeout(180_000);
    // Made as the CLI makes them (its create is initial-access-token.test.ts's); listed and revoked by the CLI.
    const create = async () => {
      const made = await initialAccessToken(server);
      return { initial_access_token: made, id: initialAccessTokenId(made) };
    };
    const [kept, revokedById, revokedByValue] = [await create(), await create(), await create()];
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    try {
      const keys = await raw.keys('*');
      const values = await Promise.all(keys.map(async (key) => ((await raw.type(key)) === 'string' ? raw.get(key) : (await raw.type(key)) === 'set' ? (await raw.smembers(key)).join(' ') : (await raw.type(key)) === 'hash' ? JSON.stringify(await raw.hgetall(key)) : '')));
      for (const { initial_access_token: value } of [kept, revokedById, revokedByValue]) {
        assert.equal(keys.find((key) => key.includes(value)), undefined, 'no key names the token');
        assert.equal(values.find((stored) => stored?.includes(value)), undefined, 'no value holds the token');
      }
    } finally {
      raw.disconnect();
    }
    const listed = () => latchkey(env, ['registration', 'token', 'list']).then((run) => (JSON.parse(run.stdout) as { id: string }[]).map(({ id }) => id));
    const listedFirst = await listed();
    for (const { id } of [kept, revokedById, revokedByValue]) assert.ok(listedFirst.includes(id), `${id} listed`);
    assert.equal((await latchkey(env, ['registration', 'token', 'revoke', revokedById.id])).status, 0);
    assert.equal((await latchkey(env, ['registration', 'token', 'revoke', '--', revokedByValue.initial_access_token])).status, 0);
    const register = (value: string) => call('/reg', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${value}` }, body: JSON.stringify({ redirect_uris: [REDIRECT], client_name: 'digest' }) });
    for (const { initial_access_token: value } of [revokedById, revokedByValue]) assert.equal((await register(value)).status, 401, 'revoked');
    assert.equal((await register(kept.initial_access_token)).status, 201);
    assert.equal((await register(kept.initial_access_token)).status, 401, 'once');
    assert.deepEqual((await listed()).filter((id) => [kept.id, revokedById.id, revokedByValue.id].includes(id)), []);

    // One made by an earlier release, kept by its value (the record and the index entry as they were written).
    const legacy = 'legacy-initial-access-token-kept-by-value-0123456789abcdef';
    const exp = Math.floor(Date.now() / 1000) + 600;
    await server.kv.putRecord(`oidc:InitialAccessToken:${legacy}`, JSON.stringify({ iat: exp - 600, exp, jti: legacy, kind: 'InitialAccessToken' }), 600);
    await server.kv.addToSet('oidc:initial-access-tokens', legacy, 600);
    const legacyId = `iat_${createHash('sha256').update(legacy).digest('base64url').slice(0, 22)}`;
    assert.ok((await listed()).includes(legacyId), 'listed by its id');
    assert.equal((await register(legacy)).status, 201, 'still registers');
    assert.equal((await register(legacy)).status, 401, 'once');
    const other = 'legacy-initial-access-token-kept-by-value-revoked-012345';
    await server.kv.putRecord(`oidc:InitialAccessToken:${other}`, JSON.stringify({ iat: exp - 600, exp, jti: other, kind: 'InitialAccessToken' }), 600);
    await server.kv.addToSet('oidc:initial-access-tokens', other, 600);
    assert.equal((await latchkey(env, ['registration', 'token', 'revoke', `iat_${createHash('sha256').update(other).digest('base64url').slice(0, 22)}`])).status, 0);
    assert.equal((await register(other)).status, 401, 'revoked by its id');
  });

  it('a registration access token is nowhere in the store, so a copy of the store changes no client: kept under its digest, it reads and updates its client (RFC 7592) and rotates once; one kept by its value before still works, once, and ends with its client (RFC 7592 §3, ASVS V8.3.4)', async () => {
    const initial = await initialAccessToken(server);
    const metadata = { redirect_uris: [REDIRECT], client_name: 'managed' };
    const registered = await call('/reg', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${initial}` }, body: JSON.stringify(metadata) });
    assert.equal(registered.status, 201);
    const client = (await registered.json()) as { client_id: string; registration_access_token: string; registration_client_uri: string };
    const manage = (bearer: string, method = 'GET') =>
      call(new URL(client.registration_client_uri).pathname + new URL(client.registration_client_uri).search, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, ...(method === 'PUT' ? { body: JSON.stringify({ ...metadata, client_id: client.client_id }) } : {}) });
    const inStore = async (value: string) => {
      const { Redis } = await import('ioredis');
      const raw = new Redis(redis.url);
      try {
        const keys = await raw.keys('*');
        if (keys.some((key) => key.includes(value))) return true;
        for (const key of keys) {
          const type = await raw.type(key);
          const text = type === 'string' ? await raw.get(key) : type === 'set' ? (await raw.smembers(key)).join(' ') : type === 'hash' ? JSON.stringify(await raw.hgetall(key)) : '';
          if (text?.includes(value)) return true;
        }
        return false;
      } finally {
        raw.disconnect();
      }
    };
    assert.equal(await inStore(client.registration_access_token), false, 'the registration access token is not in the store');
    assert.equal((await manage(client.registration_access_token)).status, 200);
    const updated = await manage(client.registration_access_token, 'PUT');
    assert.equal(updated.status, 200, await updated.clone().text());
    const successor = ((await updated.json()) as { registration_access_token: string }).registration_access_token;
    assert.notEqual(successor, client.registration_access_token);
    assert.equal((await manage(client.registration_access_token)).status, 401, 'the old one ended');
    assert.equal(await inStore(successor), false, 'nor its successor');
    assert.equal((await manage(successor)).status, 200);

    // One made by an earlier release, kept by its value (with its entry in the client's index).
    const legacy = 'legacy-registration-access-token-kept-by-value-0123456789';
    const iat = Math.floor(Date.now() / 1000);
    await server.kv.putRecord(`oidc:RegistrationAccessToken:${legacy}`, JSON.stringify({ iat, jti: legacy, kind: 'RegistrationAccessToken', clientId: client.client_id }));
    await server.kv.addToSet(`oidc:rat:client:${client.client_id}`, `oidc:RegistrationAccessToken:${legacy}`);
    assert.equal((await manage(legacy)).status, 200, 'still reads');
    const rotated = await manage(legacy, 'PUT');
    assert.equal(rotated.status, 200, 'still updates, once');
    assert.equal((await manage(legacy, 'PUT')).status, 401, 'spent by the update');
    const last = ((await rotated.json()) as { registration_access_token: string }).registration_access_token;
    assert.equal((await manage(last)).status, 200);
    const second = 'legacy-registration-access-token-kept-by-value-second-01';
    await server.kv.putRecord(`oidc:RegistrationAccessToken:${second}`, JSON.stringify({ iat, jti: second, kind: 'RegistrationAccessToken', clientId: client.client_id }));
    await server.kv.addToSet(`oidc:rat:client:${client.client_id}`, `oidc:RegistrationAccessToken:${second}`);
    assert.equal((await manage(second, 'DELETE')).status, 204, 'deletes its client');
    for (const bearer of [second, last, successor]) assert.equal((await manage(bearer)).status, 401, 'ended with the client');
  });

  it("private keys and the embedded store's secrets are the owner's alone on disk: keys/keyring.json 0600 in a 0700 directory (one provisioned 0644 is made 0600 at start), the embedded store file (client secrets, password hashes) 0600 (DESIGN: keys only in keys/ with mode 0600)", async () => {
    const own = testDir();
    const keysDir = join(own, 'keys');
    mkdirSync(keysDir, { recursive: true, mode: 0o700 });
    const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const exported = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(exported, 'sha256');
    const at = new Date().toISOString();
    writeFileSync(join(keysDir, 'keyring.json'), `${JSON.stringify({ version: 1, keys: [{ kid, state: 'current', createdAt: at, activatedAt: at, jwk: { ...exported, kid, alg: 'RS256', use: 'sig' } }] })}\n`, { mode: 0o644 });
    const embedded = await startServer({ dir: own, port: await freePort(), clients: [machineClient(OPS)] });
    try {
      await embedded.accounts.create('disk', 'a password kept only as a hash on disk');
      await embedded.apis.grant(OPS.id, `${embedded.issuer}/admin`, { scopes: ['admin'] });
      const adminToken = await clientCredentialsToken(embedded.url, OPS, `${embedded.issuer}/admin`, 'admin');
      const made = await fetch(`${embedded.url}/admin/clients`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, body: JSON.stringify({ client_id: 'on-disk', redirect_uris: [REDIRECT] }) });
      assert.equal(made.status, 201);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const mode = (path: string) => statSync(path).mode & 0o777;
      assert.equal(mode(join(keysDir, 'keyring.json')), 0o600, 'the key ring');
      assert.equal(mode(keysDir) & 0o077, 0, 'the keys directory');
      assert.equal(mode(embedded.env.EMBEDDED_FILE!), 0o600, 'the embedded store file');
      for (const name of readdirSync(keysDir)) assert.equal(mode(join(keysDir, name)) & 0o077, 0, `keys/${name}`);
    } finally {
      await embedded.stop();
      rmSync(own, { recursive: true, force: true });
    }
  });
});
