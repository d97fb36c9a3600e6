/**
 * The thirteenth fresh-eyes pass at endings when configuration lowers a lifetime (2026-12-07,
 * docs/security-passes.md, "endings when configuration lowers a lifetime or a bound"), black box:
 * issue, lower, restart, ask. Found and fixed here: an access token lifetime lowered and restarted
 * (ttl.accessToken, ttl.clientCredentials, an API's accessTokenTTL) ended the JWTs issued before at
 * introspection (twelfth passes) but not at an API verifying them locally with
 * `latchkey/resource-server`, which took them to the `exp` stamped under the longer lifetime; a
 * rotated-out client secret went on authenticating its client to the end of the grace given at its
 * rotation after registration.secretRotationGrace, which bounds every grace, was lowered; a Client ID
 * Metadata Document cached before clientMetadataDocuments.cacheMax was lowered was taken to the end
 * of the longer cache lifetime, its changes unread; a session-bound JWT (no offline_access) outlived
 * its session's end under a lowered ttl.sessionMax, at introspection and at latchkey/resource-server,
 * to the session's stored expiry, when the sweep ends its grant.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer } from '../../src/resource-server/index.js';
import { RevocationList } from '../../src/revocation/list.js';
import { lifetimeKey } from '../../src/store/keys.js';
import { Agent } from '../helpers/agent.js';
import { documentHost } from '../helpers/document-host.js';
import { eventually } from '../helpers/eventually.js';
import { serverRestarts } from '../helpers/restarts.js';
import type { TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';
import { acceptedBy, basic, clientCredentialsToken, grantFeed, introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://thirteenth.example.test/callback';
const PASSWORD = 'thirteenth fresh eyes lifetimes passphrase';
const APP: ClientCredentials = { id: 'thirteenth', secret: 'thirteenth-client-secret-with-plenty-of-entropy-0123456789' };
/** A JWT API whose own lifetime stays an hour at both starts: its tokens are the control. */
const NOTES = 'https://notes.thirteenth.example.test';
/** A JWT API whose own lifetime is lowered at the restart. */
const FILES = 'https://files.thirteenth.example.test';
/** A JWT API with no lifetime of its own: the defaults (ttl.accessToken, ttl.clientCredentials). */
const DOCS = 'https://docs.thirteenth.example.test';
/** Reads the revocation feed (the APIs' helpers) and introspects. */
const RS: ClientCredentials = { id: 'thirteenth-api', secret: 'thirteenth-api-secret-with-plenty-of-entropy-0123456789' };
/** A client acting for itself at the three APIs. */
const MACHINE: ClientCredentials = { id: 'thirteenth-machine', secret: 'thirteenth-machine-secret-with-plenty-of-entropy-0123456789' };

