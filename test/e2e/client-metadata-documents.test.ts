/**
 * Client ID Metadata Documents, black box: Latchkey (real Redis) fetches a client's document from a
 * local server when a client_id URL first appears at the authorization endpoint, and refuses it,
 * with the error page and never a 500, when it is not the client's (client_id mismatch), too big,
 * too slow, holds a secret or symmetric authentication, or does not list the redirect URI; a
 * private address is refused when private networks are not allowed; and the cache follows the
 * document's max-age. The full MCP flow with a browser is in mcp-server.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { createOutboundFetch } from '../../src/http/outbound.js';
import { ClientMetadataDocuments, DocumentRefused } from '../../src/registration/client-metadata-documents.js';
import { ClientMetadataDocumentCache } from '../../src/store/client-metadata-documents.js';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const PASSWORD = 'a passphrase for the metadata document test';

interface Served {
  body: string;
  headers?: Record<string, string>;
  /** Never answer. */
  hang?: boolean;
}

describe('client ID metadata documents', () => {
  let server: TestServer;
  let documents: http.Server;
  let base: string;
  const served = new Map<string, Served>();
  const hits = new Map<string, number>();

  const redirectUri = 'http://127.0.0.1:9/callback';
  const document = (path: string, extra: Record<string, unknown> = {}) => ({
    client_id: `${base}${path}`,
    client_name: 'Agent',
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'none',
    ...extra,
  });
  const serve = (path: string, body: unknown, extra: Omit<Served, 'body'> = {}) => {
    served.set(path, { body: typeof body === 'string' ? body : JSON.stringify(body), ...extra });
    return `${base}${path}`;
  };

  /** GET /auth for a client_id, as a browser would (no redirects followed). */
  async function authorize(clientId: string, redirect = redirectUri): Promise<Response> {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL(`${server.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: clientId,
      redirect_uri: redirect,
      response_type: 'code',
      scope: 'openid',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state: 'xyz',
    }).toString();
    return fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
  }

  /** The request reached the sign-in step: the client was accepted. */
  async function assertAccepted(clientId: string) {
    const response = await authorize(clientId);
    assert.equal(response.status, 303, await response.text());
    assert.match(response.headers.get('location') ?? '', /\/interaction\//);
  }

  /** The error page (by default the unknown application's), with its status and the reason in it. */
  async function assertRefused(response: Response, reason: RegExp, page = /registration could not be checked/) {
    const html = await response.text();
    assert.equal(response.status, 400, html);
    assert.match(response.headers.get('content-type') ?? '', /text\/html/);
    assert.match(html, reason);
    assert.match(html, page);
    assert.doesNotMatch(html, /at .*\.(ts|js):\d+/, 'no stack trace');
  }

  before(async () => {
    documents = http.createServer((req, res) => {
      const path = req.url ?? '/';
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const entry = served.get(path);
      if (!entry) return res.writeHead(404).end();
      if (entry.hang) return;
      res.writeHead(200, { 'content-type': 'application/json', ...entry.headers }).end(entry.body);
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(documents.address() as AddressInfo).port}`;
    server = await startServer({
      ownRedis: true,
      env: {
        // The documents are served from loopback over http: allowed only with private networks.
        OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
        CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1',
        CLIENT_METADATA_DOCUMENTS_TIMEOUT_MS: '500',
        // `api` introspects the tokens of both APIs (tokens.ts).
        RESOURCE_SERVERS,
      },
      clients: [machineClient(RS)],
    });
    await server.accounts.create('nina', PASSWORD);
  });
  after(async () => {
    await server?.stop();
    documents.closeAllConnections();
    documents.close();
  });

  it('advertises client_id_metadata_document_supported in discovery', async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.equal(metadata.client_id_metadata_document_supported, true);
  });

  it('accepts a client by its document, fetched once while cached, by every instance sharing the store', async () => {
    const clientId = serve('/good.json', document('/good.json'), { headers: { 'cache-control': 'max-age=600' } });
    await assertAccepted(clientId);
    await assertAccepted(clientId);
    assert.equal(hits.get('/good.json'), 1);
    // Another instance on the same store: it reads the cached document, and does not fetch it.
    const otherInstance = new ClientMetadataDocuments(
      server.config.clientMetadataDocuments,
      createOutboundFetch({ allowPrivateNetworks: true }),
      new ClientMetadataDocumentCache(server.kv, 3600),
      { authMethods: ['none'], scopes: ['openid'], privilegedScopes: [] },
    );
    assert.equal((await otherInstance.metadata(clientId)).client_name, 'Agent');
    assert.equal(hits.get('/good.json'), 1);
  });

  it('refuses a document whose client_id is not its URL', async () => {
    const clientId = serve('/mismatch.json', document('/other.json'));
    await assertRefused(await authorize(clientId), /client_id in the client metadata document is not the URL/);
  });

  it('refuses a document over the size limit, and one that does not arrive in time', async () => {
    const big = serve('/big.json', document('/big.json', { client_name: 'x'.repeat(6000) }));
    await assertRefused(await authorize(big), /could not be fetched: response .*exceeds 5120/);
    const slow = serve('/slow.json', '', { hang: true });
    await assertRefused(await authorize(slow), /could not be fetched: .* did not answer in time/);
    // The refusal is remembered (cacheMin, 1 s here; 60 s for an instance of its own, so that a loaded
    // runner reads it again within it): naming the slow client again costs its server nothing.
    const remembering = new ClientMetadataDocuments(
      { ...server.config.clientMetadataDocuments, cacheMin: 60 },
      createOutboundFetch({ allowPrivateNetworks: true }),
      new ClientMetadataDocumentCache(server.kv, 3600),
      { authMethods: ['none'], scopes: ['openid'], privilegedScopes: [] },
    );
    const slower = serve('/slower.json', '', { hang: true });
    await assert.rejects(remembering.metadata(slower), (error: Error) => error instanceof DocumentRefused && /did not answer in time/.test(error.message));
    await assert.rejects(remembering.metadata(slower), (error: Error) => error instanceof DocumentRefused && /did not answer in time/.test(error.message));
    assert.equal(hits.get('/slower.json'), 1);
  });

  it('refuses a redirect_uri the document does not list', async () => {
    const clientId = serve('/redirect.json', document('/redirect.json'));
    await assertRefused(await authorize(clientId, 'https://attacker.example/callback'), /redirect_uri did not match/, /Unsafe return address/);
  });

  it('refuses a document with a client secret, shared-secret authentication or an HMAC algorithm', async () => {
    const secret = serve('/secret.json', document('/secret.json', { client_secret: 'shh' }));
    await assertRefused(await authorize(secret), /must not hold a client secret/);
    const basic = serve('/basic.json', document('/basic.json', { token_endpoint_auth_method: 'client_secret_basic' }));
    await assertRefused(await authorize(basic), /authenticates with &quot;none&quot; or &quot;private_key_jwt&quot;/);
    const hmac = serve('/hmac.json', document('/hmac.json', { id_token_signed_response_alg: 'HS256' }));
    await assertRefused(await authorize(hmac), /needs a shared secret/);
  });

  it('refuses a document that breaks the registration policy, or asks for an operator-only scope', async () => {
    const wild = serve('/wild.json', document('/wild.json', { redirect_uris: ['http://app.example/cb'] }));
    await assertRefused(await authorize(wild), /use https/);
    const admin = serve('/admin.json', document('/admin.json', { scope: 'openid admin' }));
    await assertRefused(await authorize(admin), /granted only by an operator/);
  });

  it("a refused document's own words are not repeated on the error page, which names the member and its rule; the JSON error keeps the value for its developer (content injection, CWE-74; security-passes.md, ninth passes, the letter of the specs: leftovers)", async () => {
    const words = 'Your account is locked call 1-800-555-0100';
    const cases: [string, Record<string, unknown>, string, string][] = [
      ['/words-name.json', { client_name: `Latchkey ${words}` }, 'client_name', words],
      ['/words-scope.json', { scope: `openid ${words.replaceAll(' ', '-')}` }, 'scope', words.replaceAll(' ', '-')],
      ['/words-redirect.json', { redirect_uris: [redirectUri, `https://elsewhere.example/${words.replaceAll(' ', '-')}`] }, 'redirect_uris', words.replaceAll(' ', '-')],
      ['/words-logout.json', { post_logout_redirect_uris: [`https://elsewhere.example/${words.replaceAll(' ', '-')}`] }, 'post_logout_redirect_uris', words.replaceAll(' ', '-')],
      ['/words-method.json', { token_endpoint_auth_method: words }, 'token_endpoint_auth_method', words],
      ['/words-alg.json', { [`${words.replaceAll(' ', '_')}_alg`]: 'HS256' }, '_alg', words.replaceAll(' ', '_')],
    ];
    for (const [path, extra, field, value] of cases) {
      const clientId = serve(path, document(path, extra));
      const page = await authorize(clientId);
      const html = await page.text();
      assert.equal(page.status, 400, html);
      assert.match(html, /registration could not be checked/);
      assert.ok(!html.includes(value) && !html.includes(value.replaceAll('-', ' ')) && !html.includes('call 1-800'), `${path}: the page repeats the document's words: ${html}`);
      assert.ok(html.includes(field), `${path}: the page names ${field}: ${html}`);
      // The same refusal (cached) as JSON, where the developer reads it: the value is named there.
      const pushed = await fetch(`${server.issuer}/request`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSwSsqqM', code_challenge_method: 'S256' }),
      });
      const refusal = (await pushed.json()) as { error: string; error_description: string };
      assert.equal(refusal.error, 'invalid_client', JSON.stringify(refusal));
      assert.ok(refusal.error_description.includes(value), `${path}: the JSON error names the value: ${refusal.error_description}`);
    }
  });

  it("the sign-in page names the document's domain beside the name it gave itself, as the consent page does: a document naming itself like another app was 'Sign in to continue to Notes' and nothing else (security-passes.md, eighth passes, the web pages)", async () => {
    const clientId = serve('/notes.json', document('/notes.json', { client_name: 'Notes' }));
    const answer = await authorize(clientId);
    assert.equal(answer.status, 303);
    const page = await fetch(new URL(answer.headers.get('location')!, server.issuer), { headers: { accept: 'text/html', cookie: answer.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ') } });
    const html = await page.text();
    assert.equal(page.status, 200, html);
    assert.match(html, /to continue to <strong><bdi>Notes<\/bdi><\/strong>/);
    assert.ok(html.includes(`An app from <strong><bdi>${new URL(base).host}</bdi></strong>`), html);
  });

  it("refuses a document whose redirect URIs leave its own origin: the consent page's domain is where the code goes (CIMD §redirect_uri relationship)", async () => {
    const foreign = serve('/foreign.json', document('/foreign.json', { redirect_uris: ['https://elsewhere.example/cb'] }));
    await assertRefused(await authorize(foreign, 'https://elsewhere.example/cb'), /on its own origin/);
    const logout = serve('/logout.json', document('/logout.json', { post_logout_redirect_uris: ['https://elsewhere.example/out'] }));
    await assertRefused(await authorize(logout), /post_logout_redirect_uris: one is not on the document&#39;s own origin/);
    // Its own origin and loopback are the document's: the request goes on to the login page.
    const own = serve('/own.json', document('/own.json', { redirect_uris: [`${base}/cb`, redirectUri] }));
    assert.equal((await authorize(own, `${base}/cb`)).status, 303);
  });

  it('refuses a client_id whose document is not there, or not JSON', async () => {
    await assertRefused(await authorize(`${base}/missing.json`), /could not be fetched: HTTP 404/);
    await assertRefused(await authorize(serve('/html.json', '<html>')), /is not JSON/);
  });

  it('refuses private addresses when private networks are not allowed, before connecting', async () => {
    const guarded = new ClientMetadataDocuments(
      server.config.clientMetadataDocuments,
      createOutboundFetch({ allowPrivateNetworks: false }),
      new ClientMetadataDocumentCache(server.kv, 3600),
      { authMethods: ['none'], scopes: ['openid'], privilegedScopes: [] },
    );
    const port = new URL(base).port;
    serve('/private.json', document('/private.json'));
    for (const url of [`https://127.0.0.1:${port}/private.json`, `https://localhost:${port}/private.json`]) {
      await assert.rejects(guarded.metadata(url), (error: Error) => error instanceof DocumentRefused && /private or special-use address/.test(error.message));
    }
    assert.equal(hits.get('/private.json'), undefined);
  });

  it("a client whose document disappeared: its access tokens are inactive at introspection, JWT and opaque, and its refresh is refused, once the cached copy expires", async () => {
    const clientId = serve('/vanishing.json', document('/vanishing.json', { grant_types: ['authorization_code', 'refresh_token'] }), { headers: { 'cache-control': 'max-age=1' } });
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    /** A code flow of the client for `resource`, signed in as nina (single sign-on after the first). */
    const tokensFor = async (resource: string) => {
      const { page, verifier } = await startAuthorization(agent, config, redirectUri, { scope: 'openid offline_access read', resource, prompt: 'consent' });
      const back = await signInSteps(agent, page, { username: 'nina', password: PASSWORD, stopAt: redirectUri });
      assert.ok(back.url.startsWith(redirectUri), `expected the redirect, got ${back.status} ${back.url}`);
      return oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier }, { resource });
    };
    const jwt = await tokensFor(API);
    const opaque = await tokensFor(OPAQUE_API);
    assert.equal(jwt.access_token.split('.').length, 3);
    assert.equal(opaque.access_token.split('.').length, 1);
    assert.equal((await introspect(server.url, RS, jwt.access_token)).active, true);
    assert.equal((await introspect(server.url, RS, opaque.access_token)).active, true);

    served.delete('/vanishing.json');
    await eventually(async () => assert.equal((await introspect(server.url, RS, jwt.access_token)).active, false), 50, 200);
    const answer = await tokenEndpoint(server.url, '/token/introspection', RS, opaque.access_token);
    assert.equal(answer.status, 200, `the API is answered, not told invalid_client: ${JSON.stringify(answer.body)}`);
    assert.deepEqual(answer.body, { active: false });
    await assert.rejects(oidc.refreshTokenGrant(config, jwt.refresh_token!, { resource: API }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError, String(error));
      assert.equal(error.error, 'invalid_client');
      return true;
    });
  });

  it("a document that changes between the authorization and the token request holds the code to the document as it is now: its redirect URI dropped, or confidential authentication claimed, and the code gets no tokens", async () => {
    const path = '/changing.json';
    const clientId = serve(path, document(path), { headers: { 'cache-control': 'max-age=1' } });
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    /** A code of the client (nina signed in), not yet redeemed. */
    const codeFor = async () => {
      const { page, verifier } = await startAuthorization(agent, config, redirectUri, { scope: 'openid', prompt: 'consent' });
      const back = await signInSteps(agent, page, { username: 'nina', password: PASSWORD, stopAt: redirectUri });
      assert.ok(back.url.startsWith(redirectUri), `expected the redirect, got ${back.status} ${back.url}`);
      return { callback: new URL(back.url), verifier };
    };
    const redeem = (code: { callback: URL; verifier: string }) => oidc.authorizationCodeGrant(config, code.callback, { pkceCodeVerifier: code.verifier });
    const refusedWith = (expected: string) => (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError, String(error));
      assert.equal(error.error, expected, error.message);
      return true;
    };

    // The redirect URI the code went to is no longer in the document when the code is redeemed.
    const moved = await codeFor();
    serve(path, document(path, { redirect_uris: ['http://127.0.0.1:9/moved'] }), { headers: { 'cache-control': 'max-age=1' } });
    await eventually(async () => assertRefused(await authorize(clientId), /redirect_uri did not match/, /Unsafe return address/), 50, 200);
    await assert.rejects(redeem(moved), refusedWith('invalid_grant'));

    // Back as it was: a code; then the document says the client authenticates with a key (confidential).
    serve(path, document(path), { headers: { 'cache-control': 'max-age=1' } });
    await eventually(async () => assertAccepted(clientId), 50, 200);
    const keyed = await codeFor();
    serve(path, document(path, { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${base}/keys.json` }), { headers: { 'cache-control': 'max-age=1' } });
    // Once the cached copy expired, the token endpoint wants the key (a made-up refresh token: invalid_grant before, invalid_client after).
    await eventually(async () => {
      const answer = await fetch(`${server.url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'made-up', client_id: clientId }) });
      assert.equal(answer.status, 401, await answer.text());
    }, 50, 200);
    await assert.rejects(redeem(keyed), refusedWith('invalid_client'));
  });

  it('a document asking for the device grant gets no user code: a metadata document client acts through the code flow only (RFC 8628 §5.4: remote phishing needs a client the person cannot see)', async () => {
    const path = '/device-agent.json';
    const clientId = serve(path, document(path, { application_type: 'native', grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'] }));
    const metadata = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as { device_authorization_endpoint: string };
    const answer = await fetch(metadata.device_authorization_endpoint, { method: 'POST', body: new URLSearchParams({ client_id: clientId, scope: 'openid' }) });
    const body = (await answer.json()) as Record<string, unknown>;
    assert.equal(answer.status, 400, JSON.stringify(body));
    assert.equal(body.error, 'unauthorized_client');
    assert.equal(body.user_code, undefined);
  });

  it('reads a changed document again only after its max-age', async () => {
    const clientId = serve('/cached.json', document('/cached.json'), { headers: { 'cache-control': 'max-age=10' } });
    await assertAccepted(clientId);
    // The client moves its redirect URI: until the cached document expires, the old one still works.
    serve('/cached.json', document('/cached.json', { redirect_uris: ['http://127.0.0.1:9/moved'] }), { headers: { 'cache-control': 'max-age=10' } });
    await assertAccepted(clientId);
    assert.equal(hits.get('/cached.json'), 1);
    await eventually(async () => assertRefused(await authorize(clientId), /redirect_uri did not match/, /Unsafe return address/), 100, 200);
    assert.equal(hits.get('/cached.json'), 2);
  });
});
