/**
 * The twelfth fresh-eyes passes of 2026-12-07, "some endings do not end" (docs/security-passes.md,
 * "Looked at in the twelfth fresh-eyes passes of 2026-12-07: some endings do not end"), black box:
 * two instances on one Redis, the operator at instance B's admin API, the app at instance A, with
 * raw HTTP at the token endpoint (the public client's code redeemed with its PKCE verifier alone).
 *
 * Found and fixed: an authorization code issued before its client was narrowed (a redirect URI, or
 * the code grant and response type, taken away) and redeemed once the client was widened again
 * within the code's lifetime got tokens. The narrowing ended the client's pushed requests and device
 * codes (twenty-second endings pass) and its sign-ins in progress by a cutoff (twenty-fourth), but a
 * code already issued was checked against the client as it is only: refused while narrowed, taken up
 * once widened. A code issued at or before the client's cutoff is now refused at the token endpoint
 * (patches/current-registration.ts boundCodesToCurrentRegistration), read with the code's grant.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { serverRestarts } from '../helpers/restarts.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const PASSWORD = 'twelfth endings pass test password';
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const SPA = 'spa';
/** Two redirect URIs on one site: taking one out and putting it back adds no site (which would end the app's grants anyway). */
const LEGACY = 'https://spa.twelfth.example.test/legacy-callback';
const CALLBACK = 'https://spa.twelfth.example.test/callback';
/** A browser app (public, PKCE): whoever holds its code and the request's verifier redeems it, no secret. */
const spa = (changes: Record<string, unknown> = {}) => ({
  client_id: SPA,
  token_endpoint_auth_method: 'none',
  redirect_uris: [LEGACY, CALLBACK],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  scope: 'openid email offline_access',
  ...changes,
});

describe('e2e: twelfth fresh-eyes pass, endings that do not end: a code across its client narrowed and widened again', function () {
  this.timeout(90_000);
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    a = await startServer({ ownRedis: true, cheapHashing: true, clients: [machineClient(OPS)] });
    b = await startServer({ dir: dirname(a.env.KEYS_DIR!), port: await freePort(), redisUrl: a.env.REDIS_URL!, cheapHashing: true, env: { CLIENTS: a.env.CLIENTS!, ISSUER: a.issuer } });
    await a.apis.grant(OPS.id, `${a.issuer}/admin`, { scopes: ['admin'] });
    await a.accounts.create('tess', PASSWORD);
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  /** The operator's write of the client at instance B's admin API. */
  async function operator(method: 'POST' | 'PUT', metadata: Record<string, unknown>) {
    const token = await clientCredentialsToken(b.url, OPS, `${a.issuer}/admin`, 'admin');
    const { status, body } = await adminJson(b.url, token, method, method === 'POST' ? '/clients' : `/clients/${SPA}`, metadata);
    assert.equal(status, method === 'POST' ? 201 : 200, JSON.stringify(body));
  }

  /** The person's sign-in for `redirectUri` at instance A, to a code at it; the redemption of that code at A. */
  async function issued(redirectUri: string) {
    const config = await oidc.discovery(new URL(a.issuer), SPA, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, redirectUri, { scope: 'openid email' });
    const back = await signInSteps(agent, page, { username: 'tess', password: PASSWORD, stopAt: redirectUri });
    const code = new URL(back.url).searchParams.get('code');
    assert.ok(back.url.startsWith(redirectUri) && code, `a code at ${redirectUri}: ${back.status} ${back.url}`);
    return async () => {
      const response = await fetch(`${a.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: SPA, code, redirect_uri: redirectUri, code_verifier: verifier }),
      });
      return { status: response.status, body: (await response.json()) as { access_token?: string; error?: string; error_description?: string } };
    };
  }

  it('a code issued for a redirect URI the operator then took out and put back (admin API at another instance) gets no tokens; a code issued after it is put back does', async () => {
    await operator('POST', spa());
    const redeemLegacy = await issued(LEGACY);
    const redeemKept = await issued(CALLBACK);

    await operator('PUT', spa({ redirect_uris: [CALLBACK] }));
    await operator('PUT', spa());

    for (const [name, redeem] of [['legacy', redeemLegacy], ['kept', redeemKept]] as const) {
      const answer = await redeem();
      assert.equal(answer.status, 400, `${name}: the code from before the narrowing got tokens: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error, 'invalid_grant', JSON.stringify(answer.body));
    }
    const after = await (await issued(LEGACY))();
    assert.equal(after.status, 200, `a code issued once the client is widened again: ${JSON.stringify(after.body)}`);
    assert.ok(after.body.access_token);
  });

  it('a code issued before the operator took the code grant and response type away and gave them back gets no tokens', async () => {
    await operator('PUT', spa());
    const redeem = await issued(CALLBACK);

    await operator('PUT', spa({ grant_types: ['refresh_token'], response_types: [] }));
    await operator('PUT', spa());

    const answer = await redeem();
    assert.equal(answer.status, 400, `the code from before the narrowing got tokens: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.error, 'invalid_grant', JSON.stringify(answer.body));
  });
});

describe('e2e: twelfth fresh-eyes pass, endings that do not end: a configured client’s code across restarts that narrow and widen it', function () {
  this.timeout(90_000);
  const restarts = serverRestarts();
  const SECRET = 'twelfth-configured-secret-with-plenty-of-entropy-0123';
  const web = (redirectUris: string[]) => ({ client_id: 'web', client_secret: SECRET, redirect_uris: redirectUris, grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email' });

  it('a code issued before a restart took its redirect URI out of CLIENTS, redeemed after one that put it back, gets no tokens (the client as wide as when the code was issued)', async () => {
    const server = await restarts.start({ cheapHashing: true, clients: [web([LEGACY, CALLBACK])] });
    await server.accounts.create('una', PASSWORD);
    const config = await oidc.discovery(new URL(server.issuer), 'web', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, LEGACY, { scope: 'openid email' });
    const back = await signInSteps(agent, page, { username: 'una', password: PASSWORD, stopAt: LEGACY });
    assert.ok(new URL(back.url).searchParams.get('code'), back.url);

    await restarts.start({ cheapHashing: true, clients: [web([CALLBACK])] });
    await restarts.start({ cheapHashing: true, clients: [web([LEGACY, CALLBACK])] });
    const redeemed = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }).then(
      () => 'tokens',
      (error: unknown) => (error instanceof oidc.ResponseBodyError ? error.error : String(error)),
    );
    assert.equal(redeemed, 'invalid_grant', 'the code from before the restart that narrowed the client');
  });
});
