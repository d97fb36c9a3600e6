/**
 * Endings raced by actions in flight, eleventh pass (docs/security-passes.md, "endings raced by
 * actions in flight, eleventh pass"), each held deterministically by the test relay. First, instance
 * A holds a client_credentials request after it read its client and its API grants (at its DPoP
 * proof's replay check), while the operator, at instance B's admin API, withdraws or narrows that
 * API grant, or removes the API and adds it again; the token the request then gets is checked where
 * an API looks: introspection and latchkey/resource-server (the feed). Then a requirement raised on
 * a client across its people's token requests, and an upstream link removed across a sign-in
 * through it (described at each).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { fakeUpstreamOf } from '../helpers/fake-upstream.js';
import { clientCredentialsInFlight, pastSecond, proof, RS } from '../helpers/in-flight.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { hasWrite, scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { acceptedBy, API, basic, grantFeed, introspect, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';

describe('e2e: endings raced by actions in flight, eleventh pass', function () {
  this.timeout(120_000);
  const flight = clientCredentialsInFlight();
  const { admin, endedInFlight } = flight;

  it("a client's API grant withdrawn (admin API at another instance) while its client_credentials request is in flight: the token that request gets is refused at the resource server", () =>
    endedInFlight('API grant withdrawn', async (client) => {
      const withdrawn = await admin(`/clients/${client.id}/grants/${encodeURIComponent(API)}`, { method: 'DELETE' });
      assert.equal(withdrawn.status, 204, await withdrawn.text());
    }));

  it("a client's API grant narrowed to other scopes (admin API at another instance) while its client_credentials request is in flight: the token that request gets is refused at the resource server", () =>
    endedInFlight('API grant narrowed', async (client) => {
      const narrowed = await admin(`/clients/${client.id}/grants/${encodeURIComponent(API)}`, { method: 'PUT', body: { scopes: ['write'] } });
      assert.equal(narrowed.status, 200, await narrowed.text());
    }));

  it('a stored API removed and added again under its identifier (admin API at another instance) while a client_credentials request for it is in flight: the token that request gets is refused by the new API', async () => {
    const STORED = `https://stored-${randomUUID().slice(0, 8)}.example.test`;
    await flight.server.apis.add({ identifier: STORED, scopes: ['read'] });
    const client = await flight.service(STORED);
    const storedHelper = await createResourceServer({ issuer: flight.server.issuer, audience: STORED, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    try {
      const { key, held } = await flight.tokenRequestHeld(client, STORED);
      const removed = await admin(`/apis/${encodeURIComponent(STORED)}`, { method: 'DELETE' });
      assert.equal(removed.status, 204, await removed.text());
      const added = await admin('/apis', { method: 'POST', body: { identifier: STORED, scopes: ['read'] } });
      assert.equal(added.status, 201, await added.text());
      await pastSecond(Math.floor(Date.now() / 1000));
      const answered = await held.release();
      assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
      const { access_token: token } = (await answered.json()) as { access_token?: string };
      if (!token) return;
      assert.deepEqual(await introspect(flight.server.url, RS, token), { active: false }, 'active at introspection');
      await storedHelper.sync();
      const url = `${STORED}/entries`;
      const accepted = await storedHelper.verify(`DPoP ${token}`, { dpop: { proof: await proof(key, 'GET', url, token), method: 'GET', url } }).then(() => true, () => false);
      assert.equal(accepted, false, `the new API accepts the token the request in flight got (iat ${decodeJwt(token).iat})`);
    } finally {
      storedHelper.close();
    }
  });
});

/**
 * A requirement an operator raises on a client (require_mfa, dpop_bound_access_tokens: the raised
 * mark, RevocationList.revokeRaised) while a person's token request for that client is held after
 * it read its grant (as held-issuance-endings holds it, at the consumption that begins its writes):
 * released a second later, the access token it got must work nowhere, and its refresh token must
 * not refresh as the sign-in it came from no longer may.
 */
