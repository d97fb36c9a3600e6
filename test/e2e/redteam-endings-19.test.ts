/**
 * Red team, nineteenth endings pass (docs/security-passes.md, "Looked at in the nineteenth endings pass").
 *
 * A scope taken out of an API that stays (its `resourceServers` entry edited and the server
 * restarted, a stored API moved into the configuration without it, or a configured API taken out
 * over a stored one of its identifier that lacks it) was refused at introspection
 * (resource-servers.ts heldByApiNow) but went on no list: an API verifying JWTs locally with
 * `latchkey/resource-server` accepted a person's token and a client's own carrying it until they
 * expired, and once the scope was put back, introspection said them active again. The first start
 * with the new configuration now writes a scoped api entry (`{ type: 'api', aud, scope }`) for each
 * scope taken (apis.ts configurationChanged), which the feed carries and the helper honours, and
 * introspection reads too. What a narrowed client's `scope` ends (delegated entries with `scope`)
 * was closed by the eighth, tenth and eleventh endings passes and is pinned there.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { configuredApiRestarts } from '../helpers/configured-api-restarts.js';
import type { TestServer } from '../helpers/server.js';
import { apiKey, APIS_KEY } from '../../src/store/keys.js';
import { acceptedBy, API, clientCredentialsToken, introspect, machineClient, OPAQUE_API, WEB, webClient } from '../helpers/tokens.js';

const PASSWORD = 'nineteenth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const STORED = 'https://stored.example.test';
const WEB_CLIENT = webClient(WEB, [REDIRECT], { scope: 'openid offline_access read write' });
const introspector = { client_id: RS.id, introspect: true };
/** The JWT API `latchkey/resource-server` serves below, offering `scopes`; its operator grants are made at runtime. */
const jwtApi = (scopes: string[], identifier = API) => ({ identifier, scopes, format: 'jwt', grants: [introspector] });
/** An opaque API that stays configured throughout: it keeps `write` offered to the web client (a configured client's scopes must be). */
const ledger = { identifier: OPAQUE_API, scopes: ['read', 'write'], format: 'opaque', grants: [introspector] };

