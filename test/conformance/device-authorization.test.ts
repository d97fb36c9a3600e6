/**
 * RFC 8628 (OAuth 2.0 Device Authorization Grant), black box: a running OP reached over HTTP,
 * a device that speaks the protocol by hand (so every answer can be checked), and a person's
 * browser played by the test agent on the /device pages. docs/security.md maps RFC 8628 §5 to
 * these tests and to test/e2e/device-flow.test.ts (Chromium, openid-client polling).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from '../helpers/agent.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { Agent, ALICE, startOp, webClient, type Op } from './fixture.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/**
 * Seconds. Each a window a loaded machine must not overrun: a code lives long enough for the whole
 * approval (sign-in and consent; 5 s expired under load), and a poll right after another comes
 * within the interval (1 s was overrun, and the "too soon" poll was answered authorization_pending).
 */
const TTL = 20;
const INTERVAL = 3;
const WEB_SECRET = 'device-conformance-web-secret-with-plenty-of-entropy';
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

describe('RFC 8628 device authorization grant', function () {
  this.timeout(60_000);
  let op: Op;
  /** A code nobody enters, asked for first: it has expired by the time the expiry checks run. */
  let stale: DeviceAuthorization;
  let staleAt: number;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      env: {
        TTL_DEVICE_CODE: String(TTL),
        DEVICE_FLOW_POLL_INTERVAL: String(INTERVAL),
        DEVICE_FLOW_MAX_FAILURES_PER_CODE: '2',
        DEVICE_FLOW_MAX_FAILURES_PER_IP: '6',
        REGISTRATION_OPEN: 'true',
      },
      clients: [
        {
          client_id: 'tv',
          client_name: 'Living-room TV',
          logo_uri: 'https://tv.example.test/logo.png',
          policy_uri: 'https://tv.example.test/privacy',
          application_type: 'native',
          token_endpoint_auth_method: 'none',
          grant_types: [DEVICE_GRANT, 'refresh_token'],
          response_types: [],
          redirect_uris: [],
        },
        { client_id: 'hub', client_secret: WEB_SECRET, application_type: 'native', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
        { client_id: 'console', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
        webClient('web', WEB_SECRET),
      ],
    });
    stale = await authorize();
    staleAt = Date.now();
  });
  after(() => op?.stop());

  const post = (url: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers }, body: new URLSearchParams(params) });
  const webAuth = { authorization: `Basic ${Buffer.from(`web:${WEB_SECRET}`).toString('base64')}` };

  async function authorize(params: Record<string, string> = { client_id: 'tv', scope: 'openid profile' }): Promise<DeviceAuthorization> {
    const response = await post(op.metadata.device_authorization_endpoint as string, params);
    assert.equal(response.status, 200, await response.clone().text());
    assert.match(response.headers.get('cache-control') ?? '', /no-store/);
    return (await response.json()) as DeviceAuthorization;
  }

  async function poll(deviceCode: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv' });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** The person's browser: the entry page, then the code typed in (as `typed`, or the code itself). */
  async function enter(agent: Agent, code: string, fields: Record<string, string> = {}): Promise<Page> {
    const entry = await agent.follow(`${op.issuer}/device`);
    assert.equal(entry.status, 200);
    return agent.submit(entry, '/device', { user_code: code, ...fields });
  }

  describe('discovery and the device authorization endpoint (§3.1, §3.2, §4)', () => {
    it('discovery advertises the endpoint and the grant, in both metadata documents', async () => {
      assert.equal(op.metadata.device_authorization_endpoint, `${op.issuer}/device/auth`);
      assert.ok(op.metadata.grant_types_supported?.includes(DEVICE_GRANT));
      const oauth = (await (await fetch(`${op.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
      assert.equal(oauth.device_authorization_endpoint, op.metadata.device_authorization_endpoint);
    });

    it('answers a device code, an easy-to-type user code (base-20, no vowels), both verification URIs, expires_in and interval', async () => {
      const answer = await authorize();
      assert.match(answer.user_code, USER_CODE);
      assert.ok(answer.device_code.length >= 32, 'a device code with enough entropy');
      assert.equal(answer.verification_uri, `${op.issuer}/device`);
      assert.equal(answer.verification_uri_complete, `${op.issuer}/device?user_code=${answer.user_code}`);
      assert.equal(answer.expires_in, TTL);
      assert.equal(answer.interval, INTERVAL);
    });

    it('refuses a client not registered for the grant (unauthorized_client, RFC 6749 §5.2), an unknown client (invalid_client)', async () => {
      const web = await post(op.metadata.device_authorization_endpoint as string, {}, webAuth);
      assert.equal(web.status, 400);
      const refusal = (await web.json()) as { error: string; error_description: string };
      assert.equal(refusal.error, 'unauthorized_client');
      assert.match(refusal.error_description, /not allowed for this client/);
      const unknown = await post(op.metadata.device_authorization_endpoint as string, { client_id: 'nobody' });
      assert.equal(unknown.status, 401);
      assert.equal(((await unknown.json()) as { error: string }).error, 'invalid_client');
    });
  });

  describe('polling (§3.4, §3.5)', () => {
    it('authorization_pending; polling sooner than the interval is slow_down, and the interval grows by 5 s', async () => {
      const { device_code } = await authorize();
      assert.equal((await poll(device_code)).body.error, 'authorization_pending');
      const tooSoon = await poll(device_code);
      assert.equal(tooSoon.status, 400);
      assert.equal(tooSoon.body.error, 'slow_down');
      // The original interval has passed, the grown one (INTERVAL + 5 s) has not: still too soon.
      await sleep(INTERVAL * 1000 + 200);
      assert.equal((await poll(device_code)).body.error, 'slow_down');
    });

    it('the grown interval is kept: after waiting it out, a poll sooner than it again, though later than the first interval, is slow_down (§3.5 "this and all subsequent requests")', async () => {
      const { device_code } = await authorize();
      assert.equal((await poll(device_code)).body.error, 'authorization_pending');
      assert.equal((await poll(device_code)).body.error, 'slow_down');
      await sleep((INTERVAL + 5) * 1000 + 200);
      assert.equal((await poll(device_code)).body.error, 'authorization_pending');
      // The first interval has passed since that poll, the grown one (INTERVAL + 5 s) has not.
      await sleep(INTERVAL * 1000 + 200);
      const again = await poll(device_code);
      assert.equal(again.status, 400);
      assert.equal(again.body.error, 'slow_down');
    });

    it('another client cannot poll, or slow down, a code: invalid_grant (unauthorized_client when not registered for the grant)', async () => {
      const { device_code } = await authorize();
      const other = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code, client_id: 'console' });
      assert.equal(((await other.json()) as { error: string }).error, 'invalid_grant');
      const web = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code }, webAuth);
      assert.equal(((await web.json()) as { error: string }).error, 'unauthorized_client');
      assert.equal((await poll(device_code)).body.error, 'authorization_pending', 'its own first poll is not slowed down');
    });

    it('a confidential device client authenticates at both endpoints; without its secret it is invalid_client', async () => {
      const hubAuth = { authorization: `Basic ${Buffer.from(`hub:${WEB_SECRET}`).toString('base64')}` };
      const started = await post(op.metadata.device_authorization_endpoint as string, { scope: 'openid' }, hubAuth);
      assert.equal(started.status, 200);
      const { device_code } = (await started.json()) as DeviceAuthorization;
      const pending = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code }, hubAuth);
      assert.equal(((await pending.json()) as { error: string }).error, 'authorization_pending');
      const anonymous = await post(op.metadata.token_endpoint!, { grant_type: DEVICE_GRANT, device_code, client_id: 'hub' });
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as { error: string }).error, 'invalid_client');
    });

    it('a made-up device code is invalid_grant', async () => {
      assert.equal((await poll('not-a-device-code')).body.error, 'invalid_grant');
    });
  });

  describe('the person at /device (§3.3)', () => {
    it('approves: entry in any case with spaces, the confirmation names the app and its scopes, sign-in, consent; the device gets tokens once', async () => {
      const { device_code, user_code } = await authorize({ client_id: 'tv', scope: 'openid profile offline_access' });
      const agent = new Agent();
      const confirm = await enter(agent, user_code.toLowerCase().replace('-', ' '));
      assert.equal(confirm.status, 200);
      assert.match(confirm.html, /Connect <bdi>Living-room TV<\/bdi>\?/);
      assert.ok(confirm.html.includes(user_code), 'shows the code to compare, as the device shows it');
      assert.match(confirm.html, /See your name and profile details/);
      assert.match(confirm.html, /offline access/);
      assert.match(confirm.html, /name="abort"/);
      assert.match(confirm.html, /<img class="client-logo" src="https:\/\/tv\.example\.test\/logo\.png"/);
      assert.match(confirm.headers.get('content-security-policy') ?? '', /img-src 'self' data: https:\/\/tv\.example\.test/);
      assert.match(confirm.html, /Privacy policy of <bdi>Living-room TV<\/bdi>/);
      assert.ok(!confirm.html.includes(device_code), 'the device code never reaches the browser (§5.5)');
      const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
      assert.match(login.url, /\/interaction\//);
      const consent = await agent.submit(login, '/login', { username: ALICE.username, password: ALICE.password });
      const done = await agent.submit(consent, '/confirm', {});
      assert.equal(done.status, 200);
      assert.match(done.html, /Device connected/);
      assert.match(done.html, /Living-room TV/);

      const tokens = await poll(device_code);
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.equal(tokens.body.token_type, 'Bearer');
      assert.ok(tokens.body.access_token && tokens.body.id_token && tokens.body.refresh_token);
      const again = await poll(device_code);
      assert.equal(again.body.error, 'invalid_grant', 'a device code is redeemed once');
    });

    it('entry in full-width characters (as some phone keyboards type it) or with another dash is taken as the code (§6.1)', async () => {
      // ＬＢＫＺ－ＦＴＫＢ: each printable ASCII character as its full-width form (U+FF01…U+FF5E).
      const fullWidth = (code: string) => code.replace(/[!-~]/g, (char) => String.fromCharCode(char.charCodeAt(0) + 0xfee0));
      const ideographicSpace = (code: string) => fullWidth(code.toLowerCase()).replace('－', '\u3000');
      const enDash = (code: string) => code.replace('-', '\u2013');
      for (const typed of [fullWidth, ideographicSpace, enDash]) {
        const { user_code } = await authorize();
        const confirm = await enter(new Agent(), typed(user_code));
        assert.equal(confirm.status, 200);
        assert.match(confirm.html, /Connect <bdi>Living-room TV<\/bdi>\?/, typed(user_code));
        assert.ok(confirm.html.includes(user_code), 'shows the code to compare, as the device shows it');
      }
    });

    it('verification_uri_complete fills the code in, for the person to check, without script', async () => {
      const { verification_uri_complete, user_code } = await authorize();
      const agent = new Agent();
      const page = await agent.follow(verification_uri_complete);
      assert.equal(page.status, 200);
      assert.ok(page.html.includes(`value="${user_code}"`));
      assert.ok(!/<script/i.test(page.html), 'no script, not even the engine’s auto-submit');
      assert.doesNotMatch(page.headers.get('content-security-policy') ?? '', /sha256-/);
      const confirm = await agent.submit(page, '/device', { user_code });
      assert.match(confirm.html, /Connect <bdi>Living-room TV<\/bdi>\?/);
    });

    it('denies: the device is told access_denied, and the code cannot be used again', async () => {
      const { device_code, user_code } = await authorize();
      const agent = new Agent();
      const confirm = await enter(agent, user_code);
      const denied = await agent.submit(confirm, '/device', { abort: 'yes' });
      assert.equal(denied.status, 200);
      assert.match(denied.html, /Access denied/);
      const answer = await poll(device_code);
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'access_denied');
      const reused = await enter(new Agent(), user_code);
      assert.match(reused.html, /already used/);
    });

    it('cancelling at the sign-in page denies too: the device is told access_denied', async () => {
      const { device_code, user_code } = await authorize();
      const agent = new Agent();
      const login = await agent.submit(await enter(agent, user_code), '/device', { confirm: 'yes' });
      assert.match(login.html, /name="password"/);
      const cancelled = await agent.submit(login, '/abort', {});
      assert.match(cancelled.html, /Access denied/);
      assert.equal((await poll(device_code)).body.error, 'access_denied');
    });

    it('a form without the engine’s xsrf token is refused with the entry page, not a stack trace', async () => {
      const { device_code, user_code } = await authorize();
      const agent = new Agent();
      await agent.follow(`${op.issuer}/device`);
      const forged = await agent.follow(`${op.issuer}/device`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ user_code, abort: 'yes', xsrf: 'forged' }),
      });
      assert.equal(forged.status, 400);
      assert.match(forged.html, /Connect a device/);
      assert.doesNotMatch(forged.html, /at .*\.js:\d+/);
      assert.equal((await poll(device_code)).body.error, 'authorization_pending', 'the forged deny changed nothing');
      const resume = await agent.follow(`${op.issuer}/device/no-such-interaction`);
      assert.equal(resume.status, 400, 'device resume of an unknown interaction');
      assert.match(resume.html, /Connect a device/);
    });

    it('without any cookie (no session yet), a posted code or an unknown resume is the entry page with a way to a fresh form, not a 500', async () => {
      const posted = await new Agent().follow(`${op.issuer}/device`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ user_code: 'BCDF-GHJK', xsrf: 'x' }),
      });
      const resumed = await new Agent().follow(`${op.issuer}/device/no-such-interaction`);
      for (const page of [posted, resumed]) {
        assert.equal(page.status, 400);
        assert.match(page.html, /<a class="button" href="[^"]*\/device">Enter a code<\/a>/);
      }
    });
  });

  describe('expiry (§3.5, §5.2)', () => {
    it('an expired device code is expired_token, and its user code is refused as expired', async () => {
      const left = TTL * 1000 + 500 - (Date.now() - staleAt);
      if (left > 0) await sleep(left);
      const answer = await poll(stale.device_code);
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'expired_token');
      const page = await enter(new Agent(), stale.user_code);
      assert.match(page.html, /expired/);
    });

    it("a code polled long after it expired is still expired_token, pending or approved and never redeemed, for as long as its lifetime again; a made-up one is invalid_grant (on the server's clock moved on; security-passes.md, ninth passes, the letter of the specs: leftovers)", async () => {
      // Its own server on the embedded store, whose records expire on this process's clock: moved
      // on below, as the engine's and the store's, instead of waiting out the code's lifetime.
      const lifetime = 60;
      const server: TestServer = await startServer({ clients: [{ client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] }], env: { TTL_DEVICE_CODE: String(lifetime), DEVICE_FLOW_POLL_INTERVAL: '5' } });
      const realNow = Date.now;
      let ahead = 0;
      Date.now = () => realNow() + ahead;
      try {
        await server.accounts.create(ALICE.username, ALICE.password);
        const start = async () => (await (await post(`${server.issuer}/device/auth`, { client_id: 'tv', scope: 'openid' })).json()) as DeviceAuthorization;
        const at = async (deviceCode: string) => {
          const response = await post(`${server.issuer}/token`, { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv' });
          return { status: response.status, body: (await response.json()) as Record<string, unknown> };
        };
        const pending = await start();
        const approved = await start();
        const agent = new Agent();
        const entry = await agent.follow(`${server.issuer}/device`);
        const confirm = await agent.submit(entry, '/device', { user_code: approved.user_code });
        const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
        const consent = await agent.submit(login, '/login', { username: ALICE.username, password: ALICE.password });
        assert.match((await agent.submit(consent, '/confirm', {})).html, /Device connected/);

        // Past its lifetime and the 15 s clock tolerance the store kept it for before.
        ahead = (lifetime + 30) * 1000;
        for (const code of [pending, approved]) {
          const late = await at(code.device_code);
          assert.equal(late.status, 400, JSON.stringify(late.body));
          assert.equal(late.body.error, 'expired_token', `${code === pending ? 'a pending' : 'an approved'} code past its end: ${JSON.stringify(late.body)}`);
        }
        assert.equal((await at(approved.device_code)).body.error, 'expired_token', 'still no tokens for the approved one');
        assert.equal((await at('made-up-device-code-of-forty-three-characters')).body.error, 'invalid_grant');
        // Its lifetime again after its end, the store has let it go: then it is a code like any unknown one.
        ahead = (2 * lifetime + 5) * 1000;
        assert.equal((await at(pending.device_code)).body.error, 'invalid_grant', 'kept no longer than its lifetime again past its end');
      } finally {
        Date.now = realNow;
        await server.stop();
      }
    });
  });

  describe('registration policy: who may use the grant', () => {
    const register = (metadata: Record<string, unknown>) =>
      fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });

    it('a native client (public or confidential) may register the device grant; a web client may not', async () => {
      const base = { grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] };
      const native = await register({ ...base, application_type: 'native', token_endpoint_auth_method: 'none' });
      assert.equal(native.status, 201, await native.clone().text());
      const confidential = await register({ ...base, application_type: 'native' });
      assert.equal(confidential.status, 201, await confidential.clone().text());
      const web = await register(base);
      assert.equal(web.status, 400);
      const body = (await web.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_client_metadata');
      assert.match(body.error_description, /application_type "native"/);
    });

    it('a configured web client with the device grant stops the server at start, with one line naming it', async () => {
      const webTv = { client_id: 'webtv', client_secret: WEB_SECRET, grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] };
      await assert.rejects(startServer({ clients: [webTv] }), /clients \(CLIENTS\): client "webtv": grant_types: .*application_type "native"/);
    });

    it('`latchkey clients add --device` registers a public native device client that can start the grant', async () => {
      const run = await latchkey(op.env, ['clients', 'add', '--client-id', 'printer', '--device', '--name', 'Office printer']);
      assert.equal(run.status, 0, run.stderr);
      const client = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(client.application_type, 'native');
      assert.equal(client.token_endpoint_auth_method, 'none');
      assert.deepEqual(client.grant_types, [DEVICE_GRANT, 'refresh_token']);
      assert.equal(client.client_secret, undefined);
      assert.match((await authorize({ client_id: 'printer', scope: 'openid' })).user_code, USER_CODE);
      const web = await latchkey(op.env, ['clients', 'add', '--client-id', 'kiosk', '--grant-type', 'device_code', '--redirect-uri', 'https://kiosk.example.test/cb', '--grant-type', 'authorization_code']);
      assert.equal(web.status, 0, web.stderr);
      assert.equal((JSON.parse(web.stdout) as Record<string, unknown>).application_type, 'native', 'device_code makes it native');
    });
  });

  describe('wrong user codes are throttled, before any state changes (§5.1)', () => {
    it('per code: after its allowance a code is refused (429, Retry-After) while other codes still work', async () => {
      const agent = new Agent();
      for (let n = 0; n < 2; n += 1) assert.match((await enter(agent, 'BCDF-BCDF')).html, /not right/);
      const refused = await enter(agent, 'bcdf bcdf');
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.match(refused.html, /Too many wrong codes/);
      const { user_code } = await authorize();
      assert.match((await enter(agent, user_code)).html, /Connect <bdi>Living-room TV<\/bdi>\?/);
    });

    it('per address: after its allowance even a right code is refused, and a deny sent then changes nothing', async () => {
      const agent = new Agent();
      // Earlier tests missed a few times from this address; misses with new codes reach the allowance of six.
      let misses = 0;
      for (const code of ['BBBB-BBBB', 'CCCC-CCCC', 'DDDD-DDDD', 'FFFF-FFFF', 'GGGG-GGGG', 'HHHH-HHHH']) {
        const page = await enter(agent, code);
        if (page.status === 429) break;
        assert.match(page.html, /not right/);
        misses += 1;
      }
      assert.ok(misses > 0 && misses < 6, `paused after ${misses} more misses`);
      const { device_code, user_code } = await authorize();
      const refused = await enter(agent, user_code, { abort: 'yes' });
      assert.equal(refused.status, 429);
      assert.match(refused.html, /paused/);
      assert.equal((await poll(device_code)).body.error, 'authorization_pending');
    });
  });
});
