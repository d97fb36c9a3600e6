/**
 * The twelfth fresh-eyes pass at "more than was granted" (2026-12-07, docs/security-passes.md,
 * "more than granted, twelfth pass"), black box. Found and fixed here: an access token's lifetime
 * lowered (ttl.accessToken, ttl.clientCredentials, an API's accessTokenTTL) and restarted left the
 * tokens issued before good to the `exp` stamped under the longer one, at introspection (opaque and
 * JWT) and userinfo (the eleventh pass left it, performed).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { serverRestarts } from '../helpers/restarts.js';
import { signInSteps } from '../helpers/sign-in.js';
import { basic, clientCredentialsToken, introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://twelfth.example.test/callback';
const PASSWORD = 'twelfth fresh eyes granting passphrase';
const APP: ClientCredentials = { id: 'twelfth', secret: 'twelfth-client-secret-with-plenty-of-entropy-0123456789' };
/** A JWT API whose own lifetime stays an hour at both starts: its tokens are the control. */
const NOTES = 'https://notes.twelfth.example.test';
/** A JWT API whose own lifetime is lowered at the restart. */
const FILES = 'https://files.twelfth.example.test';
/** An opaque API with no lifetime of its own: the defaults (ttl.accessToken, ttl.clientCredentials). */
const LEDGER = 'https://ledger.twelfth.example.test';
/** Introspects the three APIs' tokens. */
const INTROSPECTOR: ClientCredentials = { id: 'twelfth-api', secret: 'twelfth-api-secret-with-plenty-of-entropy-0123456789' };
/** A client acting for itself at the three APIs. */
const MACHINE: ClientCredentials = { id: 'twelfth-machine', secret: 'twelfth-machine-secret-with-plenty-of-entropy-0123456789' };

describe('e2e: twelfth fresh-eyes pass, more than was granted', function () {
  this.timeout(60_000);

  describe('an access token lifetime lowered and restarted', () => {
    const restarts = serverRestarts('test');
    const settings = (seconds: number) => ({
      env: {
        TTL_ACCESS_TOKEN: String(seconds),
        TTL_CLIENT_CREDENTIALS: String(seconds),
        RESOURCE_SERVERS: JSON.stringify(
          [
            { identifier: NOTES, scopes: ['read'], format: 'jwt', accessTokenTTL: 3600 },
            { identifier: FILES, scopes: ['read'], format: 'jwt', accessTokenTTL: seconds },
            { identifier: LEDGER, scopes: ['read'], format: 'opaque' },
          ].map((api) => ({ ...api, grants: [{ client_id: INTROSPECTOR.id, introspect: true }, { client_id: MACHINE.id, scopes: ['read'] }] })),
        ),
      },
      cheapHashing: true,
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        machineClient(INTROSPECTOR),
        machineClient(MACHINE),
      ],
    });

    it('ends the tokens issued before at the lifetime configured now, opaque and JWT, people\'s and clients\' own, at introspection and userinfo; a token whose lifetime stayed is kept', async () => {
      const server = await restarts.start(settings(3600));
      await server.accounts.create('uma', PASSWORD, { email: 'uma@example.test' });
      const app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
      const call = async (params: Record<string, string>) => {
        const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) }, body: new URLSearchParams(params) });
        return { status: response.status, body: (await response.json()) as Record<string, string> };
      };
      const agent = new Agent();
      // One sign-in for the three APIs (RFC 8707 §2: `resource` repeated).
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid email offline_access read', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      for (const resource of [NOTES, FILES, LEDGER]) url.searchParams.append('resource', resource);
      const back = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'uma', password: PASSWORD, stopAt: REDIRECT });
      const code = new URL(back.url).searchParams.get('code');
      assert.ok(code, back.url);
      const first = await call({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      let refreshToken = first.body.refresh_token!;
      const people: Record<string, string> = { userinfo: first.body.access_token! };
      for (const [name, resource] of Object.entries({ notes: NOTES, files: FILES, ledger: LEDGER })) {
        const refreshed = await call({ grant_type: 'refresh_token', refresh_token: refreshToken, resource });
        assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
        people[name] = refreshed.body.access_token!;
        refreshToken = refreshed.body.refresh_token!;
      }
      assert.equal(decodeJwt(people.files!).exp! - decodeJwt(people.files!).iat!, 3600);
      const own = { notes: await clientCredentialsToken(server.url, MACHINE, NOTES), files: await clientCredentialsToken(server.url, MACHINE, FILES), ledger: await clientCredentialsToken(server.url, MACHINE, LEDGER) };
      const issuedBy = Date.now();

      // The operator lowers the lifetimes to 2 s (NOTES keeps its own hour) and restarts; 2 s pass.
      const lowered = await restarts.start(settings(2));
      await sleep(Math.max(0, issuedBy + 3_500 - Date.now()));
      const active = async (token: string, caller = INTROSPECTOR) => (await introspect(lowered.url, caller, token)).active;
      assert.equal(await active(people.files!), false, "a person's JWT at an API whose own lifetime was lowered");
      assert.equal(await active(people.ledger!), false, "a person's opaque token at an API of the default lifetime (ttl.accessToken)");
      assert.equal(await active(people.userinfo!, APP), false, "a person's opaque userinfo token (ttl.accessToken), at its app's introspection");
      assert.equal((await fetch(`${lowered.url}/me`, { headers: { authorization: `Bearer ${people.userinfo}` } })).status, 401, 'the same at userinfo');
      assert.equal(await active(own.files), false, "a client's own JWT at the API whose lifetime was lowered");
      assert.equal(await active(own.ledger), false, "a client's own opaque token (ttl.clientCredentials)");
      // Those whose lifetime stayed (NOTES's own hour) are kept, and say the exp they were issued with.
      const kept = await introspect(lowered.url, INTROSPECTOR, people.notes!);
      assert.equal(kept.active, true);
      assert.equal(kept.exp, decodeJwt(people.notes!).exp);
      assert.equal(await active(own.notes), true);
      // And the app goes on: its refresh token (ttl.refreshToken, unchanged) gets a token of the new lifetime.
      const fresh = await fetch(`${lowered.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, resource: LEDGER }) });
      const body = (await fresh.json()) as Record<string, unknown>;
      assert.equal(fresh.status, 200, JSON.stringify(body));
      assert.equal(body.expires_in, 2);
    });
  });
});
