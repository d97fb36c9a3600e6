/**
 * Small leftovers of the eleventh passes (docs/security-passes.md): a device's sign-in spoken of as
 * a device's on every page of it, not as a browser app's ("return to the application").
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { authenticatorAdded, signedInToAccountPage, signInSteps } from '../helpers/sign-in.js';
import { initialAccessToken } from '../helpers/operator.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken } from '../helpers/tokens.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const PASSWORD = 'leftovers eleventh password';
/** What sends a browser app's person back to it: a device has no application page to go back to. */
const BROWSER_APP_WORDS = /(return|go back) to the application/i;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const OPS = { id: 'ops-11', secret: 'leftovers-eleventh-ops-secret-0123456789abcdef' };
const TV = { client_id: 'tv-11', client_name: 'Living Room TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] };

/** A page's words, without its markup. */
const text = (page: Page) => page.html.replace(/<(style|script)[^]*?<\/\1>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('e2e: leftovers of the eleventh passes', function () {
  this.timeout(60_000);
  let server: TestServer;
  let tv: oidc.Configuration;

  before(async () => {
    server = await startServer({ cheapHashing: true, clients: [TV, { client_id: OPS.id, client_secret: OPS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.accounts.create('dana', PASSWORD);
    await server.accounts.create('eli', PASSWORD);
    tv = await oidc.discovery(new URL(server.issuer), TV.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  /** `agent` types a new device authorization's code at /device and continues: the sign-in's first page. */
  async function deviceSignIn(agent: Agent): Promise<Page> {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    return agent.submit(confirm, '/device', { confirm: 'yes' });
  }

  describe("a device's sign-in speaks of the device, not of an application to return to", () => {
    it('the login page cancels by telling the device', async () => {
      const login = await deviceSignIn(new Agent());
      assert.match(login.html, /name="password"/, `the login page: ${login.status} ${login.url}`);
      assert.doesNotMatch(text(login), BROWSER_APP_WORDS, text(login));
      assert.match(text(login), /Cancel and tell the device/);
    });

    it('the second-factor page cancels by telling the device', async () => {
      const { agent: account, page } = await signedInToAccountPage(server.issuer, 'eli', PASSWORD);
      await authenticatorAdded(account, page);
      const agent = new Agent();
      const second = await agent.submit(await deviceSignIn(agent), '/login', { username: 'eli', password: PASSWORD });
      assert.match(second.html, /\/second-factor/, `the second-factor page: ${second.status} ${second.url}`);
      assert.doesNotMatch(text(second), BROWSER_APP_WORDS, text(second));
      assert.match(text(second), /Cancel and tell the device/);
    });

    it('an upstream that cannot be reached: its error page stops by telling the device', async () => {
      // An upstream on a loopback port nothing listens on: its discovery fails (UpstreamUnavailable).
      await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'away', issuer: `http://127.0.0.1:${await freePort()}`, clientId: 'latchkey', clientSecret: 'x', scope: 'openid', displayName: 'Away', linkByEmail: false, endSession: false });
      const agent = new Agent();
      const login = await deviceSignIn(agent);
      const failed = await agent.submit(login, '/upstream/away', {});
      assert.match(text(failed), /Back to sign-in/, `the upstream's error page: ${failed.status} ${failed.url} ${text(failed)}`);
      assert.doesNotMatch(text(failed), BROWSER_APP_WORDS, text(failed));
      assert.match(text(failed), /Stop and tell the device/);
    });

    it('"Sign-in expired" (the browser signed out while the consent page was open) says to start again on the device', async () => {
      const agent = new Agent();
      const consent = await signInSteps(agent, await deviceSignIn(agent), { username: 'dana', password: PASSWORD, consent: 'stop' });
      assert.match(consent.html, /\/confirm/, `the consent page: ${consent.status} ${consent.url}`);
      const signOut = await agent.follow(`${server.issuer}/session/end`);
      await agent.submit(signOut, '/session/end/confirm', { logout: 'yes' });
      const expired = await agent.follow(consent.url);
      assert.equal(expired.status, 400);
      assert.match(text(expired), /Sign-in expired/);
      assert.doesNotMatch(text(expired), BROWSER_APP_WORDS, text(expired));
      assert.match(text(expired), /Start again on your device/);
    });
  });

  /** The admin API at `path` with the operator's token. */
  async function admin(method: string, path: string, body: unknown): Promise<{ status: number; body: { error?: string; error_description?: string } }> {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const response = await fetch(`${server.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json().catch(() => ({}))) as { error?: string; error_description?: string } };
  }

  describe('an upstream linking by email is asked for an address to link by', () => {
    const upstream = { issuer: 'https://idp.example.com', client_id: 'latchkey', client_secret: 'an-upstream-client-secret', link_by_email: true };

    it('the admin API refuses link_by_email with a scope without email (the upstream sends no address), and takes it with email or an address mapped from another claim', async () => {
      const refused = await admin('POST', '/upstreams', { ...upstream, id: 'no-email', scope: 'openid profile' });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.error, 'invalid_request');
      assert.match(String(refused.body.error_description), /linking by email needs an address from the upstream: add email to the scope/);
      assert.equal((await admin('POST', '/upstreams', { ...upstream, id: 'with-email', scope: 'openid email' })).status, 201);
      assert.equal((await admin('POST', '/upstreams', { ...upstream, id: 'mapped', scope: 'openid profile', claims: { email: 'preferred_username' } })).status, 201);
    });

    it('upstreams add --scope openid --link-by-email is refused in one line, nothing added', async () => {
      const run = await latchkey(server.env, ['upstreams', 'add', '--id', 'cli-no-email', '--issuer', upstream.issuer, '--client-id', 'latchkey', '--client-secret-stdin', '--scope', 'openid', '--link-by-email'], 'x\n');
      assert.equal(run.status, 1, run.stdout);
      assert.match(run.stderr, /^latchkey: linking by email needs an address from the upstream: add email to the scope/m);
      const list = await latchkey(server.env, ['upstreams', 'list']);
      assert.ok(!list.stdout.includes('cli-no-email'), list.stdout);
    });
  });

  describe('a client secret with a token_endpoint_auth_method that uses none', () => {
    const app = { redirect_uris: ['https://app.example.com/callback'], client_secret: 'an-operator-written-secret-0123456789abcdef' };

    it('the admin API refuses it at POST and PUT /admin/clients (invalid_client_metadata), where it stored a public client and dropped the secret', async () => {
      for (const method of ['none', 'private_key_jwt']) {
        const jwks = method === 'private_key_jwt' ? { jwks_uri: 'https://app.example.com/jwks' } : {};
        const added = await admin('POST', '/clients', { ...app, ...jwks, client_id: `secret-${method}`, token_endpoint_auth_method: method });
        assert.equal(added.status, 400, `${method}: ${JSON.stringify(added.body)}`);
        assert.equal(added.body.error, 'invalid_client_metadata');
        assert.match(String(added.body.error_description), new RegExp(`client_secret is given, but token_endpoint_auth_method "${method}" uses no secret`));
      }
      assert.equal((await admin('POST', '/clients', { ...app, client_id: 'confidential-11' })).status, 201);
      const put = await admin('PUT', '/clients/confidential-11', { ...app, token_endpoint_auth_method: 'none' });
      assert.equal(put.status, 400, JSON.stringify(put.body));
      assert.equal(put.body.error, 'invalid_client_metadata');
      // Moving to none without naming a secret is the operator's to do: the stored one is dropped.
      const { client_secret: _secret, ...withoutSecret } = app;
      assert.equal((await admin('PUT', '/clients/confidential-11', { ...withoutSecret, token_endpoint_auth_method: 'none' })).status, 200);
    });

    it('dynamic registration (RFC 7591) differs on purpose: a secret is the server\'s to issue (§3.2.1), so one sent is replaced, and the answer says what was registered', async () => {
      const register = async (metadata: Record<string, unknown>) => {
        const response = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await initialAccessToken(server)}` }, body: JSON.stringify(metadata) });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      const publicOne = await register({ ...app, token_endpoint_auth_method: 'none' });
      assert.equal(publicOne.status, 201, JSON.stringify(publicOne.body));
      assert.equal(publicOne.body.token_endpoint_auth_method, 'none');
      assert.equal(publicOne.body.client_secret, undefined, 'a public client is told it holds no secret');
      const confidentialOne = await register(app);
      assert.equal(confidentialOne.status, 201, JSON.stringify(confidentialOne.body));
      assert.ok(typeof confidentialOne.body.client_secret === 'string' && confidentialOne.body.client_secret !== app.client_secret, 'the secret is issued, not the one sent');
    });
  });
});