describe('e2e: a requirement raised on a client while a token request of its people is in flight', function () {
  this.timeout(120_000);
  const HELD_PASSWORD = 'raised while held test password';
  const REDIRECT = 'https://app.example.test/callback';
  const CONSUMED = ['oidc:RefreshToken:', 'oidc:AuthorizationCode:', 'oidc:DeviceCode:'].map(scriptOn);
  let relayed: RelayedServer;
  let helper: ResourceServer;

  before(async () => {
    relayed = await startRelayedServer({ CLIENTS: JSON.stringify([machineClient(RS)]), RESOURCE_SERVERS });
    await grantFeed(relayed.server, RS.id);
    helper = await createResourceServer({ issuer: relayed.server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await relayed?.stop();
  });

  /** A stored web app (its settings the CLI changes) and a person's code for it, signed in with a password alone: its exchange, ready to send. */
  async function codeExchange(person: string, web: ClientCredentials): Promise<() => Promise<Response>> {
    const { server } = relayed;
    await server.clients.add({ client_id: web.id, client_secret: web.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], scope: 'openid offline_access read' });
    const config = await oidc.discovery(new URL(server.issuer), web.id, web.secret, oidc.ClientSecretBasic(web.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access read', prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username: person, password: HELD_PASSWORD, stopAt: REDIRECT });
    const code = new URL(done.url).searchParams.get('code');
    assert.ok(code, `no code at ${done.url}`);
    return () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(web) },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API }),
      });
  }

  /** A person's refresh token for a stored web app: its refresh, ready to send. */
  async function refresh(person: string, web: ClientCredentials): Promise<() => Promise<Response>> {
    const tokens = (await (await (await codeExchange(person, web))()).json()) as { refresh_token?: string };
    assert.ok(tokens.refresh_token, JSON.stringify(tokens));
    return () =>
      fetch(`${relayed.server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(web) },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: API }),
      });
  }

  const REQUESTS = { 'a refresh': refresh, 'the code exchange': codeExchange };
  const RAISED = { 'require_mfa': '--require-mfa', 'dpop_bound_access_tokens': '--dpop-bound-access-tokens' };

  for (const [what, start] of Object.entries(REQUESTS)) {
    for (const [raised, option] of Object.entries(RAISED)) {
      it(`${raised} raised (clients update) while ${what} of a password-only sign-in is held after it read the grant: the access token it gets works nowhere`, async () => {
        const { server, relay, env } = relayed;
        const suffix = randomUUID().slice(0, 8);
        const person = `raised-${suffix}`;
        const web: ClientCredentials = { id: `web-${suffix}`, secret: `web-secret-${randomUUID()}` };
        await server.accounts.create(person, HELD_PASSWORD);
        const request = await start(person, web);
        let sawGrant = false;
        const held = await relay.hold((chunk) => {
          if (sawGrant) return CONSUMED.some((consumed) => consumed(chunk));
          if (chunk.includes('oidc:Grant:')) sawGrant = true;
          return false;
        }, request);
        const run = await latchkey(env, ['clients', 'update', web.id, option]);
        assert.equal(run.status, 0, run.stderr);
        // The raised mark is of this second or an earlier one; the held request goes on in a later one.
        await pastSecond(Math.floor(Date.now() / 1000));
        const answered = await held.release();
        assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
        const body = (await answered.json()) as { access_token?: string; refresh_token?: string; error?: string };
        if (!body.access_token) return;
        await helper.sync();
        assert.equal(await acceptedBy(helper, body.access_token), false, `${raised}: the JWT the held request got is accepted by the resource server (iat ${decodeJwt(body.access_token).iat})`);
        assert.equal((await introspect(server.url, RS, body.access_token)).active, false, `${raised}: the JWT the held request got is active at introspection`);
        if (raised !== 'require_mfa' || !body.refresh_token) return;
        // A password-only sign-in's refresh token is refused once the app requires a second factor.
        const again = await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(web) },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: body.refresh_token, resource: API }),
        });
        assert.notEqual(again.status, 200, 'the refresh token the held request got still refreshes a password-only sign-in');
      });
    }
  }
});

/**
 * An upstream link removed while a sign-in through it is in flight: the upstream's callback is held
 * by the relay once it read the link (at its next write), while the link is removed at instance B
 * (straight on Redis, as the account page's "Remove" there writes it); released, the sign-in must
 * neither give the app a code that redeems nor leave the browser signed in.
 */
describe('e2e: an upstream link removed while a sign-in through it is in flight', function () {
  this.timeout(120_000);
  const UP_SECRET = 'races-eleventh-upstream-secret-with-entropy-0123';
  const REDIRECT = 'https://app.example.test/callback';
  const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
  let relayed: RelayedServer;
  let other: TestServer;
  let fake: Awaited<ReturnType<typeof fakeUpstreamOf>>;

  before(async () => {
    relayed = await startRelayedServer({
      CLIENTS: JSON.stringify([{ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid' }]),
      OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
    });
    fake = await fakeUpstreamOf(relayed.server, UP_SECRET);
    other = await startServer({ dir: dirname(relayed.env.KEYS_DIR!), port: await freePort(), redisUrl: relayed.env.REDIS_URL!, env: { CLIENTS: relayed.env.CLIENTS!, ISSUER: relayed.server.issuer, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
  });
  after(async () => {
    await other?.stop();
    await fake?.close();
    await relayed?.stop();
  });

  const HOLDS = {
    "the upstream's callback is held after it read it": hasWrite,
    "the sign-in's resume is held at its write of the session": scriptOn('oidc:Session:'),
  };
  for (const [where, heldAt] of Object.entries(HOLDS)) it(`the link removed (at another instance) while ${where}: no code that redeems, no session`, async () => {
    const { server, relay } = relayed;
    const upstreamSub = `linked-${randomUUID().slice(0, 8)}`;
    const account = await server.accounts.create(`races-${upstreamSub}`, 'races eleventh link test password');
    assert.ok(await new UpstreamLinks(server.kv, server.accounts).linkConfirmed('fake', upstreamSub, account.sub, {}, fake.state.issuer));
    fake.state.mode = 'good';
    fake.state.sub = upstreamSub;
    const verifier = randomUUID() + randomUUID();
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const params = new URLSearchParams({ client_id: WEB.id, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', upstream: 'fake' });
    const agent = new Agent();
    let sawLink = false;
    const held = await relay.hold((chunk) => {
      if (sawLink) return heldAt(chunk);
      if (chunk.includes(`account:link:fake:${upstreamSub}`)) sawLink = true;
      return false;
    }, () => agent.follow(`${server.issuer}/auth?${params}`, {}, REDIRECT));
    assert.equal(await new UpstreamLinks(other.kv, other.accounts).remove(account.sub, `fake:${upstreamSub}`), true);
    const signedIn = await held.release();
    // A sign-in that went on is asked the app's consent: allowed, as the person would.
    const done = /Allow access/.test(signedIn.html) ? await agent.submit(signedIn, '/confirm', {}, REDIRECT) : signedIn;
    const code = new URL(done.url).searchParams.get('code');
    if (code) {
      const exchanged = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
      });
      assert.notEqual(exchanged.status, 200, 'the code of a sign-in through a removed link redeems');
    }
    const silent = new URLSearchParams({ client_id: WEB.id, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', prompt: 'none' });
    const again = await agent.follow(`${server.issuer}/auth?${silent}`, {}, REDIRECT);
    assert.equal(new URL(again.url).searchParams.get('error'), 'login_required', `the browser is still signed in through the removed link: ${again.url}`);
  });
});
