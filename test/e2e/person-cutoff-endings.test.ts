/**
 * A person's ending that stops half-way still ends everything (the known gap: "a half-failed
 * `users disable` leaves issued access tokens working until it is re-run"). Disabling a person, or
 * an operator setting their password, first writes one cutoff: a `sub` entry on the revocation list
 * (with its feed line, one atomic step) and, in the account's own write, `endedAt`. Everything issued
 * to them up to then is then refused wherever it is honoured, before any grant is revoked: JWT
 * access tokens at introspection and at latchkey/resource-server (the feed's `sub` entry), opaque
 * access tokens at introspection and userinfo, refresh tokens at the token endpoint and introspection,
 * and sessions at the authorization endpoint. Here the store "fails" right after that first write
 * (the grant revocation throws), and what the person held is tried everywhere, enabled again too.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { untilEndingPassed } from '../../src/accounts/accounts.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import type { GrantRevocation } from '../../src/revocation/grants.js';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const PARTNER = { id: 'partner', secret: 'partner-app-secret-with-plenty-of-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const PASSWORD = 'person cutoff test password';
const NEW_PASSWORD = 'person cutoff new password';
const CLIENTS = JSON.stringify([
  { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
  { client_id: PARTNER.id, client_secret: PARTNER.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
  machineClient(MACHINE),
  machineClient(RS),
  machineClient(OPS, { scope: 'admin' }),
]);

describe('e2e: a person ended half-way (disabled, password set) holds nothing that works', function () {
  this.timeout(90_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  let app: oidc.Configuration;
  let partner: oidc.Configuration;
  let helper: ResourceServer;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const options = { redisUrl: redis.url, dir, port, env: { CLIENTS, RESOURCE_SERVERS } };
    env = testEnv(dir, port, options);
    server = await startServer(options);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await grantFeed(server, RS.id);
    app = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    partner = await oidc.discovery(new URL(server.issuer), PARTNER.id, PARTNER.secret, oidc.ClientSecretBasic(PARTNER.secret), { execute: [oidc.allowInsecureRequests] });
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    await redis?.stop();
  });

  /**
   * What a person holds at the app: a JWT access token for the API with its refresh token (one
   * grant), and an opaque userinfo token with its refresh token (another sign-in, another grant),
   * both in one browser session.
   */
  async function holdings(username: string, password = PASSWORD, at: 'web' | 'partner' = 'web') {
    const agent = new Agent();
    const rp = at === 'web' ? { config: app, client: WEB } : { config: partner, client: PARTNER };
    const redeem = async (params: Record<string, string>, resource?: string) => {
      const flow = await frontChannel(rp.config, { redirectUri: REDIRECT, username, password, params: { prompt: 'consent', ...params }, agent });
      return oidc.authorizationCodeGrant(rp.config, flow.callback, { pkceCodeVerifier: flow.verifier }, resource ? { resource } : undefined);
    };
    const api = await redeem({ scope: 'openid offline_access read', resource: API }, API);
    const userinfo = await redeem({ scope: 'openid offline_access' });
    assert.ok(decodeJwt(api.access_token).gid, 'the API token is a JWT under a grant');
    assert.doesNotMatch(userinfo.access_token, /\./, 'the userinfo token is opaque');
    return { agent, api, userinfo, rp };
  }
  type Holdings = Awaited<ReturnType<typeof holdings>>;
  /** Until the next second begins: a cutoff written in the current one then reaches nothing issued afterwards. */
  const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));

  const active = async (token: string) => (await introspect(server.url, RS, token)).active === true;
  const activeToApp = async (rp: Holdings['rp'], token: string) => (await introspect(server.url, rp.client, token)).active === true;
  const userinfoStatus = async (token: string) => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status;
  const refreshes = (rp: Holdings['rp'], token: string, resource?: string) =>
    oidc.refreshTokenGrant(rp.config, token, resource ? { resource } : undefined).then(
      () => true,
      (error: { error?: string }) => {
        assert.equal(error.error, 'invalid_grant');
        return false;
      },
    );
  /** prompt=none with the browser's session: back at the app with a code, or login_required. */
  async function silentSignIn(agent: Agent, config = app): Promise<string> {
    const { page } = await startAuthorization(agent, config, REDIRECT, { prompt: 'none' });
    const back = new URL(page.url);
    return back.searchParams.get('error') ?? (back.searchParams.get('code') ? 'code' : `? ${page.status} ${page.url}`);
  }

  async function allWorking({ agent, api, userinfo, rp }: Holdings) {
    assert.equal(await active(api.access_token), true, 'the JWT is active');
    assert.equal((await helper.verify(`Bearer ${api.access_token}`)).jti, decodeJwt(api.access_token).jti);
    assert.equal(await activeToApp(rp, userinfo.access_token), true, 'the opaque token is active');
    assert.equal(await activeToApp(rp, userinfo.refresh_token!), true, 'the refresh token is active');
    assert.equal(await userinfoStatus(userinfo.access_token), 200);
    assert.equal(await silentSignIn(agent, rp.config), 'code');
  }

  /** Nothing the person held works anywhere: the refresh tokens last, since a refresh that worked would rotate them. */
  async function nothingWorks({ agent, api, userinfo, rp }: Holdings, who: string, sessionEnds = true) {
    assert.equal(await active(api.access_token), false, `${who}: the JWT is inactive at introspection`);
    await eventually(() =>
      assert.rejects(helper.verify(`Bearer ${api.access_token}`), (error: Error) => error instanceof TokenRejected && /revoked/.test(error.message)),
    );
    assert.equal(await activeToApp(rp, userinfo.access_token), false, `${who}: the opaque access token is inactive`);
    assert.equal(await activeToApp(rp, userinfo.refresh_token!), false, `${who}: the refresh token is inactive at introspection`);
    assert.equal(await userinfoStatus(userinfo.access_token), 401, `${who}: userinfo refuses the token`);
    if (sessionEnds) assert.equal(await silentSignIn(agent, rp.config), 'login_required', `${who}: the session signs no one in`);
    assert.equal(await refreshes(rp, api.refresh_token!, API), false, `${who}: the API grant's refresh token is refused`);
    assert.equal(await refreshes(rp, userinfo.refresh_token!), false, `${who}: the userinfo grant's refresh token is refused`);
  }

  /** The store fails as soon as the person's grants are to be revoked: only what came before is done. */
  async function failingGrantRevocation<T>(run: () => Promise<T>): Promise<T> {
    const grants = server.grants as unknown as Record<string, () => Promise<unknown>>;
    const names = ['revokeAccountWithConsents', 'revokeAccount', 'forgetConsentsOf'] as const satisfies readonly (keyof GrantRevocation)[];
    const saved = names.map((name) => grants[name]!);
    for (const name of names) grants[name] = () => Promise.reject(new Error('Connection is closed.'));
    try {
      return await run();
    } finally {
      names.forEach((name, at) => (grants[name] = saved[at]!));
    }
  }

  /**
   * The CLI's environment with a Redis ACL user `user` that may write anything but a grant's entry on
   * the revocation list (every grant's revocation starts with it): the CLI fails as it starts
   * revoking grants, after the person's or client's one entry.
   */
  async function withoutGrantEntries(user: string): Promise<Record<string, string>> {
    const raw = new Redis(redis.url);
    const prefix = server.config.redis.keyPrefix;
    const allowed = [`${prefix}[^r]*`, `${prefix}r[^e]*`, `${prefix}re[^v]*`, `${prefix}revoked:{rv}:sub:*`, `${prefix}revoked:{rv}:delegated:*`, `${prefix}revoked:{rv}:withdrawn:*`, `${prefix}revoked:{rv}:feed`, `${prefix}revoked:{rv}:lifetime*`];
    await raw.call('ACL', 'SETUSER', user, 'on', `>${user}-password`, ...allowed.map((pattern) => `~${pattern}`), '&*', '+@all');
    raw.disconnect();
    return { ...env, REDIS_URL: `redis://${user}:${user}-password@127.0.0.1:${redis.port}` };
  }

  const admin = async (path: string) => {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    return fetch(`${server.url}/admin${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  };

  it('disabled with the admin API, the store failing before any grant is revoked: nothing works, and nothing comes back when enabled again', async () => {
    await server.accounts.create('ada', PASSWORD);
    const held = await holdings('ada');
    await allWorking(held);

    const failed = await failingGrantRevocation(() => admin('/users/ada/disable'));
    assert.ok(failed.status >= 500, `the disable failed half-way (${failed.status})`);
    await nothingWorks(held, 'disabled half-way');

    assert.equal((await admin('/users/ada/enable')).status, 200);
    await nothingWorks(held, 'enabled again');
    // ...and the person signs in again and gets working tokens (of a later second than the cutoff).
    await allWorking(await holdings('ada'));
  });

  it("an operator's new password, written with its cutoff and nothing after (users passwd stopped there): nothing issued before works, the new sign-in does", async () => {
    await server.accounts.create('bert', PASSWORD);
    const held = await holdings('bert');
    await allWorking(held);

    // The first write of `users passwd` (src/cli.ts) alone: the grants, consents and sessions it ends afterwards are left.
    await untilEndingPassed(await server.accounts.setPassword('bert', NEW_PASSWORD, server.revocations));
    await nothingWorks(held, 'password set');
    await allWorking(await holdings('bert', NEW_PASSWORD));
  });

  it('the CLI, its store refusing the grants\' list entries (a failure half-way): users disable, users passwd, grants revoke --user, --client and --user --client each leave nothing working', async () => {
    const failing = await withoutGrantEntries('no-grant-entries');
    for (const [username, args, sessionEnds] of [
      ['dina', ['users', 'disable', 'dina'], true],
      ['emil', ['users', 'passwd', 'emil', '--password-stdin'], true],
      ['fern', ['grants', 'revoke', '--user', 'fern'], false],
      // Every grant the partner app holds, two people's: its own client_credentials tokens are not grants.
      [['gale', 'hugo'], ['grants', 'revoke', '--client', PARTNER.id], false],
      // One person's grants to one app (the account page's withdrawal, by an operator).
      ['olga', ['grants', 'revoke', '--user', 'olga', '--client', WEB.id], false],
    ] as const) {
      const people = [username].flat();
      const held = [];
      for (const person of people) {
        await server.accounts.create(person, PASSWORD);
        held.push(await holdings(person, PASSWORD, (args as readonly string[]).includes(PARTNER.id) ? 'partner' : 'web'));
        await allWorking(held.at(-1)!);
      }
      const run = await latchkey(failing, [...args], NEW_PASSWORD);
      assert.notEqual(run.status, 0, `${args.join(' ')} fails half-way`);
      assert.match(run.stderr, /NOPERM|permission/i);
      for (const each of held) await nothingWorks(each, `${args.join(' ')} half-way`, sessionEnds);
    }
  });

  it('after grants revoke --user, --client or --user --client stopped half-way, the session kept makes no new tokens from a grant that should have ended: the app asks for consent again', async () => {
    const failing = await withoutGrantEntries('kept-grants');
    for (const [username, args, at] of [
      ['ivy', ['grants', 'revoke', '--user', 'ivy'], 'web'],
      ['jay', ['grants', 'revoke', '--client', PARTNER.id], 'partner'],
      ['kit', ['grants', 'revoke', '--user', 'kit', '--client', WEB.id], 'web'],
    ] as const) {
      await server.accounts.create(username, PASSWORD);
      // The partner's delegated mark of the test before (its grants revoke --client) ends what the
      // partner is issued up to that second, new grants included: start in a later second.
      await nextSecond();
      const held = await holdings(username, PASSWORD, at);
      await allWorking(held);
      const run = await latchkey(failing, [...args]);
      assert.notEqual(run.status, 0, `${args.join(' ')} fails half-way`);
      // The grant the session names is still stored (its revocation failed): it must not be taken up again without consent.
      assert.equal(await silentSignIn(held.agent, held.rp.config), 'consent_required', `${args.join(' ')}: the session's old grant is not reused`);
    }
  });

  it('a consent remembered before a cutoff (a client\'s delegated mark, a person\'s grantsEndedAt, clientGrantsEndedAt or endedAt) makes no grant after it, whatever the order of writes: the consent written, then the mark, and never forgotten', async () => {
    // The consent is remembered (prompt=consent), then each cutoff written with its grants revoked
    // but the consent left: the order of a consent remembered between a command's forgetting and its mark.
    const cases = [
      {
        username: 'kim',
        at: 'partner' as const,
        end: async () => {
          await server.revocations.revokeDelegated(PARTNER.id);
          await server.grants.revokeClient(PARTNER.id);
        },
      },
      {
        username: 'lee',
        at: 'web' as const,
        end: async (sub: string) => {
          await server.accounts.endClientGrants(sub, WEB.id, server.revocations, 3600);
          await server.grants.revokeAccountClient(sub, WEB.id);
        },
      },
      {
        username: 'lou',
        at: 'web' as const,
        end: async (sub: string) => {
          await server.accounts.endGrants(sub, server.revocations);
          await server.grants.revokeAccount(sub);
        },
      },
    ];
    for (const { username, at, end } of cases) {
      await server.accounts.create(username, PASSWORD);
      await nextSecond();
      const held = await holdings(username, PASSWORD, at);
      await allWorking(held);
      await end((await server.accounts.findByUsername(username))!.sub);
      // In a later second than the cutoff: a grant made now would be of a later second, and work.
      await nextSecond();
      assert.equal(await silentSignIn(held.agent, held.rp.config), 'consent_required', `${username}: the consent from before the cutoff is not used`);
    }
    // Disabled (endedAt; consents left), enabled again, signed in again: the app asks for consent again.
    await server.accounts.create('mia', PASSWORD);
    await allWorking(await holdings('mia'));
    await untilEndingPassed(await server.accounts.setDisabled('mia', true, server.revocations));
    await server.accounts.setDisabled('mia', false);
    const agent = new Agent();
    const again = await signInSteps(agent, (await startAuthorization(agent, app, REDIRECT, { scope: 'openid' })).page, { username: 'mia', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(again), `mia, enabled again: the consent from before the disable is not used (${again.status} ${again.url})`);
  });

  it("access withdrawn on the account page, the store failing before any grant is revoked: nothing the app held for the person works, their other app keeps its own, and the app asks again", async () => {
    await server.accounts.create('pia', PASSWORD);
    await nextSecond();
    const held = await holdings('pia');
    const other = await holdings('pia', PASSWORD, 'partner');
    await allWorking(held);
    const account = await signInSteps(held.agent, await held.agent.follow(`${server.issuer}/account`), { username: 'pia', password: PASSWORD, consent: 'stop' });
    assert.equal(account.url, `${server.issuer}/account`, `${account.status} ${account.url}`);
    const grants = server.grants as unknown as Record<string, unknown>;
    grants.revokeAccountClient = () => Promise.reject(new Error('Connection is closed.'));
    let failed;
    try {
      failed = await held.agent.submit(account, '/apps/withdraw', { client: WEB.id });
    } finally {
      delete grants.revokeAccountClient;
    }
    assert.ok(failed.status >= 500, `the withdrawal failed half-way (${failed.status})`);
    await nothingWorks(held, 'withdrawn half-way', false);
    assert.equal(await silentSignIn(held.agent), 'consent_required', 'the app asks again');
    await allWorking(other);
  });

  it("a consent page open on a grant from before a cutoff (grants revoke --user stopped half-way, the grant still stored): confirming what it lacked does not give the app the rest again", async () => {
    await server.accounts.create('nell', PASSWORD);
    const held = await holdings('nell');
    // The app asks for one more scope: the page asks only for profile, on the session's grant.
    const { page } = await startAuthorization(held.agent, app, REDIRECT, { scope: 'openid offline_access profile' });
    const consent = await signInSteps(held.agent, page, { username: 'nell', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);
    assert.doesNotMatch(consent.html, /offline access/i, 'the page asks only for what the grant lacks');
    // The cutoff's first write alone (the grants and consents it ends one by one afterwards are left).
    await untilEndingPassed((await server.accounts.endGrants((await server.accounts.findByUsername('nell'))!.sub, server.revocations))!);
    const confirmed = await held.agent.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(!confirmed.url.startsWith(REDIRECT), `the app got a code from the ended grant's offline access, consented to before the cutoff: ${confirmed.url}`);
    assert.equal(confirmed.status, 400);
    assert.equal(await silentSignIn(held.agent), 'consent_required', 'nothing was remembered as given now');
  });

  it('a sign-in whose password was verified before the person was disabled, resumed once they are enabled again, signs no one in', async () => {
    await server.accounts.create('gus', PASSWORD);
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid' });
    // The password is verified and the sign-in finished; its resume (/auth/<uid>) is not followed yet.
    const finished = await agent.submit(page, '/login', { username: 'gus', password: PASSWORD }, `${server.issuer}/auth/`);
    assert.match(finished.url, /\/auth\/[^/]+$/, finished.url);
    assert.equal((await admin('/users/gus/disable')).status, 200);
    assert.equal((await admin('/users/gus/enable')).status, 200);
    const resumed = await agent.follow(finished.url, {}, REDIRECT);
    assert.ok(resumed.url.startsWith(REDIRECT), resumed.url);
    assert.equal(new URL(resumed.url).searchParams.get('error'), 'access_denied', 'the sign-in begun before the disable resumes into a code');
    assert.equal(await silentSignIn(agent), 'login_required', 'it left a session signed in');
  });

  it('the CLI (users disable, users passwd) writes the cutoff: the feed lists a sub entry for the person', async () => {
    await server.accounts.create('cleo', PASSWORD);
    const sub = (await server.accounts.findByUsername('cleo'))!.sub;
    const subEntries = async () => (await server.revocations.feed(undefined, 1000)).entries.filter((entry) => entry.type === 'sub' && entry.sub === sub);
    assert.deepEqual(await subEntries(), []);
    const passwd = await latchkey(env, ['users', 'passwd', 'cleo', '--password-stdin'], NEW_PASSWORD);
    assert.equal(passwd.status, 0, passwd.stderr);
    // The entry is written before the account's cutoff and once more after it (accounts.ts
    // #endingEverything): the first may be of the second before the cutoff's, when the cutoff's write
    // crossed a second (CI, under load); the last is of the cutoff's second, or a later one.
    const entry = (await subEntries()).at(-1);
    assert.ok(entry && entry.type === 'sub' && entry.exp > entry.revoked_at, JSON.stringify(entry));
    const endedAt = (await server.accounts.find(sub))!.endedAt!;
    assert.ok(entry.revoked_at >= endedAt && entry.revoked_at <= endedAt + 2, `the feed's cutoff ${entry.revoked_at}, the account's ${endedAt}`);

    const disable = await latchkey(env, ['users', 'disable', 'cleo']);
    assert.equal(disable.status, 0, disable.stderr);
    assert.ok((await server.accounts.find(sub))!.endedAt! > endedAt, 'disabling later moves the cutoff on');
  });

  it("a sub entry ends a person's tokens only: a client's own token whose sub (the client id) is the same string stays good", async () => {
    const token = await clientCredentialsToken(server.url, MACHINE);
    await server.revocations.revokeSubject(MACHINE.id);
    assert.equal(await active(token), true);
    await helper.sync();
    assert.equal((await helper.verify(`Bearer ${token}`)).client_id, MACHINE.id);
  });
});
