/**
 * Sender-constrained tokens (DPoP, RFC 9449) and pushed authorization requests (PAR, RFC 9126) as a
 * client meets them: openid-client (which speaks both) pushes its request with a DPoP proof, a
 * person signs in, the code and refresh token are redeemed with proofs, and the token is used at a
 * resource server built with latchkey/resource-server. Then the attacks each defence is for, by
 * hand-made proofs (jose). Two Latchkey instances share one Redis: a DPoP nonce one issues is
 * good at the other; the second also has par.required on.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer, RotatingNonces, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const REDIRECT = 'https://spa.example.test/callback';
const PASSWORD = 'dpop and par test password';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const OPS = { id: 'ops', secret: 'ops-admin-client-secret-with-entropy-0123456789' };
const CLIENTS = [
  {
    client_id: 'spa',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid offline_access read',
    dpop_bound_access_tokens: true,
    require_pushed_authorization_requests: true,
  },
  { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] },
  // A public client that may use DPoP but need not: it may start without and take it up later.
  { client_id: 'spa-later', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
  machineClient(RS),
  machineClient(OPS),
];

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };
const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

/** A DPoP proof made by hand, each claim overridable (undefined leaves it out). */
async function proof(key: KeyPair, claims: Record<string, unknown>): Promise<string> {
  const jwk = await exportJWK(key.publicKey);
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
    .sign(key.privateKey);
}

