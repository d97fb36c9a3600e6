/**
 * Revocation that reaches JWT access tokens, seen from both sides: introspection (RFC 7662) as a
 * resource server asks it, and latchkey/resource-server, which verifies locally and follows the
 * revocation feed. The person's side is driven by openid-client and a cookie-keeping agent.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createLogger } from '../../src/ops/logger.js';
import { FEED_RETENTION, GRANT_CLAIM, grantHandle } from '../../src/revocation/list.js';
import { FEED_PAGE_LIMIT } from '../../src/revocation/feed.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { frontChannel } from '../helpers/front-channel.js';
import { startAuthorization } from '../helpers/sign-in.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, introspect, machineClient, RESOURCE_SERVERS, grantFeed, tokenEndpoint } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const OTHER = { id: 'other-web', secret: 'other-web-app-secret-with-plenty-of-entropy-0123' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const PASSWORD = 'correct horse battery staple';
export const CLIENTS = JSON.stringify([
  { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
  { client_id: OTHER.id, client_secret: OTHER.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
  machineClient(MACHINE),
  machineClient(RS),
]);

describe('e2e: revocation reaches JWT access tokens (introspection and latchkey/resource-server)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;
  let env: Record<string, string>;
  let config: oidc.Configuration;
  let helper: ResourceServer;
  const dir = testDir();
  const logLines: string[] = [];

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    const port = await freePort();
    const options = { redisUrl: redis.url, dir, port, env: { CLIENTS, RESOURCE_SERVERS } };
    env = testEnv(dir, port, options);
    server = await startServer({ ...options, logger: createLogger('info', { write: (line: string) => void logLines.push(line) }) });
    await server.accounts.create('alice', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), {
      execute: [oidc.allowInsecureRequests],
    });
    await grantFeed(server, RS.id);
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    raw?.disconnect();
    await redis?.stop();
  });

  /** Front channel for alice: authorization request for API → login → consent → the callback URL. */
  async function signIn() {
    return frontChannel(config, {
      redirectUri: REDIRECT,
      username: 'alice',
      password: PASSWORD,
      params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' },
    });
  }
  const redeem = (flow: { callback: URL; verifier: string }) =>
    oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
  const refresh = (refreshToken: string) => oidc.refreshTokenGrant(config, refreshToken, { resource: API });
  const active = async (token: string) => (await introspect(server.url, RS, token)).active;
  /** The helper refuses it once its poll of the feed has brought the revocation in (no forced sync). */
  const helperRejects = (token: string) =>
    eventually(async () => assert.rejects(helper.verify(`Bearer ${token}`), (error: Error) => error instanceof TokenRejected && /revoked/.test(error.message)));

  it('revoking one JWT access token: inactive at introspection, refused by the helper; other tokens unaffected', async () => {
    const revoked = await clientCredentialsToken(server.url, MACHINE);
    const kept = await clientCredentialsToken(server.url, MACHINE);
    assert.equal((await helper.verify(revoked)).client_id, MACHINE.id);
    assert.equal(await active(revoked), true);

    const { status } = await tokenEndpoint(server.url, '/token/revocation', MACHINE, revoked);
    assert.equal(status, 200);
    assert.equal(await active(revoked), false);
    await helperRejects(revoked);

    assert.equal(await active(kept), true);
    assert.equal((await helper.verify(kept)).jti, decodeJwt(kept).jti);
  });

  it("a JWT's introspection and revocation are answered as successes, not as the engine's unsupported_token_type error rewritten", async () => {
    const token = await clientCredentialsToken(server.url, MACHINE);
    logLines.length = 0;
    assert.equal(await active(token), true);
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
    const lines = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'request');
    assert.deepEqual(
      lines.map(({ route, status, outcome, event }) => ({ route, status, outcome, event })),
      [
        { route: 'introspection', status: 200, outcome: 'ok', event: undefined },
        { route: 'revocation', status: 200, outcome: 'ok', event: undefined },
      ],
    );
    // Another confidential client's revocation of it is refused as for an opaque token: the engine's error, logged as such.
    const other = await clientCredentialsToken(server.url, MACHINE);
    const refused = await tokenEndpoint(server.url, '/token/revocation', RS, other);
    assert.equal(refused.status, 400);
    assert.equal((refused.body as { error?: string }).error, 'invalid_request');
    assert.equal(await active(other), true);
    const refusal = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.route === 'revocation' && line.status === 400);
    assert.equal(refusal?.event, 'revocation.error');
  });

  it('JWT access tokens of a grant carry gid; client_credentials tokens, which have no grant, do not', async () => {
    const tokens = await redeem(await signIn());
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.aud, API);
    assert.match(String(claims[GRANT_CLAIM]), /^[\w-]{22}$/);
    assert.equal(decodeJwt(await clientCredentialsToken(server.url, MACHINE))[GRANT_CLAIM], undefined);
  });

  it('refresh token reuse: every token of the grant becomes inactive, JWT access tokens included', async () => {
    const first = await redeem(await signIn());
    const second = await refresh(first.refresh_token!);
    const bystander = await clientCredentialsToken(server.url, MACHINE);
    for (const token of [first.access_token, second.access_token]) {
      assert.equal(await active(token), true);
      await helper.verify(token);
    }

    await assert.rejects(refresh(first.refresh_token!), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });

    for (const token of [first.access_token, second.access_token]) {
      assert.equal(await active(token), false);
      await helperRejects(token);
    }
    assert.equal(await active(second.refresh_token!), false);
    await assert.rejects(refresh(second.refresh_token!), oidc.ResponseBodyError);
    assert.equal(await active(bystander), true, 'tokens of other grants and clients are unaffected');
    await helper.verify(bystander);
  });

  it('a revocation that fails half-way (at the revocation endpoint, or a refresh token reused) can be asked for again, and then ends the grant, JWT access tokens included (RFC 7009 §2.1, RFC 9700 §4.14.2)', async () => {
    const revoked = await redeem(await signIn());
    const reused = await redeem(await signIn());
    const rotated = await refresh(reused.refresh_token!);
    // The store refuses the revocation list's keys to the server for a moment (a failover in the middle).
    const prefix = server.config.redis.keyPrefix;
    const refuse = () => raw.call('ACL', 'SETUSER', 'default', 'resetkeys', `~${prefix}[^r]*`, `~${prefix}r[^e]*`, `~${prefix}re[^v]*`);
    const allow = () => raw.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
    await refuse();
    try {
      assert.notEqual((await tokenEndpoint(server.url, '/token/revocation', WEB, revoked.refresh_token!)).status, 200, 'the revocation cannot have succeeded');
      await assert.rejects(refresh(reused.refresh_token!), (error: Error) => !(error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant'));
    } finally {
      await allow();
    }
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', WEB, revoked.refresh_token!)).status, 200);
    await assert.rejects(refresh(reused.refresh_token!), (error: Error) => error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant');
    for (const token of [revoked.access_token, reused.access_token, rotated.access_token]) {
      assert.equal(await active(token), false, `a JWT access token of the grant outlives the revocation asked for again: ${[revoked.access_token, reused.access_token, rotated.access_token].indexOf(token)}`);
      await helperRejects(token);
    }
    await assert.rejects(refresh(rotated.refresh_token!), oidc.ResponseBodyError);
  });

  it('a refresh token revocation refused at the grant record’s deletion can be asked for again, and then the grant is gone: the person’s next silent request makes a new one (before the twenty-third endings pass: the token spent first, the retry 200 for an unknown token, the grant kept)', async () => {
    const prefix = server.config.redis.keyPrefix;
    const grants = async () => new Set(await raw.keys(`${prefix}oidc:Grant:*`));
    const before = await grants();
    const flow = await signIn();
    const tokens = await redeem(flow);
    const [grant] = [...(await grants())].filter((key) => !before.has(key));
    assert.ok(grant, 'the sign-in made a grant');
    // Every key but the grant records' (ACL key patterns are allow-lists: one per character of what is refused).
    const refused = 'oidc:Grant:';
    const allowedBut = [...refused].map((char, at) => `~${prefix}${refused.slice(0, at)}[^${char}]*`);
    await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', ...allowedBut);
    try {
      assert.notEqual((await tokenEndpoint(server.url, '/token/revocation', WEB, tokens.refresh_token!)).status, 200, 'the revocation cannot have succeeded');
    } finally {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
    }
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', WEB, tokens.refresh_token!)).status, 200);
    await assert.rejects(refresh(tokens.refresh_token!), (error: Error) => error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant');
    assert.equal(await active(tokens.access_token), false);
    // The session's next request for the app is answered under a new grant, not the ended one
    // (a JWT access token names its grant: gid).
    const again = await redeem(await frontChannel(config, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, agent: flow.agent, params: { scope: 'openid offline_access read', resource: API } }));
    assert.notEqual(decodeJwt(again.access_token)[GRANT_CLAIM], decodeJwt(tokens.access_token)[GRANT_CLAIM], 'the app’s next request was answered under the grant it revoked');
    assert.equal(await active(again.access_token), true);
    assert.equal(await raw.exists(grant), 0, 'the grant outlived its revocation asked for again');
  });

  it("revoking a person's JWT access token (RFC 7009) ends every token of its grant, as revoking an opaque one does: the refresh token and the grant's other access tokens stop working; a client's own JWT ends alone", async () => {
    // An opaque access token (userinfo, no resource): the engine revokes its whole grant.
    const viaOpaque = await signIn();
    const userinfo = await oidc.authorizationCodeGrant(config, viaOpaque.callback, { pkceCodeVerifier: viaOpaque.verifier });
    assert.ok(!userinfo.access_token.includes('.'), 'an opaque userinfo token');
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', WEB, userinfo.access_token)).status, 200);
    await assert.rejects(oidc.refreshTokenGrant(config, userinfo.refresh_token!), (error: Error) => error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant');

    // A JWT access token for the API: the same ending.
    const first = await redeem(await signIn());
    const second = await refresh(first.refresh_token!);
    const bystander = await clientCredentialsToken(server.url, MACHINE);
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', WEB, second.access_token)).status, 200);
    await assert.rejects(refresh(second.refresh_token!), (error: Error) => error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant', 'the refresh token of a revoked JWT access token still works');
    for (const token of [first.access_token, second.access_token]) {
      assert.equal(await active(token), false);
      await helperRejects(token);
    }
    assert.equal(await active(bystander), true, 'tokens of other grants and clients are unaffected');
    // A client's own token has no grant: it ends alone.
    const sibling = await clientCredentialsToken(server.url, MACHINE);
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, bystander)).status, 200);
    assert.equal(await active(bystander), false);
    assert.equal(await active(sibling), true);
  });

  it('code replay: the tokens issued from the first redemption become inactive', async () => {
    const flow = await signIn();
    const tokens = await redeem(flow);
    assert.equal(await active(tokens.access_token), true);
    await assert.rejects(redeem(flow), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    assert.equal(await active(tokens.access_token), false);
    await helperRejects(tokens.access_token);
    await assert.rejects(refresh(tokens.refresh_token!), oidc.ResponseBodyError);
  });

  it('latchkey grants revoke --user and --client revoke every grant, with their JWT access tokens', async () => {
    const one = await redeem(await signIn());
    const two = await redeem(await signIn());
    const byUser = await latchkey(env, ['grants', 'revoke', '--user', 'alice']);
    assert.equal(byUser.status, 0, byUser.stderr);
    assert.ok((JSON.parse(byUser.stdout) as { revoked: number }).revoked >= 2);
    for (const tokens of [one, two]) {
      assert.equal(await active(tokens.access_token), false);
      await helperRejects(tokens.access_token);
      await assert.rejects(refresh(tokens.refresh_token!), oidc.ResponseBodyError);
    }

    const three = await redeem(await signIn());
    assert.equal(await active(three.access_token), true, 'a new grant after the revocation works');
    const byClient = await latchkey(env, ['grants', 'revoke', '--client', WEB.id]);
    assert.equal(byClient.status, 0, byClient.stderr);
    assert.deepEqual(JSON.parse(byClient.stdout), { client_id: WEB.id, revoked: 1 });
    assert.equal(await active(three.access_token), false);
    await helperRejects(three.access_token);
  });

  it("latchkey grants revoke forgets the consents it covers: an app with a live session must ask again (prompt=none: consent_required), not get a fresh grant silently", async () => {
    const other = await oidc.discovery(new URL(server.issuer), OTHER.id, OTHER.secret, oidc.ClientSecretBasic(OTHER.secret), { execute: [oidc.allowInsecureRequests] });
    /** Where a silent request of `app` with alice's live session lands: a code, or the error. */
    const silently = async (app: oidc.Configuration, agent: Agent) => {
      const { page } = await startAuthorization(agent, app, REDIRECT, { prompt: 'none' });
      const callback = new URL(page.url);
      assert.ok(page.url.startsWith(REDIRECT), `expected the redirect back, got ${page.status} ${page.url}`);
      return callback.searchParams.get('error') ?? (callback.searchParams.has('code') ? 'code' : 'nothing');
    };
    /** alice signs in to both apps in one browser (consent remembered for each); the apps' refresh tokens. */
    const signInToBoth = async () => {
      const agent = new Agent();
      const tokens = [];
      for (const app of [config, other]) {
        const flow = await frontChannel(app, { agent, redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' } });
        tokens.push(await oidc.authorizationCodeGrant(app, flow.callback, { pkceCodeVerifier: flow.verifier }));
      }
      assert.deepEqual([await silently(config, agent), await silently(other, agent)], ['code', 'code'], 'both apps sign in silently before');
      return { agent, tokens };
    };
    const revokeWith = async (...args: string[]) => {
      const run = await latchkey(env, ['grants', 'revoke', ...args]);
      assert.equal(run.status, 0, run.stderr);
      return JSON.parse(run.stdout) as { revoked: number };
    };

    // --user: every app of theirs must ask again.
    let { agent, tokens } = await signInToBoth();
    await revokeWith('--user', 'alice');
    assert.deepEqual([await silently(config, agent), await silently(other, agent)], ['consent_required', 'consent_required'], 'a live session undid the revocation');
    for (const [at, app] of [config, other].entries()) await assert.rejects(oidc.refreshTokenGrant(app, tokens[at]!.refresh_token!), oidc.ResponseBodyError);

    // --client: every person of that app is asked again; their other apps are untouched.
    ({ agent, tokens } = await signInToBoth());
    assert.ok((await revokeWith('--client', WEB.id)).revoked >= 1);
    assert.deepEqual([await silently(config, agent), await silently(other, agent)], ['consent_required', 'code']);
    await assert.rejects(oidc.refreshTokenGrant(config, tokens[0]!.refresh_token!), oidc.ResponseBodyError);

    // --user --client: that person's grants to that app only (the account page's withdrawal, done by an operator).
    ({ agent, tokens } = await signInToBoth());
    assert.ok((await revokeWith('--user', 'alice', '--client', OTHER.id)).revoked >= 1);
    assert.deepEqual([await silently(config, agent), await silently(other, agent)], ['code', 'consent_required']);
    await assert.rejects(oidc.refreshTokenGrant(other, tokens[1]!.refresh_token!), oidc.ResponseBodyError);
    assert.ok((await oidc.refreshTokenGrant(config, tokens[0]!.refresh_token!)).access_token, "alice's other app keeps its grant");
  });

  it('list entries live as long as the token they revoke could (TTLs), and the feed as long as the longest', async () => {
    const token = await clientCredentialsToken(server.url, MACHINE);
    const { jti, exp } = decodeJwt(token);
    await tokenEndpoint(server.url, '/token/revocation', MACHINE, token);
    // The token's time left, read before the entry's TTL and after it: the TTL is the time left plus
    // FEED_RETENTION (the mark lives as long as the feed lists the entry, so a repeated revocation writes
    // no second line; Latchkey itself refuses the token from exp plus the 15 s skew), give or take Redis's rounding of TTL to whole seconds (a busy machine may pass a
    // second or more between the two reads; only the bounds read around them say what is right).
    const remainingBefore = exp! - Math.floor(Date.now() / 1000);
    const jtiTtl = await raw.ttl(`lk:revoked:{rv}:jti:${jti}`);
    const remainingAfter = exp! - Math.floor(Date.now() / 1000);
    assert.ok(jtiTtl > 0 && jtiTtl <= remainingBefore + FEED_RETENTION + 1 && jtiTtl >= remainingAfter + FEED_RETENTION - 5, `jti entry TTL ${jtiTtl}, token has ${remainingBefore}–${remainingAfter} s left`);

    const grants = await raw.keys('lk:revoked:{rv}:grant:*');
    assert.ok(grants.length >= 1, 'earlier tests revoked grants');
    for (const key of grants) {
      const ttl = await raw.ttl(key);
      assert.ok(ttl > 0 && ttl <= 900 + 15, `${key} TTL ${ttl}: one access token lifetime plus skew`);
    }
    // The feed lists an entry until its token's exp plus FEED_RETENTION (an API's helper may take the
    // token that long): as long as the longest access token lifetime plus that, never longer.
    const feedTtl = await raw.ttl('lk:revoked:{rv}:feed');
    assert.ok(feedTtl > 0 && feedTtl <= 900 + FEED_RETENTION, `feed TTL ${feedTtl}`);
  });

  it('the feed serves the current list, then only what is new after a cursor', async () => {
    assert.equal(config.serverMetadata().revocation_feed_endpoint, `${server.issuer}/revocations`, 'advertised in discovery');
    const feedToken = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const read = async (after?: string) => {
      const url = new URL('/revocations', server.url);
      if (after) url.searchParams.set('after', after);
      const response = await fetch(url, { headers: { authorization: `Bearer ${feedToken}` } });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('cache-control'), 'no-store');
      return (await response.json()) as { entries: { type: string; jti?: string; gid?: string; exp: number }[]; cursor: string; more: boolean };
    };
    const earlier = await clientCredentialsToken(server.url, MACHINE);
    await tokenEndpoint(server.url, '/token/revocation', MACHINE, earlier);
    const grantId = randomUUID();
    await server.revocations.revokeGrant(grantId);
    const all = await read();
    assert.ok(all.entries.some((entry) => entry.type === 'jti' && entry.jti === decodeJwt(earlier).jti));
    assert.ok(all.entries.some((entry) => entry.type === 'grant' && entry.gid === grantHandle(grantId)));
    assert.equal(all.more, false);
    assert.deepEqual((await read(all.cursor)).entries, []);

    const token = await clientCredentialsToken(server.url, MACHINE);
    await tokenEndpoint(server.url, '/token/revocation', MACHINE, token);
    const news = await read(all.cursor);
    assert.deepEqual(news.entries, [{ type: 'jti', jti: decodeJwt(token).jti, exp: decodeJwt(token).exp }]);
    assert.notEqual(news.cursor, all.cursor);
  });
});

describe('e2e: latchkey/resource-server fails closed when the feed is out of reach', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  let helper: ResourceServer;

  before(async () => {
    // Durable data (the operator's feed grant) survives the crash, as on a real Redis.
    redis = await startRedisServer({ appendonly: true });
    server = await startServer({ redisUrl: redis.url, env: { CLIENTS, RESOURCE_SERVERS } });
    await grantFeed(server, RS.id);
    helper = await createResourceServer({
      issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, maxStaleness: 1000, onError: () => {},
    });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    await redis?.stop();
  });

  it('refuses valid tokens while it cannot learn about revocations, and accepts them again once it can', async () => {
    const token = await clientCredentialsToken(server.url, MACHINE);
    await helper.verify(token);
    await redis.kill(); // the feed answers 503
    // The refusal says what the last poll met (the helper backs off meanwhile, and still sees the feed come back).
    await eventually(async () => assert.rejects(helper.verify(token), /revocation status unknown: .* \(last attempt: revocation feed: temporarily_unavailable \(HTTP 503\)\)$/), 100);
    await redis.restart();
    await eventually(async () => assert.equal((await helper.verify(token)).client_id, MACHINE.id), 100);
  });

  it('a helper started behind a feed longer than one sync reads (a burst of revocations) accepts no token revoked further on before it has read that far', async () => {
    helper.close();
    const token = await clientCredentialsToken(server.url, MACHINE);
    // 100 pages of other revocations (what one sync reads), then this token's.
    const raw = new Redis(redis.url);
    const exp = String(Math.floor(Date.now() / 1000) + 600);
    for (let batch = 0; batch < 101; batch += 1) {
      const pipeline = raw.pipeline();
      for (let i = 0; i < FEED_PAGE_LIMIT; i += 1) pipeline.xadd(`${server.config.redis.keyPrefix}revoked:{rv}:feed`, '*', 'type', 'jti', 'value', `other-${batch}-${i}`, 'exp', exp);
      await pipeline.exec();
    }
    raw.disconnect();
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
    const started = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 60_000, onError: () => {} });
    try {
      await assert.rejects(started.verify(token), (error: Error) => error instanceof TokenRejected, 'a token revoked beyond what the first sync read is accepted');
      await started.sync();
      await assert.rejects(started.verify(token), (error: Error) => error instanceof TokenRejected && /revoked/.test(error.message));
    } finally {
      started.close();
    }
  });
});

