/**
 * Red team, eighth endings pass (docs/security-passes.md, "Looked at in the eighth endings pass").
 *
 * A scope taken from a client's `scope` metadata (an operator's admin API PUT, or the client itself
 * with RFC 7592) ended the person's tokens carrying it at introspection only: an API verifying JWTs
 * locally and following the revocation feed (latchkey/resource-server) kept accepting them, scope
 * and all, for their whole lifetime. The narrowing now puts a scoped
 * `delegated` entry on the feed: the client's person tokens (carrying `gid`) issued up to now that
 * carry the scope taken away.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { scopesTaken } from '../../src/provider/client-endings.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { frontChannel } from '../helpers/front-channel.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { acceptedBy, adminJson, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'eighth endings pass test password';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const WEB = { id: 'narrowed-web', secret: 'narrowed-web-secret-with-plenty-of-entropy-0123' };
const METADATA = {
  client_id: WEB.id,
  client_secret: WEB.secret,
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  scope: 'openid offline_access read write',
};


describe('e2e: red team, eighth endings pass', function () {
  this.timeout(60_000);
  let server: TestServer;
  let helper: ResourceServer;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [machineClient(RS), machineClient(OPS)], env: { RESOURCE_SERVERS, REGISTRATION_OPEN: 'true' } });
    await server.accounts.create('rhea', PASSWORD);
    await grantFeed(server, RS.id);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.clients.add({ ...METADATA });
    config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
  });

  async function signIn(scope = 'openid offline_access read write') {
    const flow = await frontChannel(config, {
      redirectUri: REDIRECT,
      username: 'rhea',
      password: PASSWORD,
      params: { scope, resource: API, prompt: 'consent' },
      agent: new Agent(),
    });
    return oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
  }

  it("a scope an operator took from a client's metadata (admin API PUT) ends the person's JWTs carrying it at latchkey/resource-server too, not only at introspection; a refresh gets a token without it, which is accepted", async () => {
    const kept = (await signIn('openid read')).access_token; // a sign-in asking for what the client keeps
    const tokens = await signIn();
    const wide = tokens.access_token;
    assert.ok(String(decodeJwt(wide).scope).split(' ').includes('write'), String(decodeJwt(wide).scope));
    await helper.sync();
    assert.equal(await acceptedBy(helper, wide), true);

    // The operator, at the admin API.
    const admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const { client_id: _id, client_secret: _secret, ...narrowed } = METADATA;
    const put = await adminJson(server.url, admin, 'PUT', `/clients/${WEB.id}`, { ...narrowed, scope: 'openid offline_access read' });
    assert.equal(put.status, 200, JSON.stringify(put.body));

    assert.equal((await introspect(server.url, RS, wide)).active, false, 'introspection (held before)');
    await helper.sync();
    // Before the fix: true, for the token's whole lifetime.
    assert.equal(await acceptedBy(helper, wide), false, 'a JWT carrying the scope taken away, at an API that follows the feed');
    assert.equal(await acceptedBy(helper, kept), true, 'a JWT of the client within what it keeps, issued before');
    assert.equal((await introspect(server.url, RS, kept)).active, true);

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: API });
    const narrow = refreshed.access_token;
    assert.ok(!String(decodeJwt(narrow).scope).split(' ').includes('write'), String(decodeJwt(narrow).scope));
    assert.equal((await introspect(server.url, RS, narrow)).active, true);
    await helper.sync();
    assert.equal(await acceptedBy(helper, narrow), true, 'a token within what the client keeps, even of the same second');
  });

  it("a client narrowing its own `scope` with RFC 7592 puts the scopes it gave up on the feed, as an operator's narrowing does", async () => {
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [REDIRECT], scope: 'openid email profile' }),
    });
    assert.equal(registered.status, 201);
    const client = (await registered.json()) as { client_id: string; registration_access_token: string; registration_client_uri: string };
    const feedToken = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const feed = async (after?: string) =>
      (await (await fetch(`${server.url}/revocations${after ? `?after=${after}` : ''}`, { headers: { authorization: `Bearer ${feedToken}` } })).json()) as { entries: Record<string, unknown>[]; cursor: string | null };
    const start = await feed();
    const put = await fetch(client.registration_client_uri, {
      method: 'PUT',
      headers: { authorization: `Bearer ${client.registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: client.client_id, redirect_uris: [REDIRECT], scope: 'openid profile' }),
    });
    assert.equal(put.status, 200, await put.text());
    const { entries } = await feed(start.cursor ?? undefined);
    const ours = entries.filter((entry) => entry.type === 'delegated' && entry.client_id === client.client_id);
    assert.deepEqual([...new Set(ours.map((entry) => entry.scope))], ['email']);
  });

  it('the scopes a change of `scope` metadata takes: those before and not after; every scope offered when it registered none before; none when it registers none after', async () => {
    const offered = async () => ['openid', 'email', 'read', 'write'];
    assert.deepEqual(await scopesTaken({ scope: 'openid read write' }, { scope: 'openid read' }, offered), ['write']);
    assert.deepEqual(await scopesTaken({}, { scope: 'openid read' }, offered), ['email', 'write']);
    assert.deepEqual(await scopesTaken({ scope: 'openid read' }, {}, offered), []);
    assert.deepEqual(await scopesTaken({ scope: 'openid' }, { scope: 'openid read' }, offered), []);
  });
});
