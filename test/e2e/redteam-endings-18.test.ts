/**
 * Red team, eighteenth endings pass (docs/security.md, "Looked at in the eighteenth endings pass").
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
 * API (apis.ts configurationChanged), as the tenth pass made it for configured clients.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as oidc from 'openid-client';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { acceptedBy, API, clientCredentialsToken, grantFeed, introspect, machineClient, OPAQUE_API } from '../helpers/tokens.js';

const PASSWORD = 'eighteenth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const STORED = 'https://stored.example.test';
const webClient = { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' };
const introspector = { client_id: RS.id, introspect: true };
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
  let redis: RedisServer;
  let dir: string;
  let port: number;
  let server: TestServer | undefined;
  let helper: ResourceServer | undefined;

  beforeEach(async () => {
    redis = await startRedisServer();
    dir = testDir();
    port = await freePort();
  });
  afterEach(async () => {
    helper?.close();
    helper = undefined;
    await server?.stop();
    server = undefined;
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** (Re)starts the server on the same Redis with these configured APIs; the feed's reader granted. */
  async function start(apis: unknown[]): Promise<TestServer> {
    helper?.close();
    helper = undefined;
    await server?.stop();
    server = await startServer({ redisUrl: redis.url, dir, port, clients: [machineClient(RS), machineClient(MACHINE), webClient], env: { RESOURCE_SERVERS: JSON.stringify(apis) } });
    await grantFeed(server, RS.id);
    return server;
  }

  /** An API at `API` following the feed, started now (it reads what is on the list). */
  async function api(): Promise<ResourceServer> {
    helper?.close();
    helper = await createResourceServer({ issuer: server!.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    await helper.sync();
    return helper;
  }

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
    assert.equal(await acceptedBy(await api(), person.access_token), true);
    assert.equal(await acceptedBy(helper!, own), true);
    assert.equal(await asksConsent(agent, API), false, 'the consent is remembered');

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
