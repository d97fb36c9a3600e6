/**
 * The red team's nineteenth pass at "Latchkey hands out more than was granted" (2026-12-04), black
 * box (docs/security-passes.md, "Looked at in the nineteenth granting pass"): features combined across an
 * operator's change. Found: an API removed and made again under its identifier was given by a device
 * code the person approved before, and by a refresh token whose chain began after it from a code
 * issued before (the moment compared was the redemption's, not the person's); an operator's revocation
 * of what the configuration grants, and changes to a stored copy of a configured client (a leaked
 * secret "rotated"), were said done while nothing changed. Held: a device's DPoP-bound refresh token.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { grantApi } from '../helpers/operator.js';
import { latchkey } from '../helpers/process.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { adminJson, basic, clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const PASSWORD = 'red team granted nineteen passphrase';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const REDIRECT = 'https://nineteen.example.test/callback';
const APP = { id: 'nineteen', secret: 'nineteen-client-secret-with-plenty-of-entropy-0123456789' };
const TV = 'nineteen-tv';
/** An API in the configuration, whose grant to the machine client is the configuration's too. */
const CONFIGURED = 'https://configured.nineteen.example.test';
const MACHINE = { id: 'nineteen-machine', secret: 'nineteen-machine-secret-with-plenty-of-entropy-0123' };
const OPERATOR = { id: 'nineteen-operator', secret: 'nineteen-operator-secret-with-plenty-of-entropy-012' };

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

/** A DPoP proof made by hand (RFC 9449 §4.2) for a POST to `htu`. */
async function proof(key: KeyPair, htu: string, accessToken?: string): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: 'POST', htu, ...(accessToken && { ath: createHash('sha256').update(accessToken).digest('base64url') }) })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
    .sign(key.privateKey);
}

