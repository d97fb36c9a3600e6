/**
 * The twelfth fresh-eyes conformance pass (2026-12-07): what the eleventh pass left, and letters no
 * check covered (docs/security-passes.md, "the twelfth fresh-eyes passes … the letter of the specs").
 * Black box over HTTP (fetch, openid-client, an Agent as the person).
 */
import assert from 'node:assert/strict';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent, ALICE, callbackParams, RelyingParty, startOp, webClient, type Op, answerOf } from './fixture.js';

const SECRET = 'spec-letter-twelfth-client-secret-with-plenty-of-entropy';

describe('Spec-letter pass, twelfth (left open before, and letters no check covered)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let alice: Agent;

  before(async () => {
    op = await startOp({ people: [ALICE], clients: [webClient('web', SECRET)] });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    alice = new Agent();
    await web.signIn(alice, ALICE);
  });
  after(async () => {
    await op?.stop();
  });

  const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`;
  const postForm = async (url: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
    answerOf(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) }));

  it('an S256 code_challenge that is not 43 base64url characters, which no code_verifier can meet, is invalid_request at the redirect URI with state and iss, and refused when pushed, before anyone signs in (RFC 7636 §4.2, §4.4.1)', async () => {
    const good = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
    assert.equal(good.length, 43);
    // Longer than a SHA-256 hash encodes (44 to 128), or holding "." or "~" (unreserved, but no base64url character).
    const never = [`${good}A`, good + good.slice(0, 21), 'a'.repeat(128), `${good.slice(0, 42)}.`, `~${good.slice(1)}`];
    for (const challenge of never) {
      const flow = await web.authorize(new Agent(), { code_challenge: challenge, state: 'pkce' });
      assert.ok(flow.page.url.startsWith(web.redirectUri), `${challenge}: ${flow.page.status} ${flow.page.url}`);
      const params = callbackParams(flow);
      assert.equal(params.get('error'), 'invalid_request', challenge);
      assert.match(params.get('error_description') ?? '', /code_challenge/, challenge);
      assert.equal(params.get('code'), null, challenge);
      assert.equal(params.get('state'), 'pkce', challenge);
      assert.equal(params.get('iss'), op.issuer, challenge);
      const pushed = await postForm(
        op.metadata.pushed_authorization_request_endpoint!,
        { client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri, code_challenge: challenge, code_challenge_method: 'S256' },
        { authorization: basic },
      );
      assert.equal(pushed.status, 400, `${challenge}: ${JSON.stringify(pushed.body)}`);
      assert.equal(pushed.body.error, 'invalid_request', challenge);
      assert.equal(pushed.body.request_uri, undefined);
    }
    // A genuine S256 challenge signs in and redeems, as before.
    const tokens = await web.redeem(await web.authorize(alice, { prompt: 'none' }));
    assert.ok(tokens.access_token);
  });

  it('a dpop_jkt that is no JWK SHA-256 thumbprint (43 base64url characters), which no DPoP proof can meet, is invalid_request at the redirect URI with state and iss, and refused when pushed, before anyone signs in (RFC 9449 §10, RFC 7638 §3)', async () => {
    const keys = await generateKeyPair('ES256', { extractable: true });
    const thumbprint = await calculateJwkThumbprint(await exportJWK(keys.publicKey));
    assert.equal(thumbprint.length, 43);
    const never = ['abc', `${thumbprint}A`, `${thumbprint.slice(0, 42)}.`, `~${thumbprint.slice(1)}`, `${thumbprint}=`];
    const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
    for (const jkt of never) {
      const flow = await web.authorize(new Agent(), { dpop_jkt: jkt, state: 'jkt' });
      assert.ok(flow.page.url.startsWith(web.redirectUri), `${jkt}: ${flow.page.status} ${flow.page.url}`);
      const params = callbackParams(flow);
      assert.equal(params.get('error'), 'invalid_request', jkt);
      assert.match(params.get('error_description') ?? '', /dpop_jkt/, jkt);
      assert.equal(params.get('code'), null, jkt);
      assert.equal(params.get('state'), 'jkt', jkt);
      assert.equal(params.get('iss'), op.issuer, jkt);
      const pushed = await postForm(
        op.metadata.pushed_authorization_request_endpoint!,
        { client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri, code_challenge: challenge, code_challenge_method: 'S256', dpop_jkt: jkt },
        { authorization: basic },
      );
      assert.equal(pushed.status, 400, `${jkt}: ${JSON.stringify(pushed.body)}`);
      assert.equal(pushed.body.error, 'invalid_request', jkt);
      assert.equal(pushed.body.request_uri, undefined);
    }
    // A genuine thumbprint binds the code to its key: redeemed with a proof by that key, the token is DPoP-bound.
    const flow = await web.authorize(alice, { prompt: 'none', dpop_jkt: thumbprint });
    const tokens = await oidc.authorizationCodeGrant(web.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, undefined, { DPoP: oidc.getDPoPHandle(web.config, keys) });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  });
});
