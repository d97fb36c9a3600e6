/**
 * The red team's protocol pass (2026-12-02): the classic catalogue of OAuth 2.0 / OpenID Connect
 * attacks, item by item, black box over HTTP against a running Latchkey (RFC 6749, 6750, 7636,
 * 7523, 9126, 9449, 9700; OpenID Connect Core). The first test performs an attack that succeeded
 * before its fix; the others pin what held and no earlier test performed (docs/security.md, threat
 * model, says which is which).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent, ALICE, callbackParams, RelyingParty, startOp, webClient, type Flow, type Op } from '../conformance/fixture.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';
import { basic, RESOURCE_SERVERS } from '../helpers/tokens.js';

const SECRET = 'redteam-protocol-secret-with-plenty-of-entropy-0123';
const SINGLE = 'https://single.example.test/callback';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const now = () => Math.floor(Date.now() / 1000);

type Answer = { status: number; body: Record<string, unknown>; headers: Headers };

describe('e2e: red team, the protocol catalogue (RFC 6749, 6750, 7523, 7636, 9126, 9449, 9700)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let single: RelyingParty;
  let alice: Agent;
  let pkjwtKey: Awaited<ReturnType<typeof generateKeyPair>>;

  before(async () => {
    pkjwtKey = await generateKeyPair('RS256');
    op = await startOp({
      people: [ALICE],
      env: { RESOURCE_SERVERS },
      clients: [
        webClient('web', SECRET, { redirect_uris: ['https://web.example.test/callback', 'http://127.0.0.1:3000/cb'] }),
        webClient('single', SECRET, { redirect_uris: [SINGLE], grant_types: ['authorization_code'] }),
        webClient('other', SECRET),
        { client_id: 'api', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
        { client_id: 'machine', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
        {
          client_id: 'spa',
          token_endpoint_auth_method: 'none',
          // Loopback spelt with a trailing dot or mapped into IPv6 is refused wherever a client is
          // written since the eleventh pass (registration/uri-hosts.ts); onThisMachine still reads
          // them for clients stored before (unit image-origins).
          redirect_uris: ['https://spa.example.test/cb', 'http://localhost:5173/cb', 'http://127.0.0.1:5173/cb', 'https://localhost:5174/cb'],
          grant_types: ['authorization_code'],
        },
        {
          client_id: 'native',
          application_type: 'native',
          token_endpoint_auth_method: 'none',
          redirect_uris: ['http://127.0.0.1/cb', 'com.example.app:/cb'],
          grant_types: ['authorization_code'],
        },
        {
          client_id: 'pkjwt',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [{ ...(await exportJWK(pkjwtKey.publicKey)), kid: 'pkjwt-1', alg: 'RS256', use: 'sig' }] },
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
        },
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    single = await RelyingParty.create(op, 'single', { secret: SECRET }, SINGLE);
    alice = new Agent();
    await web.redeem(await web.signIn(alice, ALICE));
  });
  after(() => op?.stop());

  async function post(url: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(params),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: response.headers };
  }
  const as = (id: string) => ({ authorization: basic({ id, secret: SECRET }) });
  const token = (params: Record<string, string>, client = 'web') => post(op.metadata.token_endpoint!, params, as(client));
  const codeOf = (flow: Flow) => callbackParams(flow).get('code')!;

  it('a code whose authorization request named its redirect_uri is not redeemed without it, a plain OAuth 2.0 request\'s too, pushed or not; one whose request left it out may leave it out (RFC 6749 §4.1.3, §3.1.2.3; RFC 9700 §4.5.2)', async () => {
    const redeem = (flow: Flow, code: string, withUri: boolean) =>
      token({ grant_type: 'authorization_code', code, code_verifier: flow.verifier, ...(withUri ? { redirect_uri: SINGLE } : {}) }, 'single');
    // The attack: the request named the URI (here a client with one registered), the code is presented without it.
    const named = await single.signIn(alice, ALICE, { scope: 'email', nonce: undefined });
    const without = await redeem(named, codeOf(named), false);
    assert.equal(without.status, 400, JSON.stringify(without.body));
    assert.equal(without.body.error, 'invalid_request');
    assert.match(String(without.body.error_description), /redirect_uri/);
    assert.equal((await redeem(named, codeOf(named), true)).status, 200, 'not spent by the refusal');
    // The marker of an omitted URI sent by the client itself is not taken.
    const forged = await single.signIn(alice, ALICE, { scope: 'email', nonce: undefined, latchkey_redirect_uri_omitted: '1' });
    assert.equal((await redeem(forged, codeOf(forged), false)).body.error, 'invalid_request');
    // RFC 6749 §3.1.2.3: a request that left it out (one URI registered) is redeemed without it.
    const omitted = await single.signIn(alice, ALICE, { scope: 'email', nonce: undefined, redirect_uri: undefined });
    assert.equal((await redeem(omitted, codeOf(omitted), false)).status, 200);

    // Pushed (RFC 9126): what was pushed decides.
    const pushed = async (params: Record<string, string>) => {
      const verifier = oidc.randomPKCECodeVerifier();
      const push = await post(op.metadata.pushed_authorization_request_endpoint!, {
        client_id: 'single', response_type: 'code', scope: 'email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params,
      }, as('single'));
      assert.equal(push.status, 201, JSON.stringify(push.body));
      const url = `${op.metadata.authorization_endpoint}?${new URLSearchParams({ client_id: 'single', request_uri: String(push.body.request_uri) })}`;
      const page = await signInSteps(alice, await alice.follow(url, {}, SINGLE), { ...ALICE, stopAt: SINGLE });
      return { page, verifier, state: '', nonce: '', redirectUri: SINGLE } satisfies Flow;
    };
    const pushedNamed = await pushed({ redirect_uri: SINGLE });
    assert.equal((await redeem(pushedNamed, codeOf(pushedNamed), false)).body.error, 'invalid_request');
    const pushedForged = await pushed({ redirect_uri: SINGLE, latchkey_redirect_uri_omitted: '1' });
    assert.equal((await redeem(pushedForged, codeOf(pushedForged), false)).body.error, 'invalid_request');
    const pushedOmitted = await pushed({});
    assert.equal((await redeem(pushedOmitted, codeOf(pushedOmitted), false)).status, 200);
  });

  it("a public client's code to a loopback redirect URI needs the person's consent at every request, as a native app's: whatever program listens on that port could start the request with its own PKCE (RFC 8252 §8.6; RFC 9700 §4.11.2)", async () => {
    const agent = new Agent();
    // The person signs in and allows the app once, at its loopback redirect URI (a web app in development, an MCP client).
    for (const redirectUri of ['http://localhost:5173/cb', 'http://127.0.0.1:5173/cb', 'https://localhost:5174/cb']) {
      const spa = await RelyingParty.create(op, 'spa', {}, redirectUri);
      const first = await spa.signIn(agent, ALICE, { scope: 'openid' });
      assert.ok(codeOf(first));
      // The impersonator: another request for the same client at that URI gets the consent page, never a code by itself.
      const again = await spa.authorize(agent, { scope: 'openid' });
      assert.ok(isConsent(again.page), `${redirectUri}: ${again.page.status} ${again.page.url}`);
      const silent = await spa.authorize(agent, { scope: 'openid', prompt: 'none' });
      assert.ok(silent.page.url.startsWith(redirectUri), silent.page.url);
      assert.equal(callbackParams(silent).get('error'), 'interaction_required', silent.page.url);
      assert.equal(callbackParams(silent).get('code'), null);
    }
    // At its https redirect URI (its origin proves who receives) a remembered consent still signs in without a page.
    const https = await RelyingParty.create(op, 'spa', {}, 'https://spa.example.test/cb');
    await https.signIn(agent, ALICE, { scope: 'openid' });
    assert.ok(codeOf(await https.authorize(agent, { scope: 'openid', prompt: 'none' })));
    // And a confidential client's loopback code is no use without its secret: unchanged.
    const confidential = await RelyingParty.create(op, 'web', { secret: SECRET }, 'http://127.0.0.1:3000/cb');
    await confidential.signIn(agent, ALICE, { scope: 'openid' });
    assert.ok(codeOf(await confidential.authorize(agent, { scope: 'openid', prompt: 'none' })));
  });

  it('held: near misses of a registered redirect URI never get a redirect (loopback ports for web apps, a trailing dot, dot segments, percent-encoded or default-port hosts, a backslash; for native apps only the port of a loopback IP varies), nor does an error of a request whose redirect URI is not registered (RFC 8252 §7.3, §8.3; RFC 9700 §4.1.3, §4.11.2)', async () => {
    const agent = new Agent();
    const authorize = (params: Record<string, string>, extra = '') => {
      const url = new URL(op.metadata.authorization_endpoint!);
      url.search = new URLSearchParams({ response_type: 'code', scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256', state: 's', ...params }).toString() + extra;
      return agent.request(url.href);
    };
    const refused: [string, string][] = [
      ['web', 'http://127.0.0.1:4000/cb'], // a web app's loopback URI keeps its port
      ['web', 'http://127.0.0.1/cb'],
      ['web', 'http://localhost:3000/cb'],
      ['web', 'https://web.example.test./callback'],
      ['web', 'https://web.example.test/x/../callback'],
      ['web', 'https://web.example.te%73t/callback'],
      ['web', 'https://web.example.test:443/callback'],
      ['web', 'https://web.example.test\\@evil.example/callback'],
      ['native', 'http://localhost:5555/cb'], // registered on 127.0.0.1: another host, not another port
      ['native', 'http://[::1]:5555/cb'],
      ['native', 'http://evil@127.0.0.1:5555/cb'],
      ['native', 'COM.example.app:/cb'],
      ['native', 'com.example.app:/cb/../x'],
    ];
    for (const [client, uri] of refused) {
      const answer = await authorize({ client_id: client, redirect_uri: uri });
      assert.equal(answer.status, 400, `${client} ${uri}`);
      assert.equal(answer.headers.get('location'), null, `${client} ${uri}`);
    }
    const nativePort = await authorize({ client_id: 'native', redirect_uri: 'http://127.0.0.1:5555/cb' });
    assert.equal(nativePort.status, 303, 'a native app on a loopback IP may use any port');
    const evil = 'https://evil.example/cb';
    const broken: [string, Record<string, string>, string?][] = [
      ['an implicit response type', { client_id: 'web', redirect_uri: evil, response_type: 'token' }],
      ['an unknown scope', { client_id: 'web', redirect_uri: evil, scope: 'nope' }],
      ['prompt=none', { client_id: 'web', redirect_uri: evil, prompt: 'none' }],
      ['a parameter twice', { client_id: 'web', redirect_uri: evil }, '&state=again'],
      ['a request_uri', { client_id: 'web', redirect_uri: evil, request_uri: 'urn:example:x' }],
      ['response_mode web_message', { client_id: 'web', redirect_uri: evil, response_mode: 'web_message' }],
      ['no client_id', { redirect_uri: evil }],
    ];
    for (const [what, params, extra] of broken) {
      const answer = await authorize(params, extra);
      assert.equal(answer.status, 400, what);
      assert.equal(answer.headers.get('location'), null, what);
    }
  });

  it('held: a code_verifier shorter than 43 or longer than 128 characters, or with a character outside the unreserved set, is refused though it matches the challenge (RFC 7636 §4.1, §4.6)', async () => {
    for (const verifier of ['a'.repeat(42), 'a'.repeat(129), `${'a'.repeat(42)}+`, `${'a'.repeat(43)} `]) {
      const flow = await web.signIn(alice, ALICE, { code_challenge: createHash('sha256').update(verifier).digest('base64url') });
      const answer = await token({ grant_type: 'authorization_code', code: codeOf(flow), code_verifier: verifier, redirect_uri: flow.redirectUri });
      assert.equal(answer.status, 400, verifier);
      assert.equal(answer.body.error, 'invalid_request', verifier);
      assert.equal(answer.body.access_token, undefined);
    }
  });

  it("held: tokens of one kind or client used as another: a refresh or ID token is no access token at userinfo; another client, an API's introspector or a machine client learns nothing of a person's tokens at introspection; a confidential client cannot revoke another's; a code is no refresh token nor a refresh token a code (RFC 6750 §3.1, RFC 7662 §2.2, §4, RFC 7009 §2.1)", async () => {
    const tokens = await web.redeem(await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
    for (const [what, value] of [['a refresh token', tokens.refresh_token!], ['an ID token', tokens.id_token!]]) {
      const answer = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${value}` } });
      assert.equal(answer.status, 401, what);
      assert.match(String(answer.headers.get('www-authenticate')), /error="invalid_token"/, what);
    }
    const introspect = async (client: string, value: string) => (await post(op.metadata.introspection_endpoint!, { token: value }, as(client))).body;
    assert.equal((await introspect('web', tokens.access_token)).active, true, 'the baseline: its own client');
    for (const client of ['other', 'api', 'machine']) {
      for (const value of [tokens.access_token, tokens.refresh_token!, tokens.id_token!]) assert.deepEqual(await introspect(client, value), { active: false }, client);
    }
    const revoked = await post(op.metadata.revocation_endpoint!, { token: tokens.refresh_token! }, as('other'));
    assert.equal(revoked.status, 400);
    assert.equal(revoked.body.error, 'invalid_request');
    assert.equal((await introspect('web', tokens.refresh_token!)).active, true, 'not revoked');
    const flow = await web.signIn(alice, ALICE);
    assert.equal((await token({ grant_type: 'refresh_token', refresh_token: codeOf(flow) })).body.error, 'invalid_grant', 'a code as a refresh token');
    assert.equal((await token({ grant_type: 'authorization_code', code: tokens.refresh_token!, code_verifier: flow.verifier, redirect_uri: flow.redirectUri })).body.error, 'invalid_grant', 'a refresh token as a code');
    assert.equal((await token({ grant_type: 'authorization_code', code: codeOf(flow), code_verifier: flow.verifier, redirect_uri: flow.redirectUri })).status, 200, 'the code not spent by those');
  });

  it('held: at userinfo a DPoP-bound token needs a proof by its key for this request: ath, htm and htu checked (query ignored), not replayed, and never as a Bearer token (RFC 9449 §4.3, §7.1, §11.1)', async () => {
    const key = await generateKeyPair('ES256');
    const proof = async (claims: Record<string, unknown>, by = key) =>
      new SignJWT({ jti: randomUUID(), iat: now(), ...claims }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(by.publicKey) }).sign(by.privateKey);
    const flow = await web.signIn(alice, ALICE);
    const issued = await post(op.metadata.token_endpoint!, { grant_type: 'authorization_code', code: codeOf(flow), code_verifier: flow.verifier, redirect_uri: flow.redirectUri }, { ...as('web'), dpop: await proof({ htm: 'POST', htu: op.metadata.token_endpoint }) });
    assert.equal(issued.body.token_type, 'DPoP');
    const accessToken = String(issued.body.access_token);
    const ath = createHash('sha256').update(accessToken).digest('base64url');
    const userinfo = op.metadata.userinfo_endpoint!;
    const call = async (dpop: string, scheme = 'DPoP') => (await fetch(userinfo, { headers: { authorization: `${scheme} ${accessToken}`, ...(dpop && { dpop }) } })).status;
    const replayed = await proof({ htm: 'GET', htu: userinfo, ath });
    assert.equal(await call(replayed), 200, 'the baseline: a genuine proof');
    assert.equal(await call(await proof({ htm: 'GET', htu: `${userinfo}?x=1`, ath })), 200, 'htu without its query (§4.3 step 9)');
    const refused: Record<string, string> = {
      'a replayed proof': replayed,
      'no ath': await proof({ htm: 'GET', htu: userinfo }),
      'another token\'s ath': await proof({ htm: 'GET', htu: userinfo, ath: createHash('sha256').update('another').digest('base64url') }),
      'another method': await proof({ htm: 'POST', htu: userinfo, ath }),
      'another URL': await proof({ htm: 'GET', htu: `${userinfo}/`, ath }),
      'another host': await proof({ htm: 'GET', htu: userinfo.replace('localhost', '127.0.0.1'), ath }),
      'another key': await proof({ htm: 'GET', htu: userinfo, ath }, await generateKeyPair('ES256')),
    };
    for (const [what, dpop] of Object.entries(refused)) assert.equal(await call(dpop), 401, what);
    assert.equal(await call('', 'Bearer'), 401, 'as a Bearer token');
  });

  it('held: a private_key_jwt assertion living longer than clientAssertions.maxLifetime, or issued in the future, is invalid_client (RFC 7523 §3 items 4-5; RFC 9700 §2.5)', async () => {
    const assertion = (claims: Record<string, unknown>) =>
      new SignJWT({ jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'pkjwt-1' })
        .setIssuer('pkjwt').setSubject('pkjwt').setAudience(op.issuer)
        .sign(pkjwtKey.privateKey);
    const grant = async (claims: Record<string, unknown>) =>
      post(op.metadata.token_endpoint!, {
        grant_type: 'client_credentials', client_id: 'pkjwt', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(claims),
      });
    // The baseline: no API granted, so a well-made assertion authenticates and the grant is refused for its scope.
    const genuine = await grant({ iat: now(), exp: now() + 60 });
    assert.notEqual(genuine.body.error, 'invalid_client', JSON.stringify(genuine.body));
    for (const [what, claims] of [['a day long', { iat: now(), exp: now() + 86_400 }], ['issued an hour ahead', { iat: now() + 3600, exp: now() + 3660 }]] as const) {
      const answer = await grant(claims);
      assert.equal(answer.status, 401, what);
      assert.equal(answer.body.error, 'invalid_client', what);
    }
  });

  it('held: client credentials, codes and tokens in the query string of a POST are not read (the token, introspection, revocation, pushed and device endpoints: RFC 6749 §2.3.1, §3.2), and an access token sent in the header and the query at once is refused at userinfo (RFC 6750 §2, §2.3)', async () => {
    const tokens = await web.redeem(await web.signIn(alice, ALICE));
    const inQuery = new URLSearchParams({ client_id: 'web', client_secret: SECRET, token: tokens.access_token });
    for (const endpoint of ['token_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'pushed_authorization_request_endpoint', 'device_authorization_endpoint'] as const) {
      const answer = await post(`${op.metadata[endpoint]}?${inQuery}`, { grant_type: 'client_credentials', response_type: 'code', scope: 'openid', redirect_uri: 'https://web.example.test/callback', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
      assert.equal(answer.status, 401, endpoint);
      assert.equal(answer.body.error, 'invalid_client', endpoint);
      const tokenInQuery = await post(`${op.metadata[endpoint]}?${new URLSearchParams({ token: tokens.access_token })}`, {}, as('web'));
      assert.equal(tokenInQuery.status, 400, endpoint);
    }
    const flow = await web.signIn(alice, ALICE);
    const codeInQuery = await post(`${op.metadata.token_endpoint}?${new URLSearchParams({ code: codeOf(flow), code_verifier: flow.verifier })}`, { grant_type: 'authorization_code', redirect_uri: flow.redirectUri }, as('web'));
    assert.equal(codeInQuery.body.error, 'invalid_request');
    const both = await fetch(`${op.metadata.userinfo_endpoint}?access_token=${tokens.access_token}`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(both.status, 400);
    assert.match(String(both.headers.get('www-authenticate')), /error="invalid_request"/);
    // The revocation above, its token in the query, revoked nothing.
    assert.equal((await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200);
  });
});
