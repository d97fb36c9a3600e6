/**
 * pkce.required "public": PKCE of public clients only, the minimum RFC 9700 §2.1.1 sets, which is
 * how the OpenID Foundation's OpenID Connect plans run their confidential test clients (no
 * code_challenge but in oidcc-ensure-request-with-valid-pkce-succeeds). The default, "all", is
 * pinned by the Basic OP plan ('PKCE is required'). Black box, over HTTP.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, callbackParams, RelyingParty, startOp, webClient, type Flow, type Op } from './fixture.js';

const SECRET = 'pkce-public-only-secret-with-plenty-of-entropy-0123';

describe('PKCE of public clients only (pkce.required: public, as the OpenID Connect conformance plans run; RFC 9700 §2.1.1)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let spa: RelyingParty;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      env: { PKCE_REQUIRED: 'public' },
      clients: [
        webClient('web', SECRET),
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example.test/callback'], grant_types: ['authorization_code', 'refresh_token'] },
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    spa = await RelyingParty.create(op, 'spa');
  });
  after(() => op?.stop());

  const withoutPkce = { code_challenge: undefined, code_challenge_method: undefined };

  async function redeem(flow: Flow, verifier?: string) {
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callbackParams(flow).get('code')!, redirect_uri: flow.redirectUri, ...(verifier && { code_verifier: verifier }) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function signIn(rp: RelyingParty, params: Record<string, string | undefined>): Promise<Flow> {
    const agent = new Agent();
    const flow = await rp.authorize(agent, params);
    const page = await signInSteps(agent, flow.page, { username: ALICE.username, password: ALICE.password, stopAt: flow.redirectUri });
    return { ...flow, page };
  }

  it('a confidential client without code_challenge gets a code and redeems it without code_verifier; the ID token has its nonce (RFC 6749 §4.1, Core §3.1.3.7)', async () => {
    const flow = await signIn(web, withoutPkce);
    assert.ok(callbackParams(flow).get('code'), flow.page.url);
    const answer = await redeem(flow);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.ok(answer.body.access_token);
    const claims = JSON.parse(Buffer.from(String(answer.body.id_token).split('.')[1]!, 'base64url').toString()) as { nonce?: string };
    assert.equal(claims.nonce, flow.nonce);
  });

  it('a confidential client that sent a code_challenge is held to it: no verifier, or a wrong one → invalid_grant (RFC 7636 §4.6)', async () => {
    for (const verifier of [undefined, oidc.randomPKCECodeVerifier()]) {
      const answer = await redeem(await signIn(web, {}), verifier);
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_grant');
    }
    const flow = await signIn(web, {});
    assert.equal((await redeem(flow, flow.verifier)).status, 200, 'with its verifier it works');
  });

  it('a code_verifier for a code requested without code_challenge is refused: no PKCE downgrade (RFC 9700 §4.8.2)', async () => {
    const answer = await redeem(await signIn(web, withoutPkce), oidc.randomPKCECodeVerifier());
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, 'invalid_grant');
  });

  it('a public client still must use PKCE: invalid_request at the redirect URI, no code (RFC 9700 §2.1.1)', async () => {
    const flow = await spa.authorize(new Agent(), withoutPkce);
    const params = callbackParams(flow);
    assert.equal(params.get('error'), 'invalid_request', flow.page.url);
    assert.match(params.get('error_description') ?? '', /^PKCE is required of public clients: send code_challenge .* code_challenge_method=S256/);
    assert.equal(params.get('code'), null);
    assert.equal(params.get('iss'), op.issuer);
  });
});
