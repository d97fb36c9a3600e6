/**
 * Endings racing the issuing of a person's tokens (docs/security-passes.md, the fourteenth and fifteenth
 * endings passes): a token request (a refresh, an authorization code's exchange, a device's poll of
 * a code the person approved, RFC 8628) is held, deterministically (the test relay), right after it
 * read its grant, while an operator ends the person or their grants (the CLI, straight on Redis);
 * released a second later, whatever it then issues works nowhere: its JWT for an API is refused by
 * latchkey/resource-server following the revocation feed and inactive at introspection, its refresh
 * token refused. Each is held at its writes (a refresh's rotation and new tokens, an exchange's or
 * a poll's consumption of its code and the tokens), sent in one pipeline after the script that read
 * the grant's record with the account; each ending here makes it answer invalid_grant (the writes
 * are refused under the ended grant). A hold that is not reached before the answer fails the test:
 * the fourteenth pass's held refresh watched for the grant's set (oidc:grant:), which only the
 * refresh's last chunk, its writes, names, so it held nothing of that request.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { latchkey } from '../helpers/process.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, basic, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const PASSWORD = 'held code exchange test password';
const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const DEVICE = 'held-device';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** A script on the record a token request consumes. */
const CONSUMED = ['oidc:RefreshToken:', 'oidc:AuthorizationCode:', 'oidc:DeviceCode:'].map(scriptOn);

const ENDINGS = {
  'users disable': (person: string) => ['users', 'disable', person],
  'users remove': (person: string) => ['users', 'remove', person],
  'grants revoke --client': (_person: string, client: string) => ['grants', 'revoke', '--client', client],
  'grants revoke --user': (person: string) => ['grants', 'revoke', '--user', person],
} as const;

describe('e2e: a token request held after it read its grant, across an ending', function () {
  this.timeout(120_000);
  let relayed: RelayedServer;
  let helper: ResourceServer;

  before(async () => {
    relayed = await startRelayedServer({
      CLIENTS: JSON.stringify([
        machineClient(RS),
        { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' },
        { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access read' },
      ]),
      RESOURCE_SERVERS,
    });
    await grantFeed(relayed.server, RS.id);
    helper = await createResourceServer({ issuer: relayed.server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await relayed?.stop();
  });

  /** A person's authorization code for the web app, signed in and consented: its token request, ready to send. */
  async function codeExchange(person: string): Promise<() => Promise<Response>> {
    const { server } = relayed;
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access read', prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username: person, password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(done.url).searchParams.get('code');
    assert.ok(code, `no code at ${done.url}`);
    return () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API }),
      });
  }

  /** A device's code (RFC 8628) the person approved at /device: the device's next poll, ready to send. */
  async function devicePoll(person: string): Promise<() => Promise<Response>> {
    const { server } = relayed;
    const config = await oidc.discovery(new URL(server.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access read', resource: API });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const page = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: person, password: PASSWORD });
    assert.match(page.html, /Device connected/);
    return () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: DEVICE, resource: API }),
      });
  }

  /** A person's refresh token for the web app: its refresh, ready to send. */
  async function refresh(person: string): Promise<() => Promise<Response>> {
    const { server } = relayed;
    const exchange = await codeExchange(person);
    const tokens = (await (await exchange()).json()) as { refresh_token?: string };
    assert.ok(tokens.refresh_token, JSON.stringify(tokens));
    return () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: API }),
      });
  }

  const REQUESTS = { 'a refresh': { start: refresh, client: WEB.id }, 'the code exchange': { start: codeExchange, client: WEB.id }, "the device's poll": { start: devicePoll, client: DEVICE } };

  for (const [what, { start, client }] of Object.entries(REQUESTS)) {
    for (const [ending, args] of Object.entries(ENDINGS)) {
      it(`${ending} while ${what} is held after it read the grant: what it issues works nowhere`, async () => {
        const { server, relay, env } = relayed;
        const person = `held-${what.replace(/[^a-z]+/g, '-')}-${ending.replace(/[^a-z]+/g, '-')}`.replace(/-+/g, '-').slice(0, 60);
        await server.accounts.create(person, PASSWORD);
        const request = await start(person);

        // Each reads its grant's record (oidc:Grant:<id>) with the account in one script (and the
        // code, for an exchange or a poll); its writes, held, begin with the consumption of its
        // refresh token, code or device code (not simply what comes after the read: a read of the
        // signing key's revocation mark, once its cached copy is due, comes between them at times).
        let sawGrant = false;
        const held = await relay.hold((chunk) => {
          if (sawGrant) return CONSUMED.some((consumed) => consumed(chunk));
          if (chunk.includes('oidc:Grant:')) sawGrant = true;
          return false;
        }, request);
        const run = await latchkey(env, args(person, client));
        assert.equal(run.status, 0, run.stderr);
        // The ending's marks are of this second or an earlier one; the held request goes on in a later one.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const answered = await held.release();
        assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
        const body = (await answered.json()) as { access_token?: string; refresh_token?: string; error?: string };
        // An exchange's or a poll's writes (the code's consumption, the tokens) are refused under an ended grant.
        if (!body.access_token) {
          assert.deepEqual([answered.status, body.error], [400, 'invalid_grant'], `${ending}: the held request's refusal`);
          return;
        }
        assert.equal(decodeJwt(body.access_token).aud, API, 'a JWT for the API');
        await helper.sync();
        assert.equal(await acceptedBy(helper, body.access_token), false, `${ending}: the JWT the held request got is accepted (iat ${decodeJwt(body.access_token).iat})`);
        assert.equal((await introspect(server.url, RS, body.access_token)).active, false, `${ending}: the JWT the held request got is active`);
        assert.ok(body.refresh_token, 'offline access was granted: a refresh token');
        const again = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...(client === WEB.id ? { authorization: basic(WEB) } : {}) },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: body.refresh_token, resource: API, ...(client === WEB.id ? {} : { client_id: client }) }),
        });
        assert.notEqual(again.status, 200, `${ending}: the refresh token the held request got still refreshes`);
      });
    }
  }
});
