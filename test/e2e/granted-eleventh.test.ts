/**
 * The eleventh fresh-eyes pass at "more than was granted" (2026-12-07, docs/security-passes.md,
 * "more than was granted, eleventh pass"), black box. Found and fixed here: a second factor required
 * everywhere (accounts.mfa.required) turned on at a restart left the access tokens of password-only
 * sign-ins good to their `exp` at introspection, userinfo and every API (the tenth pass ended them for
 * a client's own `require_mfa` and left this, the operator's requirement for every client).
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { serverRestarts } from '../helpers/restarts.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { acceptedBy, basic, clientCredentialsToken, grantFeed, introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';
import { createResourceServer } from '../../src/resource-server/index.js';

const REDIRECT = 'https://eleventh.example.test/callback';
const PASSWORD = 'eleventh fresh eyes granting passphrase';
const APP: ClientCredentials = { id: 'eleventh', secret: 'eleventh-client-secret-with-plenty-of-entropy-0123456789' };
const NOTES = 'https://notes.eleventh.example.test';
/** The notes API: introspects its tokens and reads the revocation feed. */
const NOTES_API: ClientCredentials = { id: 'eleventh-notes-api', secret: 'eleventh-notes-api-secret-with-plenty-of-entropy-0123456789' };
/** A client acting for itself at the notes API. */
const MACHINE: ClientCredentials = { id: 'eleventh-machine', secret: 'eleventh-machine-secret-with-plenty-of-entropy-0123456789' };

describe('e2e: eleventh fresh-eyes pass, more than was granted', function () {
  this.timeout(60_000);

  describe('a second factor required everywhere, turned on at a restart', () => {
    const restarts = serverRestarts('test');
    const settings = (mfaRequired: boolean) => ({
      env: {
        ACCOUNTS_MFA_REQUIRED: String(mfaRequired),
        RESOURCE_SERVERS: JSON.stringify([{ identifier: NOTES, scopes: ['read'], format: 'jwt', grants: [{ client_id: NOTES_API.id, introspect: true }, { client_id: MACHINE.id, scopes: ['read'] }] }]),
      },
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        machineClient(NOTES_API),
        machineClient(MACHINE),
      ],
    });

    it("ends the access tokens people hold from before (introspection, userinfo, an API verifying locally), as a client's own require_mfa does; a client's own tokens stay", async () => {
      const server = await restarts.start(settings(false));
      await server.accounts.create('yara', PASSWORD, { email: 'yara@example.test' });
      await grantFeed(server, NOTES_API.id);
      const app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
      const call = async (params: Record<string, string>) => {
        const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) }, body: new URLSearchParams(params) });
        return { status: response.status, body: (await response.json()) as Record<string, string> };
      };
      const agent = new Agent();
      const started = await startAuthorization(agent, app, REDIRECT, { scope: 'openid email offline_access read', resource: NOTES });
      const back = await signInSteps(agent, started.page, { username: 'yara', password: PASSWORD, stopAt: REDIRECT });
      const code = new URL(back.url).searchParams.get('code');
      assert.ok(code, back.url);
      const api = await call({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: started.verifier, resource: NOTES });
      assert.equal(api.status, 200, JSON.stringify(api.body));
      assert.equal(decodeJwt(api.body.access_token!).acr, 'pwd');
      const userinfo = await call({ grant_type: 'refresh_token', refresh_token: api.body.refresh_token! });
      assert.equal(userinfo.status, 200, JSON.stringify(userinfo.body));
      const jwt = api.body.access_token!;
      const opaque = userinfo.body.access_token!;
      const own = await clientCredentialsToken(server.url, MACHINE, NOTES, 'read');

      // The operator requires a second factor of everyone, and restarts.
      const required = await restarts.start(settings(true));
      assert.equal((await introspect(required.url, NOTES_API, jwt)).active, false, "a password-only sign-in's JWT at its API's introspection");
      assert.equal((await introspect(required.url, APP, opaque)).active, false, "a password-only sign-in's opaque token at the app's own introspection");
      assert.equal((await fetch(`${required.url}/me`, { headers: { authorization: `Bearer ${opaque}` } })).status, 401, "a password-only sign-in's token at userinfo");
      const helper = await createResourceServer({ issuer: required.issuer, audience: NOTES, clientId: NOTES_API.id, clientSecret: NOTES_API.secret });
      try {
        assert.equal(await acceptedBy(helper, jwt), false, 'an API verifying locally (the feed)');
        assert.equal(await acceptedBy(helper, own), true, "a client's own token (client_credentials) is no person's sign-in");
      } finally {
        helper.close();
      }
      assert.equal((await introspect(required.url, NOTES_API, own)).active, true);

      // Started again with the requirement on, nothing more ends.
      const again = await restarts.start(settings(true));
      assert.equal((await introspect(again.url, NOTES_API, own)).active, true);
    });
  });
});
