/**
 * The spec-letter pass (2026-12-04): the OP side's MUST / MUST NOT / REQUIRED statements of OpenID
 * Connect Core, Discovery, RP-Initiated and Back-Channel Logout, and RFC 6749, 6750, 7009, 7591,
 * 7592, 7662, 8628, 9126, 9207 and 9449 that no other file of this suite checks, each black box over
 * HTTP with fetch, openid-client and an Agent as the person (docs/security.md, "Spec-letter pass").
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { developerSignIn } from '../helpers/developer.js';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, BOB, grantApi, RelyingParty, startOp, webClient, type Flow, type Op, type Person } from './fixture.js';

const SECRET = 'spec-letter-client-secret-with-plenty-of-entropy-01';
const API = 'https://api.spec-letter.example.test/';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
/** A person whose name is not ASCII: userinfo is UTF-8 (Core §5.3.2). */
const ZOE: Person = { username: 'zoe', password: 'conformance passphrase for zoe', name: 'Zoë Çelik 山田' };
const now = () => Math.floor(Date.now() / 1000);

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

/** Back-channel logout deliveries, by the request target they were posted to (path and query). */
async function startReceiver(): Promise<{ url: string; targets: string[]; server: Server }> {
  const targets: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      targets.push(req.url ?? '');
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, targets, server };
}

