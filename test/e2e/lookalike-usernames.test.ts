/**
 * Issue 12.8, performed as an operator would be fooled: with "alice" registered, lookalikes of her
 * name (a zero-width space, Cyrillic а, dotless ı, a right-to-left override, ...) are refused
 * through the admin API and the CLI with one clear line, and signing in with a lookalike never
 * reaches her account, while her own name in another case or width still does.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';

const PASSWORD = 'lookalike test password';
const OPS_SECRET = 'ops-client-secret-with-plenty-of-entropy-0123456789';
const APP_SECRET = 'app-client-secret-with-plenty-of-entropy-0123456789';
const REDIRECT = 'https://app.example.test/callback';

/** Lookalikes of "alice", and what the answer must say. */
const LOOKALIKES: [name: string, username: string, answer: RegExp][] = [
  ['zero-width space', 'ali\u200bce', /^a username cannot contain invisible or text-direction characters \(found U\+200B\)$/],
  ['right-to-left override', '\u202eecila', /^a username cannot contain invisible or text-direction characters \(found U\+202E\)$/],
  ['zero-width joiner', 'alice\u200d', /invisible or text-direction characters \(found U\+200D\)/],
  ['Cyrillic а', '\u0430lice', /^the username "\u0430lice" looks like the existing username "alice" \(it has U\+0430\); choose one that does not$/],
  ['dotless ı', 'al\u0131ce', /looks like the existing username "alice" \(it has U\+0131\)/],
  ['digit one for l', 'a1ice', /looks like the existing username "alice"/],
  ['capital I for l', 'aIice', /looks like the existing username "alice"/],
  ['the same name in fullwidth', 'ａｌｉｃｅ', /^the username "ａｌｉｃｅ" is taken$/],
  ['the same name in capitals', 'ALICE', /^the username "ALICE" is taken$/],
];

describe('e2e: lookalike usernames are refused (issue 12.8)', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  let adminToken: string;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const clients = [
      { client_id: 'ops', client_secret: OPS_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'admin' },
      { client_id: 'app', client_secret: APP_SECRET, redirect_uris: [REDIRECT] },
    ];
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS: JSON.stringify(clients) } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.accounts.create('alice', PASSWORD);
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ops:${OPS_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }),
    });
    assert.equal(response.status, 200, await response.clone().text());
    adminToken = ((await response.json()) as { access_token: string }).access_token;
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const addUser = (username: string) =>
    fetch(`${server.url}/admin/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ username, password: PASSWORD }),
    });

  for (const [name, username, answer] of LOOKALIKES) {
    it(`the admin API refuses a lookalike of "alice": ${name}`, async () => {
      const response = await addUser(username);
      const body = (await response.json()) as { error: string; error_description: string };
      assert.equal(response.status, answer.source.includes('invisible') ? 400 : 409, JSON.stringify(body));
      assert.equal(body.error, answer.source.includes('invisible') ? 'invalid_request' : 'conflict');
      assert.match(body.error_description, answer);
    });
  }

  it('no lookalike became an account', async () => {
    const response = await fetch(`${server.url}/admin/users`, { headers: { authorization: `Bearer ${adminToken}` } });
    const users = (await response.json()) as { username: string }[];
    assert.deepEqual(users.map((user) => user.username), ['alice']);
  });

  it('the CLI refuses a Cyrillic and a zero-width lookalike with one line each', async () => {
    for (const [username, answer] of [
      ['\u0430lice', /^latchkey: acting on .*\nlatchkey: the username "\u0430lice" looks like the existing username "alice" \(it has U\+0430\); choose one that does not\n$/],
      ['ali\u200bce', /^latchkey: acting on .*\nlatchkey: a username cannot contain invisible or text-direction characters \(found U\+200B\)\n$/],
    ] as const) {
      const run = await latchkey(env, ['users', 'add', username, '--password-stdin'], PASSWORD);
      assert.equal(run.status, 1, run.stdout);
      assert.match(run.stderr, answer);
    }
  });

  it('signing in with a lookalike does not reach alice; her name in another case or width does', async () => {
    const config = await oidc.discovery(new URL(server.issuer), 'app', APP_SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
    for (const username of ['\u0430lice', 'al\u0131ce', 'ali\u200bce']) {
      await assert.rejects(frontChannel(config, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope: 'openid' } }), /expected a redirect/);
    }
    for (const username of ['ALICE', 'ａｌｉｃｅ']) {
      const { callback } = await frontChannel(config, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope: 'openid' } });
      assert.ok(callback.searchParams.get('code'), username);
    }
  });
});
