/**
 * An initial access token from `latchkey registration token create` registers one client: the
 * first successful registration spends it, a refused one does not, and of concurrent
 * registrations with one token exactly one succeeds. An operator lists the outstanding ones (ids,
 * never tokens) and revokes a leaked one, by the token or its id.
 */
import assert from 'node:assert/strict';
import { initialAccessToken } from '../helpers/operator.js';
import { latchkey } from '../helpers/process.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';

const METADATA = { client_name: 'One registration', redirect_uris: ['https://dev.example.test/callback'] };

describe('e2e: an initial access token registers one client', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;

  before(async () => {
    redis = await startRedisServer();
    const settings = { redisUrl: redis.url, dir: testDir(), port: await freePort() };
    env = testEnv(settings.dir, settings.port, settings);
    server = await startServer(settings);
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  /** A token as `latchkey registration token create --expires-in 600` makes it, the command run (its output is what this returns). */
  async function tokenFromCli(): Promise<string> {
    const run = await latchkey(env, ['registration', 'token', 'create', '--expires-in', '600']);
    assert.equal(run.status, 0, run.stderr);
    return (JSON.parse(run.stdout) as { initial_access_token: string }).initial_access_token;
  }

  /**
   * The same token made in this process (test/helpers/operator.ts: the command's own call on the
   * server's provider), for the tests about what /reg does with a token: each CLI run is about
   * 1.5 s of CPU. The first test and the leaked token's take theirs from the command.
   */
  const token = () => initialAccessToken(server, 600);

  const register = (iat: string, metadata: Record<string, unknown> = METADATA, path = '/reg') =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` },
      body: JSON.stringify(metadata),
    });

  it('registers once; the same token again → 401 invalid_token', async () => {
    const iat = await tokenFromCli();
    assert.equal((await register(iat)).status, 201);
    const again = await register(iat);
    assert.equal(again.status, 401);
    assert.match(again.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);
    assert.equal(((await again.json()) as { error: string }).error, 'invalid_token');
  });

  it('is spent under every spelling of the registration endpoint the engine serves (/reg/, /REG, /Reg/)', async () => {
    // The engine's router serves these too; the single-use check compared the path as written,
    // so each of them registered another client with the same token.
    for (const path of ['/reg/', '/REG', '/Reg/']) {
      const iat = await token();
      assert.equal((await register(iat, METADATA, path)).status, 201, path);
      for (const again of ['/reg', '/reg/', '/REG']) assert.equal((await register(iat, METADATA, again)).status, 401, `${path} then ${again}`);
    }
  });

  it("an initial access token is a registration and nothing else, and a registration access token is no initial access token: neither works at userinfo, the admin API or the revocation feed, the first reads no client by RFC 7592, the second registers nothing (RFC 7591 §3, held)", async () => {
    const iat = await token();
    const bearer = (path: string, value: string) => fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${value}`, accept: 'application/json' } });
    for (const path of ['/me', '/admin/clients', '/revocations']) {
      const answer = await bearer(path, iat);
      assert.equal(answer.status, 401, `${path} with an initial access token: ${answer.status} ${await answer.text()}`);
    }
    const registered = await register(iat);
    assert.equal(registered.status, 201, 'the token is not spent by being tried elsewhere');
    const client = (await registered.json()) as { client_id: string; registration_access_token: string; registration_client_uri: string };
    const other = await token();
    assert.equal((await bearer(new URL(client.registration_client_uri).pathname, other)).status, 401, 'an initial access token reads no client');
    for (const path of ['/me', '/admin/clients', '/revocations']) {
      assert.equal((await bearer(path, client.registration_access_token)).status, 401, `${path} with a registration access token`);
    }
    const withRat = await register(client.registration_access_token);
    assert.equal(withRat.status, 401, 'a registration access token registers nothing');
    assert.equal((await bearer(new URL(client.registration_client_uri).pathname, client.registration_access_token)).status, 200, 'it reads its own client');
  });

  it('a refused registration does not spend the token', async () => {
    const iat = await token();
    const refused = await register(iat, { redirect_uris: ['https://dev.example.test/callback#fragment'] });
    assert.equal(refused.status, 400);
    assert.equal((await register(iat)).status, 201);
    assert.equal((await register(iat)).status, 401);
  });

  it('of concurrent registrations with one token exactly one succeeds', async () => {
    const iat = await token();
    const statuses = (await Promise.all(Array.from({ length: 5 }, () => register(iat)))).map((response) => response.status).sort();
    assert.deepEqual(statuses, [201, 401, 401, 401, 401]);
  });

  const refusedAsUnknown = async (response: Response, why: string) => {
    assert.equal(response.status, 401, why);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, why);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_token', why);
  };

  it('a leaked token revoked (by its id or by the token itself) registers nothing: 401 invalid_token, as an unknown one; another token is unaffected; list shows ids and expiry, never a token', async function () {
    this.timeout(120_000);
    const made = await latchkey(env, ['registration', 'token', 'create', '--expires-in', '600']);
    assert.equal(made.status, 0, made.stderr);
    const { initial_access_token: leaked, id } = JSON.parse(made.stdout) as { initial_access_token: string; id: string };
    const [byValue, other] = [await token(), await token()];

    const listed = await latchkey(env, ['registration', 'token', 'list']);
    assert.equal(listed.status, 0, listed.stderr);
    const outstanding = JSON.parse(listed.stdout) as { id: string; expires_at: number }[];
    assert.ok(outstanding.some((entry) => entry.id === id && entry.expires_at > Date.now() / 1000), listed.stdout);
    for (const value of [leaked, byValue, other]) assert.ok(!listed.stdout.includes(value), 'the list never shows a token');

    const revoked = await latchkey(env, ['registration', 'token', 'revoke', id]);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.deepEqual(JSON.parse(revoked.stdout), { id, revoked: true });
    await refusedAsUnknown(await register(leaked), 'revoked by its id');
    // A token may start with "-": given after "--", it is not taken for an option.
    const byValueRun = await latchkey(env, ['registration', 'token', 'revoke', '--', byValue]);
    assert.equal(byValueRun.status, 0, byValueRun.stderr);
    await refusedAsUnknown(await register(byValue), 'revoked by the token');
    await refusedAsUnknown(await register('no-such-initial-access-token'), 'an unknown token');

    assert.equal((await register(other)).status, 201, 'another token still registers');
    const after = JSON.parse((await latchkey(env, ['registration', 'token', 'list'])).stdout) as { id: string }[];
    assert.ok(!after.some((entry) => entry.id === id), 'a revoked token is no longer listed');

    for (const unknown of [id, 'no-such-initial-access-token']) {
      const again = await latchkey(env, ['registration', 'token', 'revoke', '--', unknown]);
      assert.equal(again.status, 1, unknown);
      assert.match(again.stderr, /^latchkey: no outstanding initial access token with that value or id/m);
      assert.equal(again.stderr.trim().split('\n').at(-1)!.startsWith('latchkey: no outstanding'), true);
      assert.ok(!again.stderr.includes('    at '), 'one line, no stack');
    }
  });
});