describe('e2e: latchkey/resource-server backs off while Latchkey refuses its feed requests', function () {
  this.timeout(60_000);
  const ROTATED = { id: 'api-rotated', secret: 'api-rotated-resource-server-secret-with-entropy-0123' };
  let redis: RedisServer;
  let server: TestServer;
  let helper: ResourceServer;
  const logLines: string[] = [];
  const tokenRequests = () => logLines.filter((line) => line.includes('/token') && line.includes(`"client_id":"${ROTATED.id}"`)).length;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({ redisUrl: redis.url, env: { CLIENTS, RESOURCE_SERVERS }, logger: createLogger('info', { write: (line: string) => void logLines.push(line) }) });
    await server.clients.add({ ...machineClient(ROTATED), grant_types: ['client_credentials'] });
    await grantFeed(server, ROTATED.id);
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    await redis?.stop();
  });

  it("after the API client's secret is rotated with no grace, asks for a token a few times, not every poll, and its refusals name invalid_client", async () => {
    helper = await createResourceServer({
      issuer: server.issuer, audience: API, clientId: ROTATED.id, clientSecret: ROTATED.secret, pollInterval: 100, maxStaleness: 4000, onError: () => {},
    });
    const token = await clientCredentialsToken(server.url, MACHINE);
    await helper.verify(token);
    const run = await latchkey(server.env, ['clients', 'rotate-secret', ROTATED.id, '--grace', '0']);
    assert.equal(run.status, 0, run.stderr);
    // Its feed token still works until the feed refuses it (revoked with the secret, or at renewal).
    await eventually(async () => assert.ok(tokenRequests() > 1, 'the helper never asked for a new token'), 100);
    const before = tokenRequests();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Polling every 100 ms, it asked about 30 times in these 3 s, each a line in Latchkey's log.
    assert.ok(tokenRequests() - before <= 6, `${tokenRequests() - before} token requests in 3 s with a rotated secret`);
    await eventually(
      async () => assert.rejects(helper.verify(token), /revocation status unknown: .* \(last attempt: token for the revocation feed: invalid_client \(HTTP 401\)\)$/),
      100,
    );
    assert.ok(!logLines.some((line) => line.includes(ROTATED.secret)));
  });
});
