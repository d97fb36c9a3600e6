/**
 * The fourteenth fresh-eyes conformance pass (2026-12-07): checks an OpenID Foundation OP plan or
 * an RFC's letter makes that test/conformance/ did not yet name (docs/security-passes.md, "the
 * fourteenth fresh-eyes passes … the letter of the specs"). Black box over HTTP (openid-client,
 * raw requests, an Agent as the person).
 */
import assert from 'node:assert/strict';
import { formIn } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, isLogin, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'spec-letter-fourteenth-client-secret-with-plenty-of-entropy';
/** RFC 6749 §4.1.2.1's members of an error response, and RFC 9207's iss: what the suite expects. */
const ERROR_MEMBERS = ['error', 'error_description', 'error_uri', 'state', 'iss'];

describe('Spec-letter pass, fourteenth (letters no check covered)', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      env: { REGISTRATION_OPEN: 'true' },
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
});
