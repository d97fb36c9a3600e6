/**
 * The red team's protocol pass (2026-12-02): the classic catalogue of OAuth 2.0 / OpenID Connect
 * attacks, item by item, black box over HTTP against a running Latchkey (RFC 6749, 6750, 7636,
 * 7523, 9126, 9449, 9700; OpenID Connect Core). The first test performs an attack that succeeded
 * before its fix; the others pin what held and no earlier test performed (docs/security.md, threat
 * model, says which is which).
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent, ALICE, callbackParams, RelyingParty, startOp, webClient, type Flow, type Op } from '../conformance/fixture.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';
import { basic, RESOURCE_SERVERS } from '../helpers/tokens.js';

const SECRET = 'redteam-protocol-secret-with-plenty-of-entropy-0123';
const SINGLE = 'https://single.example.test/callback';

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
          redirect_uris: ['https://spa.example.test/cb', 'http://localhost:5173/cb', 'http://127.0.0.1:5173/cb'],
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
    for (const redirectUri of ['http://localhost:5173/cb', 'http://127.0.0.1:5173/cb']) {
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
});
