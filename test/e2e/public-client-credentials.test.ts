/**
 * Issue 12.5: a public client (token_endpoint_auth_method "none") can never hold the
 * client_credentials grant — whoever registers it (dynamic registration, RFC 7592 update, the
 * admin API, the developer page, the CLI, the configuration) — and the token endpoint never
 * answers client_credentials to a client that did not authenticate.
 */
import assert from 'node:assert/strict';
import { developerSignIn } from '../helpers/developer.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { adapterFactory } from '../../src/store/adapter.js';

const REDIRECT = 'https://public.example.test/callback';
const OPS_SECRET = 'ops-client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'public client test password';
const RULE = /client_credentials.*"none"/;

interface OAuthError {
  error: string;
  error_description?: string;
}

describe('e2e: a public client never gets client_credentials (issue 12.5)', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const ops = { client_id: 'ops', client_secret: OPS_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'admin' };
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS: JSON.stringify([ops]) } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const register = async (metadata: Record<string, unknown>) =>
    fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await new server.provider.InitialAccessToken({ expiresIn: 600 }).save()}` },
      body: JSON.stringify(metadata),
    });

  /** client_credentials as a public client would ask: its client_id in the body, no secret. */
  const publicClientCredentials = (clientId: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId }),
    });

  /** The answer to a grant type a client may not use: RFC 6749 §5.2's unauthorized_client (patches/unauthorized-client.ts). */
  async function noToken(response: Response): Promise<void> {
    const body = (await response.json()) as OAuthError;
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.ok(!('access_token' in body));
    assert.equal(body.error, 'unauthorized_client', JSON.stringify(body));
  }

  async function refused(response: Response, error = 'invalid_client_metadata'): Promise<OAuthError> {
    const body = (await response.json()) as OAuthError;
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.equal(body.error, error);
    return body;
  }

  it('dynamic registration (RFC 7591) refuses it, naming the rule, alone or beside the code flow', async () => {
    for (const grant_types of [['client_credentials'], ['authorization_code', 'client_credentials'], ['authorization_code', 'refresh_token', 'client_credentials']]) {
      const code = grant_types.includes('authorization_code');
      const response = await register({
        token_endpoint_auth_method: 'none',
        grant_types,
        response_types: code ? ['code'] : [],
        redirect_uris: code ? [REDIRECT] : [],
      });
      assert.match((await refused(response)).error_description ?? '', RULE, grant_types.join(' '));
    }
  });

  it('RFC 7592 update refuses adding client_credentials to a public client, and making a client_credentials client public', async () => {
    const manage = async (metadata: Record<string, unknown>) => {
      const created = await register(metadata);
      assert.equal(created.status, 201, await created.clone().text());
      const client = (await created.json()) as Record<string, unknown> & { registration_client_uri: string; registration_access_token: string };
      const { registration_client_uri: uri, registration_access_token: token, client_secret_expires_at: _e, client_id_issued_at: _i, ...rest } = client;
      const put = (changes: Record<string, unknown>) =>
        fetch(uri, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ ...rest, ...changes }),
        });
      return { client, put };
    };

    const spa = await manage({ token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: [REDIRECT] });
    const added = await refused(await spa.put({ grant_types: ['authorization_code', 'client_credentials'] }));
    assert.match(added.error_description ?? '', RULE);

    const service = await manage({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    const madePublic = await refused(await service.put({ token_endpoint_auth_method: 'none', client_secret: undefined }));
    assert.match(madePublic.error_description ?? '', RULE);

    // Neither change happened: the public client still cannot use the grant.
    await noToken(await publicClientCredentials(String(spa.client.client_id)));
  });

  it('the admin API refuses it on create and on update', async () => {
    const tokenResponse = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ops:${OPS_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }),
    });
    assert.equal(tokenResponse.status, 200, await tokenResponse.clone().text());
    const { access_token: token } = (await tokenResponse.json()) as { access_token: string };
    const admin = (path: string, method: string, body: unknown) =>
      fetch(`${server.url}/admin${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });

    const created = await admin('/clients', 'POST', { client_id: 'public-batch', token_endpoint_auth_method: 'none', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    assert.match((await refused(created)).error_description ?? '', RULE);
    assert.equal((await admin('/clients/public-batch', 'GET', undefined)).status, 404, 'nothing was stored');

    const spa = await admin('/clients', 'POST', { client_id: 'admin-spa', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: [REDIRECT] });
    assert.equal(spa.status, 201, await spa.clone().text());
    const updated = await admin('/clients/admin-spa', 'PUT', { token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'client_credentials'], response_types: ['code'], redirect_uris: [REDIRECT] });
    assert.match((await refused(updated)).error_description ?? '', RULE);
  });

  it('the CLI refuses `clients add --public --grant-type client_credentials` with one line', async () => {
    const run = await latchkey(env, ['clients', 'add', '--client-id', 'cli-public', '--public', '--grant-type', 'client_credentials']);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^latchkey: invalid_client_metadata: grant_types: client_credentials.*"none"/m);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  it('a configured client that breaks the rule stops the server at start with one line', async () => {
    const bad = { client_id: 'cfg-public', token_endpoint_auth_method: 'none', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
    const port = await freePort();
    const run = await latchkey(testEnv(testDir(), port, { env: { CLIENTS: JSON.stringify([bad]) } }), ['serve']);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^latchkey: clients \(CLIENTS\): client "cfg-public": grant_types: client_credentials.*"none"/m);
  });

  it('the developer page’s single-page and native apps get no client_credentials, even when the form asks; /token refuses them', async () => {
    await server.accounts.create('dev', PASSWORD);
    const { agent, page } = await developerSignIn(server.issuer, 'dev', PASSWORD);
    for (const type of ['spa', 'native']) {
      const redirect = type === 'native' ? 'com.example.app:/callback' : REDIRECT;
      const created = await agent.submit(page, '/developer/apps', {
        name: `A ${type} app`,
        type,
        redirect_uris: redirect,
        // Fields the form does not have are not metadata.
        grant_types: 'client_credentials',
        token_endpoint_auth_method: 'none',
      });
      assert.equal(created.status, 200, created.html.slice(0, 500));
      const clientId = /app-[\w-]{12}/.exec(created.html)?.[0];
      assert.ok(clientId, 'the new app is shown');
      const stored = (await adapterFactory(server.kv)('Client').find(clientId)) as { grant_types: string[]; token_endpoint_auth_method: string };
      assert.equal(stored.token_endpoint_auth_method, 'none');
      assert.ok(!stored.grant_types.includes('client_credentials'), `${type}: ${stored.grant_types.join(' ')}`);
      await noToken(await publicClientCredentials(clientId));
    }
  });

  it('a public client that lists client_credentials in the store anyway (written before this rule) gets no token', async () => {
    const stored = { client_id: 'legacy-public', token_endpoint_auth_method: 'none' as const, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
    await adapterFactory(server.kv)('Client').upsert(stored.client_id, stored, 0);
    const answer = await publicClientCredentials(stored.client_id);
    const body = (await answer.json()) as OAuthError;
    assert.equal(answer.status, 401, JSON.stringify(body));
    assert.equal(body.error, 'invalid_client');
    assert.ok(!('access_token' in body));
  });
});
