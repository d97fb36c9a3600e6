/**
 * The fourteenth fresh-eyes pass at unmodified third-party client libraries and new kinds of clients
 * (docs/security-passes.md, "Looked at in the fourteenth fresh-eyes passes of 2026-12-07: unmodified
 * third-party client libraries and new kinds of clients"). Each library was driven as it is, outside
 * the repository; what it sends is reproduced here by raw HTTP:
 *
 * - Apache's mod_oauth2 (Debian's libapache2-mod-oauth2 3.3.1) as a resource server, `OAuth2TokenVerify
 *   introspect … introspect.auth=client_secret_basic`: it makes the token's `sub` the request's user and
 *   refused every opaque client_credentials token ("Could not determine remote user"), which the same
 *   client's JWT passed: introspection named no `sub` for the opaque form of the token.
 * - git-credential-oauth (Debian's 0.4.2), a native app on a loopback port chosen at each run
 *   (RFC 8252 §7.3), sends `redirect_uri=http://127.0.0.1:<port>` (no path) and a code_verifier of
 *   standard base64 (`+`, `/`, `=`).
 * - keycloak-js 26 (`oidcProvider`), a single-page app: its token requests are `credentials: 'include'`.
 * - token-introspection 3.3 with `access_token` (RFC 7662 §2.1's bearer-authorized introspection).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';
const JWT_API = 'https://jwt-api.example.test/';
const OPAQUE_API = 'https://opaque-api.example.test/';
const SPA = 'http://127.0.0.1:50124';
const MACHINE = { id: 'machine', secret: 'machine-secret-0123456789abcdef0123456789abcdef' };
const INTROSPECTOR = { id: 'introspector', secret: 'introspector-secret-0123456789abcdef0123456789' };

/** RFC 6749 §2.3.1 as mod_oauth2 sends it: the id and secret form-encoded, then base64. */
const basic = ({ id, secret }: { id: string; secret: string }) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const form = (fields: Record<string, string>) => new URLSearchParams(fields);
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