describe('e2e: red team, nineteenth endings pass: a scope taken out of an API that stays ends its tokens at every API following the feed', function () {
  this.timeout(60_000);
  const restarts = configuredApiRestarts([machineClient(RS), machineClient(MACHINE), WEB_CLIENT], RS);
  /** The server running now (restarts stops it after each test). */
  let server: TestServer | undefined;
  /** (Re)starts the server on the same Redis with these configured APIs; the feed's reader granted. */
  const start = async (apis: unknown[]) => (server = await restarts.start(apis));
  /** An API at `audience` following the feed, started now (it reads what is on the list). */
  const api = (audience = API) => restarts.api(audience);

  const web = () => oidc.discovery(new URL(server!.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });

  /** A sign-in at the web client (consent asked) for `resource` with `scope`: its tokens. */
  async function signIn(agent: Agent, resource: string, scope = 'openid offline_access read write') {
    const config = await web();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope, prompt: 'consent', resource });
    const done = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT });
    return oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource });
  }

  /** What the feed holds now, read as a resource server reads it. */
  async function feed(): Promise<Record<string, unknown>[]> {
    const token = await clientCredentialsToken(server!.url, RS, `${server!.issuer}/revocations`, 'revocations');
    const response = await fetch(`${server!.url}/revocations`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { entries: Record<string, unknown>[] }).entries;
  }

  it('a scope taken out of a configured API that stays, then restarted: its JWTs carrying it (a person’s, a client’s own) are refused at latchkey/resource-server; those without it are not; put back, the tokens from before stay dead there and at introspection, and fresh ones work', async () => {
    const started = await start([jwtApi(['read', 'write']), ledger]);
    await started.accounts.create('rhea', PASSWORD);
    // An operator's runtime grant at the configured API: the configuration's edit does not narrow it.
    await started.apis.grant(MACHINE.id, API, { scopes: ['read', 'write'] });
    const agent = new Agent();
    const person = await signIn(agent, API);
    assert.deepEqual(String(decodeJwt(person.access_token).scope).split(' ').sort(), ['read', 'write']);
    const own = await clientCredentialsToken(server!.url, MACHINE, API, 'read write');
    const ownRead = await clientCredentialsToken(server!.url, MACHINE, API, 'read');
    const before = await api();
    for (const token of [person.access_token, own, ownRead]) assert.equal(await acceptedBy(before, token), true);

    // The operator takes `write` out of the API (found too broad, say) and restarts.
    await start([jwtApi(['read']), ledger]);
    const narrowed = await api();
    assert.equal((await introspect(server!.url, RS, person.access_token)).active, false, 'introspection (held before)');
    // Before the fix: true and true, for the tokens' whole lifetime.
    assert.equal(await acceptedBy(narrowed, person.access_token), false, 'a person’s JWT carrying a scope its API no longer offers, at an API that follows the feed');
    assert.equal(await acceptedBy(narrowed, own), false, 'a client’s own JWT carrying it');
    assert.equal(await acceptedBy(narrowed, ownRead), true, 'a JWT within what the API still offers, issued before');
    assert.equal((await introspect(server!.url, RS, ownRead)).active, true);
    // The feed says what was taken, from where: a scoped api entry.
    const entries = (await feed()).filter((entry) => entry.type === 'api');
    assert.deepEqual(
      entries.map(({ aud, scope }) => ({ aud, scope })),
      [{ aud: API, scope: 'write' }],
    );
    // The person's refresh gets what is left, which the API accepts.
    const refreshed = await oidc.refreshTokenGrant(await web(), person.refresh_token!, { resource: API });
    assert.equal(refreshed.scope?.includes('write'), false, refreshed.scope);
    await narrowed.sync();
    assert.equal(await acceptedBy(narrowed, refreshed.access_token), true, 'a token within what the API offers, even of the same second');
    const restartedAgain = await start([jwtApi(['read']), ledger]);
    assert.equal((await feed()).filter((entry) => entry.type === 'api').length, 1, 'a restart with the same configuration ends nothing more');
    assert.ok(restartedAgain);

    // Put back: what was issued before it was taken stays dead.
    await start([jwtApi(['read', 'write']), ledger]);
    const restored = await api();
    // Before the fix: active again at introspection (and accepted at the API all along).
    assert.equal((await introspect(server!.url, RS, person.access_token)).active, false, 'a token from before the scope was taken, once it is put back');
    assert.equal((await introspect(server!.url, MACHINE, own)).active, false);
    assert.equal(await acceptedBy(restored, person.access_token), false);
    assert.equal(await acceptedBy(restored, own), false);
    const fresh = await clientCredentialsToken(server!.url, MACHINE, API, 'read write');
    const again = await oidc.refreshTokenGrant(await web(), refreshed.refresh_token ?? person.refresh_token!, { resource: API, scope: 'openid offline_access read write' });
    await restored.sync();
    assert.equal(await acceptedBy(restored, fresh), true, 'a client’s own token with the scope put back');
    assert.equal(await acceptedBy(restored, again.access_token), true, 'a person’s token with the scope put back');
    assert.equal((await introspect(server!.url, RS, again.access_token)).active, true);
  });

  it('a stored API moved into the configuration without a scope it had: its JWTs carrying that scope are refused at latchkey/resource-server, the rest accepted', async () => {
    const started = await start([jwtApi(['read']), ledger]);
    await started.accounts.create('rhea', PASSWORD);
    await started.apis.add({ identifier: STORED, scopes: ['read', 'write'] });
    await started.apis.grant(RS.id, STORED, { scopes: [], introspect: true });
    const person = await signIn(new Agent(), STORED);
    const kept = await signIn(new Agent(), STORED, 'openid read');
    assert.equal(await acceptedBy(await api(STORED), person.access_token), true);

    await start([jwtApi(['read']), ledger, jwtApi(['read'], STORED)]);
    const moved = await api(STORED);
    assert.equal((await introspect(server!.url, RS, person.access_token)).active, false, 'introspection (held before)');
    // Before the fix: true.
    assert.equal(await acceptedBy(moved, person.access_token), false, 'a JWT carrying the scope the configured API does not offer');
    assert.equal(await acceptedBy(moved, kept.access_token), true, 'a JWT within what it offers: the same API');
    assert.equal((await introspect(server!.url, RS, kept.access_token)).active, true);
  });

  it('a configured API taken out over a stored API of its identifier with fewer scopes: the JWTs carrying a scope only the configured one offered are refused at latchkey/resource-server; a stored API read without a reserved scope says so on the feed', async () => {
    const started = await start([jwtApi(['read']), ledger]);
    await started.accounts.create('rhea', PASSWORD);
    await started.apis.add({ identifier: STORED, scopes: ['read'] });
    await started.apis.grant(RS.id, STORED, { scopes: [], introspect: true });
    // The operator configures the identifier with more (the configured API is put over the stored one).
    await start([jwtApi(['read']), ledger, jwtApi(['read', 'write'], STORED)]);
    const wide = await signIn(new Agent(), STORED);
    const kept = await signIn(new Agent(), STORED, 'openid read');
    assert.equal(await acceptedBy(await api(STORED), wide.access_token), true);

    // Taken out of the configuration again: the stored API goes on, without `write`.
    await start([jwtApi(['read']), ledger]);
    const underneath = await api(STORED);
    assert.equal((await introspect(server!.url, RS, wide.access_token)).active, false, 'introspection (held before)');
    // Before the fix: true.
    assert.equal(await acceptedBy(underneath, wide.access_token), false, 'a JWT carrying the scope only the configured API offered');
    assert.equal(await acceptedBy(underneath, kept.access_token), true);

    // A stored API written with a reserved scope (by a release before they were refused) is read without it.
    const RESERVED = 'https://reserved.example.test';
    await server!.kv.set(apiKey(RESERVED), JSON.stringify({ identifier: RESERVED, scopes: ['read', 'admin'], format: 'jwt', addedAt: 1 }));
    await server!.kv.addToSet(APIS_KEY, RESERVED);
    await start([jwtApi(['read']), ledger]);
    assert.deepEqual(
      (await feed()).filter((entry) => entry.type === 'api' && entry.aud === RESERVED).map(({ scope }) => scope),
      ['admin'],
    );
  });

  it('an opaque token for a configured API a scope was taken out of stays inactive at introspection once the scope is put back', async () => {
    const started = await start([jwtApi(['read', 'write']), ledger]);
    await started.accounts.create('rhea', PASSWORD);
    const person = await signIn(new Agent(), OPAQUE_API);
    assert.equal((await introspect(server!.url, RS, person.access_token)).active, true);
    await start([jwtApi(['read', 'write']), { ...ledger, scopes: ['read'] }]);
    assert.equal((await introspect(server!.url, RS, person.access_token)).active, false, 'held before');
    await start([jwtApi(['read', 'write']), ledger]);
    // Before the fix: active again.
    assert.equal((await introspect(server!.url, RS, person.access_token)).active, false, 'an opaque token from before the scope was taken, once it is put back');
  });
});
