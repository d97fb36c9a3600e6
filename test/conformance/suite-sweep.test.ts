/**
 * The OpenID Foundation conformance suite's OP plans (oidcc-basic, -config, -dynamic, -formpost-basic,
 * -rp-initiated-logout, -backchannel-rp-initiated-logout), module by module and condition by condition,
 * against the checks of the other files here: what this file holds is what those plans check and no
 * other check did. Each title names the suite's module or condition it stands for.
 *
 * Plans' modules and where they are checked (the implicit and hybrid plans do not apply: response
 * type `code` only, docs/protocol.md "Deliberate departures"):
 *  - basic / formpost-basic: server-test, response-type-missing, id-token-signature, id-token-unsigned
 *    (skipped: RS256 only), userinfo-get/-post-header/-post-body, nonce-noreq-code, scope-profile/-email
 *    (address, phone, all: skipped, not in scopes_supported), alternate-happy-flow, display-page/-popup,
 *    prompt-login, prompt-none-not-logged-in/-logged-in, max-age-1/-10000, unknown-parameter,
 *    id-token-hint, login-hint, ui-locales, claims-locales, auth-code-reuse(-30s),
 *    ensure-registered-redirect-uri, ensure-post-request-succeeds, client-secret-post, request-uri /
 *    request-object unsigned (request(_uri)_not_supported), ensure-request-object-with-redirect-uri
 *    (skipped then), refresh-token, valid-pkce: basic-op.test.ts and form-post.test.ts; claims-essential
 *    and acr-values here, and scope-email's ID token without email for a client that asks for it.
 *  - config: discovery-endpoint-verification: config-op.test.ts; its schema and unexpected-member
 *    conditions here.
 *  - dynamic: id-token-rs256, userinfo-rs256, redirect-uri-missing/-query-ok/-mismatch/-added/-regfrag,
 *    registration-logo/-policy/-tos (their login page here)/-jwks-uri/-sector-bad, server-rotate-keys (its JWKS
 *    comparison here): dynamic-op.test.ts
 *    (registration-sector-uri skipped: no pairwise; request-uri-unsigned/-signed-rs256 and the plan's
 *    private_key_jwt assertions with aud the token endpoint are deliberate departures, docs/protocol.md).
 *  - rp-initiated-logout and backchannel: every module: logout-op.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { formIn } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, callbackParams, isConsent, isLogin, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'suite-sweep-client-secret-with-plenty-of-entropy-01';
const API = 'https://api.sweep.example.test';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe('OpenID Foundation OP plans: conditions not checked elsewhere', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let fresh: RelyingParty;
  let requireAuthTime: RelyingParty;
  let defaultMaxAge: RelyingParty;
  /** alice, signed in at web. */
  let alice: Agent;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      env: {
        REGISTRATION_OPEN: 'true',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'opaque', grants: [{ client_id: 'machine', scopes: ['read'], introspect: true }] }]),
      },
      clients: [
        webClient('machine', SECRET, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [], post_logout_redirect_uris: [] }),
        webClient('web', SECRET),
        webClient('fresh', SECRET),
        webClient('userinfo-only', SECRET, { id_token_scope_claims: false }),
        webClient('rat', SECRET, { require_auth_time: true }),
        webClient('dma', SECRET, { default_max_age: 1 }),
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    fresh = await RelyingParty.create(op, 'fresh', { secret: SECRET });
    requireAuthTime = await RelyingParty.create(op, 'rat', { secret: SECRET });
    defaultMaxAge = await RelyingParty.create(op, 'dma', { secret: SECRET });
    alice = new Agent();
    await web.redeem(await web.signIn(alice, ALICE));
  });
  after(() => op?.stop());

  async function idToken(rp: RelyingParty, token: string): Promise<JWTPayload> {
    return (await jwtVerify(token, op.jwks, { issuer: op.issuer, audience: rp.clientId, algorithms: ['RS256'] })).payload;
  }

  async function userinfo(accessToken: string): Promise<Record<string, unknown>> {
    const response = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${accessToken}` } });
    assert.equal(response.status, 200);
    return (await response.json()) as Record<string, unknown>;
  }

  async function register(metadata: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  describe('ID token claims (PerformStandardIdTokenChecks and the modules that add to it)', () => {
    it("oidcc-ensure-request-with-acr-values-succeeds: acr_values naming every acr_values_supported value gets a code, and the ID token's acr is one of them (Core §3.1.2.1, §15.1; ValidateIdTokenACRClaimAgainstAcrValuesRequest)", async () => {
      const supported = (op.metadata as { acr_values_supported?: string[] }).acr_values_supported;
      assert.ok(Array.isArray(supported) && supported.length > 0, 'acr_values_supported is advertised');
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { acr_values: supported.join(' ') }));
      const { acr } = await idToken(web, tokens.id_token!);
      assert.equal(typeof acr, 'string');
      assert.ok(supported.includes(String(acr)), `${String(acr)} is one of ${supported.join(' ')}`);
    });

    it('require_auth_time: a client registered with it gets auth_time in its ID tokens, with neither max_age nor a claims request, at the sign-in and after a silent one (Registration §2, Core §2)', async () => {
      const agent = new Agent();
      const first = await idToken(requireAuthTime, (await requireAuthTime.redeem(await requireAuthTime.signIn(agent, ALICE))).id_token!);
      assert.equal(typeof first.auth_time, 'number');
      assert.ok(Number(first.auth_time) <= first.iat!, 'a sign-in before the ID token');
      const again = await requireAuthTime.authorize(agent, { prompt: 'none' });
      const second = await idToken(requireAuthTime, (await requireAuthTime.redeem(again)).id_token!);
      assert.equal(second.auth_time, first.auth_time, 'the time of the sign-in, not of the silent request');
    });

    it('oidcc-claims-essential: name asked for as essential at userinfo is there and not in the ID token; a claim asked for in the ID token alone stays out of userinfo (Core §5.5, §5.5.1; EnsureUserInfoContainsName, EnsureIdTokenDoesNotContainName)', async () => {
      const claims = JSON.stringify({ userinfo: { name: { essential: true } }, id_token: { email: { essential: true } } });
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE, { scope: 'openid', claims }));
      const id = await idToken(web, tokens.id_token!);
      assert.equal(id.name, undefined, 'name was asked for at userinfo only');
      assert.equal(id.email, ALICE.email);
      const info = await userinfo(tokens.access_token);
      assert.equal(info.name, ALICE.name);
      assert.equal(info.email, undefined, 'email was asked for in the ID token only');
      assert.equal(info.sub, id.sub);
    });
  });

  describe('scope claims (oidcc-scope-email, oidcc-scope-profile)', () => {
    it("a client registered with id_token_scope_claims false, as the suite's should be, gets scope email's and profile's claims at userinfo and not in the ID token (Core §5.4; EnsureIdTokenDoesNotContainEmailForScopeEmail, EnsureIdTokenDoesNotContainName, VerifyScopesReturnedInUserInfoClaims)", async () => {
      const rp = await RelyingParty.create(op, 'userinfo-only', { secret: SECRET });
      const tokens = await rp.redeem(await rp.signIn(new Agent(), ALICE, { scope: 'openid email profile' }));
      const id = await idToken(rp, tokens.id_token!);
      for (const claim of ['email', 'email_verified', 'name', 'given_name', 'family_name', 'locale', 'updated_at']) assert.equal(id[claim], undefined, claim);
      const info = await userinfo(tokens.access_token);
      assert.equal(info.sub, id.sub);
      assert.equal(info.email, ALICE.email);
      assert.equal(info.email_verified, true);
      assert.equal(info.name, ALICE.name);
      assert.equal(typeof info.updated_at, 'number', 'a number (EnsureUserInfoUpdatedAtValid)');
    });
  });

  describe('re-authentication (max_age, default_max_age, prompt)', () => {
    it('max_age=0 makes a signed-in person sign in again, as prompt=login does; auth_time moves on (Core §3.1.2.1)', async () => {
      const agent = new Agent();
      const first = await idToken(web, (await web.redeem(await web.signIn(agent, ALICE))).id_token!);
      await sleep(1100);
      const flow = await web.authorize(agent, { max_age: '0' });
      assert.ok(isLogin(flow.page), `the login page, got ${flow.page.status} ${flow.page.url}`);
      const page = await signInSteps(agent, flow.page, { username: ALICE.username, password: ALICE.password, stopAt: web.redirectUri });
      const second = await idToken(web, (await web.redeem({ ...flow, page })).id_token!);
      assert.ok(Number(second.auth_time) > Number(first.auth_time), `${String(second.auth_time)} > ${String(first.auth_time)}`);
    });

    it("default_max_age: a client's registered default makes a person sign in again once it has passed, without max_age in the request; a request's own max_age overrides it (Registration §2, Core §3.1.2.1)", async () => {
      const agent = new Agent();
      const first = await idToken(defaultMaxAge, (await defaultMaxAge.redeem(await defaultMaxAge.signIn(agent, ALICE))).id_token!);
      assert.equal(typeof first.auth_time, 'number', 'auth_time, as a max_age asks (Core §2)');
      // Authentication times are whole seconds: only after two has more than one passed by every reading.
      await sleep(2100);
      const overridden = await defaultMaxAge.authorize(agent, { max_age: '3600' });
      assert.ok(callbackParams(overridden).get('code'), `the request's max_age wins: ${overridden.page.url}`);
      const flow = await defaultMaxAge.authorize(agent);
      assert.ok(isLogin(flow.page), `the login page, got ${flow.page.status} ${flow.page.url}`);
      const page = await signInSteps(agent, flow.page, { username: ALICE.username, password: ALICE.password, stopAt: defaultMaxAge.redirectUri });
      const second = await idToken(defaultMaxAge, (await defaultMaxAge.redeem({ ...flow, page })).id_token!);
      assert.ok(Number(second.auth_time) > Number(first.auth_time), `${String(second.auth_time)} > ${String(first.auth_time)}`);
    });

    it('prompt=consent shows the consent page again to a person who allowed the client before (Core §3.1.2.1)', async () => {
      const flow = await web.authorize(alice, { prompt: 'consent' });
      assert.ok(isConsent(flow.page), `the consent page, got ${flow.page.status} ${flow.page.url}`);
      const page = await signInSteps(alice, flow.page, { username: ALICE.username, password: ALICE.password, consent: 'required', stopAt: web.redirectUri });
      assert.ok(callbackParams({ ...flow, page }).get('code'));
    });
  });

  describe('authorization error responses (performGenericAuthorizationEndpointErrorResponseValidation)', () => {
    const ALLOWED = ['error', 'error_description', 'error_uri', 'state', 'iss'];

    it('an error at the redirect URI carries error, state and iss and nothing the suite does not expect, in the query and in form_post (RFC 6749 §4.1.2.1, RFC 9207 §2; CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint)', async () => {
      const base = { client_id: 'web', response_type: 'code', redirect_uri: web.redirectUri, scope: 'openid', state: 'sweep', nonce: 'n', code_challenge: CHALLENGE, code_challenge_method: 'S256' };
      const cases: [string, Agent, Record<string, string | undefined>, string][] = [
        ['prompt=none without a session', new Agent(), { prompt: 'none' }, 'login_required'],
        ['prompt=none for a client not allowed yet', alice, { client_id: 'fresh', redirect_uri: fresh.redirectUri, prompt: 'none' }, 'consent_required'],
        ['response_type missing', new Agent(), { response_type: undefined }, 'invalid_request'],
        ['a request object', new Agent(), { request: 'eyJhbGciOiJub25lIn0.eyJjbGllbnRfaWQiOiJ3ZWIifQ.' }, 'request_not_supported'],
        ['a request_uri', new Agent(), { request_uri: 'https://web.example.test/request.jwt' }, 'request_uri_not_supported'],
        ['claims not JSON', new Agent(), { claims: '{' }, 'invalid_request'],
        ['max_age not a number', new Agent(), { max_age: 'soon' }, 'invalid_request'],
      ];
      for (const [name, agent, extra, error] of cases) {
        for (const mode of ['query', 'form_post']) {
          const params = Object.fromEntries(Object.entries({ ...base, response_mode: mode, ...extra }).filter((entry): entry is [string, string] => entry[1] !== undefined));
          const url = new URL(op.metadata.authorization_endpoint!);
          url.search = new URLSearchParams(params).toString();
          const redirectUri = params.redirect_uri!;
          const page = await agent.follow(url.href, {}, redirectUri);
          const answer = mode === 'query' ? Object.fromEntries(new URL(page.url).searchParams) : formIn(page.html, redirectUri).hidden;
          if (mode === 'query') assert.ok(page.url.startsWith(redirectUri), `${name} (${mode}): back at the client, got ${page.status} ${page.url}`);
          assert.equal(answer.error, error, `${name} (${mode})`);
          assert.equal(answer.state, 'sweep', `${name} (${mode})`);
          assert.equal(answer.iss, op.issuer, `${name} (${mode})`);
          const unexpected = Object.keys(answer).filter((key) => !ALLOWED.includes(key));
          assert.deepEqual(unexpected, [], `${name} (${mode}): ${JSON.stringify(answer)}`);
        }
      }
    });
  });

  describe('codes and tokens (oidcc-server-test, oidcc-refresh-token: RefreshTokenRequestSteps)', () => {
    it('codes, access and refresh tokens are of RFC 6749 VSCHARs, at least 128 bits long, and new at each refresh (RFC 6749 §10.10, Appendix A.11, A.12, A.17; EnsureMinimumAuthorizationCodeLength, EnsureMinimumAuthorizationCodeEntropy, EnsureRefreshTokenContainsAllowedCharactersOnly, EnsureMinimumAccessTokenEntropy, EnsureMinimumRefreshTokenEntropy)', async () => {
      const flow = await web.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' });
      const code = callbackParams(flow).get('code')!;
      const first = await web.redeem(flow);
      const second = await oidc.refreshTokenGrant(web.config, first.refresh_token!);
      for (const [name, token] of Object.entries({ code, access: first.access_token, refresh: first.refresh_token, 'refreshed access': second.access_token, 'rotated refresh': second.refresh_token })) {
        assert.ok(token, `${name} token`);
        assert.match(token, /^[\x20-\x7E]+$/, `${name} token: VSCHARs only`);
        // 128 bits are 22 characters of base64url, the alphabet of these tokens.
        assert.match(token, /^[A-Za-z0-9_-]{22,}$/, `${name} token: 128 bits at least`);
      }
      assert.notEqual(second.access_token, first.access_token);
      assert.notEqual(second.refresh_token, first.refresh_token);
    });
  });

  describe('client credentials and introspection (RFC 6749 §4.4.3, §5.1; RFC 7662 §2.2)', () => {
    const basic = `Basic ${Buffer.from(`machine:${SECRET}`).toString('base64')}`;
    async function post(url: string, params: Record<string, string>): Promise<Record<string, unknown>> {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, body: new URLSearchParams(params) });
      assert.equal(response.status, 200);
      return (await response.json()) as Record<string, unknown>;
    }

    it('a client_credentials answer has access_token, token_type Bearer and expires_in, and neither a refresh token nor an ID token (RFC 6749 §4.4.3, §5.1)', async () => {
      const answer = await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API });
      assert.equal(typeof answer.access_token, 'string');
      assert.equal(String(answer.token_type).toLowerCase(), 'bearer');
      assert.ok(Number.isInteger(answer.expires_in) && Number(answer.expires_in) > 0, JSON.stringify(answer));
      assert.equal(answer.refresh_token, undefined);
      assert.equal(answer.id_token, undefined);
    });

    it('introspecting an active token answers active true with its scope, client_id, token_type, exp and iat, exp in the future (RFC 7662 §2.2)', async () => {
      const { access_token: token } = await post(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API });
      const answer = await post(op.metadata.introspection_endpoint!, { token: String(token) });
      assert.equal(answer.active, true, JSON.stringify(answer));
      assert.equal(answer.scope, 'read');
      assert.equal(answer.client_id, 'machine');
      assert.equal(String(answer.token_type).toLowerCase(), 'bearer');
      assert.ok(Number(answer.exp) > Date.now() / 1000, JSON.stringify(answer));
      assert.ok(Number(answer.iat) <= Number(answer.exp));
    });
  });

  describe('DPoP at userinfo (RFC 9449 §7.1)', () => {
    it("a DPoP-bound access token is accepted at userinfo with its key's proof naming it (ath); without a proof invalid_request; with a proof without ath, for another token or another URL, 401 invalid_dpop_proof; each with a DPoP challenge (RFC 9449 §4.3, §7.1; RFC 6750 §3.1)", async () => {
      const keys = await generateKeyPair('ES256', { extractable: true });
      const jwk = await exportJWK(keys.publicKey);
      const flow = await web.signIn(alice, ALICE);
      const tokens = await oidc.authorizationCodeGrant(web.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true }, undefined, { DPoP: oidc.getDPoPHandle(web.config, keys) });
      assert.equal(tokens.token_type, 'dpop');
      const me = op.metadata.userinfo_endpoint!;
      const ath = (token: string) => createHash('sha256').update(token).digest('base64url');
      const proof = (claims: Record<string, unknown>) =>
        new SignJWT({ htm: 'GET', htu: me, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(keys.privateKey);
      const ask = async (dpop?: string) => {
        const response = await fetch(me, { headers: { authorization: `DPoP ${tokens.access_token}`, ...(dpop ? { dpop } : {}) } });
        return { status: response.status, challenge: response.headers.get('www-authenticate') ?? '', body: (await response.json()) as Record<string, unknown> };
      };
      const good = await ask(await proof({ ath: ath(tokens.access_token) }));
      assert.equal(good.status, 200, JSON.stringify(good));
      assert.equal(good.body.sub, op.subs.alice);
      // Without a proof the request lacks a required part: RFC 6750 §3.1's invalid_request (400), with the DPoP challenge.
      const missing = await ask();
      assert.equal(missing.status, 400, JSON.stringify(missing));
      assert.match(missing.challenge, /^DPoP .*error="invalid_request"/, missing.challenge);
      assert.equal(missing.body.sub, undefined);
      for (const [what, dpop] of [
        ['a proof without ath', await proof({})],
        ["a proof for another token's ath", await proof({ ath: ath('another-token') })],
        ['a proof for another URL', await proof({ ath: ath(tokens.access_token), htu: op.metadata.token_endpoint! })],
      ] as const) {
        const refused = await ask(dpop);
        assert.equal(refused.status, 401, `${what}: ${JSON.stringify(refused)}`);
        assert.match(refused.challenge, /^DPoP .*error="invalid_dpop_proof"/, `${what}: ${refused.challenge}`);
        assert.equal(refused.body.sub, undefined, what);
      }
    });
  });

  describe('discovery (oidcc-discovery-endpoint-verification: ValidateServerMetadataAgainstSchema, CheckForUnexpectedParametersInServerMetadata)', () => {
    /** Registered metadata (OpenID Connect Discovery §3, RFC 8414 §2 and the IANA registry) of other than array type. */
    const URLS = new Set([
      'issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint', 'end_session_endpoint',
      'introspection_endpoint', 'revocation_endpoint', 'device_authorization_endpoint', 'pushed_authorization_request_endpoint',
      'service_documentation', 'op_policy_uri', 'op_tos_uri',
    ]);
    const BOOLEANS = new Set([
      'claims_parameter_supported', 'request_parameter_supported', 'request_uri_parameter_supported', 'require_request_uri_registration',
      'backchannel_logout_supported', 'backchannel_logout_session_supported', 'authorization_response_iss_parameter_supported',
      'require_pushed_authorization_requests', 'client_id_metadata_document_supported',
    ]);
    /** Registered metadata whose value is an array of strings. */
    const ARRAYS = new Set([
      'scopes_supported', 'response_types_supported', 'response_modes_supported', 'grant_types_supported', 'acr_values_supported',
      'subject_types_supported', 'id_token_signing_alg_values_supported', 'userinfo_signing_alg_values_supported', 'claims_supported',
      'claim_types_supported', 'display_values_supported', 'ui_locales_supported', 'claims_locales_supported', 'prompt_values_supported',
      'token_endpoint_auth_methods_supported', 'token_endpoint_auth_signing_alg_values_supported', 'code_challenge_methods_supported',
      'introspection_endpoint_auth_methods_supported', 'introspection_endpoint_auth_signing_alg_values_supported',
      'revocation_endpoint_auth_methods_supported', 'revocation_endpoint_auth_signing_alg_values_supported', 'dpop_signing_alg_values_supported',
    ]);
    /** Latchkey's own member, the one the suite warns about (docs/protocol.md, "Running the OpenID Foundation's conformance suite"). */
    const OWN = new Set(['revocation_feed_endpoint']);

    it('every member of the discovery document is registered metadata of its type (URL, boolean, array of strings), but revocation_feed_endpoint, our own and documented; no client authentication algorithm list holds none (RFC 8414 §2); every scope is a scope-token (RFC 6749 §3.3)', async () => {
      const document = (await (await fetch(new URL('/.well-known/openid-configuration', op.issuer))).json()) as Record<string, unknown>;
      for (const [name, value] of Object.entries(document)) {
        if (URLS.has(name) || OWN.has(name)) {
          assert.equal(typeof value, 'string', name);
          assert.equal(new URL(String(value)).origin, new URL(op.issuer).origin, name);
        } else if (BOOLEANS.has(name)) assert.equal(typeof value, 'boolean', name);
        else if (ARRAYS.has(name)) {
          assert.ok(Array.isArray(value) && value.length > 0 && value.every((item) => typeof item === 'string'), `${name}: ${JSON.stringify(value)}`);
        } else assert.fail(`${name} is not registered metadata: the suite warns about it (CheckForUnexpectedParametersInServerMetadata)`);
        if (name.endsWith('_endpoint_auth_signing_alg_values_supported')) assert.ok(!(value as string[]).includes('none'), `${name}: "none" MUST NOT be used (RFC 8414 §2)`);
      }
      // scope-token = 1*NQCHAR (RFC 6749 §3.3; CheckDiscEndpointScopesSupportedSyntax).
      for (const scope of document.scopes_supported as string[]) assert.match(scope, /^[\x21\x23-\x5B\x5D-\x7E]+$/, scope);
    });
  });

  describe('key rotation (oidcc-server-rotate-keys)', () => {
    it('after `latchkey keys rotate --now` the JWKS holds a signing key that was not in it before, with a kid and modulus of its own, and still every key it held (Core §10.1.1; VerifyNewJwksHasNewSigningKey, VerifyNewJwksStillHasOldSigningKey)', async () => {
      type Jwk = { kid: string; n: string; use?: string };
      const jwks = async () => ((await (await fetch(op.metadata.jwks_uri!)).json()) as { keys: Jwk[] }).keys.filter((key) => key.use === undefined || key.use === 'sig');
      const before = await jwks();
      const rotate = await latchkey(op.env, ['keys', 'rotate', '--now']);
      assert.equal(rotate.status, 0, rotate.stderr);
      const after = await eventually(async () => {
        const keys = await jwks();
        assert.ok(keys.some((key) => !before.some((old) => old.kid === key.kid)), 'a new key is published');
        return keys;
      }, 60);
      for (const key of after.filter((candidate) => !before.some((old) => old.kid === candidate.kid))) {
        assert.ok(!before.some((old) => old.n === key.n), `${key.kid}: a new modulus`);
      }
      for (const old of before) assert.ok(after.some((key) => key.kid === old.kid && key.n === old.n), `${old.kid} is still published`);
      // ID tokens still verify against the JWKS as published now, whichever key signs.
      const tokens = await web.redeem(await web.authorize(alice, { prompt: 'none' }));
      await idToken(web, tokens.id_token!);
    });
  });

  describe('registration (oidcc-dynamic plan, RFC 7591)', () => {
    it('no redirect_uris for a code client → invalid_redirect_uri; an initiate_login_uri other than https, or an unknown token_endpoint_auth_method → invalid_client_metadata (Registration §2, RFC 7591 §2, §3.2.2)', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ client_name: 'no redirect uris' }, 'invalid_redirect_uri'],
        [{ redirect_uris: ['https://reg.example.test/cb'], initiate_login_uri: 'http://reg.example.test/login' }, 'invalid_client_metadata'],
        [{ redirect_uris: ['https://reg.example.test/cb'], token_endpoint_auth_method: 'made_up' }, 'invalid_client_metadata'],
      ];
      for (const [metadata, error] of cases) {
        const { status, body } = await register(metadata);
        assert.equal(status, 400, JSON.stringify(metadata));
        assert.equal(body.error, error, JSON.stringify(body));
        assert.equal(body.client_id, undefined);
      }
    });

    it('oidcc-registration-logo-uri, -policy-uri, -tos-uri: a fresh login page for a client registered with them shows its logo and links to its policy and terms (Registration §2; ExpectLoginPageWithLogo, ExpectLoginPageWithPolicyLink, ExpectLoginPageWithTosLink)', async () => {
      const uris = { logo_uri: 'https://branded.example.test/logo.png', policy_uri: 'https://branded.example.test/policy', tos_uri: 'https://branded.example.test/tos' };
      const { status, body } = await register({ redirect_uris: ['https://branded.example.test/callback'], client_name: 'Branded', ...uris });
      assert.equal(status, 201, JSON.stringify(body));
      const branded = await RelyingParty.create(op, String(body.client_id), { secret: String(body.client_secret) }, 'https://branded.example.test/callback');
      const { page } = await branded.authorize(new Agent());
      assert.ok(isLogin(page), `the login page, got ${page.status} ${page.url}`);
      assert.match(page.html, /<img class="client-logo" src="https:\/\/branded\.example\.test\/logo\.png"/);
      assert.match(page.html, /<a href="https:\/\/branded\.example\.test\/policy"[^>]*>Privacy policy of <bdi>Branded<\/bdi><\/a>/);
      assert.match(page.html, /<a href="https:\/\/branded\.example\.test\/tos"[^>]*>Terms of service of <bdi>Branded<\/bdi><\/a>/);
    });
  });
});