describe('e2e: red team, nineteenth granting pass, features combined across an operator change', function () {
  // Several CLI runs per test: on a loaded two-core runner one takes a few seconds.
  this.timeout(120_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      clients: [machineClient(MACHINE), machineClient(OPERATOR)],
      env: {
        REGISTRATION_OPEN: 'true',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: CONFIGURED, scopes: ['read', 'write'], grants: [{ client_id: MACHINE.id, scopes: ['read'] }] }]),
      },
    });
    await server.accounts.create('ada', PASSWORD, { email: 'ada@example.test', email_verified: true, name: 'Ada Example' });
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
    await server.clients.add({ client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE, 'refresh_token'] });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  async function post(path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, string> }> {
    const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  /** A device authorization of the TV for `params`; its device code and user code. */
  async function deviceAuthorization(params: Record<string, string>): Promise<{ device_code: string; user_code: string }> {
    const started = await post('/device/auth', { client_id: TV, ...params });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    return { device_code: started.body.device_code!, user_code: started.body.user_code! };
  }

  /** A device authorization of the TV for `params` (or one made before), approved by ada at /device; its device code. */
  async function approvedDeviceCode(params: Record<string, string>, begun?: { device_code: string; user_code: string }): Promise<string> {
    const started = { body: begun ?? (await deviceAuthorization(params)) };
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.body.user_code! });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'ada', password: PASSWORD });
    assert.match(approved.html, /Device connected/, `${approved.status} ${approved.url}`);
    return started.body.device_code!;
  }

  /** The operator removes the API and someone adds one under the same identifier (another service). */
  async function remade(identifier: string, scopes: string[]): Promise<void> {
    await server.apis.remove(identifier);
    await server.apis.add({ identifier, scopes });
  }

  it('an API removed and made again is not given by a device code approved before, nor by a refresh token from a code issued before and redeemed after (RFC 8707 §2, RFC 8628 §3.4, RFC 6749 §6)', async () => {
    const NOTES = 'https://notes.nineteen.example.test';
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });

    // A device that asks now and is approved only after the remake: the person allows the new API.
    const begun = await deviceAuthorization({ scope: 'openid notes:read', resource: NOTES });
    // A device approved for the API; the operator remakes the API before the device polls.
    const device = await approvedDeviceCode({ scope: 'openid offline_access notes:read', resource: NOTES });
    // A code issued for the API (consented), redeemed only after the API was made again.
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access notes:read', resource: NOTES });
    const back = await signInSteps(agent, page, { username: 'ada', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), back.url);

    await remade(NOTES, ['notes:read']);

    const polled = await post('/token', { grant_type: DEVICE_CODE, device_code: device, client_id: TV, resource: NOTES });
    assert.equal(polled.status, 400, `the device approved for the removed API got a token for the new one: ${JSON.stringify(polled.body)}`);
    assert.equal(polled.body.error, 'invalid_target');
    // For userinfo it still works (that is what is left of the grant), and its refresh token does not reach the new API either.
    const deviceUserinfo = await post('/token', { grant_type: DEVICE_CODE, device_code: device, client_id: TV });
    assert.equal(deviceUserinfo.status, 200, JSON.stringify(deviceUserinfo.body));
    const deviceRefresh = await post('/token', { grant_type: 'refresh_token', refresh_token: deviceUserinfo.body.refresh_token!, client_id: TV, resource: NOTES });
    assert.equal(deviceRefresh.body.error, 'invalid_target', `the device's refresh token for the new API: ${JSON.stringify(deviceRefresh.body)}`);

    // The code redeemed for userinfo after the remake: its refresh token's chain begins after the new
    // API, but what it carries was allowed before; it refreshes into nothing at the new API.
    const tokens = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier });
    assert.ok(tokens.refresh_token);
    await assert.rejects(oidc.refreshTokenGrant(app, tokens.refresh_token, { resource: NOTES }), (error: oidc.ResponseBodyError) => error.error === 'invalid_target');
    // Implied by its scope alone, the same; neither refusal spent it.
    await assert.rejects(oidc.refreshTokenGrant(app, tokens.refresh_token, { scope: 'notes:read' }), (error: oidc.ResponseBodyError) => error.error === 'invalid_target');
    const rotated = await oidc.refreshTokenGrant(app, tokens.refresh_token);
    assert.ok(rotated.refresh_token, 'still good for userinfo');
    await assert.rejects(oidc.refreshTokenGrant(app, rotated.refresh_token, { resource: NOTES }), (error: oidc.ResponseBodyError) => error.error === 'invalid_target', 'nor after a rotation');

    // Allowed since the remake: the device and the app get the new API's tokens, and refresh into them again.
    const approvedAfter = await approvedDeviceCode({}, begun);
    const later = await post('/token', { grant_type: DEVICE_CODE, device_code: approvedAfter, client_id: TV, resource: NOTES });
    assert.equal(later.status, 200, `a device asked before the remake and approved after gets the API the person allowed: ${JSON.stringify(later.body)}`);
    const fresh = await approvedDeviceCode({ scope: 'openid offline_access notes:read', resource: NOTES });
    const granted = await post('/token', { grant_type: DEVICE_CODE, device_code: fresh, client_id: TV, resource: NOTES });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.equal(decodeJwt(granted.body.access_token!).aud, NOTES);
    const again = await post('/token', { grant_type: 'refresh_token', refresh_token: granted.body.refresh_token!, client_id: TV, resource: NOTES });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    const more = await post('/token', { grant_type: 'refresh_token', refresh_token: again.body.refresh_token!, client_id: TV, resource: NOTES });
    assert.equal(more.status, 200, `a rotated refresh token keeps when it was given: ${JSON.stringify(more.body)}`);
    const second = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access notes:read', resource: NOTES });
    const asked = await signInSteps(agent, second.page, { username: 'ada', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    const ok = await oidc.authorizationCodeGrant(app, new URL(asked.url), { pkceCodeVerifier: second.verifier });
    assert.equal(decodeJwt((await oidc.refreshTokenGrant(app, ok.refresh_token!, { resource: NOTES })).access_token).aud, NOTES);
  });

  it('held: a device that proves a DPoP key at polling keeps its refresh token to that key and to the API it named, through rotations; another key, no proof, or another API gets nothing (RFC 9449 §5, RFC 8628 §3.4, RFC 8707 §2)', async () => {
    const LEDGER = 'https://ledger.nineteen.example.test';
    const OTHER = 'https://other.nineteen.example.test';
    await server.apis.add({ identifier: LEDGER, scopes: ['ledger:read'] });
    await server.apis.add({ identifier: OTHER, scopes: ['ledger:read'] });
    const key = (await generateKeyPair('ES256', { extractable: true })) as KeyPair;
    const thief = (await generateKeyPair('ES256', { extractable: true })) as KeyPair;
    const tokenUrl = `${server.issuer}/token`;
    const device = await approvedDeviceCode({ scope: 'openid offline_access ledger:read', resource: LEDGER });
    const polled = await post('/token', { grant_type: DEVICE_CODE, device_code: device, client_id: TV, resource: LEDGER }, { dpop: await proof(key, tokenUrl) });
    assert.equal(polled.status, 200, JSON.stringify(polled.body));
    assert.equal(polled.body.token_type, 'DPoP');
    assert.equal(decodeJwt(polled.body.access_token!).aud, LEDGER);
    const refresh = (refreshToken: string, extra: Record<string, string>, headers: Record<string, string> = {}) =>
      post('/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: TV, ...extra }, headers);
    for (const [what, headers] of [
      ['no proof', {}],
      ["another key's proof", { dpop: await proof(thief, tokenUrl) }],
    ] as const) {
      const refused = await refresh(polled.body.refresh_token!, { resource: LEDGER }, headers);
      assert.equal(refused.body.error, 'invalid_grant', `${what}: ${JSON.stringify(refused.body)}`);
    }
    const elsewhere = await refresh(polled.body.refresh_token!, { resource: OTHER }, { dpop: await proof(key, tokenUrl) });
    assert.equal(elsewhere.body.error, 'invalid_target', `an API the device did not name, with the same scope: ${JSON.stringify(elsewhere.body)}`);
    // Not spent by the refusals; rotated with the key, the new token is held the same way.
    const rotated = await refresh(polled.body.refresh_token!, { resource: LEDGER }, { dpop: await proof(key, tokenUrl) });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.body.token_type, 'DPoP');
    assert.equal((await refresh(rotated.body.refresh_token!, { resource: LEDGER }, { dpop: await proof(thief, tokenUrl) })).body.error, 'invalid_grant');
    assert.equal((await refresh(rotated.body.refresh_token!, { resource: OTHER }, { dpop: await proof(key, tokenUrl) })).body.error, 'invalid_target');
    const userinfo = await refresh(rotated.body.refresh_token!, {}, { dpop: await proof(key, tokenUrl) });
    assert.equal(userinfo.status, 200, JSON.stringify(userinfo.body));
    assert.equal(decodeJwt(userinfo.body.id_token!).email, undefined, 'no claim the device did not ask for');
  });

  it("an operator's revocation of what the configuration grants is refused, not reported done while the client goes on getting it (CLI and admin API)", async () => {
    const cc = async (scope: string) => {
      const response = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: CONFIGURED, scope }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    // The operator grants in the store what the configuration grants, and more.
    const granted = await latchkey(server.env, ['apis', 'grant', '--client', MACHINE.id, '--api', CONFIGURED, '--scope', 'read write']);
    assert.equal(granted.status, 0, granted.stderr);

    // `latchkey apis revoke` of the configuration's scope, and of the whole grant: each said it was done (the
    // store's part), and the client went on getting read tokens, the configuration's grant added at every read.
    for (const args of [['--scope', 'read'], []]) {
      const revoked = await latchkey(server.env, ['apis', 'revoke', '--client', MACHINE.id, '--api', CONFIGURED, ...args]);
      assert.notEqual(revoked.status, 0, `apis revoke ${args.join(' ')} said: ${revoked.stdout}`);
      assert.match(revoked.stderr, /client nineteen-machine's grant at https:\/\/configured\.nineteen\.example\.test is in the configuration \(resourceServers\)/);
    }
    // The admin API alike: DELETE of the grant, and PUT of a grant without the configuration's scope.
    await grantApi(server, OPERATOR.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    const admin = await clientCredentialsToken(server.url, OPERATOR, `${server.issuer}/admin`, 'admin');
    const path = `/clients/${MACHINE.id}/grants/${encodeURIComponent(CONFIGURED)}`;
    const deleted = await adminJson(server.url, admin, 'DELETE', path);
    assert.equal(deleted.status, 409, JSON.stringify(deleted.body));
    assert.equal(deleted.body.error, 'conflict');
    const replaced = await adminJson(server.url, admin, 'PUT', path, { scopes: ['write'] });
    assert.equal(replaced.status, 409, JSON.stringify(replaced.body));
    // Nothing changed: the grant is what it was, and so is what the client gets.
    assert.deepEqual((await adminJson(server.url, admin, 'GET', `/clients/${MACHINE.id}/grants`)).body[CONFIGURED], { scopes: ['read', 'write'] });
    assert.equal((await cc('read write')).status, 200);

    // What the store alone grants is taken as before, and the answer says what the client holds after it.
    const narrowed = await adminJson(server.url, admin, 'PUT', path, { scopes: ['read'] });
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.deepEqual(narrowed.body, { scopes: ['read'] });
    assert.equal((await cc('write')).body.error, 'invalid_scope');
    assert.equal((await cc('read')).status, 200);
  });

  it("a client of the configuration is not added, updated, rotated or removed in the store, said done while the configured one goes on as it was: a leaked secret 'rotated' still worked (CLI and admin API)", async () => {
    const cc = async (secret: string, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: MACHINE.id, secret }), ...headers },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: CONFIGURED, scope: 'read' }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    assert.equal((await cc(MACHINE.secret)).status, 200);
    // The operator, told the configured client's secret leaked, adds it to the store with a new secret,
    // then rotates that without grace, makes it DPoP-bound, and removes it: each said done, and the
    // leaked secret still got Bearer tokens after every one of them (the engine finds the configured client first).
    const fresh = 'nineteen-machine-fresh-secret-with-plenty-of-entropy-01';
    const steps = [
      ['clients', 'add', '--client-id', MACHINE.id, '--secret', fresh, '--grant-type', 'client_credentials'],
      ['clients', 'rotate-secret', MACHINE.id, '--grace', '0'],
      ['clients', 'update', MACHINE.id, '--dpop-bound-access-tokens'],
      ['clients', 'remove', MACHINE.id],
    ];
    // With the servers' configuration, and from a shell without their CLIENTS (the CLI then reads
    // the configured clients the servers last started with from the store).
    const { CLIENTS: _clients, ...withoutClients } = server.env;
    for (const env of [server.env, withoutClients]) {
      for (const args of steps) {
        const run = await latchkey(env, args);
        assert.notEqual(run.status, 0, `${args.slice(0, 2).join(' ')} said: ${run.stdout}`);
        assert.match(run.stderr, /client "nineteen-machine" is defined in the configuration/);
        // No advice to remove it first: that is refused too.
        assert.doesNotMatch(run.stderr, /remove nineteen-machine first/);
      }
    }
    const leaked = await cc(MACHINE.secret);
    assert.equal(leaked.status, 200, 'the configured client is what it is in the configuration');
    assert.equal(leaked.body.token_type, 'Bearer');
    assert.equal((await cc(fresh)).status, 401, 'no stored copy was made');

    // The admin API alike.
    await grantApi(server, OPERATOR.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    const admin = await clientCredentialsToken(server.url, OPERATOR, `${server.issuer}/admin`, 'admin');
    const added = await adminJson(server.url, admin, 'POST', '/clients', { client_id: MACHINE.id, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    assert.equal(added.status, 409, JSON.stringify(added.body));
    for (const [method, path] of [['POST', `/clients/${MACHINE.id}/secret`], ['DELETE', `/clients/${MACHINE.id}`]] as const) {
      const answer = await adminJson(server.url, admin, method, path);
      assert.equal(answer.status, 409, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
  });
});
