/**
 * The OpenID Foundation conformance suite's OP modules, sent exactly as the suite builds them, where
 * the other files here send something close but not the same (sixteenth passes, h11: see
 * docs/security-passes.md). The suite's request-object modules put every parameter in the object and
 * repeat only response_type, client_id, scope and redirect_uri beside it (its
 * AbstractBuildRequestObjectRedirectToAuthorizationEndpoint), so state, PKCE and response_mode are in
 * the object alone; its logout modules modify the id_token_hint in their own ways (ChangeIdTokenToAlgNone,
 * SignFakeIdToken) and send a 128-character state. The server runs as the plans need it
 * (pkce.required: public, docs/protocol.md).
 *
 * The plans' modules (conformance-suite, OIDCC*TestPlan.java) and where each is checked; suite-sweep.test.ts's
 * header maps the rest module by module:
 *  - here: unsigned-request-object-supported-correctly-or-rejected-as-unsupported (query and form_post),
 *    request-uri-unsigned-supported-correctly-or-rejected-as-unsupported, ensure-request-object-with-redirect-uri
 *    (both modes), response-type-missing (both modes), rp-initiated-logout (128-character state, the prompt=none
 *    after), rp-initiated-logout-modified-id-token-hint (alg none), rp-initiated-logout-bad-id-token-hint
 *    (HS256 by the client secret); the FAPI 2.0 plans' PAR refusals and a push without PKCE.
 *  - skipped by the suite itself, as it should be: idtoken-unsigned (no none in
 *    id_token_signing_alg_values_supported), registration-sector-uri and -sector-bad (no pairwise in
 *    subject_types_supported), scope-address, -phone, -all (not in scopes_supported).
 *  - failed by the suite on purpose (docs/protocol.md "Not offered"): the Dynamic plan's request-uri-unsigned
 *    and request-uri-signed-rs256 (request_uri_not_supported, pinned here and in basic-op.test.ts).
 *  - not applicable: ensure-request-without-nonce-fails (implicit and hybrid only; code only here).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { formIn, type Page } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'suite-sixteenth-client-secret-with-plenty-of-entropy';
const REDIRECT = 'https://web.example.test/callback';
const SIGNED_OUT = 'https://web.example.test/signed-out';

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
/** An unsigned request object as the suite serialises it (SerializeRequestObjectWithNullAlgorithm). */
const unsigned = (claims: Record<string, unknown>) => `${b64({ alg: 'none' })}.${b64(claims)}.`;

/** What a form_post answer carries to the redirect URI: its form's action and fields, or undefined when the page posts nowhere. */
function posted(page: Page): { action: string; fields: Record<string, string> } | undefined {
  if (!/<form[^>]*method="post"/i.test(page.html)) return undefined;
  try {
    const form = formIn(page.html, 'https://');
    return { action: form.action, fields: form.hidden };
  } catch {
    return undefined;
  }
}

