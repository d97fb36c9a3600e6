/**
 * Developers registering clients without an operator: RFC 7591 dynamic registration with
 * openid-client, RFC 7592 management, the registration policy on every path, and the admin API.
 */
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://dev.example.test/callback';
const PASSWORD = 'registration test password';
const OPS_SECRET = 'ops-client-secret-with-plenty-of-entropy-0123456789';

describe('e2e: client registration (RFC 7591/7592), its policy, and the admin API', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  const options = { execute: [oidc.allowInsecureRequests] };

  before(async () => {
    redis = await startRedisServer();
    const operator = (id: string, scope?: string) => ({
      client_id: id,
      client_secret: OPS_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      ...(scope ? { scope } : {}),
    });
    const port = await freePort();
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS: JSON.stringify([operator('ops', 'admin'), operator('auditor', 'admin:read'), operator('plain')]) } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    // What the admin API accepts comes from operator grants, not from client metadata.
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.apis.grant('auditor', `${server.issuer}/admin`, { scopes: ['admin:read'] });
    await server.accounts.create('dana', PASSWORD);
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  /** One token per registration, made in process (the CLI way is proven once, below). */
  const initialAccessToken = () => new server.provider.InitialAccessToken({ expiresIn: 600 }).save();

  async function initialAccessTokenFromCli(): Promise<string> {
    const run = await latchkey(env, ['registration', 'token', 'create', '--expires-in', '600']);
    assert.equal(run.status, 0, run.stderr);
    const { initial_access_token: token, expires_in } = JSON.parse(run.stdout) as { initial_access_token: string; expires_in: number };
    assert.equal(expires_in, 600);
    return token;
  }

  async function register(metadata: Record<string, unknown>, token?: string): Promise<Response> {
    return fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(metadata),
    });
  }

  async function signIn(config: oidc.Configuration) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'dana', password: PASSWORD, login: 'required', consent: 'required', stopAt: REDIRECT });
    return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier });
  }

  it('openid-client registers with an initial access token, signs a person in, then RFC 7592 read/update/delete; the deleted client’s tokens stop working', async () => {
    const config = await oidc.dynamicClientRegistration(
      new URL(server.issuer),
      { redirect_uris: [REDIRECT], client_name: 'Registered by openid-client', grant_types: ['authorization_code', 'refresh_token'] },
      undefined,
      { ...options, initialAccessToken: await initialAccessTokenFromCli() },
    );
    const metadata = config.clientMetadata() as Record<string, string>;
    assert.ok(Buffer.from(metadata.client_secret!, 'base64url').length >= 32, 'a secret of at least 256 bits');
    assert.ok(metadata.registration_access_token && metadata.registration_client_uri);

    const tokens = await signIn(config);
    assert.ok(tokens.claims()?.sub);

    const management = (init: RequestInit = {}) =>
      fetch(metadata.registration_client_uri!, {
        ...init,
        headers: { authorization: `Bearer ${metadata.registration_access_token}`, 'content-type': 'application/json', ...init.headers },
      });
    const read = await management();
    assert.equal(read.status, 200);
    // RFC 9110 §11.4, RFC 6750 §2.1: more than one space after the scheme reads the same.
    const spaced = await management({ headers: { authorization: `Bearer   ${metadata.registration_access_token}` } });
    assert.equal(spaced.status, 200, await spaced.clone().text());
    const current = (await read.json()) as Record<string, unknown>;
    assert.equal(current.client_name, 'Registered by openid-client');

    const updated = await management({
      method: 'PUT',
      // RFC 7592 §2.2: everything but the server-managed fields.
      body: JSON.stringify({
        ...current,
        registration_access_token: undefined,
        registration_client_uri: undefined,
        client_secret_expires_at: undefined,
        client_id_issued_at: undefined,
        client_name: 'Renamed',
      }),
    });
    assert.equal(updated.status, 200, await updated.clone().text());
    const after = (await updated.json()) as Record<string, string>;
    assert.equal(after.client_name, 'Renamed');
    assert.notEqual(after.registration_access_token, metadata.registration_access_token, 'the management token rotates');
    // Both answers carry the client's secret and a registration access token (RFC 6749 §5.1's headers, as registration's).
    for (const [name, answer] of Object.entries({ read, updated })) {
      assert.match(answer.headers.get('cache-control') ?? '', /no-store/, name);
      assert.equal(answer.headers.get('pragma'), 'no-cache', name);
    }

    const removed = await fetch(metadata.registration_client_uri!, { method: 'DELETE', headers: { authorization: `Bearer ${after.registration_access_token}` } });
    assert.equal(removed.status, 204);

    const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(userinfo.status, 401, 'its access token stops working');
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_client');
  });

  it('RFC 7592 updates presenting one registration access token at once (a leaked one racing the client) hand over one new token, not one each: the rotation ends the old token for all but one', async () => {
    const registered = await register({ redirect_uris: [REDIRECT] }, await initialAccessToken());
    assert.equal(registered.status, 201);
    const { client_id, registration_access_token: token, registration_client_uri: uri } = (await registered.json()) as Record<string, string>;
    const update = (bearer: string) =>
      fetch(uri!, {
        method: 'PUT',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_id, redirect_uris: [REDIRECT] }),
      });
    const answers = await Promise.all([1, 2, 3, 4].map(() => update(token!)));
    const rotated = await Promise.all(answers.filter((answer) => answer.status === 200).map(async (answer) => ((await answer.json()) as { registration_access_token: string }).registration_access_token));
    assert.equal(rotated.length, 1, `one update rotates the token; the others are refused (${answers.map((answer) => answer.status).join(', ')})`);
    for (const answer of answers.filter((each) => each.status !== 200)) {
      assert.equal(answer.status, 401);
      assert.equal(((await answer.json()) as { error: string }).error, 'invalid_token');
    }
    assert.equal((await update(token!)).status, 401, 'the old token is spent');
    assert.equal((await fetch(uri!, { headers: { authorization: `Bearer ${rotated[0]}` } })).status, 200, 'its successor works');
  });

  it('registration without an initial access token is refused, saying which token it needs and where one comes from', async () => {
    const response = await register({ redirect_uris: [REDIRECT] });
    assert.equal(response.status, 401);
    // Which token, and where one comes from (the engine said "no access token provided": newcomer pass); no error code in the challenge (RFC 6750 §3.1).
    assert.deepEqual(await response.json(), {
      error: 'invalid_token',
      error_description: `registration needs an initial access token, sent as Authorization: Bearer <token>: an operator makes one with latchkey registration token create (or register the app at ${server.issuer}/developer)`,
    });
    assert.equal(response.headers.get('www-authenticate'), `Bearer realm="${server.issuer}"`);
  });

  describe('the registration policy: one refused example per rule', () => {
    const rules: [string, Record<string, unknown>, string, RegExp][] = [
      ['a wildcard redirect URI', { redirect_uris: ['https://*.example.test/cb'] }, 'invalid_redirect_uri', /wildcard/],
      ['a fragment', { redirect_uris: ['https://dev.example.test/cb#frag'] }, 'invalid_redirect_uri', /fragment/],
      ['http on a public host', { redirect_uris: ['http://dev.example.test/cb'] }, 'invalid_redirect_uri', /use https/],
      ['a custom scheme for a web app', { redirect_uris: ['com.example.app:/cb'] }, 'invalid_redirect_uri', /only for native apps/],
      ['a native scheme that is not a reverse domain', { application_type: 'native', redirect_uris: ['myapp:/cb'] }, 'invalid_redirect_uri', /reverse domain/],
      ['a relative redirect URI', { redirect_uris: ['/callback'] }, 'invalid_redirect_uri', /absolute/],
      ['an unsupported auth method', { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_jwt' }, 'invalid_client_metadata', /token_endpoint_auth_method/],
      ['a scope not offered', { redirect_uris: [REDIRECT], scope: 'openid everything' }, 'invalid_client_metadata', /scope "everything"/],
      ['an operator-only scope', { redirect_uris: [REDIRECT], scope: 'openid admin' }, 'invalid_client_metadata', /granted only by an operator/],
      ['an http logo', { redirect_uris: [REDIRECT], logo_uri: 'http://cdn.example.test/logo.png' }, 'invalid_client_metadata', /logo_uri/],
      ['a policy URI that is not a URL', { redirect_uris: [REDIRECT], policy_uri: 'see our website' }, 'invalid_client_metadata', /policy_uri/],
      ['setting an owner', { redirect_uris: [REDIRECT], owner: 'someone-else' }, 'invalid_client_metadata', /owner/],
      ['a require_mfa that is not a boolean', { redirect_uris: [REDIRECT], require_mfa: 'yes' }, 'invalid_client_metadata', /require_mfa must be a boolean/],
      ['an implicit response type', { redirect_uris: [REDIRECT], response_types: ['id_token token'] }, 'invalid_client_metadata', /response_types/],
    ];
    for (const [name, metadata, error, description] of rules) {
      it(`refuses ${name}: ${error}`, async () => {
        const response = await register(metadata, await initialAccessToken());
        const body = (await response.json()) as { error: string; error_description: string };
        assert.equal(response.status, 400);
        assert.equal(body.error, error);
        assert.match(body.error_description, description);
      });
    }

    it("refuses Latchkey's own address as a redirect or post-logout URI (an account page's callback), and an RFC 7592 update to it: invalid_redirect_uri", async () => {
      for (const metadata of [{ redirect_uris: [REDIRECT, `${server.issuer}/account/callback`] }, { redirect_uris: [REDIRECT], post_logout_redirect_uris: [`${server.issuer}/`] }]) {
        const response = await register(metadata, await initialAccessToken());
        const body = (await response.json()) as { error: string; error_description: string };
        assert.equal(response.status, 400);
        assert.match(body.error, /^invalid_(redirect_uri|client_metadata)$/);
        assert.match(body.error_description, /Latchkey's own address/);
      }
      const created = (await (await register({ redirect_uris: [REDIRECT] }, await initialAccessToken())).json()) as Record<string, string>;
      const update = await fetch(created.registration_client_uri!, {
        method: 'PUT',
        headers: { authorization: `Bearer ${created.registration_access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: created.client_id, redirect_uris: [`${server.issuer}/account/callback`] }),
      });
      assert.equal(update.status, 400);
      assert.match(((await update.json()) as { error_description: string }).error_description, /Latchkey's own address/);
    });

    it('accepts loopback http and a reverse-domain scheme for a native app, and still requires PKCE of it', async () => {
      const response = await register(
        { application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:8123/cb', 'com.example.app:/oauth'] },
        await initialAccessToken(),
      );
      assert.equal(response.status, 201, await response.clone().text());
      const { client_id } = (await response.json()) as { client_id: string };
      const withoutPkce = await new Agent().follow(
        `${server.url}/auth?client_id=${client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://127.0.0.1:8123/cb')}`,
        {},
        'http://127.0.0.1:8123/cb',
      );
      assert.equal(new URL(withoutPkce.url).searchParams.get('error'), 'invalid_request');
      assert.match(new URL(withoutPkce.url).searchParams.get('error_description') ?? '', /PKCE/);
    });

    it('the same policy holds for the CLI', async () => {
      const run = await latchkey(env, ['clients', 'add', '--client-id', 'cli-wild', '--redirect-uri', 'https://*.example.test/cb']);
      assert.equal(run.status, 1);
      assert.match(run.stderr, /^latchkey: invalid_redirect_uri: .*wildcard/m);
    });
  });

  describe('admin API', () => {
    async function adminToken(client: string, scope?: string): Promise<string> {
      const response = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client}:${OPS_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin`, ...(scope ? { scope } : {}) }),
      });
      assert.equal(response.status, 200, await response.clone().text());
      return ((await response.json()) as { access_token: string }).access_token;
    }
    const admin = (path: string, token: string | undefined, init: RequestInit = {}) =>
      fetch(`${server.url}/admin${path}`, {
        ...init,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
      });

    it('without a token 401 with a Bearer challenge; with a token lacking the scope 403', async () => {
      const none = await admin('/clients', undefined);
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
      const garbage = await admin('/clients', 'not-a-token');
      assert.equal(garbage.status, 401);

      const reader = await adminToken('auditor', 'admin:read');
      assert.equal((await admin('/clients', reader)).status, 200, 'admin:read reads');
      const write = await admin('/users', reader, { method: 'POST', body: JSON.stringify({ username: 'x', password: 'xxxxxxxxxx' }) });
      assert.equal(write.status, 403, 'admin:read does not write');
      assert.match(write.headers.get('www-authenticate') ?? '', /insufficient_scope/);
      // Every write the API describes (its OpenAPI document), on names that exist: 403 before anything is read or changed.
      const before: unknown = await (await admin('/clients', reader)).json();
      const described = (await (await admin('/openapi.json', reader)).json()) as { paths: Record<string, Record<string, unknown>> };
      const writes = Object.entries(described.paths).flatMap(([path, methods]) => Object.keys(methods).filter((method) => method !== 'get' && method !== 'parameters').map((method) => ({ method, path })));
      assert.ok(writes.length >= 10, JSON.stringify(writes));
      const named = { id: 'ops', username: 'x', identifier: encodeURIComponent(`${server.issuer}/admin`), api: encodeURIComponent(`${server.issuer}/admin`) } as Record<string, string>;
      for (const { method, path } of writes) {
        const url = path.replace(/^\/admin/, '').replace(/\{(\w+)\}/g, (_, name: string) => named[name] ?? 'x');
        const attempt = await admin(url, reader, { method: method.toUpperCase(), body: method === 'delete' ? undefined : '{}' });
        assert.equal(attempt.status, 403, `admin:read ${method.toUpperCase()} ${url}`);
      }
      assert.deepEqual(await (await admin('/clients', reader)).json(), before, 'no client changed');

      const ungranted = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`plain:${OPS_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin` }),
      });
      assert.equal(((await ungranted.json()) as { error: string }).error, 'invalid_scope', 'a client without an admin grant gets no admin token');
      const escalate = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`plain:${OPS_SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }),
      });
      assert.equal(escalate.status, 400);
      assert.equal(((await escalate.json()) as { error: string }).error, 'invalid_scope');
    });

    it('with the admin token: create, read, update, rotate the secret (the old one keeps working for the grace period), delete', async () => {
      const token = await adminToken('ops', 'admin');
      const created = await admin('/clients', token, {
        method: 'POST',
        body: JSON.stringify({ client_id: 'billing', client_name: 'Billing', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }),
      });
      assert.equal(created.status, 201, await created.clone().text());
      const { client_secret: firstSecret } = (await created.json()) as { client_secret: string };
      const cc = (secret: string) =>
        fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`billing:${secret}`).toString('base64')}` },
          body: 'grant_type=client_credentials',
        }).then((r) => r.status);
      assert.equal(await cc(firstSecret), 200);

      const got = (await (await admin('/clients/billing', token)).json()) as Record<string, unknown>;
      assert.equal(got.client_name, 'Billing');
      assert.equal(got.client_secret, undefined, 'secrets are never read back');

      const put = await admin('/clients/billing', token, { method: 'PUT', body: JSON.stringify({ client_name: 'Billing v2', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }) });
      assert.equal(put.status, 200);
      assert.equal(((await put.json()) as { client_name: string }).client_name, 'Billing v2');
      assert.equal(await cc(firstSecret), 200, 'an update keeps the secret');

      const rotated = await admin('/clients/billing/secret', token, { method: 'POST' });
      const { client_secret: secondSecret, previous_secret_valid_for } = (await rotated.json()) as { client_secret: string; previous_secret_valid_for: number };
      assert.notEqual(secondSecret, firstSecret);
      assert.equal(previous_secret_valid_for, 86400);
      assert.equal(await cc(secondSecret), 200);
      assert.equal(await cc(firstSecret), 200, 'the previous secret works during the grace period');
      assert.equal(await cc('a-wrong-secret'), 401);

      const bad = await admin('/clients', token, { method: 'POST', body: JSON.stringify({ client_id: 'evil', redirect_uris: ['https://*.evil.test/cb'] }) });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: string }).error, 'invalid_redirect_uri');
      assert.equal((await admin('/clients', token, { method: 'POST', body: '{"client_id": ' })).status, 400, 'malformed JSON');

      assert.equal((await admin('/clients/billing', token, { method: 'DELETE' })).status, 204);
      assert.equal((await admin('/clients/billing', token)).status, 404);
      assert.equal(await cc(secondSecret), 401);
      assert.equal(await cc(firstSecret), 401, 'no previous secret outlives its client');
    });

    it('users: create (duplicates refused), list without hashes, disable', async () => {
      const token = await adminToken('ops', 'admin');
      const created = await admin('/users', token, { method: 'POST', body: JSON.stringify({ username: 'erin', password: 'erin has a password', email: 'erin@example.test' }) });
      assert.equal(created.status, 201, await created.clone().text());
      assert.equal((await admin('/users', token, { method: 'POST', body: JSON.stringify({ username: 'ERIN', password: 'another password' }) })).status, 409);
      assert.equal((await admin('/users', token, { method: 'POST', body: JSON.stringify({ username: 'short', password: 'short' }) })).status, 400);
      const list = (await (await admin('/users', token)).json()) as Record<string, unknown>[];
      const erin = list.find((user) => user.username === 'erin')!;
      assert.equal(erin.email, 'erin@example.test');
      assert.ok(!JSON.stringify(list).includes('argon2'), 'no password hashes');
      const disabled = await admin('/users/erin/disable', token, { method: 'POST' });
      assert.equal(((await disabled.json()) as { disabled: boolean }).disabled, true);
      assert.equal(await server.accounts.verify('erin', 'erin has a password'), undefined);
      assert.equal((await admin('/users/nobody/disable', token, { method: 'POST' })).status, 404);
    });

    it('upstreams: add (secret sealed, never returned; bad input and duplicates refused), list, remove', async () => {
      const token = await adminToken('ops', 'admin');
      const body = { id: 'corp', issuer: 'https://idp.example.com', client_id: 'latchkey', client_secret: 'an-upstream-secret-of-some-length', display_name: 'Corp SSO', domains: ['corp.example'] };
      const created = await admin('/upstreams', token, { method: 'POST', body: JSON.stringify(body) });
      assert.equal(created.status, 201, await created.clone().text());
      const upstream = (await created.json()) as Record<string, unknown>;
      assert.equal(upstream.redirect_uri, `${server.issuer}/upstream/corp/callback`);
      assert.ok(!JSON.stringify(upstream).includes(body.client_secret), 'the secret is not returned');
      const stored = (await server.kv.get('upstream:corp'))!;
      assert.ok(!stored.includes(body.client_secret), 'the secret is sealed at rest');
      assert.equal((await admin('/upstreams', token, { method: 'POST', body: JSON.stringify(body) })).status, 409);
      for (const bad of [{ issuer: 'http://idp.example.com' }, { id: 'Not An Id' }, { scope: 'email' }, { domains: ['not a domain'] }, { claims: { sub: 'x' } }]) {
        const refused = await admin('/upstreams', token, { method: 'POST', body: JSON.stringify({ ...body, id: 'other', ...bad }) });
        assert.equal(refused.status, 400, JSON.stringify(bad));
        assert.equal(((await refused.json()) as { error: string }).error, 'invalid_request');
      }
      const list = (await (await admin('/upstreams', token)).json()) as Record<string, unknown>[];
      assert.deepEqual(list.map((u) => [u.id, u.display_name]), [['corp', 'Corp SSO']]);
      assert.equal((await admin('/upstreams/corp', token, { method: 'DELETE' })).status, 204);
      assert.equal((await admin('/upstreams/corp', token, { method: 'DELETE' })).status, 404);
    });

    it("users' second factors: listed without secrets (admin:read), reset by an operator (admin); the CLI does the same", async () => {
      const sub = (await server.accounts.findByUsername('dana'))!.sub;
      const { secret } = await server.secondFactors.totp.begin(sub, 'dana', 'test-session');
      const { TOTP, Secret } = await import('otpauth');
      assert.ok(await server.secondFactors.totp.confirm(sub, TOTP.generate({ secret: Secret.fromBase32(secret) }), 'test-session'));
      const codes = await server.secondFactors.recoveryCodes.generate(sub);
      const listed = await admin('/users/dana/mfa', await adminToken('auditor', 'admin:read'));
      const body = (await listed.json()) as { totp?: { createdAt: number }; recoveryCodesLeft: number; passkeys: unknown[] };
      assert.equal(listed.status, 200);
      assert.ok(body.totp?.createdAt);
      assert.equal(body.recoveryCodesLeft, 10);
      assert.ok(!JSON.stringify(body).includes(secret) && !JSON.stringify(body).includes(codes[0]!), 'no secret, no code');
      assert.equal((await admin('/users/dana/mfa/reset', await adminToken('auditor', 'admin:read'), { method: 'POST' })).status, 403);
      assert.equal((await admin('/users/nobody/mfa', await adminToken('auditor', 'admin:read'))).status, 404);

      const cliList = await latchkey(env, ['users', 'mfa', 'list', 'dana']);
      assert.equal(cliList.status, 0, cliList.stderr);
      const cliListed = JSON.parse(cliList.stdout) as { recoveryCodesLeft: number; totp: unknown };
      assert.equal(cliListed.recoveryCodesLeft, 10);
      assert.notEqual(cliListed.totp, null, 'her authenticator app is listed');
      const reset = await admin('/users/dana/mfa/reset', await adminToken('ops', 'admin'), { method: 'POST' });
      assert.deepEqual(((await reset.json()) as { totp?: unknown; recoveryCodesLeft: number }).recoveryCodesLeft, 0);
      assert.equal((await server.secondFactors.summary(sub)).totp, undefined);
      const none = await latchkey(env, ['users', 'mfa', 'list', 'dana']);
      assert.equal((JSON.parse(none.stdout) as { totp: unknown }).totp, null, 'no authenticator app, said so (not left out)');

      await server.secondFactors.recoveryCodes.generate(sub);
      const cliReset = await latchkey(env, ['users', 'mfa', 'reset', 'dana']);
      assert.equal(cliReset.status, 0, cliReset.stderr);
      assert.equal((await server.secondFactors.summary(sub)).recoveryCodesLeft, 0);
      const unknown = await latchkey(env, ['users', 'mfa', 'reset', 'nobody']);
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /no user "nobody"/);
    });

    it('clients add --require-mfa, clients update --no-require-mfa and the admin API set the require_mfa metadata (a non-boolean refused)', async () => {
      const added = await latchkey(env, ['clients', 'add', '--client-id', 'strict-cli', '--redirect-uri', REDIRECT, '--require-mfa']);
      assert.equal(added.status, 0, added.stderr);
      assert.equal((JSON.parse(added.stdout) as { require_mfa?: boolean }).require_mfa, true);
      const updated = await latchkey(env, ['clients', 'update', 'strict-cli', '--no-require-mfa']);
      assert.equal(updated.status, 0, updated.stderr);
      const client = JSON.parse(updated.stdout) as Record<string, unknown>;
      assert.equal(client.require_mfa, false);
      assert.equal(client.client_secret, undefined, 'the secret is not printed again');
      const nothing = await latchkey(env, ['clients', 'update', 'strict-cli']);
      assert.equal(nothing.status, 1);
      assert.match(nothing.stderr, /nothing to change/);

      // The same metadata through the admin API, checked by the same policy.
      const token = await adminToken('ops', 'admin');
      const put = (requireMfa: unknown) =>
        admin('/clients/strict-cli', token, { method: 'PUT', body: JSON.stringify({ redirect_uris: [REDIRECT], require_mfa: requireMfa }) });
      const refused = await put('yes');
      assert.equal(refused.status, 400);
      assert.equal(((await refused.json()) as { error: string }).error, 'invalid_client_metadata');
      assert.equal(((await (await put(true)).json()) as { require_mfa?: boolean }).require_mfa, true);
    });

    it('the OpenAPI document is valid and lists every route of the admin API', async () => {
      const document = (await (await admin('/openapi.json', undefined)).json()) as { paths: Record<string, Record<string, unknown>> };
      const validator = new Validator();
      const result = await validator.validate(document);
      assert.ok(result.valid, JSON.stringify(result.errors));

      const { adminRouter } = await import('../../src/registration/admin-api.js');
      const { stack } = adminRouter({ issuer: server.issuer, providers: server.providers, clients: undefined!, accounts: server.accounts, apis: server.apis, grants: server.grants, consents: undefined!, revocations: server.revocations, sessions: undefined!, upstreams: undefined!, endThroughUpstream: undefined!, links: undefined!, owed: undefined!, secretRotationGrace: 0, secondFactors: server.secondFactors, onSecondFactorsReset: () => {}, senderConstraint: undefined! });
      for (const layer of stack) {
        const path = String(layer.path).replace(/^\/admin/, '').replace(/:(\w+)/g, '{$1}');
        for (const method of layer.methods.filter((m) => m !== 'HEAD')) {
          assert.ok(document.paths[path]?.[method.toLowerCase()], `${method} ${path} is documented`);
        }
      }
      assert.ok(stack.length >= 9);
    });
  });
});
