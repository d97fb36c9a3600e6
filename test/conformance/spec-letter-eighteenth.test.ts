/**
 * The eighteenth conformance pass (docs/security-passes.md, "Looked at in the eighteenth passes:
 * conformance-suite equivalents (h3)"): what no check held yet, pinned as it held. A client's
 * registered default_max_age is a MUST of OpenID Connect Dynamic Client Registration §2 ("the
 * End-User MUST be actively authenticated if the End-User was authenticated longer ago than the
 * specified number of seconds. The max_age request parameter overrides this default value"):
 * dynamic-op.test.ts checks that it is registered and echoed, not that it is acted on.
 * Black box over HTTP, an Agent as the person.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, isLogin, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'spec-letter-eighteenth-secret-with-plenty-of-entropy';
const CALLBACK = 'https://fresh.example.test/callback';
/** RFC 7636 Appendix B's verifier and its S256 challenge. */
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('Spec-letter pass, eighteenth', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      clients: [webClient('fresh', SECRET, { redirect_uris: [CALLBACK], default_max_age: 0 })],
    });
  });
  after(() => op?.stop());

  const authorize = (agent: Agent, extra: Record<string, string> = {}) => {
    const query = new URLSearchParams({ client_id: 'fresh', response_type: 'code', redirect_uri: CALLBACK, scope: 'openid', state: 's', code_challenge: CHALLENGE, code_challenge_method: 'S256', ...extra });
    return agent.follow(`${op.metadata.authorization_endpoint!}?${query}`, {}, CALLBACK);
  };
  const idToken = async (url: string) => {
    const code = new URL(url).searchParams.get('code');
    assert.ok(code, url);
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`fresh:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: VERIFIER }),
    });
    const body = (await response.json()) as { id_token?: string };
    assert.equal(response.status, 200, JSON.stringify(body));
    return decodeJwt(body.id_token!);
  };

  it('a registered default_max_age is acted on: past it the person signs in again (silently: login_required), and a max_age in the request overrides it (Registration §2, Core §3.1.2.1)', async () => {
    const agent = new Agent();
    const signedIn = await signInSteps(agent, await authorize(agent), { username: ALICE.username, password: ALICE.password, stopAt: CALLBACK });
    const first = await idToken(signedIn.url);
    assert.equal(typeof first.auth_time, 'number');

    // default_max_age 0: any earlier sign-in is too old.
    assert.ok(isLogin(await authorize(agent)), 'the password is asked again');
    const silent = new URL((await authorize(agent, { prompt: 'none' })).url);
    assert.equal(silent.searchParams.get('error'), 'login_required', silent.href);
    assert.equal(silent.searchParams.get('state'), 's');

    // The request's max_age wins over the registered default, silently too.
    for (const extra of [{ max_age: '3600' }, { max_age: '3600', prompt: 'none' }] as Record<string, string>[]) {
      const page = await authorize(agent, extra);
      assert.ok(page.url.startsWith(CALLBACK), `${JSON.stringify(extra)}: ${page.url}`);
      const token = await idToken(page.url);
      assert.equal(token.auth_time, first.auth_time, 'the earlier sign-in, taken as it is');
    }
  });
});
