/**
 * A JWT access token issued in a session (a grant without offline_access) ends no later than its
 * session: an opaque one of the same grant ends with it (the engine checks the session when it finds
 * the token), while a JWT is verified by its API alone, and a session's expiry (idle, or
 * ttl.sessionMax after the sign-in) is no act: nothing goes on the revocation list. So the JWT is
 * never issued with an `exp` past the session's end as known when it is issued. Asserted from the
 * lifetimes (the token's iat and exp, jose's jwtVerify at a given date), not by waiting.
 * Nor is the ID token issued beside it (tenth fresh-eyes pass, "more than was granted, tenth pass"):
 * it told its app the sign-in held for ttl.idToken, an hour past the session and the grant that
 * ends with it.
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { approvedDevice } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const PASSWORD = 'correct horse battery staple';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = 'tv';
const CLIENTS = JSON.stringify([
  { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
  { client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] },
  machineClient(RS),
]);
/** Access tokens live an hour: far longer than the sessions below. */
const ACCESS_TOKEN_TTL = 3600;
/** ID tokens too. */
const ID_TOKEN_TTL = 3600;

async function signedIn(server: TestServer, username: string, scope: string) {
  const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
  const flow = await frontChannel(config, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope, resource: API, prompt: 'consent' } });
  const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
  return { config, tokens };
}

/** What a resource server verifying locally sees at `at` (epoch seconds): the token's claims, or why not. */
async function atResourceServer(server: TestServer, token: string, at: number) {
  const keys = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
  try {
    return (await jwtVerify(token, keys, { issuer: server.issuer, audience: API, typ: 'at+jwt', currentDate: new Date(at * 1000) })).payload;
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) return 'expired';
    throw error;
  }
}

for (const { ending, env, bound } of [
  // Used once (the sign-in), a session lives ttl.session after it: the token no longer.
  { ending: 'expires idle (ttl.session)', env: { TTL_SESSION: '40', TTL_SESSION_MAX: '86400' }, bound: 40 },
  // However often it is used, a session ends ttl.sessionMax after the sign-in: the token no later.
  { ending: 'reaches ttl.sessionMax', env: { TTL_SESSION: '86400', TTL_SESSION_MAX: '50' }, bound: 50 },
]) {
  describe(`e2e: a JWT access token ends no later than its session, when the session ${ending}`, function () {
    this.timeout(60_000);
    let server: TestServer;

    before(async () => {
      server = await startServer({ ownRedis: true, env: { CLIENTS, RESOURCE_SERVERS, TTL_ACCESS_TOKEN: String(ACCESS_TOKEN_TTL), TTL_ID_TOKEN: String(ID_TOKEN_TTL), ...env } });
      await server.accounts.create('alice', PASSWORD);
    });
    after(() => server?.stop());

    it('a grant without offline_access: exp is within the session, expires_in says so, introspection and a resource server agree', async () => {
      const { tokens } = await signedIn(server, 'alice', 'openid read');
      const { iat, exp } = decodeJwt(tokens.access_token);
      // The session was used last (the sign-in) before the token was issued, so it ends at most `bound` after iat.
      assert.ok(exp! <= iat! + bound, `the token lives ${exp! - iat!} s, its session at most ${bound} s`);
      assert.equal(tokens.expires_in, exp! - iat!, 'expires_in is the token’s own lifetime');
      // While the session lives, the token works at both ends, with the same exp.
      assert.equal((await introspect(server.url, RS, tokens.access_token)).exp, exp);
      assert.equal((await introspect(server.url, RS, tokens.access_token)).active, true);
      assert.notEqual(await atResourceServer(server, tokens.access_token, iat!), 'expired');
      // Once the session has ended, a resource server verifying locally refuses it (and so does introspection, the same check).
      assert.equal(await atResourceServer(server, tokens.access_token, iat! + bound), 'expired');
    });

    it('a grant without offline_access: the ID token issued beside it says no later an end than the session either (an offline grant\'s says ttl.idToken)', async () => {
      const bounded = decodeJwt((await signedIn(server, 'alice', 'openid read')).tokens.id_token!);
      assert.ok(bounded.exp! <= bounded.iat! + bound, `the ID token says the sign-in holds ${bounded.exp! - bounded.iat!} s, its session at most ${bound} s`);
      const offline = decodeJwt((await signedIn(server, 'alice', 'openid offline_access read')).tokens.id_token!);
      assert.equal(offline.exp! - offline.iat!, ID_TOKEN_TTL, 'an offline grant outlives the session: its ID token is not bound to it');
    });

    it('a device approved without offline access: its JWT ends no later than the session of the browser that approved it (RFC 8628)', async () => {
      const body = await approvedDevice(server, TV, { username: 'alice', password: PASSWORD }, { scope: 'openid read', resource: API });
      const { iat, exp } = decodeJwt(body.access_token!);
      assert.ok(exp! <= iat! + bound, `the device's token lives ${exp! - iat!} s, the session that approved it at most ${bound} s`);
      assert.equal(body.expires_in, exp! - iat!);
      assert.equal(await atResourceServer(server, body.access_token!, iat! + bound), 'expired');
      const idToken = decodeJwt((body as { id_token?: string }).id_token!);
      assert.ok(idToken.exp! <= idToken.iat! + bound, `the device's ID token says ${idToken.exp! - idToken.iat!} s, the session that approved it at most ${bound} s`);
    });

    it('an offline grant is not bound to the session: its JWT and refreshed ones live ttl.accessToken', async () => {
      const { config, tokens } = await signedIn(server, 'alice', 'openid offline_access read');
      const { iat, exp } = decodeJwt(tokens.access_token);
      assert.equal(exp! - iat!, ACCESS_TOKEN_TTL);
      assert.ok(tokens.refresh_token);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, { resource: API });
      const again = decodeJwt(refreshed.access_token);
      assert.equal(again.exp! - again.iat!, ACCESS_TOKEN_TTL);
    });
  });
}
