/**
 * The sixth blips pass (2026-12-05), black box: the device authorization grant (RFC 8628) and what
 * a person does at /device, with Redis paused (past REDIS_COMMAND_TIMEOUT, the write and what
 * follows run once it resumes, after the answer) or the connection cut at a chosen write (the
 * write reached Redis and ran, its answer lost). The house rule: a 503 means not done (and done
 * when asked again) or done whole; for the device: tokens once after an approval, access_denied
 * after a denial, never two sets of tokens, never a code left dead by a 503 the person retried.
 * Found (fixed: provider/patches/device-approval-outage.ts, and device_resume's writes held back
 * and sent together, store/adapter.ts): an approval answered 503 at the device code's write or
 * the session's killed the device code (the engine's catch-all saved `server_error` onto it; the
 * session the approval names, its id renewed, was never written while the old id was ended), and
 * a cut between the two writes did too. And (eighth blips pass) a 503 after Continue (the code
 * marked in flight, at the mark's write or the sign-in's) left the code in flight, which nobody could
 * take on until it expired: the browser that took it on may again now, another browser still may not
 * (provider/patches/device-approval-outage.ts).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { BLIP_COMMAND_TIMEOUT, commandsIn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/eventually.js';
import { signInSteps } from '../helpers/sign-in.js';

const PASSWORD = 'sixth blips pass password';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('e2e: sixth blips pass: the device flow with Redis paused or cut at a write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let server: TestServer;
  let tv: oidc.Configuration;

  before(async () => {
    relayed = await startRelayedServer({ DEVICE_FLOW_POLL_INTERVAL: '1' }, {
      commandTimeout: BLIP_COMMAND_TIMEOUT,
      clients: [{ client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] }],
    });
    ({ server } = relayed);
    tv = await oidc.discovery(new URL(server.issuer), 'tv', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => relayed?.stop());

  /** A trigger: a script with a key starting with `key` (under the server's prefix) among its KEYS. */
  const scriptOn = (key: string) => (chunk: string) =>
    commandsIn(chunk).some(([name = '', , keys = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(keys)).some((arg) => arg.startsWith(`${server.config.redis.keyPrefix}${key}`)));

  /** When each code's last poll was answered (its pace counted by then): paced() waits from it. */
  const answeredAt = new Map<string, number>();
  const poll = async (deviceCode: string) => {
    const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv' }) });
    const answer = { status: response.status, body: (await response.json()) as Record<string, string> };
    answeredAt.set(deviceCode, Date.now());
    return answer;
  };
  /**
   * The device keeps to its interval (1 s here, sooner is slow_down): 1.1 s after its last poll's
   * answer, at once if that much has passed (a sign-in, a blip) or it never polled. Not after a poll
   * blipped at its pace's count, which Redis may run after the answer: those wait 1.1 s after the blip.
   */
  const paced = async (deviceCode: string) => {
    const wait = (answeredAt.get(deviceCode) ?? 0) + 1100 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  };
  /** Polls until the answer is no longer authorization_pending/slow_down. */
  const settled = async (deviceCode: string) => {
    for (let tries = 0; ; tries += 1) {
      await paced(deviceCode);
      const answer = await poll(deviceCode);
      if (tries > 10 || !['authorization_pending', 'slow_down'].includes(answer.body.error ?? '')) return answer;
    }
  };

  const blip = (page: Page) => {
    assert.equal(page.status, 503, `answered ${page.status} ${page.url}`);
    assert.ok(page.headers.get('retry-after'), 'a 503 says when to retry');
  };

  async function asked() {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    return device;
  }

  /**
   * A page of the person's retry answered 503 with Retry-After, after the blip: with a short
   * REDIS_COMMAND_TIMEOUT, a loaded runner times a command out now and then (a CI rehearsal of
   * 2026-12-05, at 500 ms: the retry's last page). The person meets it as any blip, and retries.
   */
  class StrayOutage extends Error {}
  const unlessOutage = (page: Page): Page => {
    if (page.status === 503 && page.headers.get('retry-after')) throw new StrayOutage(`${page.status} ${page.url}`);
    return page;
  };
  const reconnected = () => eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));

  /**
   * What a device ends with after a 503 on the person's side and `retry` (the person's, from a
   * fresh browser if need be): tokens exactly once (the next poll is refused), whether the first
   * attempt was done whole once Redis ran it or the retry did it. A retry that meets a stray 503
   * (unlessOutage) is made again, up to three times.
   */
  async function tokensOnce(deviceCode: string, retry: () => Promise<void>) {
    await paced(deviceCode);
    let answer = await poll(deviceCode);
    if (answer.status !== 200) {
      assert.equal(answer.body.error, 'authorization_pending', `after the 503, pending or tokens: ${answer.status} ${JSON.stringify(answer.body)}`);
      for (let attempt = 1; ; attempt += 1) {
        try {
          await retry();
          break;
        } catch (error) {
          if (!(error instanceof StrayOutage) || attempt === 3) throw error;
          await reconnected();
        }
      }
      answer = await settled(deviceCode);
    }
    assert.equal(answer.status, 200, `tokens: ${answer.status} ${JSON.stringify(answer.body)}`);
    assert.ok(answer.body.access_token && answer.body.id_token);
    await paced(deviceCode);
    const again = await poll(deviceCode);
    assert.equal(again.body.error, 'invalid_grant', `never two sets of tokens: ${again.status} ${JSON.stringify(again.body)}`);
  }

  /** The person types the code at /device and Continues, in `agent`'s browser: the page after. */
  async function entered(agent: Agent, userCode: string) {
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
    assert.match(confirm.html, /name="confirm"/, `the confirmation: ${confirm.status} ${confirm.url}`);
    return confirm;
  }

  /** The person's retry from the start: the code typed again, Continue, sign-in and Allow as shown; "Device connected" or "already used" (the first attempt went through). */
  async function approvedAgain(agent: Agent, userCode: string, username: string) {
    const typed = unlessOutage(await agent.submit(unlessOutage(await agent.follow(`${server.issuer}/device`)), '/device', { user_code: userCode }));
    if (/already used/.test(typed.html)) return;
    const done = unlessOutage(await signInSteps(agent, unlessOutage(await agent.submit(typed, '/device', { confirm: 'yes' })), { username, password: PASSWORD }));
    assert.match(done.html, /Device connected/, `the retry connects the device: ${done.status} ${done.url}`);
  }

  it('an approval answered 503 at the device code’s write: the device gets tokens once (the approval done whole), not invalid_grant', async () => {
    await server.accounts.create('ada', PASSWORD);
    const device = await asked();
    const agent = new Agent();
    const consent = await signInSteps(agent, await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' }), { username: 'ada', password: PASSWORD, consent: 'stop' });
    assert.match(consent.html, /\/confirm/, `the consent page: ${consent.status} ${consent.url}`);
    const first = await relayed.pausedAt(scriptOn('oidc:DeviceCode:'), () => agent.submit(consent, '/confirm', {}));
    blip(first);
    await tokensOnce(device.device_code, () => approvedAgain(agent, device.user_code, 'ada'));
  });

  /** A trigger: any command with a word starting with `key` (under the server's prefix). */
  const commandOn = (key: string) => (chunk: string) => commandsIn(chunk).some((words) => words.some((word) => word.startsWith(`${server.config.redis.keyPrefix}${key}`)));

  /**
   * `request` with Redis failing at the first chunk `matches` names: paused (past the command
   * timeout, run once resumed, after the answer) or cut (every connection; that chunk reached
   * Redis and ran, its answer lost). Waits until the server is ready again after a cut.
   */
  async function blipped<T>(how: 'paused' | 'cut', matches: (chunk: string) => boolean, request: () => Promise<T>): Promise<T> {
    if (how === 'paused') return relayed.pausedAt(matches, request);
    let cut = false;
    void relayed.relay.cut(matches, { answered: true }).then((reached) => (cut = reached));
    const answer = await request();
    relayed.relay.release();
    assert.ok(cut, 'the cut was reached');
    await reconnected();
    return answer;
  }

  /** A person's page after a blip: a 503 with Retry-After, or a page of ours saying what to do (never a 500). */
  const failedFriendly = (page: Page) => {
    assert.ok(page.status === 503 || (page.status < 500 && /<html/i.test(page.html)), `answered ${page.status} ${page.url}`);
    if (page.status === 503) assert.ok(page.headers.get('retry-after'), 'a 503 says when to retry');
  };

  let people = 0;
  async function person() {
    const username = `dev${(people += 1)}`;
    await server.accounts.create(username, PASSWORD);
    return username;
  }

  it('a code taken on at Continue in one browser is “already used” in another, and the first browser, typing it again (its sign-in left half-way), connects the device: tokens once (“already used” in that browser too before the eighth blips pass)', async () => {
    const username = await person();
    const device = await asked();
    const agent = new Agent();
    const login = await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' });
    assert.match(login.html, /name="password"/, `the sign-in after Continue: ${login.status} ${login.url}`);
    const stranger = new Agent();
    const typed = await stranger.submit(await stranger.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    assert.match(typed.html, /already used/, `another browser: ${typed.status}`);
    await tokensOnce(device.device_code, async () => {
      const again = unlessOutage(await agent.submit(unlessOutage(await agent.follow(`${server.issuer}/device`)), '/device', { user_code: device.user_code }));
      const done = unlessOutage(await signInSteps(agent, unlessOutage(await agent.submit(again, '/device', { confirm: 'yes' })), { username, password: PASSWORD }));
      assert.match(done.html, /Device connected/, `the first browser connects the device: ${done.status} ${done.url}`);
      const late = await stranger.submit(await stranger.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
      assert.match(late.html, /already used/, `another browser after the approval: ${late.status}`);
    });
  });

  for (const how of ['paused', 'cut'] as const) {
    describe(`Redis ${how} at a write`, () => {
      it(`held: the code typed at /device, ${how} at its throttle’s count: typed again, connected; tokens once`, async () => {
        const username = await person();
        const device = await asked();
        const agent = new Agent();
        const form = await agent.follow(`${server.issuer}/device`);
        const first = await blipped(how, commandOn('ratelimit:user-code:'), () => agent.submit(form, '/device', { user_code: device.user_code }));
        failedFriendly(first);
        await tokensOnce(device.device_code, () => approvedAgain(agent, device.user_code, username));
      });

      it(`held: Deny at the confirmation, ${how} at the device code’s write: the device gets access_denied, and the code is good for nothing after`, async () => {
        const username = await person();
        const device = await asked();
        const agent = new Agent();
        const confirm = await entered(agent, device.user_code);
        const first = await blipped(how, scriptOn('oidc:DeviceCode:'), () => agent.submit(confirm, '/device', { abort: 'yes' }));
        failedFriendly(first);
        let answer = await poll(device.device_code);
        if (answer.body.error === 'authorization_pending') {
          // Not done: the person denies again.
          const again = await agent.submit(await entered(agent, device.user_code), '/device', { abort: 'yes' });
          assert.match(again.html, /Access denied/, `denied again: ${again.status}`);
          answer = await poll(device.device_code);
        }
        assert.equal(answer.body.error, 'access_denied', `after a denial: ${answer.status} ${JSON.stringify(answer.body)}`);
        // Nobody approves it after: the code is used.
        const stranger = new Agent();
        const typed = await stranger.submit(await stranger.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
        assert.match(typed.html, /already used/, `the code typed again after the denial: ${typed.status}`);
        void username;
        const later = await poll(device.device_code);
        assert.notEqual(later.status, 200, 'no tokens after a denial');
      });

      it(`held: Cancel at the consent page after the sign-in at /device, ${how} at the device code’s write: the device gets access_denied, never tokens`, async () => {
        const username = await person();
        const device = await asked();
        const agent = new Agent();
        const consent = await signInSteps(agent, await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' }), { username, password: PASSWORD, consent: 'stop' });
        assert.match(consent.html, /\/abort/, `the consent page: ${consent.status} ${consent.url}`);
        const first = await blipped(how, scriptOn('oidc:DeviceCode:'), () => agent.submit(consent, '/abort', {}));
        failedFriendly(first);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const answer = await poll(device.device_code);
        assert.equal(answer.body.error, 'access_denied', `after the denial: ${answer.status} ${JSON.stringify(answer.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        assert.notEqual((await poll(device.device_code)).status, 200, 'no tokens after a denial');
      });

      for (const [write, key] of [
        ['the device code’s write (its mark: in flight)', 'oidc:DeviceCode:'],
        ['the sign-in’s write (the interaction Continue begins)', 'oidc:Interaction:'],
      ] as const) {
        it(`found: Continue at the confirmation, ${how} at ${write}: typed again in the same browser, connected; tokens once (“already used” until the code expired before the eighth blips pass)`, async () => {
          const username = await person();
          const device = await asked();
          const agent = new Agent();
          const confirm = await entered(agent, device.user_code);
          const first = await blipped(how, scriptOn(key), () => agent.submit(confirm, '/device', { confirm: 'yes' }));
          failedFriendly(first);
          await tokensOnce(device.device_code, async () => {
            const typed = unlessOutage(await agent.submit(unlessOutage(await agent.follow(`${server.issuer}/device`)), '/device', { user_code: device.user_code }));
            assert.match(typed.html, /name="confirm"/, `typed again in the same browser: ${typed.status} ${typed.html.match(/class="error"[^>]*>([^<]*)/)?.[1] ?? ''}`);
            const done = unlessOutage(await signInSteps(agent, unlessOutage(await agent.submit(typed, '/device', { confirm: 'yes' })), { username, password: PASSWORD }));
            assert.match(done.html, /Device connected/, `the retry connects the device: ${done.status} ${done.url}`);
          });
        });
      }

      // Paused: the first test above.
      if (how === 'cut') it(`found: Allow, ${how} at the device code’s write (the approval), its answer lost: tokens once`, async () => {
        const username = await person();
        const device = await asked();
        const agent = new Agent();
        const consent = await signInSteps(agent, await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' }), { username, password: PASSWORD, consent: 'stop' });
        const first = await blipped(how, scriptOn('oidc:DeviceCode:'), () => agent.submit(consent, '/confirm', {}));
        failedFriendly(first);
        await tokensOnce(device.device_code, () => approvedAgain(agent, device.user_code, username));
      });

      it(`found: Allow, ${how} at the session’s write (its id renewed at the approval): tokens once`, async () => {
        const username = await person();
        const device = await asked();
        const agent = new Agent();
        const consent = await signInSteps(agent, await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' }), { username, password: PASSWORD, consent: 'stop' });
        const first = await blipped(how, scriptOn('oidc:Session:'), () => agent.submit(consent, '/confirm', {}));
        failedFriendly(first);
        await tokensOnce(device.device_code, () => approvedAgain(agent, device.user_code, username));
      });

      it(`held: the device’s poll, ${how} at its pace’s count, before and after the approval: polled again, tokens once`, async () => {
        const username = await person();
        const device = await asked();
        const first = await blipped(how, commandOn('ratelimit:device-poll:'), () => poll(device.device_code));
        assert.equal(first.status, 503, `the poll: ${first.status} ${JSON.stringify(first.body)}`);
        const agent = new Agent();
        const done = await signInSteps(agent, await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' }), { username, password: PASSWORD });
        assert.match(done.html, /Device connected/);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        await tokensOnce(device.device_code, () => Promise.reject(new Error('approved already')));
      });

      it(`held: the redemption, ${how} at the device code’s consumption: ${how === 'paused' ? 'polled again, tokens once' : 'the answer lost, the device’s next poll is refused (never two sets of tokens)'}`, async () => {
        const username = await person();
        const device = await asked();
        const agent = new Agent();
        const done = await signInSteps(agent, await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' }), { username, password: PASSWORD });
        assert.match(done.html, /Device connected/);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const first = await blipped(how, scriptOn('oidc:DeviceCode:'), () => poll(device.device_code));
        assert.equal(first.status, 503, `the redemption: ${first.status} ${JSON.stringify(first.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const again = await poll(device.device_code);
        if (how === 'paused') {
          // Not spent: the consumption is bounded (run late, it is refused), and nothing issued is answered.
          assert.equal(again.status, 200, `polled again: ${again.status} ${JSON.stringify(again.body)}`);
          await new Promise((resolve) => setTimeout(resolve, 1100));
          assert.equal((await poll(device.device_code)).body.error, 'invalid_grant', 'never two sets of tokens');
        } else {
          // Spent with its tokens written, the answer lost on the way: as any single-use code, a second
          // redemption is a replay (RFC 6749 §4.1.2), refused, and the grant revoked. Not fixable here.
          assert.equal(again.body.error, 'invalid_grant', `polled again: ${again.status} ${JSON.stringify(again.body)}`);
        }
      });
    });
  }
});
