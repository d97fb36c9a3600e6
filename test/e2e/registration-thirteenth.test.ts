/**
 * Dynamic client registration attacked, thirteenth fresh-eyes pass (docs/security-passes.md,
 * "dynamic client registration attacked" of 2026-12-07): open registration (RFC 7591) through
 * openid-client, RFC 7592 management with raw fetch, and the operator's admin API beside them. What
 * held, kept as tests: the schemes and shapes of redirect URIs no browser should be sent to, metadata
 * the engine does not serve (dropped, never stored or echoed), one client's registration access token
 * on another's registration, an RFC 7592 update widening a client beyond the policy, and a token of a
 * client an operator removed and made again under the same id.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const OPS = { id: 'ops', secret: 'registration-thirteenth-ops-secret-with-entropy-01' };
const REDIRECT = 'https://notes.example.test/callback';

/** Redirect URIs a browser must never be sent to with a code, and what the policy says of each. */
const REFUSED_REDIRECTS: [string, Record<string, unknown>, RegExp][] = [
  ['javascript: for a web app', { redirect_uris: ['javascript:alert(1)'] }, /only for native apps/],
  ['javascript: for a native app', { application_type: 'native', redirect_uris: ['javascript:alert(1)'] }, /reverse domain name/],
  ['data: for a native app', { application_type: 'native', redirect_uris: ['data:text/html,<script>alert(1)</script>'] }, /reverse domain name/],
  ['file: for a native app', { application_type: 'native', redirect_uris: ['file:///etc/passwd'] }, /reverse domain name/],
  ['blob: for a native app', { application_type: 'native', redirect_uris: ['blob:https://evil.example/x'] }, /reverse domain name/],
  ['vbscript: for a native app', { application_type: 'native', redirect_uris: ['vbscript:msgbox'] }, /reverse domain name/],
  ['wss: for a web app', { redirect_uris: ['wss://notes.example.test/callback'] }, /only for native apps/],
  ['http off loopback for a native app', { application_type: 'native', redirect_uris: ['http://notes.example.test/callback'] }, /use https/],
  ['http to 0.0.0.0', { redirect_uris: ['http://0.0.0.0/callback'] }, /use https/],
  ['http to localhost with a trailing dot', { redirect_uris: ['http://localhost./callback'] }, /use https/],
  ['an empty fragment', { redirect_uris: ['https://notes.example.test/callback#'] }, /fragment/],
  ['a user name that reads as the host', { redirect_uris: ['https://notes.example.test@evil.example/callback'] }, /user name or password/],
  ['a Cyrillic look-alike host (not in punycode)', { redirect_uris: ['https://nоtes.example.test/callback'] }, /punycode/],
  ['a wildcard in the path', { redirect_uris: ['https://notes.example.test/*'] }, /wildcards/],
];

/** Metadata the engine does not serve (localised names and links, front-channel logout, software statements, a chosen id or secret), each with a value the policy would refuse. */
const UNSERVED = {
  'client_name#ja': 'Latchkey',
  'client_name#ar': 'x\u202ey',
  'logo_uri#fr': 'javascript:alert(1)',
  'policy_uri#de': 'https://169.254.169.254/latest/meta-data/',
  frontchannel_logout_uri: 'javascript:alert(1)',
  software_statement: 'eyJhbGciOiJub25lIn0.eyJjbGllbnRfbmFtZSI6IkxhdGNoa2V5In0.',
  client_id: 'ops',
};

