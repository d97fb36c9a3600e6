/**
 * Registration, developers and operators, twelfth fresh-eyes pass (docs/security-passes.md, "the
 * authorization model" of 2026-12-07): black box, an outsider at open registration (RFC 7591), a
 * registrant with its registration access token (RFC 7592), an operator at the admin API, and a
 * Client ID Metadata Document's author.
 */
import assert from 'node:assert/strict';
import { documentHost } from '../helpers/document-host.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const OPS = { id: 'ops', secret: 'registration-twelfth-ops-secret-with-entropy-0123' };

/** A JSON object JavaScript cannot read as text: String() of it throws (its toString is no function). */
const UNREADABLE = { toString: 1 };

/** Metadata the registration policy read as text before any type check (a 500 on every path that writes a client, before this pass). */
const UNREADABLE_METADATA: Record<string, Record<string, unknown>> = {
  'token_endpoint_auth_method {"toString":1}': { token_endpoint_auth_method: UNREADABLE },
  'a JWK whose kty is {"toString":1}': { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: UNREADABLE }] } },
  'a JWK whose crv is {"toString":1}': { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: UNREADABLE, x: 'AA', y: 'AA' }] } },
  'a JWK whose n is {"toString":1}': { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'RSA', n: UNREADABLE, e: 'AQAB' }] } },
};

/** A kty no one defines but that names what every object inherits: the policy's table of curves was read by it (a 500 before this pass). */
const INHERITED_KTY = ['constructor', '__proto__', 'toString'];

