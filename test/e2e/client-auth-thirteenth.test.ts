/**
 * Client authentication attacked, every method discovery advertises at every endpoint that takes it
 * (docs/security-passes.md, thirteenth fresh-eyes passes: client authentication). Basic's
 * form-urlencoding of id and secret (RFC 6749 §2.3.1) through clients we did not write (openid-client,
 * oauth4webapi), empty parts, and private_key_jwt assertions (RFC 7523 §3) with claims and headers
 * an attacker would try, signed with jose, at the token, PAR, introspection and revocation endpoints.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, base64url, type CryptoKey, type JWTPayload } from 'jose';
import * as oauth from 'oauth4webapi';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.js';

const API = 'https://api.example.test';
const REDIRECT = 'https://signer.example.test/callback';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** An id and a secret with every character RFC 6749 §2.3.1's form-urlencoding changes: a colon, a plus, a percent, a space, a slash, `=` and `&`. */
const ODD_ID = 'odd:id+%/=&x';
const ODD_SECRET = 'se:cr+et% /=&-0123456789abcdefghijklmnopqrstuvwxyz';
const POST_SECRET = 'posted-secret-0123456789abcdefghijklmnopqrstuvwxyz';
const insecure = { execute: [oidc.allowInsecureRequests] };
const now = () => Math.floor(Date.now() / 1000);

interface Answer { status: number; body: Record<string, unknown>; text: string }