describe('e2e: an initial access token revoked while its registration is in flight', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  before(async () => (relayed = await startRelayedServer()));
  after(() => relayed?.stop());

  it('a registration that checked its token, held at its write of the client while the operator revokes the token, registers nothing: 401 invalid_token, no client left behind', async () => {
    const { relay, server, env } = relayed;
    const made = await latchkey(env, ['registration', 'token', 'create', '--expires-in', '600']);
    assert.equal(made.status, 0, made.stderr);
    const { initial_access_token: leaked, id } = JSON.parse(made.stdout) as { initial_access_token: string; id: string };

    // The registration, held at its write of the new client (it has checked the token already).
    const held = await relay.hold(scriptOn('oidc:Client:'), () =>
      fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${leaked}` },
        body: JSON.stringify(METADATA),
      }),
    );
    const revoked = await latchkey(env, ['registration', 'token', 'revoke', id]);
    assert.equal(revoked.status, 0, revoked.stderr);

    const answered = await held.release();
    const body = (await answered.json()) as { error?: string; client_id?: string; client_secret?: string };
    assert.equal(answered.status, 401, `a token revoked before the registration was written registered a client: ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_token');
    assert.equal(body.client_secret, undefined);
    const listed = await latchkey(env, ['clients', 'list']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.ok(!listed.stdout.includes(METADATA.client_name), `no client is left behind: ${listed.stdout}`);
  });
});