describe('e2e: DPoP-bound tokens and pushed authorization requests', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  let other: TestServer;
  let config: oidc.Configuration;
  let key: KeyPair;
  let tokens: oidc.TokenEndpointResponse;
  /** The helper as most APIs use it; `strict` also asks for its own nonces. */
  let helper: ResourceServer;
  let strict: ResourceServer;
  let api: Server;
  let apiUrl: string;

  before(async () => {
    redis = await startRedisServer();
    const env = { RESOURCE_SERVERS, DPOP_REQUIRE_NONCE: 'true', REGISTRATION_OPEN: 'true' };
    server = await startServer({ redisUrl: redis.url, clients: CLIENTS, env });
    other = await startServer({ redisUrl: redis.url, clients: CLIENTS, env: { ...env, PAR_REQUIRED: 'true' } });
    await server.accounts.create('dora', PASSWORD);
    await grantFeed(server, RS.id);
    const options = { issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret };
    helper = await createResourceServer(options);
    strict = await createResourceServer({ ...options, dpop: { nonces: new RotatingNonces() } });
    // The API: what docs/resource-servers.md shows, on node:http.
    api = createServer((request, response) => {
      const url = `${apiUrl}${request.url}`;
      strict
        .verify(request.headers.authorization, { scopes: ['read'], dpop: { proof: request.headers.dpop, method: request.method!, url } })
        .then((claims) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: claims.sub })))
        .catch((error: unknown) => {
          if (!(error instanceof TokenRejected)) return response.writeHead(500).end();
          response.setHeader('www-authenticate', strict.challenge(error));
          if (error.dpopNonce) response.setHeader('dpop-nonce', error.dpopNonce);
          response.writeHead(error.status).end();
        });
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://localhost:${(api.address() as AddressInfo).port}`;

    config = await oidc.discovery(new URL(server.issuer), 'spa', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    key = await generateKeyPair('ES256', { extractable: true });
  });
  after(async () => {
    helper?.close();
    strict?.close();
    api?.close();
    await other?.stop();
    await server?.stop();
    await redis?.stop();
  });

  /** PAR with a DPoP proof (openid-client retries with the nonce it is told), the person's steps, then the code with a proof. */
  async function signIn(dpop: oidc.DPoPHandle) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(
      config,
      {
        redirect_uri: REDIRECT,
        scope: 'openid offline_access read',
        resource: API,
        prompt: 'consent',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      },
      { DPoP: dpop },
    );
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'dora', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(page.url.startsWith(REDIRECT), page.url);
    return { url, agent, callback: new URL(page.url), verifier };
  }

  it('PAR + DPoP code flow with openid-client: a DPoP-bound token, accepted by the resource server with its proof', async () => {
    const dpop = oidc.getDPoPHandle(config, key);
    const flow = await signIn(dpop);
    // dpop_bound_access_tokens: the code is not redeemed without a proof (and not spent by the attempt).
    await assert.rejects(oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API }, { DPoP: dpop });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString()) as { cnf?: { jkt?: string } };
    assert.equal(claims.cnf?.jkt, await calculateJwkThumbprint(await exportJWK(key.publicKey)));
    // The API asks for its own nonce first (use_dpop_nonce); openid-client retries with it.
    const response = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${apiUrl}/things?page=1`), 'GET', undefined, undefined, { DPoP: dpop });
    assert.equal(response.status, 200);
    assert.ok(((await response.json()) as { sub: string }).sub);

    // RFC 9126 §7.3: a request_uri is single-use.
    const again = await flow.agent.follow(flow.url.href, {}, REDIRECT);
    assert.ok(again.url.startsWith(REDIRECT), again.url);
    assert.equal(new URL(again.url).searchParams.get('error'), 'invalid_request_uri');
  });

  it('a code pushed with a DPoP proof is bound to that key: another key cannot redeem it, nor spend it (RFC 9449 §10, §11.9)', async () => {
    const flow = await signIn(oidc.getDPoPHandle(config, key));
    const thief = oidc.getDPoPHandle(config, await generateKeyPair('ES256', { extractable: true }));
    await assert.rejects(oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API }, { DPoP: thief }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    // The thief's attempt spent nothing: the client's own proof redeems the code.
    const own = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API }, { DPoP: oidc.getDPoPHandle(config, key) });
    assert.equal(own.token_type.toLowerCase(), 'dpop');
  });

  it("a code bound with dpop_jkt at the authorization endpoint is redeemed only with that key's proof, and a request without it (none, or another key's) does not spend it, as a wrong code_verifier does not (RFC 9449 §10, RFC 7636 §4.6)", async () => {
    // WEB is a confidential client without dpop_bound_access_tokens: the code is bound by dpop_jkt alone.
    const web = await oidc.discovery(new URL(server.issuer), WEB.id, undefined, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(web, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      dpop_jkt: await calculateJwkThumbprint(await exportJWK(key.publicKey)),
    });
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'dora', password: PASSWORD, stopAt: REDIRECT });
    const callback = new URL(page.url);
    assert.ok(callback.searchParams.get('code'), page.url);
    const thief = oidc.getDPoPHandle(web, await generateKeyPair('ES256', { extractable: true }));
    for (const options of [undefined, { DPoP: thief }]) {
      await assert.rejects(oidc.authorizationCodeGrant(web, callback, { pkceCodeVerifier: verifier }, undefined, options), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_grant', `${options ? "another key's proof" : 'no proof'}: ${error.message}`);
        return true;
      });
    }
    const own = await oidc.authorizationCodeGrant(web, callback, { pkceCodeVerifier: verifier }, undefined, { DPoP: oidc.getDPoPHandle(web, key) });
    assert.equal(own.token_type.toLowerCase(), 'dpop');
    // Once redeemed, it is spent as ever: presented again (even with the key's proof) it is refused.
    await assert.rejects(oidc.authorizationCodeGrant(web, callback, { pkceCodeVerifier: verifier }, undefined, { DPoP: oidc.getDPoPHandle(web, key) }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
  });

  it('a request_uri is good only for the client that pushed it, and an unknown one is refused (RFC 9126 §7.1, §7.5)', async () => {
    const pushed = await oidc.buildAuthorizationUrlWithPAR(
      config,
      { redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' },
      { DPoP: oidc.getDPoPHandle(config, key) },
    );
    const requestUri = pushed.searchParams.get('request_uri')!;
    const cases = [
      [WEB.id, requestUri, 'invalid_request_object'],
      ['spa', `${requestUri.slice(0, -4)}AAAA`, 'invalid_request_uri'],
    ] as const;
    for (const [clientId, uri, expected] of cases) {
      const page = await new Agent().follow(`${server.url}/auth?${new URLSearchParams({ client_id: clientId, request_uri: uri })}`, {}, REDIRECT);
      assert.ok(page.url.startsWith(REDIRECT), `${clientId}: ${page.status} ${page.url}`);
      assert.equal(new URL(page.url).searchParams.get('error'), expected, page.url);
    }
  });

  it('introspection shows cnf.jkt and token_type DPoP to the API that introspects it (RFC 9449 §6.2)', async () => {
    const answer = await introspect(server.url, RS, tokens.access_token);
    assert.equal(answer.active, true);
    assert.equal(answer.token_type, 'DPoP');
    assert.deepEqual(answer.cnf, { jkt: await calculateJwkThumbprint(await exportJWK(key.publicKey)) });
  });

  it("a public client's refresh token is bound too: no proof or another key's → invalid_grant; the key's proof → a new bound token (RFC 9449 §5)", async () => {
    const another = await generateKeyPair('ES256', { extractable: true });
    for (const options of [undefined, { DPoP: oidc.getDPoPHandle(config, another) }]) {
      await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, options), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_grant');
        return true;
      });
    }
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(config, key) });
    assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
    assert.ok(refreshed.refresh_token);
  });

  it("a public client that takes up DPoP at a refresh gets a refresh token bound to that key: without its proof, or with another key's, the new one is invalid_grant (RFC 9449 §5)", async () => {
    const later = await oidc.discovery(new URL(server.issuer), 'spa-later', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, later, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const back = await signInSteps(agent, page, { username: 'dora', password: PASSWORD, stopAt: REDIRECT });
    // Redeemed without a proof: a bearer token and a refresh token bound to nothing, as the client asked.
    const unbound = await oidc.authorizationCodeGrant(later, new URL(back.url), { pkceCodeVerifier: verifier });
    assert.equal(unbound.token_type.toLowerCase(), 'bearer');
    // The client takes up DPoP: its refresh, with a proof, answers a DPoP-bound access token and a new
    // refresh token issued to a public client that presented a valid proof, which must be bound to its key.
    const refreshed = await oidc.refreshTokenGrant(later, unbound.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(later, key) });
    assert.equal(refreshed.token_type.toLowerCase(), 'dpop');
    const another = await generateKeyPair('ES256', { extractable: true });
    for (const options of [undefined, { DPoP: oidc.getDPoPHandle(later, another) }]) {
      await assert.rejects(oidc.refreshTokenGrant(later, refreshed.refresh_token!, undefined, options), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_grant', `${options ? "another key's proof" : 'no proof'}: ${error.error_description}`);
        return true;
      });
    }
    // Refused, not spent: the key's own proof still refreshes it, into a token bound to the key again.
    const again = await oidc.refreshTokenGrant(later, refreshed.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(later, key) });
    assert.equal(again.token_type.toLowerCase(), 'dpop');
    await assert.rejects(oidc.refreshTokenGrant(later, again.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
  });

  it("a public client an operator makes require DPoP after a sign-in: its refresh token bound to nothing is invalid_grant with anyone's proof (a thief's copy is not bound to the thief's key), unspent; lifted again, it refreshes (RFC 9449 §5)", async () => {
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    const admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const metadata = { client_id: 'spa-required', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' };
    const write = async (method: string, path: string, body: Record<string, unknown>) => {
      const response = await fetch(`${server.url}/admin/clients${path}`, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.text()}`);
    };
    await write('POST', '', metadata);
    const app = await oidc.discovery(new URL(server.issuer), 'spa-required', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const back = await signInSteps(agent, page, { username: 'dora', password: PASSWORD, stopAt: REDIRECT });
    const unbound = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier });
    assert.equal(unbound.token_type.toLowerCase(), 'bearer');
    // The operator now requires DPoP of the app (against token theft).
    await write('PUT', '/spa-required', { ...metadata, dpop_bound_access_tokens: true });
    const thief = await generateKeyPair('ES256', { extractable: true });
    for (const options of [{ DPoP: oidc.getDPoPHandle(app, thief) }, { DPoP: oidc.getDPoPHandle(app, key) }, undefined]) {
      await assert.rejects(oidc.refreshTokenGrant(app, unbound.refresh_token!, undefined, options), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_grant', `${options ? 'with a proof' : 'without'}: ${error.error_description}`);
        return true;
      });
    }
    // Refused, not spent (nor its grant revoked): lifted again, the app refreshes it.
    await write('PUT', '/spa-required', { ...metadata, dpop_bound_access_tokens: false });
    const refreshed = await oidc.refreshTokenGrant(app, unbound.refresh_token!);
    assert.ok(refreshed.access_token);
  });

  it('userinfo with dpop.requireNonce: a proof without a nonce is 401 with a DPoP use_dpop_nonce challenge and a DPoP-Nonce; openid-client retries with it (RFC 9449 §7.1, §9)', async () => {
    const dpop = oidc.getDPoPHandle(config, key);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(
      config,
      { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' },
      { DPoP: dpop },
    );
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'dora', password: PASSWORD, stopAt: REDIRECT });
    const userinfoTokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier }, undefined, { DPoP: dpop });
    assert.equal(userinfoTokens.token_type.toLowerCase(), 'dpop');
    const endpoint = config.serverMetadata().userinfo_endpoint!;
    const proof = await new SignJWT({ htm: 'GET', htu: endpoint, jti: randomUUID(), ath: ath(userinfoTokens.access_token) })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
      .setIssuedAt()
      .sign(key.privateKey);
    const response = await fetch(endpoint, { headers: { authorization: `DPoP ${userinfoTokens.access_token}`, dpop: proof } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^DPoP .*error="use_dpop_nonce"/);
    assert.ok(response.headers.get('dpop-nonce'), 'the nonce to use');
    // A handle that has not seen the server's nonce yet: openid-client is told it, and retries.
    const info = await oidc.fetchUserInfo(config, userinfoTokens.access_token, oidc.skipSubjectCheck, { DPoP: oidc.getDPoPHandle(config, key) });
    assert.ok(info.sub);
  });

  it('userinfo with a DPoP-bound token sent as Bearer (as oidc-client-ts and @axa-fr/oidc-client send it unless told): 401 invalid_token with the DPoP challenge, its description saying how to present it (RFC 9449 §7.1, §7.2)', async () => {
    const dpop = oidc.getDPoPHandle(config, key);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(
      config,
      { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' },
      { DPoP: dpop },
    );
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'dora', password: PASSWORD, stopAt: REDIRECT });
    const bound = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier }, undefined, { DPoP: dpop });
    assert.equal(bound.token_type.toLowerCase(), 'dpop');
    const endpoint = config.serverMetadata().userinfo_endpoint!;
    const response = await fetch(endpoint, { headers: { authorization: `Bearer ${bound.access_token}` } });
    assert.equal(response.status, 401);
    const body = (await response.json()) as { error: string; error_description: string };
    assert.equal(body.error, 'invalid_token');
    assert.match(body.error_description, /DPoP-bound; send it as Authorization: DPoP <token> with a DPoP proof/);
    const challenge = response.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^DPoP .*error="invalid_token"/);
    assert.ok(challenge.includes(`error_description="${body.error_description}"`), challenge);
    // A token that is not DPoP-bound, or none we hold, keeps the engine's words.
    const unknown = await fetch(endpoint, { headers: { authorization: 'Bearer not-a-token-we-issued-0123456789abcdef' } });
    assert.equal(((await unknown.json()) as { error_description: string }).error_description, 'invalid token provided');
    // Sent as it should be, it is taken.
    const info = await oidc.fetchUserInfo(config, bound.access_token, oidc.skipSubjectCheck, { DPoP: dpop });
    assert.ok(info.sub);
  });

  describe('the resource server refuses what RFC 9449 §4.3 and §7 refuse', () => {
    const url = () => `${apiUrl}/things`;
    const verify = (authorization: string, dpop: string | undefined, method = 'GET', at = url()) =>
      helper.verify(authorization, { dpop: { proof: dpop, method, url: at } });
    const refused = (code: string, pattern: RegExp) => (error: unknown) => {
      assert.ok(error instanceof TokenRejected, String(error));
      assert.equal(error.code, code, error.message);
      assert.match(error.message, pattern);
      return true;
    };

    it('a valid proof is accepted once; its replay is refused', async () => {
      const made = await proof(key, { htm: 'GET', htu: url(), ath: ath(tokens.access_token) });
      await verify(`DPoP ${tokens.access_token}`, made);
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, made), refused('invalid_dpop_proof', /replayed/));
    });

    it('htu and htm are compared normalised, without query and fragment; another URL or method is refused', async () => {
      const htu = `${url().replace('http://localhost', 'HTTP://LOCALHOST')}?q=1#top`;
      await verify(`DPoP ${tokens.access_token}`, await proof(key, { htm: 'GET', htu, ath: ath(tokens.access_token) }), 'get', `${url()}?other=2`);
      const elsewhere = await proof(key, { htm: 'GET', htu: `${apiUrl}/admin`, ath: ath(tokens.access_token) });
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, elsewhere), refused('invalid_dpop_proof', /htu/));
      const post = await proof(key, { htm: 'POST', htu: url(), ath: ath(tokens.access_token) });
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, post), refused('invalid_dpop_proof', /htm/));
    });

    it('a proof for another access token (ath) is refused', async () => {
      const made = await proof(key, { htm: 'GET', htu: url(), ath: ath('another token') });
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, made), refused('invalid_dpop_proof', /ath/));
    });

    it('a stolen token: without a proof, as a Bearer token, or with a proof by another key → refused', async () => {
      const thief = await generateKeyPair('ES256', { extractable: true });
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, undefined), refused('invalid_dpop_proof', /needs a DPoP proof/));
      await assert.rejects(helper.verify(`Bearer ${tokens.access_token}`), (error: TokenRejected) => {
        assert.equal(error.scheme, 'DPoP');
        assert.equal(helper.challenge(error), 'DPoP error="invalid_token", algs="ES256 EdDSA Ed25519"');
        return true;
      });
      const forged = await proof(thief, { htm: 'GET', htu: url(), ath: ath(tokens.access_token) });
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, forged), refused('invalid_token', /another key/));
    });

    it('an API that requires DPoP-bound tokens (dpopBoundAccessTokensRequired) refuses a bearer token, and its challenges offer DPoP alone (RFC 9728 §2, RFC 9449 §7.1)', async () => {
      // A bearer token for the API, as any client with a grant there gets: a thief needs no key to use it.
      await server.apis.grant(OPS.id, API, { scopes: ['read'] });
      const bearer = await clientCredentialsToken(server.url, OPS);
      assert.equal((await helper.verify(`Bearer ${bearer}`)).client_id, OPS.id, 'an API that takes bearer tokens takes it');
      const bound = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, dpopBoundAccessTokensRequired: true });
      try {
        assert.equal(bound.dpopBoundAccessTokensRequired, true, 'for createProtectedResource, which publishes it');
        for (const presented of [`Bearer ${bearer}`, bearer]) {
          await assert.rejects(bound.verify(presented), (error: TokenRejected) => {
            assert.equal(error.code, 'invalid_token', error.message);
            assert.equal(error.scheme, 'DPoP');
            assert.match(error.message, /DPoP-bound/);
            assert.equal(bound.challenge(error), 'DPoP error="invalid_token", algs="ES256 EdDSA Ed25519"', 'no Bearer challenge to retry with');
            return true;
          });
        }
        // Nor by calling it DPoP (the scheme is for bound tokens), with a proof by any key.
        const made = await proof(key, { htm: 'GET', htu: url(), ath: ath(bearer) });
        await assert.rejects(bound.verify(`DPoP ${bearer}`, { dpop: { proof: made, method: 'GET', url: url() } }), refused('invalid_token', /bearer token/));
        assert.equal(bound.challenge(), 'DPoP algs="ES256 EdDSA Ed25519"', 'no token: the DPoP challenge alone');
        // A DPoP-bound token with its key's proof is what it takes.
        const good = await proof(key, { htm: 'GET', htu: url(), ath: ath(tokens.access_token) });
        assert.ok((await bound.verify(`DPoP ${tokens.access_token}`, { dpop: { proof: good, method: 'GET', url: url() } })).sub);
      } finally {
        bound.close();
      }
    });

    it('a proof made too long ago (iat), or not a DPoP proof (typ, alg none), is refused', async () => {
      const old = await proof(key, { htm: 'GET', htu: url(), ath: ath(tokens.access_token), iat: Math.floor(Date.now() / 1000) - 600 });
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, old), refused('invalid_dpop_proof', /iat/));
      const jwk = await exportJWK(key.publicKey);
      const wrongTyp = await new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: 'GET', htu: url(), ath: ath(tokens.access_token) })
        .setProtectedHeader({ typ: 'JWT', alg: 'ES256', jwk })
        .sign(key.privateKey);
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, wrongTyp), refused('invalid_dpop_proof', /typ/));
      const unsigned = `${Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'none', jwk })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`;
      await assert.rejects(verify(`DPoP ${tokens.access_token}`, unsigned), refused('invalid_dpop_proof', /alg|Unsupported/i));
    });

    it('an API that asks for nonces answers use_dpop_nonce with one, and takes a proof that carries it (RFC 9449 §9)', async () => {
      const at = url();
      let nonce: string | undefined;
      await assert.rejects(strict.verify(`DPoP ${tokens.access_token}`, { dpop: { proof: await proof(key, { htm: 'GET', htu: at, ath: ath(tokens.access_token) }), method: 'GET', url: at } }), (error: TokenRejected) => {
        assert.equal(error.code, 'use_dpop_nonce');
        nonce = error.dpopNonce;
        return true;
      });
      assert.ok(nonce);
      const claims = await strict.verify(`DPoP ${tokens.access_token}`, { dpop: { proof: await proof(key, { htm: 'GET', htu: at, ath: ath(tokens.access_token), nonce }), method: 'GET', url: at } });
      assert.ok(claims.sub);
    });

    it('over HTTP: 401 with the RFC 9449 §7.1 challenge (and plain challenges when no token was sent)', async () => {
      const response = await fetch(url(), { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(response.status, 401);
      assert.equal(response.headers.get('www-authenticate'), 'DPoP error="invalid_token", algs="ES256 EdDSA Ed25519"');
      const none = await fetch(url());
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer, DPoP algs="ES256 EdDSA Ed25519"', 'no token: no error code (RFC 6750 §3.1)');
    });
  });

  describe('the provider', () => {
    const push = (base: string, dpop: string) =>
      fetch(`${base}/request`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop },
        body: new URLSearchParams({ client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }),
      });

    it('a DPoP nonce issued by one instance is accepted by another on the same store; a made-up one is not (dpop.requireNonce)', async () => {
      const first = await push(server.url, await proof(key, { htm: 'POST', htu: `${server.issuer}/request` }));
      assert.equal(first.status, 400);
      assert.equal(((await first.json()) as { error: string }).error, 'use_dpop_nonce');
      const nonce = first.headers.get('dpop-nonce');
      assert.ok(nonce);
      const madeUp = await push(other.url, await proof(key, { htm: 'POST', htu: `${other.issuer}/request`, nonce: 'A'.repeat(43) }));
      assert.equal(((await madeUp.json()) as { error: string }).error, 'use_dpop_nonce');
      const elsewhere = await push(other.url, await proof(key, { htm: 'POST', htu: `${other.issuer}/request`, nonce }));
      assert.equal(elsewhere.status, 201, await elsewhere.clone().text());
      assert.ok(((await elsewhere.json()) as { request_uri: string }).request_uri);
    });

    it('a client registered with require_pushed_authorization_requests is refused at /auth without PAR (invalid_request)', async () => {
      const params = new URLSearchParams({ client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const page = await new Agent().follow(`${server.url}/auth?${params}`, {}, REDIRECT);
      assert.ok(page.url.startsWith(REDIRECT), page.url);
      assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request');
    });

    it('dynamic registration takes both settings, a value that is not a boolean is invalid_client_metadata, and the client cannot lift them itself (RFC 7592 §2.2: kept, as only an operator lowers them)', async () => {
      const metadata = { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', require_pushed_authorization_requests: true, dpop_bound_access_tokens: true };
      const register = (body: Record<string, unknown>) =>
        fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const created = await register(metadata);
      assert.equal(created.status, 201);
      const client = (await created.json()) as Record<string, unknown> & { client_id: string; registration_client_uri: string; registration_access_token: string };
      assert.equal(client.require_pushed_authorization_requests, true);
      assert.equal(client.dpop_bound_access_tokens, true);
      const params = new URLSearchParams({ client_id: client.client_id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      assert.equal(new URL((await new Agent().follow(`${server.url}/auth?${params}`, {}, REDIRECT)).url).searchParams.get('error'), 'invalid_request');

      const updated = await fetch(client.registration_client_uri, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${client.registration_access_token}` },
        body: JSON.stringify({ ...metadata, client_id: client.client_id, require_pushed_authorization_requests: false, dpop_bound_access_tokens: false }),
      });
      assert.equal(updated.status, 200, await updated.clone().text());
      // A leaked registration access token must not make the client's tokens bearer tokens again,
      // nor its requests front-channel ones: the answer says what was kept (RFC 7592 §2.2).
      const kept = (await updated.json()) as Record<string, unknown>;
      assert.equal(kept.require_pushed_authorization_requests, true);
      assert.equal(kept.dpop_bound_access_tokens, true);
      assert.equal(new URL((await new Agent().follow(`${server.url}/auth?${params}`, {}, REDIRECT)).url).searchParams.get('error'), 'invalid_request', 'still only by PAR');

      for (const bad of [{ dpop_bound_access_tokens: 'yes' }, { require_pushed_authorization_requests: 1 }]) {
        const refused = await register({ ...metadata, ...bad });
        assert.equal(refused.status, 400);
        assert.equal(((await refused.json()) as { error: string }).error, 'invalid_client_metadata');
      }
    });

    it('the admin API creates and updates clients with both settings', async () => {
      await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
      const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
      const call = async (method: string, path: string, body: Record<string, unknown>) => {
        const response = await fetch(`${server.url}/admin/clients${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      const metadata = { client_id: 'managed', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', require_pushed_authorization_requests: true, dpop_bound_access_tokens: true };
      const created = await call('POST', '', metadata);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.dpop_bound_access_tokens, true);
      const updated = await call('PUT', '/managed', { ...metadata, dpop_bound_access_tokens: false });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      assert.deepEqual([updated.body.require_pushed_authorization_requests, updated.body.dpop_bound_access_tokens], [true, false]);
      const bad = await call('PUT', '/managed', { ...metadata, require_pushed_authorization_requests: 'always' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, 'invalid_client_metadata');
    });

    it("par.required: discovery says so and every client must push, except Latchkey's own pages; without it, only the clients that registered so", async () => {
      const meta = async (base: string) => (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      const [plain, required] = await Promise.all([meta(server.url), meta(other.url)]);
      assert.equal(plain.require_pushed_authorization_requests, undefined);
      assert.equal(required.require_pushed_authorization_requests, true);
      assert.equal(required.pushed_authorization_request_endpoint, `${other.issuer}/request`);
      assert.deepEqual(required.dpop_signing_alg_values_supported, ['ES256', 'EdDSA', 'Ed25519']);
      const params = new URLSearchParams({ client_id: WEB.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const refused = await new Agent().follow(`${other.url}/auth?${params}`, {}, REDIRECT);
      assert.equal(new URL(refused.url).searchParams.get('error'), 'invalid_request');
      const allowed = await new Agent().follow(`${server.url}/auth?${params}`, {}, REDIRECT);
      assert.match(allowed.url, /\/interaction\//);
      // Latchkey's own pages build their requests themselves: the developer page still signs people in.
      const developer = await new Agent().follow(`${other.url}/developer/sign-in`);
      assert.match(developer.url, /\/interaction\//, developer.url);
      assert.match(developer.html, /name="password"/);
    });
  });
});
