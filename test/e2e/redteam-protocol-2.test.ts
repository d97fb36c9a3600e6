/**
 * The red team's second protocol pass (2026-12-04): an external OAuth attack suite's catalogue of
 * token and artifact confusion and substitution, black box over HTTP against a running Latchkey.
 * Every kind of JWT Latchkey signs and every kind of opaque artifact it hands out is presented where
 * another is expected; client authentication methods are mixed; codes are injected across clients
 * and redirect URIs. What the first protocol pass, jwt-attacks and oauth-security pinned is not
 * repeated (docs/security-passes.md, "Looked at in the second protocol pass", says which is which). Every
 * test titled "held: …" pins what held; the last one, found on the way (an app's own RFC 7009
 * revocation, then its person's consent page refused), fails without its fix.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent, ALICE, callbackParams, grantApi, RelyingParty, startOp, webClient, type Flow, type Op } from '../conformance/fixture.js';
import { initialAccessToken } from '../helpers/operator.js';
import { signInSteps } from '../helpers/sign-in.js';
import { acceptedBy, API, basic, RESOURCE_SERVERS } from '../helpers/tokens.js';

const SECRET = 'redteam-protocol-2-secret-with-plenty-of-entropy-0123';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const now = () => Math.floor(Date.now() / 1000);

type Answer = { status: number; body: Record<string, unknown>; text: string; headers: Headers };

describe('e2e: red team, second protocol pass: token and artifact confusion (RFC 6749, 6750, 7009, 7523, 7591, 7592, 7662, 8628, 8725, 9068, 9126, 9207)', function () {
  this.timeout(90_000);
  let op: Op;
  let web: RelyingParty;
  let signed: RelyingParty;
  let alice: Agent;
  let helper: ResourceServer;
  let clientKey: Awaited<ReturnType<typeof generateKeyPair>>;
  /** signed's back-channel logout endpoint: the logout tokens it was sent. */
  const received: string[] = [];
  let receiver: Server;

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const value = new URLSearchParams(body).get('logout_token');
        if (value) received.push(value);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    const backchannel = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/logout`;
    clientKey = await generateKeyPair('RS256');
    const jwks = { keys: [{ ...(await exportJWK(clientKey.publicKey)), kid: 'shared-1', alg: 'RS256', use: 'sig' }] };
    const machine = (id: string, extra: Record<string, unknown> = {}) => ({ client_id: id, client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], ...extra });
    op = await startOp({
      people: [ALICE],
      env: { RESOURCE_SERVERS },
      clients: [
        webClient('web', SECRET),
        webClient('other', SECRET, { redirect_uris: ['https://web.example.test/callback'] }),
        webClient('signed', SECRET, { userinfo_signed_response_alg: 'RS256', backchannel_logout_uri: backchannel }),
        webClient('poster', SECRET, { token_endpoint_auth_method: 'client_secret_post' }),
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example.test/cb'], grant_types: ['authorization_code'] },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] },
        { client_id: 'tv2', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
        machine('machine'),
        machine('api'),
        machine('ops'),
        machine('pkjwt-a', { client_secret: undefined, token_endpoint_auth_method: 'private_key_jwt', jwks }),
        machine('pkjwt-b', { client_secret: undefined, token_endpoint_auth_method: 'private_key_jwt', jwks }),
      ],
    });
    await grantApi(op, 'api', `${op.issuer}/revocations`, ['revocations']);
    await grantApi(op, 'ops', `${op.issuer}/admin`, ['admin:read']);
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    signed = await RelyingParty.create(op, 'signed', { secret: SECRET });
    alice = new Agent();
    await web.redeem(await web.signIn(alice, ALICE));
    helper = await createResourceServer({ issuer: op.issuer, audience: API, clientId: 'api', clientSecret: SECRET });
  });
  after(async () => {
    helper?.close();
    await op?.stop();
    receiver?.close();
  });

  async function post(url: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(params),
    });
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // not JSON
    }
    return { status: response.status, body, text, headers: response.headers };
  }
  const as = (id: string) => ({ authorization: basic({ id, secret: SECRET }) });
  const token = (params: Record<string, string>, client = 'web') => post(op.metadata.token_endpoint!, params, as(client));
  const codeOf = (flow: Flow) => callbackParams(flow).get('code')!;
  const clientToken = async (client: string, resource: string, scope: string) => {
    const answer = await token({ grant_type: 'client_credentials', resource, scope }, client);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return String(answer.body.access_token);
  };
  const bearerAt = async (url: string, value: string) => (await fetch(url, { headers: { authorization: `Bearer ${value}` } })).status;
  const introspect = async (client: string, value: string, hint?: string) =>
    (await post(op.metadata.introspection_endpoint!, { token: value, ...(hint && { token_type_hint: hint }) }, as(client))).body;
  const silentHint = async (client: RelyingParty, hint: string) => {
    const flow = await client.authorize(alice, { prompt: 'none', id_token_hint: hint });
    return callbackParams(flow);
  };
  const endSessionWith = async (hint: string, clientId: string) => {
    const response = await alice.follow(`${op.metadata.end_session_endpoint}?${new URLSearchParams({ id_token_hint: hint, client_id: clientId, post_logout_redirect_uri: `https://${clientId}.example.test/signed-out` })}`);
    return response;
  };

  it("held: every JWT Latchkey signs, presented where another kind is expected: an ID token, a signed userinfo response, a logout token, a person's and a client's JWT access token, the revocation feed's token and a client's DPoP proof are each taken only where they are meant (userinfo, introspection, the feed, the admin API, latchkey/resource-server, id_token_hint at authorization, PAR, the device endpoint and end-session, a code, refresh token or device code, an initial or registration access token, a client_assertion); introspection is never signed (RFC 8725 §3.11, RFC 9068 §4, Core §5.3.2, RFC 9701)", async () => {
    const tokens = await signed.redeem(await signed.signIn(alice, ALICE, { scope: 'openid email' }));
    const userinfoJwt = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(userinfoJwt.status, 200);
    assert.match(String(userinfoJwt.headers.get('content-type')), /application\/jwt/);
    // A logout token signed sends its back-channel endpoint: a browser of its own signs in and out.
    const leaving = new Agent();
    const leavingIdToken = (await signed.redeem(await signed.signIn(leaving, ALICE))).id_token!;
    const confirm = await leaving.follow(`${op.metadata.end_session_endpoint}?${new URLSearchParams({ id_token_hint: leavingIdToken })}`);
    await leaving.submit(confirm, '/session/end/confirm', { logout: 'yes' }, 'https://');
    assert.equal(received.length, 1, 'the logout token was sent');
    const apiFlow = await signed.signIn(alice, ALICE, { scope: 'openid read', resource: API });
    const personal = await token({ grant_type: 'authorization_code', code: codeOf(apiFlow), code_verifier: apiFlow.verifier, redirect_uri: apiFlow.redirectUri, resource: API }, 'signed');
    assert.equal(personal.status, 200, personal.text);
    const jwts: Record<string, string> = {
      "a person's JWT access token for the API": String(personal.body.access_token),
      'a logout token': received[0]!,
      'an ID token': tokens.id_token!,
      'a signed userinfo response': await userinfoJwt.text(),
      "a client's JWT access token for the API": await clientToken('machine', API, 'read'),
      "the revocation feed's token": await clientToken('api', `${op.issuer}/revocations`, 'revocations'),
    };
    // A client's DPoP proof (signed by the client, typ dpop+jwt) is no token of ours anywhere.
    const dpopKey = await generateKeyPair('ES256');
    jwts["a client's DPoP proof"] = await new SignJWT({ jti: randomUUID(), iat: now(), htm: 'GET', htu: op.metadata.userinfo_endpoint, sub: op.subs.alice, aud: API, client_id: 'signed', scope: 'read', exp: now() + 60 })
      .setIssuer(op.issuer).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(dpopKey.publicKey) }).sign(dpopKey.privateKey);
    const feed = `${op.issuer}/revocations`;
    const admin = `${op.issuer}/admin/clients`;
    // Introspection answers are never signed (RFC 9701 is not offered): asked for one, plain JSON.
    const asJwt = await fetch(op.metadata.introspection_endpoint!, { method: 'POST', headers: { ...as('api'), accept: 'application/token-introspection+jwt', 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: jwts["a client's JWT access token for the API"]! }) });
    assert.match(String(asJwt.headers.get('content-type')), /^application\/json/);
    assert.equal(((await asJwt.json()) as { active: boolean }).active, true);
    // The baselines: each is taken where it is meant.
    assert.equal(await acceptedBy(helper, jwts["a client's JWT access token for the API"]!), true);
    assert.equal(await acceptedBy(helper, jwts["a person's JWT access token for the API"]!), true);
    assert.equal(await bearerAt(feed, jwts["the revocation feed's token"]!), 200);
    assert.equal(await bearerAt(admin, await clientToken('ops', `${op.issuer}/admin`, 'admin:read')), 200);
    assert.equal((await silentHint(signed, tokens.id_token!)).get('code') !== null, true, 'its own ID token is a hint');
    assert.equal((await endSessionWith(tokens.id_token!, 'signed')).status, 200, 'its own ID token is the end-session hint: the confirmation');
    assert.notEqual((await endSessionWith(tokens.id_token!, 'web')).status, 200, "another client's ID token with this client's client_id at end-session");
    assert.equal((await silentHint(web, tokens.id_token!)).get('error'), 'invalid_request', "another client's ID token as a silent request's hint");

    for (const [what, jwt] of Object.entries(jwts)) {
      assert.equal(await bearerAt(op.metadata.userinfo_endpoint!, jwt), 401, `${what} at userinfo`);
      assert.equal(await bearerAt(admin, jwt), 401, `${what} at the admin API`);
      if (what !== "the revocation feed's token") assert.equal(await bearerAt(feed, jwt), 401, `${what} at the feed`);
      if (!what.includes('JWT access token for the API')) assert.equal(await acceptedBy(helper, jwt), false, `${what} at latchkey/resource-server`);
      if (!what.includes('access token') && !what.includes("feed's token")) {
        assert.deepEqual(await introspect('signed', jwt), { active: false }, `${what} at introspection, by its own client`);
        assert.deepEqual(await introspect('api', jwt), { active: false }, `${what} at introspection, by the API`);
      }
      if (what !== 'an ID token') {
        const hinted = await silentHint(signed, jwt);
        assert.equal(hinted.get('code'), null, `${what} as an id_token_hint`);
        assert.equal(hinted.get('error'), 'invalid_request', `${what} as an id_token_hint`);
        const page = await endSessionWith(jwt, 'signed');
        assert.notEqual(page.status, 200, `${what} as the end-session hint: ${page.status}`);
      }
      // As the hint of a device's request (none is the device's ID token) and of a pushed request (only the ID token is signed's).
      const deviceHint = await post(op.metadata.device_authorization_endpoint!, { client_id: 'tv', scope: 'openid', id_token_hint: jwt });
      assert.equal(deviceHint.body.error, 'invalid_request', `${what} as a device request's hint: ${deviceHint.text}`);
      const pushedHint = await post(op.metadata.pushed_authorization_request_endpoint!, {
        client_id: 'signed', response_type: 'code', scope: 'openid', redirect_uri: 'https://signed.example.test/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', id_token_hint: jwt,
      }, as('signed'));
      assert.equal(pushedHint.status, what === 'an ID token' ? 201 : 400, `${what} as a pushed request's hint: ${pushedHint.text}`);
      // As a grant's artifact, a registration access token or an initial access token: refused, never a 500.
      for (const [grant, params] of [
        ['a code', { grant_type: 'authorization_code', code: jwt, code_verifier: 'v'.repeat(43), redirect_uri: 'https://signed.example.test/callback' }],
        ['a refresh token', { grant_type: 'refresh_token', refresh_token: jwt }],
      ] as const) {
        const answer = await token(params, 'signed');
        assert.equal(answer.body.error, 'invalid_grant', `${what} as ${grant}: ${answer.text}`);
      }
      const asDevice = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code: jwt, client_id: 'tv' });
      assert.equal(asDevice.body.error, 'invalid_grant', `${what} as a device code: ${asDevice.text}`);
      const registered = await fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` }, body: JSON.stringify({ redirect_uris: ['https://dyn.example.test/cb'] }) });
      assert.equal(registered.status, 401, `${what} as an initial access token`);
      assert.equal(await bearerAt(`${op.metadata.registration_endpoint}/signed`, jwt), 401, `${what} as a registration access token`);
      // As the client's own assertion: signed by us, not by the client.
      const asAssertion = await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', client_id: 'pkjwt-a', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt });
      assert.equal(asAssertion.body.access_token, undefined, `${what} as a client_assertion`);
      assert.ok(['invalid_client', 'invalid_request'].includes(String(asAssertion.body.error)), `${what} as a client_assertion: ${asAssertion.body.error}`);
    }
  });

  it('held: every opaque artifact presented where another is expected: a code, a refresh token, an access token, a client_credentials and an admin token, a device code and its user code, a pushed request_uri, a registration access token and an interaction id, at every grant type, introspection under every hint, revocation, userinfo, the admin API, the feed and RFC 7592; none works there, and none is spent by it (RFC 6749 §5.2, RFC 7009 §2.1, RFC 7662 §2.2, RFC 7592 §2, RFC 8628 §3.4)', async () => {
    const offline = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
    const flow = await web.signIn(alice, ALICE);
    const device = await post(op.metadata.device_authorization_endpoint!, { client_id: 'tv', scope: 'openid' });
    assert.equal(device.status, 200, JSON.stringify(device.body));
    const pushed = await post(op.metadata.pushed_authorization_request_endpoint!, {
      client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri, code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier), code_challenge_method: 'S256',
    }, as('web'));
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    const register = (bearer: string) =>
      fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify({ redirect_uris: ['https://dyn.example.test/cb'] }) });
    const registered = await register(await initialAccessToken(op.server!));
    assert.equal(registered.status, 201, await registered.clone().text());
    const registration = (await registered.json()) as { registration_client_uri: string; registration_access_token: string };
    const interaction = await web.authorize(new Agent());
    const uid = /\/interaction\/([^/?#]+)/.exec(interaction.page.url)?.[1];
    assert.ok(uid, interaction.page.url);
    const requestUri = String(pushed.body.request_uri);
    const artifacts: Record<string, string> = {
      'a code': codeOf(flow),
      'a refresh token': offline.refresh_token!,
      'an access token': offline.access_token,
      'a client_credentials token': await clientToken('machine', 'https://ledger.example.test', 'read'),
      'an admin token': await clientToken('ops', `${op.issuer}/admin`, 'admin:read'),
      'a device code': String(device.body.device_code),
      'a user code': String(device.body.user_code),
      'a pushed request_uri': requestUri,
      "a pushed request_uri's id": requestUri.split(':').at(-1)!,
      'a registration access token': registration.registration_access_token,
      'an interaction id': uid,
      'an initial access token': await initialAccessToken(op.server!),
    };
    const feed = `${op.issuer}/revocations`;
    const admin = `${op.issuer}/admin/clients`;
    for (const [what, value] of Object.entries(artifacts)) {
      // The grant types, each as the client the artifact was issued to where that client may use the grant.
      if (what !== 'a code') {
        const asCode = await token({ grant_type: 'authorization_code', code: value, code_verifier: flow.verifier, redirect_uri: web.redirectUri });
        assert.equal(asCode.body.error, 'invalid_grant', `${what} as a code: ${asCode.text}`);
      }
      if (what !== 'a refresh token') {
        const asRefresh = await token({ grant_type: 'refresh_token', refresh_token: value });
        assert.equal(asRefresh.body.error, 'invalid_grant', `${what} as a refresh token: ${asRefresh.text}`);
      }
      if (what !== 'a device code') {
        const asDevice = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code: value, client_id: 'tv' });
        assert.equal(asDevice.body.error, 'invalid_grant', `${what} as a device code: ${asDevice.text}`);
      }
      const isAccess = what === 'an access token';
      const isRefresh = what === 'a refresh token';
      for (const hint of [undefined, 'access_token', 'refresh_token', 'authorization_code', 'urn:ietf:params:oauth:token-type:device_code', 'registration_access_token']) {
        const seen = await introspect('web', value, hint);
        assert.equal(seen.active, isAccess || isRefresh, `${what} introspected by its client with the hint ${hint}: ${JSON.stringify(seen)}`);
      }
      for (const [client, mine] of [['machine', what === 'a client_credentials token'], ['ops', what === 'an admin token']] as const) {
        assert.equal((await introspect(client, value)).active, mine, `${what} introspected by ${client}`);
      }
      // Refused: 401, or 400 for a value that is no RFC 6750 b64token (a request_uri's colons) where the bearer parser says so.
      const at = async (status: Promise<number>, taken: boolean, where: string) => {
        const got = await status;
        if (taken) assert.equal(got, 200, `${what} at ${where}`);
        else assert.ok(got === 401 || got === 400, `${what} at ${where}: ${got}`);
      };
      await at(bearerAt(op.metadata.userinfo_endpoint!, value), isAccess, 'userinfo');
      await at(bearerAt(admin, value), what === 'an admin token', 'the admin API');
      await at(bearerAt(feed, value), false, 'the feed');
      await at(bearerAt(registration.registration_client_uri, value), what === 'a registration access token', 'RFC 7592');
      if (what !== 'an initial access token') await at(register(value).then((response) => response.status), false, 'registration, as an initial access token');
    }
    // Revoked under every hint by every client that might, the wrong kinds first: nothing is spent by that.
    for (const [what, value] of Object.entries(artifacts)) {
      if (what === 'an access token' || what === 'a refresh token' || what === 'a client_credentials token' || what === 'an admin token') continue;
      for (const client of ['web', 'machine', 'ops']) {
        for (const hint of [undefined, 'access_token', 'refresh_token']) {
          const revoked = await post(op.metadata.revocation_endpoint!, { token: value, ...(hint && { token_type_hint: hint }) }, as(client));
          assert.ok(revoked.status === 200 || revoked.body.error === 'unsupported_token_type', `${what} revoked by ${client} (${hint}): ${revoked.status} ${revoked.text}`);
        }
      }
    }
    assert.equal(await bearerAt(registration.registration_client_uri, registration.registration_access_token), 200, 'the registration access token still works');
    assert.equal((await register(artifacts['an initial access token']!)).status, 201, 'the initial access token still registers');
    const polled = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code: artifacts['a device code']!, client_id: 'tv' });
    assert.equal(polled.body.error, 'authorization_pending', 'the device code is still pending');
    assert.equal((await introspect('web', offline.refresh_token!)).active, true, 'the refresh token is still active');
    assert.equal(await bearerAt(op.metadata.userinfo_endpoint!, offline.access_token), 200, 'the access token still works');
    const fromPush = await alice.follow(`${op.metadata.authorization_endpoint}?${new URLSearchParams({ client_id: 'web', request_uri: requestUri })}`, {}, web.redirectUri);
    assert.ok(callbackParams({ ...flow, page: fromPush }).get('code'), `the pushed request is still there: ${fromPush.url}`);
    const redeemed = await token({ grant_type: 'authorization_code', code: codeOf(flow), code_verifier: flow.verifier, redirect_uri: web.redirectUri });
    assert.equal(redeemed.status, 200, `the code is not spent: ${redeemed.text}`);
  });

  it("held: client authentication mixed up: Basic for one client and client_id for another, two mechanisms at once, a client's assertion presented for another client (sharing its key) or replayed at another endpoint, an HMAC assertion keyed with a client's secret, a public client with a secret or an assertion, a private_key_jwt client with a secret, an assertion as a DPoP proof (RFC 6749 §2.3, RFC 7523 §3, RFC 9449 §4.3)", async () => {
    const assertion = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      new SignJWT({ jti: randomUUID(), iat: now(), exp: now() + 60, aud: op.issuer, ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'shared-1', ...header }).sign(clientKey.privateKey);
    const ofA = (extra: Record<string, unknown> = {}) => assertion({ iss: 'pkjwt-a', sub: 'pkjwt-a', ...extra });
    const withAssertion = (value: string, params: Record<string, string> = {}, headers: Record<string, string> = {}, url = op.metadata.token_endpoint!) =>
      post(url, { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: value, ...params }, headers);
    const refused = (answer: Answer, what: string, errors = ['invalid_client', 'invalid_request']) => {
      assert.equal(answer.body.access_token, undefined, what);
      assert.ok(errors.includes(String(answer.body.error)), `${what}: ${answer.status} ${answer.text}`);
      assert.ok(answer.status === 400 || answer.status === 401, `${what}: ${answer.status}`);
    };
    // The baselines: each client authenticates (no API granted to them: the grant is refused after authentication, for its scope).
    const baseline = await withAssertion(await ofA());
    assert.notEqual(baseline.body.error, 'invalid_client', baseline.text);
    assert.notEqual(baseline.body.error, 'invalid_request', baseline.text);
    const posted = await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', client_id: 'machine', client_secret: SECRET, resource: API, scope: 'read' });
    assert.equal(posted.status, 200, `a secret client may post its secret (docs/protocol.md): ${posted.text}`);

    // Another spelling of a client's id is no client (the store's lookups are exact).
    for (const spelt of ['MACHINE', 'Machine', ' machine', 'machine ', 'machine\u200b', 'ｍachine', 'machine%00']) {
      const answer = await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', resource: API, scope: 'read' }, { authorization: basic({ id: spelt, secret: SECRET }) });
      refused(answer, `Basic as ${JSON.stringify(spelt)}`);
      refused(await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', client_id: spelt, client_secret: SECRET, resource: API, scope: 'read' }), `posted as ${JSON.stringify(spelt)}`);
    }
    refused(await token({ grant_type: 'client_credentials', client_id: 'api', resource: API, scope: 'read' }, 'machine'), "Basic for machine, client_id api in the body");
    refused(await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', client_id: 'machine', client_secret: SECRET, resource: API, scope: 'read' }, as('api')), 'Basic for api and a posted secret for machine');
    refused(await withAssertion(await ofA(), {}, as('machine')), "Basic for machine and pkjwt-a's assertion");
    refused(await withAssertion(await ofA(), { client_id: 'pkjwt-b' }), "pkjwt-a's assertion for pkjwt-b (the same key)");
    refused(await withAssertion(await assertion({ iss: 'pkjwt-a', sub: 'pkjwt-b' })), 'iss pkjwt-a, sub pkjwt-b');
    refused(await withAssertion(await assertion({ iss: 'pkjwt-b', sub: 'pkjwt-a' })), 'iss pkjwt-b, sub pkjwt-a');
    // Used once at introspection, it is spent at the token endpoint, and at another instance's too (one store).
    const once = await ofA();
    const introspected = await withAssertion(once, { token: 'anything' }, {}, op.metadata.introspection_endpoint!);
    assert.equal(introspected.status, 200, introspected.text);
    refused(await withAssertion(once), 'an assertion used at introspection, replayed at the token endpoint', ['invalid_client']);
    refused(await withAssertion(once, {}, {}, op.metadata.revocation_endpoint!), 'replayed at revocation', ['invalid_client']);
    // client_secret_jwt is not offered: an HS256 assertion keyed with the client's own secret.
    const hmac = await new SignJWT({ jti: randomUUID(), iat: now(), exp: now() + 60, aud: op.issuer, iss: 'machine', sub: 'machine' })
      .setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    refused(await withAssertion(hmac, { resource: API, scope: 'read' }), 'an HS256 assertion keyed with the secret');
    // A secret for a private_key_jwt client, a secret or an assertion for a public client.
    refused(await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', client_id: 'pkjwt-a', client_secret: SECRET }), 'a secret for a private_key_jwt client');
    const spaFlow = await RelyingParty.create(op, 'spa', {}, 'https://spa.example.test/cb').then((spa) => spa.signIn(alice, ALICE));
    const spaRedeem = (params: Record<string, string>, headers: Record<string, string> = {}) =>
      post(op.metadata.token_endpoint!, { grant_type: 'authorization_code', code: codeOf(spaFlow), code_verifier: spaFlow.verifier, redirect_uri: spaFlow.redirectUri, ...params }, headers);
    refused(await spaRedeem({ client_id: 'spa', client_secret: SECRET }), 'a public client with a secret');
    refused(await spaRedeem({}, { authorization: basic({ id: 'spa', secret: SECRET }) }), 'a public client with Basic');
    refused(await spaRedeem({ client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion({ iss: 'spa', sub: 'spa' }) }), 'a public client with an assertion');
    // A client assertion is no DPoP proof (typ dpop+jwt and the key in the header).
    const asProof = await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', resource: API, scope: 'read' }, { ...as('machine'), dpop: await assertion({ iss: 'machine', sub: 'machine', htm: 'POST', htu: op.metadata.token_endpoint }) });
    assert.equal(asProof.body.error, 'invalid_dpop_proof', asProof.text);
    assert.equal((await spaRedeem({ client_id: 'spa' })).status, 200, 'the code was spent by none of those');
  });

  it("held: a code injected across clients that share a redirect URI, across PKCE verifiers, and at the token endpoint with a redirect_uri a near miss of its request's (case, trailing slash, default port, percent-encoding, a query or fragment added); none spends it (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §4.5)", async () => {
    const flow = await web.signIn(alice, ALICE, { redirect_uri: 'https://web.example.test/callback' });
    const code = codeOf(flow);
    const redeem = (params: Record<string, string>, client = 'web') =>
      token({ grant_type: 'authorization_code', code, code_verifier: flow.verifier, redirect_uri: flow.redirectUri, ...params }, client);
    // `other` registered the same redirect URI as web: the code is web's still.
    const injected = await redeem({}, 'other');
    assert.equal(injected.body.error, 'invalid_grant', injected.text);
    const another = await web.signIn(alice, ALICE);
    assert.equal((await redeem({ code_verifier: another.verifier })).body.error, 'invalid_grant', "another flow's verifier");
    for (const near of ['HTTPS://WEB.EXAMPLE.TEST/callback', 'https://web.example.test/Callback', 'https://web.example.test/callback/', 'https://web.example.test:443/callback', 'https://web.example.test/%63allback', 'https://web.example.test/callback?', 'https://web.example.test/callback#', 'https://web.example.test/callback?x=1', 'https://web.example.test./callback', 'https://web.example.test/./callback']) {
      const answer = await redeem({ redirect_uri: near });
      assert.equal(answer.status, 400, `${near}: ${answer.text}`);
      assert.ok(['invalid_grant', 'invalid_request'].includes(String(answer.body.error)), `${near}: ${answer.text}`);
    }
    const redeemed = await redeem({});
    assert.equal(redeemed.status, 200, `not spent by any of those: ${redeemed.text}`);
  });

  it("held: artifacts of one client presented by another of the same kind: a registration access token at another client's RFC 7592 URI, a device code polled by another device client, a client_id chosen at registration (RFC 7591 §3.2.1, RFC 7592 §2, RFC 8628 §3.4, RFC 9068 §5, RFC 9700 §4.15)", async () => {
    const iat = () => initialAccessToken(op.server!);
    const register = async (metadata: Record<string, unknown>) => {
      const response = await fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await iat()}` }, body: JSON.stringify(metadata) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const first = await register({ redirect_uris: ['https://one.example.test/cb'] });
    const second = await register({ redirect_uris: ['https://two.example.test/cb'] });
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.equal(await bearerAt(second.body.registration_client_uri!, first.body.registration_access_token!), 401, "one client's registration access token at the other's URI");
    const update = await fetch(second.body.registration_client_uri!, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${first.body.registration_access_token}` },
      body: JSON.stringify({ client_id: second.body.client_id, redirect_uris: ['https://evil.example.test/cb'] }),
    });
    assert.equal(update.status, 401, "one client's registration access token updating the other");
    // A client_id of its own choosing (a person's sub: a client's own token's sub is its client_id, RFC 9068 §5) is not taken.
    const chosen = await register({ client_id: op.subs.alice, redirect_uris: ['https://three.example.test/cb'] });
    assert.ok(chosen.status === 400 || chosen.body.client_id !== op.subs.alice, JSON.stringify(chosen.body));
    // The engine takes a registration access token presented at another client's URI for a leaked one and ends it.
    assert.equal(await bearerAt(first.body.registration_client_uri!, first.body.registration_access_token!), 401, 'ended by its use at the other URI');
    const renamed = await fetch(second.body.registration_client_uri!, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${second.body.registration_access_token}` },
      body: JSON.stringify({ client_id: op.subs.alice, redirect_uris: ['https://two.example.test/cb'] }),
    });
    assert.equal(renamed.status, 400, `RFC 7592 §2.2: the client_id cannot be changed: ${await renamed.clone().text()}`);
    assert.equal(await bearerAt(`${op.metadata.registration_endpoint}/${encodeURIComponent(op.subs.alice!)}`, second.body.registration_access_token!), 401);
    // A device code polled by another device client (public, so anyone may name either client_id).
    const device = await post(op.metadata.device_authorization_endpoint!, { client_id: 'tv', scope: 'openid' });
    for (const client of ['tv2', 'spa', 'web']) {
      const polled = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code: String(device.body.device_code), client_id: client }, client === 'web' ? as('web') : {});
      assert.ok(['invalid_grant', 'unauthorized_client'].includes(String(polled.body.error)), `${client}: ${polled.text}`);
    }
    assert.equal((await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code: String(device.body.device_code), client_id: 'tv' })).body.error, 'authorization_pending');
  });

  it('held: the response modes of the code flow carry iss with the code wherever they put it, and those not offered redirect nothing but an error (RFC 9207 §2, OAuth 2.0 Multiple Response Types §2.1, JARM)', async () => {
    const fragment = await web.authorize(alice, { response_mode: 'fragment' });
    const location = new URL(fragment.page.url);
    assert.equal(location.search, '', `nothing in the query: ${location.href}`);
    const inFragment = new URLSearchParams(location.hash.slice(1));
    assert.ok(inFragment.get('code'), location.href);
    assert.equal(inFragment.get('iss'), op.issuer);
    assert.equal(inFragment.get('state'), fragment.state);
    const stateless = await web.authorize(alice, { state: '' });
    const back = callbackParams(stateless);
    assert.ok(back.get('code'));
    assert.equal(back.get('iss'), op.issuer, 'iss without a state too');
    const redirected: string[] = [];
    for (const mode of ['jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt', 'web_message', 'none']) {
      const refused = await web.authorize(alice, { response_mode: mode });
      const url = new URL(refused.page.url);
      const params = new URLSearchParams(url.search || url.hash.slice(1));
      assert.equal(params.get('code'), null, `${mode}: ${url.href}`);
      if (url.href.startsWith(web.redirectUri)) {
        assert.ok(params.get('error'), `${mode}: ${url.href}`);
        assert.equal(params.get('iss'), op.issuer, `${mode}: ${url.href}`);
        redirected.push(mode);
      }
    }
    assert.deepEqual(redirected, ['jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt', 'web_message', 'none'], 'each an error at the redirect URI');
  });

  it("held: what a token names in place of what its request named: a code for one API redeemed for another, a privileged one or an unknown one, and the ID token's sid, which names no session id the browser holds (RFC 8707 §2.2, Back-Channel Logout §2.1)", async () => {
    const flow = await signed.signIn(alice, ALICE, { scope: 'openid read', resource: API });
    const redeem = (resource?: string) =>
      token({ grant_type: 'authorization_code', code: codeOf(flow), code_verifier: flow.verifier, redirect_uri: flow.redirectUri, ...(resource && { resource }) }, 'signed');
    for (const other of ['https://ledger.example.test', `${op.issuer}/revocations`, `${op.issuer}/admin`, 'https://unknown.example.test', `${API}/`]) {
      const answer = await redeem(other);
      assert.equal(answer.status, 400, `${other}: ${answer.text}`);
      assert.equal(answer.body.access_token, undefined, other);
    }
    const redeemed = await redeem(API);
    assert.equal(redeemed.status, 200, `not spent by those: ${redeemed.text}`);
    assert.deepEqual(decodeJwt(String(redeemed.body.access_token)).aud, API);
    // sid: the session's (one for every app, as public subjects are), and no cookie value of the person's browser (an app that learnt it could not act as the session).
    const sids = [];
    for (const client of [web, signed]) {
      const { id_token } = await client.redeem(await client.signIn(alice, ALICE));
      sids.push(String(decodeJwt(id_token!).sid));
    }
    const cookies = alice.cookieHeader(op.issuer);
    for (const sid of sids) assert.ok(sid.length > 0 && !cookies.includes(sid), `sid ${sid} is in no cookie: ${cookies.replace(/=[^;]+/g, '=…')}`);
  });

  it("held: a token revoked under another kind's token_type_hint, or a hint no server knows, is revoked all the same: a refresh token hinted access_token, an opaque or JWT access token hinted refresh_token, a client's own token hinted refresh_token (RFC 7009 §2.1: the search extends to every type)", async () => {
    const revoke = async (client: string, value: string, hint: string) => {
      const answer = await post(op.metadata.revocation_endpoint!, { token: value, token_type_hint: hint }, as(client));
      assert.equal(answer.status, 200, `${hint}: ${answer.text}`);
    };
    for (const hint of ['access_token', 'refresh_token', 'device_code', 'id_token']) {
      const browser = new Agent();
      const tokens = await web.redeem(await web.signIn(browser, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      await revoke('web', tokens.refresh_token!, hint === 'refresh_token' ? 'access_token' : hint);
      assert.equal((await introspect('web', tokens.refresh_token!)).active, false, `a refresh token revoked under ${hint}`);
      assert.equal((await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! })).body.error, 'invalid_grant');
      const again = await web.redeem(await web.signIn(browser, ALICE));
      await revoke('web', again.access_token, hint === 'access_token' ? 'refresh_token' : hint);
      assert.equal(await bearerAt(op.metadata.userinfo_endpoint!, again.access_token), 401, `an access token revoked under ${hint}`);
      const jwt = await clientToken('machine', API, 'read');
      await revoke('machine', jwt, hint === 'access_token' ? 'refresh_token' : hint);
      assert.equal((await introspect('api', jwt)).active, false, `a JWT access token revoked under ${hint}`);
      const opaque = await clientToken('machine', 'https://ledger.example.test', 'read');
      await revoke('machine', opaque, hint === 'access_token' ? 'refresh_token' : hint);
      assert.equal((await introspect('machine', opaque)).active, false, `a client's own opaque token revoked under ${hint}`);
    }
  });

  it("an app that revoked one of its own access tokens (RFC 7009) keeps its person's grant, and the consent page of their next request adds to it: it was refused once as a withdrawn consent, the remembered consent dropped (RFC 7009 §2.1, Core §3.1.2.4)", async () => {
    for (const kind of ['an opaque access token', "a person's JWT access token"] as const) {
      const browser = new Agent();
      const jwt = kind !== 'an opaque access token';
      const first = await signed.signIn(browser, ALICE, jwt ? { scope: 'openid read', resource: API } : {});
      const issued = await token({ grant_type: 'authorization_code', code: codeOf(first), code_verifier: first.verifier, redirect_uri: first.redirectUri, ...(jwt && { resource: API }) }, 'signed');
      assert.equal(issued.status, 200, issued.text);
      const accessToken = String(issued.body.access_token);
      const revoked = await post(op.metadata.revocation_endpoint!, { token: accessToken }, as('signed'));
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal((await introspect('signed', accessToken)).active, false, `${kind}: revoked`);
      // The person's next request, in a later second than the revocation (an entry of the request's own
      // second is taken as an ending while its page was open), asks for more than was allowed: the
      // consent page, then the code.
      await new Promise((done) => setTimeout(done, 1100));
      const next = await signed.authorize(browser, { scope: 'openid email offline_access', prompt: 'consent' });
      const page = await signInSteps(browser, next.page, { username: ALICE.username, password: ALICE.password, stopAt: next.redirectUri });
      assert.ok(page.url.startsWith(next.redirectUri), `${kind}: ${page.status} ${page.url} ${page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
      const tokens = await signed.redeem({ ...next, page });
      assert.ok(tokens.refresh_token, kind);
      assert.equal((await introspect('signed', accessToken)).active, false, `${kind}: still revoked`);
      assert.equal((await introspect('signed', tokens.access_token)).active, true, kind);
      // And what was allowed is remembered: the next request asks nothing.
      const silent = await signed.authorize(browser, { scope: 'openid email offline_access', prompt: 'none' });
      assert.ok(callbackParams(silent).get('code'), `${kind}: ${silent.page.url}`);
    }
  });
});
