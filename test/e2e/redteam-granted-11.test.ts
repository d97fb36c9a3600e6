/**
 * The red team's eleventh pass at "Latchkey hands out more than was granted" (2026-12-03), black
 * box. Nothing was found; what no earlier test performed is pinned here (docs/security-passes.md, "Looked
 * at in the eleventh granting pass"): what a client adds at the code exchange, an ID token or a
 * refresh token where an access token belongs (userinfo, another client's or an API's
 * introspection), claims asked with a language tag (OIDC Core §5.2, §5.5), near misses of a
 * post-logout redirect URI and another client's, Latchkey's own account-page client asked for more
 * than `openid`, a person's token at Latchkey's own pages and privileged APIs, and a `client_id`
 * chosen at open registration (an operator's client's, our own pages').
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, basic, introspect, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'red team granted eleven passphrase';
const REDIRECT = 'https://notes.example.test/callback';
const NOTES_BYE = 'https://notes.example.test/bye';
const OTHER_BYE = 'https://other.example.test/bye';
const NOTES: ClientCredentials = { id: 'notes', secret: 'notes-client-secret-with-plenty-of-entropy-0123456789' };
const OTHER: ClientCredentials = { id: 'other', secret: 'other-client-secret-with-plenty-of-entropy-0123456789' };
/** The APIs' introspector (RESOURCE_SERVERS). */
const RS: ClientCredentials = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
/** A token endpoint answer for a person. */
type Tokens = { access_token: string; id_token: string; refresh_token?: string; scope: string };
const PERSON_CLAIMS = ['email', 'email_verified', 'name', 'given_name', 'family_name'];

