/**
 * Red team, eighteenth endings pass (docs/security-passes.md, "Looked at in the eighteenth endings pass").
 *
 * An API defined in the configuration (`resourceServers`, RESOURCE_SERVERS), or an operator grant
 * there, changed by editing it and restarting went through no write, so it ended less than the same
 * change made at runtime (`apis remove`, `apis revoke`, the admin API): an API taken out of the
 * configuration left its JWTs (a person's, a client's own) accepted by an API following the feed,
 * and put back, the tokens issued before were active again at introspection and its people's
 * refresh tokens refreshed; a grant narrowed left the client's own JWTs carrying the scope taken
 * accepted there; and a stored API removed, then configured under its identifier, was the same API
 * to the refresh tokens of the one removed. The first start with the new configuration now ends
 * what the runtime change would, once, and a configured API new since the start before is another
 * API (apis.ts configurationChanged), as the tenth pass made it for configured clients. And an
 * operator's `apis revoke` (or the admin API's DELETE) of a client's grant that the configuration
 * gives too answered done while the client went on getting tokens: refused now (409). And a device
 * approved for an API, polled once the API was removed and added again (stored or configured), got
 * a token for the new one: a device code's grant is now dated at the approval (resource-servers.ts).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import * as oidc from 'openid-client';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { latchkey, serveProcess, type ServerProcess } from '../helpers/process.js';
import { configuredApiRestarts } from '../helpers/configured-api-restarts.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { acceptedBy, adminJson, API, basic, clientCredentialsToken, introspect, machineClient, OPAQUE_API, WEB, webClient } from '../helpers/tokens.js';

const PASSWORD = 'eighteenth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const STORED = 'https://stored.example.test';
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const WEB_CLIENT = webClient(WEB, [REDIRECT], { scope: 'openid offline_access read' });
const introspector = { client_id: RS.id, introspect: true };
const TV = { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] };
/** The JWT API (the one `latchkey/resource-server` serves below), with the machine's grant there. */
const jwtApi = (machineScopes: string[] | null = ['read', 'write']) => ({
  identifier: API,
  scopes: ['read', 'write'],
  format: 'jwt',
  grants: [...(machineScopes ? [{ client_id: MACHINE.id, scopes: machineScopes }] : []), introspector],
});
/** An opaque API that stays configured throughout (it keeps `read` offered to the web client). */
const ledger = { identifier: OPAQUE_API, scopes: ['read'], format: 'opaque', grants: [introspector] };

