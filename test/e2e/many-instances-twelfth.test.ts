/**
 * Many instances on one store, twelfth fresh-eyes pass (docs/security-passes.md, "many instances on
 * one store"): a setting raised at one instance's restart while another instance still runs the old
 * one, during a rolling restart.
 *
 * accounts.mfa.required turned on ends, at the first start that sees it on, the access tokens people
 * hold from before (main.ts, revocation/list.ts revokeRaisedEverywhere). An instance not restarted yet
 * goes on signing people in with a password alone, and what it issues after that ending is of a later
 * second: the ending does not reach it. When that instance restarts with the new setting it found the
 * setting recorded as on already, and ended nothing: its password-only tokens stayed good to their
 * `exp` at introspection, userinfo and every API once every instance required a second factor.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { API, OPAQUE_API, RESOURCE_SERVERS, introspect, machineClient } from '../helpers/tokens.js';

const PASSWORD = 'many instances twelfth password';
const REDIRECT = 'https://app.example.test/callback';
const APP = { id: 'app', secret: 'app-client-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const CLIENTS = [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }, machineClient(RS)];

describe('e2e: many instances on one store, twelfth pass', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let dir: string;
  /** The issuer's address: a front door to the instances (every new connection to the one routed to). */
  let door: Balancer;
  const running: TestServer[] = [];

  beforeEach(async () => {
    redis = await startRedisServer();
    dir = testDir();
    door = await startBalancer();
  });
  afterEach(async () => {
    for (const server of running.splice(0)) await server.stop();
    await door?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An instance on the shared store and directory, answering for the one issuer. */
  async function instance(mfaRequired: boolean): Promise<TestServer> {
    const server = await startServer({
      redisUrl: redis.url,
      dir,
      clients: CLIENTS,
      cheapHashing: true,
      env: { ISSUER: door.url, RESOURCE_SERVERS, ACCOUNTS_MFA_REQUIRED: String(mfaRequired) },
    });
    running.push(server);
    return server;
  }
  const stop = async (server: TestServer) => {
    running.splice(running.indexOf(server), 1);
    await server.stop();
  };

  /** A password-only sign-in at `server` (the front door routed to it), the code exchanged there: the access tokens for the JWT API and the opaque one. */
  async function passwordOnlyTokens(server: TestServer) {
    door.route(server.url);
    const app = await oidc.discovery(new URL(door.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const tokens: string[] = [];
    for (const resource of [API, OPAQUE_API]) {
      const flow = await frontChannel(app, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid read', resource } });
      tokens.push((await oidc.authorizationCodeGrant(app, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource })).access_token);
    }
    return tokens;
  }

  it('accounts.mfa.required turned on in a rolling restart: what an instance still running without it issued after the first restart ends when that instance restarts with it', async () => {
    // Two instances without the setting; one restarts with it (the ending of what was issued before it).
    const old = await instance(false);
    const first = await instance(false);
    await old.accounts.create('alice', PASSWORD);
    await stop(first);
    const turned = await instance(true);
    // The instance not restarted yet signs alice in with her password alone, after that ending.
    const issued = await passwordOnlyTokens(old);
    for (const token of issued) assert.equal((await introspect(turned.url, RS, token)).active, true, 'issued after the first restart: live while an instance runs without the setting');
    // That instance restarts with the setting: every instance requires a second factor now.
    await stop(old);
    const restarted = await instance(true);
    for (const server of [turned, restarted]) {
      for (const token of issued) assert.equal((await introspect(server.url, RS, token)).active, false, `a password-only token issued by the old instance still active at ${server.url === turned.url ? 'the first' : 'the second'} restarted instance`);
    }
  });
});
