/**
 * One front door (balancer.ts) to two instances on one Redis: the person's, whose Redis traffic goes
 * through the test relay (relay.ts: held, paused or cut at a chosen command), and another reached
 * directly, whose requests a held one does not queue behind (a thief's, say). Both take `env` and
 * `clients`; the issuer is the front door's. Call it inside a describe: it adds that describe's
 * before and after hooks, and its getters answer once they ran.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { answerAt, type Agent } from './agent.js';
import { startBalancer, type Balancer } from './balancer.js';
import { eventually } from './eventually.js';
import type { Run } from './process.js';
import { commandsIn, hasWrite, startRelayedServer, type RelayedServer } from './relay.js';
import { startServer, type TestServer } from './server.js';
import { startAuthorization } from './sign-in.js';
import { clientCredentialsToken, type ClientCredentials } from './tokens.js';
import { OWED_S } from '../../src/store/due-endings.js';
import { OWED_ENDINGS_KEY } from '../../src/store/keys.js';

/** A second's slack for the store's clock against ours (due-endings.ts keeps due times on the store's clock). */
const CLOCK_SLACK_MS = 1000;

/**
 * The owed endings not yet due in the store at `redisUrl` (under `keyPrefix`) fall due now. Fails,
 * moving nothing, unless one of them falls due within OWED_S from now: the change's, kept OWED_S
 * after it began, so that the tests that call this instead of waiting OWED_S out still say that the
 * ending falls due on its own (one kept an hour later, or never due, passed before). Others later
 * than that are claims a sweep holds until its lease ends (15 s: an earlier change's ending being
 * finished, or the cut-off instance's), moved too, as before.
 */
export async function owedFallDue(redisUrl: string, keyPrefix: string | undefined): Promise<void> {
  const direct = new Redis(redisUrl, keyPrefix ? { keyPrefix } : {});
  try {
    const now = Date.now();
    const owed = await direct.zrangebyscore(OWED_ENDINGS_KEY, `(${now}`, '+inf', 'WITHSCORES');
    assert.ok(owed.length > 0, 'the change kept an ending as owed');
    const inSeconds = owed.filter((_, i) => i % 2 === 1).map((score) => Math.round((Number(score) - now) / 1000));
    assert.ok(
      inSeconds.some((seconds) => seconds * 1000 <= OWED_S * 1000 + CLOCK_SLACK_MS),
      `the change's owed ending falls due within OWED_S (${OWED_S} s): owed endings fall due in ${inSeconds.join(', ')} s`,
    );
    for (let i = 0; i < owed.length; i += 2) await direct.zadd(OWED_ENDINGS_KEY, 'XX', 0, owed[i]!);
  } finally {
    direct.disconnect();
  }
}

export function twoInstancesBehindOneDoor(env: Record<string, string>, clients: readonly Record<string, unknown>[]) {
  let balancer: Balancer;
  let relayed: RelayedServer;
  let other: TestServer;

  before(async () => {
    balancer = await startBalancer();
    relayed = await startRelayedServer({ ISSUER: balancer.url, ...env }, { clients });
    other = await startServer({ redisUrl: relayed.redis.url, dir: dirname(relayed.env.KEYS_DIR!), clients, env: { ISSUER: balancer.url, ...env } });
    balancer.route(relayed.server.url);
  });
  after(async () => {
    await other?.stop();
    await relayed?.stop();
    await balancer?.close();
  });

  /** New connections go to `url`; open ones stay with their instance (a held request among them). */
  async function routeTo(url: string) {
    balancer.route(url, { drain: true });
    await eventually(() => fetch(`${balancer.url}/healthz`, { headers: { connection: 'close' } }), 5, 0);
  }

  return {
    get balancer() {
      return balancer;
    },
    get relayed() {
      return relayed;
    },
    get other() {
      return other;
    },
    routeTo,
    /**
     * The endings a cut-off change kept as owed fall due now rather than OWED_S (10 s) after they
     * were kept, so that a sweep (BACKCHANNEL_SWEEP_INTERVAL) finishes them without the test
     * sleeping those seconds out: call it after the hold and the cut, so that nothing ends them
     * sooner than it would. Fails when nothing not yet due is owed (the change kept no ending), or
     * when one was kept due later than OWED_S (see owedFallDue below).
     */
    owedFallDue: () => owedFallDue(relayed.redis.url, relayed.server.config.redis.keyPrefix),
    /**
     * What a browser's session (`agent`'s, its silent request for `app` to `redirect`), its refresh
     * token and its access token get now, at the other instance: the error or 'code', 'refreshed'
     * or the error, userinfo's status.
     */
    async whatWorks(agent: Agent, app: oidc.Configuration, tokens: oidc.TokenEndpointResponse, redirect: string) {
      await this.routeTo(other.url);
      const silent = answerAt((await startAuthorization(agent, app, redirect, { prompt: 'none' })).page, redirect);
      const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token!).then(
        () => 'refreshed',
        (error: Error) => (error instanceof oidc.ResponseBodyError ? error.error : String(error)),
      );
      const userinfo = await fetch(`${balancer.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}`, connection: 'close' } });
      return { silent, refreshed, userinfo: userinfo.status };
    },
    /** A trigger: a DEL of exactly `key` (under the relayed server's prefix). */
    delOfExactly: (key: string) => (chunk: string) => commandsIn(chunk).some(([name = '', ...words]) => name.toLowerCase() === 'del' && words.includes(`${relayed.server.config.redis.keyPrefix}${key}`)),
    /** An operator's admin API request at the relayed instance, with a token `ops` got for the admin API. */
    async operator(ops: ClientCredentials, method: string, path: string, body?: object): Promise<Response> {
      const token = await clientCredentialsToken(relayed.server.url, ops, `${balancer.url}/admin`, 'admin');
      const json = body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : undefined;
      return fetch(`${relayed.server.url}/admin${path}`, { method, ...json, headers: { authorization: `Bearer ${token}`, ...json?.headers } });
    },
    /**
     * `request` at the relayed instance (new connections routed there), held at its write (`at`)
     * while `meanwhile` runs (a thief at the other instance, say); then Redis is cut off at the
     * request's next write, not run: said not done (a 503, a command's non-zero exit). What
     * `meanwhile` gave, once the relayed instance is ready again.
     */
    async cutAfterWrite<T>(at: (chunk: string) => boolean, request: () => Promise<Response | Run>, meanwhile: () => Promise<T>): Promise<T> {
      await routeTo(relayed.server.url);
      const held = await relayed.relay.hold(at, request);
      const done = await meanwhile();
      const answer = held.release();
      const cut = relayed.relay.cut(hasWrite, { answered: false });
      const first = await answer;
// A request may answer without the write the cut waits for (a command of it timed out while held, on a
      // loaded runner: said not done all the same): the cut is dropped then, not waited for (it hung the test).
      relayed.relay.release();
      await cut;
      if (first instanceof Response) assert.equal(first.status, 503, `the change cut off after its write: ${first.status}`);
      else assert.notEqual(first.status, 0, `the command cut off after its write exited 0: ${first.stdout}`);
      await eventually(async () => assert.equal((await fetch(`${relayed.server.url}/readyz`)).status, 200));
      return done;
    },
    /** A trigger: a script whose KEYS hold exactly `key` (under the relayed server's prefix). */
    scriptOnExactly: (key: string) => (chunk: string) =>
      commandsIn(chunk).some(([name = '', , keys = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(keys)).includes(`${relayed.server.config.redis.keyPrefix}${key}`)),
  };
}
