/**
 * Red team, twenty-eighth endings pass (docs/security-passes.md, "Looked at in the twenty-eighth endings pass").
 *
 * A session's grant is taken up again by the app's next authorization request in that session
 * (provider/consents.ts loadExistingGrant) unless it was given before an ending's cutoff: its
 * person's (`grantsEndedAt`, the person's cutoff for the client, `endedAt`), its client's
 * (`delegated`, `clientIdIssuedAt`) or an API's re-addition (`addedAt`), each written on the
 * store's clock. A grant made from a remembered consent (a sign-in in another browser, no consent
 * page) was dated by oidc-provider on the clock of the machine of the instance that made it: one
 * made at an instance whose clock ran ahead just before the ending counted as given after it, and
 * was taken up again, silently, by the next request: a code for the API removed and added again,
 * a code after `grants revoke --user` or the withdrawal of the app whose revocation of the grants
 * failed half-way. One made at an instance behind just after an ending counted as given before it:
 * the consent page asking the person for one scope more was refused as withdrawn. A grant is dated
 * on the store's clock now (patches/grants-on-store-clock.ts).
 * Performed through one front door (test/helpers/balancer.ts) to three instances: this process,
 * and two `latchkey serve` processes whose clocks are SKEW_MS ahead and behind (the fixture of
 * redteam-endings-26).
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, startServerProcess, type TestServer, type TestServerProcess } from '../helpers/server.js';
import { skewedClock } from '../helpers/skewed-clock.js';

const PASSWORD = 'twenty-eighth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const APP = { id: 'app-28', secret: 'twenty-eighth-endings-app-secret-with-plenty-of-entropy-1' };
/** How far off the other instances' clocks are (one ahead, one behind): a few seconds. */
const SKEW_MS = 8_000;

/** The error an answer at REDIRECT carries, or 'code' when it carries a code. */
function answerAt(page: Page): string {
  assert.ok(page.url.startsWith(REDIRECT), `expected an answer at ${REDIRECT}, got ${page.status} ${page.url}`);
  const answer = new URL(page.url).searchParams;
  return answer.get('code') ? 'code' : String(answer.get('error'));
}

