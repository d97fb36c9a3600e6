/**
 * The sixteenth passes, "endings must end, second angle" (docs/security-passes.md, "Looked at in
 * the sixteenth passes: endings by an operator, and timing, second angle (h15)"), black box: two
 * instances on one Redis behind the test's front door, an operator removing a stored API at one
 * (admin API) while an app refreshes a person's token for it and a client gets its own at the other,
 * back to back, then adding the API again. Held; pinned because no earlier test raced a removal
 * against issuance at another instance: nothing issued at either side of it lives on at
 * `latchkey/resource-server` following the feed or at the other instance's introspection, and the
 * refresh token reaches neither the removed API nor the one made again.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { acceptedBy, adminJson, basic, clientCredentialsToken, grantFeed, introspect, machineClient } from '../helpers/tokens.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';

const PASSWORD = 'sixteenth instances endings password of the person';
const REDIRECT = 'https://web.instances-sixteenth.example.test/callback';
const WEB = { id: 'web', secret: 'instances-sixteenth-web-secret-with-plenty-of-entropy-012345' };
const OPS = { id: 'ops', secret: 'instances-sixteenth-operator-secret-with-plenty-of-entropy-01' };
const RS = { id: 'rs', secret: 'instances-sixteenth-api-secret-with-plenty-of-entropy-0123456' };
const MACHINE = { id: 'machine', secret: 'instances-sixteenth-machine-secret-with-plenty-of-entropy-01' };
const API = 'https://stored.instances-sixteenth.example.test';

describe('e2e: sixteenth passes, an API removed at one instance while tokens for it are issued at another (held)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let door: Balancer;
  let dir: string;
  /** The operator's instance. */
  let a: TestServer;
  /** The app's and the client's instance. */
  let b: TestServer;
  const helpers: ResourceServer[] = [];

  before(async () => {
    [redis, door] = await Promise.all([startRedisServer(), startBalancer()]);
    dir = testDir();
    const clients = [{ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }, machineClient(OPS), machineClient(RS), machineClient(MACHINE)];
    const options = { redisUrl: redis.url, dir, clients, cheapHashing: true, env: { ISSUER: door.url } };
    a = await startServer(options);
    b = await startServer(options);
    await a.apis.grant(OPS.id, `${a.issuer}/admin`, { scopes: ['admin'] });
    await grantFeed(a, RS.id);
    await a.accounts.create('rhea', PASSWORD);
    await door.route(b.url);
  });
  after(async () => {
    for (const helper of helpers) helper.close();
    await b?.stop();
    await a?.stop();
    await door?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const answer = await adminJson(a.url, await clientCredentialsToken(a.url, OPS, `${a.issuer}/admin`, 'admin'), method, path, body);
    assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  };
  /** `latchkey/resource-server` for the API, following the feed, synced now. */
  const helper = async () => {
    const made = await createResourceServer({ issuer: door.url, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    helpers.push(made);
    await made.sync();
    return made;
  };
  const refreshAt = (server: TestServer, refreshToken: string, resource?: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, ...(resource ? { resource } : {}) }),
    });

  it('refreshes and client_credentials at B racing the API\'s removal at A: nothing issued lives on at the API or at B; the refresh token reaches neither the removed API nor the one made again', async () => {
    await admin('POST', '/apis', { identifier: API, scopes: ['read'] });
    await a.apis.grant(MACHINE.id, API, { scopes: ['read'] });
    const app = await oidc.discovery(new URL(door.url), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access read', resource: API, prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API });
    assert.ok(tokens.refresh_token, 'offline access');
    const api = await helper();
    assert.equal(await acceptedBy(api, tokens.access_token), true, 'the person’s JWT before the removal');

    // At B, back to back until refused: the app's refreshes and the client's own tokens; at A, the removal meanwhile.
    let refreshToken = tokens.refresh_token;
    const issued: string[] = [tokens.access_token];
    const refreshes = (async () => {
      for (let i = 0; i < 50; i += 1) {
        const body = (await (await refreshAt(b, refreshToken, API)).json()) as { access_token?: string; refresh_token?: string; error?: string };
        if (!body.access_token) return body.error;
        issued.push(body.access_token);
        refreshToken = body.refresh_token ?? refreshToken;
      }
      return 'never refused';
    })();
    const own = (async () => {
      for (let i = 0; i < 50; i += 1) {
        try {
          issued.push(await clientCredentialsToken(b.url, MACHINE, API, 'read'));
        } catch {
          return 'refused';
        }
      }
      return 'never refused';
    })();
    await admin('DELETE', `/apis/${encodeURIComponent(API)}`);
    assert.equal(await refreshes, 'invalid_target');
    assert.equal(await own, 'refused');

    await api.sync();
    for (const token of issued) assert.equal(await acceptedBy(api, token), false, 'a token issued at B before or across the removal, at the API following the feed');
    const afterwards = await refreshAt(b, refreshToken, API);
    assert.equal(afterwards.status, 400, 'the refresh token for the removed API');

    // The API made again under its identifier (at A) is another API: nothing from before reaches it.
    await admin('POST', '/apis', { identifier: API, scopes: ['read'] });
    await a.apis.grant(RS.id, API, { scopes: [], introspect: true });
    const remade = await refreshAt(b, refreshToken, API);
    assert.equal(remade.status, 400, `the refresh token for the API made again: ${await remade.text()}`);
    const later = await helper();
    for (const token of issued) {
      assert.equal(await acceptedBy(later, token), false, 'a token from before, at the API made again (a helper started after)');
      assert.equal((await introspect(b.url, RS, token)).active, false, 'a token from before, at B’s introspection');
    }
    // Nor does the client's operator grant come back with it.
    await assert.rejects(clientCredentialsToken(b.url, MACHINE, API, 'read'));
  });
});