describe('client authentication attacked, every advertised method at every endpoint (thirteenth passes)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let key: CryptoKey;
  let publicKey: CryptoKey;

  before(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    ({ privateKey: key, publicKey } = pair);
    const grants = [ODD_ID, 'poster', 'signer'].map((client_id) => ({ client_id, scopes: ['read'] }));
    server = await startServer({
      ownRedis: true,
      env: { RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants }]) },
      clients: [
        { client_id: ODD_ID, client_secret: ODD_SECRET, token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'client_credentials'], response_types: ['code'], redirect_uris: [REDIRECT] },
        { client_id: 'poster', client_secret: POST_SECRET, token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
        {
          client_id: 'signer',
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'signer-key', alg: 'RS256', use: 'sig' }] },
          grant_types: ['authorization_code', 'client_credentials'],
          response_types: ['code'],
          redirect_uris: [REDIRECT],
        },
      ],
    });
  });
  after(() => server?.stop());

  const post = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> => {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(params),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown>, text };
  };
  const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
  const encoded = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');

  const tokenFor = async (): Promise<string> => {
    const answer = await post('/token', { grant_type: 'client_credentials', resource: API, scope: 'read' }, basic(encoded(ODD_ID), encoded(ODD_SECRET)));
    assert.equal(answer.status, 200, answer.text);
    return String(answer.body.access_token);
  };

  /** Each endpoint that takes client authentication, with a request it answers once the client is authenticated. */
  const endpoints: { path: string; params: () => Promise<Record<string, string>>; ok: number }[] = [
    { path: '/token', params: async () => ({ grant_type: 'client_credentials', resource: API, scope: 'read' }), ok: 200 },
    { path: '/token/introspection', params: async () => ({ token: await tokenFor() }), ok: 200 },
    // RFC 7009 §2.2: a token the server does not know is answered 200 (a client revokes its own tokens only).
    { path: '/token/revocation', params: async () => ({ token: randomUUID() }), ok: 200 },
    {
      path: '/request',
      params: async () => ({ client_id: 'signer', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }),
      ok: 201,
    },
  ];

  const refused = (answer: Answer, what: string) => {
    assert.ok(answer.status === 400 || answer.status === 401, `${what}: ${answer.status} ${answer.text}`);
    assert.ok(['invalid_client', 'invalid_request'].includes(String(answer.body.error)), `${what}: ${answer.text}`);
    assert.equal(answer.body.access_token, undefined, what);
    assert.equal(answer.body.request_uri, undefined, what);
    assert.equal(answer.body.active, undefined, what);
  };

  it('discovery advertises no mTLS, no client_secret_jwt and no HMAC or none algorithm at any endpoint', async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    for (const [name, value] of Object.entries(metadata)) {
      if (name.endsWith('_auth_methods_supported')) {
        for (const method of value as string[]) assert.ok(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'].includes(method), `${name}: ${method}`);
      }
      if (name.endsWith('_auth_signing_alg_values_supported') && /endpoint/.test(name)) {
        for (const alg of value as string[]) assert.ok(!/^HS|^none$/i.test(alg), `${name}: ${alg}`);
      }
    }
    assert.equal(metadata.tls_client_certificate_bound_access_tokens, undefined);
    assert.equal(metadata.mtls_endpoint_aliases, undefined);
  });

  it('client_secret_basic form-urlencodes id and secret (RFC 6749 §2.3.1): openid-client and oauth4webapi authenticate with a colon, plus, percent, space in each, at every endpoint', async () => {
    const config = await oidc.discovery(new URL(server.issuer), ODD_ID, { token_endpoint_auth_method: 'client_secret_basic' }, oidc.ClientSecretBasic(ODD_SECRET), insecure);
    const tokens = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'read' });
    assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, true);
    await oidc.tokenRevocation(config, tokens.access_token);
    const as = await oauth.processDiscoveryResponse(new URL(server.issuer), await oauth.discoveryRequest(new URL(server.issuer), { [oauth.allowInsecureRequests]: true }));
    const answer = await oauth.clientCredentialsGrantRequest(as, { client_id: ODD_ID }, oauth.ClientSecretBasic(ODD_SECRET), new URLSearchParams({ resource: API, scope: 'read' }), { [oauth.allowInsecureRequests]: true });
    assert.ok((await oauth.processClientCredentialsResponse(as, { client_id: ODD_ID }, answer)).access_token);
  });

  for (const endpoint of endpoints.filter(({ path }) => path !== '/request')) {
    it(`${endpoint.path}: Basic with empty or unencoded parts, the secret split at another colon, or a near secret is refused; the encoded pair is taken`, async () => {
      const params = await endpoint.params();
      const attempts: [string, Record<string, string>][] = [
        ['empty id and secret', basic('', '')],
        ['empty id', basic('', encoded(ODD_SECRET))],
        ['empty secret', basic(encoded(ODD_ID), '')],
        ['unencoded id and secret', basic(ODD_ID, ODD_SECRET)],
        ['the id split at its own colon', basic('odd', `${encoded('id+%/=&x')}:${encoded(ODD_SECRET)}`)],
        ['the secret without its tail', basic(encoded(ODD_ID), encoded(ODD_SECRET.slice(0, -1)))],
        ['the secret with a plus for its space, unencoded', basic(encoded(ODD_ID), encoded(ODD_SECRET.replace(' ', '+')))],
        ['no colon', { authorization: `Basic ${Buffer.from(encoded(ODD_ID)).toString('base64')}` }],
        ['the secret posted as well', { ...basic(encoded(ODD_ID), encoded(ODD_SECRET)) }],
      ];
      for (const [what, headers] of attempts) {
        const extra: Record<string, string> = what === 'the secret posted as well' ? { client_secret: ODD_SECRET } : {};
        refused(await post(endpoint.path, { ...params, ...extra }, headers), what);
      }
      const taken = await post(endpoint.path, params, basic(encoded(ODD_ID), encoded(ODD_SECRET)));
      assert.equal(taken.status, endpoint.ok, taken.text);
    });
  }

  const assertion = (claims: JWTPayload, header: Record<string, unknown> = {}, signWith: CryptoKey | Uint8Array = key) =>
    new SignJWT({ iss: 'signer', sub: 'signer', aud: server.issuer, jti: randomUUID(), iat: now(), exp: now() + 60, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'signer-key', ...header })
      .sign(signWith);
  const unsigned = (claims: JWTPayload) =>
    `${base64url.encode(JSON.stringify({ alg: 'none' }))}.${base64url.encode(JSON.stringify({ iss: 'signer', sub: 'signer', aud: server.issuer, jti: randomUUID(), iat: now(), exp: now() + 60, ...claims }))}.`;
  const withAssertion = (path: string, params: Record<string, string>, value: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    post(path, { ...params, client_assertion_type: ASSERTION_TYPE, client_assertion: value, ...extra }, headers);

  for (const endpoint of endpoints) {
    it(`${endpoint.path}: private_key_jwt assertions an attacker would try are refused (RFC 7523 §3); a genuine one is taken once`, async () => {
      const params = await endpoint.params();
      const pem = new TextEncoder().encode(await exportSPKI(publicKey));
      const jwk = new TextEncoder().encode(JSON.stringify(await exportJWK(publicKey)));
      const attempts: [string, () => Promise<Answer>][] = [
        ['iss not the client', async () => withAssertion(endpoint.path, params, await assertion({ iss: 'poster' }))],
        ['sub not the client', async () => withAssertion(endpoint.path, params, await assertion({ sub: 'poster' }))],
        ['no sub', async () => withAssertion(endpoint.path, params, await assertion({ sub: undefined }))],
        ['no jti', async () => withAssertion(endpoint.path, params, await assertion({ jti: undefined }))],
        ['no exp', async () => withAssertion(endpoint.path, params, await assertion({ exp: undefined }))],
        ['no iat', async () => withAssertion(endpoint.path, params, await assertion({ iat: undefined }))],
        ['exp a year on', async () => withAssertion(endpoint.path, params, await assertion({ exp: now() + 365 * 86400 }))],
        ['exp passed', async () => withAssertion(endpoint.path, params, await assertion({ iat: now() - 600, exp: now() - 300 }))],
        ['nbf an hour on', async () => withAssertion(endpoint.path, params, await assertion({ nbf: now() + 3600 }))],
        ['iat an hour on', async () => withAssertion(endpoint.path, params, await assertion({ iat: now() + 3600, exp: now() + 3660 }))],
        ['aud another server', async () => withAssertion(endpoint.path, params, await assertion({ aud: 'https://evil-as.example.test' }))],
        ['aud the issuer and another server', async () => withAssertion(endpoint.path, params, await assertion({ aud: [server.issuer, 'https://evil-as.example.test'] }))],
        ['aud this endpoint alone', async () => withAssertion(endpoint.path, params, await assertion({ aud: `${server.issuer}${endpoint.path}` }))],
        ['aud the issuer with a trailing slash', async () => withAssertion(endpoint.path, params, await assertion({ aud: `${server.issuer}/` }))],
        ['alg none', async () => withAssertion(endpoint.path, params, unsigned({}))],
        ['HS256 keyed with the public key as PEM', async () => withAssertion(endpoint.path, params, await assertion({}, { alg: 'HS256' }, pem))],
        ['HS256 keyed with the public key as JWK', async () => withAssertion(endpoint.path, params, await assertion({}, { alg: 'HS256' }, jwk))],
        ['PS256 with its key registered for RS256', async () => withAssertion(endpoint.path, params, await assertion({}, { alg: 'PS256' }, (await importJWK(await exportJWK(key), 'PS256')) as CryptoKey))],
        ['a kid it never registered', async () => withAssertion(endpoint.path, params, await assertion({}, { kid: 'other-key' }))],
        ['signed by another key under its kid', async () => withAssertion(endpoint.path, params, await assertion({}, {}, (await generateKeyPair('RS256')).privateKey))],
        ['a client_id of another client beside it', async () => withAssertion(endpoint.path, params, await assertion({}), { client_id: 'poster' })],
        ['a posted secret beside it', async () => withAssertion(endpoint.path, params, await assertion({}), { client_secret: POST_SECRET })],
        ['Basic beside it', async () => withAssertion(endpoint.path, params, await assertion({}), {}, basic('signer', 'x'))],
        ['another assertion type', async () => withAssertion(endpoint.path, params, await assertion({}), { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' })],
      ];
      for (const [what, attempt] of attempts) refused(await attempt(), what);
      const genuine = await assertion({});
      const taken = await withAssertion(endpoint.path, params, genuine);
      assert.equal(taken.status, endpoint.ok, taken.text);
      refused(await withAssertion(endpoint.path, await endpoint.params(), genuine), 'the genuine assertion replayed');
    });
  }

  it('client_secret_post: a secret posted by a client that registered it is taken; empty, missing, another client\'s, or beside Basic it is refused, at every endpoint', async () => {
    for (const endpoint of endpoints.filter(({ path }) => path !== '/request')) {
      const params = await endpoint.params();
      refused(await post(endpoint.path, { ...params, client_id: 'poster', client_secret: '' }), `${endpoint.path}: an empty secret`);
      refused(await post(endpoint.path, { ...params, client_id: 'poster' }), `${endpoint.path}: no secret`);
      refused(await post(endpoint.path, { ...params, client_id: 'poster', client_secret: ODD_SECRET }), `${endpoint.path}: another client's secret`);
      refused(await post(endpoint.path, { ...params, client_id: 'poster', client_secret: POST_SECRET }, basic('poster', encoded(POST_SECRET))), `${endpoint.path}: beside Basic`);
      const taken = await post(endpoint.path, { ...params, client_id: 'poster', client_secret: POST_SECRET });
      assert.equal(taken.status, endpoint.ok, `${endpoint.path}: ${taken.text}`);
    }
  });

  it("a request naming another host (Host, X-Forwarded-Host) gets no endpoint URL of that host into the assertion audiences it takes (the engine derives them from the request's href)", async () => {
    const evil = 'evil-as.example.test';
    const raw = (aud: JWTPayload['aud'], headers: Record<string, string>) =>
      assertion({ aud }).then((value) => new Promise<Answer>((resolve, reject) => {
        const body = new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read', client_assertion_type: ASSERTION_TYPE, client_assertion: value }).toString();
        const sent = request(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } }, (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => (text += chunk.toString()));
          response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text) as Record<string, unknown>, text }));
        });
        sent.on('error', reject);
        sent.end(body);
      }));
    const elsewhere: Record<string, string>[] = [{ host: evil }, { 'x-forwarded-host': evil, 'x-forwarded-proto': 'https' }];
    for (const headers of elsewhere) {
      for (const aud of [`http://${evil}/token`, `https://${evil}/token`, [server.issuer, `http://${evil}/token`], [server.issuer, `https://${evil}/token`]]) {
        refused(await raw(aud, headers), `aud ${JSON.stringify(aud)} with ${JSON.stringify(headers)}`);
      }
    }
    assert.equal((await raw(server.issuer, { host: evil })).status, 200, 'the issuer is the audience whatever the Host');
  });

  it('an unknown client and a known one with a wrong credential get one answer, byte for byte, by every method at every endpoint (no client ids to enumerate)', async () => {
    const answerOf = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
      return `${response.status} ${response.headers.get('www-authenticate')} ${await response.text()}`;
    };
    for (const endpoint of endpoints.filter(({ path }) => path !== '/request')) {
      const params = await endpoint.params();
      assert.equal(await answerOf(endpoint.path, params, basic('nobody', encoded(ODD_SECRET))), await answerOf(endpoint.path, params, basic(encoded(ODD_ID), 'wrong-secret')), `${endpoint.path}: Basic`);
      assert.equal(await answerOf(endpoint.path, { ...params, client_id: 'nobody', client_secret: POST_SECRET }), await answerOf(endpoint.path, { ...params, client_id: 'poster', client_secret: 'wrong-secret' }), `${endpoint.path}: posted`);
      const forged = (await generateKeyPair('RS256')).privateKey;
      assert.equal(
        await answerOf(endpoint.path, { ...params, client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion({ iss: 'nobody', sub: 'nobody' }) }),
        await answerOf(endpoint.path, { ...params, client_assertion_type: ASSERTION_TYPE, client_assertion: await assertion({}, {}, forged) }),
        `${endpoint.path}: assertion`,
      );
    }
  });

  it('/request: pushed authorization requests by Basic with empty or unencoded parts are refused; openid-client pushes with the encoded pair', async () => {
    const params = { client_id: ODD_ID, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };
    for (const [what, headers] of [
      ['empty secret', basic(encoded(ODD_ID), '')],
      ['unencoded id and secret', basic(ODD_ID, ODD_SECRET)],
      ['the secret without its tail', basic(encoded(ODD_ID), encoded(ODD_SECRET.slice(0, -1)))],
    ] as const) {
      refused(await post('/request', params, headers), what);
    }
    refused(await post('/request', { ...params, client_secret: ODD_SECRET }, basic(encoded(ODD_ID), encoded(ODD_SECRET))), 'the secret posted beside Basic');
    const config = await oidc.discovery(new URL(server.issuer), ODD_ID, { token_endpoint_auth_method: 'client_secret_basic' }, oidc.ClientSecretBasic(ODD_SECRET), insecure);
    const pushed = await oidc.buildAuthorizationUrlWithPAR(config, { scope: 'openid', redirect_uri: REDIRECT, code_challenge: params.code_challenge, code_challenge_method: 'S256' });
    assert.ok(pushed.searchParams.get('request_uri'));
  });
});
