/**
 * OpenID Connect Basic OP: the checks of the OpenID Foundation's Basic OP test plan (and the
 * OAuth 2.0 rules they rest on), played by openid-client as the relying party and an Agent as the
 * person, against Latchkey over HTTP.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { exportJWK, generateKeyPair, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { formIn } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, BOB, callbackParams, isLogin, RelyingParty, startOp, webClient, type Flow, type Op } from './fixture.js';

const SECRET = 'basic-op-client-secret-with-plenty-of-entropy-0123';
const OTHER_SECRET = 'another-client-secret-with-plenty-of-entropy-0123';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

type TokenAnswer = { status: number; body: Record<string, unknown>; headers: Headers };

describe('OpenID Connect Basic OP (authorization code flow)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let post: RelyingParty;
  let other: RelyingParty;
  let spa: RelyingParty;
  let pkjwt: RelyingParty;
  let pkjwtKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  /** One signed-in person (alice) for the session-dependent checks. */
  let alice: Agent;

  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    pkjwtKey = privateKey;
    op = await startOp({
      people: [ALICE, BOB],
      clients: [
        webClient('web', SECRET, {
          redirect_uris: ['https://web.example.test/callback', 'https://web.example.test/cb?tenant=a'],
        }),
        webClient('post', SECRET, { token_endpoint_auth_method: 'client_secret_post' }),
        webClient('other', OTHER_SECRET),
        webClient('two', SECRET, { redirect_uris: ['https://two.example.test/callback', 'https://two.example.test/other'] }),
        {
          client_id: 'spa',
          client_name: 'Conformance SPA',
          token_endpoint_auth_method: 'none',
          redirect_uris: ['https://spa.example.test/callback'],
          grant_types: ['authorization_code', 'refresh_token'],
        },
        {
          client_id: 'pkjwt',
          client_name: 'Conformance private_key_jwt',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'pkjwt-1', alg: 'RS256', use: 'sig' }] },
          redirect_uris: ['https://pkjwt.example.test/callback'],
          grant_types: ['authorization_code', 'refresh_token'],
        },
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    post = await RelyingParty.create(op, 'post', { method: oidc.ClientSecretPost(SECRET) });
    other = await RelyingParty.create(op, 'other', { secret: OTHER_SECRET });
    spa = await RelyingParty.create(op, 'spa');
    pkjwt = await RelyingParty.create(op, 'pkjwt', { method: oidc.PrivateKeyJwt({ key: pkjwtKey, kid: 'pkjwt-1' }) });
    alice = new Agent();
    await web.redeem(await web.signIn(alice, ALICE));
  });
  after(() => op?.stop());

  /** The ID token verified as Core §3.1.3.7 says: RS256, a key from jwks_uri, iss, aud. */
  async function verifyIdToken(idToken: string, clientId: string): Promise<JWTPayload> {
    const { payload, protectedHeader } = await jwtVerify(idToken, op.jwks, { issuer: op.issuer, audience: clientId, algorithms: ['RS256'] });
    assert.equal(protectedHeader.alg, 'RS256');
    return payload;
  }

  /** A raw token request (the checks that openid-client would refuse to send). */
  async function tokenRequest(params: Record<string, string>, headers: Record<string, string> = {}): Promise<TokenAnswer> {
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(params),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: response.headers };
  }

  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` });

  /** An authorization request with exactly these parameters (no defaults), as a URL a browser opens. */
  function rawAuthorize(agent: Agent, params: Record<string, string>, stopAt: string) {
    const url = new URL(op.metadata.authorization_endpoint!);
    url.search = new URLSearchParams(params).toString();
    return agent.follow(url.href, {}, stopAt);
  }

  async function userinfo(accessToken: string) {
    const response = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${accessToken}` } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
  }

  const codeOf = (flow: Flow) => callbackParams(flow).get('code')!;

  describe('authorization endpoint', () => {
    it('the code flow signs a person in and returns code, state and iss at the redirect URI (Core §3.1.2.5, RFC 9207 §2)', async () => {
      const flow = await web.signIn(new Agent(), ALICE);
      const params = callbackParams(flow);
      assert.ok(params.get('code'));
      assert.equal(params.get('state'), flow.state);
      assert.equal(params.get('iss'), op.issuer);
      const tokens = await web.redeem(flow);
      assert.ok(tokens.id_token);
    });

    it('a second client signs the same person in just as well (Basic OP: alternate happy flow)', async () => {
      const tokens = await other.redeem(await other.signIn(new Agent(), ALICE));
      assert.equal((await verifyIdToken(tokens.id_token!, 'other')).sub, op.subs.alice);
    });

    it('the authorization endpoint accepts POST as well as GET (Core §3.1.2.1)', async () => {
      const agent = new Agent();
      const verifier = oidc.randomPKCECodeVerifier();
      const page = await agent.follow(
        op.metadata.authorization_endpoint!,
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            client_id: 'web',
            response_type: 'code',
            scope: 'openid',
            redirect_uri: web.redirectUri,
            state: 'posted',
            code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
            code_challenge_method: 'S256',
          }),
        },
        web.redirectUri,
      );
      assert.ok(isLogin(page), `the login page, got ${page.status} ${page.url}`);
      const next = await signInSteps(agent, page, { username: ALICE.username, password: ALICE.password, stopAt: web.redirectUri });
      assert.equal(new URL(next.url).searchParams.get('state'), 'posted');
      assert.ok(new URL(next.url).searchParams.get('code'));
    });

    it('unknown request parameters are ignored (Core §3.1.2.1, RFC 6749 §3.1)', async () => {
      const flow = await web.signIn(alice, ALICE, { extra_parameter: 'ignored', another_one: '{"x":1}' });
      assert.ok(callbackParams(flow).get('code'));
    });

    it('scope values in any order work (Core §3.1.2.1, RFC 6749 §3.3)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'email profile openid' }));
      assert.equal((await verifyIdToken(tokens.id_token!, 'web')).sub, op.subs.alice);
    });

    it('display=page and display=popup are accepted (Core §3.1.2.1)', async () => {
      for (const display of ['page', 'popup']) {
        const flow = await web.signIn(new Agent(), ALICE, { display });
        assert.ok(callbackParams(flow).get('code'), display);
      }
    });

    it('display=touch and display=wap are accepted too: the display parameter never results in an error (Core §15.1, §3.1.2.1)', async () => {
      for (const display of ['touch', 'wap']) {
        const flow = await web.authorize(alice, { display });
        assert.ok(callbackParams(flow).get('code'), `${display}: ${flow.page.url}`);
      }
    });

    it('a parameter sent without a value is treated as omitted: an empty state is not echoed, and empty prompt, max_age, id_token_hint, claims, resource, login_hint, acr_values, ui_locales or registration still give a code (RFC 6749 §3.1)', async () => {
      const noState = callbackParams(await web.authorize(alice, { state: '' }));
      assert.ok(noState.get('code'));
      assert.equal(noState.has('state'), false, 'no state=');
      assert.equal(noState.get('iss'), op.issuer);
      for (const name of ['prompt', 'max_age', 'id_token_hint', 'claims', 'resource', 'login_hint', 'acr_values', 'ui_locales', 'registration', 'dpop_jkt']) {
        const params = callbackParams(await web.authorize(alice, { [name]: '' }));
        assert.ok(params.get('code'), `${name}=: ${params}`);
      }
      const flow = await web.authorize(alice, { nonce: '' });
      const answer = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(flow), redirect_uri: flow.redirectUri, code_verifier: flow.verifier },
        basic('web', SECRET),
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal((await verifyIdToken(String(answer.body.id_token), 'web')).nonce, undefined, 'an empty nonce is no nonce');
    });

    it('ui_locales, claims_locales and acr_values are accepted (Core §3.1.2.1, §5.2)', async () => {
      const flow = await web.signIn(new Agent(), ALICE, { ui_locales: 'se en', claims_locales: 'se en', acr_values: '1 2' });
      assert.ok(callbackParams(flow).get('code'));
      await web.redeem(flow);
    });

    it('login_hint pre-fills the username on the login page (Core §3.1.2.1)', async () => {
      const flow = await web.authorize(new Agent(), { login_hint: 'alice' });
      assert.ok(isLogin(flow.page));
      assert.match(flow.page.html, /name="username" value="alice"/);
    });

    it('a request without response_type gets an error, never a code (Core §3.1.2.2, RFC 6749 §4.1.1)', async () => {
      const page = await rawAuthorize(
        new Agent(),
        { client_id: 'web', redirect_uri: web.redirectUri, scope: 'openid', state: 'no-rt', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
        web.redirectUri,
      );
      if (page.url.startsWith(web.redirectUri)) {
        const params = new URL(page.url).searchParams;
        assert.equal(params.get('error'), 'invalid_request');
        assert.equal(params.get('code'), null);
        assert.equal(params.get('state'), 'no-rt');
      } else {
        assert.equal(page.status, 400);
        assert.match(page.html, /<h1>/);
      }
    });

    it('a request without redirect_uri, for a client with two registered, shows an error page (Core §3.1.2.1)', async () => {
      const page = await rawAuthorize(
        new Agent(),
        { client_id: 'two', response_type: 'code', scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
        'https://two.example.test/',
      );
      assert.equal(page.status, 400);
      assert.ok(page.url.startsWith(op.issuer), `stayed at the OP: ${page.url}`);
      assert.match(page.html, /redirect_uri/);
    });

    it('an OpenID request without redirect_uri, for a client with one registered, gets invalid_request and no code (Core §3.1.2.1; oidcc-ensure-redirect-uri-in-authorization-request)', async () => {
      const only = 'https://other.example.test/callback';
      const page = await rawAuthorize(
        new Agent(),
        { client_id: 'other', response_type: 'code', scope: 'openid', state: 'no-redirect-uri', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
        only,
      );
      // Core §3.1.2.6: the error at that one registered URI (the conformance suite takes it, or an error page).
      assert.ok(page.url.startsWith(only), `${page.status} ${page.url}`);
      const answer = new URL(page.url).searchParams;
      assert.equal(answer.get('code'), null);
      assert.equal(answer.get('error'), 'invalid_request');
      assert.match(answer.get('error_description') ?? '', /redirect_uri/);
      assert.equal(answer.get('state'), 'no-redirect-uri');
      assert.equal(answer.get('iss'), op.issuer);
      const pushed = await fetch(op.metadata.pushed_authorization_request_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic('other', OTHER_SECRET) },
        body: new URLSearchParams({ response_type: 'code', scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' }),
      });
      assert.equal(pushed.status, 400, 'nor pushed');
      assert.equal(((await pushed.json()) as { error: string }).error, 'invalid_request');
    });

    it('a plain OAuth 2.0 request (no openid) may leave out the single registered redirect_uri (RFC 6749 §3.1.2.3)', async () => {
      const page = await rawAuthorize(
        new Agent(),
        { client_id: 'other', response_type: 'code', scope: 'email', state: 'oauth', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
        'https://other.example.test/callback',
      );
      assert.ok(isLogin(page), `the login page: ${page.status} ${page.url}`);
    });

    it('an unregistered redirect_uri shows an error page and never redirects (Core §3.1.2.1, RFC 6749 §4.1.2.1, RFC 9700 §4.1.3)', async () => {
      const variants = [
        'https://evil.example/callback',
        'https://web.example.test/callback/extra',
        'https://web.example.test/callback?x=1',
        'https://web.example.test/callback/',
        'https://WEB.example.test/callback',
        'http://web.example.test/callback',
        'https://web.example.test:443/callback',
        'https://web.example.test/callback#frag',
        'https://web.example.test.evil.example/callback',
        'https://web.example.test@evil.example/callback',
        'https://web.example.test/Callback',
        'https://web.example.test/%63allback',
      ];
      for (const redirect of variants) {
        const page = await rawAuthorize(
          new Agent(),
          { client_id: 'web', response_type: 'code', redirect_uri: redirect, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
          'https://',
        );
        assert.equal(page.status, 400, redirect);
        assert.ok(page.url.startsWith(op.issuer), `no redirect for ${redirect}: ${page.url}`);
        assert.match(page.html, /Unsafe return address/, redirect);
      }
    });

    it('a registered redirect_uri with a query keeps its query, and the response is added to it (Core §3.1.2.1, RFC 6749 §3.1.2)', async () => {
      const flow = await web.signIn(alice, ALICE, { redirect_uri: 'https://web.example.test/cb?tenant=a' });
      const url = new URL(flow.page.url);
      assert.equal(url.origin + url.pathname, 'https://web.example.test/cb');
      assert.equal(url.searchParams.get('tenant'), 'a');
      assert.ok(url.searchParams.get('code'));
      // openid-client drops the query of a redirect URI, so the redemption is written out here.
      const answer = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(flow), redirect_uri: 'https://web.example.test/cb?tenant=a', code_verifier: flow.verifier },
        basic('web', SECRET),
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
    });

    it('a registered query changed or added to is refused (RFC 9700 §4.1.3: exact matching)', async () => {
      for (const redirect of ['https://web.example.test/cb?tenant=b', 'https://web.example.test/cb?tenant=a&x=1', 'https://web.example.test/cb']) {
        const page = await rawAuthorize(
          new Agent(),
          { client_id: 'web', response_type: 'code', redirect_uri: redirect, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
          'https://',
        );
        assert.equal(page.status, 400, redirect);
        assert.ok(page.url.startsWith(op.issuer), redirect);
      }
    });

    it('an unknown client_id shows an error page and never redirects (RFC 6749 §4.1.2.1)', async () => {
      const page = await rawAuthorize(
        new Agent(),
        { client_id: 'nobody', response_type: 'code', redirect_uri: web.redirectUri, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
        'https://',
      );
      assert.equal(page.status, 400);
      assert.ok(page.url.startsWith(op.issuer));
      assert.match(page.html, /Unknown application/);
    });

    it('state is returned unchanged on success and on error (RFC 6749 §4.1.2, §4.1.2.1)', async () => {
      const state = 'st4te with spaces/+&=ü%';
      const success = await web.signIn(alice, ALICE, { state });
      assert.equal(callbackParams(success).get('state'), state);
      const failure = await web.authorize(alice, { state, scope: 'openid', prompt: 'none', max_age: '0' });
      const params = callbackParams(failure);
      assert.ok(params.get('error'));
      assert.equal(params.get('state'), state);
    });

    it('iss is on error responses too (RFC 9207 §2)', async () => {
      const flow = await web.authorize(new Agent(), { prompt: 'none' });
      const params = callbackParams(flow);
      assert.equal(params.get('error'), 'login_required');
      assert.equal(params.get('iss'), op.issuer);
    });

    it("every error_description at the redirect URI keeps to RFC 6749 §4.1.2.1's characters, in each response mode, whatever the request sent (the suite's ValidateErrorDescriptionFromAuthorizationEndpointResponseError)", async () => {
      const ALLOWED = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;
      // An OpenID request without redirect_uri (its description cites Core), and a resource indicator
      // with a quote, a backslash and a letter outside ASCII (its description repeats it).
      const noRedirectUri = await rawAuthorize(
        new Agent(),
        { client_id: 'other', response_type: 'code', scope: 'openid', state: 's', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
        'https://other.example.test/callback',
      );
      const answers = [new URL(noRedirectUri.url).searchParams];
      for (const mode of ['query', 'fragment', 'form_post']) {
        const flow = await web.authorize(new Agent(), { response_mode: mode, resource: 'https://api.example.test/"caf\u00e9\\' });
        const url = new URL(flow.page.url);
        answers.push(mode === 'form_post' ? new URLSearchParams(formIn(flow.page.html, web.redirectUri).hidden) : mode === 'fragment' ? new URLSearchParams(url.hash.slice(1)) : url.searchParams);
      }
      assert.deepEqual(answers.map((params) => params.get('error')), ['invalid_request', 'invalid_target', 'invalid_target', 'invalid_target']);
      for (const params of answers) {
        const description = params.get('error_description') ?? '';
        assert.match(description, ALLOWED, description);
        assert.equal(params.get('iss'), op.issuer);
      }
      assert.match(answers[0]!.get('error_description')!, /redirect_uri/);
      assert.match(answers[1]!.get('error_description')!, /https:\/\/api\.example\.test\//, 'still says which resource');
    });

    it('response_mode=form_post and fragment carry a code or an error, with state and iss, in the mode asked (Form Post Response Mode §2, Multiple Response Types §2.1, RFC 9207 §2)', async () => {
      for (const [agent, expected] of [[alice, 'code'], [new Agent(), 'error']] as const) {
        const posted = await web.authorize(agent, { response_mode: 'form_post', prompt: 'none' });
        const form = formIn(posted.page.html, web.redirectUri);
        assert.equal(form.action, web.redirectUri);
        assert.ok(form.hidden[expected], `form_post ${expected}: ${JSON.stringify(form.hidden)}`);
        if (expected === 'error') assert.equal(form.hidden.error, 'login_required');
        assert.equal(form.hidden.state, posted.state);
        assert.equal(form.hidden.iss, op.issuer);
        assert.match(posted.page.headers.get('content-type') ?? '', /^text\/html/);
        const fragment = await web.authorize(agent, { response_mode: 'fragment', prompt: 'none' });
        const url = new URL(fragment.page.url);
        assert.equal(url.search, '', 'nothing in the query');
        const params = new URLSearchParams(url.hash.slice(1));
        assert.ok(params.get(expected), `fragment ${expected}: ${fragment.page.url}`);
        assert.equal(params.get('state'), fragment.state);
        assert.equal(params.get('iss'), op.issuer);
      }
    });

    it('a response mode not advertised (jwt, query.jwt, web_message) is unsupported_response_mode at the redirect URI (Discovery §3 response_modes_supported, JARM §2.3)', async () => {
      for (const mode of ['jwt', 'query.jwt', 'web_message']) {
        assert.ok(!op.metadata.response_modes_supported!.includes(mode), mode);
        const params = callbackParams(await web.authorize(alice, { response_mode: mode }));
        assert.equal(params.get('error'), 'unsupported_response_mode', mode);
        assert.equal(params.get('code'), null, mode);
        assert.equal(params.get('iss'), op.issuer, mode);
      }
    });

    it('PKCE is required: a request without code_challenge is refused (RFC 9700 §2.1.1, §4.8.2), its description saying what to send', async () => {
      const page = await rawAuthorize(
        new Agent(),
        { client_id: 'web', response_type: 'code', redirect_uri: web.redirectUri, scope: 'openid', state: 's' },
        web.redirectUri,
      );
      const params = new URL(page.url).searchParams;
      assert.equal(params.get('error'), 'invalid_request');
      // Met by libraries that send no PKCE by default (passport-openidconnect, simple-oauth2): it names the parameters and the method.
      assert.match(params.get('error_description') ?? '', /^PKCE is required of every client: send code_challenge .* code_challenge_method=S256/);
      assert.equal(params.get('code'), null);
    });

    it('PKCE with the plain method is refused; S256 only (RFC 7636 §4.2, RFC 9700 §2.1.1)', async () => {
      const page = await rawAuthorize(
        new Agent(),
        { client_id: 'web', response_type: 'code', redirect_uri: web.redirectUri, scope: 'openid', code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' },
        web.redirectUri,
      );
      assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request');
    });

    it('a code_challenge shorter than 43 or longer than 128 characters, or with a character outside the unreserved set, is invalid_request at the redirect URI, with state and iss (RFC 7636 §4.1, §4.2, §4.4.1)', async () => {
      for (const challenge of ['abc', CHALLENGE.slice(0, 42), 'a'.repeat(129), `${CHALLENGE.slice(0, 42)}+`, `${CHALLENGE.slice(0, 42)}=`]) {
        const params = callbackParams(await web.authorize(alice, { code_challenge: challenge, state: 'pkce' }));
        assert.equal(params.get('error'), 'invalid_request', challenge);
        assert.equal(params.get('code'), null, challenge);
        assert.equal(params.get('state'), 'pkce', challenge);
        assert.equal(params.get('iss'), op.issuer, challenge);
      }
    });

    it('a resource that is not an absolute URI, or has a fragment, is invalid_target at the redirect URI, with state and iss (RFC 8707 §2, RFC 9207 §2)', async () => {
      for (const resource of ['relative/path', 'https://api.example.test/#fragment']) {
        const params = callbackParams(await web.authorize(alice, { resource, state: 'target' }));
        assert.equal(params.get('error'), 'invalid_target', resource);
        assert.equal(params.get('code'), null, resource);
        assert.equal(params.get('state'), 'target', resource);
        assert.equal(params.get('iss'), op.issuer, resource);
      }
    });

    it('implicit and hybrid response types are refused with unsupported_response_type (RFC 9700 §2.1.2)', async () => {
      for (const responseType of ['token', 'id_token', 'id_token token', 'code id_token', 'code token', 'none']) {
        const page = await rawAuthorize(
          new Agent(),
          { client_id: 'web', response_type: responseType, redirect_uri: web.redirectUri, scope: 'openid', nonce: 'n', code_challenge: CHALLENGE, code_challenge_method: 'S256' },
          web.redirectUri,
        );
        const url = new URL(page.url);
        const params = url.searchParams.get('error') ? url.searchParams : new URLSearchParams(url.hash.slice(1));
        assert.equal(params.get('error'), 'unsupported_response_type', responseType);
        assert.equal(params.get('access_token'), null);
        assert.equal(params.get('id_token'), null);
      }
    });

    it('a request object is rejected as unsupported (Core §6.1: request_not_supported)', async () => {
      const flow = await web.authorize(new Agent(), { request: 'eyJhbGciOiJub25lIn0.eyJjbGllbnRfaWQiOiJ3ZWIifQ.' });
      assert.equal(callbackParams(flow).get('error'), 'request_not_supported');
    });

    it('a request_uri is rejected as unsupported (Core §6.2: request_uri_not_supported)', async () => {
      const flow = await web.authorize(new Agent(), { request_uri: 'https://web.example.test/request.jwt' });
      assert.equal(callbackParams(flow).get('error'), 'request_uri_not_supported');
    });

    it('a malformed request with a valid redirect URI gets its error there, with state and iss and no code: a parameter twice, bad claims or max_age, registration, a garbage id_token_hint (RFC 6749 §3.1, §4.1.2.1; Core §3.1.2.6, §5.5, §7.2.1; RFC 9207 §2)', async () => {
      const base = { client_id: 'web', response_type: 'code', redirect_uri: web.redirectUri, scope: 'openid', state: 'malformed', code_challenge: CHALLENGE, code_challenge_method: 'S256' };
      const cases: [string, string, string][] = [
        ['scope twice', `${new URLSearchParams(base)}&scope=openid`, 'invalid_request'],
        ['state twice', `${new URLSearchParams(base)}&state=other`, 'invalid_request'],
        ['claims not JSON', `${new URLSearchParams({ ...base, claims: '{not json' })}`, 'invalid_request'],
        ['claims not an object', `${new URLSearchParams({ ...base, claims: '[]' })}`, 'invalid_request'],
        ['claims.userinfo not an object', `${new URLSearchParams({ ...base, claims: '{"userinfo":"name"}' })}`, 'invalid_request'],
        ['max_age not a number', `${new URLSearchParams({ ...base, max_age: 'soon' })}`, 'invalid_request'],
        ['max_age negative', `${new URLSearchParams({ ...base, max_age: '-1' })}`, 'invalid_request'],
        ['registration', `${new URLSearchParams({ ...base, registration: '{}' })}`, 'registration_not_supported'],
        ['garbage id_token_hint', `${new URLSearchParams({ ...base, id_token_hint: 'not.a.jwt' })}`, 'invalid_request'],
        ['prompt none with login', `${new URLSearchParams({ ...base, prompt: 'none login' })}`, 'invalid_request'],
      ];
      for (const [name, query, error] of cases) {
        const page = await new Agent().follow(`${op.metadata.authorization_endpoint!}?${query}`, {}, web.redirectUri);
        assert.ok(page.url.startsWith(web.redirectUri), `${name}: ${page.status} ${page.url}`);
        const params = new URL(page.url).searchParams;
        assert.equal(params.get('error'), error, name);
        assert.equal(params.get('code'), null, name);
        assert.equal(params.get('iss'), op.issuer, name);
        if (!name.startsWith('state')) assert.equal(params.get('state'), 'malformed', name);
        assert.match(params.get('error_description') ?? 'x', /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/, name);
      }
    });

    it('prompt=none for a signed-in person: a sub asked with another value, or an essential acr the session lacks, is login_required, never a code (Core §3.1.2.6, §5.5.1, §5.5.1.1)', async () => {
      for (const claims of [{ id_token: { sub: { value: 'someone-else' } } }, { id_token: { acr: { essential: true, values: ['mfa'] } } }]) {
        const params = callbackParams(await web.authorize(alice, { prompt: 'none', claims: JSON.stringify(claims) }));
        assert.equal(params.get('error'), 'login_required', JSON.stringify(claims));
        assert.equal(params.get('code'), null);
        assert.equal(params.get('iss'), op.issuer);
      }
      const satisfied = callbackParams(await web.authorize(alice, { prompt: 'none', claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['pwd'] }, sub: { value: op.subs.alice! } } }) }));
      assert.ok(satisfied.get('code'), 'an acr and sub the session has: a code');
    });

    it('a person who cancels at the login page sends the client access_denied, with state and iss, in the response mode asked (RFC 6749 §4.1.2.1, RFC 9207 §2)', async () => {
      for (const mode of ['query', 'form_post']) {
        const agent = new Agent();
        const flow = await web.authorize(agent, { response_mode: mode });
        assert.ok(isLogin(flow.page), `${mode}: the login page`);
        const back = await agent.submit(flow.page, '/abort', {}, web.redirectUri);
        const params = mode === 'form_post' ? new URLSearchParams(formIn(back.html, web.redirectUri).hidden) : new URL(back.url).searchParams;
        assert.equal(params.get('error'), 'access_denied', mode);
        assert.equal(params.get('state'), flow.state, mode);
        assert.equal(params.get('iss'), op.issuer, mode);
        assert.equal(params.get('code'), null, mode);
      }
    });

    it('unsupported scopes (address, phone) are ignored, not an error (Core §5.4)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid profile email address phone' }));
      const info = await userinfo(tokens.access_token);
      assert.equal(info.status, 200);
      assert.equal(info.body.address, undefined);
      assert.equal(info.body.phone_number, undefined);
      assert.equal(info.body.email, ALICE.email);
    });
  });

  describe('prompt, max_age and id_token_hint', () => {
    it('prompt=none without a session → login_required at the redirect URI (Core §3.1.2.6)', async () => {
      const flow = await web.authorize(new Agent(), { prompt: 'none' });
      const params = callbackParams(flow);
      assert.equal(params.get('error'), 'login_required');
      assert.equal(params.get('state'), flow.state);
      assert.equal(params.get('code'), null);
    });

    it('prompt=none with a session returns a code without showing a page (Core §3.1.2.1)', async () => {
      const flow = await web.authorize(alice, { prompt: 'none' });
      assert.ok(callbackParams(flow).get('code'), flow.page.url);
      const tokens = await web.redeem(flow);
      assert.equal((await verifyIdToken(tokens.id_token!, 'web')).sub, op.subs.alice);
    });

    it('prompt=none for a client the person has not allowed → consent_required (Core §3.1.2.6)', async () => {
      const agent = new Agent();
      await web.redeem(await web.signIn(agent, BOB));
      const flow = await spa.authorize(agent, { prompt: 'none' });
      assert.equal(callbackParams(flow).get('error'), 'consent_required');
    });

    it('prompt=login makes a signed-in person sign in again, and auth_time moves on (Core §3.1.2.1)', async () => {
      const agent = new Agent();
      const claims = JSON.stringify({ id_token: { auth_time: { essential: true } } });
      const first = await verifyIdToken((await web.redeem(await web.signIn(agent, ALICE, { claims }))).id_token!, 'web');
      await sleep(1100);
      const again = await web.authorize(agent, { prompt: 'login', claims });
      assert.ok(isLogin(again.page), 'the login page is shown again');
      const page = await signInSteps(agent, again.page, { username: ALICE.username, password: ALICE.password, stopAt: web.redirectUri });
      const second = await verifyIdToken((await web.redeem({ ...again, page })).id_token!, 'web');
      assert.ok(Number(second.auth_time) > Number(first.auth_time), `${String(second.auth_time)} > ${String(first.auth_time)}`);
    });

    it('max_age=1 after waiting forces a new login, and auth_time is in the ID token (Core §3.1.2.1, §2)', async () => {
      const agent = new Agent();
      const first = await verifyIdToken((await web.redeem(await web.signIn(agent, ALICE, { max_age: '3600' }))).id_token!, 'web');
      assert.equal(typeof first.auth_time, 'number');
      // Authentication times are whole seconds: only after two seconds has more than one second
      // passed by every clock reading (a sign-in at 100.0 is 100; 101.9 - 100 is still 1).
      await sleep(2100);
      const flow = await web.authorize(agent, { max_age: '1' });
      assert.ok(isLogin(flow.page), `the login page is shown again, got ${flow.page.status} ${flow.page.url} ${flow.page.html.slice(0, 300)}`);
      const page = await signInSteps(agent, flow.page, { username: ALICE.username, password: ALICE.password, consent: 'stop', stopAt: web.redirectUri });
      const second = await verifyIdToken((await web.redeem({ ...flow, page })).id_token!, 'web');
      assert.equal(typeof second.auth_time, 'number');
      assert.ok(Number(second.auth_time) > Number(first.auth_time));
    });

    it('max_age=1 is measured to the millisecond: a sign-in more than a second old, though in the next whole second after auth_time, needs a new login (Core §3.1.2.1 "greater than")', async () => {
      // A sign-in early in its second (so that a second and a bit later is still the next second): tried until one is.
      for (let tries = 0; ; tries += 1) {
        const agent = new Agent();
        const signedIn = await web.signIn(agent, ALICE, { max_age: '3600' });
        const back = Date.now();
        const { auth_time: authTime } = await verifyIdToken((await web.redeem(signedIn)).id_token!, 'web');
        const sendAt = back + 1_100;
        if (Math.floor(sendAt / 1000) !== Number(authTime) + 1) {
          assert.ok(tries < 10, 'no sign-in early enough in its second to test with');
          continue;
        }
        await new Promise((resolve) => setTimeout(resolve, sendAt - Date.now()));
        const flow = await web.authorize(agent, { prompt: 'none', max_age: '1' });
        assert.ok(Date.now() - back > 1_000, 'more than a second since the sign-in finished');
        assert.equal(callbackParams(flow).get('error'), 'login_required', `a sign-in over a second old meets no max_age=1 (${flow.page.url})`);
        return;
      }
    });

    it('max_age=10000 keeps the session, with auth_time in the ID token (Core §3.1.2.1, §2)', async () => {
      const flow = await web.authorize(alice, { max_age: '10000' });
      assert.ok(callbackParams(flow).get('code'), 'no login page');
      const claims = await verifyIdToken((await web.redeem(flow)).id_token!, 'web');
      assert.equal(typeof claims.auth_time, 'number');
      assert.ok(Number(claims.auth_time) <= Number(claims.iat));
    });

    it("id_token_hint of the signed-in person, with prompt=none, returns a code (Core §3.1.2.1)", async () => {
      const hint = (await web.redeem(await web.authorize(alice, { prompt: 'none' }))).id_token!;
      const flow = await web.authorize(alice, { prompt: 'none', id_token_hint: hint });
      assert.ok(callbackParams(flow).get('code'), flow.page.url);
      const claims = await verifyIdToken((await web.redeem(flow)).id_token!, 'web');
      assert.equal(claims.sub, op.subs.alice);
    });

    it('prompt=select_account with a session shows an account chooser; continuing returns a code for that person without a new sign-in (Core §3.1.2.1)', async () => {
      const agent = new Agent();
      const first = await verifyIdToken((await web.redeem(await web.signIn(agent, ALICE))).id_token!, 'web');
      const flow = await web.authorize(agent, { prompt: 'select_account' });
      assert.equal(flow.page.status, 200, flow.page.url);
      assert.ok(!isLogin(flow.page), 'a chooser, not the password form');
      assert.match(flow.page.html, /Continue as <bdi>Alice Liddell<\/bdi> \(alice\)/);
      assert.match(flow.page.html, /Use another account/);
      const page = await agent.submit(flow.page, '/continue', {}, web.redirectUri);
      assert.ok(callbackParams({ ...flow, page }).get('code'), page.url);
      const claims = await verifyIdToken((await web.redeem({ ...flow, page })).id_token!, 'web');
      assert.equal(claims.sub, op.subs.alice);
      assert.equal(claims.auth_time, first.auth_time, 'the sign-in is the one the session had');
    });

    it('prompt=select_account: "use another account" signs another person in, and the code is theirs (Core §3.1.2.1)', async () => {
      const agent = new Agent();
      await web.redeem(await web.signIn(agent, ALICE));
      const flow = await web.authorize(agent, { prompt: 'select_account' });
      const another = await agent.follow(new URL(/href="([^"]*\/another)"/.exec(flow.page.html)![1]!, flow.page.url).href, {}, web.redirectUri);
      assert.ok(isLogin(another), `the login page, got ${another.status} ${another.url}`);
      let page = await agent.submit(another, '/login', { username: BOB.username, password: BOB.password }, web.redirectUri);
      // Signing in as someone else ends the first person's session first (the engine's sign-out form).
      if (page.html.includes('session/end/confirm')) page = await agent.submit(page, 'session/end/confirm', { logout: 'yes' }, web.redirectUri);
      page = await signInSteps(agent, page, { username: BOB.username, password: BOB.password, stopAt: web.redirectUri });
      assert.ok(page.url.startsWith(web.redirectUri), page.url);
      const claims = await verifyIdToken((await web.redeem({ ...flow, page })).id_token!, 'web');
      assert.equal(claims.sub, op.subs.bob);
    });

    it('prompt=select_account without a session is the login page: signing in is the choice (Core §3.1.2.1)', async () => {
      const agent = new Agent();
      const flow = await web.authorize(agent, { prompt: 'select_account' });
      assert.ok(isLogin(flow.page), `the login page, got ${flow.page.status} ${flow.page.url}`);
      const page = await signInSteps(agent, flow.page, { username: ALICE.username, password: ALICE.password, stopAt: web.redirectUri });
      assert.equal((await verifyIdToken((await web.redeem({ ...flow, page })).id_token!, 'web')).sub, op.subs.alice);
    });

    it('prompt_values_supported lists what is accepted: none, login, consent, select_account; with none, another value is invalid_request (Core §3.1.2.1, Prompt Create §4.1)', async () => {
      assert.deepEqual([...((op.metadata as { prompt_values_supported?: string[] }).prompt_values_supported ?? [])].sort(), ['consent', 'login', 'none', 'select_account']);
      for (const prompt of ['none select_account', 'unknown-value']) {
        const flow = await web.authorize(alice, { prompt });
        assert.equal(callbackParams(flow).get('error'), 'invalid_request', prompt);
        assert.equal(callbackParams(flow).get('code'), null, prompt);
      }
    });

    it("another person's id_token_hint gets login_required, never a code for the wrong person (Core §3.1.2.1)", async () => {
      const bobs = (await web.redeem(await web.signIn(new Agent(), BOB))).id_token!;
      const flow = await web.authorize(alice, { prompt: 'none', id_token_hint: bobs });
      assert.equal(callbackParams(flow).get('error'), 'login_required');
      assert.equal(callbackParams(flow).get('code'), null);
    });
  });

  describe('token endpoint and ID token', () => {
    let flow: Flow;
    let tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
    let raw: TokenAnswer;

    before(async () => {
      flow = await web.signIn(alice, ALICE, { scope: 'openid profile email offline_access', prompt: 'consent' });
      raw = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(flow), redirect_uri: flow.redirectUri, code_verifier: flow.verifier },
        basic('web', SECRET),
      );
      assert.equal(raw.status, 200, JSON.stringify(raw.body));
      tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid profile email offline_access' }));
    });

    it('the token response has access_token, token_type Bearer, expires_in and id_token, and is not cached (Core §3.1.3.3, RFC 6749 §5.1)', () => {
      assert.equal(typeof raw.body.access_token, 'string');
      assert.equal(String(raw.body.token_type).toLowerCase(), 'bearer');
      assert.ok(Number(raw.body.expires_in) > 0);
      assert.equal(typeof raw.body.id_token, 'string');
      assert.match(raw.headers.get('cache-control') ?? '', /no-store/);
      assert.match(raw.headers.get('content-type') ?? '', /^application\/json/);
    });

    it('the ID token is RS256-signed by a key published at jwks_uri (Core §3.1.3.7, §10.1)', async () => {
      const [header] = String(raw.body.id_token).split('.');
      const { alg, kid } = JSON.parse(Buffer.from(header!, 'base64url').toString()) as { alg: string; kid: string };
      assert.equal(alg, 'RS256');
      const { keys } = (await (await fetch(op.metadata.jwks_uri!)).json()) as { keys: { kid: string }[] };
      assert.ok(keys.some((key) => key.kid === kid), 'its kid is in the JWKS');
      await verifyIdToken(String(raw.body.id_token), 'web');
    });

    it('ID token claims: iss is the issuer, aud the client, exp in the future, iat present, sub at most 255 ASCII characters (Core §2, §3.1.3.7)', async () => {
      const claims = await verifyIdToken(String(raw.body.id_token), 'web');
      assert.equal(claims.iss, op.issuer);
      assert.deepEqual([claims.aud].flat(), ['web']);
      const now = Math.floor(Date.now() / 1000);
      assert.ok(Number(claims.exp) > now);
      assert.equal(typeof claims.iat, 'number');
      assert.ok(Number(claims.iat) <= Number(claims.exp));
      assert.match(String(claims.sub), /^[\x21-\x7e]{1,255}$/);
      assert.equal(claims.sub, op.subs.alice);
    });

    it('azp, when present, is the client_id (Core §2, §3.1.3.7 #4-5)', async () => {
      const claims = await verifyIdToken(String(raw.body.id_token), 'web');
      if (claims.azp !== undefined) assert.equal(claims.azp, 'web');
    });

    it('the nonce of the request is in the ID token (Core §3.1.3.7 #11)', async () => {
      const claims = await verifyIdToken(String(raw.body.id_token), 'web');
      assert.equal(claims.nonce, flow.nonce);
    });

    it('a request without nonce succeeds for the code flow, and the ID token carries none (Core §3.1.2.1)', async () => {
      const noNonce = await web.authorize(alice, { nonce: undefined });
      const url = new URL(noNonce.page.url);
      assert.ok(url.searchParams.get('code'));
      const answer = await tokenRequest(
        { grant_type: 'authorization_code', code: url.searchParams.get('code')!, redirect_uri: noNonce.redirectUri, code_verifier: noNonce.verifier },
        basic('web', SECRET),
      );
      assert.equal(answer.status, 200);
      const claims = await verifyIdToken(String(answer.body.id_token), 'web');
      assert.equal(claims.nonce, undefined);
    });

    it('at_hash, when present, is the left half of SHA-256 of the access token; c_hash never appears (Core §3.1.3.6, §3.3.2.11)', async () => {
      const claims = await verifyIdToken(String(raw.body.id_token), 'web');
      if (claims.at_hash !== undefined) {
        const digest = createHash('sha256').update(String(raw.body.access_token)).digest();
        assert.equal(claims.at_hash, digest.subarray(0, 16).toString('base64url'));
      }
      assert.equal(claims.c_hash, undefined, 'no hybrid flow');
    });

    it('sub is the same for the same person at every sign-in (Core §2, §5.7)', async () => {
      const again = await web.redeem(await web.signIn(new Agent(), ALICE));
      assert.equal((await verifyIdToken(again.id_token!, 'web')).sub, (await verifyIdToken(tokens.id_token!, 'web')).sub);
    });

    it('a code is single-use: a second redemption → invalid_grant (RFC 6749 §4.1.2, §5.2)', async () => {
      const again = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(flow), redirect_uri: flow.redirectUri, code_verifier: flow.verifier },
        basic('web', SECRET),
      );
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'invalid_grant');
    });

    it('reusing a code revokes the tokens issued for it (RFC 6749 §4.1.2, RFC 9700 §4.2.4)', async () => {
      const fresh = await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' });
      const first = await web.redeem(fresh);
      assert.equal((await userinfo(first.access_token)).status, 200);
      const replay = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(fresh), redirect_uri: fresh.redirectUri, code_verifier: fresh.verifier },
        basic('web', SECRET),
      );
      assert.equal(replay.body.error, 'invalid_grant');
      assert.equal((await userinfo(first.access_token)).status, 401, 'the access token is revoked');
      assert.equal((await oidc.tokenIntrospection(web.config, first.access_token)).active, false);
      await assert.rejects(oidc.refreshTokenGrant(web.config, first.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
    });

    it('a code is bound to the client it was issued to (RFC 6749 §4.1.3)', async () => {
      const fresh = await web.signIn(alice, ALICE);
      const stolen = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(fresh), redirect_uri: fresh.redirectUri, code_verifier: fresh.verifier },
        basic('other', OTHER_SECRET),
      );
      assert.equal(stolen.status, 400);
      assert.equal(stolen.body.error, 'invalid_grant');
    });

    it('a code is bound to the redirect_uri of its request (RFC 6749 §4.1.3, RFC 9700 §4.5.2)', async () => {
      const fresh = await web.signIn(alice, ALICE);
      for (const redirect of ['https://web.example.test/cb?tenant=a', 'https://evil.example/callback']) {
        const answer = await tokenRequest(
          { grant_type: 'authorization_code', code: codeOf(fresh), redirect_uri: redirect, code_verifier: fresh.verifier },
          basic('web', SECRET),
        );
        assert.equal(answer.status, 400, redirect);
        assert.equal(answer.body.error, 'invalid_grant', redirect);
      }
    });

    it('a code of an OpenID request is redeemed with its redirect_uri, even for a client with one registered; without it invalid_request, and the code is not spent (RFC 6749 §4.1.3, Core §3.1.3.2)', async () => {
      const flow = await other.signIn(alice, ALICE);
      for (const omitted of [{}, { redirect_uri: '' }] as Record<string, string>[]) {
        const without = await tokenRequest({ grant_type: 'authorization_code', code: codeOf(flow), code_verifier: flow.verifier, ...omitted }, basic('other', OTHER_SECRET));
        assert.equal(without.status, 400, JSON.stringify(without.body));
        assert.equal(without.body.error, 'invalid_request');
        assert.match(String(without.body.error_description), /redirect_uri/);
      }
      const tokens = await other.redeem(flow);
      assert.ok(tokens.id_token, 'redeemed with redirect_uri after');
      // A plain OAuth 2.0 request that left it out (RFC 6749 §3.1.2.3) may leave it out here too.
      const plain = await other.signIn(alice, ALICE, { scope: 'email', nonce: undefined, redirect_uri: undefined });
      const answer = await tokenRequest({ grant_type: 'authorization_code', code: codeOf(plain), code_verifier: plain.verifier }, basic('other', OTHER_SECRET));
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
    });

    it('a wrong or missing PKCE code_verifier → invalid_grant (RFC 7636 §4.6, RFC 9700 §2.1.1)', async () => {
      const fresh = await web.signIn(alice, ALICE);
      const wrong = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(fresh), redirect_uri: fresh.redirectUri, code_verifier: oidc.randomPKCECodeVerifier() },
        basic('web', SECRET),
      );
      assert.equal(wrong.body.error, 'invalid_grant');
      const other = await web.signIn(alice, ALICE);
      const missing = await tokenRequest({ grant_type: 'authorization_code', code: codeOf(other), redirect_uri: other.redirectUri }, basic('web', SECRET));
      assert.ok(['invalid_grant', 'invalid_request'].includes(String(missing.body.error)), String(missing.body.error));
      assert.equal(missing.status, 400);
    });

    it('a valid PKCE verifier is accepted (Basic OP: ensure request with valid PKCE succeeds; RFC 7636 §4.6)', async () => {
      const fresh = await web.signIn(alice, ALICE);
      const answer = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(fresh), redirect_uri: fresh.redirectUri, code_verifier: fresh.verifier },
        basic('web', SECRET),
      );
      assert.equal(answer.status, 200);
    });

    it('an unknown code → invalid_grant (RFC 6749 §5.2)', async () => {
      const answer = await tokenRequest(
        { grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: web.redirectUri, code_verifier: 'a'.repeat(43) },
        basic('web', SECRET),
      );
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_grant');
    });

    it('unsupported grant types are refused, the password grant and token exchange among them (RFC 6749 §5.2, RFC 9700 §2.4, RFC 8693)', async () => {
      // A person's access token of the client itself as the token to exchange (RFC 8693 §2.1).
      const subjectToken = (await web.redeem(await web.signIn(new Agent(), ALICE))).access_token;
      const grants = ['password', 'implicit', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:saml2-bearer', 'urn:openid:params:grant-type:ciba', 'made-up'];
      for (const grant of grants) {
        const answer = await tokenRequest(
          { grant_type: grant, username: 'alice', password: ALICE.password, scope: 'openid', subject_token: subjectToken, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', assertion: subjectToken },
          basic('web', SECRET),
        );
        assert.equal(answer.status, 400, grant);
        assert.equal(answer.body.error, 'unsupported_grant_type', grant);
        assert.equal(answer.body.access_token, undefined);
      }
    });
  });

  describe('userinfo', () => {
    let accessToken: string;
    let idSub: string;

    before(async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid profile email' }));
      accessToken = tokens.access_token;
      idSub = String((await verifyIdToken(tokens.id_token!, 'web')).sub);
    });

    it('GET with a bearer header returns JSON whose sub is the ID token sub (Core §5.3.1, §5.3.2)', async () => {
      const info = await userinfo(accessToken);
      assert.equal(info.status, 200);
      assert.match(info.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal(info.body.sub, idSub);
    });

    it('POST with a bearer header works (Core §5.3.1, RFC 6750 §2.1)', async () => {
      const response = await fetch(op.metadata.userinfo_endpoint!, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { sub: string }).sub, idSub);
    });

    it('POST with access_token in a form body works (Core §5.3.1, RFC 6750 §2.2)', async () => {
      const response = await fetch(op.metadata.userinfo_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ access_token: accessToken }),
      });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { sub: string }).sub, idSub);
    });

    it('an access token in the query string is refused (RFC 9700 §4.3.2, RFC 6750 §2.3)', async () => {
      const response = await fetch(`${op.metadata.userinfo_endpoint!}?access_token=${encodeURIComponent(accessToken)}`);
      assert.ok(response.status === 400 || response.status === 401);
      assert.equal(((await response.json()) as { sub?: string }).sub, undefined);
    });

    it('an invalid token → 401 with WWW-Authenticate: Bearer error="invalid_token" (Core §5.3.3, RFC 6750 §3.1)', async () => {
      for (const token of ['not-a-token', `${accessToken}x`, accessToken.slice(1)]) {
        const info = await userinfo(token);
        assert.equal(info.status, 401);
        assert.match(info.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);
        assert.equal(info.body.error, 'invalid_token');
      }
    });

    it('no token → 401 with a Bearer challenge (RFC 6750 §3, §3.1)', async () => {
      const response = await fetch(op.metadata.userinfo_endpoint!);
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate') ?? '', /Bearer realm=/);
    });

    it('an Authorization header of another scheme (Basic, Digest) carries no access token: 401 with a Bearer challenge and no error code (RFC 6750 §3.1: "attempted using an unsupported authentication method"; Core §5.3.3)', async () => {
      for (const authorization of [`Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`, 'Digest username="web"']) {
        for (const method of ['GET', 'POST']) {
          const response = await fetch(op.metadata.userinfo_endpoint!, { method, headers: { authorization } });
          assert.equal(response.status, 401, `${method} ${authorization}`);
          const challenge = response.headers.get('www-authenticate') ?? '';
          assert.match(challenge, /^Bearer realm="[^"]+"/, authorization);
          assert.doesNotMatch(challenge, /error=/, `${authorization}: ${challenge}`);
        }
      }
      const malformed = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: 'Bearer' } });
      assert.equal(malformed.status, 400, 'a Bearer header without a token is malformed');
      assert.match(malformed.headers.get('www-authenticate') ?? '', /error="invalid_request"/);
    });

    it('a token sent two ways at once → 400 invalid_request with a Bearer challenge; a token without openid → 403 insufficient_scope naming openid (RFC 6750 §2, §3.1; Core §5.3)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid profile offline_access', prompt: 'consent' }));
      const twice = await fetch(op.metadata.userinfo_endpoint!, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ access_token: tokens.access_token }),
      });
      assert.equal(twice.status, 400);
      assert.match(twice.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+", error="invalid_request"/);
      assert.equal(((await twice.json()) as { error: string }).error, 'invalid_request');
      const narrowed = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, scope: 'profile offline_access' }, basic('web', SECRET));
      assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
      const info = await userinfo(String(narrowed.body.access_token));
      assert.equal(info.status, 403);
      assert.equal(info.body.error, 'insufficient_scope');
      assert.match(info.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
      assert.match(info.headers.get('www-authenticate') ?? '', /scope="openid"/);
    });

    it('scope profile → name, given_name, family_name, locale, updated_at (Core §5.4)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid profile' }));
      const { body } = await userinfo(tokens.access_token);
      assert.equal(body.name, ALICE.name);
      assert.equal(body.given_name, ALICE.givenName);
      assert.equal(body.family_name, ALICE.familyName);
      assert.equal(body.locale, ALICE.locale);
      assert.equal(typeof body.updated_at, 'number');
      assert.equal(body.email, undefined);
    });

    it('scope email → email and email_verified (Core §5.4)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid email' }));
      const { body } = await userinfo(tokens.access_token);
      assert.equal(body.email, ALICE.email);
      assert.equal(body.email_verified, true);
      assert.equal(body.name, undefined);
    });

    it('scope openid alone → sub only (Core §5.4)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid' }));
      const { body } = await userinfo(tokens.access_token);
      assert.deepEqual(Object.keys(body), ['sub']);
    });

    it('the claims parameter releases a userinfo claim asked for on its own (Core §5.5)', async () => {
      const claims = JSON.stringify({ userinfo: { email: null } });
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { scope: 'openid', claims }));
      const { body } = await userinfo(tokens.access_token);
      assert.equal(body.email, ALICE.email);
      assert.equal(body.name, undefined, 'nothing that was not asked for');
    });

    it('the claims parameter puts a requested claim in the ID token (Core §5.5)', async () => {
      const claims = JSON.stringify({ id_token: { email: null } });
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { scope: 'openid', claims }));
      assert.equal((await verifyIdToken(tokens.id_token!, 'web')).email, ALICE.email);
    });

    it('auth_time asked for as an essential claim is in the ID token (Core §2, §5.5.1, §15.1 "Authentication Time")', async () => {
      const claims = JSON.stringify({ id_token: { auth_time: { essential: true } } });
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { claims }));
      const { auth_time: authTime, iat } = await verifyIdToken(tokens.id_token!, 'web');
      assert.equal(typeof authTime, 'number');
      assert.ok(Number(authTime) <= iat!, 'a sign-in before the ID token');
    });

    it('every claim an ID token or userinfo releases is listed in discovery\'s claims_supported (Discovery §3; the JWT and protocol claims aside)', async () => {
      const claims = JSON.stringify({ id_token: { email: null, name: null, auth_time: { essential: true } }, userinfo: { email: null } });
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { scope: 'openid profile email', claims }));
      const protocol = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'azp', 'at_hash', 'c_hash', 's_hash', 'sid']);
      const released = [...Object.keys(await verifyIdToken(tokens.id_token!, 'web')), ...Object.keys((await userinfo(tokens.access_token)).body)];
      const supported = new Set(op.metadata.claims_supported);
      for (const claim of released.filter((name) => !protocol.has(name))) assert.ok(supported.has(claim), `${claim} is released but not in claims_supported`);
    });

    it('an essential claim in the claims parameter is released (Core §5.5.1; Basic OP: claims essential)', async () => {
      const claims = JSON.stringify({ userinfo: { name: { essential: true } } });
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { scope: 'openid', claims }));
      assert.equal((await userinfo(tokens.access_token)).body.name, ALICE.name);
    });
  });

  describe('refresh tokens', () => {
    it('the refresh_token grant returns a new access token and an ID token with the same sub, iss and aud (Core §12.1, §12.2)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      const refreshed = await oidc.refreshTokenGrant(web.config, tokens.refresh_token!);
      assert.ok(refreshed.access_token);
      assert.notEqual(refreshed.access_token, tokens.access_token);
      const before = await verifyIdToken(tokens.id_token!, 'web');
      const after = await verifyIdToken(refreshed.id_token!, 'web');
      assert.equal(after.sub, before.sub);
      assert.equal(after.iss, before.iss);
      assert.deepEqual(after.aud, before.aud);
      assert.equal((await userinfo(refreshed.access_token)).status, 200);
    });

    it("a refreshed ID token keeps the original sign-in's auth_time and acr, is issued anew (iat), and has no nonce, though the first had one; the granted scope may be sent again (Core §12.2, RFC 6749 §6; oidcc-refresh-token)", async () => {
      const flow = await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' });
      const tokens = await web.redeem(flow);
      const before = await verifyIdToken(tokens.id_token!, 'web');
      await sleep(1100);
      // As the OpenID Foundation's refresh test sends it: the scope granted, again.
      const after = await verifyIdToken((await oidc.refreshTokenGrant(web.config, tokens.refresh_token!, { scope: 'openid offline_access' })).id_token!, 'web');
      assert.equal(typeof before.auth_time, 'number');
      assert.equal(after.auth_time, before.auth_time);
      assert.equal(after.acr, before.acr);
      assert.ok(Number(after.iat) > Number(before.iat), `iat ${String(after.iat)} after ${String(before.iat)}`);
      assert.equal(before.nonce, flow.nonce);
      // Core §12.2: it "SHOULD NOT have a nonce Claim, even when the ID Token issued at the time of the original authentication contained nonce".
      assert.equal(after.nonce, undefined);
    });

    it('a refresh token is issued only when offline_access was asked for and consented (Core §11, RFC 9700 §4.14.2)', async () => {
      const without = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid profile' }));
      assert.equal(without.refresh_token, undefined);
      const withOffline = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      assert.ok(withOffline.refresh_token);
    });

    it('refresh tokens rotate: each use returns a new one and retires the old (RFC 9700 §4.14.2)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      const first = await oidc.refreshTokenGrant(web.config, tokens.refresh_token!);
      const second = await oidc.refreshTokenGrant(web.config, first.refresh_token!);
      assert.ok(second.refresh_token);
      assert.equal(new Set([tokens.refresh_token, first.refresh_token, second.refresh_token]).size, 3);
    });

    it('a retired refresh token used again revokes the whole grant (RFC 9700 §4.14.2: rotation with replay detection)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      const rotated = await oidc.refreshTokenGrant(web.config, tokens.refresh_token!);
      await assert.rejects(oidc.refreshTokenGrant(web.config, tokens.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
      await assert.rejects(oidc.refreshTokenGrant(web.config, rotated.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
      assert.equal((await userinfo(rotated.access_token)).status, 401);
    });

    it("a refresh token is bound to its client: another client's use → invalid_grant (RFC 6749 §6, RFC 9700 §2.2.2)", async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      const answer = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, basic('other', OTHER_SECRET));
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_grant');
    });

    it('a refresh cannot widen the scope that was granted (RFC 6749 §6, RFC 9700 §4.14.2)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      const answer = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, scope: 'openid offline_access email' }, basic('web', SECRET));
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_scope');
    });

    it('a refresh may narrow the scope, openid left out included: the answer says the scope it gave, and no ID token without openid (RFC 6749 §6, §5.1; Core §12.2)', async () => {
      const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid profile offline_access', prompt: 'consent' }));
      let refreshToken = tokens.refresh_token!;
      for (const [scope, idToken] of [['profile offline_access', false], ['offline_access', false], ['openid offline_access', true]] as const) {
        const answer = await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, scope }, basic('web', SECRET));
        assert.equal(answer.status, 200, `${scope}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.scope, scope);
        assert.equal(typeof answer.body.id_token === 'string', idToken, scope);
        refreshToken = String(answer.body.refresh_token);
      }
    });

    it("a public client's refresh tokens rotate and a replay revokes them (RFC 9700 §2.2.2, §4.14.2)", async () => {
      const tokens = await spa.redeem(await spa.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      assert.ok(tokens.refresh_token, 'offline_access granted');
      const rotated = await oidc.refreshTokenGrant(spa.config, tokens.refresh_token!);
      assert.notEqual(rotated.refresh_token, tokens.refresh_token);
      await assert.rejects(oidc.refreshTokenGrant(spa.config, tokens.refresh_token!), oidc.ResponseBodyError);
      await assert.rejects(oidc.refreshTokenGrant(spa.config, rotated.refresh_token!), oidc.ResponseBodyError);
    });
  });

  describe('client authentication at the token endpoint', () => {
    async function freshCode(rp: RelyingParty): Promise<Flow> {
      return rp.signIn(alice, ALICE);
    }

    it('client_secret_basic: accepted; a wrong secret → 401 invalid_client (RFC 6749 §2.3.1, §5.2)', async () => {
      const flow = await freshCode(web);
      const wrong = await tokenRequest(
        { grant_type: 'authorization_code', code: codeOf(flow), redirect_uri: flow.redirectUri, code_verifier: flow.verifier },
        basic('web', `${SECRET}x`),
      );
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error, 'invalid_client');
      assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic/);
      const right = await web.redeem(await freshCode(web));
      assert.ok(right.access_token);
    });

    it('client_secret_post: accepted; a wrong secret → 401 invalid_client (RFC 6749 §2.3.1; Basic OP: client_secret_post)', async () => {
      const tokens = await post.redeem(await freshCode(post));
      assert.ok(tokens.access_token);
      const flow = await freshCode(post);
      const wrong = await tokenRequest({
        grant_type: 'authorization_code',
        code: codeOf(flow),
        redirect_uri: flow.redirectUri,
        code_verifier: flow.verifier,
        client_id: 'post',
        client_secret: 'wrong',
      });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error, 'invalid_client');
    });

    it('private_key_jwt: accepted; an assertion signed by another key → 401 invalid_client (Core §9, RFC 7523 §3)', async () => {
      const tokens = await pkjwt.redeem(await freshCode(pkjwt));
      assert.ok(tokens.access_token);
      const { privateKey: stranger } = await generateKeyPair('RS256');
      const impostor = await RelyingParty.create(op, 'pkjwt', { method: oidc.PrivateKeyJwt({ key: stranger, kid: 'pkjwt-1' }) });
      await assert.rejects(impostor.redeem(await freshCode(pkjwt)), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_client');
        assert.equal(error.status, 401);
        return true;
      });
    });

    it('none: a public client redeems with PKCE alone (RFC 6749 §2.1, RFC 7636)', async () => {
      const tokens = await spa.redeem(await freshCode(spa));
      assert.ok(tokens.access_token);
    });

    it('a confidential client that sends no credentials → 401 invalid_client (RFC 6749 §3.2.1, §5.2)', async () => {
      const flow = await freshCode(web);
      const answer = await tokenRequest({
        grant_type: 'authorization_code',
        code: codeOf(flow),
        redirect_uri: flow.redirectUri,
        code_verifier: flow.verifier,
        client_id: 'web',
      });
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
    });

    it('a client must use its registered kind of authentication: a client assertion for a secret client → 401 invalid_client (Core §9, RFC 7591 §2)', async () => {
      const flow = await freshCode(web);
      const { privateKey } = await generateKeyPair('RS256');
      const impostor = await RelyingParty.create(op, 'web', { method: oidc.PrivateKeyJwt({ key: privateKey }) });
      await assert.rejects(impostor.redeem(flow), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_client');
        assert.equal(error.status, 401);
        return true;
      });
    });

    it('a public client cannot pass itself off as another: a code for spa redeemed as web without a secret fails (RFC 6749 §4.1.3)', async () => {
      const flow = await freshCode(spa);
      const answer = await tokenRequest({
        grant_type: 'authorization_code',
        code: codeOf(flow),
        redirect_uri: flow.redirectUri,
        code_verifier: flow.verifier,
        client_id: 'web',
      });
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
    });
  });
});
