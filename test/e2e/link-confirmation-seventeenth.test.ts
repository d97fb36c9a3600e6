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
 *
 * Held: the upstream removed and added again at the other instance (the page here says nothing will
 * be linked, nothing is); Redis killed under the link's first write and restarted, or cut after the
 * link's own write (503 with Retry-After, then the same form signs in and links once).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { twoInstancesBehindOneDoor } from '../helpers/front-door.js';
import { eventually } from '../helpers/eventually.js';
import { BLIP_COMMAND_TIMEOUT, commandsIn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';
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

  it('corp removed and added again (the same issuer) through the admin API of the other instance: the login page at this one says nothing will be linked, and the password links nothing but signs in', async () => {
    const links = new UpstreamLinks(door.relayed.server.kv, door.relayed.server.accounts);
    const { browser, page } = await offered('uwe');
    const token = await clientCredentialsToken(door.other.url, OPS, `${door.balancer.url}/admin`, 'admin');
    const atOther = (method: string, path: string, body?: unknown) =>
      fetch(`${door.other.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    assert.equal((await atOther('DELETE', '/upstreams/corp')).status < 300, true, 'removed');
    const again = await atOther('POST', '/upstreams', { id: 'corp', issuer: corp.state.issuer, client_id: 'latchkey', client_secret: UPSTREAM_SECRET, scope: 'openid email', display_name: 'Corp', link_by_email: true, end_session: false });
    assert.ok(again.status < 300, `added again: ${again.status}`);
    await door.routeTo(door.relayed.server.url);
    const shown = await browser.follow(page.url, {}, REDIRECT);
    assert.match(shown.html, /can no longer be linked/, `the page: ${shown.status} ${shown.url}`);
    const done = await signInSteps(browser, shown, { username: 'uwe', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(done.url).searchParams.get('code'), `a code: ${done.status} ${done.url}`);
    assert.equal(await links.find('corp', 'corp-uwe'), undefined, 'linked across the removal');
  });
});

describe('e2e: seventeenth passes, review: an offered link confirmed across a Redis blip', function () {
  this.timeout(60_000);
  const clients = [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid' }];
  let relayed: RelayedServer;
  let app: oidc.Configuration;
  let corp: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    relayed = await startRelayedServer({ OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, { clients, appendonly: true, commandTimeout: BLIP_COMMAND_TIMEOUT, cheapHashing: true });
    app = await oidc.discovery(new URL(relayed.server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    corp = await startFakeUpstream(UPSTREAM_SECRET);
    await new Upstreams(relayed.server.kv, relayed.server.config.keys.secrets).add({ id: 'corp', issuer: corp.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Corp', linkByEmail: true, endSession: false });
  });
  after(async () => {
    await corp?.close();
    await relayed?.stop();
  });

  it('Redis killed as the confirmation writes the link, restarted: 503 with Retry-After, nothing linked; the same page confirmed again links it and signs in', async () => {
    const { server, relay, redis } = relayed;
    const links = new UpstreamLinks(server.kv, server.accounts);
    const { sub } = await server.accounts.create('vera', PASSWORD, { email: 'vera@link-seventeenth.example.test', email_verified: true });
    Object.assign(corp.state, { mode: 'good', sub: 'corp-vera', email: 'vera@link-seventeenth.example.test' });
    const browser = new Agent();
    const { page } = await startAuthorization(browser, app, REDIRECT, { upstream: 'corp' });
    assert.match(page.html, /already exists here\. Sign in to it/, `the offer: ${page.status} ${page.url}`);
    // Held at the link's first write (its indexes name the identity), Redis killed under it.
    const held = await relay.hold(
      (chunk) => commandsIn(chunk).some((words) => words.some((word) => word.includes('corp:corp-vera'))),
      () => browser.submit(page, '/login', { username: 'vera', password: PASSWORD }, REDIRECT),
    );
    await redis.kill();
    const blipped = await held.release();
    assert.equal(blipped.status, 503, `${blipped.status} ${blipped.url}`);
    assert.ok(blipped.headers.get('retry-after'), 'Retry-After');
    await redis.restart();
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    assert.equal(await links.find('corp', 'corp-vera'), undefined, 'linked by the request that failed');
    // The person sends the same form again: the offer stood, the link is made and the sign-in goes on.
    const done = await signInSteps(browser, page, { username: 'vera', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(done.url).searchParams.get('code'), `a code: ${done.status} ${done.url}`);
    assert.equal((await links.find('corp', 'corp-vera'))?.sub, sub, 'linked once Redis is back');
  });

  it('Redis cut off as the confirmation writes the link, the write run and its answer lost: 503, then the same page confirmed again signs in, linked once', async () => {
    const { server, relay } = relayed;
    const links = new UpstreamLinks(server.kv, server.accounts);
    const { sub } = await server.accounts.create('vito', PASSWORD, { email: 'vito@link-seventeenth.example.test', email_verified: true });
    Object.assign(corp.state, { mode: 'good', sub: 'corp-vito', email: 'vito@link-seventeenth.example.test' });
    const browser = new Agent();
    const { page } = await startAuthorization(browser, app, REDIRECT, { upstream: 'corp' });
    assert.match(page.html, /already exists here\. Sign in to it/, `the offer: ${page.status} ${page.url}`);
    // Cut at the link's own write (SET NX), passed on to Redis first: done, the instance never told.
    const cut = relay.cut((chunk) => commandsIn(chunk).some((words) => words[0]?.toLowerCase() !== 'get' && words.some((word) => word.endsWith('link:corp:corp-vito'))), { answered: true });
    const blipped = await browser.submit(page, '/login', { username: 'vito', password: PASSWORD }, REDIRECT);
    relay.release();
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    assert.equal(await cut, true, 'cut at the link');
    assert.equal(blipped.status, 503, `${blipped.status} ${blipped.url}`);
    assert.ok(blipped.headers.get('retry-after'), 'Retry-After');
    assert.equal((await links.find('corp', 'corp-vito'))?.sub, sub, 'the write ran');
    const done = await signInSteps(browser, page, { username: 'vito', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(done.url).searchParams.get('code'), `a code: ${done.status} ${done.url}`);
    assert.equal((await links.find('corp', 'corp-vito'))?.sub, sub, 'linked');
  });
});