describe('e2e: red team, eleventh pass, Latchkey hands out more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;
  let notes: oidc.Configuration;

  before(async () => {
    const code = { grant_types: ['authorization_code', 'refresh_token'] };
    server = await startServer({
      ownRedis: true,
      env: { RESOURCE_SERVERS },
      clients: [
        { client_id: NOTES.id, client_secret: NOTES.secret, redirect_uris: [REDIRECT], scope: 'openid email profile offline_access read write', post_logout_redirect_uris: [NOTES_BYE], ...code },
        { client_id: OTHER.id, client_secret: OTHER.secret, redirect_uris: ['https://other.example.test/callback'], post_logout_redirect_uris: [OTHER_BYE], ...code },
        machineClient(RS),
      ],
    });
    notes = await oidc.discovery(new URL(server.issuer), NOTES.id, NOTES.secret, oidc.ClientSecretBasic(NOTES.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => server?.stop());

  /** `username` (made here) signs in at notes with `params`, allowing what is asked; the browser, the code and its verifier. */
  async function signIn(username: string, params: Record<string, string>): Promise<{ agent: Agent; code: string; verifier: string }> {
    await server.accounts.create(username, PASSWORD, { email: `${username}@example.test`, email_verified: true, name: `${username} Example`, given_name: username });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, notes, REDIRECT, params);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(done.url).searchParams.get('code');
    assert.ok(code, `a code: ${done.status} ${done.url}`);
    return { agent, code, verifier };
  }

  /** notes redeems `code` by raw HTTP, with `extra` parameters beside the ones it must send. */
  async function redeem({ code, verifier }: { code: string; verifier: string }, extra: Record<string, string> = {}): Promise<Tokens> {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(NOTES) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...extra }),
    });
    const body = (await response.json()) as Tokens;
    assert.equal(response.status, 200, JSON.stringify(body));
    return body;
  }

  const userinfo = async (token: string) => {
    const response = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const personClaims = (claims: object) => Object.keys(claims).filter((claim) => PERSON_CLAIMS.includes(claim) || claim.includes('#'));

  it("what a client adds at the code exchange gets it nothing: scope, claims and offline access named there are not the request's (RFC 6749 §4.1.3)", async () => {
    const tokens = await redeem(await signIn('ada', { scope: 'openid' }), { scope: 'openid email profile offline_access', claims: JSON.stringify({ userinfo: { email: null }, id_token: { email: null } }) });
    assert.equal(tokens.scope, 'openid');
    assert.equal(tokens.refresh_token, undefined);
    assert.deepEqual(personClaims(decodeJwt(tokens.id_token)), []);
    const answer = await userinfo(tokens.access_token);
    assert.equal(answer.status, 200);
    assert.deepEqual(personClaims(answer.body), []);
  });

  it("an ID token is no access token, and a refresh token is its client's alone: userinfo refuses the one, introspection tells nobody else of either (RFC 7662 §4)", async () => {
    const tokens = await redeem(await signIn('bea', { scope: 'openid email offline_access read', resource: API }), { resource: API });
    assert.equal((await userinfo(tokens.id_token)).status, 401);
    for (const client of [NOTES, OTHER, RS]) assert.deepEqual(await introspect(server.url, client, tokens.id_token), { active: false }, `${client.id} on the ID token`);
    // The grant holds the API's scope, and the API's introspector is told of its access token, not of the refresh token.
    assert.equal((await introspect(server.url, RS, tokens.access_token)).active, true);
    for (const client of [OTHER, RS]) assert.deepEqual(await introspect(server.url, client, tokens.refresh_token!), { active: false }, `${client.id} on the refresh token`);
    assert.equal((await introspect(server.url, NOTES, tokens.refresh_token!)).active, true);
  });

  it('claims asked with a language tag (name#fr, an essential email#en) are not given past the consented scopes (OIDC Core §5.2, §5.5)', async () => {
    const claims = JSON.stringify({ userinfo: { 'name#fr': null, 'email#en': { essential: true } }, id_token: { 'name#fr': null, 'family_name#de': null } });
    const tokens = await redeem(await signIn('dee', { scope: 'openid', claims, prompt: 'consent' }));
    assert.deepEqual(personClaims(decodeJwt(tokens.id_token)), []);
    assert.deepEqual(personClaims((await userinfo(tokens.access_token)).body), []);
  });

  it("a sign-out sends the browser to no post-logout URI but one its client registered, exactly, and to no other client's (OIDC RP-Initiated Logout §3)", async () => {
    const found = await signIn('eve', { scope: 'openid' });
    const hint = (await redeem(found)).id_token;
    const tries: Record<string, string>[] = [
      { id_token_hint: hint, client_id: OTHER.id, post_logout_redirect_uri: OTHER_BYE },
      { id_token_hint: hint, post_logout_redirect_uri: OTHER_BYE },
      { client_id: OTHER.id, post_logout_redirect_uri: NOTES_BYE },
      { client_id: NOTES.id, post_logout_redirect_uri: `${NOTES_BYE}/` },
      { client_id: NOTES.id, post_logout_redirect_uri: `${NOTES_BYE}?next=https://attacker.example` },
      { client_id: NOTES.id, post_logout_redirect_uri: NOTES_BYE.replace('notes', 'NOTES') },
      { client_id: NOTES.id, post_logout_redirect_uri: `${NOTES_BYE}#x` },
    ];
    for (const query of tries) {
      const page = await found.agent.follow(`${server.issuer}/session/end?${new URLSearchParams(query)}`);
      assert.equal(page.status, 400, `${JSON.stringify({ ...query, id_token_hint: undefined })}: ${page.url}`);
      assert.ok(page.url.startsWith(server.issuer));
      // Nothing was ended, and the page says so (it was titled "Invalid sign-in request").
      assert.match(page.html, /Not signed out/);
      assert.match(page.html, new RegExp(`href="${server.issuer}/session/end"`));
    }
  });

  it("Latchkey's own account-page client is asked for more than openid in vain, silently or not: invalid_scope, no code", async () => {
    const { agent } = await signIn('fay', { scope: 'openid' });
    const callback = `${server.issuer}/account/callback`;
    for (const prompt of [{ prompt: 'none' }, {}] as Record<string, string>[]) {
      const verifier = oidc.randomPKCECodeVerifier();
      const query = new URLSearchParams({ client_id: 'latchkey-account', response_type: 'code', scope: 'openid email profile offline_access', redirect_uri: callback, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'x', ...prompt });
      const answer = new URL((await agent.follow(`${server.issuer}/auth?${query}`, {}, callback)).url);
      assert.equal(answer.searchParams.get('code'), null);
      assert.equal(answer.searchParams.get('error'), 'invalid_scope');
    }
  });

  it("a person's access token opens none of Latchkey's own pages or privileged APIs", async () => {
    const tokens = await redeem(await signIn('gus', { scope: 'openid' }));
    const as = async (path: string, authorization?: string) => {
      const response = await fetch(`${server.url}${path}`, { headers: authorization ? { authorization } : {}, redirect: 'manual' });
      return `${response.status} ${response.headers.get('location')} ${(await response.text()).replace(/name="csrf" value="[^"]*"/g, '')}`;
    };
    // Latchkey's pages read a session, not a bearer token: with one they answer as to nobody.
    for (const path of ['/account', '/developer']) assert.equal(await as(path, `Bearer ${tokens.access_token}`), await as(path), path);
    for (const path of ['/admin/clients', '/revocations']) assert.match(await as(path, `Bearer ${tokens.access_token}`), /^401 /, path);
  });
});

describe('e2e: red team, eleventh pass, open registration takes no client_id it is given', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true' }, clients: [{ client_id: NOTES.id, client_secret: NOTES.secret, redirect_uris: [REDIRECT] }] });
  });
  after(async () => server?.stop());

  it("an app registering itself as notes or as Latchkey's own account or developer page gets an id of its own (RFC 7591 §3.2.1), and notes is still the operator's", async () => {
    for (const client_id of [NOTES.id, 'latchkey-account', 'latchkey-developer']) {
      const response = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id, redirect_uris: ['https://attacker.example.test/cb'], token_endpoint_auth_method: 'none' }) });
      assert.equal(response.status, 201);
      assert.notEqual(((await response.json()) as { client_id: string }).client_id, client_id);
    }
    const notes = await oidc.discovery(new URL(server.issuer), NOTES.id, NOTES.secret, oidc.ClientSecretBasic(NOTES.secret), { execute: [oidc.allowInsecureRequests] });
    const { page } = await startAuthorization(new Agent(), notes, REDIRECT);
    assert.equal(page.status, 200, 'notes keeps its redirect URI');
    assert.ok(page.url.startsWith(`${server.issuer}/interaction/`), page.url);
  });
});
