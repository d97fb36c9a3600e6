/**
 * A silent request's offline access kept from the remembered consent (patches/offline-access.ts,
 * eighteenth passes' client libraries, h5), reviewed (security-passes.md, "Looked at in the
 * eighteenth passes: review of ... (h12)"). The engine drops a silent request's `offline_access`
 * before it checks the request's scopes against the client's `scope` metadata, and the patch put it
 * back after that check: an app an operator narrowed to `scope: openid` since the person allowed it
 * offline access was refused `invalid_scope` when it asked offline_access interactively, but its
 * silent request got a code carrying offline_access. The redemption drops it (current-registration.ts),
 * but the code as issued was not bound to the session (the engine's expiresWithSession) and marked
 * the app's authorization in the session as outliving sign-out (persistsLogout), so the grant was not
 * revoked at the person's sign-out from the app.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://app.example/';
const WIDE = { client_id: 'wide', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: [REDIRECT], scope: 'openid offline_access' };

describe('e2e: a silent request keeps offline access only where the client may still ask it (eighteenth passes, h12)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true });
    await server.accounts.create('alice', PASSWORD);
    await server.clients.add(WIDE as never);
    config = await oidc.discovery(new URL(server.issuer), WIDE.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  /** Where a request with `params` lands at the app (signing in and allowing when asked). */
  const landed = async (agent: Agent, params: Record<string, string>) => {
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, params);
    const at = page.url.startsWith(REDIRECT) ? page : await signInSteps(agent, page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    return { url: new URL(at.url), verifier };
  };

  it("a silent request of an app narrowed to scope openid since the person allowed it offline access gets a code without it, bound to the session, as the engine's scope check has it", async () => {
    const agent = new Agent();
    const allowed = await landed(agent, { scope: 'openid offline_access' });
    assert.ok((await oidc.authorizationCodeGrant(config, allowed.url, { pkceCodeVerifier: allowed.verifier, expectedState: oidc.skipStateCheck })).refresh_token);

    // The operator narrows the app: it may no longer ask offline access.
    await server.clients.update(WIDE.client_id, { ...WIDE, scope: 'openid' });
    const interactive = await landed(agent, { scope: 'openid offline_access' });
    assert.equal(interactive.url.searchParams.get('error'), 'invalid_scope');

    const silent = await landed(agent, { prompt: 'none', scope: 'openid offline_access' });
    const code = silent.url.searchParams.get('code');
    assert.ok(code, silent.url.href);
    const stored = await server.provider.AuthorizationCode.find(code);
    assert.equal(stored?.scope, 'openid', 'no offline_access in a code the client may not ask it for');
    assert.equal(stored?.expiresWithSession, true, 'bound to the session it was issued in');
    const tokens = await oidc.authorizationCodeGrant(config, silent.url, { pkceCodeVerifier: silent.verifier, expectedState: oidc.skipStateCheck });
    assert.equal(tokens.refresh_token, undefined);
    assert.equal(tokens.scope, 'openid');
  });
});