describe('e2e: red team, eighteenth endings pass: a configured API or operator grant changed across a restart ends what the same runtime change ends', function () {
  this.timeout(60_000);
  const restarts = configuredApiRestarts([machineClient(RS), machineClient(MACHINE), WEB_CLIENT, TV], RS);
  /** The server running now (restarts stops it after each test). */
  let server: TestServer | undefined;
  /** (Re)starts the server on the same Redis with these configured APIs; the feed's reader granted. */
  const start = async (apis: unknown[]) => (server = await restarts.start(apis));
  /** An API at `API` following the feed, started now (it reads what is on the list). */
  const api = (audience = API) => restarts.api(audience);

  const web = () => oidc.discovery(new URL(server!.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });

  /** A sign-in at the web client (consent asked) for `resource`: its tokens, with offline access. */
  async function signIn(agent: Agent, resource: string) {
    const config = await web();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access read', prompt: 'consent', resource });
    const done = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT });
    return oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource });
  }

  /** Whether an authorization request for `resource` without `prompt`, in `agent`'s signed-in browser, is shown the consent page. */
  async function asksConsent(agent: Agent, resource: string): Promise<boolean> {
    const { page } = await startAuthorization(agent, await web(), REDIRECT, { scope: 'openid offline_access read', resource });
    const shown = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT, consent: 'stop' });
    if (!isConsent(shown)) assert.ok(shown.url.startsWith(REDIRECT), `expected the consent page or a code, got ${shown.status} ${shown.url}`);
    return isConsent(shown);
  }

  /** A device (the public client `tv`) asking for `resource`, approved at /device in `agent`'s browser, not polled yet: its device code. */
  async function approvedDevice(agent: Agent, resource: string): Promise<string> {
    const tv = await oidc.discovery(new URL(server!.issuer), TV.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'read', resource });
    const confirm = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: device.user_code });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'rhea', password: PASSWORD });
    assert.match(approved.html, /Device connected/);
    return device.device_code;
  }

  /** The device's poll for `resource`: the token endpoint's status and answer. */
  const poll = async (deviceCode: string, resource: string) => {
    const response = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, client_id: TV.client_id, resource }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  const refresh = async (refreshToken: string, resource: string) => {
    const response = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: WEB.id, client_secret: WEB.secret, resource }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('an API taken out of the configuration, then restarted: its JWTs (a person’s, a client’s own) are refused at latchkey/resource-server, as after `apis remove`; put back, the tokens from before stay dead, the person’s refresh token gets nothing and the person is asked again', async () => {
    const started = await start([jwtApi(), ledger]);
    await started.accounts.create('rhea', PASSWORD);
    const agent = new Agent();
    const person = await signIn(agent, API);
    const own = await clientCredentialsToken(server!.url, MACHINE, API, 'read');
    // An operator's runtime grant at the configured API, beside the configuration's (its introspection).
    await started.apis.grant(RS.id, API, { scopes: ['read'] });
    assert.ok(await clientCredentialsToken(server!.url, RS, API, 'read'));
    const following = await api();
    assert.equal(await acceptedBy(following, person.access_token), true);
    assert.equal(await acceptedBy(following, own), true);
    assert.equal(await asksConsent(agent, API), false, 'the consent is remembered');
    // A code issued now (from the remembered consent), redeemed once the API is put back.
    const pending = await startAuthorization(agent, await web(), REDIRECT, { scope: 'openid offline_access read', resource: API });
    const withCode = await signInSteps(agent, pending.page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT });
    // A device approved now, polled once the API is put back.
    const deviceCode = await approvedDevice(agent, API);

    await start([ledger]);
    const after = await api();
    // Before the fix: true and true, for the tokens' whole lifetime (introspection refused them already).
    assert.equal(await acceptedBy(after, person.access_token), false, 'a person’s JWT for an API taken out of the configuration, at an API that follows the feed');
    assert.equal(await acceptedBy(after, own), false, 'a client’s own JWT for it');

    await start([jwtApi(), ledger]);
    // Before the fix: active again at introspection, and the refresh token refreshed (200), without asking.
    assert.equal((await introspect(server!.url, WEB, person.access_token)).active, false, 'a token from before the removal, once the API is put back');
    assert.equal((await introspect(server!.url, MACHINE, own)).active, false);
    assert.equal(await acceptedBy(await api(), person.access_token), false);
    const refreshed = await refresh(person.refresh_token!, API);
    assert.equal(refreshed.status, 400, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.error, 'invalid_target');
    assert.equal(await asksConsent(agent, API), true, 'the person is asked again for the API put back');
    const regranted = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(RS) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
    });
    // Before the fix: 200, the runtime grant at the API taken out carried over to the one put back.
    assert.equal(regranted.status, 400, 'an operator grant made at runtime at the API taken out, once it is put back');
    assert.equal(((await regranted.json()) as { error: string }).error, 'invalid_scope');
    const exchange = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: new URL(withCode.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: pending.verifier, resource: API }),
    });
    assert.equal(exchange.status, 400, 'a code issued before the API was taken out, redeemed once it is put back');
    assert.equal(((await exchange.json()) as { error: string }).error, 'invalid_target');
    const polled = await poll(deviceCode, API);
    // Before the fix: 200, a token for the API put back from an approval of the one taken out.
    assert.equal(polled.status, 400, `a device approved before the API was taken out, polled once it is put back: ${JSON.stringify(polled.body)}`);
    assert.equal(polled.body.error, 'invalid_target');

    // What is issued at the API put back works, and a restart with the same configuration ends nothing more.
    const fresh = await clientCredentialsToken(server!.url, MACHINE, API, 'read');
    await start([jwtApi(), ledger]);
    assert.equal(await acceptedBy(await api(), fresh), true, 'a token issued after the API was put back');
    assert.equal((await introspect(server!.url, MACHINE, fresh)).active, true);
  });

  it('an operator grant narrowed, then taken out of the configuration, each restarted: the client’s own JWTs carrying what was taken are refused at latchkey/resource-server, as after `apis revoke`; what it keeps is not', async () => {
    await start([jwtApi(), ledger]);
    const read = await clientCredentialsToken(server!.url, MACHINE, API, 'read');
    const write = await clientCredentialsToken(server!.url, MACHINE, API, 'write');

    await start([jwtApi(['read']), ledger]);
    const narrowed = await api();
    // Before the fix: true, for the token's whole lifetime (introspection refused it already).
    assert.equal(await acceptedBy(narrowed, write), false, 'its JWT carrying the scope taken from its configured grant');
    assert.equal(await acceptedBy(narrowed, read), true, 'its JWT within what it keeps');
    assert.equal((await introspect(server!.url, RS, read)).active, true);

    await start([jwtApi(null), ledger]);
    // Before the fix: true.
    assert.equal(await acceptedBy(await api(), read), false, 'its JWT once its configured grant is gone');
  });

  it('a stored API removed (`apis remove`), then configured under its identifier: the removed one’s refresh token gets nothing there and the person is asked again; a stored API moved into the configuration stays the same API', async () => {
    const started = await start([jwtApi(), ledger]);
    await started.accounts.create('rhea', PASSWORD);
    await started.apis.add({ identifier: STORED, scopes: ['read'] });
    const agent = new Agent();
    const removed = await signIn(agent, STORED);
    const devicePending = await approvedDevice(agent, STORED);
    await started.apis.remove(STORED);
    await started.apis.add({ identifier: STORED, scopes: ['read'] });
    // Before the fix: 200, a token for the stored API added again from an approval of the one removed.
    const polled = await poll(devicePending, STORED);
    assert.equal(polled.status, 400, `a device approved before the API was removed, polled once it is added again: ${JSON.stringify(polled.body)}`);
    assert.equal(polled.body.error, 'invalid_target');
    await started.apis.remove(STORED);

    await start([jwtApi(), ledger, { identifier: STORED, scopes: ['read'], format: 'jwt' }]);
    const refreshed = await refresh(removed.refresh_token!, STORED);
    // Before the fix: 200, a token for the configured API from a grant given to the removed one.
    assert.equal(refreshed.status, 400, JSON.stringify(refreshed.body));
    assert.equal(await asksConsent(agent, STORED), true, 'the person is asked again');

    // Held: a stored API that the operator also configures (moved into the configuration) keeps its people's grants.
    const MOVED = 'https://moved.example.test';
    await server!.apis.add({ identifier: MOVED, scopes: ['read'] });
    const kept = await signIn(agent, MOVED);
    await start([jwtApi(), ledger, { identifier: STORED, scopes: ['read'], format: 'jwt' }, { identifier: MOVED, scopes: ['read'], format: 'jwt' }]);
    assert.equal((await refresh(kept.refresh_token!, MOVED)).status, 200, 'a refresh token of the stored API now configured');
    assert.equal(await asksConsent(agent, MOVED), false);
  });
});