describe('Spec-letter pass (MUSTs no other plan checks)', function () {
  this.timeout(60_000);
  let op: Op;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let web: RelyingParty;

  before(async () => {
    receiver = await startReceiver();
    op = await startOp({
      people: [ALICE, BOB, ZOE],
      env: {
        REGISTRATION_OPEN: 'true',
        // Server nonces (RFC 9449 §8, §9) at the token endpoint, pushed requests and userinfo.
        DPOP_REQUIRE_NONCE: 'true',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'web', scopes: ['read'] }] }]),
      },
      clients: [
        webClient('web', SECRET, {
          grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
          backchannel_logout_uri: `${receiver.url}/backchannel?tenant=a&tenant=b`,
          backchannel_logout_session_required: true,
        }),
        webClient('other', SECRET),
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example.test/callback'], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: 'device', application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: ['urn:ietf:params:oauth:grant-type:device_code'] },
      ],
    });
    await grantApi(op, 'web', `${op.issuer}/admin`, ['admin']);
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
  });
  after(async () => {
    await op?.stop();
    receiver?.server.close();
  });

  const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}`;

  async function postForm(url: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async function json(url: string, method: string, token: string | undefined, body?: unknown): Promise<Answer> {
    const response = await fetch(url, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  const register = (metadata: Record<string, unknown>) => json(op.metadata.registration_endpoint!, 'POST', undefined, metadata);
  const codeOf = (flow: Flow) => new URL(flow.page.url).searchParams.get('code')!;
  const redeem = (flow: Flow, extra: Record<string, string> = {}) =>
    postForm(op.metadata.token_endpoint!, { grant_type: 'authorization_code', code: codeOf(flow), redirect_uri: flow.redirectUri, code_verifier: flow.verifier, ...extra }, { authorization: basic('web') });

  describe('redirect URIs keep their query, and each response parameter is sent once (RFC 6749 §3.1, §3.1.2)', () => {
    const RESPONSE_PARAMETERS = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri'];

    it('a redirect URI whose query names a parameter of the authorization response is invalid_redirect_uri wherever a client is written: registration, its update, the admin API (RFC 6749 §3.1, §3.1.2; RFC 7591 §3.2.2; RFC 9207 §2)', async () => {
      for (const name of RESPONSE_PARAMETERS) {
        const uri = `https://rp.example.test/cb?${name}=registered`;
        const answer = await register({ redirect_uris: [uri] });
        assert.equal(answer.status, 400, `${name}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error, 'invalid_redirect_uri', name);
        assert.match(String(answer.body.error_description), new RegExp(`its query has ${name},`));
      }
      // Percent-encoded, the name is the same parameter.
      assert.equal((await register({ redirect_uris: ['https://rp.example.test/cb?st%61te=x'] })).body.error, 'invalid_redirect_uri');

      const client = (await register({ redirect_uris: ['https://rp.example.test/cb'] })).body as Record<string, unknown> & { registration_client_uri: string; registration_access_token: string };
      const { registration_client_uri: uri, registration_access_token: token, client_secret_expires_at: _e, client_id_issued_at: _i, client_secret: _s, ...metadata } = client;
      const update = await json(uri, 'PUT', token, { ...metadata, redirect_uris: ['https://rp.example.test/cb?code=x'] });
      assert.equal(update.status, 400);
      assert.equal(update.body.error, 'invalid_redirect_uri');
      assert.deepEqual((await json(uri, 'GET', token)).body.redirect_uris, ['https://rp.example.test/cb'], 'nothing changed');

      const admin = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', resource: `${op.issuer}/admin`, scope: 'admin' }, { authorization: basic('web') });
      const byOperator = await json(`${op.issuer}/admin/clients`, 'POST', String(admin.body.access_token), { redirect_uris: ['https://rp.example.test/cb?error=x'] });
      assert.equal(byOperator.status, 400);
      assert.equal(byOperator.body.error, 'invalid_redirect_uri');
    });

    it('a post-logout redirect URI whose query has state is invalid_client_metadata (RP-Initiated Logout §3: the OP adds state)', async () => {
      const answer = await register({ redirect_uris: ['https://rp.example.test/cb'], post_logout_redirect_uris: ['https://rp.example.test/out?state=registered'] });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_client_metadata');
      assert.match(String(answer.body.error_description), /post_logout_redirect_uris: .*its query has state/);
    });

    it('a redirect_uri is compared with the registered one as a string: another case, the default port, percent-encoding, dot segments, an empty query or fragment, a trailing slash or dot are each an error page, never a redirect (RFC 6749 §3.1.2.3 "simple string comparison", RFC 3986 §6.2.1)', async () => {
      for (const uri of [
        'https://WEB.example.test/callback',
        'HTTPS://web.example.test/callback',
        'https://web.example.test/CALLBACK',
        'https://web.example.test:443/callback',
        'https://web.example.test/%63allback',
        'https://web.example.test/./callback',
        'https://web.example.test//callback',
        'https://web.example.test/callback?',
        'https://web.example.test/callback#',
        'https://web.example.test/callback/',
        'https://web.example.test./callback',
      ]) {
        const url = oidc.buildAuthorizationUrl(web.config, { redirect_uri: uri, scope: 'openid', state: 'S', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
        const response = await fetch(url, { redirect: 'manual' });
        assert.equal(response.status, 400, uri);
        assert.equal(response.headers.get('location'), null, uri);
      }
    });

    it('any other query is kept whole, repeated names included, beside the code and beside an error (RFC 6749 §3.1.2, §4.1.2, §4.1.2.1)', async () => {
      const uri = 'https://rp.example.test/cb?tenant=a&tenant=b&lang=en';
      const registered = (await register({ redirect_uris: [uri] })).body;
      assert.deepEqual(registered.redirect_uris, [uri]);
      const rp = await RelyingParty.create(op, String(registered.client_id), { secret: String(registered.client_secret) }, uri);
      const expectKept = (at: string) => {
        const params = new URL(at).searchParams;
        assert.deepEqual(params.getAll('tenant'), ['a', 'b'], at);
        assert.equal(params.get('lang'), 'en', at);
        for (const name of RESPONSE_PARAMETERS) assert.ok(params.getAll(name).length <= 1, `${name} once: ${at}`);
      };
      const agent = new Agent();
      const first = await rp.authorize(agent);
      const signedIn = await signInSteps(agent, first.page, { username: ALICE.username, password: ALICE.password, stopAt: 'https://rp.example.test/' });
      expectKept(signedIn.url);
      assert.ok(new URL(signedIn.url).searchParams.get('code'));
      const refused = await rp.authorize(new Agent(), { prompt: 'none' });
      expectKept(refused.page.url);
      assert.equal(new URL(refused.page.url).searchParams.get('error'), 'login_required');
      assert.equal(new URL(refused.page.url).searchParams.get('code'), null);
    });
  });

  describe('the token endpoint (RFC 6749 §3.1, §3.3, §5.1)', () => {
    it('a parameter sent without a value is treated as omitted: an empty client_id or client_secret beside Basic, an empty scope or resource at the code and at a refresh (RFC 6749 §3.1)', async () => {
      const agent = new Agent();
      for (const extra of <Record<string, string>[]>[{ client_secret: '' }, { client_id: '' }, { scope: '', resource: '' }]) {
        const flow = await web.signIn(agent, ALICE, { scope: 'openid offline_access', prompt: 'consent' });
        const answer = await redeem(flow, extra);
        assert.equal(answer.status, 200, `${JSON.stringify(extra)}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.scope, 'openid offline_access');
        const refreshed = await postForm(op.metadata.token_endpoint!, { grant_type: 'refresh_token', refresh_token: String(answer.body.refresh_token), ...extra }, { authorization: basic('web') });
        assert.equal(refreshed.status, 200, `refresh ${JSON.stringify(extra)}: ${JSON.stringify(refreshed.body)}`);
        assert.equal(refreshed.body.scope, 'openid offline_access', 'the whole grant, as if scope were left out (RFC 6749 §6)');
      }
    });

    it('a parameter given twice is invalid_request at pushed requests, device authorization, introspection and revocation, and signs no one out at the end-session endpoint (RFC 6749 §3.1 "MUST NOT be included more than once")', async () => {
      const push = `client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(web.redirectUri)}&code_challenge=${CHALLENGE}&code_challenge_method=S256&state=a&state=b`;
      for (const [url, body, headers] of <[string, string, Record<string, string>][]>[
        [op.metadata.pushed_authorization_request_endpoint!, push, { authorization: basic('web') }],
        [op.metadata.device_authorization_endpoint as string, 'client_id=device&scope=openid&scope=openid', {}],
        [op.metadata.introspection_endpoint!, 'token=a&token=b', { authorization: basic('web') }],
        [op.metadata.revocation_endpoint!, 'token=a&token=b', { authorization: basic('web') }],
      ]) {
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
        assert.equal(response.status, 400, url);
        assert.equal(((await response.json()) as { error?: string }).error, 'invalid_request', url);
      }
      const agent = new Agent();
      const tokens = await web.redeem(await web.signIn(agent, ALICE));
      const url = new URL(op.metadata.end_session_endpoint!);
      url.search = `${new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://web.example.test/signed-out', state: 'a' })}&state=b`;
      const page = await agent.follow(url.href, {}, 'https://web.example.test/');
      assert.equal(page.status, 400);
      assert.ok(page.url.startsWith(op.issuer), 'no redirect');
      assert.ok(new URL((await web.authorize(agent, { prompt: 'none' })).page.url).searchParams.get('code'), 'still signed in');
    });

    it('a parameter pushed without a value is treated as omitted: the request_uri it gives signs in, and an empty state is not echoed (RFC 6749 §3.1, RFC 9126 §2.1)', async () => {
      const agent = new Agent();
      await web.signIn(agent, ALICE);
      const base = { client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri, code_challenge: CHALLENGE, code_challenge_method: 'S256' };
      for (const name of ['state', 'nonce', 'prompt', 'max_age', 'claims', 'resource', 'login_hint', 'acr_values', 'ui_locales', 'id_token_hint', 'response_mode']) {
        const pushed = await postForm(op.metadata.pushed_authorization_request_endpoint!, { ...base, [name]: '' }, { authorization: basic('web') });
        assert.equal(pushed.status, 201, `${name}=: ${JSON.stringify(pushed.body)}`);
        const page = await agent.follow(`${op.metadata.authorization_endpoint!}?${new URLSearchParams({ client_id: 'web', request_uri: String(pushed.body.request_uri) })}`, {}, web.redirectUri);
        const answer = new URL(page.url).searchParams;
        assert.ok(answer.get('code'), `${name}=: ${page.url}`);
        assert.equal(answer.has('state'), false, `${name}=: no state`);
      }
    });

    it('scope is in the token response when the scope issued differs from the one asked: scopes not offered are dropped and named nowhere (RFC 6749 §3.3, §5.1; Core §5.4)', async () => {
      const flow = await web.signIn(new Agent(), ALICE, { scope: 'openid profile address phone urn:example:unknown' });
      const answer = await redeem(flow);
      assert.equal(answer.status, 200);
      assert.equal(answer.body.scope, 'openid profile');
    });
  });

  describe('authentication requests (Core §3.1.2)', () => {
    async function signedInAs(person: Person, params: Record<string, string>) {
      const agent = new Agent();
      const flow = await web.authorize(agent, params);
      const page = await signInSteps(agent, flow.page, { username: person.username, password: person.password, stopAt: web.redirectUri });
      assert.ok(page.url.startsWith(web.redirectUri), `${page.status} ${page.url}`);
      const answer = new URL(page.url).searchParams;
      assert.equal(answer.get('code'), null, 'no code');
      assert.equal(answer.get('state'), flow.state);
      assert.equal(answer.get('iss'), op.issuer);
      return answer.get('error');
    }

    it('a sub asked for by value is met by that person only: another who signs in gets login_required, never a code (Core §3.1.2.2, §5.5.1)', async () => {
      assert.equal(await signedInAs(ALICE, { claims: JSON.stringify({ id_token: { sub: { value: op.subs.bob! } } }) }), 'login_required');
    });

    it("another person's id_token_hint: whoever signs in instead gets an error, never a code (Core §3.1.2.1, §3.1.2.6)", async () => {
      const bob = await web.redeem(await web.signIn(new Agent(), BOB));
      assert.equal(await signedInAs(ALICE, { id_token_hint: bob.id_token! }), 'login_required');
    });

    it('an essential acr none of whose values is offered is a failed authentication, not a code with another acr (Core §5.5.1.1)', async () => {
      assert.equal(await signedInAs(ALICE, { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:example:unoffered'] } } }) }), 'unmet_authentication_requirements');
    });

    it('members of the claims parameter it does not understand are ignored: another top-level member, another member of a claim request (Core §5.5, §5.5.1 "MUST be ignored")', async () => {
      for (const claims of [
        { id_token: { name: null }, 'urn:example:not-understood': { anything: 1 } },
        { userinfo: { name: { essential: true, purpose: 'to greet you', 'urn:example:not-understood': [1, 2] } } },
      ]) {
        const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { claims: JSON.stringify(claims) }));
        const userinfo = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } });
        const released = 'userinfo' in claims ? ((await userinfo.json()) as { name?: string }).name : decodeJwt(tokens.id_token!).name;
        assert.equal(released, ALICE.name, JSON.stringify(claims));
      }
    });

    it('the nonce comes back in the ID token exactly as sent: non-ASCII, quotes, markup and 512 characters (Core §3.1.2.1, §3.1.3.7 #11)', async () => {
      const nonce = `ñ☃ "q" 'q' <b>&amp; \\ ${'n'.repeat(512)}`;
      const flow = await web.signIn(new Agent(), ALICE, { nonce });
      const tokens = await web.redeem(flow, { nonce });
      assert.equal(decodeJwt(tokens.id_token!).nonce, nonce);
    });
  });

  describe('userinfo (Core §5.3)', () => {
    it('answers JSON in UTF-8, with sub, whatever the claims hold (Core §5.3.2)', async () => {
      const tokens = await web.redeem(await web.signIn(new Agent(), ZOE, { scope: 'openid profile' }));
      const response = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^application\/json(;\s*charset=utf-8)?$/i);
      const bytes = Buffer.from(await response.arrayBuffer());
      const info = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
      assert.equal(info.name, ZOE.name);
      assert.equal(info.sub, op.subs.zoe);
      assert.ok(bytes.includes(Buffer.from('Zoë', 'utf8')), 'the name in UTF-8, not escaped into another encoding');
    });
  });

  describe("Latchkey's own protected resources: the admin API and the revocation feed (RFC 6750 §3)", () => {
    const paths = ['/admin/clients', '/revocations'];

    it('a malformed request is 400 invalid_request with the Bearer challenge naming it, as at userinfo: a Bearer header without a token or with a space in it, a token in the query string with a header or without (RFC 6750 §2.3, §3, §3.1)', async () => {
      const admin = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', resource: `${op.issuer}/admin`, scope: 'admin' }, { authorization: basic('web') });
      const token = String(admin.body.access_token);
      for (const path of paths) {
        for (const [what, query, authorization] of <[string, string, string | undefined][]>[
          ['Bearer without a token', '', 'Bearer'],
          ['Bearer with a space in the token', '', 'Bearer two parts'],
          ['a token in the query string', `?access_token=${token}`, undefined],
          ['a token in the query string and the header', `?access_token=${token}`, `Bearer ${token}`],
        ]) {
          const response = await fetch(`${op.issuer}${path}${query}`, { headers: authorization ? { authorization } : {} });
          assert.equal(response.status, 400, `${path}, ${what}`);
          assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+".*, error="invalid_request"/, `${path}, ${what}`);
          const body = (await response.json()) as { error?: string; error_description?: string };
          assert.equal(body.error, 'invalid_request', `${path}, ${what}`);
          assert.match(body.error_description ?? '', /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/, 'RFC 6750 section 3 characters');
        }
      }
      assert.equal((await fetch(`${op.issuer}/admin/clients`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'the baseline: the token in the header alone');
    });

    it('no credentials, or another scheme, is 401 with a bare Bearer challenge; a token that is not good there is 401 invalid_token (RFC 6750 §3, §3.1)', async () => {
      for (const path of paths) {
        for (const headers of [{}, { authorization: basic('web') }]) {
          const response = await fetch(`${op.issuer}${path}`, { headers });
          assert.equal(response.status, 401, path);
          const challenge = response.headers.get('www-authenticate') ?? '';
          assert.match(challenge, /^Bearer realm="[^"]+"/, path);
          assert.doesNotMatch(challenge, /error=/, `${path}: ${challenge}`);
        }
        const wrong = await fetch(`${op.issuer}${path}`, { headers: { authorization: 'Bearer not-a-token-of-ours' } });
        assert.equal(wrong.status, 401, path);
        assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+".*, error="invalid_token"/, path);
      }
    });
  });

  describe('answers that hand out a credential are not cached (RFC 6749 §5.1)', () => {
    it("Cache-Control: no-store and Pragma: no-cache on the admin API's new client and rotated secret, and the developer page's new app, as on the token endpoint's answers (RFC 6749 §5.1)", async () => {
      const admin = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', resource: `${op.issuer}/admin`, scope: 'admin' }, { authorization: basic('web') });
      assert.equal(admin.headers.get('pragma'), 'no-cache', 'the token endpoint, the baseline');
      const token = String(admin.body.access_token);
      const made = await json(`${op.issuer}/admin/clients`, 'POST', token, { redirect_uris: ['https://made.example.test/cb'] });
      assert.equal(made.status, 201);
      const rotated = await json(`${op.issuer}/admin/clients/${String(made.body.client_id)}/secret`, 'POST', token, {});
      assert.equal(rotated.status, 200);
      const { agent, page } = await developerSignIn(op.issuer, ALICE.username, ALICE.password);
      const app = await agent.submit(page, '/developer/apps', { name: 'Spec Letter App', type: 'web', redirect_uris: 'https://app.example.test/cb' });
      assert.match(app.html, /id="client-secret"/, `the new app's page shows its secret: ${app.status}`);
      for (const [what, headers, secret] of <[string, Headers, unknown][]>[
        ['admin API: a new client', made.headers, made.body.client_secret],
        ['admin API: a rotated secret', rotated.headers, rotated.body.client_secret],
        ["developer page: a new app's secret", app.headers, true],
      ]) {
        assert.ok(secret, `${what} hands out a secret`);
        assert.match(headers.get('cache-control') ?? '', /no-store/, what);
        assert.equal(headers.get('pragma'), 'no-cache', what);
      }
    });
  });

  describe('introspection and revocation (RFC 7662 §2, RFC 7009 §2)', () => {
    it('what is not an active token of the caller is {"active": false} and nothing else: a code, an ID token, a refresh token rotated out, a revoked access token and its grant\'s refresh token, another client\'s token; no token is invalid_request (RFC 7662 §2.1, §2.2)', async () => {
      const flow = await web.signIn(new Agent(), ALICE, { scope: 'openid offline_access', prompt: 'consent' });
      const first = await redeem(flow);
      const refreshed = await postForm(op.metadata.token_endpoint!, { grant_type: 'refresh_token', refresh_token: String(first.body.refresh_token) }, { authorization: basic('web') });
      assert.equal(refreshed.status, 200);
      const introspect = (token: string, as = 'web') => postForm(op.metadata.introspection_endpoint!, { token }, { authorization: basic(as) });
      for (const token of [refreshed.body.refresh_token, refreshed.body.access_token]) {
        assert.equal((await introspect(String(token))).body.active, true, 'the baseline: its current tokens are active for their client');
        assert.deepEqual((await introspect(String(token), 'other')).body, { active: false }, "another client's active token");
      }
      const revocation = await postForm(op.metadata.revocation_endpoint!, { token: String(refreshed.body.access_token) }, { authorization: basic('web') });
      assert.equal(revocation.status, 200);
      const cases: [string, string, string][] = [
        ['a code', codeOf(flow), 'web'],
        ['an ID token', String(first.body.id_token), 'web'],
        ['a refresh token rotated out', String(first.body.refresh_token), 'web'],
        ['a revoked access token', String(refreshed.body.access_token), 'web'],
        ['a refresh token whose grant went with its access token (docs/protocol.md, Revocation)', String(refreshed.body.refresh_token), 'web'],
      ];
      for (const [what, token, as] of cases) {
        const answer = await introspect(token, as);
        assert.equal(answer.status, 200, what);
        assert.deepEqual(answer.body, { active: false }, what);
        assert.match(answer.headers.get('cache-control') ?? '', /no-store/, what);
      }
      const missing = await postForm(op.metadata.introspection_endpoint!, {}, { authorization: basic('web') });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error, 'invalid_request');
    });

    it('a token_type_hint that is no type is ignored and the token revoked all the same; no token is invalid_request (RFC 7009 §2.1, §2.2, §2.2.1)', async () => {
      const tokens = await redeem(await web.signIn(new Agent(), ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      const revoke = (params: Record<string, string>) => postForm(op.metadata.revocation_endpoint!, params, { authorization: basic('web') });
      assert.equal((await revoke({ token: String(tokens.body.refresh_token), token_type_hint: 'urn:example:no-such-type' })).status, 200);
      const after = await postForm(op.metadata.introspection_endpoint!, { token: String(tokens.body.refresh_token) }, { authorization: basic('web') });
      assert.deepEqual(after.body, { active: false }, 'revoked');
      const missing = await revoke({});
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error, 'invalid_request');
    });
  });

  describe('registration and its management (RFC 7591, RFC 7592)', () => {
    it('a client given a secret is told when it expires (client_secret_expires_at, 0 for never); a public client is given none (RFC 7591 §3.2.1)', async () => {
      const confidential = await register({ redirect_uris: ['https://rp.example.test/cb'] });
      assert.equal(confidential.status, 201);
      assert.equal(typeof confidential.body.client_secret, 'string');
      assert.equal(confidential.body.client_secret_expires_at, 0);
      const pub = await register({ redirect_uris: ['https://rp.example.test/cb'], token_endpoint_auth_method: 'none' });
      assert.equal(pub.status, 201);
      assert.equal(pub.body.client_secret, undefined);
    });

    it('an update with invalid metadata is the registration error (invalid_redirect_uri, invalid_client_metadata) and changes nothing; another client\'s registration access token reads and deletes nothing; after a delete, read, update and delete are 401 with the Bearer challenge (RFC 7592 §2, §2.1, §2.2, §2.3)', async () => {
      const client = (await register({ redirect_uris: ['https://rp.example.test/cb'], client_name: 'Before' })).body as Record<string, unknown> & { registration_client_uri: string; registration_access_token: string };
      const { registration_client_uri: uri, registration_access_token: token, client_secret_expires_at: _e, client_id_issued_at: _i, client_secret: _s, ...metadata } = client;
      const wrongs: [Record<string, unknown>, string][] = [
        [{ redirect_uris: ['https://rp.example.test/cb#fragment'] }, 'invalid_redirect_uri'],
        [{ redirect_uris: ['/relative'] }, 'invalid_redirect_uri'],
        [{ token_endpoint_auth_method: 'urn:example:unknown' }, 'invalid_client_metadata'],
        [{ contacts: 'not-an-array@example.test' }, 'invalid_client_metadata'],
      ];
      for (const [change, error] of wrongs) {
        const answer = await json(uri, 'PUT', token, { ...metadata, client_name: 'After', ...change });
        assert.equal(answer.status, 400, JSON.stringify(change));
        assert.equal(answer.body.error, error, JSON.stringify(change));
      }
      const read = await json(uri, 'GET', token);
      assert.equal(read.body.client_name, 'Before', 'nothing changed');
      const stranger = (await register({ redirect_uris: ['https://stranger.example.test/cb'] })).body;
      for (const method of ['GET', 'DELETE']) {
        const answer = await json(uri, method, String(stranger.registration_access_token));
        assert.equal(answer.status, 401, `${method} with another client's registration access token`);
        assert.equal(answer.body.client_id, undefined);
      }
      assert.equal((await json(uri, 'DELETE', token)).status, 204);
      for (const [method, body] of [['GET'], ['PUT', metadata], ['DELETE']] as const) {
        const answer = await json(uri, method, token, body);
        assert.equal(answer.status, 401, method);
        assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/, method);
      }
    });
  });

  describe('DPoP server nonces and proof checks (RFC 9449 §4.3, §8, §9)', () => {
    let keys: Awaited<ReturnType<typeof generateKeyPair>>;
    before(async () => {
      keys = await generateKeyPair('ES256', { extractable: true });
    });

    async function proof(htu: string, claims: Record<string, unknown> = {}, htm = 'POST') {
      return new SignJWT({ htm, htu, iat: now(), jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) })
        .sign(keys.privateKey);
    }
    const clientCredentials = (dpop: string) =>
      postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API }, { authorization: basic('web'), dpop });

    it('the token endpoint and pushed requests answer a proof without the nonce, or with one they never gave, 400 use_dpop_nonce with a DPoP-Nonce to use; with it the token is bound (RFC 9449 §8, §8.1)', async () => {
      const token = op.metadata.token_endpoint!;
      const par = op.metadata.pushed_authorization_request_endpoint!;
      let nonce = '';
      for (const answer of [
        await clientCredentials(await proof(token)),
        await clientCredentials(await proof(token, { nonce: 'urn:example:made-up' })),
        await postForm(par, { client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri, code_challenge: CHALLENGE, code_challenge_method: 'S256' }, { authorization: basic('web'), dpop: await proof(par) }),
      ]) {
        assert.equal(answer.status, 400, JSON.stringify(answer.body));
        assert.equal(answer.body.error, 'use_dpop_nonce', JSON.stringify(answer.body));
        assert.equal(answer.body.access_token, undefined);
        nonce = answer.headers.get('dpop-nonce') ?? '';
        assert.ok(nonce, 'DPoP-Nonce');
      }
      const bound = await clientCredentials(await proof(token, { nonce }));
      assert.equal(bound.status, 200, JSON.stringify(bound.body));
      assert.equal(bound.body.token_type, 'DPoP');
      assert.equal((decodeJwt(String(bound.body.access_token)).cnf as { jkt?: string }).jkt, await calculateJwkThumbprint(await exportJWK(keys.publicKey)));
    });

    it('userinfo answers a proof without the nonce 401 with WWW-Authenticate: DPoP error="use_dpop_nonce" and a DPoP-Nonce a browser client may read; with it, the claims (RFC 9449 §7.1, §9)', async () => {
      const flow = await web.signIn(new Agent(), ALICE);
      const tokens = await oidc.authorizationCodeGrant(web.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, undefined, { DPoP: oidc.getDPoPHandle(web.config, keys) });
      assert.equal(tokens.token_type.toLowerCase(), 'dpop');
      const userinfo = op.metadata.userinfo_endpoint!;
      const ath = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(tokens.access_token))).toString('base64url');
      const ask = async (claims: Record<string, unknown>, headers: Record<string, string> = {}) =>
        fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await proof(userinfo, { ath, ...claims }, 'GET'), ...headers } });
      let nonce = '';
      for (const claims of [{}, { nonce: 'urn:example:made-up' }]) {
        const answer = await ask(claims, { origin: 'https://web.example.test' });
        assert.equal(answer.status, 401, `${answer.headers.get('www-authenticate')} ${await answer.clone().text()}`);
        assert.match(answer.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
        nonce = answer.headers.get('dpop-nonce') ?? '';
        assert.ok(nonce, 'DPoP-Nonce');
        assert.match(answer.headers.get('access-control-expose-headers') ?? '', /DPoP-Nonce/i);
      }
      const answer = await ask({ nonce });
      assert.equal(answer.status, 200, `${answer.headers.get('www-authenticate')} ${await answer.clone().text()}`);
      assert.equal(((await answer.json()) as { sub?: string }).sub, op.subs.alice);
    });

    it('htu is compared after normalisation, without query and fragment; htm exactly; two proofs in one request are refused (RFC 9449 §4.3 items 1, 8, 9)', async () => {
      const token = op.metadata.token_endpoint!;
      const nonce = (await clientCredentials(await proof(token))).headers.get('dpop-nonce')!;
      const upper = token.replace(/^http:\/\/localhost/, 'HTTP://LOCALHOST');
      for (const htu of [upper, `${token}?query=1#fragment`]) {
        const answer = await clientCredentials(await proof(htu, { nonce }));
        assert.equal(answer.status, 200, `${htu}: ${JSON.stringify(answer.body)}`);
      }
      for (const dpop of [await proof(token, { nonce }, 'post'), `${await proof(token, { nonce })}, ${await proof(token, { nonce })}`]) {
        const answer = await clientCredentials(dpop);
        assert.equal(answer.status, 400);
        assert.equal(answer.body.error, 'invalid_dpop_proof');
      }
    });
  });

  describe('pushed requests, devices and back-channel logout (RFC 9126, RFC 8628, Back-Channel Logout 1.0)', () => {
    it('a public client pushes with its client_id alone; the request_uri without client_id at the authorization endpoint is an error page, never a redirect (RFC 9126 §2, §2.1, §4)', async () => {
      const pushed = await postForm(op.metadata.pushed_authorization_request_endpoint!, {
        client_id: 'spa',
        response_type: 'code',
        scope: 'openid',
        redirect_uri: 'https://spa.example.test/callback',
        code_challenge: CHALLENGE,
        code_challenge_method: 'S256',
      });
      assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
      const page = await new Agent().follow(`${op.metadata.authorization_endpoint!}?${new URLSearchParams({ request_uri: String(pushed.body.request_uri) })}`, {}, 'https://spa.example.test/');
      assert.equal(page.status, 400);
      assert.ok(page.url.startsWith(op.issuer), page.url);
    });

    it('a device polling without client_id, a public client, is invalid_client (RFC 8628 §3.4, RFC 6749 §5.2)', async () => {
      const started = await postForm(op.metadata.device_authorization_endpoint as string, { client_id: 'device', scope: 'openid' });
      assert.equal(started.status, 200);
      const answer = await postForm(op.metadata.token_endpoint!, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: String(started.body.device_code) });
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
      const pending = await postForm(op.metadata.token_endpoint!, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: String(started.body.device_code), client_id: 'device' });
      assert.equal(pending.body.error, 'authorization_pending', 'the baseline: with its client_id');
    });

    it("the logout token is posted to the backchannel_logout_uri with its query kept, repeated names included (Back-Channel Logout §2.2, §2.5)", async () => {
      const agent = new Agent();
      const tokens = await web.redeem(await web.signIn(agent, ALICE));
      receiver.targets.length = 0;
      const url = new URL(op.metadata.end_session_endpoint!);
      url.search = new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'https://web.example.test/signed-out' }).toString();
      const confirm = await agent.follow(url.href, {}, 'https://web.example.test/');
      const back = await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' }, 'https://web.example.test/');
      assert.ok(back.url.startsWith('https://web.example.test/signed-out'), back.url);
      assert.deepEqual(receiver.targets, ['/backchannel?tenant=a&tenant=b']);
    });
  });
});
