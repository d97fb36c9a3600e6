/**
 * Rate limits that an outsider cannot spend on someone else, decided before anything changes;
 * client addresses behind a proxy that a client cannot forge; URLs and client-assertion audiences
 * that come from the issuer, never from the request's Host. Attacks performed over HTTP against
 * servers on a real Redis, with openid-client and jose as the clients.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { createLogger } from '../../src/ops/logger.js';
import { Agent, formIn } from '../helpers/agent.js';
import { frontChannel } from '../helpers/front-channel.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const SECRET = 'rate-limits-test-secret-with-plenty-of-entropy-0123';
const PASSWORD = 'rate limits test password';
const REDIRECT = 'https://victim.example.test/callback';
const insecure = { execute: [oidc.allowInsecureRequests] };

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request to 127.0.0.1:`port` with headers of our choosing (fetch does not let a caller set Host). */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Raw> {
  return new Promise((done, fail) => {
    const call = request({ host: '127.0.0.1', port, method, path, agent: false, headers: body === undefined ? headers : { 'content-type': 'application/x-www-form-urlencoded', ...headers } }, (response) => {
      let text = '';
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => done({ status: response.statusCode ?? 0, headers: response.headers, text }));
    });
    call.on('error', fail);
    call.end(body);
  });
}
const portOf = (server: TestServer) => Number(new URL(server.url).port);
const basic = (id: string, secret = SECRET) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const form = (params: Record<string, string>) => new URLSearchParams(params).toString();

async function assertion(key: CryptoKey, claims: Record<string, unknown>, aud: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('jwt')
    .setSubject('jwt')
    .setAudience(aud)
    .setIssuedAt(typeof claims.iat === 'number' ? claims.iat : now)
    .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : now + 60)
    .sign(key);
}
const assertionBody = (jwt: string) =>
  form({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt });

describe('rate limits, client addresses and the issuer host', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let server: TestServer;
  let proxied: TestServer;
  let jwtKey: CryptoKey;
  const logLines: string[] = [];

  before(async () => {
    redis = await startRedisServer();
    const keys = await generateKeyPair('ES256');
    jwtKey = keys.privateKey;
    const publicJwk = await exportJWK(keys.publicKey);
    const clients = JSON.stringify([
      { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
      { client_id: 'web', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
      { client_id: 'poster', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
      { client_id: 'svc', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
      { client_id: 'jwt', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [publicJwk] }, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    ]);
    server = await startServer({
      redisUrl: redis.url,
      env: { CLIENTS: clients, RATE_LIMIT_PER_CLIENT: '3', LOG_LEVEL: 'info' },
      logger: createLogger('info', { write: (line: string) => void logLines.push(line) }),
    });
    proxied = await startServer({
      redisUrl: redis.url,
      env: {
        CLIENTS: clients,
        PROXY: 'true',
        PROXY_HOPS: '1',
        REDIS_KEY_PREFIX: 'proxied:',
        RATE_LIMIT_PER_IP: '5',
        RATE_LIMIT_METADATA_PER_IP: '5',
        RATE_LIMIT_REGISTRATION_PER_IP: '5',
        ACCOUNTS_THROTTLE_MAX_FAILURES_PER_IP: '2',
      },
    });
    await server.accounts.create('victim', PASSWORD);
  });
  after(async () => {
    await server?.stop();
    await proxied?.stop();
    await redis?.stop();
  });

  const discover = (clientId: string, metadata?: Partial<oidc.ClientMetadata>, auth?: oidc.ClientAuth) =>
    oidc.discovery(new URL(server.issuer), clientId, metadata, auth, insecure);

  /** Signs the victim in at `clientId` and exchanges the code: tokens with a refresh token. */
  async function signIn(config: oidc.Configuration, options: { DPoP?: oidc.DPoPHandle } = {}) {
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'victim', password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' } });
    return oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, undefined, options);
  }

  /** An outsider's flood of token requests that name `clientId` without authenticating as it. */
  async function flood(clientId: string) {
    const statuses: number[] = [];
    for (let n = 0; n < 6; n += 1) {
      const forged = await new SignJWT({ jti: crypto.randomUUID() }).setProtectedHeader({ alg: 'HS256' }).setIssuer(clientId).setSubject(clientId).setAudience(server.issuer).setIssuedAt().setExpirationTime('1m').sign(new TextEncoder().encode('not the client key, not at all 32b'));
      for (const [headers, body] of [
        [{}, form({ grant_type: 'refresh_token', refresh_token: 'stolen-or-guessed', client_id: clientId })],
        [{}, form({ grant_type: 'authorization_code', code: 'guessed', client_id: clientId, redirect_uri: REDIRECT, code_verifier: 'x'.repeat(43) })],
        [{ authorization: basic(clientId, 'wrong') }, form({ grant_type: 'refresh_token', refresh_token: 'x' })],
        [{}, form({ grant_type: 'refresh_token', refresh_token: 'x', client_id: clientId, client_secret: 'wrong' })],
        [{}, form({ grant_type: 'refresh_token', refresh_token: 'x', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: forged })],
        // Attestation-based client authentication is off; oidc-provider still looks the client up
        // from these headers and then answers 400 (not 401) with the client known.
        [{ 'oauth-client-attestation': forged }, form({ grant_type: 'refresh_token', refresh_token: 'x', client_id: clientId })],
        [{ 'oauth-client-attestation-pop': forged }, form({ grant_type: 'refresh_token', refresh_token: 'x', client_id: clientId })],
        [{ 'oauth-client-attestation-pop': '' }, form({ grant_type: 'refresh_token', refresh_token: 'x', client_id: clientId })],
      ] as const) {
        statuses.push((await raw(portOf(server), 'POST', '/token', headers, body)).status);
      }
      statuses.push((await raw(portOf(server), 'POST', '/token/introspection', {}, form({ token: 'x', client_id: clientId }))).status);
      statuses.push((await raw(portOf(server), 'POST', '/request', {}, form({ client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' }))).status);
    }
    return statuses;
  }

  describe('per-client limits cannot be spent by an outsider, and never follow a state change', () => {
    it("an outsider naming a public client's client_id floods the token endpoint; the victim's code exchange and refreshes still succeed", async () => {
      const config = await discover('spa', { token_endpoint_auth_method: 'none' }, oidc.None());
      const statuses = await flood('spa');
      assert.ok(!statuses.includes(429), `the flood was never charged to the client: ${statuses.join(' ')}`);
      const tokens = await signIn(config);
      assert.ok(tokens.refresh_token);
      const first = await oidc.refreshTokenGrant(config, tokens.refresh_token);
      const second = await oidc.refreshTokenGrant(config, first.refresh_token!);
      const third = await oidc.refreshTokenGrant(config, second.refresh_token!);
      assert.ok(third.access_token, 'more requests than the per-client allowance, all served: a public client has only the per-address limit');
    });

    it("the same flood naming a confidential client (Basic with a wrong secret, client_id alone, a forged assertion, attestation headers) leaves its allowance whole", async () => {
      const config = await discover('web', undefined, oidc.ClientSecretBasic(SECRET));
      await flood('web');
      const tokens = await signIn(config); // 1 of 3
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!); // 2 of 3
      assert.ok(refreshed.refresh_token);
      const again = await oidc.refreshTokenGrant(config, refreshed.refresh_token!); // 3 of 3
      assert.ok(again.access_token);
    });

    it('a confidential client over its own allowance is refused before its refresh token is spent, however it announces itself', async () => {
      const config = await discover('poster', { token_endpoint_auth_method: 'client_secret_post' }, oidc.ClientSecretPost(SECRET));
      const tokens = await signIn(config); // 1 of 3
      for (let n = 0; n < 2; n += 1) await oidc.tokenIntrospection(config, tokens.access_token); // 3 of 3
      const refused = await raw(portOf(server), 'POST', '/token', {}, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: 'poster', client_secret: SECRET }));
      assert.equal(refused.status, 429, refused.text);
      assert.equal((JSON.parse(refused.text) as { error: string }).error, 'temporarily_unavailable');
      assert.ok(Number(refused.headers['retry-after']) > 0);
      const stored = await server.provider.RefreshToken.find(tokens.refresh_token!);
      assert.ok(stored && !stored.consumed, 'the refresh token was not rotated by the refused request');

      // Announced by HTTP Basic, and by a client assertion's subject: refused the same way.
      for (let n = 0; n < 3; n += 1) assert.equal((await raw(portOf(server), 'POST', '/token', { authorization: basic('svc') }, form({ grant_type: 'client_credentials' }))).status, 200);
      assert.equal((await raw(portOf(server), 'POST', '/token', { authorization: basic('svc') }, form({ grant_type: 'client_credentials' }))).status, 429);
      for (let n = 0; n < 3; n += 1) {
        const ok = await raw(portOf(server), 'POST', '/token', {}, assertionBody(await assertion(jwtKey, {}, server.issuer)));
        assert.equal(ok.status, 200, ok.text);
      }
      const jwt = await assertion(jwtKey, {}, server.issuer);
      assert.equal((await raw(portOf(server), 'POST', '/token', {}, assertionBody(jwt))).status, 429);
      assert.equal((await raw(portOf(server), 'POST', '/request', { authorization: basic('svc') }, form({ response_type: 'code' }))).status, 429, 'the pushed authorization request endpoint charges the same allowance');
    });
  });

  describe('the per-client charge, which the answer does not wait for', () => {
    it('reaches the store, shared with every instance, even when no request of this process follows', async () => {
      const store = new Redis(redis.url);
      try {
        const answer = await raw(portOf(proxied), 'POST', '/token', { authorization: basic('svc'), 'x-forwarded-for': '198.51.100.199' }, form({ grant_type: 'client_credentials' }));
        assert.equal(answer.status, 200, answer.text);
        let charged: string | null = null;
        for (let tries = 0; tries < 100 && charged === null; tries += 1) {
          charged = await store.get('proxied:ratelimit:http-client:svc');
          if (charged === null) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        // The shipped per-client limit reserves a lease of 1% (at most 100) with a charge that reaches Redis.
        assert.equal(charged, String(1 + 100), 'the authenticated request was charged once, with the lease it reserved');
        const ttl = await store.pttl('proxied:ratelimit:http-client:svc');
        assert.ok(ttl > 0, `the counter has its window: ${ttl}`);

        // The next requests' charges (and reads of the client's allowance) come out of that lease.
        for (let n = 0; n < 3; n += 1) {
          const again = await raw(portOf(proxied), 'POST', '/token', { authorization: basic('svc'), 'x-forwarded-for': `198.51.100.${200 + n}` }, form({ grant_type: 'client_credentials' }));
          assert.equal(again.status, 200, again.text);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(await store.get('proxied:ratelimit:http-client:svc'), '101', 'served from the lease, no new charge in Redis');
      } finally {
        store.disconnect();
      }
    });
  });

  describe('client assertions: short-lived, single-use, audience from the issuer only', () => {
    // 'jwt' spent its allowance above on `server`; these run on `proxied` (its own Redis prefix),
    // each from an address of its own, so that its low per-address limit stays out of the way.
    let address = 0;
    const call = async (jwt: string, headers: Record<string, string> = {}, target = server, path = '/token') =>
      raw(portOf(target), 'POST', path, { 'x-forwarded-for': `192.0.2.${(address += 1)}`, ...headers }, assertionBody(jwt));

    it('an assertion valid for a year, one without iat, and one issued in the future are invalid_client; a short one works once', async () => {
      const now = Math.floor(Date.now() / 1000);
      const yearLong = await call(await assertion(jwtKey, { iat: now, exp: now + 365 * 86_400 }, proxied.issuer), {}, proxied);
      assert.equal(yearLong.status, 401, yearLong.text);
      assert.equal((JSON.parse(yearLong.text) as { error: string }).error, 'invalid_client');
      const noIat = await new SignJWT({ jti: crypto.randomUUID() }).setProtectedHeader({ alg: 'ES256' }).setIssuer('jwt').setSubject('jwt').setAudience(proxied.issuer).setExpirationTime('1m').sign(jwtKey);
      assert.equal((await call(noIat, {}, proxied)).status, 401);
      assert.equal((await call(await assertion(jwtKey, { iat: now + 3600, exp: now + 3660 }, proxied.issuer), {}, proxied)).status, 401);

      const good = await assertion(jwtKey, { iat: now, exp: now + 120 }, proxied.issuer);
      assert.equal((await call(good, {}, proxied)).status, 200);
      const replay = await call(good, {}, proxied);
      assert.equal(replay.status, 401, 'a replayed assertion is refused');
    });

    it('an assertion made for an injected host is refused, whether the host comes as Host, X-Forwarded-Host or an absolute request target', async () => {
      const evil = 'http://evil.example/token';
      const plainHost = await call(await assertion(jwtKey, {}, evil), { host: 'evil.example' }, proxied);
      assert.equal(plainHost.status, 401, plainHost.text);
      const forwarded = await call(await assertion(jwtKey, {}, evil), { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' }, proxied);
      assert.equal(forwarded.status, 401, forwarded.text);
      const absolute = await call(await assertion(jwtKey, {}, evil), {}, proxied, 'http://evil.example/token');
      assert.equal(absolute.status, 401, absolute.text);
      const issuerSelf = await call(await assertion(jwtKey, {}, 'http://evil.example'), { host: 'evil.example' }, proxied);
      assert.equal(issuerSelf.status, 401, 'nor the injected host as an issuer identifier');
    });

    it('the audiences that must work still do: the issuer identifier (whatever Host the request names), and openid-client private_key_jwt', async () => {
      assert.equal((await call(await assertion(jwtKey, {}, proxied.issuer), {}, proxied)).status, 200);
      assert.equal((await call(await assertion(jwtKey, {}, proxied.issuer), { host: 'evil.example' }, proxied)).status, 200);
      const config = await oidc.discovery(new URL(proxied.issuer), 'jwt', { token_endpoint_auth_method: 'private_key_jwt' }, oidc.PrivateKeyJwt(jwtKey), insecure);
      const tokens = await oidc.clientCredentialsGrant(config);
      assert.ok(tokens.access_token);
    });
  });

  describe('every URL comes from the issuer', () => {
    const onlyIssuerUrls = (text: string, issuer: string) => {
      assert.doesNotMatch(text, /evil\.example/);
      const document = JSON.parse(text) as Record<string, unknown>;
      const urls = Object.entries(document).filter(([, value]) => typeof value === 'string' && /^https?:/.test(value));
      assert.ok(urls.length >= 10);
      for (const [field, value] of urls) assert.ok(String(value).startsWith(`${issuer}/`) || value === issuer, `${field}: ${String(value)}`);
      assert.equal(document.revocation_feed_endpoint, `${issuer}/revocations`);
      assert.equal(document.pushed_authorization_request_endpoint, `${issuer}/request`);
    };

    it('discovery fetched with another Host (or X-Forwarded-Host behind a proxy, or an absolute target) prints only issuer URLs', async () => {
      onlyIssuerUrls((await raw(portOf(server), 'GET', '/.well-known/openid-configuration', { host: 'evil.example' })).text, server.issuer);
      onlyIssuerUrls((await raw(portOf(server), 'GET', '/.well-known/oauth-authorization-server', { host: 'evil.example:8443' })).text, server.issuer);
      onlyIssuerUrls((await raw(portOf(proxied), 'GET', '/.well-known/openid-configuration', { 'x-forwarded-host': 'evil.example', 'x-forwarded-for': '192.0.2.1' })).text, proxied.issuer);
      onlyIssuerUrls((await raw(portOf(server), 'GET', 'http://evil.example/.well-known/openid-configuration')).text, server.issuer);
    });

    it('redirects and sign-in pages reached through another host point at the issuer', async () => {
      const query = form({ client_id: 'spa', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
      const started = await raw(portOf(server), 'GET', `/auth?${query}`, { host: 'evil.example' });
      assert.ok([302, 303].includes(started.status), String(started.status));
      const location = String(started.headers.location);
      assert.doesNotMatch(location, /evil/);
      const cookie = ([started.headers['set-cookie'] ?? []].flat()).map((line: string) => line.split(';')[0]).join('; ');
      const page = await raw(portOf(server), 'GET', new URL(location, server.issuer).pathname, { host: 'evil.example', cookie, accept: 'text/html' });
      assert.equal(page.status, 200);
      assert.match(page.text, /name="password"/);
      assert.doesNotMatch(page.text, /evil\.example/);
      // After the sign-in, the way back into the provider (its resume URL) is the issuer's too.
      const login = formIn(page.text, '/login');
      const signedIn = await raw(portOf(server), 'POST', new URL(login.action, server.issuer).pathname, { host: 'evil.example', cookie }, form({ ...login.hidden, username: 'victim', password: PASSWORD }));
      assert.ok([302, 303].includes(signedIn.status), signedIn.text);
      assert.ok(String(signedIn.headers.location).startsWith(`${server.issuer}/auth/`), String(signedIn.headers.location));
    });
  });

  describe('behind a proxy, the client address is the right-most untrusted X-Forwarded-For entry', () => {
    it('prepending forged addresses does not bypass the per-address limit on the token endpoint', async () => {
      const statuses: number[] = [];
      for (let n = 0; n < 7; n += 1) {
        const response = await raw(portOf(proxied), 'POST', '/token', { 'x-forwarded-for': `10.9.${n}.1, 198.51.100.7` }, form({ grant_type: 'client_credentials', client_id: 'nobody' }));
        statuses.push(response.status);
      }
      assert.deepEqual(statuses.slice(0, 5).includes(429), false);
      assert.equal(statuses[5], 429, statuses.join(' '));
      const elsewhere = await raw(portOf(proxied), 'POST', '/token', { 'x-forwarded-for': '198.51.100.7, 198.51.100.8' }, form({ grant_type: 'client_credentials', client_id: 'nobody' }));
      assert.notEqual(elsewhere.status, 429, 'another real address has its own allowance, even naming the limited one first');
    });

    it('prepending forged addresses does not bypass the per-address sign-in pause', async () => {
      const attempt = async (username: string, forwardedFor: string) => {
        const agent = new Agent();
        const query = form({ client_id: 'spa', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
        const page = await agent.follow(`${proxied.url}/auth?${query}`, { headers: { 'x-forwarded-for': '192.0.2.200' } }, REDIRECT);
        const login = formIn(page.html, '/login');
        return agent.request(new URL(login.action, page.url).href, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': forwardedFor },
          body: new URLSearchParams({ ...login.hidden, username, password: 'a wrong password' }),
        });
      };
      assert.equal((await attempt('spray-1', '10.0.0.1, 198.51.100.20')).status, 401);
      const second = await attempt('spray-2', '10.0.0.2, 198.51.100.20');
      assert.equal(second.status, 429, 'the second failure from the address starts its pause');
      const third = await attempt('spray-3', '10.0.0.3, 10.0.0.4, 198.51.100.20');
      assert.equal(third.status, 429, 'a forged prefix does not make a new address');
      assert.match(await third.text(), /paused/);
      assert.equal((await attempt('spray-4', '198.51.100.20, 198.51.100.21')).status, 401, 'another real address is not paused');
    });

    it('an IPv6 client taking a new address of its /64 for every request is one address: the token endpoint and the sign-in pause count its network (RFC 6177; ASVS 2.2.1)', async () => {
      // A host is given a whole /64 and may send each request from another of its 2^64 addresses.
      let host = 0;
      const next = (network: string) => `${network}:${(host += 1).toString(16)}:${((host * 7919) % 65_536).toString(16)}:${((host * 104_729) % 65_536).toString(16)}:1`;
      const statuses: number[] = [];
      for (let n = 0; n < 7; n += 1) {
        const response = await raw(portOf(proxied), 'POST', '/token', { 'x-forwarded-for': next('2001:db8:77:1') }, form({ grant_type: 'client_credentials', client_id: 'nobody' }));
        statuses.push(response.status);
      }
      assert.equal(statuses.slice(0, 5).includes(429), false, statuses.join(' '));
      assert.equal(statuses[5], 429, `the sixth request from the /64 is over its allowance: ${statuses.join(' ')}`);
      const otherNetwork = await raw(portOf(proxied), 'POST', '/token', { 'x-forwarded-for': '2001:db8:77:2::1' }, form({ grant_type: 'client_credentials', client_id: 'nobody' }));
      assert.notEqual(otherNetwork.status, 429, 'another /64 has its own allowance');

      const attempt = async (username: string, forwardedFor: string) => {
        const agent = new Agent();
        const query = form({ client_id: 'spa', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
        // The sign-in page fetched from an address of its own (every hop): only the posted form's address is under test.
        const headers = { 'x-forwarded-for': `192.0.2.${(host += 1) % 250}` };
        let url = `${proxied.url}/auth?${query}`;
        let response = await agent.request(url, { headers });
        while (response.status >= 300 && response.status < 400) {
          url = new URL(response.headers.get('location')!, url).href;
          response = await agent.request(url, { headers });
        }
        const login = formIn(await response.text(), '/login');
        return agent.request(new URL(login.action, url).href, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': forwardedFor },
          body: new URLSearchParams({ ...login.hidden, username, password: 'a wrong password' }),
        });
      };
      assert.equal((await attempt('v6-spray-1', next('2001:db8:78:1'))).status, 401);
      const second = await attempt('v6-spray-2', next('2001:db8:78:1'));
      assert.equal(second.status, 429, 'the second failure from the /64 starts its pause');
      assert.ok(Number(second.headers.get('retry-after')) > 0);
      assert.equal((await attempt('v6-spray-3', next('2001:DB8:0078:0001'))).status, 429, 'another spelling of the network is the same network');
      assert.equal((await attempt('v6-spray-4', '2001:db8:78:2::1')).status, 401, 'another /64 is not paused');
      // An IPv4 client written as IPv4-mapped IPv6 is that IPv4 address.
      assert.equal((await attempt('v4-spray-1', '198.51.100.30')).status, 401);
      assert.equal((await attempt('v4-spray-2', '::ffff:198.51.100.30')).status, 429, 'the mapped form of a paused IPv4 address is paused');
    });
  });

  describe('every endpoint the provider serves is limited per address', () => {
    it('each endpoint in discovery (PAR, userinfo, registration, JWKS, discovery itself, ...) and our own surfaces answer 429 after their allowance', async () => {
      const document = (await (await fetch(`${proxied.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      const endpoints = Object.entries(document)
        .filter(([field, value]) => (field.endsWith('_endpoint') || field === 'jwks_uri') && typeof value === 'string')
        .map(([field, value]) => [field, new URL(String(value)).pathname] as const);
      endpoints.push(['discovery', '/.well-known/openid-configuration'], ['oauth discovery', '/.well-known/oauth-authorization-server'], ['client configuration', '/reg/some-client'], ['resume', '/auth/some-interaction'], ['token in capitals', '/TOKEN/'], ['PAR in mixed case', '/Request'], ['admin API', '/admin/clients'], ['developer page', '/developer'], ['sign-in page', '/interaction/some-interaction'], ['device code entry', '/device'], ['device resume', '/device/some-interaction'], ['upstream callback', '/upstream/corp/callback'], ['upstream back-channel logout', '/upstream/corp/backchannel-logout']);
      assert.ok(endpoints.some(([field]) => field === 'pushed_authorization_request_endpoint'));
      assert.ok(endpoints.some(([field]) => field === 'revocation_feed_endpoint'));
      assert.ok(endpoints.some(([field]) => field === 'device_authorization_endpoint'));
      const reads = new Set(['/jwks', '/revocations', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/auth', '/session/end', '/reg/some-client', '/auth/some-interaction', '/admin/clients', '/developer', '/interaction/some-interaction', '/device', '/device/some-interaction', '/upstream/corp/callback']);
      let address = 0;
      for (const [field, path] of endpoints) {
        address += 1;
        const headers = { 'x-forwarded-for': `203.0.113.${address}`, accept: 'application/json' };
        const statuses: number[] = [];
        for (let n = 0; n < 6; n += 1) {
          const response = reads.has(path) ? await raw(portOf(proxied), 'GET', path, headers) : await raw(portOf(proxied), 'POST', path, headers, form({ client_id: 'spa' }));
          statuses.push(response.status);
        }
        assert.ok(!statuses.slice(0, 5).includes(429), `${field}: ${statuses.join(' ')}`);
        assert.equal(statuses[5], 429, `${field} (${path}) is limited: ${statuses.join(' ')}`);
      }
    });

    it('the account page, its sign-in and its forms answer 429 after their allowance', async () => {
      const paths: [string, 'GET' | 'POST'][] = [['/account', 'GET'], ['/account/sign-in', 'GET'], ['/account/password', 'POST'], ['/account/sessions/sign-out', 'POST']];
      for (const [at, [path, method]] of paths.entries()) {
        const headers = { 'x-forwarded-for': `203.0.114.${at + 1}`, accept: 'text/html' };
        const statuses: number[] = [];
        for (let n = 0; n < 6; n += 1) statuses.push((await raw(portOf(proxied), method, path, headers, method === 'POST' ? form({ csrf: 'x' }) : undefined)).status);
        assert.ok(!statuses.slice(0, 5).includes(429), `${path}: ${statuses.join(' ')}`);
        assert.equal(statuses[5], 429, `${path} is limited: ${statuses.join(' ')}`);
      }
    });

    it('a pushed authorization request works end to end (openid-client: PAR, sign-in, code exchange)', async () => {
      // On the server with the default allowances: the proxied one's per-address allowance of 5 also counts the sign-in pages.
      const config = await oidc.discovery(new URL(server.issuer), 'spa', { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
      await server.accounts.create('pusher', PASSWORD).catch(() => undefined);
      const verifier = oidc.randomPKCECodeVerifier();
      const url = await oidc.buildAuthorizationUrlWithPAR(config, {
        redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      assert.match(url.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/);
      const agent = new Agent();
      const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'pusher', password: PASSWORD, login: 'required', stopAt: REDIRECT });
      const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier });
      assert.ok(tokens.id_token);
    });
  });

  describe('offered features', () => {
    it('a DPoP-bound access token works at userinfo with its proof, and not as a bearer token', async () => {
      const config = await discover('spa', { token_endpoint_auth_method: 'none' }, oidc.None());
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
      const tokens = await signIn(config, { DPoP });
      assert.equal(tokens.token_type, 'dpop');
      const claims = tokens.claims()!;
      const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
      assert.equal(info.sub, claims.sub);
      const bearer = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal(bearer.status, 401);
    });

    it('discovery advertises exactly the offered features', async () => {
      const document = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      assert.ok(document.pushed_authorization_request_endpoint);
      assert.notEqual(document.require_pushed_authorization_requests, true, 'PAR is optional');
      assert.ok(Array.isArray(document.dpop_signing_alg_values_supported));
      assert.ok(document.userinfo_endpoint);
      assert.ok(document.device_authorization_endpoint, 'the device authorization grant (RFC 8628)');
      assert.ok((document.grant_types_supported as string[]).includes('urn:ietf:params:oauth:grant-type:device_code'));
      assert.notEqual(document.request_parameter_supported, true, 'request objects are off');
      for (const absent of ['backchannel_authentication_endpoint', 'authorization_signing_alg_values_supported', 'id_token_encryption_alg_values_supported', 'mtls_endpoint_aliases', 'authorization_details_types_supported']) {
        assert.equal(document[absent], undefined, absent);
      }
    });
  });

  describe('public default secrets', () => {
    it('starting on Redis with the public COOKIE_KEYS and KEYS_SECRETS logs a warning naming both; own secrets do not', async () => {
      const warnings = logLines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level === 40 && /INSECURE/.test(entry.msg));
      assert.equal(warnings.length, 1, 'one warning at start');
      assert.match(warnings[0]!.msg, /COOKIE_KEYS/);
      assert.match(warnings[0]!.msg, /KEYS_SECRETS/);

      const quiet: string[] = [];
      const own = await startServer({
        redisUrl: redis.url,
        env: { REDIS_KEY_PREFIX: 'own:', COOKIE_KEYS: 'x'.repeat(40), KEYS_SECRETS: 'y'.repeat(40), LOG_LEVEL: 'info' },
        logger: createLogger('info', { write: (line: string) => void quiet.push(line) }),
      });
      await own.stop();
      assert.ok(quiet.length > 0);
      assert.ok(!quiet.some((line) => /INSECURE|COOKIE_KEYS|KEYS_SECRETS/.test(line)));

      // Only the cookie keys left public (a restored backup with its own KEYS_SECRETS): the warning
      // names that one, and claims only what it gives away.
      const half: string[] = [];
      const cookiesOnly = await startServer({
        redisUrl: redis.url,
        env: { REDIS_KEY_PREFIX: 'half:', KEYS_SECRETS: 'y'.repeat(40), LOG_LEVEL: 'info' },
        logger: createLogger('info', { write: (line: string) => void half.push(line) }),
      });
      await cookiesOnly.stop();
      const [warning, ...more] = half.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level === 40 && /INSECURE/.test(entry.msg));
      assert.equal(more.length, 0);
      assert.equal(warning?.msg, 'INSECURE: cookie.keys (COOKIE_KEYS) still holds the public development default; anyone can forge cookies. Set your own secret (openssl rand -base64 48)');
    });
  });
});