describe('e2e: red team, eighteenth endings pass: an operator revoking a grant the configuration gives', function () {
  this.timeout(60_000);
  let server: TestServer;
  let ops: string;

  before(async () => {
    // The machine's grant at the API is in the configuration: `read` only.
    server = await startServer({ ownRedis: true, clients: [machineClient(RS), machineClient(MACHINE), machineClient(OPS)], env: { RESOURCE_SERVERS: JSON.stringify([jwtApi(['read']), ledger]) } });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    ops = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(async () => {
    await server?.stop();
  });

  const grantOf = async () => (await adminJson(server.url, ops, 'GET', `/clients/${MACHINE.id}/grants`)).body[API] as unknown as { scopes: string[] } | undefined;

  it('`apis revoke` and the admin API’s DELETE of a grant the configuration gives too are refused (409, nothing changed) instead of answering done while the client goes on getting tokens; a scope only the store gives is revoked', async () => {
    // The operator also granted `write` at runtime: the client holds read (configuration) and write (store).
    const granted = await latchkey(server.env, ['apis', 'grant', '--client', MACHINE.id, '--api', API, '--scope', 'write']);
    assert.equal(granted.status, 0, granted.stderr);
    const before = await clientCredentialsToken(server.url, MACHINE, API, 'read');

    // The machine's secret leaked: the operator revokes its grant at the API. Before the fix: exit 0,
    // {"revoked": true}, and a second later the machine got a token for `read` that introspected active.
    const revoked = await latchkey(server.env, ['apis', 'revoke', '--client', MACHINE.id, '--api', API]);
    assert.equal(revoked.status, 1, `answered done while the configuration's grant goes on: ${revoked.stdout}`);
    assert.match(revoked.stderr, /in the configuration \(resourceServers\), which gives it read: change it there and restart/);
    // The CLI run without the servers' RESOURCE_SERVERS knows the configured grant from the store (the record the servers keep).
    const { RESOURCE_SERVERS: _configured, ...elsewhere } = server.env;
    const uninformed = await latchkey(elsewhere, ['apis', 'revoke', '--client', MACHINE.id, '--api', API]);
    assert.equal(uninformed.status, 1, `a CLI without the configuration answered done: ${uninformed.stdout}`);
    assert.match(uninformed.stderr, /in the configuration \(resourceServers\)/);
    // Nor does it add or remove a stored API of the configured one's identifier (one the servers never
    // use; a removal would also end every token of the configured API), and say done.
    for (const args of [['apis', 'add', API, '--scope', 'read'], ['apis', 'remove', API]]) {
      const run = await latchkey(elsewhere, args);
      assert.equal(run.status, 1, `${args.slice(0, 2).join(' ')} from a shell without the configuration answered done: ${run.stdout}`);
      assert.match(run.stderr, /is defined in the configuration/);
    }
    const deleted = await adminJson(server.url, ops, 'DELETE', `/clients/${MACHINE.id}/grants/${encodeURIComponent(API)}`);
    assert.equal(deleted.status, 409, JSON.stringify(deleted.body));
    const narrowed = await adminJson(server.url, ops, 'PUT', `/clients/${MACHINE.id}/grants/${encodeURIComponent(API)}`, { scopes: ['write'] });
    assert.equal(narrowed.status, 409, 'a PUT leaving out what the configuration gives');
    assert.equal((await latchkey(server.env, ['apis', 'revoke', '--client', MACHINE.id, '--api', API, '--scope', 'read'])).status, 1);
    assert.deepEqual((await grantOf())?.scopes.sort(), ['read', 'write'], 'nothing changed');
    assert.equal((await introspect(server.url, RS, before)).active, true, 'nothing ended: the operator was told so');

    // What the store alone gives is revoked, and its tokens end.
    const write = await clientCredentialsToken(server.url, MACHINE, API, 'write');
    const scoped = await latchkey(server.env, ['apis', 'revoke', '--client', MACHINE.id, '--api', API, '--scope', 'write']);
    assert.equal(scoped.status, 0, scoped.stderr);
    assert.equal((await introspect(server.url, RS, write)).active, false);
    assert.deepEqual((await grantOf())?.scopes, ['read']);
  });
});

describe('e2e: red team, eighteenth endings pass: a configured API taken out and put back under serve --workers 2', function () {
  // Two restarts of serve --workers 2 and CLI runs per test: on a loaded two-core runner a minute is not always enough.
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let served: ServerProcess | undefined;
  let helper: ResourceServer | undefined;

  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    helper?.close();
    await served?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `latchkey serve --workers 2` (the built CLI) with these configured APIs, on the same Redis and port. */
  async function serve(apis: unknown[], port: number): Promise<Record<string, string>> {
    helper?.close();
    helper = undefined;
    await served?.stop();
    const env = testEnv(dir, port, { redisUrl: redis.url, env: { CLIENTS: JSON.stringify([machineClient(RS), machineClient(MACHINE), WEB_CLIENT]), RESOURCE_SERVERS: JSON.stringify(apis) } });
    served = await serveProcess(env, ['--workers', '2']);
    return env;
  }

  it('both workers end the API taken out (its JWT refused at latchkey/resource-server) and, put back, both take it as another API: the refresh token from before is invalid_target at each, a new token works', async () => {
    const port = await freePort();
    const env = await serve([jwtApi(), ledger], port);
    for (const args of [['users', 'add', 'rhea', '--password-stdin'], ['apis', 'grant', '--client', RS.id, '--api', `${env.ISSUER}/revocations`, '--scope', 'revocations']]) {
      const run = await latchkey(env, args, `${PASSWORD}\n`);
      assert.equal(run.status, 0, run.stderr);
    }
    const config = await oidc.discovery(new URL(env.ISSUER!), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access read', prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT });
    const person = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API });

    await serve([ledger], port);
    helper = await createResourceServer({ issuer: env.ISSUER!, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    await helper.sync();
    assert.equal(await acceptedBy(helper, person.access_token), false, 'a person’s JWT for the API taken out of the configuration');

    // Put back: both workers start at once with an API the record does not hold, each compares.
    await serve([jwtApi(), ledger], port);
    const url = `http://127.0.0.1:${port}`;
    // Each on a connection of its own: the primary hands them to the workers in turn.
    for (let i = 0; i < 4; i++) {
      const answer = await fresh(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: person.refresh_token!, resource: API }).toString(),
      });
      assert.equal(answer.status, 400, answer.text);
      assert.equal((JSON.parse(answer.text) as { error: string }).error, 'invalid_target');
      const own = await fresh(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }).toString(),
      });
      assert.equal(own.status, 200, own.text);
      const introspected = await fresh(`${url}/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(RS) },
        body: new URLSearchParams({ token: (JSON.parse(own.text) as { access_token: string }).access_token }).toString(),
      });
      assert.equal((JSON.parse(introspected.text) as { active: boolean }).active, true, 'a token of the API put back');
    }
  });
});

/** A request on a connection of its own (no keep-alive): the cluster's primary hands each new connection to the next worker. */
function fresh(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
