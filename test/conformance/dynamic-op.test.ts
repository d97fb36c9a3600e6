/**
 * OpenID Connect Dynamic OP: dynamic client registration (OpenID Connect Dynamic Client
 * Registration 1.0, RFC 7591) and management (RFC 7592), then use of the registered client; the
 * registration policy's refusals; client keys by value and by reference, and their rotation; the
 * OP's own key rotation.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { eventually } from '../helpers/eventually.js';
import { startJwksHost } from '../helpers/jwks-host.js';
import { initialAccessToken } from '../helpers/operator.js';
import { latchkey } from '../helpers/process.js';
import { Agent, ALICE, callbackParams, RelyingParty, startOp, type Op } from './fixture.js';

const REDIRECT = 'https://dyn.example.test/callback';

interface Registered extends Record<string, unknown> {
  client_id: string;
  client_secret?: string;
  registration_access_token: string;
  registration_client_uri: string;
}

describe('OpenID Connect Dynamic OP (registration and keys)', function () {
  this.timeout(60_000);

  describe('with open registration', () => {
    let op: Op;

    before(async () => {
      op = await startOp({ people: [ALICE], env: { REGISTRATION_OPEN: 'true' } });
    });
    after(() => op?.stop());

    async function register(metadata: unknown, headers: Record<string, string> = {}) {
      const response = await fetch(op.metadata.registration_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof metadata === 'string' ? metadata : JSON.stringify(metadata),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as Registered & { error?: string; error_description?: string } };
    }

    async function refused(metadata: Record<string, unknown>, error: string) {
      const answer = await register({ redirect_uris: [REDIRECT], ...metadata });
      assert.equal(answer.status, 400, JSON.stringify(metadata));
      assert.equal(answer.body.error, error, JSON.stringify(answer.body));
      assert.ok(answer.body.error_description, 'says what to fix');
      return answer.body;
    }

    const management = (client: Registered, method: string, token = client.registration_access_token, body?: unknown) =>
      fetch(client.registration_client_uri, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });

    it('registration returns 201 with client_id, secret, registration access token and URI, and the metadata; not cached (RFC 7591 §3.2.1, Registration §3.2)', async () => {
      const answer = await register({ client_name: 'Dynamic', redirect_uris: [REDIRECT], contacts: ['dev@example.test'] });
      assert.equal(answer.status, 201);
      assert.match(answer.headers.get('cache-control') ?? '', /no-store/);
      const body = answer.body;
      assert.ok(body.client_id);
      assert.ok(typeof body.client_secret === 'string' && Buffer.from(body.client_secret, 'base64url').length >= 32);
      assert.equal(typeof body.client_id_issued_at, 'number');
      assert.equal(body.client_secret_expires_at, 0);
      assert.ok(body.registration_access_token);
      assert.equal(new URL(body.registration_client_uri).origin, new URL(op.issuer).origin);
      assert.equal(body.client_name, 'Dynamic');
      assert.deepEqual(body.redirect_uris, [REDIRECT]);
    });

    it('defaults: client_secret_basic, authorization_code, code, public subject, RS256 ID tokens (RFC 7591 §2, Registration §2)', async () => {
      const { body } = await register({ redirect_uris: [REDIRECT] });
      assert.equal(body.token_endpoint_auth_method, 'client_secret_basic');
      assert.deepEqual(body.response_types, ['code']);
      assert.ok((body.grant_types as string[]).includes('authorization_code'));
      assert.equal(body.subject_type, 'public');
      assert.equal(body.id_token_signed_response_alg, 'RS256');
    });

    it('a dynamically registered client signs a person in with openid-client (Dynamic OP: registration, then the code flow)', async () => {
      const config = await oidc.dynamicClientRegistration(
        new URL(op.issuer),
        { client_name: 'Registered by openid-client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        undefined,
        { execute: [oidc.allowInsecureRequests] },
      );
      const metadata = config.clientMetadata();
      const rp = await RelyingParty.create(op, String(metadata.client_id), { secret: String(metadata.client_secret) }, REDIRECT);
      const tokens = await rp.redeem(await rp.signIn(new Agent(), ALICE));
      const { payload } = await jwtVerify(tokens.id_token!, op.jwks, { issuer: op.issuer, audience: String(metadata.client_id) });
      assert.equal(payload.sub, op.subs.alice);
    });

    it('userinfo_signed_response_alg RS256: discovery lists it, and userinfo answers a signed application/jwt with iss, aud and the sub of the ID token, no nonce (Registration §2, Core §5.3.2; oidcc-userinfo-rs256)', async () => {
      assert.deepEqual(op.metadata.userinfo_signing_alg_values_supported, ['RS256']);
      const { body } = await register({ redirect_uris: [REDIRECT], userinfo_signed_response_alg: 'RS256' });
      assert.equal(body.userinfo_signed_response_alg, 'RS256', 'registered, and said so');
      const rp = await RelyingParty.create(op, body.client_id, { secret: body.client_secret }, REDIRECT, { userinfo_signed_response_alg: 'RS256' });
      const tokens = await rp.redeem(await rp.signIn(new Agent(), ALICE, { scope: 'openid profile' }));
      const response = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^application\/jwt/);
      const { payload, protectedHeader } = await jwtVerify(await response.text(), op.jwks, { issuer: op.issuer, audience: body.client_id, algorithms: ['RS256'] });
      assert.equal(protectedHeader.alg, 'RS256');
      assert.equal(payload.sub, op.subs.alice);
      assert.equal(payload.name, ALICE.name);
      assert.equal(payload.nonce, undefined);
      // A signed userinfo response is no ID token (RFC 8725 §3.11): not an id_token_hint at the
      // end-session or authorization endpoint, where the client's genuine ID token is one.
      const endSession = async (hint: string) => (await new Agent().follow(`${op.metadata.end_session_endpoint}?${new URLSearchParams({ id_token_hint: hint })}`)).status;
      const signedUserinfo = await (await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } })).text();
      assert.equal(await endSession(signedUserinfo), 400, 'a signed userinfo response as id_token_hint');
      assert.equal(await endSession(tokens.id_token!), 200, 'the ID token as id_token_hint');
      const hinted = async (hint: string) => {
        const url = oidc.buildAuthorizationUrl(rp.config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', prompt: 'none', id_token_hint: hint });
        return new URL((await new Agent().follow(url.href, {}, REDIRECT)).url).searchParams.get('error');
      };
      assert.equal(await hinted(signedUserinfo), 'invalid_request', 'refused as a hint at the authorization endpoint');
      assert.equal(await hinted(tokens.id_token!), 'login_required', 'the ID token is a hint (no session in this browser)');
      // openid-client takes it as a client that registered the algorithm does.
      const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, op.subs.alice!);
      assert.equal(info.sub, op.subs.alice);
      // Only what discovery lists: a shared-secret or unsigned algorithm is refused.
      for (const alg of ['HS256', 'none', 'ES256']) await refused({ userinfo_signed_response_alg: alg }, 'invalid_client_metadata');
    });

    it('read: GET registration_client_uri with the registration access token returns the client; a wrong token → 401 (RFC 7592 §2.1, §2)', async () => {
      const { body: client } = await register({ client_name: 'Readable', redirect_uris: [REDIRECT] });
      const read = await management(client, 'GET');
      assert.equal(read.status, 200);
      const metadata = (await read.json()) as Registered;
      assert.equal(metadata.client_id, client.client_id);
      assert.equal(metadata.client_name, 'Readable');
      assert.equal((await management(client, 'GET', 'not-the-token')).status, 401);
    });

    it('a read answers, not cached, with the registration_client_uri and a registration_access_token that works (RFC 7592 §2.1, §3: both REQUIRED)', async () => {
      const { body: client } = await register({ redirect_uris: [REDIRECT] });
      const read = await management(client, 'GET');
      assert.equal(read.status, 200);
      assert.match(read.headers.get('cache-control') ?? '', /no-store/);
      const metadata = (await read.json()) as Registered;
      assert.equal(metadata.registration_client_uri, client.registration_client_uri);
      assert.equal(typeof metadata.registration_access_token, 'string');
      assert.equal((await management(client, 'GET', metadata.registration_access_token)).status, 200, 'the token the read gave is good for the next read');
    });

    it('metadata the server does not act on is not registered, and so not echoed: unknown fields, frontchannel_logout_uri (front-channel logout is not offered), request_uris, software_statement (RFC 7591 §2 "MAY ignore", §3.1.1, §3.2.1)', async () => {
      const { status, body } = await register({
        redirect_uris: [REDIRECT],
        frontchannel_logout_uri: 'https://dyn.example.test/frontchannel',
        frontchannel_logout_session_required: true,
        request_uris: ['https://dyn.example.test/request'],
        software_statement: 'not.a.statement',
        made_up_field: 'x',
      });
      assert.equal(status, 201, JSON.stringify(body));
      const read = (await (await management(body, 'GET')).json()) as Registered;
      for (const field of ['frontchannel_logout_uri', 'frontchannel_logout_session_required', 'request_uris', 'software_statement', 'made_up_field']) {
        assert.equal(body[field], undefined, `registration: ${field}`);
        assert.equal(read[field], undefined, `read: ${field}`);
      }
      assert.ok(!op.metadata.frontchannel_logout_supported, 'discovery does not offer front-channel logout');
    });

    it('require_auth_time, default_max_age and default_acr_values are registered and echoed; an acr value not offered is invalid_client_metadata (Registration §2, RFC 7591 §3.2.1)', async () => {
      const { status, body } = await register({ redirect_uris: [REDIRECT], require_auth_time: true, default_max_age: 3600, default_acr_values: ['mfa'] });
      assert.equal(status, 201, JSON.stringify(body));
      assert.equal(body.require_auth_time, true);
      assert.equal(body.default_max_age, 3600);
      assert.deepEqual(body.default_acr_values, ['mfa']);
      await refused({ default_acr_values: ['not-offered'] }, 'invalid_client_metadata');
    });

    it('a client read with an Authorization header of another scheme lacks authentication: 401 with a Bearer challenge and no error code (RFC 7592 §2, RFC 6750 §3.1)', async () => {
      const { body: client } = await register({ redirect_uris: [REDIRECT] });
      const basic = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
      const read = await fetch(client.registration_client_uri, { headers: { authorization: basic } });
      assert.equal(read.status, 401);
      const challenge = read.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer realm="[^"]+"/);
      assert.doesNotMatch(challenge, /error=/, challenge);
      assert.equal((await management(client, 'GET')).status, 200, 'its registration access token still reads it');
    });

    it('a registration or client configuration request whose bearer token cannot be taken (in the query, sent two ways, a malformed header) is 400 invalid_request with a Bearer challenge naming it, as userinfo answers it (RFC 6750 §3, §3.1; RFC 7591 §3, RFC 7592 §2)', async () => {
      const { body: client } = await register({ redirect_uris: [REDIRECT] });
      const token = client.registration_access_token;
      const uri = client.registration_client_uri;
      const cases: [string, string, RequestInit][] = [
        ['read, token in the query', `${uri}?access_token=${token}`, {}],
        ['read, token in the query and the header', `${uri}?access_token=${token}`, { headers: { authorization: `Bearer ${token}` } }],
        ['read, a header of three parts', uri, { headers: { authorization: `Bearer ${token} extra` } }],
        ['delete, token in the query', `${uri}?access_token=${token}`, { method: 'DELETE' }],
      ];
      for (const [name, url, init] of cases) {
        const response = await fetch(url, init);
        assert.equal(response.status, 400, name);
        assert.equal(((await response.json()) as { error: string }).error, 'invalid_request', name);
        assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+", error="invalid_request", error_description="[^"]+"$/, name);
      }
      // A refusal of the metadata is no bearer token problem: no challenge.
      const refused = await fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://dyn.example.test/cb#fragment'] }) });
      assert.equal(refused.status, 400);
      assert.equal(refused.headers.get('www-authenticate'), null);
      assert.equal((await management(client, 'GET')).status, 200, 'the client is still there');
    });

    it('update: PUT replaces the metadata, the new redirect URI works, the registration access token rotates (RFC 7592 §2.2)', async () => {
      const { body: client } = await register({ client_name: 'Before', redirect_uris: [REDIRECT] });
      const moved = 'https://dyn.example.test/moved';
      const update = await management(client, 'PUT', client.registration_access_token, {
        client_id: client.client_id,
        client_secret: client.client_secret,
        client_name: 'After',
        redirect_uris: [moved],
      });
      assert.equal(update.status, 200);
      const updated = (await update.json()) as Registered;
      assert.equal(updated.client_name, 'After');
      assert.deepEqual(updated.redirect_uris, [moved]);
      assert.notEqual(updated.registration_access_token, client.registration_access_token, 'rotated');
      assert.equal((await management(client, 'GET')).status, 401, 'the old registration access token is spent');
      const rp = await RelyingParty.create(op, client.client_id, { secret: client.client_secret! }, moved);
      assert.ok(callbackParams(await rp.signIn(new Agent(), ALICE)).get('code'));
    });

    it("update to the letter: a field left out is removed; client_id must be the client's, a client_secret sent must be its own, and the server-managed fields may not be sent: invalid_request, nothing changed (RFC 7592 §2.2)", async () => {
      const { body: client } = await register({ client_name: 'Named', logo_uri: 'https://dyn.example.test/logo.png', redirect_uris: [REDIRECT] });
      let token = client.registration_access_token;
      const base = { client_id: client.client_id, redirect_uris: [REDIRECT] };
      for (const [name, body] of [
        ['no client_id', { redirect_uris: [REDIRECT] }],
        ['another client_id', { ...base, client_id: 'someone-else' }],
        ['another client_secret', { ...base, client_secret: 'not-the-secret-but-long-enough-0123456789' }],
        // What the store keeps of the secret (its digest) is not the secret.
        ["the secret's digest", { ...base, client_secret: `sha256:${createHash('sha256').update(client.client_secret!).digest('base64url')}` }],
        ['registration_access_token', { ...base, registration_access_token: token }],
        ['registration_client_uri', { ...base, registration_client_uri: client.registration_client_uri }],
        ['client_secret_expires_at', { ...base, client_secret_expires_at: 0 }],
        ['client_id_issued_at', { ...base, client_id_issued_at: 1 }],
      ] as const) {
        const answer = await management(client, 'PUT', token, body);
        assert.equal(answer.status, 400, name);
        assert.equal(((await answer.json()) as { error: string }).error, 'invalid_request', name);
      }
      const read = (await (await management(client, 'GET', token)).json()) as Registered;
      assert.equal(read.client_name, 'Named', 'nothing changed');
      token = read.registration_access_token ?? token;
      const update = await management(client, 'PUT', token, { ...base, client_secret: client.client_secret, client_name: 'Renamed' });
      assert.equal(update.status, 200);
      const updated = (await update.json()) as Registered;
      assert.equal(updated.client_name, 'Renamed');
      assert.equal(updated.logo_uri, undefined, 'left out: removed');
      // The store keeps the secret's digest only: no answer after registration shows it (RFC 7591
      // §3.2.1 makes it OPTIONAL), and the one handed out at registration stays the client's.
      assert.equal(updated.client_secret, undefined, 'the secret is not read back');
      assert.equal(read.client_secret, undefined, 'the secret is not read back');
      const rp = await RelyingParty.create(op, client.client_id, { secret: client.client_secret! }, REDIRECT);
      assert.ok((await rp.redeem(await rp.signIn(new Agent(), ALICE))).access_token, 'the secret stays (client_secret_basic at the token endpoint)');
    });

    it('delete: DELETE → 204, and the client is gone everywhere (RFC 7592 §2.3)', async () => {
      const { body: client } = await register({ redirect_uris: [REDIRECT] });
      assert.equal((await management(client, 'DELETE')).status, 204);
      assert.equal((await management(client, 'GET')).status, 401);
      const rp = await RelyingParty.create(op, client.client_id, { secret: client.client_secret! }, REDIRECT);
      const flow = await rp.authorize(new Agent());
      assert.equal(flow.page.status, 400);
      assert.match(flow.page.html, /Unknown application/);
    });

    it('a redirect URI with a fragment → invalid_redirect_uri (Registration §2, RFC 6749 §3.1.2; Dynamic OP: redirect_uri with fragment)', async () => {
      await refused({ redirect_uris: ['https://dyn.example.test/callback#fragment'] }, 'invalid_redirect_uri');
    });

    it('a backchannel_logout_uri with a fragment → invalid_client_metadata; with a query it is taken (Back-Channel Logout §2.2)', async () => {
      for (const uri of ['https://dyn.example.test/backchannel#fragment', 'https://dyn.example.test/backchannel#']) {
        const body = await refused({ backchannel_logout_uri: uri }, 'invalid_client_metadata');
        assert.match(String(body.error_description), /backchannel_logout_uri.*fragment/);
      }
      const { status, body } = await register({ redirect_uris: [REDIRECT], backchannel_logout_uri: 'https://dyn.example.test/backchannel?tenant=a' });
      assert.equal(status, 201);
      assert.equal((body as unknown as Record<string, unknown>).backchannel_logout_uri, 'https://dyn.example.test/backchannel?tenant=a');
    });

    it('wildcards, http on a public host and custom schemes for web apps → invalid_redirect_uri (RFC 9700 §2.1, §2.6, §4.1.3)', async () => {
      for (const uri of ['https://*.example.test/callback', 'http://dyn.example.test/callback', 'com.example.app:/callback', '/relative']) {
        await refused({ redirect_uris: [uri] }, 'invalid_redirect_uri');
      }
    });

    it('native apps may use loopback http with any port, and reverse-domain private-use schemes (RFC 8252 §7.1, §7.3; RFC 9700 §2.1)', async () => {
      const { status, body } = await register({
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback', 'com.example.app:/callback'],
      });
      assert.equal(status, 201);
      const rp = await RelyingParty.create(op, body.client_id, {}, 'http://127.0.0.1:49152/callback');
      const flow = await rp.signIn(new Agent(), ALICE, { redirect_uri: 'http://127.0.0.1:49152/callback' });
      const answer = await oidc.authorizationCodeGrant(rp.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
      assert.ok(answer.access_token, 'any port on the loopback address');
      await refused({ application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: ['myapp:/callback'] }, 'invalid_redirect_uri');
    });

    it("a native app's loopback port variance never lands on Latchkey's own origin: not its redirect, not its sign-out (RFC 9700 §4.11; registration refuses Latchkey's own address)", async () => {
      const own = new URL(op.issuer);
      assert.ok(['localhost', '127.0.0.1'].includes(own.hostname), `the suite's issuer is on loopback (${op.issuer})`);
      const { status, body } = await register({
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://localhost/account/callback'],
        post_logout_redirect_uris: ['http://localhost/bye'],
      });
      assert.equal(status, 201, JSON.stringify(body));
      const authorize = (redirectUri: string) =>
        fetch(`${op.issuer}/auth?${new URLSearchParams({ client_id: body.client_id, redirect_uri: redirectUri, response_type: 'code', scope: 'openid', state: 'st', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })}`, { redirect: 'manual' });
      // Another port: the app's own loopback listener (RFC 8252 §7.3).
      assert.equal((await authorize('http://localhost:49152/account/callback')).status, 303);
      for (const host of ['localhost', '127.0.0.1']) {
        const ours = await authorize(`http://${host}:${own.port}/account/callback`);
        assert.equal(ours.status, 400, `${host}: refused, not sent to Latchkey's own page (${ours.headers.get('location')})`);
        assert.equal(ours.headers.get('location'), null);
      }
      const signOut = await fetch(`${op.issuer}/session/end?${new URLSearchParams({ client_id: body.client_id, post_logout_redirect_uri: `http://localhost:${own.port}/bye`, state: 'st' })}`, { redirect: 'manual' });
      assert.equal(signOut.status, 400, `a sign-out to Latchkey's own address is refused (${signOut.status})`);
      assert.match(await signOut.text(), /post_logout_redirect_uri/);
    });

    it('logo_uri, policy_uri and tos_uri are registered and returned (Registration §2; Dynamic OP: logo, policy and tos URIs)', async () => {
      const uris = { logo_uri: 'https://dyn.example.test/logo.png', policy_uri: 'https://dyn.example.test/policy', tos_uri: 'https://dyn.example.test/tos', client_uri: 'https://dyn.example.test/' };
      const { status, body } = await register({ redirect_uris: [REDIRECT], ...uris });
      assert.equal(status, 201);
      for (const [name, value] of Object.entries(uris)) assert.equal(body[name], value, name);
      await refused({ logo_uri: 'http://dyn.example.test/logo.png' }, 'invalid_client_metadata');
    });

    it('jwks by value: a client registered with its keys authenticates with private_key_jwt (Registration §2; Dynamic OP: registration jwks)', async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'by-value', alg: 'ES256', use: 'sig' };
      const { status, body } = await register({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
      assert.equal(status, 201);
      assert.equal(body.client_secret, undefined, 'no secret for a private_key_jwt client');
      const rp = await RelyingParty.create(op, body.client_id, { method: oidc.PrivateKeyJwt({ key: privateKey, kid: 'by-value' }) }, REDIRECT);
      assert.ok((await rp.redeem(await rp.signIn(new Agent(), ALICE))).access_token);
    });

    it('jwks_uri: keys by reference work; a client rolls over to a key it published ahead (Registration §2, Core §10.1.1; Dynamic OP: jwks_uri, RP key rotation)', async () => {
      const host = await startJwksHost();
      try {
        const current = await generateKeyPair('RS256');
        const next = await generateKeyPair('RS256');
        host.keys = [
          { ...(await exportJWK(current.publicKey)), kid: 'rp-1', alg: 'RS256', use: 'sig' },
          { ...(await exportJWK(next.publicKey)), kid: 'rp-2', alg: 'RS256', use: 'sig' },
        ];
        const { status, body } = await register({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: host.url });
        assert.equal(status, 201);
        const rp1 = await RelyingParty.create(op, body.client_id, { method: oidc.PrivateKeyJwt({ key: current.privateKey, kid: 'rp-1' }) }, REDIRECT);
        const tokens = await rp1.redeem(await rp1.signIn(new Agent(), ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
        assert.ok(host.fetches >= 1, 'the OP read the jwks_uri');
        const rp2 = await RelyingParty.create(op, body.client_id, { method: oidc.PrivateKeyJwt({ key: next.privateKey, kid: 'rp-2' }) }, REDIRECT);
        const refreshed = await oidc.refreshTokenGrant(rp2.config, tokens.refresh_token!);
        assert.ok(refreshed.access_token, 'the key published ahead is accepted');
      } finally {
        host.server.close();
      }
    });

    it('jwks_uri: assertions with unknown kids are refused and do not make the OP fetch the jwks_uri each time (Core §10.1.1, RFC 7523 §3)', async () => {
      const host = await startJwksHost();
      try {
        const known = await generateKeyPair('RS256');
        host.keys = [{ ...(await exportJWK(known.publicKey)), kid: 'known', alg: 'RS256', use: 'sig' }];
        const { body } = await register({ redirect_uris: [REDIRECT], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: host.url });
        const good = await RelyingParty.create(op, body.client_id, { method: oidc.PrivateKeyJwt({ key: known.privateKey, kid: 'known' }) }, REDIRECT);
        assert.ok((await oidc.clientCredentialsGrant(good.config)).access_token);
        const fetchesBefore = host.fetches;
        for (let attempt = 0; attempt < 5; attempt += 1) {
          const { privateKey } = await generateKeyPair('RS256');
          const stranger = await RelyingParty.create(op, body.client_id, { method: oidc.PrivateKeyJwt({ key: privateKey, kid: `unknown-${attempt}` }) }, REDIRECT);
          await assert.rejects(oidc.clientCredentialsGrant(stranger.config), (error: oidc.ResponseBodyError) => error.error === 'invalid_client');
        }
        assert.ok(host.fetches - fetchesBefore <= 1, `at most one refetch for five unknown kids, saw ${host.fetches - fetchesBefore}`);
      } finally {
        host.server.close();
      }
    });

    it('jwks and jwks_uri together are refused (RFC 7591 §2)', async () => {
      const { publicKey } = await generateKeyPair('RS256');
      await refused(
        { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://dyn.example.test/jwks', jwks: { keys: [await exportJWK(publicKey)] } },
        'invalid_client_metadata',
      );
    });

    it('pairwise subjects and sector_identifier_uri are refused: subjects are public (Registration §2, Core §8; Dynamic OP: sector bad)', async () => {
      await refused({ subject_type: 'pairwise' }, 'invalid_client_metadata');
      await refused({ sector_identifier_uri: 'https://dyn.example.test/sector.json' }, 'invalid_client_metadata');
    });

    it('unsigned or HMAC-signed ID tokens cannot be registered (Core §16.14, Registration §2: id_token_signed_response_alg)', async () => {
      await refused({ id_token_signed_response_alg: 'none' }, 'invalid_client_metadata');
      await refused({ id_token_signed_response_alg: 'HS256' }, 'invalid_client_metadata');
    });

    it('implicit, hybrid and password grants cannot be registered (RFC 7591 §2.1, RFC 9700 §2.1.2, §2.4)', async () => {
      await refused({ response_types: ['code id_token'] }, 'invalid_client_metadata');
      await refused({ response_types: ['token'] }, 'invalid_client_metadata');
      await refused({ grant_types: ['implicit'] }, 'invalid_client_metadata');
      await refused({ grant_types: ['password'] }, 'invalid_client_metadata');
    });

    it('a client cannot choose its client_id (RFC 9700 §2.6, §4.15.1)', async () => {
      const { status, body } = await register({ client_id: op.subs.alice, redirect_uris: [REDIRECT] });
      assert.equal(status, 201);
      assert.notEqual(body.client_id, op.subs.alice);
    });

    it('operator-only scopes cannot be self-registered (RFC 7591 §2 scope, Latchkey policy)', async () => {
      await refused({ scope: 'openid admin' }, 'invalid_client_metadata');
    });

    it("a refusal's error_description is printable ASCII, whatever the metadata held; its quotes stay (RFC 7591 §3.2.2)", async () => {
      const body = await refused({ scope: 'openid caf\u00e9' }, 'invalid_client_metadata');
      assert.match(String(body.error_description), /^[\x20-\x7E]+$/);
      assert.match(String(body.error_description), /scope "caf\?" is not offered here/);
      const uri = await refused({ redirect_uris: ['https://caf\u00e9.example.test/callback#x'] }, 'invalid_redirect_uri');
      assert.match(String(uri.error_description), /^[\x20-\x7E]+$/);
    });

    it('a body that is not a JSON object → 400 with an error code (RFC 7591 §3.2.2)', async () => {
      for (const body of ['{not json', '[1,2]', '"string"', 'null']) {
        const answer = await register(body);
        assert.equal(answer.status, 400, body);
        assert.ok(['invalid_client_metadata', 'invalid_request'].includes(String(answer.body.error)), body);
      }
    });
  });

  describe('with initial access tokens', () => {
    let op: Op;

    before(async () => {
      op = await startOp({ people: [ALICE], env: { KEYS_REFRESH_INTERVAL: '0.5', KEYS_PUBLISH_LEAD: '60' } });
    });
    after(() => op?.stop());

    const register = (token?: string) =>
      fetch(op.metadata.registration_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ redirect_uris: [REDIRECT] }),
      });

    it('without an initial access token registration is refused with 401; a token in the query string is 400 invalid_request with its challenge (RFC 7591 §3, RFC 6750 §3, §3.1)', async () => {
      const answer = await register();
      assert.equal(answer.status, 401);
      assert.equal(((await answer.json()) as { error: string }).error, 'invalid_token');
      assert.equal((await register('made-up-token')).status, 401);
      // One that cannot be taken at all (in the query string) is invalid_request, with the challenge naming it (RFC 6750 §3).
      const query = await fetch(`${op.metadata.registration_endpoint!}?access_token=made-up-token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) });
      assert.equal(query.status, 400);
      assert.match(query.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+", error="invalid_request", error_description="[^"]+"$/);
    });

    it('an initial access token from the CLI registers one client, once (RFC 7591 §3; latchkey registration token create)', async () => {
      const run = await latchkey(op.env, ['registration', 'token', 'create', '--expires-in', '600']);
      assert.equal(run.status, 0, run.stderr);
      const { initial_access_token: token } = JSON.parse(run.stdout) as { initial_access_token: string };
      assert.equal((await register(token)).status, 201);
      assert.equal((await register(token)).status, 401);
    });

    it('the OP rotates its signing key: new ID tokens use the new, published key; earlier ones still verify (Core §10.1.1; Dynamic OP: server rotate keys)', async () => {
      // The token is only the way in here (the CLI's own is the test above): made in process.
      const token = await initialAccessToken(op.server!);
      const config = await oidc.dynamicClientRegistration(new URL(op.issuer), { redirect_uris: [REDIRECT] }, undefined, {
        execute: [oidc.allowInsecureRequests],
        initialAccessToken: token,
      });
      const metadata = config.clientMetadata();
      const rp = await RelyingParty.create(op, String(metadata.client_id), { secret: String(metadata.client_secret) }, REDIRECT);
      const agent = new Agent();
      const before = (await rp.redeem(await rp.signIn(agent, ALICE))).id_token!;
      const oldKid = decodeProtectedHeader(before).kid;

      const rotate = await latchkey(op.env, ['keys', 'rotate', '--now']);
      assert.equal(rotate.status, 0, rotate.stderr);
      const after = await eventually(async () => {
        const idToken = (await rp.redeem(await rp.authorize(agent, { prompt: 'none' }))).id_token!;
        assert.notEqual(decodeProtectedHeader(idToken).kid, oldKid, 'signed with the new key');
        return idToken;
      }, 60);
      const { keys } = (await (await fetch(op.metadata.jwks_uri!)).json()) as { keys: { kid: string }[] };
      const published = keys.map((key) => key.kid);
      assert.ok(published.includes(String(decodeProtectedHeader(after).kid)), 'the new kid is published');
      assert.ok(published.includes(String(oldKid)), 'the retired kid stays published');
      const fresh = (await import('jose')).createRemoteJWKSet(new URL(op.metadata.jwks_uri!));
      await jwtVerify(after, fresh, { issuer: op.issuer, audience: String(metadata.client_id) });
      await jwtVerify(before, fresh, { issuer: op.issuer, audience: String(metadata.client_id) });
    });
  });
});
