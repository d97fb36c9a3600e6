/**
 * "A credential replaced ends what was got with the old one", black box, on every path that can
 * replace one: a client's keys by value (`jwks`) with a key removed, by the operator (admin API) or
 * by the client itself (RFC 7592); its `jwks_uri` moved; its authentication method changed (to stop
 * a secret). Each time, the old credential stops at once and the tokens the client got for itself
 * (client_credentials) end, at introspection at once and in `latchkey/resource-server` within a
 * poll, as for a secret rotated without grace. Adding a key replaces nothing. And a secret rotated
 * out with a grace does not come back with a client made public and then confidential again, and an
 * RFC 7592 update cannot choose the client's secret. An operator without an admin client rotates a
 * leaked secret with `latchkey clients rotate-secret`. See docs/security.md, the endings matrix.
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { eventually } from '../helpers/eventually.js';
import { startJwksHost, type JwksHost } from '../helpers/jwks-host.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { adminJson, API, basic, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const OPS = { id: 'ops', secret: 'ops-admin-client-secret-with-plenty-of-entropy-012' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const SERVICE = { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };

interface Key {
  readonly private: oidc.CryptoKey;
  readonly public: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const pair = await generateKeyPair('RS256');
  return { private: pair.privateKey, public: { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

describe('e2e: a credential replaced ends what was got with the old one', function () {
  this.timeout(90_000);
  let server: TestServer;
  let helper: ResourceServer;
  let adminToken: string;
  let hosts: JwksHost[];

  before(async () => {
    hosts = [await startJwksHost(), await startJwksHost()];
    server = await startServer({
      clients: [machineClient(OPS), machineClient(RS)],
      env: { RESOURCE_SERVERS, REGISTRATION_OPEN: 'true', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
    });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await grantFeed(server, RS.id);
    adminToken = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    for (const host of hosts ?? []) host.server.close();
  });

  const admin = (method: string, path: string, body?: unknown) => adminJson(server.url, adminToken, method, path, body);

  /** An operator's client, granted `read` at the API. */
  async function added(metadata: Record<string, unknown>) {
    const made = await admin('POST', '/clients', { ...SERVICE, ...metadata });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    await server.apis.grant(made.body.client_id!, API, { scopes: ['read'] });
    return made.body;
  }

  /** A client_credentials token got with a private_key_jwt assertion (openid-client), or the error it got. */
  async function tokenWithKey(clientId: string, key: Key): Promise<string> {
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt({ key: key.private, kid: key.public.kid }), {
      execute: [oidc.allowInsecureRequests],
    });
    try {
      return (await oidc.clientCredentialsGrant(config, { scope: 'read', resource: API })).access_token;
    } catch (error) {
      if (error instanceof oidc.ResponseBodyError) return error.error;
      throw error;
    }
  }

  async function tokenWithSecret(clientId: string, secret: string): Promise<string> {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: clientId, secret }) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
    });
    const body = (await response.json()) as { access_token?: string; error?: string };
    return body.access_token ?? body.error!;
  }

  const isToken = (value: string) => value.length > 40;
  async function ended(token: string, which: string) {
    assert.deepEqual(await introspect(server.url, RS, token), { active: false }, `the token got ${which} is still active at introspection`);
    await eventually(() => assert.rejects(helper.verify(`Bearer ${token}`), TokenRejected));
  }
  /** Until the clock's second moves past the ending: tokens of its second count as issued before it. */
  async function nextSecond() {
    const now = Math.floor(Date.now() / 1000);
    while (Math.floor(Date.now() / 1000) <= now) await new Promise((done) => setTimeout(done, 50));
  }
  async function alive(token: string, which: string) {
    assert.equal((await introspect(server.url, RS, token)).active, true, `the token got ${which} ended`);
    await helper.verify(`Bearer ${token}`);
  }

  it("keys by value replaced by an operator (admin API PUT) with the leaked one gone: the key stops at once and the client's own tokens end; a key only added ends nothing", async () => {
    const [leaked, next] = [await newKey('leaked'), await newKey('next')];
    const metadata = { client_id: 'keyed', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [leaked.public] } };
    await added(metadata);
    const stolen = await tokenWithKey('keyed', leaked);
    assert.ok(isToken(stolen), stolen);

    // The next key published beside the leaked one: a routine rotation's first step replaces nothing.
    assert.equal((await admin('PUT', '/clients/keyed', { ...SERVICE, ...metadata, jwks: { keys: [leaked.public, next.public] } })).status, 200);
    await alive(stolen, 'before a key was added');

    // The leaked key removed (its kid written otherwise in the next key changes nothing: keys are known by their thumbprint).
    const replaced = await admin('PUT', '/clients/keyed', { ...SERVICE, ...metadata, jwks: { keys: [next.public] } });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
    assert.equal(await tokenWithKey('keyed', leaked), 'invalid_client', 'the removed key still authenticates');
    await ended(stolen, 'with the removed key');
    await nextSecond();
    await alive(await tokenWithKey('keyed', next), 'with the key kept');
  });

  it('keys by value replaced by the client itself (RFC 7592) end its own tokens too; a client_secret of its own choosing is refused, its secret unchanged', async () => {
    const [leaked, next] = [await newKey('leaked'), await newKey('next')];
    const metadata = { ...SERVICE, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [leaked.public] } };
    const registered = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    assert.equal(registered.status, 201);
    const { client_id: clientId, registration_access_token: registrationToken, registration_client_uri: uri } = (await registered.json()) as Record<string, string>;
    await server.apis.grant(clientId!, API, { scopes: ['read'] });
    const stolen = await tokenWithKey(clientId!, leaked);
    assert.ok(isToken(stolen), stolen);

    const update = await fetch(uri!, {
      method: 'PUT',
      headers: { authorization: `Bearer ${registrationToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...metadata, client_id: clientId, jwks: { keys: [next.public] } }),
    });
    assert.equal(update.status, 200, await update.text());
    assert.equal(await tokenWithKey(clientId!, leaked), 'invalid_client');
    await ended(stolen, 'with the key the client removed');
    await nextSecond();
    await alive(await tokenWithKey(clientId!, next), 'with its new key');

    // A confidential client naming a new secret in its update (RFC 7592 §2.2: the server may refuse): refused, nothing written.
    const confidential = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SERVICE) });
    const own = (await confidential.json()) as Record<string, string>;
    await server.apis.grant(own.client_id!, API, { scopes: ['read'] });
    const chosen = 'a-secret-the-client-chose-for-itself-0123456789abcdef';
    const refused = await fetch(own.registration_client_uri!, {
      method: 'PUT',
      headers: { authorization: `Bearer ${own.registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...SERVICE, client_id: own.client_id, client_secret: chosen }),
    });
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: string }).error, 'invalid_request');
    assert.equal(await tokenWithSecret(own.client_id!, chosen), 'invalid_client', 'the secret the client chose authenticates it');
    assert.ok(isToken(await tokenWithSecret(own.client_id!, own.client_secret!)), 'its secret changed');
  });

  it("its jwks_uri moved to another URL: the keys published at the old one stop at once and the client's own tokens end", async () => {
    const [leaked, next] = [await newKey('leaked'), await newKey('next')];
    hosts[0]!.keys = [leaked.public];
    hosts[1]!.keys = [leaked.public, next.public];
    await added({ client_id: 'moved', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: hosts[0]!.url });
    const stolen = await tokenWithKey('moved', leaked);
    assert.ok(isToken(stolen), stolen);
    const moved = await admin('PUT', '/clients/moved', { ...SERVICE, client_id: 'moved', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: hosts[1]!.url });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    await ended(stolen, 'with a key of the old jwks_uri');
    await nextSecond();
    await alive(await tokenWithKey('moved', next), 'with a key of the new jwks_uri');
  });

  it("its authentication method changed from a secret to private_key_jwt (to stop the secret): the secret stops at once and the client's own tokens end", async () => {
    const key = await newKey('key');
    const { client_secret: secret } = await added({ client_id: 'switched', token_endpoint_auth_method: 'client_secret_basic' });
    const stolen = await tokenWithSecret('switched', secret!);
    assert.ok(isToken(stolen), stolen);
    const switched = await admin('PUT', '/clients/switched', { ...SERVICE, client_id: 'switched', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.public] } });
    assert.equal(switched.status, 200, JSON.stringify(switched.body));
    assert.equal(await tokenWithSecret('switched', secret!), 'invalid_client');
    await ended(stolen, 'with the secret');
    await nextSecond();
    await alive(await tokenWithKey('switched', key), 'with the key');
  });

  it("latchkey clients rotate-secret --grace 0 (an operator without an admin client): prints the new secret once, the old one stops at once and the client's own tokens end", async () => {
    const { client_secret: leaked } = await added({ client_id: 'cli-rotated', token_endpoint_auth_method: 'client_secret_basic' });
    const stolen = await tokenWithSecret('cli-rotated', leaked!);
    assert.ok(isToken(stolen), stolen);
    const run = await latchkey(server.env, ['clients', 'rotate-secret', 'cli-rotated', '--grace', '0']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /^latchkey: acting on /);
    const printed = JSON.parse(run.stdout) as { client_id: string; client_secret: string; previous_secret_valid_for: number };
    assert.equal(printed.client_id, 'cli-rotated');
    assert.equal(printed.previous_secret_valid_for, 0);
    assert.equal(await tokenWithSecret('cli-rotated', leaked!), 'invalid_client', 'the leaked secret still authenticates');
    await ended(stolen, 'with the leaked secret');
    await nextSecond();
    await alive(await tokenWithSecret('cli-rotated', printed.client_secret), 'with the new secret');
    // A grace longer than the configured one is cut to it, and said so on stderr (not only in the answer).
    const long = await latchkey(server.env, ['clients', 'rotate-secret', 'cli-rotated', '--grace', '99999999']);
    assert.equal(long.status, 0, long.stderr);
    const granted = (JSON.parse(long.stdout) as { previous_secret_valid_for: number }).previous_secret_valid_for;
    assert.ok(granted < 99999999, String(granted));
    assert.match(long.stderr, new RegExp(`^latchkey: --grace 99999999 is longer than registration\\.secretRotationGrace .*: the old secret keeps working ${granted} seconds$`, 'm'));
  });

  it('a secret rotated out with a grace does not authenticate the client again once it was made public and then confidential again', async () => {
    const service = { client_id: 'flipped', token_endpoint_auth_method: 'client_secret_basic' };
    const { client_secret: first } = await added(service);
    const rotated = await admin('POST', '/clients/flipped/secret');
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.ok(isToken(await tokenWithSecret('flipped', first!)), 'the first secret works in its grace');
    const made = (metadata: Record<string, unknown>) => admin('PUT', '/clients/flipped', { client_id: 'flipped', ...metadata });
    assert.equal((await made({ token_endpoint_auth_method: 'none', redirect_uris: ['https://app.example.test/cb'] })).status, 200);
    assert.equal((await made({ ...SERVICE, token_endpoint_auth_method: 'client_secret_basic' })).status, 200);
    assert.equal(await tokenWithSecret('flipped', first!), 'invalid_client', 'the secret rotated out authenticates the client again');
    assert.ok(isToken(await tokenWithSecret('flipped', rotated.body.client_secret!)), 'its current secret works');
  });
});
