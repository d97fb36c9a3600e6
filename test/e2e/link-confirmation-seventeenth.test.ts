/**
 * The seventeenth passes, review of 1fe89963..2b2d1a1d (docs/security-passes.md, "Looked at in the
 * seventeenth passes: review of 1fe89963..2b2d1a1d"): a link an upstream offered is made only by a
 * sign-in its resume takes (interactions/routes.ts confirmLink, h2), performed on two instances
 * behind one front door (test/helpers/front-door.ts).
 *
 * Found and fixed: the confirmation read the interaction again for when the sign-in began
 * (sign-in-result.ts, `Interaction.find`), and a sign-in whose interaction was gone by then (consumed
 * at the other instance: the same sign-in cancelled in another tab, or finished there) was checked
 * without its start, so one begun before the person was disabled and enabled again made the link.
 * The start is now the step's own interaction's, and a confirmation without one makes nothing.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { twoInstancesBehindOneDoor } from '../helpers/front-door.js';
import { commandsIn } from '../helpers/relay.js';
import { startAuthorization } from '../helpers/sign-in.js';
import { machineClient } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const PASSWORD = 'seventeenth review link confirmation password';
const REDIRECT = 'https://app.link-seventeenth.example.test/callback';
const APP = { id: 'app-link-17', secret: 'link-seventeenth-app-secret-with-plenty-of-entropy-0123' };
const OPS = { id: 'ops-link-17', secret: 'link-seventeenth-ops-secret-with-plenty-of-entropy-01234' };
const UPSTREAM_SECRET = 'link-seventeenth-upstream-secret-with-plenty-of-entropy';

describe('e2e: seventeenth passes, review: an offered link confirmed on two instances', function () {
  this.timeout(60_000);
  const clients = [
    { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid' },
    machineClient(OPS, { scope: 'admin' }),
  ];
  const door = twoInstancesBehindOneDoor({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, clients);
  let app: oidc.Configuration;
  let corp: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    app = await oidc.discovery(new URL(door.balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    await door.relayed.server.apis.grant(OPS.id, `${door.balancer.url}/admin`, { scopes: ['admin'] });
    corp = await startFakeUpstream(UPSTREAM_SECRET);
    await new Upstreams(door.relayed.server.kv, door.relayed.server.config.keys.secrets).add({ id: 'corp', issuer: corp.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Corp', linkByEmail: true, endSession: false });
  });
  after(() => corp?.close());

  const operator = async (method: string, path: string) => {
    const answer = await door.operator(OPS, method, path);
    assert.ok(answer.status < 300, `${method} ${path}: ${answer.status}`);
  };

  /** `username`'s account with an address corp vouches for, and the link corp offers for it, at the relayed instance's login page. */
  async function offered(username: string) {
    const email = `${username}@link-seventeenth.example.test`;
    await door.relayed.server.accounts.create(username, PASSWORD, { email, email_verified: true });
    corp.state.mode = 'good';
    corp.state.sub = `corp-${username}`;
    corp.state.email = email;
    await door.routeTo(door.relayed.server.url);
    const browser = new Agent();
    const { page } = await startAuthorization(browser, app, REDIRECT, { upstream: 'corp' });
    assert.match(page.html, /already exists here\. Sign in to it/, `the offer: ${page.status} ${page.url}`);
    const uid = new URL(page.url).pathname.split('/')[2]!;
    return { browser, page, uid };
  }

  it('the password confirming a link offered before the person was disabled and enabled again, its interaction consumed at the other instance while the password was checked (the sign-in cancelled in another tab): nothing is linked', async () => {
    const links = new UpstreamLinks(door.relayed.server.kv, door.relayed.server.accounts);
    const { browser, page, uid } = await offered('ulla');
    await operator('POST', '/users/ulla/disable');
    await operator('POST', '/users/ulla/enable');
    await door.routeTo(door.relayed.server.url);
    const key = `oidc:Interaction:${uid}`;
    // The submission's reads of the interaction: the step's, then (held) the one after the password was checked.
    let reads = 0;
    const held = await door.relayed.relay.hold(
      (chunk) => commandsIn(chunk).some((words) => words.some((word) => word.includes(key))) && ++reads === 2,
      () => browser.submit(page, '/login', { username: 'ulla', password: PASSWORD }, REDIRECT),
    );
    // Meanwhile, the same sign-in cancelled in another tab at the other instance: its resume consumes the interaction.
    await door.routeTo(door.other.url);
    const cancelled = await browser.submit(page, '/abort', {}, REDIRECT);
    assert.equal(new URL(cancelled.url).searchParams.get('error'), 'access_denied', `cancelled: ${cancelled.status} ${cancelled.url}`);
    const answer = await held.release();
    assert.ok(answer.status < 500, `${answer.status} ${answer.url}`);
    assert.equal(new URL(answer.url).searchParams.get('code'), null, `a code: ${answer.url}`);
    assert.equal(await links.find('corp', 'corp-ulla'), undefined, 'linked by a sign-in begun before the person was disabled and enabled again');
  });
});