describe('e2e: red team, twenty-eighth endings pass: a session\'s grant taken up again across an ending, made at instances whose clocks differ', function () {
  this.timeout(60_000);
  let balancer: Balancer;
  /** This process's instance, on the store's own clock: the operator goes through it. */
  let server: TestServer;
  let fast: TestServerProcess;
  let slow: TestServerProcess;
  let app: oidc.Configuration;
  const urls: Record<'server' | 'fast' | 'slow', string> = { server: '', fast: '', slow: '' };

  before(async () => {
    balancer = await startBalancer();
    const shared = { ISSUER: balancer.url };
    server = await startServer({ ownRedis: true, env: shared });
    urls.server = server.url;
    const other = async (skew: number) => {
      const port = await freePort();
      const started = await startServerProcess({ dir: dirname(server.env.KEYS_DIR!), port, redisUrl: server.env.REDIS_URL!, env: { ...shared, ...skewedClock(skew) } });
      return { started, url: `http://127.0.0.1:${port}` };
    };
    const [ahead, behind] = await Promise.all([other(SKEW_MS), other(-SKEW_MS)]);
    [fast, slow, urls.fast, urls.slow] = [ahead.started, behind.started, ahead.url, behind.url];
    balancer.route(urls.server);
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
    app = await oidc.discovery(new URL(balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await Promise.all([fast?.stop(), slow?.stop()]);
    await server?.stop();
    await balancer?.close();
  });

  /** Every new connection through the front door goes to `instance` from now on. */
  async function routeTo(instance: keyof typeof urls) {
    balancer.route(urls[instance]);
    await eventually(() => fetch(`${balancer.url}/healthz`, { headers: { connection: 'close' } }), 5, 0);
  }

  /**
   * The person allows the app `params` on the consent page (in a browser of its own, at this
   * process's instance), then signs in in another browser at `instance`: no consent page, the
   * consent remembered makes that session's grant there. That browser, and the code it got.
   */
  async function grantMadeAt(username: string, instance: keyof typeof urls, params: Record<string, string> = {}) {
    await routeTo('server');
    const first = new Agent();
    const consented = await signInSteps(first, (await startAuthorization(first, app, REDIRECT, params)).page, { username, password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    assert.equal(answerAt(consented), 'code');
    await routeTo(instance);
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, params);
    const back = await signInSteps(agent, page, { username, password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.equal(answerAt(back), 'code', 'signed in, the consent remembered: no consent page');
    return { agent, back, verifier };
  }

  /** What the app's silent request (prompt=none) with `params` gets in the agent's session, at this process's instance. */
  async function silently(agent: Agent, params: Record<string, string> = {}): Promise<Page> {
    await routeTo('server');
    return (await startAuthorization(agent, app, REDIRECT, { prompt: 'none', ...params })).page;
  }

  /** The code in `page` redeemed (with `resource`): the token endpoint's answer, tokens or an error. */
  async function redeemed(page: Page, verifier: string, resource?: string): Promise<string> {
    try {
      const tokens = await oidc.authorizationCodeGrant(app, new URL(page.url), { pkceCodeVerifier: verifier }, resource ? { resource } : undefined);
      return `tokens (${tokens.scope ?? ''})`;
    } catch (error) {
      if (error instanceof oidc.ResponseBodyError) return error.error;
      throw error;
    }
  }

  it(`a session's grant made at the instance ${SKEW_MS / 1000} s ahead for an API, the API removed and added again under its identifier: the app's next request in that session is asked to consent again, no code for the new API (a silent code and the new API's token before the fix)`, async () => {
    const NOTES = 'https://notes.twenty-eight.example.test';
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });
    await server.accounts.create('ines', PASSWORD);
    const params = { scope: 'openid notes:read', resource: NOTES };
    const { agent } = await grantMadeAt('ines', 'fast', params);
    // The operator removes the API and someone adds one under the same identifier (another service).
    await server.apis.remove(NOTES);
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });
    const verifier = oidc.randomPKCECodeVerifier();
    await routeTo('server');
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, prompt: 'none', ...params, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const page = await agent.follow(url.href, {}, REDIRECT);
    const answer = answerAt(page);
    assert.equal(answer, 'consent_required', answer === 'code' ? `a silent code, redeemed for the new API: ${await redeemed(page, verifier, NOTES)}` : answer);
  });

  for (const [ending, endHalfWay] of [
    // `latchkey grants revoke --user`: the cutoff (and the revocation list's entries) written, the grants not yet revoked.
    ['grants revoke --user', (sub: string) => server.accounts.endGrants(sub, server.revocations)],
    // The app withdrawn on the account page (and `grants revoke --user --client`): the person's cutoff for the client written, the consent and grants not yet.
    ['the app withdrawn on the account page', (sub: string) => server.accounts.endClientGrants(sub, APP.id, server.revocations, 3600)],
  ] as const) {
    it(`a session's grant made at the instance ${SKEW_MS / 1000} s ahead, ${ending} failing half-way after its cutoff (the session kept): the app's next request in that session gets no code (a silent code with tokens before the fix)`, async () => {
      const username = ending.startsWith('grants') ? 'gale' : 'wren';
      const { sub } = await server.accounts.create(username, PASSWORD);
      const { agent } = await grantMadeAt(username, 'fast');
      await endHalfWay(sub);
      const page = await silently(agent);
      const answer = answerAt(page);
      assert.equal(answer, 'consent_required', answer === 'code' ? 'a silent code from the grant given before the ending' : answer);
    });
  }

  it(`a session's grant made at the instance ${SKEW_MS / 1000} s behind just after grants revoke --user answered: the consent page asking one scope more goes on to a code (refused as withdrawn before the fix)`, async () => {
    const { sub } = await server.accounts.create('otto', PASSWORD);
    const revoked = await latchkey(server.env, ['grants', 'revoke', '--user', 'otto']);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.ok((await server.accounts.find(sub))?.grantsEndedAt, 'the cutoff is written');
    const { agent } = await grantMadeAt('otto', 'slow');
    // The app asks for a scope more, in that session, at the same instance.
    const asked = (await startAuthorization(agent, app, REDIRECT, { scope: 'openid profile' })).page;
    assert.ok(isConsent(asked), `the consent page for the scope more: ${asked.status} ${asked.url}`);
    const allowed = await agent.submit(asked, '/confirm', {}, REDIRECT);
    assert.ok(allowed.url.startsWith(REDIRECT), `the consent confirmed was refused: ${allowed.status} ${allowed.url} ${allowed.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
    assert.equal(answerAt(allowed), 'code');
  });
});