describe('OpenID Foundation OP plans: the suite\'s own requests (sixteenth passes)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      env: { PKCE_REQUIRED: 'public' },
      clients: [webClient('web', SECRET)],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
  });
  after(() => op?.stop());

  /** The suite's authorization_endpoint_request (CreateAuthorizationRequestSteps), with what the module adds. */
  function suiteRequest(extra: Record<string, string> = {}): Record<string, string> {
    return { client_id: 'web', redirect_uri: REDIRECT, scope: 'openid', state: 'suite-state-0123456789', nonce: 'suite-nonce-0123456789', response_type: 'code', ...extra };
  }

  /** The redirect the suite's browser follows: `param` (request or request_uri) and the four required duplicates, plus any outer value that differs from the object's. */
  function suiteRedirect(param: 'request' | 'request_uri', value: string, outer: Record<string, string>): string {
    const url = new URL(op.metadata.authorization_endpoint!);
    const params: Record<string, string> = { [param]: value };
    for (const key of ['response_type', 'client_id', 'scope', 'redirect_uri']) params[key] = outer[key]!;
    url.search = new URLSearchParams(Object.entries(params).sort(([a], [b]) => a.localeCompare(b))).toString();
    return url.href;
  }

  describe('request objects the server does not take (oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported, oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported)', () => {
    it('discovery says neither request nor request_uri is taken, and offers no request object algorithm, so the suite does not skip these modules and sends them (Discovery §3)', () => {
      assert.ok(op.metadata.request_parameter_supported === undefined || op.metadata.request_parameter_supported === false, 'request_parameter_supported: false, its default');
      assert.equal(op.metadata.request_uri_parameter_supported, false);
      assert.equal(op.metadata.request_object_signing_alg_values_supported, undefined);
    });

    it('a request object holding state, nonce and everything else, with only response_type, client_id, scope and redirect_uri beside it, is request_not_supported at the redirect URI with iss, the state of the object and no code: no missing-parameter error first (Core §6.1, §3.1.2.6; RFC 6749 §4.1.2.1 state)', async () => {
      const request = suiteRequest();
      const page = await new Agent().follow(suiteRedirect('request', unsigned(request), request), {}, REDIRECT);
      assert.ok(page.url.startsWith(REDIRECT), `${page.status} ${page.url}`);
      const params = new URL(page.url).searchParams;
      assert.equal(params.get('error'), 'request_not_supported');
      assert.equal(params.get('code'), null);
      assert.equal(params.get('iss'), op.issuer);
      assert.equal(params.get('state'), request.state);
    });

    it('the same by reference is request_uri_not_supported at the redirect URI, no code (Core §6.2, §3.1.2.6)', async () => {
      const page = await new Agent().follow(suiteRedirect('request_uri', 'https://web.example.test/requests/suite.jwt', suiteRequest()), {}, REDIRECT);
      assert.ok(page.url.startsWith(REDIRECT), `${page.status} ${page.url}`);
      const params = new URL(page.url).searchParams;
      assert.equal(params.get('error'), 'request_uri_not_supported');
      assert.equal(params.get('code'), null);
    });

    it('oidcc-formpost-basic: the object asks response_mode=form_post (in the object alone, as the suite sends it), and request_not_supported is posted to the redirect URI with iss, not put in its query (Form Post Response Mode §2; the suite\'s CheckCallbackHttpMethodIsPost, RejectErrorInUrlQuery)', async () => {
      const request = suiteRequest({ response_mode: 'form_post' });
      const page = await new Agent().follow(suiteRedirect('request', unsigned(request), request), {}, REDIRECT);
      assert.ok(!page.url.startsWith(REDIRECT), `redirected with the error in the query: ${page.url}`);
      const form = posted(page);
      assert.ok(form, `${page.status} ${page.url} ${page.html.slice(0, 300)}`);
      assert.equal(form.action, REDIRECT);
      assert.equal(form.fields.error, 'request_not_supported');
      assert.equal(form.fields.iss, op.issuer);
      assert.equal(form.fields.state, request.state);
      assert.equal(form.fields.code, undefined);
    });

    it('what is beside the object wins: a form_post and a state there are answered with, whatever the object says (Form Post Response Mode §2)', async () => {
      const request = suiteRequest({ response_mode: 'query', state: 'inside' });
      const page = await new Agent().follow(`${suiteRedirect('request', unsigned(request), request)}&response_mode=form_post&state=beside`, {}, REDIRECT);
      assert.equal(posted(page)?.fields.error, 'request_not_supported');
      assert.equal(posted(page)?.fields.state, 'beside');
    });

    it('a response_mode in the object that the server does not offer, or an object that is no JWT, gets the error in the query as before', async () => {
      for (const request of [unsigned(suiteRequest({ response_mode: 'web_message' })), unsigned(suiteRequest({ response_mode: 'jwt' })), 'not-a-jwt', `${b64({ alg: 'none' })}.${b64('[1]')}.`]) {
        const page = await new Agent().follow(suiteRedirect('request', request, suiteRequest()), {}, REDIRECT);
        assert.ok(page.url.startsWith(REDIRECT), `${request}: ${page.status} ${page.url}`);
        assert.equal(new URL(page.url).searchParams.get('error'), 'request_not_supported', request);
      }
    });
  });

  describe('oidcc-response-type-missing in both plans (its placeholder: ExpectResponseTypeMissingErrorPage; CheckErrorFromAuthorizationEndpointErrorInvalidRequestOrUnsupportedResponseType)', () => {
    it('without response_type the error is invalid_request or unsupported_response_type with state and iss, in the query, or posted when form_post was asked (the Form Post plan rejects an error in the query), or an error page; never a code (RFC 6749 §3.1.1, §4.1.2.1; Form Post Response Mode §2)', async () => {
      for (const mode of [{}, { response_mode: 'form_post' }] as Record<string, string>[]) {
        const { response_type: _left, ...request } = suiteRequest(mode);
        const url = new URL(op.metadata.authorization_endpoint!);
        url.search = new URLSearchParams(request).toString();
        const page = await new Agent().follow(url.href, {}, 'https://web.example.test');
        const form = posted(page);
        const answer = form ? new URLSearchParams(form.fields) : page.url.startsWith(REDIRECT) ? new URL(page.url).searchParams : undefined;
        if (!answer) {
          assert.equal(page.status, 400, JSON.stringify(mode));
          assert.match(page.html, /response_type/);
          continue;
        }
        assert.equal(Boolean(form), mode.response_mode === 'form_post', `${JSON.stringify(mode)}: ${page.url}`);
        assert.ok(['invalid_request', 'unsupported_response_type'].includes(answer.get('error')!), String(answer));
        assert.equal(answer.get('state'), request.state);
        assert.equal(answer.get('iss'), op.issuer);
        assert.equal(answer.get('code'), null);
      }
    });
  });

  describe('oidcc-ensure-request-object-with-redirect-uri (its placeholder: ExpectRedirectUriErrorPage)', () => {
    it('the registered redirect_uri in the object and an unregistered one beside it: an error page at the server, never a redirect to the registered one, in either response mode (Core §6.1, RFC 6749 §3.1.2.4; EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri)', async () => {
      for (const mode of [{}, { response_mode: 'form_post' }] as Record<string, string>[]) {
        const request = suiteRequest(mode);
        const outer = { ...request, redirect_uri: `${REDIRECT}_invalid` };
        const page = await new Agent().follow(suiteRedirect('request', unsigned(request), outer), {}, 'https://web.example.test');
        assert.equal(page.url.startsWith('https://web.example.test'), false, `${JSON.stringify(mode)}: ${page.url}`);
        assert.equal(page.status, 400, JSON.stringify(mode));
        assert.equal(posted(page), undefined, JSON.stringify(mode));
        assert.match(page.html, /redirect_uri/);
      }
    });
  });

  describe('pushed requests as the FAPI 2.0 plans send them (fapi2-security-profile: par-attempt-invalid-redirect-uri, par-plain-pkce, par-without-pkce; RFC 9126 §2.2, §2.3)', () => {
    async function push(fields: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
      const response = await fetch(op.metadata.pushed_authorization_request_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams(fields),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    }
    const pkce = { code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };

    it('an unregistered redirect_uri, plain PKCE or a malformed code_challenge is refused by the pushed request endpoint itself: 400 with a JSON error and no request_uri (RFC 9126 §2.3, RFC 7636 §4.4.1)', async () => {
      const cases: [string, Record<string, string>][] = [
        ['unregistered redirect_uri', suiteRequest({ ...pkce, redirect_uri: `${REDIRECT}_invalid` })],
        ['plain PKCE', suiteRequest({ code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' })],
        ['a code_challenge of 42 characters', suiteRequest({ code_challenge: 'a'.repeat(42), code_challenge_method: 'S256' })],
      ];
      for (const [name, fields] of cases) {
        const answer = await push(fields);
        assert.equal(answer.status, 400, name);
        assert.equal(typeof answer.body.error, 'string', name);
        assert.equal(answer.body.request_uri, undefined, name);
      }
    });

    it('a confidential client pushing without PKCE (pkce.required: public, as the OpenID plans run) gets a request_uri of the urn:ietf:params:oauth:request_uri: form and expires_in; with the request_uri and client_id alone the sign-in ends at the redirect URI with the pushed state (RFC 9126 §2.2, §4)', async () => {
      const answer = await push(suiteRequest());
      assert.equal(answer.status, 201);
      assert.match(String(answer.body.request_uri), /^urn:ietf:params:oauth:request_uri:/);
      assert.equal(typeof answer.body.expires_in, 'number');
      const url = new URL(op.metadata.authorization_endpoint!);
      url.search = new URLSearchParams({ client_id: 'web', request_uri: String(answer.body.request_uri) }).toString();
      const agent = new Agent();
      const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: ALICE.username, password: ALICE.password, stopAt: REDIRECT });
      assert.ok(page.url.startsWith(REDIRECT), `${page.status} ${page.url}`);
      const params = new URL(page.url).searchParams;
      assert.ok(params.get('code'));
      assert.equal(params.get('state'), 'suite-state-0123456789');
      assert.equal(params.get('iss'), op.issuer);
    });
  });

  describe('RP-initiated logout as the suite modifies its requests', () => {
    /** alice signed in at web, with the ID token openid-client redeemed. */
    async function signedIn(): Promise<{ agent: Agent; idToken: string }> {
      const agent = new Agent();
      const tokens = await web.redeem(await web.signIn(agent, ALICE));
      return { agent, idToken: tokens.id_token! };
    }
    function endSession(agent: Agent, params: Record<string, string>): Promise<Page> {
      const url = new URL(op.metadata.end_session_endpoint!);
      url.search = new URLSearchParams(params).toString();
      return agent.follow(url.href, {}, 'https://web.example.test');
    }
    async function stillSignedIn(agent: Agent): Promise<boolean> {
      const flow = await web.authorize(agent, { prompt: 'none' });
      return Boolean(new URL(flow.page.url).searchParams.get('code'));
    }

    it('oidcc-rp-initiated-logout-modified-id-token-hint: the ID token turned to {"alg": "none"}, its signature dropped, gets an error page, no redirect, and the person stays signed in (RP-Initiated Logout §2; ChangeIdTokenToAlgNone)', async () => {
      const { agent, idToken } = await signedIn();
      const none = `${Buffer.from('{"alg": "none"}').toString('base64url')}.${idToken.split('.')[1]}.`;
      const page = await endSession(agent, { id_token_hint: none, post_logout_redirect_uri: SIGNED_OUT, state: 'x'.repeat(128) });
      assert.equal(page.url.startsWith('https://web.example.test'), false, page.url);
      assert.equal(page.status, 400);
      assert.equal(await stillSignedIn(agent), true);
    });

    it('oidcc-rp-initiated-logout-bad-id-token-hint: an ID token the suite made itself, HS256 with the client secret, iss the client and aud the issuer, gets an error page, no redirect (RP-Initiated Logout §2; GenerateFakeIdTokenClaims, SignFakeIdToken)', async () => {
      const { agent } = await signedIn();
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: 'web', sub: 'SubjectID', aud: op.issuer, nonce: 'flibble', iat: now, exp: now + 300 })}`;
      const fake = `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
      const page = await endSession(agent, { id_token_hint: fake, post_logout_redirect_uri: SIGNED_OUT, state: 'x'.repeat(128) });
      assert.equal(page.url.startsWith('https://web.example.test'), false, page.url);
      assert.equal(page.status, 400);
      assert.equal(await stillSignedIn(agent), true);
    });

    it('oidcc-rp-initiated-logout: a 128-character state comes back unchanged after the confirmation; the prompt=none request after it is login_required, an error that needs a person (RP-Initiated Logout §3; CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface)', async () => {
      const { agent, idToken } = await signedIn();
      const state = 'S'.repeat(64) + '-_.~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX'.slice(0, 64);
      const page = await endSession(agent, { id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT, state });
      const back = await agent.submit(page, '/session/end/confirm', { logout: 'yes' }, SIGNED_OUT);
      assert.ok(back.url.startsWith(SIGNED_OUT), back.url);
      assert.equal(new URL(back.url).searchParams.get('state'), state);
      const again = await web.authorize(agent, { prompt: 'none' });
      assert.equal(new URL(again.page.url).searchParams.get('error'), 'login_required');
    });
  });
});
