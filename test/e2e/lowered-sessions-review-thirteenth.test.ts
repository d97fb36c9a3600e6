/**
 * The thirteenth fresh-eyes passes' review of the merged changes (2026-12-07, docs/security-passes.md,
 * "review of the merged changes (h14)"). Found and fixed here: the start's scan that moves sessions'
 * ends under lowered session lifetimes (provider/backchannel-delivery.ts endsAsConfigured) ran only
 * when an instance had said longer session lifetimes in the store; a store whose sessions were saved
 * by a release that said none (the upgrade to the release that says them) was never scanned, so a
 * release upgraded with a lowered ttl.sessionMax left the session-bound JWTs issued before good to
 * their session's stored expiry.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer } from '../../src/resource-server/index.js';
import { lifetimeKey } from '../../src/store/keys.js';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { serverRestarts } from '../helpers/restarts.js';
import { signInSteps } from '../helpers/sign-in.js';
import { acceptedBy, basic, grantFeed, introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://review-thirteenth.example.test/callback';
const PASSWORD = 'thirteenth review of the merged changes passphrase';
const APP: ClientCredentials = { id: 'review-thirteenth', secret: 'review-thirteenth-client-secret-with-plenty-of-entropy-0123' };
const FILES = 'https://files.review-thirteenth.example.test';
/** Reads the revocation feed and introspects. */
const RS: ClientCredentials = { id: 'review-thirteenth-api', secret: 'review-thirteenth-api-secret-with-plenty-of-entropy-0123' };

describe('e2e: thirteenth fresh-eyes passes, review of the merged changes: lowered session lifetimes at an upgrade', function () {
  this.timeout(60_000);

  describe('session lifetimes lowered at the upgrade from a release that did not say them', () => {
    const restarts = serverRestarts('test');
    const settings = (seconds: number) => ({
      env: {
        TTL_SESSION: String(seconds),
        TTL_SESSION_MAX: String(seconds),
        TTL_ACCESS_TOKEN: '3600',
        BACKCHANNEL_SWEEP_INTERVAL: '0.2',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: FILES, scopes: ['read'], format: 'jwt', grants: [{ client_id: RS.id, introspect: true }] }]),
      },
      cheapHashing: true,
      clients: [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] }, machineClient(RS)],
    });

    it("ends a session-bound JWT issued before at its session's end as configured now, when no instance had said its session lifetimes", async () => {
      const server = await restarts.start(settings(3600));
      await grantFeed(server, RS.id);
      await server.accounts.create('ines', PASSWORD);
      const app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid read', resource: FILES, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const back = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'ines', password: PASSWORD, stopAt: REDIRECT });
      const code = new URL(back.url).searchParams.get('code');
      assert.ok(code, back.url);
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: FILES }) });
      const body = (await response.json()) as Record<string, string>;
      assert.equal(response.status, 200, JSON.stringify(body));
      const jwt = body.access_token!;
      assert.ok(decodeJwt(jwt).exp! - decodeJwt(jwt).iat! > 3000, 'bound to a session of an hour');
      // The release before said no session lifetimes in the store (it said the others: access, grant, …).
      await server.kv.del([lifetimeKey('session-idle:3600'), lifetimeKey('session-max:3600')]);

      // Upgraded, the operator lowers the session lifetimes to 2 s at the same restart.
      const lowered = await restarts.start(settings(2));
      const helper = await createResourceServer({ issuer: lowered.issuer, audience: FILES, clientId: RS.id, clientSecret: RS.secret, clockTolerance: 1, onError: () => {} });
      try {
        await eventually(async () => assert.equal((await introspect(lowered.url, RS, jwt)).active, false, 'at introspection'));
        await helper.sync();
        assert.equal(await acceptedBy(helper, jwt), false, 'at latchkey/resource-server');
      } finally {
        helper.close();
      }
    });
  });
});
