/**
 * The fourteenth fresh-eyes conformance pass (2026-12-07): checks an OpenID Foundation OP plan or
 * an RFC's letter makes that test/conformance/ did not yet name (docs/security-passes.md, "the
 * fourteenth fresh-eyes passes … the letter of the specs"). Black box over HTTP (openid-client,
 * raw requests, an Agent as the person).
 */
import assert from 'node:assert/strict';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { formIn } from '../helpers/agent.js';
import { startJwksHost } from '../helpers/jwks-host.js';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, answerOf, callbackParams, isLogin, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'spec-letter-fourteenth-client-secret-with-plenty-of-entropy';
/** RFC 6749 §4.1.2.1's members of an error response, and RFC 9207's iss: what the suite expects. */
const ERROR_MEMBERS = ['error', 'error_description', 'error_uri', 'state', 'iss'];

describe('Spec-letter pass, fourteenth (letters no check covered)', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      // A client's jwks_uri is read again after a second (1 to 60; the suite waits 60 seconds, the default).
      env: { REGISTRATION_OPEN: 'true', CLIENT_JWKS_MAX_AGE: '1' },
      clients: [webClient('web', SECRET), webClient('narrow', SECRET, { scope: 'openid email' })],
    });
  });
  after(async () => {
    await op?.stop();
  });

  /** The parameters an authorization response brought back, in the response mode it was sent in. */
  function answerIn(mode: string, page: { url: string; html: string }, redirectUri: string): URLSearchParams {
    if (mode === 'form_post') return new URLSearchParams(formIn(page.html, redirectUri).hidden);
    const url = new URL(page.url);
    assert.ok(page.url.startsWith(redirectUri), `${mode}: back at the client, got ${page.url}`);
    return mode === 'fragment' ? new URLSearchParams(url.hash.slice(1)) : url.searchParams;
  }

  it("invalid_scope at the redirect URI carries error, error_description, state and iss and nothing else, in every response mode: a scope beyond the client's registered scope is named in the description, not in a scope parameter (RFC 6749 §4.1.2.1, RFC 9207 §2; CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint)", async () => {
    const narrow = await RelyingParty.create(op, 'narrow', { secret: SECRET });
    const agent = new Agent();
    for (const signedIn of [false, true]) {
      if (signedIn) await narrow.signIn(agent, ALICE, { scope: 'openid email' });
      for (const mode of ['query', 'fragment', 'form_post']) {
        const what = `${mode}${signedIn ? ', signed in' : ''}`;
        const flow = await narrow.authorize(agent, { scope: 'openid email profile', response_mode: mode, state: 'narrow' });
        const answer = answerIn(mode, flow.page, narrow.redirectUri);
        assert.equal(answer.get('error'), 'invalid_scope', `${what}: ${[...answer].join('&')}`);
        assert.equal(answer.get('state'), 'narrow', what);
        assert.equal(answer.get('iss'), op.issuer, what);
        const unexpected = [...answer.keys()].filter((key) => !ERROR_MEMBERS.includes(key));
        assert.deepEqual(unexpected, [], `${what}: ${[...answer].join('&')}`);
        assert.match(answer.get('error_description') ?? '', /\bprofile\b/, `${what}: the description names the scope not allowed`);
      }
    }

    // The same at the request's resume: a registered client narrows its scope (RFC 7592) while its
    // person is at the login page, and the scope asked is checked again when the sign-in returns.
    const registered = (await (await fetch(op.metadata.registration_endpoint!, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://dyn.example.test/cb'], scope: 'openid email profile' }),
    })).json()) as Record<string, string>;
    const { client_id, client_secret, redirect_uris } = registered;
    let token = registered.registration_access_token!;
    /** RFC 7592 §2.2: the client's metadata replaced, with `scope`; the registration access token may rotate. */
    const registerScope = async (scope: string) => {
      const update = await fetch(registered.registration_client_uri!, {
        method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_id, client_secret, redirect_uris, scope }),
      });
      const body = (await update.json()) as Record<string, string>;
      assert.equal(update.status, 200, JSON.stringify(body));
      token = body.registration_access_token ?? token;
    };
    const dynamic = await RelyingParty.create(op, client_id!, { secret: client_secret }, 'https://dyn.example.test/cb');
    for (const mode of ['query', 'form_post']) {
      const person = new Agent();
      const flow = await dynamic.authorize(person, { scope: 'openid profile', response_mode: mode, state: 'resumed' });
      assert.ok(isLogin(flow.page), `${mode}: the login page, got ${flow.page.url}`);
      await registerScope('openid email');
      const page = await signInSteps(person, flow.page, { username: ALICE.username, password: ALICE.password, stopAt: dynamic.redirectUri });
      const answer = answerIn(mode, page, dynamic.redirectUri);
      assert.equal(answer.get('error'), 'invalid_scope', `resumed, ${mode}: ${[...answer].join('&')}`);
      assert.equal(answer.get('state'), 'resumed');
      assert.deepEqual([...answer.keys()].filter((key) => !ERROR_MEMBERS.includes(key)), [], `resumed, ${mode}: ${[...answer].join('&')}`);
      assert.match(answer.get('error_description') ?? '', /\bprofile\b/, `resumed, ${mode}`);
      await registerScope('openid email profile');
    }
  });

  describe('held: what the suite and the RFCs check that no check named yet', () => {
    it("oidcc-refresh-token-rp-key-rotation: a client whose jwks_uri now publishes only a new key, with a new kid, refreshes with an assertion of that key once the keys read are no longer fresh; the refreshed ID token keeps sub, and the old key no longer authenticates (Core §10.1.1, RFC 7523 §3)", async () => {
      const host = await startJwksHost();
      try {
        const first = await generateKeyPair('RS256');
        const second = await generateKeyPair('RS256');
        host.keys = [{ ...(await exportJWK(first.publicKey)), kid: 'rp-first', alg: 'RS256', use: 'sig' }];
        const answer = await fetch(op.metadata.registration_endpoint!, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ redirect_uris: ['https://rotating.example.test/cb'], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: host.url }),
        });
        const client = (await answer.json()) as Record<string, string>;
        assert.equal(answer.status, 201, JSON.stringify(client));
        const before = await RelyingParty.create(op, client.client_id!, { method: oidc.PrivateKeyJwt({ key: first.privateKey, kid: 'rp-first' }) }, 'https://rotating.example.test/cb');
        const tokens = await before.redeem(await before.signIn(new Agent(), ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
        assert.ok(tokens.refresh_token, 'a refresh token for offline_access');
        // The suite's GenerateRS256ClientJWKsWithKeyID: the jwks_uri now holds the new key alone; then it waits.
        host.keys = [{ ...(await exportJWK(second.publicKey)), kid: 'rp-second', alg: 'RS256', use: 'sig' }];
        await new Promise((resolve) => setTimeout(resolve, 1_100));
        const after = await RelyingParty.create(op, client.client_id!, { method: oidc.PrivateKeyJwt({ key: second.privateKey, kid: 'rp-second' }) }, 'https://rotating.example.test/cb');
        const refreshed = await oidc.refreshTokenGrant(after.config, tokens.refresh_token);
        assert.equal(decodeJwt(refreshed.id_token!).sub, decodeJwt(tokens.id_token!).sub);
        const userinfo = await oidc.fetchUserInfo(after.config, refreshed.access_token, decodeJwt(tokens.id_token!).sub!);
        assert.equal(userinfo.sub, op.subs.alice);
        await assert.rejects(oidc.refreshTokenGrant(before.config, refreshed.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_client', 'the key taken down no longer authenticates');
      } finally {
        host.server.close();
      }
    });

    it('client credentials and token request parameters in the request URI are not read: a secret in the query is invalid_client, a grant_type there is missing, at the token endpoint, and a token there is missing at introspection and revocation (RFC 6749 §2.3.1 "MUST NOT be included in the request URI", §3.2)', async () => {
      const post = async (endpoint: string, query: Record<string, string>, body: Record<string, string>, headers: Record<string, string> = {}) =>
        answerOf(await fetch(`${endpoint}?${new URLSearchParams(query)}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) }));
      const basic = { authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` };
      const code = { grant_type: 'authorization_code', code: 'nonsense', redirect_uri: 'https://web.example.test/callback', code_verifier: 'a'.repeat(43) };
      const secretInQuery = await post(op.metadata.token_endpoint!, { client_secret: SECRET }, { ...code, client_id: 'web' });
      assert.equal(secretInQuery.status, 401, JSON.stringify(secretInQuery.body));
      assert.equal(secretInQuery.body.error, 'invalid_client');
      const allInQuery = await post(op.metadata.token_endpoint!, { ...code, client_id: 'web', client_secret: SECRET }, {});
      assert.equal(allInQuery.status, 401, JSON.stringify(allInQuery.body));
      const grantInQuery = await post(op.metadata.token_endpoint!, code, {}, basic);
      assert.equal(grantInQuery.status, 400, JSON.stringify(grantInQuery.body));
      assert.equal(grantInQuery.body.error, 'invalid_request');
      assert.match(String(grantInQuery.body.error_description), /grant_type/);
      const introspection = await post(op.metadata.introspection_endpoint!, { token: 'anything' }, {}, basic);
      assert.equal(introspection.body.error, 'invalid_request', JSON.stringify(introspection.body));
      const revocation = await post(op.metadata.revocation_endpoint!, { token: 'anything' }, {}, basic);
      assert.equal(revocation.body.error, 'invalid_request', JSON.stringify(revocation.body));
    });

    it('a prompt value discovery does not list (create, of Prompt Create 1.0) is invalid_request at the redirect URI with state and iss, its description naming prompt (Prompt Create §4.1, Core §3.1.2.1)', async () => {
      assert.ok(!(op.metadata.prompt_values_supported as string[] | undefined)?.includes('create'), 'create is not offered');
      const web = await RelyingParty.create(op, 'web', { secret: SECRET });
      const agent = new Agent();
      for (const signedIn of [false, true]) {
        if (signedIn) await web.signIn(agent, ALICE);
        const flow = await web.authorize(agent, { prompt: 'create', state: 'create' });
        const params = callbackParams(flow);
        assert.equal(params.get('error'), 'invalid_request', flow.page.url);
        assert.match(params.get('error_description') ?? '', /prompt/);
        assert.equal(params.get('state'), 'create', signedIn ? 'signed in' : 'no session');
        assert.equal(params.get('iss'), op.issuer);
        assert.equal(params.get('code'), null);
      }
    });

    it("content types and caching of the answers no check named: userinfo's claims and its error no-store, JSON in UTF-8; device authorization's error, an unknown path and a method not taken JSON, no-store; the JWKS application/jwk-set+json; the redirect and the form_post page that carry a code, no-store (Core §5.3.2, RFC 6749 §5.1, RFC 7517 §8.5.1, RFC 9700 §4.2.4)", async () => {
      const web = await RelyingParty.create(op, 'web', { secret: SECRET });
      const agent = new Agent();
      const tokens = await web.redeem(await web.signIn(agent, ALICE, { scope: 'openid email' }));
      const json = /^application\/json; charset=utf-8$/i;
      const answers: Record<string, Response> = {
        userinfo: await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
        'userinfo error': await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: 'Bearer not-a-token' } }),
        'device authorization error': await fetch(op.metadata.device_authorization_endpoint as string, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_id=nobody&scope=openid' }),
        'unknown path': await fetch(new URL('/no-such-endpoint', op.issuer)),
        'method not taken': await fetch(op.metadata.token_endpoint!, { method: 'PUT' }),
      };
      for (const [name, response] of Object.entries(answers)) {
        assert.match(response.headers.get('content-type') ?? '', json, name);
        assert.match(response.headers.get('cache-control') ?? '', /no-store/, name);
        const body = (await response.json()) as Record<string, unknown>;
        assert.ok(name === 'userinfo' ? body.sub === op.subs.alice : typeof body.error === 'string', `${name}: ${JSON.stringify(body)}`);
      }
      const jwks = await fetch(op.metadata.jwks_uri!);
      assert.match(jwks.headers.get('content-type') ?? '', /^application\/jwk-set\+json/);
      assert.ok(Array.isArray(((await jwks.json()) as { keys?: unknown }).keys));
      for (const mode of ['query', 'form_post']) {
        const flow = await web.authorize(agent, { prompt: 'none', response_mode: mode });
        const code = mode === 'form_post' ? formIn(flow.page.html, web.redirectUri).hidden.code : callbackParams(flow).get('code');
        assert.ok(code, `${mode}: a code`);
        assert.match(flow.page.headers.get('cache-control') ?? '', /no-store/, mode);
      }
    });
  });
});
