/**
 * The thirteenth fresh-eyes passes of 2026-12-07, "endings that do not end" (docs/security-passes.md,
 * "Looked at in the thirteenth fresh-eyes passes of 2026-12-07: endings that do not end"), black box.
 *
 * Found and fixed: latchkey/resource-server checked a token's signing key against the revocation list
 * before the signature and the DPoP proof only; a key revoked (and read from the feed) while those
 * checks waited (a slow replay store shared by the API's instances) let the token through, though the
 * final check of the list came after the helper knew. The final check now names the key too.
 *
 * Held (kept): the endings a person or an app makes themselves (not the operator's CLI, which
 * held-issuance-endings holds), at a second instance on the same Redis, while a token request at the
 * first is held (the test relay) after it read its grant, at the consumption that begins its writes:
 * the app's own RFC 7009 revocation of the refresh token being refreshed, and the person's "Withdraw
 * access" on the account page. Each held request is answered invalid_grant; were it to get tokens,
 * they would have to work nowhere (latchkey/resource-server, introspection, refresh).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent, formIn } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signedInToAccountPage, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { latchkey } from '../helpers/process.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, basic, grantFeed, introspect, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const PASSWORD = 'thirteenth held endings test password';
const REDIRECT = 'https://app.thirteenth.example.test/callback';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const CONSUMED = ['oidc:RefreshToken:', 'oidc:AuthorizationCode:'].map(scriptOn);

describe('e2e: thirteenth fresh-eyes pass, endings a person or an app makes at another instance while a token request is held after it read its grant', function () {
  this.timeout(120_000);
  let relayed: RelayedServer;
  let b: TestServer;
  let helper: ResourceServer;

  before(async () => {
    const clients = JSON.stringify([
      machineClient(RS),
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' },
    ]);
    relayed = await startRelayedServer({ CLIENTS: clients, RESOURCE_SERVERS });
    const a = relayed.server;
    b = await startServer({ dir: dirname(a.env.KEYS_DIR!), port: await freePort(), redisUrl: relayed.redis.url, env: { CLIENTS: clients, RESOURCE_SERVERS, ISSUER: a.issuer } });
    await grantFeed(a, RS.id);
    helper = await createResourceServer({ issuer: a.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
  });
  after(async () => {
    helper?.close();
    await b?.stop();
    await relayed?.stop();
  });

  /** The person's code for the web app (signed in at instance A): its exchange there, ready to send. */
  async function codeExchange(person: string) {
    const { server } = relayed;
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access read', prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username: person, password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(done.url).searchParams.get('code');
    assert.ok(code, `no code at ${done.url}`);
    return () => token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API });
  }

  const token = (fields: Record<string, string>, url = relayed.server.url) =>
    fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) }, body: new URLSearchParams(fields) });

  /** `request` held after it read its grant while `ending` runs; what it issues, checked everywhere. */
  async function heldAcross(request: () => Promise<Response>, ending: () => Promise<void>, name: string) {
    let sawGrant = false;
    const held = await relayed.relay.hold((chunk) => {
      if (sawGrant) return CONSUMED.some((consumed) => consumed(chunk));
      if (chunk.includes('oidc:Grant:')) sawGrant = true;
      return false;
    }, request);
    await ending();
    // The ending's marks are of this second or an earlier one; the held request goes on in a later one.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const answered = await held.release();
    assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
    const body = (await answered.json()) as { access_token?: string; refresh_token?: string; error?: string };
    if (!body.access_token) {
      assert.deepEqual([answered.status, body.error], [400, 'invalid_grant'], `${name}: the held request's refusal`);
      return;
    }
    assert.equal(decodeJwt(body.access_token).aud, API, 'a JWT for the API');
    await helper.sync();
    assert.equal(await acceptedBy(helper, body.access_token), false, `${name}: the JWT the held request got is accepted`);
    assert.equal((await introspect(b.url, RS, body.access_token)).active, false, `${name}: the JWT the held request got is active`);
    assert.ok(body.refresh_token, 'offline access was granted: a refresh token');
    const again = await token({ grant_type: 'refresh_token', refresh_token: body.refresh_token, resource: API }, b.url);
    assert.notEqual(again.status, 200, `${name}: the refresh token the held request got still refreshes`);
  }

  it("the app's RFC 7009 revocation of its refresh token (at another instance) while a refresh of that token is held after it read the grant: what the refresh gets works nowhere", async () => {
    await relayed.server.accounts.create('rita', PASSWORD);
    const tokens = (await (await (await codeExchange('rita'))()).json()) as { refresh_token?: string };
    assert.ok(tokens.refresh_token, JSON.stringify(tokens));
    await heldAcross(
      () => token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: API }),
      async () => {
        const { status } = await tokenEndpoint(b.url, '/token/revocation', WEB, tokens.refresh_token!);
        assert.equal(status, 200);
      },
      'RFC 7009 revocation',
    );
  });

  for (const [what, start] of Object.entries({
    'a refresh': async (person: string) => {
      const tokens = (await (await (await codeExchange(person))()).json()) as { refresh_token?: string };
      assert.ok(tokens.refresh_token, JSON.stringify(tokens));
      return () => token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: API });
    },
    'the code exchange': codeExchange,
  })) {
    it(`"Withdraw access" on the account page (at another instance) while ${what} is held after it read the grant: what it issues works nowhere`, async () => {
      const person = `withdrawn-${what.replace(/[^a-z]+/g, '-')}`;
      await relayed.server.accounts.create(person, PASSWORD);
      const request = await start(person);
      const { agent, page } = await signedInToAccountPage(relayed.server.issuer, person, PASSWORD);
      await heldAcross(
        request,
        async () => {
          // The same browser's session, its form sent to instance B.
          const done = await fetch(`${b.url}/account/apps/withdraw`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: agent.cookieHeader(relayed.server.issuer) },
            body: new URLSearchParams({ csrf: formIn(page.html, '/apps/withdraw').hidden.csrf!, client: WEB.id }),
            redirect: 'manual',
          });
          assert.ok([200, 303].includes(done.status), `the withdrawal at instance B: ${done.status} ${await done.text()}`);
        },
        'Withdraw access',
      );
    });
  }
});