describe('e2e: thirteenth fresh-eyes pass, endings when configuration lowers a lifetime', function () {
  this.timeout(60_000);

  describe('an access token lifetime lowered and restarted, at an API verifying JWTs locally', () => {
    const restarts = serverRestarts('test');
    const settings = (seconds: number) => ({
      env: {
        TTL_ACCESS_TOKEN: String(seconds),
        TTL_CLIENT_CREDENTIALS: String(seconds),
        RESOURCE_SERVERS: JSON.stringify(
          [
            { identifier: NOTES, scopes: ['read'], format: 'jwt', accessTokenTTL: 3600 },
            { identifier: FILES, scopes: ['read'], format: 'jwt', accessTokenTTL: seconds },
            { identifier: DOCS, scopes: ['read'], format: 'jwt' },
          ].map((api) => ({ ...api, grants: [{ client_id: RS.id, introspect: true }, { client_id: MACHINE.id, scopes: ['read'] }] })),
        ),
      },
      cheapHashing: true,
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        machineClient(RS),
        machineClient(MACHINE),
      ],
    });

    /** Whether `token` is accepted now by a helper for `audience` that tolerates 1 s of skew (the default 15 s would outlast the test's 2 s). */
    const acceptedAt = async (issuer: string, audience: string, token: string) => {
      const helper = await createResourceServer({ issuer, audience, clientId: RS.id, clientSecret: RS.secret, clockTolerance: 1, onError: () => {} });
      try {
        await helper.sync();
        return await acceptedBy(helper, token);
      } finally {
        helper.close();
      }
    };

    it("ends the JWTs issued before at the lifetime configured now, people's and clients' own, at latchkey/resource-server; a token whose lifetime stayed, and one issued after, are kept", async () => {
      const server = await restarts.start(settings(3600));
      await grantFeed(server, RS.id);
      await server.accounts.create('ines', PASSWORD, { email: 'ines@example.test' });
      const app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
      const call = async (url: string, params: Record<string, string>) => {
        const response = await fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) }, body: new URLSearchParams(params) });
        return { status: response.status, body: (await response.json()) as Record<string, string> };
      };
      const agent = new Agent();
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid offline_access read', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      for (const resource of [NOTES, FILES, DOCS]) url.searchParams.append('resource', resource);
      const back = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'ines', password: PASSWORD, stopAt: REDIRECT });
      const code = new URL(back.url).searchParams.get('code');
      assert.ok(code, back.url);
      const first = await call(server.url, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      let refreshToken = first.body.refresh_token!;
      const people: Record<string, string> = {};
      for (const [name, resource] of Object.entries({ notes: NOTES, files: FILES, docs: DOCS })) {
        const refreshed = await call(server.url, { grant_type: 'refresh_token', refresh_token: refreshToken, resource });
        assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
        people[name] = refreshed.body.access_token!;
        refreshToken = refreshed.body.refresh_token!;
      }
      assert.equal(decodeJwt(people.docs!).exp! - decodeJwt(people.docs!).iat!, 3600);
      const own = { notes: await clientCredentialsToken(server.url, MACHINE, NOTES), files: await clientCredentialsToken(server.url, MACHINE, FILES), docs: await clientCredentialsToken(server.url, MACHINE, DOCS) };
      const issuedBy = Date.now();

      // The operator lowers the lifetimes to 2 s (NOTES keeps its own hour) and restarts; 2 s and the helpers' 1 s of skew pass.
      const lowered = await restarts.start(settings(2));
      await sleep(Math.max(0, issuedBy + 4_500 - Date.now()));
      const accepted = (audience: string, token: string) => acceptedAt(lowered.issuer, audience, token);
      assert.equal((await introspect(lowered.url, RS, people.files!)).active, false, 'introspection ends it (twelfth passes)');
      assert.equal(await accepted(FILES, people.files!), false, "a person's JWT at an API whose own lifetime was lowered");
      assert.equal(await accepted(DOCS, people.docs!), false, "a person's JWT at an API of the default lifetime (ttl.accessToken)");
      assert.equal(await accepted(FILES, own.files), false, "a client's own JWT at the API whose lifetime was lowered");
      assert.equal(await accepted(DOCS, own.docs), false, "a client's own JWT at an API of the default lifetime (ttl.clientCredentials)");
      // Those whose lifetime stayed (NOTES's own hour) are kept.
      assert.equal(await accepted(NOTES, people.notes!), true);
      assert.equal(await accepted(NOTES, own.notes), true);
      // A token issued under the new lifetime is taken within it.
      const fresh = await call(lowered.url, { grant_type: 'refresh_token', refresh_token: refreshToken, resource: DOCS });
      assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
      assert.equal(await accepted(DOCS, fresh.body.access_token!), true);
    });
  });

  describe('the secret rotation grace lowered and restarted', () => {
    const restarts = serverRestarts('test');
    const settings = (grace: number) => ({
      env: { REGISTRATION_SECRET_ROTATION_GRACE: String(grace), RESOURCE_SERVERS: JSON.stringify([{ identifier: FILES, scopes: ['read'], format: 'jwt' }]) },
      cheapHashing: true,
    });
    const token = (url: string, client: ClientCredentials) =>
      fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) }, body: new URLSearchParams({ grant_type: 'client_credentials', resource: FILES, scope: 'read' }) });

    it('ends the grace of a secret rotated out before at the grace configured now; the new secret works', async () => {
      const server = await restarts.start(settings(3600));
      await server.clients.add(machineClient(MACHINE));
      await server.apis.grant(MACHINE.id, FILES, { scopes: ['read'] });
      const fresh = (await server.clients.rotateSecret(MACHINE.id, 3600)).client_secret as string;
      assert.equal((await token(server.url, MACHINE)).status, 200, 'the old secret in its grace');
      const rotatedBy = Date.now();

      // The operator lowers the grace every rotation gets to a second and restarts; 2 s pass.
      const lowered = await restarts.start(settings(1));
      await sleep(Math.max(0, rotatedBy + 2_500 - Date.now()));
      assert.equal((await token(lowered.url, MACHINE)).status, 401, 'the old secret past the grace configured now');
      assert.equal((await token(lowered.url, { id: MACHINE.id, secret: fresh })).status, 200, 'the new secret');
    });
  });

  describe('the Client ID Metadata Documents cache lifetime lowered and restarted', () => {
    const restarts = serverRestarts('test');
    const host = documentHost('openid');
    const settings = (seconds: number) => ({
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_ENABLED: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: String(seconds), CLIENT_METADATA_DOCUMENTS_CACHE_MAX: String(seconds) },
      cheapHashing: true,
    });
    /** The authorization endpoint's answer to a code request of the document's client at `redirect`: 303 to the sign-in, or 400. */
    const authorize = async (url: string, redirect: string) => {
      const query = new URLSearchParams({ client_id: `${host.base}/agent.json`, redirect_uri: redirect, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
      return (await fetch(`${url}/auth?${query}`, { redirect: 'manual' })).status;
    };

    it('reads a document cached before again once the lifetime configured now has passed: its redirect URI taken out is refused', async () => {
      const server = await restarts.start(settings(3600));
      host.change(undefined);
      assert.equal(await authorize(server.url, `${host.base}/callback`), 303, 'the document read and cached for an hour');
      const cachedBy = Date.now();
      host.change({ redirect_uris: [`${host.base}/elsewhere`] });

      // The operator lowers the cache lifetime to a second and restarts; 2 s pass.
      const lowered = await restarts.start(settings(1));
      await sleep(Math.max(0, cachedBy + 2_500 - Date.now()));
      assert.equal(await authorize(lowered.url, `${host.base}/callback`), 400, 'the redirect URI the document no longer lists');
      assert.equal(await authorize(lowered.url, `${host.base}/elsewhere`), 303, 'the one it lists now');
    });
  });

  describe('the session maximum lowered and restarted', () => {
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

    it('a start reads the sessions to move their ends only when an instance said longer session lifetimes in the store (it reads every session holding an app)', async () => {
      const server = await restarts.start(settings(3600));
      // What a start with these settings reads (main.ts: the scan runs when the store's are longer).
      const lowered = (idle: number, max: number) => new RevocationList(server.kv, { skew: 0, accessTokenLifetime: 60, sessionLifetimes: { idle, max } }).sessionLifetimesLowered();
      assert.equal(await lowered(2, 2), true, 'lowered: longer ones said');
      assert.equal(await lowered(3600, 3600), false, 'the same: none longer');
      assert.equal(await lowered(7200, 3600), false, 'raised: none longer');
      assert.equal(await lowered(3600, 2), true, 'one lowered');
    });

    /** A session-bound JWT of a session of an hour; `before` runs on the first server before the restart with sessions of 2 s. */
    const endsAtLoweredEnd = async (before: (server: TestServer) => Promise<void> = async () => {}) => {
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
      await before(server);

      // The operator lowers the session lifetimes to 2 s and restarts; the session ends 2 s after the sign-in.
      const lowered = await restarts.start(settings(2));
      const helper = await createResourceServer({ issuer: lowered.issuer, audience: FILES, clientId: RS.id, clientSecret: RS.secret, clockTolerance: 1, onError: () => {} });
      try {
        await eventually(async () => assert.equal((await introspect(lowered.url, RS, jwt)).active, false, 'at introspection'));
        await helper.sync();
        assert.equal(await acceptedBy(helper, jwt), false, 'at latchkey/resource-server');
      } finally {
        helper.close();
      }
    };

    it("ends a session-bound JWT issued before at its session's end as configured now, at introspection and at latchkey/resource-server", () => endsAtLoweredEnd());

    // Review of the merged changes (h14): the scan ran only when an instance had said longer session
    // lifetimes, and a release before said none, so the upgrade that lowered them never scanned.
    it("ends a session-bound JWT issued before at its session's end as configured now, when no instance had said its session lifetimes (an upgrade)", () =>
      endsAtLoweredEnd(async (server) => {
        // The release before said no session lifetimes in the store (it said the others: access, grant, …).
        await server.kv.del([lifetimeKey('session-idle:3600'), lifetimeKey('session-max:3600')]);
      }));
  });
});