describe('e2e: registration, developers and operators (twelfth fresh-eyes pass)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let admin: string;
  // A Client ID Metadata Document served on loopback (the server reaches it with private networks allowed).
  const documents = documentHost('openid');

  before(async () => {
    server = await startServer({
      cheapHashing: true,
      env: { REGISTRATION_OPEN: 'true', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '1' },
      clients: [machineClient(OPS)],
    });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(() => server?.stop());

  const web = { redirect_uris: ['https://app.example.test/callback'] };

  async function json(path: string, method: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, string> }> {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  it('client metadata JavaScript cannot read as text (a JSON object whose toString is no function) is invalid_client_metadata on every path that writes a client, and a JWK whose kty names what every object inherits is taken as any unknown kind, never a 500, and an owner that is no string refused: open registration (RFC 7591), RFC 7592, the admin API POST and PUT', async () => {
    const registered = await json('/reg', 'POST', web);
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const added = await adminJson(server.url, admin, 'POST', '/clients', web);
    assert.equal(added.status, 201, JSON.stringify(added.body));
    let token = registered.body.registration_access_token!;
    const everyPath = async (metadata: Record<string, unknown>) => {
      const answers = {
        'RFC 7591': await json('/reg', 'POST', { ...web, ...metadata }),
        'RFC 7592': await json(`/reg/${registered.body.client_id}`, 'PUT', { ...web, ...metadata, client_id: registered.body.client_id }, token),
        'admin API POST': await adminJson(server.url, admin, 'POST', '/clients', { ...web, ...metadata }),
        'admin API PUT': await adminJson(server.url, admin, 'PUT', `/clients/${added.body.client_id}`, { ...web, ...metadata }),
      };
      // An update taken hands over the next registration access token (RFC 7592 §2.2, rotated).
      token = answers['RFC 7592'].body.registration_access_token ?? token;
      return answers;
    };
    for (const [name, metadata] of Object.entries(UNREADABLE_METADATA)) {
      for (const [path, answer] of Object.entries(await everyPath(metadata))) {
        assert.equal(answer.status, 400, `${name}, ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error, 'invalid_client_metadata', `${name}, ${path}: ${JSON.stringify(answer.body)}`);
      }
    }
    // Refused, nothing written: the client reads as registered (its registration access token was not spent).
    const read = await fetch(`${server.url}/reg/${registered.body.client_id}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(read.status, 200);
    assert.equal(((await read.json()) as { token_endpoint_auth_method: string }).token_endpoint_auth_method, 'client_secret_basic');
    // An operator's `owner` names an account (a sub, as the OpenAPI document says): anything else named no one and was stored (201).
    for (const owner of [UNREADABLE, 1, ['x']]) {
      for (const answer of [await adminJson(server.url, admin, 'POST', '/clients', { ...web, owner }), await adminJson(server.url, admin, 'PUT', `/clients/${added.body.client_id}`, { ...web, owner })]) {
        assert.equal(answer.status, 400, `owner ${JSON.stringify(owner)}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error, 'invalid_client_metadata');
      }
    }
    // Such a kty is a kind of key no one defines: taken as any other (RFC 7517 §5: the engine skips it), as "XYZ" is.
    const keyOfKind = (kty: string) => ({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty, crv: 'P-256' }] } });
    const unknown = Object.fromEntries(Object.entries(await everyPath(keyOfKind('XYZ'))).map(([path, answer]) => [path, answer.status]));
    assert.deepEqual(unknown, { 'RFC 7591': 201, 'RFC 7592': 200, 'admin API POST': 201, 'admin API PUT': 200 });
    for (const kty of INHERITED_KTY) {
      const answers = Object.fromEntries(Object.entries(await everyPath(keyOfKind(kty))).map(([path, answer]) => [path, answer.status]));
      assert.deepEqual(answers, unknown, `kty "${kty}"`);
    }
  });

  it('a logo, link, jwks, back-channel or initiate-login URI longer than a list entry may be (2,000 characters) is invalid_client_metadata on every path that writes a client, as a redirect URI is; one of 2,000 is taken', async () => {
    const registered = await json('/reg', 'POST', web);
    let token = registered.body.registration_access_token!;
    const added = await adminJson(server.url, admin, 'POST', '/clients', web);
    for (const name of ['logo_uri', 'policy_uri', 'tos_uri', 'client_uri', 'initiate_login_uri', 'jwks_uri', 'backchannel_logout_uri']) {
      const uri = (length: number) => {
        const start = 'https://app.example.test/';
        return `${start}${'a'.repeat(length - start.length)}`;
      };
      const metadata = (length: number) => ({ ...web, [name]: uri(length), ...(name === 'jwks_uri' ? { token_endpoint_auth_method: 'private_key_jwt' } : {}) });
      const answers = {
        'RFC 7591': await json('/reg', 'POST', metadata(2001)),
        'RFC 7592': await json(`/reg/${registered.body.client_id}`, 'PUT', { ...metadata(2001), client_id: registered.body.client_id }, token),
        'admin API POST': await adminJson(server.url, admin, 'POST', '/clients', metadata(2001)),
        'admin API PUT': await adminJson(server.url, admin, 'PUT', `/clients/${added.body.client_id}`, metadata(2001)),
      };
      for (const [path, answer] of Object.entries(answers)) {
        assert.equal(answer.status, 400, `${name}, ${path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        assert.equal(answer.body.error, 'invalid_client_metadata', `${name}, ${path}`);
        assert.match(answer.body.error_description!, new RegExp(`^${name}: longer than 2000 characters`), `${name}, ${path}`);
      }
      const taken = await json(`/reg/${registered.body.client_id}`, 'PUT', { ...metadata(2000), client_id: registered.body.client_id }, token);
      assert.equal(taken.status, 200, `${name}: ${JSON.stringify(taken.body)}`);
      token = taken.body.registration_access_token!;
    }
  });

  it('a Client ID Metadata Document holding such metadata is refused on the error page (400, "Unknown application"), never a 500', async () => {
    const authorize = () => {
      const url = new URL(`${server.issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: `${documents.base}/agent.json`,
        redirect_uri: `${documents.base}/callback`,
        response_type: 'code',
        scope: 'openid',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      }).toString();
      return fetch(url, { redirect: 'manual' });
    };
    /** The answer once the document was read again as it is served now (the cached copy lives a second at most): polled until it is no longer `was`. */
    const readAgain = async (was: number) => {
      let response = await authorize();
      for (let tries = 0; tries < 50 && response.status === was; tries += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        response = await authorize();
      }
      return response;
    };
    // The document as served: accepted (on to the sign-in page).
    assert.equal((await authorize()).status, 303);
    for (const [name, metadata] of Object.entries(UNREADABLE_METADATA)) {
      // A document's client names its keys' location (jwks_uri); the keys in `jwks` are still read.
      documents.change(metadata.token_endpoint_auth_method === 'private_key_jwt' ? { ...metadata, jwks_uri: `${documents.base}/jwks.json` } : metadata);
      const response = await readAgain(303);
      assert.equal(response.status, 400, `${name}: ${response.status}`);
      assert.match(await response.text(), /Unknown application/, name);
      // Served as before, accepted again: the next case is read afresh, not a refusal kept.
      documents.change(undefined);
      assert.equal((await readAgain(400)).status, 303, name);
    }
  });
});
