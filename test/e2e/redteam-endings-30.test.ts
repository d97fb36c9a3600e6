/**
 * Red team, thirtieth endings pass (docs/security-passes.md, "Looked at in the thirtieth endings pass").
 *
 * The twenty-ninth pass kept a person's change of credentials as owed until what it ends has ended;
 * an operator's changes end sessions too, and were left: a reset of a person's second factors (the
 * admin API, the CLI) ends the sessions they signed in after it removes them, and an upstream's
 * removal ends what the upstream signed in before the upstream goes and once more after (for a
 * sign-in through it that finished in between). Cut off by Redis after the write (503), and not
 * sent again, the ending after it was never made: the thief's session, refresh token and access
 * token lived on; and for the upstream there is nothing to send again (the removal answers "no
 * upstream"). Now both keep the ending as owed before the write (accounts/owed-endings.ts), and the
 * sweep finishes what the request did not.
 *
 * Performed through one front door to two instances on one Redis (test/helpers/front-door.ts): the
 * operator's, whose Redis traffic goes through a relay the test holds and cuts, and the thief's.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, answerAt as answerAtRedirect, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { twoInstancesBehindOneDoor } from '../helpers/front-door.js';
import { authenticatorAdded, signedInToAccountPage, signInSteps, startAuthorization, totpCode as codeFor } from '../helpers/sign-in.js';
import { machineClient } from '../helpers/tokens.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const PASSWORD = 'thirtieth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const APP = { id: 'app-30', secret: 'thirtieth-endings-app-secret-with-plenty-of-entropy-0123' };
const OPS = { id: 'ops-30', secret: 'thirtieth-endings-ops-secret-with-plenty-of-entropy-0123' };
const UPSTREAM_SECRET = 'thirtieth-endings-upstream-secret-with-plenty-of-entropy';
const SCOPE = 'openid offline_access';

const answerAt = (page: Page): string => answerAtRedirect(page, REDIRECT);

describe("e2e: red team, thirtieth endings pass: an operator's change cut off by Redis after its write, not sent again", function () {
  this.timeout(120_000);
  const clients = [
    { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: SCOPE },
    machineClient(OPS, { scope: 'admin' }),
  ];
  // Sweeps come often: the owed ending is finished a few seconds after it is due (OWED_S).
  const door = twoInstancesBehindOneDoor({ BACKCHANNEL_SWEEP_INTERVAL: '0.5', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, clients);
  const { routeTo, cutAfterWrite, delOfExactly } = door;
  let app: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    app = await oidc.discovery(new URL(door.balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    await door.relayed.server.apis.grant(OPS.id, `${door.balancer.url}/admin`, { scopes: ['admin'] });
    fake = await startFakeUpstream(UPSTREAM_SECRET);
  });
  after(() => fake?.close());

  /** The operator's admin API request, at the relayed instance. */
  const operator = (method: string, path: string) => door.operator(OPS, method, path);

  /** The thief signs in to the app at the other instance, `first` answering Latchkey's first page: a browser and its tokens. */
  async function thiefSignsIn(first: (thief: Agent, page: Page) => Promise<Page>, params: Record<string, string> = {}) {
    await routeTo(door.other.url);
    const thief = new Agent();
    const { page, verifier } = await startAuthorization(thief, app, REDIRECT, { scope: SCOPE, prompt: 'consent', ...params });
    const done = await signInSteps(thief, await first(thief, page), { username: '', password: '', stopAt: REDIRECT });
    assert.equal(answerAt(done), 'code', `the thief signs in: ${done.status} ${done.url}`);
    const tokens = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier });
    assert.ok(tokens.refresh_token, 'offline access');
    return { thief, tokens };
  }

  /** The thief's session, refresh token and access token end, with no retry by the operator: the sweep's ending. */
  async function endedWithoutRetry({ thief, tokens }: Awaited<ReturnType<typeof thiefSignsIn>>) {
    await door.owedFallDue();
    await eventually(async () => assert.deepEqual(await door.whatWorks(thief, app, tokens, REDIRECT), { silent: 'login_required', refreshed: 'invalid_grant', userinfo: 401 }), 60, 500);
  }

  it("an operator's reset of a person's second factors, cut off after the reset was written and not sent again: the session a thief signed in with the stolen authenticator app, its refresh token and its access token end (they lived on before)", async () => {
    const username = 'ursula';
    const { sub } = await door.relayed.server.accounts.create(username, PASSWORD);
    await routeTo(door.relayed.server.url);
    const { agent, page } = await signedInToAccountPage(door.balancer.url, username, PASSWORD);
    const { secret } = await authenticatorAdded(agent, page);
    // The phone was stolen with the password: the thief signs in with both.
    const stolen = await thiefSignsIn(async (thief, login) => {
      const factor = await signInSteps(thief, login, { username, password: PASSWORD, login: 'required', consent: 'stop' });
      return thief.submit(factor, '/second-factor', { method: 'totp', code: codeFor(secret) });
    });
    // Held at the reset's write (the factors' record deleted), which goes on; the ending after it is not run.
    await cutAfterWrite(delOfExactly(`mfa:${sub}`), () => operator('POST', `/users/${username}/mfa/reset`), async () => undefined);
    assert.equal((await door.relayed.server.secondFactors.records.read(sub)).totp, undefined, 'the factors were reset');
    await endedWithoutRetry(stolen);
  });

  it("an upstream's removal, cut off after the upstream was removed and not sent again: the session a thief signed in through it meanwhile, its refresh token and its access token end (they lived on before; the removal sent again is \"no upstream\")", async () => {
    await new Upstreams(door.relayed.server.kv, door.relayed.server.config.keys.secrets).add({ id: 'corp', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email profile', displayName: 'Corp', linkByEmail: false, endSession: false });
    fake.state.mode = 'good';
    fake.state.sub = 'thief-at-corp';
    // Held at the upstream's removal (its record deleted), after the ending before it; the thief
    // signs in through it meanwhile at the other instance, which still trusts it.
    const signedIn = await cutAfterWrite(
      delOfExactly('upstream:corp'),
      () => operator('DELETE', '/upstreams/corp'),
      () => thiefSignsIn(async (_thief, page) => page, { upstream: 'corp' }),
    );
    assert.equal((await operator('DELETE', '/upstreams/corp')).status, 404, 'the removal sent again: no such upstream');
    await endedWithoutRetry(signedIn);
  });
});
