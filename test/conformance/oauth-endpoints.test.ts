/**
 * The OAuth 2.0 endpoints to the letter of their RFCs, where the OpenID plans check them thinly:
 * the token endpoint's headers and client authentication (RFC 6749 §2.3.1, §5.1), pushed
 * authorization requests (RFC 9126), and what the metadata says introspection and revocation
 * accept (RFC 8414 §2) against what they do accept (RFC 7662, RFC 7009).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Agent, ALICE, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'endpoints-client-secret-with-plenty-of-entropy-0123456';
const API = 'https://api.example.test';
// RFC 6749 §2.3.1: client_secret_basic form-urlencodes id and secret before Base64; these need it.
const ODD_ID = 'odd:client id+1';
const ODD_SECRET = 'odd secret:with+reserved%chars/=&and-plenty-of-entropy-0123456';

/** What discovery lists for client assertions (checked below against what is served), and each one's key type. */
const ASSERTION_KEYS = { RS256: 'RS256', PS256: 'PS256', ES256: 'ES256', EdDSA: 'Ed25519', Ed25519: 'Ed25519' } as const;
type AssertionAlg = keyof typeof ASSERTION_KEYS;

type Answer = { status: number; headers: Headers; body: Record<string, unknown> };

describe('OAuth 2.0 endpoints to the letter (RFC 6749 §2.3.1, §5; RFC 7009; RFC 7662; RFC 8414; RFC 9126)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let post: RelyingParty;
  let pkjwt: RelyingParty;
  const assertionKeys = {} as Record<AssertionAlg, Awaited<ReturnType<typeof generateKeyPair>>>;

  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    for (const [alg, type] of Object.entries(ASSERTION_KEYS)) assertionKeys[alg as AssertionAlg] = await generateKeyPair(type, { extractable: true });
    // One client holding a key of each kind, and one that registered token_endpoint_auth_signing_alg ES256 with the same keys.
    const everyKey = { keys: await Promise.all(Object.entries(assertionKeys).map(async ([kid, pair]) => ({ ...(await exportJWK(pair.publicKey)), kid, use: 'sig' }))) };
    const machine = { grant_types: ['client_credentials'], response_types: [], redirect_uris: [], post_logout_redirect_uris: [] };
    op = await startOp({
      people: [ALICE],
      env: { RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants: ['web', 'post', 'pkjwt', ODD_ID, 'keys', 'es256'].map((client_id) => ({ client_id, scopes: ['read'] })) }]) },
      clients: [
        webClient('web', SECRET, { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] }),
        webClient('other', SECRET),
        { ...webClient('post', SECRET, machine), token_endpoint_auth_method: 'client_secret_post' },
        {
          client_id: 'pkjwt',
          client_name: 'Conformance pkjwt',
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: 'ES256',
          jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'pkjwt-1', alg: 'ES256', use: 'sig' }] },
          ...machine,
        },
        { ...webClient(ODD_ID, ODD_SECRET, machine), client_name: 'Conformance odd' },
        { client_id: 'keys', client_name: 'Conformance keys', token_endpoint_auth_method: 'private_key_jwt', jwks: everyKey, ...machine },
        { client_id: 'es256', client_name: 'Conformance es256', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: everyKey, ...machine },
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example.test/callback'], grant_types: ['authorization_code', 'refresh_token'] },
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    post = await RelyingParty.create(op, 'post', { method: oidc.ClientSecretPost(SECRET) });
    pkjwt = await RelyingParty.create(op, 'pkjwt', { method: oidc.PrivateKeyJwt({ key: privateKey, kid: 'pkjwt-1' }) });
  });
  after(() => op?.stop());

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  async function postForm(url: string, params: Record<string, string>, authorization?: string): Promise<Answer> {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(authorization && { authorization }) },
      body: new URLSearchParams(params),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  const apiToken = async (rp: RelyingParty) => (await oidc.clientCredentialsGrant(rp.config, { scope: 'read', resource: API })).access_token;

  describe('the token endpoint (RFC 6749 §2.3.1, §5)', () => {
    it('a token response carries Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1)', async () => {
      const answer = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API }, basic('web', SECRET));
      assert.equal(answer.status, 200);
      assert.ok(answer.body.access_token);
      assert.match(answer.headers.get('cache-control') ?? '', /no-store/);
      assert.equal(answer.headers.get('pragma'), 'no-cache');
    });

    it('so does its error response, and those of introspection and pushed authorization requests (RFC 6749 §5.1, §5.2)', async () => {
      const error = await postForm(op.metadata.token_endpoint!, { grant_type: 'authorization_code', code: 'nonsense', redirect_uri: web.redirectUri, code_verifier: 'a'.repeat(43) }, basic('web', SECRET));
      assert.equal(error.body.error, 'invalid_grant');
      const introspection = await postForm(op.metadata.introspection_endpoint!, { token: await apiToken(web) }, basic('web', SECRET));
      assert.equal(introspection.body.active, true);
      const pushed = await postForm(op.metadata.pushed_authorization_request_endpoint!, await pushParams(), basic('web', SECRET));
      assert.equal(pushed.status, 201);
      for (const [name, answer] of Object.entries({ error, introspection, pushed })) {
        assert.match(answer.headers.get('cache-control') ?? '', /no-store/, name);
        assert.equal(answer.headers.get('pragma'), 'no-cache', name);
      }
    });

    it("an error_description keeps to RFC 6749 §5.2's characters, whatever the request sent: token endpoint and pushed requests (the suite's ValidateErrorDescriptionFromTokenEndpointResponseError)", async () => {
      const ALLOWED = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;
      const odd = 'https://api.example.test/"caf\u00e9\\';
      const answers = {
        token: await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: odd }, basic('web', SECRET)),
        pushedResource: await postForm(op.metadata.pushed_authorization_request_endpoint!, await pushParams({ resource: odd }), basic('web', SECRET)),
        pushedRequestUri: await postForm(op.metadata.pushed_authorization_request_endpoint!, await pushParams({ request_uri: 'urn:ietf:params:oauth:request_uri:x' }), basic('web', SECRET)),
      };
      assert.deepEqual(Object.values(answers).map((answer) => [answer.status, answer.body.error]), [[400, 'invalid_target'], [400, 'invalid_target'], [400, 'invalid_request']]);
      for (const [name, answer] of Object.entries(answers)) {
        assert.match(String(answer.body.error_description), ALLOWED, `${name}: ${String(answer.body.error_description)}`);
        assert.match(answer.headers.get('content-type') ?? '', /^application\/json/, name);
      }
    });

    it('client_secret_basic takes a client id and secret form-urlencoded before Base64, reserved characters and all (RFC 6749 §2.3.1)', async () => {
      // openid-client encodes them as §2.3.1 says: the interop case of ids with ':' and secrets with '+', '%', ' '.
      const odd = await RelyingParty.create(op, ODD_ID, { secret: ODD_SECRET });
      assert.ok(await apiToken(odd));
      const answer = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API }, basic(ODD_ID, `${ODD_SECRET}x`));
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
    });

    it('invalid_client over Basic answers 401 with a Basic challenge carrying the error (RFC 6749 §5.2, RFC 6750 §3)', async () => {
      const answer = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials' }, basic('nobody', SECRET));
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
      assert.match(answer.headers.get('www-authenticate') ?? '', /^Basic realm="[^"]+".*error="invalid_client"/);
    });

    it('401 invalid_client: without credentials or after a Basic one, a Basic challenge naming one realm, the issuer; after body credentials, none, so clients read the error (RFC 6749 §5.2, RFC 7662 §2.3, RFC 9110 §11.6.1)', async () => {
      const endpoints = [op.metadata.token_endpoint!, op.metadata.introspection_endpoint!, op.metadata.revocation_endpoint!, op.metadata.pushed_authorization_request_endpoint!];
      const params: Record<string, string> = { grant_type: 'client_credentials', token: 'whatever', ...(await pushParams()) };
      delete params.client_id;
      const ways = [
        ['no credentials', params, undefined, true],
        ['a wrong Basic secret', { ...params, client_id: 'web' }, basic('web', `${SECRET}x`), true],
        ['a wrong client_secret_post', { ...params, client_id: 'post', client_secret: `${SECRET}x` }, undefined, false],
      ] as const;
      for (const endpoint of endpoints) {
        for (const [how, form, authorization, challenged] of ways) {
          const answer = await postForm(endpoint, form, authorization);
          const challenge = answer.headers.get('www-authenticate');
          const what = `${endpoint}, ${how}: ${answer.status} ${JSON.stringify(answer.body)} ${challenge}`;
          assert.equal(answer.status, 401, what);
          assert.equal(answer.body.error, 'invalid_client', what);
          if (!challenged) {
            assert.equal(challenge, null, what);
            continue;
          }
          assert.match(challenge ?? '', /^Basic realm="[^"]+", error="invalid_client"/, what);
          assert.equal(/realm="([^"]+)"/.exec(challenge ?? '')?.[1], op.issuer, what);
        }
      }
      // What a client library makes of the one without a challenge: the body's error.
      const wrong = await RelyingParty.create(op, 'post', { method: oidc.ClientSecretPost(`${SECRET}x`) });
      await assert.rejects(oidc.clientCredentialsGrant(wrong.config, { scope: 'read', resource: API }), (error: oidc.ResponseBodyError) => error.error === 'invalid_client' && error.status === 401);
    });

    it('an Authorization header of another scheme is an unsupported method: 401 invalid_client with the Basic challenge; at introspection a bearer token gets 401 invalid_token with a Bearer challenge (RFC 6749 §5.2, RFC 7662 §2.3, RFC 6750 §3)', async () => {
      const params = { grant_type: 'client_credentials', token: 'whatever', ...(await pushParams()) };
      const endpoints = {
        token: op.metadata.token_endpoint!,
        introspection: op.metadata.introspection_endpoint!,
        revocation: op.metadata.revocation_endpoint!,
        pushed: op.metadata.pushed_authorization_request_endpoint!,
      };
      for (const [name, endpoint] of Object.entries(endpoints)) {
        for (const authorization of ['Bearer some-access-token', 'DPoP some-access-token', 'Digest username="web"']) {
          const answer = await postForm(endpoint, params, authorization);
          const challenge = answer.headers.get('www-authenticate') ?? '';
          const what = `${name}, ${authorization.split(' ')[0]}: ${answer.status} ${JSON.stringify(answer.body)} ${challenge}`;
          assert.equal(answer.status, 401, what);
          const bearerAtIntrospection = name === 'introspection' && authorization.startsWith('Bearer');
          assert.equal(answer.body.error, bearerAtIntrospection ? 'invalid_token' : 'invalid_client', what);
          const expected = bearerAtIntrospection ? `Bearer realm="${op.issuer}", error="invalid_token"` : `Basic realm="${op.issuer}", error="invalid_client"`;
          assert.ok(challenge.startsWith(expected), what);
        }
        // A Basic header that is not one (no colon in its credentials) is malformed: invalid_request.
        const malformed = await postForm(endpoint, params, `Basic ${Buffer.from('no-colon').toString('base64')}`);
        assert.equal(malformed.status, 400, name);
        assert.equal(malformed.body.error, 'invalid_request', name);
      }
    });

    it("a Basic header with an empty secret is a failed client authentication, a public client's too: 401 invalid_client with the Basic challenge at every endpoint that authenticates clients (RFC 6749 §2.3.1, §5.2: \"attempted to authenticate via the Authorization request header field\")", async () => {
      const params = { grant_type: 'client_credentials', token: 'whatever', ...(await pushParams()) };
      delete (params as Record<string, string>).client_id;
      const endpoints = [op.metadata.token_endpoint!, op.metadata.introspection_endpoint!, op.metadata.revocation_endpoint!, op.metadata.pushed_authorization_request_endpoint!];
      for (const endpoint of endpoints) {
        for (const client of ['web', 'spa']) {
          const answer = await postForm(endpoint, params, `Basic ${Buffer.from(`${client}:`).toString('base64')}`);
          const challenge = answer.headers.get('www-authenticate') ?? '';
          const what = `${endpoint}, ${client}: ${answer.status} ${JSON.stringify(answer.body)} ${challenge}`;
          assert.equal(answer.status, 401, what);
          assert.equal(answer.body.error, 'invalid_client', what);
          assert.ok(challenge.startsWith(`Basic realm="${op.issuer}", error="invalid_client"`), what);
        }
      }
    });

    it('an Authorization header may put more than one space after its scheme, and spell the scheme in any case (RFC 9110 §11.1, §11.4; RFC 6750 §2.1)', async () => {
      const credentials = Buffer.from(`web:${SECRET}`).toString('base64');
      let token = '';
      for (const authorization of [`Basic   ${credentials}`, `basic ${credentials}`, `BASIC  ${credentials}`]) {
        const answer = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API }, authorization);
        assert.equal(answer.status, 200, `${authorization.slice(0, 8)}: ${JSON.stringify(answer.body)}`);
        token = String(answer.body.access_token);
      }
      const introspection = await postForm(op.metadata.introspection_endpoint!, { token }, `Basic  ${credentials}`);
      assert.equal(introspection.body.active, true);
      const tokens = await web.redeem(await web.signIn(new Agent(), ALICE));
      for (const scheme of ['Bearer  ', 'bearer ', 'BEARER   ']) {
        const response = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `${scheme}${tokens.access_token}` } });
        assert.equal(response.status, 200, JSON.stringify(scheme));
      }
    });

    it('a parameter given twice is refused with invalid_request, never one of them picked (RFC 6749 §3.2)', async () => {
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('web', SECRET) },
        body: `grant_type=client_credentials&scope=read&scope=read&resource=${encodeURIComponent(API)}`,
      });
      assert.equal(response.status, 400);
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
    });

    it('an endpoint asked with a method it does not take answers 405 with Allow, for programs and for people, the device authorization endpoint too (its path is also the shape of the device resume), the authorization and end-session endpoints naming POST; a path that is no endpoint stays 404 (RFC 9110 §15.5.6; RFC 9126 §2.3 for pushed requests, RFC 8628 §3.1)', async () => {
      const m = op.metadata;
      const cases: [string, string, string][] = [
        [m.pushed_authorization_request_endpoint!, 'GET', 'POST'],
        [m.pushed_authorization_request_endpoint!, 'PUT', 'POST'],
        [m.token_endpoint!, 'GET', 'POST'],
        [m.token_endpoint!, 'DELETE', 'POST'],
        [m.introspection_endpoint!, 'GET', 'POST'],
        [m.revocation_endpoint!, 'GET', 'POST'],
        [m.registration_endpoint!, 'GET', 'POST'],
        [m.jwks_uri!, 'POST', 'GET, HEAD'],
        [`${op.issuer}/.well-known/jwks.json`, 'POST', 'GET, HEAD'],
        [`${op.issuer}/.well-known/oauth-authorization-server`, 'PUT', 'GET, HEAD'],
        [`${op.issuer}/.well-known/openid-configuration`, 'DELETE', 'GET, HEAD'],
        [m.userinfo_endpoint!, 'PUT', 'GET, HEAD, POST'],
        // OIDC Core §3.1.2.1, RP-Initiated Logout §2: POST too (answered before the engine, post-methods.ts).
        [m.authorization_endpoint!, 'PUT', 'GET, HEAD, POST'],
        [m.end_session_endpoint!, 'DELETE', 'GET, HEAD, POST'],
        [`${m.registration_endpoint!}/some-client`, 'POST', 'GET, HEAD, PUT, DELETE'],
        // RFC 8628 §3.1: POST only. Its path is also the shape of the person's device resume
        // (<code_verification>/:uid), whose GET must not answer for it, nor be named in its Allow.
        [m.device_authorization_endpoint!, 'GET', 'POST'],
        [m.device_authorization_endpoint!, 'HEAD', 'POST'],
        [m.device_authorization_endpoint!, 'PUT', 'POST'],
      ];
      for (const [url, method, allow] of cases) {
        const response = await fetch(url, { method, headers: { accept: 'application/json' } });
        assert.equal(response.status, 405, `${method} ${url}`);
        assert.equal(response.headers.get('allow'), allow, `${method} ${url}`);
        if (method === 'HEAD') continue;
        const body = (await response.json()) as { error?: string };
        assert.equal(body.error, 'invalid_request', `${method} ${url}`);
      }
      const page = await fetch(m.token_endpoint!, { headers: { accept: 'text/html' } });
      assert.equal(page.status, 405);
      assert.equal(page.headers.get('allow'), 'POST');
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      const nowhere = await fetch(`${m.token_endpoint!}/nowhere`, { method: 'POST', headers: { accept: 'application/json' } });
      assert.equal(nowhere.status, 404);
      assert.equal(nowhere.headers.get('allow'), null);
    });

    it('a malformed token request is invalid_request: no grant_type, no code, a JSON body, two client authentication methods, a client_id unlike the authenticated one (RFC 6749 §2.3, §3.2, §4.1.3, §5.2)', async () => {
      const token = op.metadata.token_endpoint!;
      const answers = {
        noGrantType: await postForm(token, { code: 'x' }, basic('web', SECRET)),
        noCode: await postForm(token, { grant_type: 'authorization_code', redirect_uri: web.redirectUri }, basic('web', SECRET)),
        twoMethods: await postForm(token, { grant_type: 'client_credentials', client_secret: SECRET }, basic('web', SECRET)),
        otherClientId: await postForm(token, { grant_type: 'client_credentials', client_id: 'other' }, basic('web', SECRET)),
      };
      for (const [name, answer] of Object.entries(answers)) {
        assert.equal(answer.status, 400, name);
        assert.equal(answer.body.error, 'invalid_request', `${name}: ${JSON.stringify(answer.body)}`);
      }
      const json = await fetch(token, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic('web', SECRET) },
        body: JSON.stringify({ grant_type: 'client_credentials', scope: 'read', resource: API }),
      });
      assert.equal(json.status, 400);
      assert.equal(((await json.json()) as { error: string }).error, 'invalid_request');
    });

    it('a body over the 56 KiB the server reads is 413 invalid_request, with Content-Length or chunked, at every endpoint that reads one; one under it is read (RFC 9110 §15.5.14; RFC 9126 §2.3 for pushed requests)', async () => {
      const m = op.metadata;
      const padding = 'x'.repeat(57 * 1024);
      const form = (extra: string) => `grant_type=client_credentials&client_id=web&token=t&response_type=code&redirect_uri=${encodeURIComponent('https://web.example.test/callback')}&pad=${extra}`;
      const endpoints: [string, string, string][] = [
        [m.pushed_authorization_request_endpoint!, 'application/x-www-form-urlencoded', form(padding)],
        [m.token_endpoint!, 'application/x-www-form-urlencoded', form(padding)],
        [m.introspection_endpoint!, 'application/x-www-form-urlencoded', form(padding)],
        [m.revocation_endpoint!, 'application/x-www-form-urlencoded', form(padding)],
        [m.userinfo_endpoint!, 'application/x-www-form-urlencoded', `access_token=t&pad=${padding}`],
        [m.device_authorization_endpoint!, 'application/x-www-form-urlencoded', form(padding)],
        [m.registration_endpoint!, 'application/json', JSON.stringify({ redirect_uris: ['https://dyn.example.test/cb'], client_name: padding })],
      ];
      for (const [url, type, body] of endpoints) {
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': type, authorization: basic('web', SECRET), accept: 'application/json' }, body });
        assert.equal(response.status, 413, url);
        assert.equal(((await response.json()) as { error: string }).error, 'invalid_request', url);
      }
      // Without Content-Length: the body grows past the limit as it is read, at every endpoint,
      // whether form-bodies.ts reads it (token, introspection, revocation, userinfo) or the engine.
      for (const [url, type, body] of endpoints) {
        const chunked = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': type, authorization: basic('web', SECRET), accept: 'application/json' },
          body: new Blob([body]).stream(),
          duplex: 'half',
        } as RequestInit);
        assert.equal(chunked.status, 413, `${url} (chunked)`);
        const answer = (await chunked.json()) as { error: string; error_description: string };
        assert.equal(answer.error, 'invalid_request', url);
        assert.match(answer.error_description, /larger than the 56 KiB/, url);
      }
      // Under the limit, the same request is read (and refused for what it asks, not for its size).
      const under = await postForm(m.token_endpoint!, { grant_type: 'client_credentials', scope: 'nothing-offered', pad: 'x'.repeat(50 * 1024) }, basic('web', SECRET));
      assert.equal(under.status, 400);
      assert.equal(under.body.error, 'invalid_scope');
      // A scope no API offers is not said to be an API's.
      assert.match(String(under.body.error_description), /^scope nothing-offered is no OpenID Connect scope: /);
    });

    it('a body in a content coding (gzip, deflate, br, or one only labelled so) is 415 invalid_request with Accept-Encoding: identity at every endpoint that reads one, the forms posted to the authorization and end-session endpoints too; the same body sent as it is, or labelled identity, is read (RFC 9110 §8.4, §12.5.3, §15.5.16)', async () => {
      const m = op.metadata;
      const tokenForm = `grant_type=client_credentials&scope=read&resource=${encodeURIComponent(API)}`;
      const form = 'application/x-www-form-urlencoded';
      const endpoints: [string, string, string][] = [
        [m.token_endpoint!, form, tokenForm],
        [m.pushed_authorization_request_endpoint!, form, `response_type=code&client_id=web&redirect_uri=${encodeURIComponent(web.redirectUri)}&scope=openid`],
        [m.introspection_endpoint!, form, 'token=t'],
        [m.revocation_endpoint!, form, 'token=t'],
        [m.userinfo_endpoint!, form, 'access_token=t'],
        [m.device_authorization_endpoint!, form, 'client_id=web&scope=openid'],
        [m.registration_endpoint!, 'application/json', JSON.stringify({ redirect_uris: ['https://dyn.example.test/cb'] })],
        [m.authorization_endpoint!, form, `response_type=code&client_id=web&redirect_uri=${encodeURIComponent(web.redirectUri)}&scope=openid`],
        [m.end_session_endpoint!, form, 'client_id=web'],
      ];
      const codings: [string, (body: string) => Buffer][] = [
        ['gzip', (body) => gzipSync(body)],
        ['deflate', (body) => deflateSync(body)],
        ['br', (body) => brotliCompressSync(body)],
        // Labelled, not compressed: read as plain before, so the label changed nothing.
        ['gzip', (body) => Buffer.from(body)],
        ['x-unknown', (body) => Buffer.from(body)],
      ];
      for (const [url, type, body] of endpoints) {
        for (const [coding, encode] of codings) {
          const response = await fetch(url, { method: 'POST', redirect: 'manual', headers: { 'content-type': type, 'content-encoding': coding, authorization: basic('web', SECRET), accept: 'application/json' }, body: encode(body) });
          assert.equal(response.status, 415, `${coding} at ${url}`);
          assert.equal(response.headers.get('accept-encoding'), 'identity', `${coding} at ${url}`);
          assert.equal(((await response.json()) as { error: string }).error, 'invalid_request', `${coding} at ${url}`);
        }
      }
      for (const coding of [undefined, 'identity']) {
        const plain = await fetch(m.token_endpoint!, { method: 'POST', headers: { 'content-type': form, ...(coding ? { 'content-encoding': coding } : {}), authorization: basic('web', SECRET) }, body: tokenForm });
        assert.equal(plain.status, 200, `Content-Encoding: ${coding}`);
        assert.ok(((await plain.json()) as { access_token?: string }).access_token);
      }
    });

    it('GET is not a token request: no token for parameters in a query (RFC 6749 §3.2)', async () => {
      const response = await fetch(`${op.metadata.token_endpoint!}?grant_type=client_credentials&scope=read&resource=${encodeURIComponent(API)}`, {
        headers: { authorization: basic('web', SECRET) },
      });
      assert.ok(response.status >= 400 && response.status < 500, String(response.status));
      assert.equal(((await response.json()) as { access_token?: string }).access_token, undefined);
    });
  });

  describe('introspection and revocation take what the metadata says (RFC 8414 §2, RFC 7662 §2.1, RFC 7009 §2.1)', () => {
    it('introspection_ and revocation_endpoint_auth_methods_supported list the methods the token endpoint takes (introspection those that authenticate: no none, RFC 7662 §2.1)', () => {
      const metadata = op.metadata as Record<string, unknown>;
      assert.ok(op.metadata.token_endpoint_auth_methods_supported?.includes('private_key_jwt'));
      for (const endpoint of ['introspection', 'revocation']) {
        const expected = op.metadata.token_endpoint_auth_methods_supported!.filter((method) => endpoint === 'revocation' || method !== 'none');
        assert.deepEqual(metadata[`${endpoint}_endpoint_auth_methods_supported`], expected, endpoint);
        assert.deepEqual(metadata[`${endpoint}_endpoint_auth_signing_alg_values_supported`], op.metadata.token_endpoint_auth_signing_alg_values_supported, endpoint);
      }
    });

    it('each advertised secret or key method works at introspection and at revocation (openid-client with each method)', async () => {
      for (const rp of [web, post, pkjwt]) {
        const token = await apiToken(rp);
        assert.equal((await oidc.tokenIntrospection(rp.config, token)).active, true, rp.clientId);
        await oidc.tokenRevocation(rp.config, token);
        assert.equal((await oidc.tokenIntrospection(rp.config, token)).active, false, `${rp.clientId}: revoked`);
      }
    });

    it('the two secret methods are one secret: a client registered for client_secret_basic may send it in the body, one registered for client_secret_post in a Basic header (docs/protocol.md, Client authentication)', async () => {
      const inBody = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API, client_id: 'web', client_secret: SECRET });
      assert.equal(inBody.status, 200, JSON.stringify(inBody.body));
      const inHeader = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials', scope: 'read', resource: API }, basic('post', SECRET));
      assert.equal(inHeader.status, 200, JSON.stringify(inHeader.body));
    });

    it('none works too: a public client revokes its own refresh token with its client_id alone (RFC 7009 §5)', async () => {
      const spa = await RelyingParty.create(op, 'spa', {}, 'https://spa.example.test/callback');
      const tokens = await spa.redeem(await spa.signIn(new Agent(), ALICE, { scope: 'openid offline_access', prompt: 'consent' }));
      assert.ok(tokens.refresh_token);
      await oidc.tokenRevocation(spa.config, tokens.refresh_token);
      await assert.rejects(oidc.refreshTokenGrant(spa.config, tokens.refresh_token), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
    });

    it("introspection requires an authenticated caller (RFC 7662 §2.1): none is not listed for it, and a public client with its client_id alone learns nothing, of its own token or another's", async () => {
      assert.ok(!op.metadata.introspection_endpoint_auth_methods_supported!.includes('none'));
      const spa = await RelyingParty.create(op, 'spa', {}, 'https://spa.example.test/callback');
      const tokens = await spa.redeem(await spa.signIn(new Agent(), ALICE));
      for (const token of [tokens.access_token, await apiToken(web)]) {
        const answer = await postForm(op.metadata.introspection_endpoint!, { token, client_id: 'spa' });
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.deepEqual(answer.body, { active: false });
      }
    });

    it("a public client naming another client's token at revocation gets 200 and nothing is revoked: a deliberate departure from RFC 7009 §2.1's \"informed of the error\" (docs/protocol.md, Deliberate departures)", async () => {
      const token = await apiToken(web);
      const answer = await postForm(op.metadata.revocation_endpoint!, { token, client_id: 'spa' });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal((await oidc.tokenIntrospection(web.config, token)).active, true, 'still active');
    });

    it('a confidential client that leaves out its credentials is refused at both: 401 invalid_client (RFC 7662 §2.1, RFC 7009 §2.1)', async () => {
      for (const endpoint of [op.metadata.introspection_endpoint!, op.metadata.revocation_endpoint!]) {
        const answer = await postForm(endpoint, { token: 'whatever', client_id: 'web' });
        assert.equal(answer.status, 401, endpoint);
        assert.equal(answer.body.error, 'invalid_client', endpoint);
      }
    });

    it('an unknown token: introspection answers {"active": false} alone, revocation 200 (RFC 7662 §2.2, RFC 7009 §2.2)', async () => {
      const introspection = await postForm(op.metadata.introspection_endpoint!, { token: 'not-a-token', token_type_hint: 'access_token' }, basic('web', SECRET));
      assert.equal(introspection.status, 200);
      assert.deepEqual(introspection.body, { active: false });
      const revocation = await postForm(op.metadata.revocation_endpoint!, { token: 'not-a-token' }, basic('web', SECRET));
      assert.equal(revocation.status, 200);
    });

    it('a wrong token_type_hint is only a hint: the token is found all the same (RFC 7662 §2.1, RFC 7009 §2.1)', async () => {
      const token = await apiToken(web);
      const answer = await postForm(op.metadata.introspection_endpoint!, { token, token_type_hint: 'refresh_token' }, basic('web', SECRET));
      assert.equal(answer.body.active, true);
    });
  });

  describe('the algorithms discovery lists are those served (RFC 8414 §2, RFC 9449 §5.1)', () => {
    /** A client_credentials request authenticated by an assertion of `client`, signed with `alg` by the key `kid`. */
    async function asserted(client: string, alg: string, kid: AssertionAlg): Promise<Answer> {
      const key = await importJWK(await exportJWK(assertionKeys[kid].privateKey), alg);
      const assertion = await new SignJWT({ iss: client, sub: client, aud: op.issuer, jti: randomUUID() })
        .setProtectedHeader({ alg, kid })
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(key);
      return postForm(op.metadata.token_endpoint!, {
        grant_type: 'client_credentials',
        scope: 'read',
        resource: API,
        client_id: client,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      });
    }

    /** A client_credentials request of `web` with a DPoP proof signed with `alg`. */
    async function proved(alg: string, keyType: string): Promise<Answer> {
      const { publicKey, privateKey } = await generateKeyPair(keyType, { extractable: true });
      const proof = await new SignJWT({ htm: 'POST', htu: op.metadata.token_endpoint!, jti: randomUUID() })
        .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: await exportJWK(publicKey) })
        .setIssuedAt()
        .sign(privateKey);
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('web', SECRET), dpop: proof },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read', resource: API }),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
    }

    it('every token_endpoint_auth_signing_alg_values_supported signs an accepted client assertion', async () => {
      assert.deepEqual([...(op.metadata.token_endpoint_auth_signing_alg_values_supported ?? [])].sort(), Object.keys(ASSERTION_KEYS).sort());
      for (const alg of Object.keys(ASSERTION_KEYS) as AssertionAlg[]) {
        const answer = await asserted('keys', alg, alg);
        assert.equal(answer.status, 200, `${alg}: ${JSON.stringify(answer.body)}`);
      }
    });

    it('an algorithm not listed is refused, though the key could make it: RS384, RS512, PS384 → 401 invalid_client', async () => {
      for (const alg of ['RS384', 'RS512', 'PS384']) {
        const answer = await asserted('keys', alg, 'RS256');
        assert.equal(answer.status, 401, alg);
        assert.equal(answer.body.error, 'invalid_client', alg);
      }
    });

    it("a client's registered token_endpoint_auth_signing_alg is the only one it may use (Registration §2)", async () => {
      assert.equal((await asserted('es256', 'ES256', 'ES256')).status, 200);
      for (const alg of ['RS256', 'EdDSA'] as const) {
        const answer = await asserted('es256', alg, alg);
        assert.equal(answer.status, 401, alg);
        assert.equal(answer.body.error, 'invalid_client', alg);
      }
    });

    it('every dpop_signing_alg_values_supported makes an accepted DPoP proof; RS256, PS256 and ES384 are refused with invalid_dpop_proof', async () => {
      const keyTypes: Record<string, string> = { ES256: 'ES256', EdDSA: 'Ed25519', Ed25519: 'Ed25519' };
      const listed = (op.metadata as Record<string, unknown>).dpop_signing_alg_values_supported as string[];
      assert.deepEqual([...listed].sort(), Object.keys(keyTypes).sort());
      for (const alg of listed) {
        const answer = await proved(alg, keyTypes[alg]!);
        assert.equal(answer.status, 200, `${alg}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.token_type, 'DPoP', alg);
      }
      for (const alg of ['RS256', 'PS256', 'ES384']) {
        const answer = await proved(alg, alg);
        assert.equal(answer.status, 400, alg);
        assert.equal(answer.body.error, 'invalid_dpop_proof', alg);
      }
    });
  });

  describe('JWT access tokens (RFC 9068)', () => {
    it("a JWT access token is RFC 9068's: typ at+jwt, signed by a key at jwks_uri, with iss, exp, aud, sub, client_id, iat and jti; a client's own has its client_id as sub, a person's the person (§2.1, §2.2, §3)", async () => {
      const jwks = op.jwks;
      const machine = await jwtVerify(await apiToken(web), jwks, { issuer: op.issuer, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
      const flow = await web.signIn(new Agent(), ALICE, { resource: API, scope: 'openid read' });
      const person = await oidc.authorizationCodeGrant(web.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: API });
      const personal = await jwtVerify(person.access_token, jwks, { issuer: op.issuer, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
      for (const [name, { payload, protectedHeader }] of [['client_credentials', machine], ['authorization_code', personal]] as const) {
        assert.equal(protectedHeader.typ, 'at+jwt', name);
        for (const claim of ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti']) assert.ok(payload[claim] !== undefined, `${name}: ${claim}`);
        assert.equal(payload.client_id, 'web', name);
        assert.equal(payload.scope, 'read', name);
      }
      assert.equal(machine.payload.sub, 'web');
      assert.equal(personal.payload.sub, op.subs.alice);
    });

    it("a person's JWT access token says how and when they signed in, as their ID token does (auth_time, acr, amr), the same after a refresh; a client's own says nothing of it (RFC 9068 §2.2.1)", async () => {
      const flow = await web.signIn(new Agent(), ALICE, { resource: API, scope: 'openid read offline_access', prompt: 'consent' });
      const first = await oidc.authorizationCodeGrant(web.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: API });
      const idToken = first.claims()!;
      const refreshed = await oidc.refreshTokenGrant(web.config, first.refresh_token!, { resource: API });
      for (const [name, token] of [['authorization_code', first.access_token], ['refresh_token', refreshed.access_token]] as const) {
        const { payload } = await jwtVerify(token, op.jwks, { issuer: op.issuer, audience: API, typ: 'at+jwt' });
        assert.equal(typeof payload.auth_time, 'number', name);
        assert.equal(payload.auth_time, idToken.auth_time, name);
        assert.equal(payload.acr, idToken.acr, name);
        assert.deepEqual(payload.amr, idToken.amr, name);
      }
      const { payload: own } = await jwtVerify(await apiToken(web), op.jwks, { issuer: op.issuer, audience: API, typ: 'at+jwt' });
      for (const claim of ['auth_time', 'acr', 'amr']) assert.equal(own[claim], undefined, claim);
    });
  });

  describe('DPoP at the token endpoint and userinfo (RFC 9449)', () => {
    it("introspecting a DPoP-bound token says token_type DPoP and cnf.jkt, the proof key's thumbprint (RFC 9449 §6.2, RFC 7662 §2.2)", async () => {
      const keyPair = await generateKeyPair('ES256', { extractable: true });
      const bound = await oidc.clientCredentialsGrant(web.config, { scope: 'read', resource: API }, { DPoP: oidc.getDPoPHandle(web.config, keyPair) });
      assert.equal(bound.token_type, 'dpop');
      const answer = await postForm(op.metadata.introspection_endpoint!, { token: bound.access_token }, basic('web', SECRET));
      assert.equal(answer.body.active, true);
      assert.equal(answer.body.token_type, 'DPoP');
      assert.deepEqual(answer.body.cnf, { jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)) });
    });

    it('a proof with nbf and an exp five minutes ahead is accepted, and the DPoP scheme in any case (RFC 9449 §4.2, §7.1; FAPI 2.0 check-dpop-proof-nbf-exp, access-token-type-header-case-sensitivity)', async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
      const jwk = await exportJWK(publicKey);
      const now = Math.floor(Date.now() / 1000);
      const proof = (htm: string, htu: string, extra: Record<string, unknown> = {}) =>
        new SignJWT({ htm, htu, jti: randomUUID(), iat: now, nbf: now, exp: now + 300, ...extra }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(privateKey);
      const spa = await RelyingParty.create(op, 'spa', {}, 'https://spa.example.test/callback');
      const flow = await spa.signIn(new Agent(), ALICE);
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await proof('POST', op.metadata.token_endpoint!) },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: new URL(flow.page.url).searchParams.get('code')!, redirect_uri: flow.redirectUri, code_verifier: flow.verifier, client_id: 'spa' }),
      });
      const tokens = (await response.json()) as { access_token: string; token_type: string };
      assert.equal(response.status, 200, JSON.stringify(tokens));
      assert.equal(tokens.token_type, 'DPoP');
      const ath = createHash('sha256').update(tokens.access_token).digest('base64url');
      for (const scheme of ['DPoP', 'dpop', 'DPOP']) {
        const info = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `${scheme} ${tokens.access_token}`, dpop: await proof('GET', op.metadata.userinfo_endpoint!, { ath }) } });
        assert.equal(info.status, 200, scheme);
      }
    });
  });

  async function pushParams(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    return {
      client_id: 'web',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: web.redirectUri,
      state: 'pushed-state',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      ...extra,
    };
  }

  describe('pushed authorization requests (RFC 9126)', () => {
    const push = async (extra: Record<string, string> = {}) => postForm(op.metadata.pushed_authorization_request_endpoint!, await pushParams(extra), basic('web', SECRET));
    const authorizeWith = (agent: Agent, clientId: string, requestUri: string) =>
      agent.follow(`${op.metadata.authorization_endpoint!}?${new URLSearchParams({ client_id: clientId, request_uri: requestUri })}`, {}, `https://${clientId}.example.test/callback`);

    it('a push answers 201 with a request_uri and a positive expires_in (RFC 9126 §2.2)', async () => {
      const answer = await push();
      assert.equal(answer.status, 201);
      assert.match(String(answer.body.request_uri), /^urn:ietf:params:oauth:request_uri:/);
      assert.ok(Number(answer.body.expires_in) > 0);
    });

    it('a push is validated as its authorization request would be, and a bad one gets 400, its error and no request_uri: redirect URI, response type, prompt, PKCE method, scope, resource, claims, max_age, id_token_hint (RFC 9126 §2.1, §2.3)', async () => {
      const cases: [Record<string, string>, string][] = [
        [{ redirect_uri: 'https://evil.example/callback' }, 'invalid_request'],
        [{ response_type: 'token' }, 'unsupported_response_type'],
        [{ prompt: 'none login' }, 'invalid_request'],
        [{ code_challenge_method: 'plain' }, 'invalid_request'],
        [{ scope: '' }, 'invalid_scope'],
        [{ resource: 'relative/path' }, 'invalid_target'],
        [{ claims: '{not json' }, 'invalid_request'],
        [{ max_age: 'soon' }, 'invalid_request'],
        [{ id_token_hint: 'not.a.jwt' }, 'invalid_request'],
      ];
      for (const [extra, error] of cases) {
        const answer = await push(extra);
        assert.equal(answer.status, 400, JSON.stringify(extra));
        assert.equal(answer.body.error, error, `${JSON.stringify(extra)}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.request_uri, undefined, JSON.stringify(extra));
        assert.match(answer.headers.get('cache-control') ?? '', /no-store/, JSON.stringify(extra));
      }
    });

    it('a push carrying request_uri is malformed: invalid_request (RFC 9126 §2.1 "MUST NOT be provided", §2.3)', async () => {
      const first = await push();
      const answer = await push({ request_uri: String(first.body.request_uri) });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_request');
      assert.match(String(answer.body.error_description), /request_uri/);
      assert.equal(answer.body.request_uri, undefined);
    });

    it('a push without client authentication is refused with 401 invalid_client (RFC 9126 §2.1)', async () => {
      const answer = await postForm(op.metadata.pushed_authorization_request_endpoint!, await pushParams());
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, 'invalid_client');
    });

    it('the request_uri is single-use: a second use → invalid_request_uri with iss at the redirect URI (RFC 9126 §4, RFC 9207 §2)', async () => {
      const requestUri = String((await push()).body.request_uri);
      const agent = new Agent();
      await web.signIn(agent, ALICE);
      const first = await authorizeWith(agent, 'web', requestUri);
      assert.ok(new URL(first.url).searchParams.get('code'), first.url);
      assert.equal(new URL(first.url).searchParams.get('state'), 'pushed-state');
      const second = await authorizeWith(agent, 'web', requestUri);
      const params = new URL(second.url).searchParams;
      assert.equal(params.get('code'), null);
      assert.equal(params.get('error'), 'invalid_request_uri');
      assert.equal(params.get('iss'), op.issuer);
    });

    it('the request_uri is bound to the client that pushed it: another client gets no code with it (RFC 9126 §4)', async () => {
      const requestUri = String((await push()).body.request_uri);
      const agent = new Agent();
      await web.signIn(agent, ALICE);
      const page = await authorizeWith(agent, 'other', requestUri);
      assert.ok(page.url.startsWith('https://other.example.test/callback') || page.status >= 400, page.url);
      assert.equal(new URL(page.url).searchParams.get('code'), null);
      assert.ok(!page.url.startsWith(web.redirectUri), 'never sent to the pusher either');
    });

    it('a request_uri lives as long as its expires_in, at most a minute: kept no longer than that (plus the clock tolerance), and refused past it while still kept (RFC 9126 §2.2, §4, §7.2)', async () => {
      const answer = await push();
      const lifetime = Number(answer.body.expires_in);
      assert.ok(Number.isInteger(lifetime) && lifetime > 0 && lifetime <= 60, `expires_in ${lifetime}`);
      const requestUri = String(answer.body.request_uri);
      // What the OP keeps, read where it keeps it: the operator's Redis.
      const raw = new Redis(op.env.REDIS_URL!);
      try {
        const key = `lk:oidc:PushedAuthorizationRequest:${requestUri.slice('urn:ietf:params:oauth:request_uri:'.length)}`;
        const kept = await raw.ttl(key);
        assert.ok(kept > 0 && kept <= lifetime + 15, `kept for ${kept} s against expires_in ${lifetime}`);
        // Its lifetime over (the stored expiry moved into the past), though the store still holds it:
        const stored = JSON.parse((await raw.hget(key, 'p'))!) as { iat: number; exp: number };
        const now = Math.floor(Date.now() / 1000);
        await raw.hset(key, 'p', JSON.stringify({ ...stored, iat: now - lifetime - 1, exp: now - 1 }));
        const page = await authorizeWith(new Agent(), 'web', requestUri);
        assert.ok(page.url.startsWith(web.redirectUri), page.url);
        assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request_uri');
        assert.equal(new URL(page.url).searchParams.get('code'), null);
      } finally {
        raw.disconnect();
      }
    });

    it('an unknown request_uri → invalid_request_uri (RFC 9126 §4)', async () => {
      const page = await authorizeWith(new Agent(), 'web', 'urn:ietf:params:oauth:request_uri:never-pushed');
      assert.ok(page.url.startsWith(web.redirectUri), page.url);
      assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request_uri');
    });

    it('the pushed parameters win over any sent beside request_uri at the authorization endpoint (RFC 9126 §4)', async () => {
      const requestUri = String((await push()).body.request_uri);
      const agent = new Agent();
      await web.signIn(agent, ALICE);
      const url = `${op.metadata.authorization_endpoint!}?${new URLSearchParams({ client_id: 'web', request_uri: requestUri, state: 'injected', redirect_uri: 'https://evil.example/cb' })}`;
      const page = await agent.follow(url, {}, web.redirectUri);
      assert.ok(!page.url.startsWith('https://evil.example'), page.url);
      if (page.url.startsWith(web.redirectUri)) assert.notEqual(new URL(page.url).searchParams.get('state'), 'injected');
    });

    it('a push whose dpop_jkt is not the thumbprint of its DPoP proof key is refused (RFC 9449 §10.1)', async () => {
      const bound = await generateKeyPair('ES256', { extractable: true });
      const other = await generateKeyPair('ES256', { extractable: true });
      const proof = await new SignJWT({ htm: 'POST', htu: op.metadata.pushed_authorization_request_endpoint!, jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(other.publicKey) })
        .setIssuedAt()
        .sign(other.privateKey);
      const response = await fetch(op.metadata.pushed_authorization_request_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('web', SECRET), dpop: proof },
        body: new URLSearchParams(await pushParams({ dpop_jkt: await calculateJwkThumbprint(await exportJWK(bound.publicKey)) })),
      });
      assert.equal(response.status, 400);
      const body = (await response.json()) as { error: string; request_uri?: string };
      assert.ok(['invalid_request', 'invalid_dpop_proof'].includes(body.error), body.error);
      assert.equal(body.request_uri, undefined);
    });
  });
});
