/**
 * Red team, fourteenth endings pass (docs/security-passes.md, "Looked at in the fourteenth endings pass").
 *
 * Endings racing the issuing, performed with concurrency against a running server: refreshes of a
 * person's grants fired in parallel with the ending, round after round, and afterwards nothing any
 * of them issued works (refresh refused, access token inactive at introspection and refused at
 * userinfo, refused by latchkey/resource-server following the feed for JWTs), whatever second it
 * was issued in. Nothing found: these pin what held. (The pass's refresh held deterministically
 * across an ending is in held-issuance-endings.test.ts, with the code exchange and the device poll.)
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { latchkey } from '../helpers/process.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, basic, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { eventually } from '../helpers/eventually.js';

const PASSWORD = 'fourteenth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

interface Issued {
  access: string[];
  refresh: string[];
}

describe('e2e: red team, fourteenth endings pass: endings racing the issuing', function () {
  this.timeout(120_000);
  let server: TestServer;
  let helper: ResourceServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { RESOURCE_SERVERS },
      clients: [machineClient(RS), { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' }],
    });
    await grantFeed(server, RS.id);
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    await helper.sync();
  });
  after(async () => {
    helper?.close();
    await server?.stop();
  });

  /** A sign-in of `username` at `app` (the web app by default) with offline access: its tokens. */
  async function signIn(username: string, resource?: string, app = WEB): Promise<{ access: string; refresh: string }> {
    const config = await oidc.discovery(new URL(server.issuer), app.id, app.secret, oidc.ClientSecretBasic(app.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: resource ? 'openid offline_access read' : 'openid offline_access', prompt: 'consent', ...(resource ? { resource } : {}) });
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, resource ? { resource } : undefined);
    if (resource) assert.equal(decodeJwt(tokens.access_token).aud, resource, 'a JWT for the API');
    return { access: tokens.access_token, refresh: tokens.refresh_token! };
  }

  const refresh = async (token: string, resource?: string, app = WEB) => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: app.id, client_secret: app.secret, ...(resource ? { resource } : {}) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  /** Refreshes `token` in a chain (each rotation's successor next) until refused or `stop()`; records all issued. */
  async function chain(token: string, issued: Issued, stop: () => boolean, resource?: string, app = WEB): Promise<void> {
    let current = token;
    for (let i = 0; i < 200 && !stop(); i += 1) {
      const { status, body } = await refresh(current, resource, app);
      if (status !== 200) return;
      issued.access.push(body.access_token!);
      issued.refresh.push(body.refresh_token!);
      current = body.refresh_token!;
    }
  }

  /** Nothing in `issued` works: refresh refused, access tokens inactive and refused at userinfo. */
  async function nothingWorks(issued: Issued, what: string, resource?: string, app = WEB): Promise<void> {
    for (const token of issued.refresh) {
      const { status, body } = await refresh(token, resource, app);
      assert.notEqual(status, 200, `${what}: a refresh token issued around the ending still refreshes (${JSON.stringify(body).slice(0, 80)})`);
    }
    if (resource) await helper.sync();
    for (const token of issued.access) {
      if (resource) assert.equal(await acceptedBy(helper, token), false, `${what}: a JWT issued around the ending is accepted by an API following the feed`);
      const info = await introspect(server.url, resource ? RS : WEB, token);
      assert.equal(info.active, false, `${what}: an access token issued around the ending is active (iat ${String(info.iat)})`);
      if (resource) continue;
      const me = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(me.status, 401, `${what}: an access token issued around the ending is accepted at userinfo`);
    }
  }

  it('a person disabled by an operator (CLI) while refreshes of their grants are in flight: nothing issued works after', async () => {
    await server.accounts.create('dora', PASSWORD);
    const grants = await Promise.all([0, 1, 2, 3].map(() => signIn('dora')));
    const issued: Issued = { access: grants.map((g) => g.access), refresh: grants.map((g) => g.refresh) };
    let done = false;
    const chains = grants.map((g) => chain(g.refresh, issued, () => done));
    // Some refreshes issued before the ending (not a fixed pause: on a loaded runner none had come by then); the chains go on across it.
    await eventually(async () => assert.ok(issued.access.length > grants.length), 200, 50);
    const run = await latchkey(server.env, ['users', 'disable', 'dora']);
    assert.equal(run.status, 0, run.stderr);
    await new Promise((resolve) => setTimeout(resolve, 300));
    done = true;
    await Promise.all(chains);
    assert.ok(issued.access.length > grants.length, 'some refreshes were issued around the ending');
    await nothingWorks(issued, 'users disable');
  });

  /** Operator endings (CLI), each raced by chained refreshes of four grants (JWTs for the API). */
  const operatorEndings: [string, (person: string, app: string) => string[], string?][] = [
    ['users remove', (person) => ['users', 'remove', person]],
    ['users passwd', (person) => ['users', 'passwd', person, '--password-stdin'], 'another password for this person entirely'],
    ['clients remove', (_person, app) => ['clients', 'remove', app]],
    ['grants revoke --client', (_person, app) => ['grants', 'revoke', '--client', app]],
  ];
  for (const [name, args, stdin] of operatorEndings) {
    it(`${name} while refreshes of four grants are in flight (JWTs for an API): nothing issued works after`, async () => {
      const tag = name.replace(/[^a-z]+/g, '-');
      const app = { id: `app-${tag}`, secret: `${tag}-client-secret-with-plenty-of-entropy-0123456789` };
      await server.clients.add({ client_id: app.id, client_secret: app.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' });
      const person = `person-${tag}`;
      await server.accounts.create(person, PASSWORD);
      const grants = await Promise.all([0, 1, 2, 3].map(() => signIn(person, API, app)));
      const issued: Issued = { access: grants.map((g) => g.access), refresh: grants.map((g) => g.refresh) };
      let done = false;
      const chains = grants.map((g) => chain(g.refresh, issued, () => done, API, app));
      // Some refreshes issued before the ending (not a fixed pause: on a loaded runner none had come by then); the chains go on across it.
      await eventually(async () => assert.ok(issued.access.length > grants.length), 200, 50);
      const run = await latchkey(server.env, args(person, app.id), stdin);
      assert.equal(run.status, 0, run.stderr);
      await new Promise((resolve) => setTimeout(resolve, 300));
      done = true;
      await Promise.all(chains);
      assert.ok(issued.access.length > grants.length, 'some refreshes were issued around the ending');
      await nothingWorks(issued, name, API, app);
    });
  }

  it("clients rotate-secret --grace 0 while the client's client_credentials requests are in flight: no token it got for itself works after", async () => {
    const app = { id: 'machine-rotated', secret: 'machine-rotated-client-secret-with-plenty-of-entropy-01' };
    await server.clients.add({ ...machineClient(app), grant_types: ['client_credentials'] });
    await server.apis.grant(app.id, API, { scopes: ['read'] });
    const issued: string[] = [];
    let done = false;
    const request = async () => {
      while (!done) {
        const response = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(app) },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
        });
        const body = (await response.json()) as { access_token?: string };
        if (response.status !== 200) return;
        issued.push(body.access_token!);
      }
    };
    const requests = Array.from({ length: 4 }, request);
    // Some tokens issued before the rotation (not a fixed pause: on a loaded runner none had come by then); the requests go on across it.
    await eventually(async () => assert.ok(issued.length > 4), 200, 50);
    const run = await latchkey(server.env, ['clients', 'rotate-secret', app.id, '--grace', '0']);
    assert.equal(run.status, 0, run.stderr);
    await new Promise((resolve) => setTimeout(resolve, 300));
    done = true;
    await Promise.all(requests);
    assert.ok(issued.length > 4, 'some tokens were issued around the rotation');
    await helper.sync();
    for (const token of issued) {
      assert.equal(await acceptedBy(helper, token), false, "a client's own JWT issued around the rotation is accepted by an API following the feed");
      assert.equal((await introspect(server.url, RS, token)).active, false, "a client's own token issued around the rotation is active");
    }
  });

  for (const [kind, resource] of [['opaque', undefined], ['JWT', API]] as const) {
    it(`a refresh token presented ten times at once (reuse racing its own rotation), ${kind}: the grant ends, nothing issued works after`, async () => {
      await server.accounts.create(`reuben-${kind}`, PASSWORD);
      for (let round = 0; round < 10; round += 1) {
        const grant = await signIn(`reuben-${kind}`, resource);
        const issued: Issued = { access: [grant.access], refresh: [grant.refresh] };
        const answers = await Promise.all(Array.from({ length: 10 }, () => refresh(grant.refresh, resource)));
        for (const { status, body } of answers) {
          if (status !== 200) continue;
          issued.access.push(body.access_token!);
          issued.refresh.push(body.refresh_token!);
        }
        assert.ok(answers.some((a) => a.status === 400), 'some presentation was refused as reuse');
        await nothingWorks(issued, `reuse round ${round} (${kind})`, resource);
      }
    });

    it(`a refresh token revoked (RFC 7009) while a refresh of the same grant is in flight, ${kind}: nothing issued works after`, async () => {
      await server.accounts.create(`ravi-${kind}`, PASSWORD);
      for (let round = 0; round < 10; round += 1) {
        const grant = await signIn(`ravi-${kind}`, resource);
        const issued: Issued = { access: [grant.access], refresh: [grant.refresh] };
        const revocation = fetch(`${server.url}/token/revocation`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token: grant.refresh, token_type_hint: 'refresh_token', client_id: WEB.id, client_secret: WEB.secret }),
        });
        const answers = await Promise.all(Array.from({ length: 3 }, (_, i) => new Promise((r) => setTimeout(r, i * 5)).then(() => refresh(grant.refresh, resource))));
        assert.equal((await revocation).status, 200);
        for (const { status, body } of answers) {
          if (status !== 200) continue;
          issued.access.push(body.access_token!);
          issued.refresh.push(body.refresh_token!);
        }
        await nothingWorks(issued, `revocation round ${round} (${kind})`, resource);
      }
    });
  }
});
