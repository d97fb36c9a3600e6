/**
 * An authorization request without `scope` is refused at once with invalid_scope (RFC 6749 §3.3:
 * a server without a default scope fails the request "indicating an invalid scope"): at /auth the
 * app gets the error at its redirect URI before anyone is asked to sign in, a pushed request is
 * refused at /request, a device's at /device/auth. Before, the person signed in and the app got
 * access_denied. openid-client sends what a plain OAuth library sends: no scope parameter.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://app.example.test/callback';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('e2e: an authorization request without scope is invalid_scope at once', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let server: TestServer;
  let app: oidc.Configuration;
  let device: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    const clients = [
      { client_id: 'app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
      { client_id: 'cli', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
    ];
    server = await startServer({ redisUrl: redis.url, env: { CLIENTS: JSON.stringify(clients) } });
    const insecure = { execute: [oidc.allowInsecureRequests] };
    app = await oidc.discovery(new URL(server.issuer), 'app', undefined, oidc.None(), insecure);
    device = await oidc.discovery(new URL(server.issuer), 'cli', undefined, oidc.None(), insecure);
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const pkce = async () => ({ code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });

  it('at /auth: straight back to the redirect URI with invalid_scope and the state, no sign-in page', async () => {
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, state: 'abc', ...(await pkce()) });
    const page = await new Agent().follow(url.href, {}, REDIRECT);
    assert.ok(page.url.startsWith(REDIRECT), `expected the callback, got ${page.status} ${page.url}`);
    const answer = new URL(page.url).searchParams;
    assert.equal(answer.get('error'), 'invalid_scope');
    assert.match(answer.get('error_description') ?? '', /scope is required/);
    assert.equal(answer.get('state'), 'abc');
    assert.equal(answer.get('scope'), null);
  });

  it('at /auth with a redirect URI the client did not register: the error page, not a redirect', async () => {
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: 'https://elsewhere.example.test/cb', ...(await pkce()) });
    const page = await new Agent().follow(url.href, {}, 'https://elsewhere.example.test');
    assert.equal(page.status, 400);
    assert.ok(page.url.startsWith(server.issuer), page.url);
  });

  it('pushed (PAR): /request answers invalid_scope', async () => {
    await assert.rejects(oidc.buildAuthorizationUrlWithPAR(app, { redirect_uri: REDIRECT, ...(await pkce()) }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_scope');
      return true;
    });
  });

  it('a device at /device/auth: invalid_scope', async () => {
    await assert.rejects(oidc.initiateDeviceAuthorization(device, {}), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_scope');
      return true;
    });
  });

  describe('a request whose scopes are all unknown (security-passes.md, ninth passes, the letter of the specs: leftovers)', () => {
    it('at /auth: straight back to the redirect URI with invalid_scope, iss and the state, naming the unknown scopes; no sign-in page', async () => {
      const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, state: 'abc', scope: 'foo bar:baz', ...(await pkce()) });
      const page = await new Agent().follow(url.href, {}, REDIRECT);
      assert.ok(page.url.startsWith(REDIRECT), `expected the callback, got ${page.status} ${page.url}`);
      const answer = new URL(page.url).searchParams;
      assert.equal(answer.get('error'), 'invalid_scope');
      assert.match(answer.get('error_description') ?? '', /foo bar:baz/);
      assert.equal(answer.get('state'), 'abc');
      assert.equal(answer.get('iss'), server.issuer);
    });

    it('pushed (PAR) and a device: invalid_scope', async () => {
      await assert.rejects(oidc.buildAuthorizationUrlWithPAR(app, { redirect_uri: REDIRECT, scope: 'foo', ...(await pkce()) }), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_scope');
        assert.match(error.error_description ?? '', /foo/);
        return true;
      });
      await assert.rejects(oidc.initiateDeviceAuthorization(device, { scope: 'foo' }), (error: oidc.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_scope');
        return true;
      });
    });

    it('known scopes joined with commas, as Grant (5.4) sends them for a provider of your own unless told scope_delimiter: " ": the description says scopes are separated by spaces, at /auth, pushed and from a device (security-passes.md, tenth passes, client libraries)', async () => {
      await server.apis.add({ identifier: 'https://photos.example.test', scopes: ['photos:read'] });
      for (const scope of ['openid,profile,email', 'photos:read,foo']) {
        const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, state: 'abc', scope, ...(await pkce()) });
        const page = await new Agent().follow(url.href, {}, REDIRECT);
        assert.ok(page.url.startsWith(REDIRECT), `expected the callback, got ${page.status} ${page.url}`);
        const answer = new URL(page.url).searchParams;
        assert.equal(answer.get('error'), 'invalid_scope', scope);
        assert.equal(answer.get('error_description'), `none of the requested scopes is known here (${scope}); scopes are separated by spaces, not commas (RFC 6749 section 3.3)`);
      }
      await assert.rejects(oidc.buildAuthorizationUrlWithPAR(app, { redirect_uri: REDIRECT, scope: 'openid,profile', ...(await pkce()) }), (error: oidc.ResponseBodyError) => {
        assert.match(error.error_description ?? '', /separated by spaces, not commas/);
        return true;
      });
      await assert.rejects(oidc.initiateDeviceAuthorization(device, { scope: 'openid,offline_access' }), (error: oidc.ResponseBodyError) => {
        assert.match(error.error_description ?? '', /separated by spaces, not commas/);
        return true;
      });
      // Unknown words with a comma are only unknown.
      const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'foo,bar', ...(await pkce()) });
      const answer = new URL((await new Agent().follow(url.href, {}, REDIRECT)).url).searchParams;
      assert.match(answer.get('error_description') ?? '', /ask for openid, or the scopes of an API/);
    });

    it('a known scope among them, a runtime API\'s scope, or offline_access alone: on to the sign-in page as before (unknown ones are ignored)', async () => {
      await server.apis.add({ identifier: 'https://notes.example.test', scopes: ['notes:read'] });
      for (const scope of ['openid foo', 'notes:read', 'foo notes:read', 'offline_access']) {
        const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope, ...(await pkce()) });
        const page = await new Agent().follow(url.href, {}, REDIRECT);
        assert.match(page.url, /\/interaction\//, `${scope}: ${page.url}`);
      }
    });
  });

  it('with a scope the request goes on to the sign-in page as before', async () => {
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid', ...(await pkce()) });
    const page = await new Agent().follow(url.href, {}, REDIRECT);
    assert.match(page.url, /\/interaction\//);
  });
});