describe('e2e: thirteenth fresh-eyes pass, endings that do not end: a signing key revoked while latchkey/resource-server is checking a token it signed', function () {
  this.timeout(90_000);
  const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
  let server: TestServer;
  let helper: ResourceServer | undefined;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [machineClient(MACHINE), machineClient(RS)], env: { RESOURCE_SERVERS } });
    await grantFeed(server, RS.id);
  });
  after(async () => {
    helper?.close();
    await server?.stop();
  });

  it("a DPoP-bound token whose check waits on the API's replay store while its signing key is revoked and the feed read: refused, not accepted", async () => {
    // The API's shared replay store (its instances share one), slow to answer this once: the
    // check waits there while the key is revoked and the helper reads the feed.
    let reached!: () => void;
    const atStore = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const replay = {
      async unique() {
        reached();
        await released;
        return true;
      },
    };
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {}, dpop: { replay } });

    const config = await oidc.discovery(new URL(server.issuer), MACHINE.id, MACHINE.secret, oidc.ClientSecretBasic(MACHINE.secret), { execute: [oidc.allowInsecureRequests] });
    const key = await generateKeyPair('ES256', { extractable: true });
    const tokens = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'read' }, { DPoP: oidc.getDPoPHandle(config, key) });
    const token = tokens.access_token;
    const { kid } = decodeProtectedHeader(token);
    assert.equal(kid, server.keys.ring.current!.kid);
    const url = 'https://api.example.test/things';
    const proof = await new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: 'GET', htu: url, ath: createHash('sha256').update(token).digest('base64url') })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
      .sign(key.privateKey);

    const checked = helper.verify(`DPoP ${token}`, { dpop: { proof, method: 'GET', url } }).then(
      () => 'accepted',
      (error: Error) => (error instanceof TokenRejected ? error.message : Promise.reject(error)),
    );
    await atStore;
    const run = await latchkey(server.env, ['keys', 'revoke', '--', kid!]);
    assert.equal(run.status, 0, run.stderr);
    await helper.sync();
    release();
    const answer = await checked;
    assert.match(answer, /revoked/, `the token the revoked key signed, whose check ended after the helper knew of the revocation: ${answer}`);
    assert.equal((await introspect(server.url, RS, token)).active, false, 'introspection refuses it');
  });
});
