/**
 * OpenID Connect Config OP: the discovery document and the JWKS, read as a relying party reads
 * them (OpenID Connect Discovery 1.0, RFC 8414, RFC 7517).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import * as oidc from 'openid-client';
import { startOp, type Op } from './fixture.js';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** A raw GET with a Host header of our choosing (fetch does not let a caller set Host). */
function getWithHost(url: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const target = new URL(url);
    const call = request({ host: '127.0.0.1', port: target.port, path: target.pathname, headers: { host, ...headers } }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => done({ status: response.statusCode ?? 0, body }));
    });
    call.on('error', fail);
    call.end();
  });
}

describe('OpenID Connect Config OP (discovery and keys)', function () {
  this.timeout(30_000);
  let op: Op;
  let raw: Response;
  let metadata: Record<string, unknown>;

  before(async () => {
    op = await startOp();
    raw = await fetch(new URL('/.well-known/openid-configuration', op.issuer));
    metadata = (await raw.clone().json()) as Record<string, unknown>;
  });
  after(() => op?.stop());

  it('the discovery document is served as JSON at /.well-known/openid-configuration (Discovery §4)', () => {
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get('content-type') ?? '', /^application\/json/);
  });

  it('issuer equals the issuer URL the document was fetched for, exactly (Discovery §4.3)', async () => {
    assert.equal(metadata.issuer, op.issuer);
    // openid-client refuses a document whose issuer differs from the one it was asked for.
    const config = await oidc.discovery(new URL(op.issuer), 'anyone', undefined, undefined, { execute: [oidc.allowInsecureRequests] });
    assert.equal(config.serverMetadata().issuer, op.issuer);
  });

  it('OAuth 2.0 Authorization Server Metadata is published too, with the same issuer and endpoints (RFC 8414 §3, RFC 9700 §2.6)', async () => {
    const response = await fetch(new URL('/.well-known/oauth-authorization-server', op.issuer));
    assert.equal(response.status, 200);
    const oauth = (await response.json()) as Record<string, unknown>;
    assert.equal(oauth.issuer, op.issuer);
    assert.equal(oauth.token_endpoint, metadata.token_endpoint);
    assert.equal(oauth.authorization_endpoint, metadata.authorization_endpoint);
  });

  it('sender-constrained tokens are discoverable: DPoP signing algorithms, asymmetric only (RFC 9449 §5.1, RFC 9700 §2.2.1)', () => {
    const algs = metadata.dpop_signing_alg_values_supported as string[];
    assert.ok(algs.length > 0);
    assert.ok(algs.every((alg) => alg !== 'none' && !alg.startsWith('HS')));
  });

  it('has every REQUIRED provider metadata field (Discovery §3)', () => {
    for (const field of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported']) {
      assert.ok(metadata[field] !== undefined, `${field} is present`);
    }
    // RECOMMENDED for a Dynamic OP, and what the Config OP plan reads.
    for (const field of ['userinfo_endpoint', 'registration_endpoint', 'scopes_supported', 'claims_supported']) {
      assert.ok(metadata[field] !== undefined, `${field} is present`);
    }
  });

  it('every endpoint is an absolute URL on the issuer origin, without fragment (Discovery §3, RFC 8414 §2)', () => {
    const origin = new URL(op.issuer).origin;
    for (const [field, value] of Object.entries(metadata)) {
      if (!field.endsWith('_endpoint') && field !== 'jwks_uri') continue;
      const url = new URL(String(value));
      assert.equal(url.origin, origin, field);
      assert.equal(url.hash, '', field);
    }
  });

  it('X-Forwarded-Host and X-Forwarded-Proto are not trusted unless configured behind a proxy (RFC 9700 §4.13)', async () => {
    const url = new URL('/.well-known/openid-configuration', op.issuer);
    const { status, body } = await getWithHost(url.href, url.host, { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' });
    assert.equal(status, 200);
    const document = JSON.parse(body) as Record<string, string>;
    assert.equal(document.issuer, op.issuer);
    assert.equal(new URL(document.token_endpoint!).origin, new URL(op.issuer).origin);
    assert.doesNotMatch(body, /evil\.example/, "no endpoint points at the attacker's host");
  });

  it('scopes_supported lists openid; response_types_supported is exactly ["code"] (Discovery §3, RFC 9700 §2.1.2)', () => {
    assert.ok((metadata.scopes_supported as string[]).includes('openid'));
    assert.deepEqual(metadata.response_types_supported, ['code']);
  });

  it('grant_types_supported has neither implicit nor password (RFC 9700 §2.1.2, §2.4)', () => {
    const grants = metadata.grant_types_supported as string[];
    assert.ok(grants.includes('authorization_code'));
    assert.ok(!grants.includes('implicit'));
    assert.ok(!grants.includes('password'));
  });

  it('id_token_signing_alg_values_supported includes RS256 and never none (Discovery §3, Core §15.1)', () => {
    const algs = metadata.id_token_signing_alg_values_supported as string[];
    assert.ok(algs.includes('RS256'));
    assert.ok(!algs.includes('none'));
  });

  it('token_endpoint_auth_signing_alg_values_supported holds no none and no HMAC algorithm (Discovery §3)', () => {
    const algs = metadata.token_endpoint_auth_signing_alg_values_supported as string[];
    assert.ok(algs.length > 0);
    assert.ok(!algs.includes('none'));
    assert.ok(algs.every((alg) => !alg.startsWith('HS')), `asymmetric only: ${algs.join(' ')}`);
  });

  it('code_challenge_methods_supported is ["S256"]: PKCE support is discoverable (RFC 9700 §2.1.1, RFC 8414 §2)', () => {
    assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  });

  it('authorization_response_iss_parameter_supported is true (RFC 9207 §3)', () => {
    assert.equal(metadata.authorization_response_iss_parameter_supported, true);
  });

  it('claims_supported lists the claims the OP releases; claims_parameter_supported is true (Discovery §3)', () => {
    const claims = metadata.claims_supported as string[];
    for (const claim of ['sub', 'iss', 'auth_time', 'name', 'given_name', 'family_name', 'email', 'email_verified', 'locale']) {
      assert.ok(claims.includes(claim), claim);
    }
    assert.equal(metadata.claims_parameter_supported, true);
  });

  it('request objects are not offered, and say so (Discovery §3: request_parameter_supported, request_uri_parameter_supported)', () => {
    assert.ok(metadata.request_parameter_supported === undefined || metadata.request_parameter_supported === false);
    assert.equal(metadata.request_uri_parameter_supported, false);
  });

  it('subject_types_supported is ["public"] (Discovery §3)', () => {
    assert.deepEqual(metadata.subject_types_supported, ['public']);
  });

  it('advertises logout: end_session_endpoint, back-channel logout with sessions (RP-Initiated Logout §2.1, Back-Channel Logout §2.1)', () => {
    assert.ok(metadata.end_session_endpoint);
    assert.equal(metadata.backchannel_logout_supported, true);
    assert.equal(metadata.backchannel_logout_session_supported, true);
  });

  it('no member of either metadata document has zero elements, and both are JSON (Discovery §4.2, RFC 8414 §3.2: "Claims with zero elements MUST be omitted")', async () => {
    const oauth = await fetch(new URL('/.well-known/oauth-authorization-server', op.issuer));
    assert.match(oauth.headers.get('content-type') ?? '', /^application\/json/);
    for (const [name, document] of [['openid-configuration', metadata], ['oauth-authorization-server', (await oauth.json()) as Record<string, unknown>]] as const) {
      for (const [member, value] of Object.entries(document)) {
        assert.ok(!(Array.isArray(value) && value.length === 0), `${name}: ${member} is an empty array`);
        assert.notEqual(value, null, `${name}: ${member} is null`);
        assert.notEqual(value, '', `${name}: ${member} is empty`);
      }
    }
  });

  it('what is not offered is not advertised: no front-channel logout, no session management iframe, no WebFinger (Front-Channel Logout §3, Session Management §3.3, Discovery §2: issuer discovery is optional)', async () => {
    assert.ok(!metadata.frontchannel_logout_supported);
    assert.ok(!metadata.frontchannel_logout_session_supported);
    assert.equal(metadata.check_session_iframe, undefined);
    const webfinger = await fetch(new URL(`/.well-known/webfinger?resource=${encodeURIComponent('acct:alice@localhost')}&rel=${encodeURIComponent('http://openid.net/specs/connect/1.0/issuer')}`, op.issuer));
    assert.equal(webfinger.status, 404);
  });

  it('every response_modes_supported value is one a code response can take; each grant_types_supported value has its endpoint listed (Discovery §3, RFC 8414 §2, RFC 8628 §4)', () => {
    assert.deepEqual([...(metadata.response_modes_supported as string[])].sort(), ['form_post', 'fragment', 'query']);
    const grants = metadata.grant_types_supported as string[];
    assert.ok(grants.includes('authorization_code') && metadata.authorization_endpoint && metadata.token_endpoint);
    if (grants.includes('urn:ietf:params:oauth:grant-type:device_code')) assert.ok(metadata.device_authorization_endpoint);
    assert.ok(!grants.includes('urn:openid:params:grant-type:ciba'));
    assert.equal(metadata.backchannel_authentication_endpoint, undefined);
  });

  it('no in-browser (postMessage) response mode is offered (RFC 9700 §2.6, §4.17)', () => {
    const modes = (metadata.response_modes_supported as string[] | undefined) ?? [];
    assert.ok(!modes.includes('web_message'));
  });

  it('the JWKS at jwks_uri is a JWK Set of public signing keys with unique kids (RFC 7517 §5, Discovery §3)', async () => {
    const response = await fetch(String(metadata.jwks_uri));
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /json/);
    const { keys } = (await response.json()) as { keys: Record<string, unknown>[] };
    assert.ok(keys.length >= 1);
    const kids = keys.map((key) => key.kid);
    assert.equal(new Set(kids).size, kids.length, 'kids are unique');
    for (const key of keys) {
      assert.equal(key.kty, 'RSA');
      assert.ok(typeof key.kid === 'string' && key.kid.length > 0);
      assert.ok(key.use === undefined || key.use === 'sig');
      assert.ok(key.alg === undefined || key.alg === 'RS256');
    }
  });

  it('the JWKS holds only public keys: no private or symmetric key members (RFC 7517 §9.3, RFC 7518 §6)', async () => {
    const { keys } = (await (await fetch(String(metadata.jwks_uri))).json()) as { keys: Record<string, unknown>[] };
    for (const key of keys) {
      for (const member of PRIVATE_MEMBERS) assert.equal(key[member], undefined, `${String(key.kid)} has no "${member}"`);
      assert.notEqual(key.kty, 'oct');
    }
  });

  it('RSA signing keys are at least 2048 bits (RFC 7518 §3.3)', async () => {
    const { keys } = (await (await fetch(String(metadata.jwks_uri))).json()) as { keys: { n: string }[] };
    for (const key of keys) assert.ok(Buffer.from(key.n, 'base64url').length * 8 >= 2048);
  });
});