describe('e2e: dynamic client registration attacked (thirteenth fresh-eyes pass)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let admin: string;

  before(async () => {
    server = await startServer({ cheapHashing: true, env: { REGISTRATION_OPEN: 'true' }, clients: [machineClient(OPS)] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(() => server?.stop());

  /** openid-client's RFC 7591 registration at the open endpoint: the client's metadata, or the server's refusal. */
  async function register(metadata: Record<string, unknown>): Promise<oidc.ClientMetadata & { error?: string; error_description?: string }> {
    try {
      const config = await oidc.dynamicClientRegistration(new URL(server.issuer), metadata as Partial<oidc.ClientMetadata>, undefined, { execute: [oidc.allowInsecureRequests] });
      return config.clientMetadata();
    } catch (error) {
      const cause = (error as { cause?: { error?: string; error_description?: string } }).cause;
      return { client_id: '', error: cause?.error ?? String(error), error_description: cause?.error_description ?? '' };
    }
  }

  /** An RFC 7592 request to `clientId`'s registration presenting `token`. */
  async function manage(clientId: string, method: 'GET' | 'PUT' | 'DELETE', token: string, body?: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${server.url}/reg/${clientId}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  it('held: a redirect URI of a scheme or shape no browser should be sent to (javascript:, data:, file:, blob:, vbscript:, wss:, http off loopback, 0.0.0.0, an empty fragment, a user name, a look-alike host, a wildcard) is invalid_redirect_uri', async () => {
    for (const [name, metadata, description] of REFUSED_REDIRECTS) {
      const answer = await register(metadata);
      assert.equal(answer.error, 'invalid_redirect_uri', `${name}: ${JSON.stringify(answer)}`);
      assert.match(answer.error_description!, description, name);
    }
  });

  it("held: metadata the engine does not serve (a localised name reading as Latchkey's or reversing text, a localised javascript: logo, a front-channel logout URI, a software statement naming itself Latchkey, a configured client's id) is dropped: neither echoed nor stored, and the client's id is a new one", async () => {
    const made = await register({ redirect_uris: [REDIRECT], client_name: 'Notes', ...UNSERVED });
    assert.equal(made.error, undefined, JSON.stringify(made));
    assert.notEqual(made.client_id, OPS.id);
    const read = await manage(made.client_id, 'GET', made.registration_access_token as string);
    assert.equal(read.status, 200);
    for (const [name, answer] of [['registration', made], ['RFC 7592 read', read.body]] as const) {
      for (const member of Object.keys(UNSERVED).filter((key) => key !== 'client_id')) assert.equal(member in answer, false, `${name}: ${member}`);
      assert.equal((answer as Record<string, unknown>).client_name, 'Notes', name);
    }
    // The configured client keeps its own metadata and secret.
    assert.equal(typeof (await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin')), 'string');
  });

  it("held: one client's registration access token reads, changes and deletes no other client's registration (401), and the other client's own token still manages it", async () => {
    const mine = await register({ redirect_uris: [REDIRECT], client_name: 'Mine' });
    const theirs = await register({ redirect_uris: ['https://theirs.example.test/callback'], client_name: 'Theirs' });
    const myToken = mine.registration_access_token as string;
    assert.equal((await manage(theirs.client_id, 'GET', myToken)).status, 401);
    assert.equal((await manage(theirs.client_id, 'PUT', myToken, { client_id: theirs.client_id, redirect_uris: [REDIRECT] })).status, 401);
    assert.equal((await manage(theirs.client_id, 'DELETE', myToken)).status, 401);
    assert.equal((await manage(OPS.id, 'DELETE', myToken)).status, 401);
    const still = await manage(theirs.client_id, 'GET', theirs.registration_access_token as string);
    assert.equal(still.status, 200);
    assert.deepEqual(still.body.redirect_uris, ['https://theirs.example.test/callback']);
  });

  it("held: an RFC 7592 update beyond the policy (an operator-only scope, an owner, a chosen secret, client_credentials for a public client, the device grant for a web app, a name reading as Latchkey, http off loopback, another client's client_id) is refused and changes nothing", async () => {
    const made = await register({ redirect_uris: [REDIRECT], client_name: 'Notes' });
    const other = await register({ redirect_uris: [REDIRECT], client_name: 'Other' });
    const token = made.registration_access_token as string;
    const base = { client_id: made.client_id, redirect_uris: [REDIRECT], client_name: 'Notes' };
    const widenings: [string, Record<string, unknown>][] = [
      ['an operator-only scope', { scope: 'openid admin' }],
      ['an owner', { owner: 'someone-else' }],
      ['a chosen secret', { client_secret: 'y'.repeat(40) }],
      ['client_credentials for a public client', { token_endpoint_auth_method: 'none', grant_types: ['client_credentials'] }],
      ['the device grant for a web app', { grant_types: ['urn:ietf:params:oauth:grant-type:device_code'] }],
      ["a name reading as Latchkey's", { client_name: 'Latchkey' }],
      ['http off loopback', { redirect_uris: ['http://evil.example/callback'] }],
    ];
    for (const [name, change] of widenings) {
      const answer = await manage(made.client_id, 'PUT', token, { ...base, ...change });
      assert.equal(answer.status, 400, `${name}: ${JSON.stringify(answer.body)}`);
    }
    // Refused, nothing written, the token not spent: the client reads as registered.
    const read = await manage(made.client_id, 'GET', token);
    assert.equal(read.status, 200);
    assert.equal(read.body.client_name, 'Notes');
    assert.deepEqual(read.body.redirect_uris, [REDIRECT]);
    assert.equal(read.body.scope, undefined);
    // Another client's id in the body of one's own registration is not taken either, and that client is untouched.
    assert.equal((await manage(made.client_id, 'PUT', token, { ...base, client_id: other.client_id })).status, 400);
    assert.equal((await manage(other.client_id, 'GET', other.registration_access_token as string)).body.client_name, 'Other');
  });

  it("held: the registration access token rotated by an update is the only one: the old one reads, changes and deletes nothing; a client an operator removed and made again under its id is managed by no token of before", async () => {
    const made = await register({ redirect_uris: [REDIRECT], client_name: 'Notes' });
    const old = made.registration_access_token as string;
    const updated = await manage(made.client_id, 'PUT', old, { client_id: made.client_id, redirect_uris: [REDIRECT], client_name: 'Notes 2' });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    const fresh = updated.body.registration_access_token as string;
    assert.notEqual(fresh, old);
    assert.equal((await manage(made.client_id, 'GET', old)).status, 401);
    assert.equal((await manage(made.client_id, 'PUT', old, { client_id: made.client_id, redirect_uris: ['https://evil.example/callback'] })).status, 401);
    assert.equal((await manage(made.client_id, 'DELETE', old)).status, 401);
    assert.equal((await manage(made.client_id, 'GET', fresh)).body.client_name, 'Notes 2');
    // Removed by an operator, made again under the same id by an operator: the fresh token is of no client now.
    assert.equal((await adminJson(server.url, admin, 'DELETE', `/clients/${made.client_id}`)).status, 204);
    assert.equal((await adminJson(server.url, admin, 'POST', '/clients', { client_id: made.client_id, redirect_uris: [REDIRECT] })).status, 201);
    for (const method of ['GET', 'DELETE'] as const) assert.equal((await manage(made.client_id, method, fresh)).status, 401, method);
    assert.equal((await manage(made.client_id, 'PUT', fresh, { client_id: made.client_id, redirect_uris: ['https://evil.example/callback'] })).status, 401);
    assert.equal((await adminJson(server.url, admin, 'GET', `/clients/${made.client_id}`)).status, 200);
  });
});