describe('e2e: unmodified client libraries and new kinds of clients (fourteenth pass)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: {
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: JWT_API, scopes: ['jwt.read'], format: 'jwt', grants: [{ client_id: MACHINE.id, scopes: ['jwt.read'] }, { client_id: INTROSPECTOR.id, scopes: [], introspect: true }] },
          { identifier: OPAQUE_API, scopes: ['opaque.read'], format: 'opaque', grants: [{ client_id: MACHINE.id, scopes: ['opaque.read'] }, { client_id: INTROSPECTOR.id, scopes: [], introspect: true }] },
        ]),
      },
      clients: [
        { client_id: MACHINE.id, client_secret: MACHINE.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
        { client_id: INTROSPECTOR.id, client_secret: INTROSPECTOR.secret, grant_types: [], response_types: [], redirect_uris: [] },
        // As `latchkey clients add --native --redirect-uri http://127.0.0.1` registers git-credential-oauth.
        // A single-page app as keycloak-js makes one: its page's URL is its redirect URI.
        { client_id: 'kc-spa', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: [`${SPA}/`] },
        { client_id: 'git-cli', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: ['http://127.0.0.1'] },
      ],
    });
    await server.accounts.create('alice', PASSWORD);
  });
  after(async () => {
    await server?.stop();
  });

  const machineToken = async (resource: string, scope: string): Promise<string> => {
    const answer = await fetch(`${server.issuer}/token`, { method: 'POST', headers: { authorization: basic(MACHINE) }, body: form({ grant_type: 'client_credentials', resource, scope }) });
    assert.equal(answer.status, 200, await answer.clone().text());
    return ((await answer.json()) as { access_token: string }).access_token;
  };
  const introspect = async (token: string, authorization = basic(INTROSPECTOR)) => {
    const answer = await fetch(`${server.issuer}/token/introspection`, { method: 'POST', headers: { authorization }, body: form({ token }) });
    return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
  };

  it("introspection of a client's own opaque token names the client as its sub, as its JWT form and that JWT's introspection do (RFC 9068 §2.2, RFC 6749 §4.4): mod_oauth2 takes sub as the request's user", async () => {
    const opaque = await introspect(await machineToken(OPAQUE_API, 'opaque.read'));
    const jwt = await introspect(await machineToken(JWT_API, 'jwt.read'));
    assert.equal(jwt.body.active, true);
    assert.equal(jwt.body.sub, MACHINE.id, 'the JWT form names the client');
    assert.equal(opaque.status, 200);
    assert.equal(opaque.body.active, true);
    assert.equal(opaque.body.client_id, MACHINE.id);
    assert.equal(opaque.body.sub, MACHINE.id, 'the opaque form names the client too');
    assert.equal(opaque.body.aud, OPAQUE_API);
    assert.equal(opaque.body.scope, 'opaque.read');
  });

  it("introspection of a person's opaque token still names the person, and an inactive token names no one (held)", async () => {
    const agent = new Agent();
    const redirect = 'http://127.0.0.1:50123';
    const verifier = randomBytes(32).toString('base64url');
    const params = form({ client_id: 'git-cli', response_type: 'code', redirect_uri: redirect, scope: 'openid opaque.read', resource: OPAQUE_API, code_challenge: s256(verifier), code_challenge_method: 'S256', state: 's' });
    let page = await agent.follow(`${server.issuer}/auth?${params}`, {}, redirect);
    page = await signInSteps(agent, page, { username: 'alice', password: PASSWORD, stopAt: redirect });
    const code = new URL(page.url).searchParams.get('code')!;
    const answer = await fetch(`${server.issuer}/token`, { method: 'POST', body: form({ grant_type: 'authorization_code', client_id: 'git-cli', code, redirect_uri: redirect, code_verifier: verifier, resource: OPAQUE_API }) });
    assert.equal(answer.status, 200, await answer.clone().text());
    const { access_token } = (await answer.json()) as { access_token: string };
    const person = await introspect(access_token);
    assert.equal(person.body.active, true);
    assert.equal(person.body.client_id, 'git-cli');
    assert.notEqual(person.body.sub, 'git-cli');
    assert.equal(typeof person.body.sub, 'string');
    const unknown = await introspect(randomBytes(33).toString('base64url'));
    assert.deepEqual(unknown.body, { active: false });
  });

  it('a native app registered with http://127.0.0.1 (no path) gets its code at any port, without a path, as git-credential-oauth asks; http://127.0.0.1/ registered is another string (held, RFC 8252 §7.3, RFC 6749 §3.1.2.3)', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const ask = (redirect: string) => form({ client_id: 'git-cli', response_type: 'code', redirect_uri: redirect, scope: 'openid', code_challenge: s256(verifier), code_challenge_method: 'S256', state: 'x' });
    const accepted = await fetch(`${server.issuer}/auth?${ask('http://127.0.0.1:43615')}`, { redirect: 'manual' });
    assert.equal(accepted.status, 303);
    assert.match(accepted.headers.get('location')!, /\/interaction\//);
    const refused = await fetch(`${server.issuer}/auth?${ask('http://127.0.0.1:43615/')}`, { redirect: 'manual' });
    assert.equal(refused.status, 400, 'the code never goes to a redirect URI other than the registered string');
    assert.match(await refused.text(), /redirect_uri did not match any of the client&#39;s registered redirect_uris/);
  });

  it("git-credential-oauth 0.4.2's code_verifier of standard base64 ('+', '/', '=') is refused invalid_request at the token endpoint, saying why (held, RFC 7636 §4.1: the verifier is of unreserved characters only)", async () => {
    const agent = new Agent();
    const redirect = 'http://127.0.0.1:40591';
    // As it makes them: base64.StdEncoding of 32 random bytes, always '='-padded; its challenge is S256 of that string.
    let bad = randomBytes(32).toString('base64');
    while (!/[+/]/.test(bad)) bad = randomBytes(32).toString('base64');
    const params = form({ client_id: 'git-cli', response_type: 'code', redirect_uri: redirect, scope: 'openid offline_access', code_challenge: s256(bad), code_challenge_method: 'S256', state: 'y' });
    let page = await agent.follow(`${server.issuer}/auth?${params}`, {}, redirect);
    page = await signInSteps(agent, page, { username: 'alice', password: PASSWORD, stopAt: redirect });
    const code = new URL(page.url).searchParams.get('code')!;
    const answer = await fetch(`${server.issuer}/token`, { method: 'POST', body: form({ grant_type: 'authorization_code', client_id: 'git-cli', code, redirect_uri: redirect, code_verifier: bad }) });
    assert.equal(answer.status, 400);
    assert.deepEqual(await answer.json(), { error: 'invalid_request', error_description: 'code_verifier contains invalid characters' });
  });

  it("keycloak-js's credentialed token request (credentials: 'include') is answered without Access-Control-Allow-Credentials, so its page cannot read it (held: no CORS answer allows credentials)", async () => {
    const origin = SPA;
    const preflight = await fetch(`${server.issuer}/token`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), null);
    const answer = await fetch(`${server.issuer}/token`, { method: 'POST', headers: { origin, cookie: 'x=y' }, body: form({ grant_type: 'refresh_token', client_id: 'kc-spa', refresh_token: 'nope' }) });
    assert.equal(answer.status, 400);
    assert.equal(answer.headers.get('access-control-allow-origin'), origin);
    assert.equal(answer.headers.get('access-control-allow-credentials'), null);
  });

  it("introspection authorized by a bearer token (token-introspection's access_token, RFC 7662 §2.1's other way) is refused 401 invalid_token, saying it takes client authentication (held)", async () => {
    const bearer = await machineToken(JWT_API, 'jwt.read');
    const answer = await introspect(await machineToken(OPAQUE_API, 'opaque.read'), `Bearer ${bearer}`);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'invalid_token');
    assert.match(String(answer.body.error_description), /client authentication, not a bearer token/);
  });
});
