/**
 * The red team's pass over the session's changes (2026-12-04), black box: the developer page's
 * post-logout and back-channel logout URIs, the sign-out error page naming a refused
 * post_logout_redirect_uri, Latchkey's own pages' sign-ins, the passkey cap raced by two
 * registrations at once, and the logouts kept before a session goes (src/pending-logouts.ts) across
 * their app made again or moved, and flooded. One attack per test; what held is titled "held: ...".
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from '../helpers/agent.js';
import { developerSignIn } from '../helpers/developer.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { assertion, attestation, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { MAX_PASSKEYS } from '../../src/accounts/passkeys.js';
import { FIRST_PARTY_CLIENT_IDS } from '../../src/http/first-party-sign-in.js';

const PASSWORD = 'red team session changes password';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const APP_ORIGIN = 'https://app.example.test';
const REDIRECT = `${APP_ORIGIN}/callback`;
const SIGNED_OUT = `${APP_ORIGIN}/signed-out`;
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
/** Kept logouts are due a second after their ending (the retry schedule's first delay), swept every 0.2 s. */
const SWEEPS = { BACKCHANNEL_RETRY_SCHEDULE: '1', BACKCHANNEL_SWEEP_INTERVAL: '0.2' };
const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** `agent` signs in as `username` to `clientId` (consent given), stopping at its redirect URI. */
async function signInToApp(server: TestServer, agent: Agent, clientId: string, redirectUri: string, username: string) {
  const page = await agent.follow(
    `${server.issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: CHALLENGE, code_challenge_method: 'S256' })}`,
    {},
    redirectUri,
  );
  const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: redirectUri });
  assert.ok(done.url.startsWith(`${redirectUri}?code=`), `signed in to ${clientId}: ${done.url}`);
}

/** `agent`'s sign-out everywhere (RP-initiated logout, confirmed). */
async function signOutEverywhere(server: TestServer, agent: Agent) {
  const page = await agent.follow(`${server.issuer}/session/end`);
  assert.match((await agent.submit(page, '/session/end/confirm', { logout: 'yes' })).url, /\/session\/end\/success/);
}

/** The page's text as a person reads it (markup taken out, entities decoded). */
const textOf = (html: string) =>
  html
    .replace(/<(style|script)[^]*?<\/\1>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

describe('red team: the session changes (developer page logout URIs, the sign-out error page, own-page sign-ins, the passkey cap)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      // Private networks not allowed (the default): a loopback back-channel URI is not reached.
      env: { REGISTRATION_OPEN: 'true', ...SWEEPS },
      clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT] }],
    });
    for (const name of ['mallory', 'lena']) await server.accounts.create(name, PASSWORD);
  });
  after(async () => server?.stop());

  /** A sign-out asked by link (no session needed) with `asked` as its post_logout_redirect_uri. */
  const signOutAsking = (clientId: string, asked: string) =>
    new Agent().request(`${server.issuer}/session/end?${new URLSearchParams({ client_id: clientId, post_logout_redirect_uri: asked })}`);

  it("the sign-out error page repeats no attacker's text: a post_logout_redirect_uri off the app's registered origins (words, markup, a bidi override, a newline, a lookalike host) is not named; one on its origin is named only as the URL it is (CWE-74 content injection; the newest pass named any string)", async () => {
    const attacks = {
      words: 'Your account is locked. CALL SUPPORT AT +1-800-555-0100',
      url: 'https://evil.example/CALL-SUPPORT-AT-1-800-555-0100',
      markup: 'https://evil.example/"><b id="injected">CALL SUPPORT</b>',
      bidi: 'https://evil.example/\u202Emoc.elgoog//:sptth CALL SUPPORT',
      newline: 'https://evil.example/x\r\nCALL SUPPORT: +1-800-555-0100',
      lookalike: 'https://app.examp\u04cfe.test/signed-out?CALL-SUPPORT',
      // On the app's own origin, but not a URL as it would be compared: spaces and a bidi override in its path.
      ownOriginText: `${APP_ORIGIN}/x CALL SUPPORT \u202E`,
    };
    for (const [name, asked] of Object.entries(attacks)) {
      for (const clientId of ['app', ...FIRST_PARTY_CLIENT_IDS]) {
        const answer = await signOutAsking(clientId, asked);
        const html = await answer.text();
        assert.equal(answer.status, 400, `${name} (${clientId})`);
        assert.match(html, /Not signed out/, `${name} (${clientId})`);
        assert.match(answer.headers.get('cache-control') ?? '', /no-store/, `${name}: not cached`);
        const text = textOf(html);
        assert.doesNotMatch(text, /CALL.SUPPORT/, `${name} (${clientId}) is reflected: ${text.replace(/\s+/g, ' ').slice(0, 600)}`);
        assert.ok(!text.includes('\u202E') && !text.includes('\u04cf'), `${name} (${clientId}): no bidi control or lookalike letter in the page`);
        assert.doesNotMatch(html, /id="injected"/, name);
      }
    }
    // What the feature is for: the app's developer, who sent a near miss on the app's own origin, sees it.
    const near = await signOutAsking('app', `${SIGNED_OUT}/`);
    assert.equal(near.status, 400);
    assert.ok(textOf(await near.text()).includes(`${SIGNED_OUT}/ is not one of this app's post-logout redirect URIs`), 'a near miss on the app\'s origin is named');
  });

  /** mallory, signed in on the developer page. */
  let developer: { agent: Agent; page: Page } | undefined;
  const register = async (fields: Record<string, string>) => {
    developer ??= await developerSignIn(server.issuer, 'mallory', PASSWORD);
    const page = await developer.agent.follow(`${server.issuer}/developer`);
    return developer.agent.submit(page, '/developer/apps', { name: 'Mallory Notes', type: 'web', redirect_uris: 'https://notes.example.test/callback', ...fields });
  };
  const registeredApps = async () => {
    const { agent } = developer!;
    return (await agent.follow(`${server.issuer}/developer`)).html.match(/app-[A-Za-z0-9_-]{12}/g)?.length ?? 0;
  };

  it("held: the developer page refuses back-channel and post-logout URIs that are not the app's own web addresses (javascript:, data:, a fragment, credentials, metadata and private addresses over http, Latchkey's own origin, a lookalike scheme), as a form error, never a 500", async () => {
    const own = new URL(server.issuer).origin;
    const refused: Record<string, Record<string, string>> = {
      'back-channel javascript:': { backchannel_logout_uri: 'javascript:fetch("//evil.example")' },
      'back-channel data:': { backchannel_logout_uri: 'data:text/html,<script>alert(1)</script>' },
      'back-channel fragment': { backchannel_logout_uri: 'https://notes.example.test/bc#x' },
      'back-channel metadata address over http': { backchannel_logout_uri: 'http://169.254.169.254/latest/meta-data/' },
      'back-channel private address over http': { backchannel_logout_uri: 'http://10.0.0.1/logout' },
      'back-channel ftp': { backchannel_logout_uri: 'ftp://notes.example.test/bc' },
      'back-channel host with a directive': { backchannel_logout_uri: 'https://notes.example.test;x/bc' },
      'two back-channel URIs': { backchannel_logout_uri: 'https://notes.example.test/a https://notes.example.test/b' },
      'post-logout javascript:': { post_logout_redirect_uris: 'javascript:alert(1)' },
      'post-logout data:': { post_logout_redirect_uris: 'data:text/html,hi' },
      'post-logout credentials': { post_logout_redirect_uris: 'https://notes.example.test@evil.example/out' },
      'post-logout fragment': { post_logout_redirect_uris: 'https://notes.example.test/out#x' },
      'post-logout metadata address over http': { post_logout_redirect_uris: 'http://169.254.169.254/' },
      "post-logout on Latchkey's own origin": { post_logout_redirect_uris: `${own}/account` },
      "post-logout on Latchkey's own origin, its sign-out": { post_logout_redirect_uris: `${own}/session/end` },
      'post-logout with a wildcard': { post_logout_redirect_uris: 'https://*.example.test/out' },
    };
    const before = await registeredApps().catch(() => 0);
    for (const [name, fields] of Object.entries(refused)) {
      const answer = await register(fields);
      assert.equal(answer.status, 400, `${name}: ${answer.status} ${textOf(answer.html).replace(/\s+/g, ' ').slice(0, 300)}`);
      assert.doesNotMatch(answer.html, /id="client-id"/, `${name}: nothing registered`);
    }
    assert.equal(await registeredApps(), before, 'no app registered');
  });

  it("held: many, long and duplicate logout URIs on the developer page: a form error or an app, never a 500; a registered app's URIs are shown as text", async () => {
    const many = Array.from({ length: 2000 }, (_, i) => `https://notes.example.test/out/${i}/${'x'.repeat(100)}`).join('\n');
    const long = `https://notes.example.test/${'a'.repeat(20_000)}`;
    for (const [name, fields] of Object.entries<Record<string, string>>({
      'many post-logout URIs': { post_logout_redirect_uris: many },
      'a long back-channel URI': { backchannel_logout_uri: long },
      'a long post-logout URI': { post_logout_redirect_uris: long },
      'a back-channel URI with credentials': { backchannel_logout_uri: 'https://user:pw@notes.example.test/bc' },
    })) {
      const answer = await register(fields);
      assert.ok(answer.status < 500, `${name}: ${answer.status}`);
    }
    const duplicates = await register({ post_logout_redirect_uris: 'https://notes.example.test/out\nhttps://notes.example.test/out', backchannel_logout_uri: 'https://notes.example.test/bc?<b>' });
    assert.ok(duplicates.status < 500, `duplicates: ${duplicates.status}`);
    const page = await developer!.agent.follow(`${server.issuer}/developer`);
    assert.doesNotMatch(page.html, /\?<b>/, 'a registered URI is escaped');
  });

  it("held: an outside app cannot pass as one of Latchkey's own page clients: dynamic registration naming client_id latchkey-developer or latchkey-account gets an id of its own, and the first-party client stays Latchkey's; its sign-in still says where it sends the person", async () => {
    for (const id of FIRST_PARTY_CLIENT_IDS) {
      const answer = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: id, client_name: 'Notes', redirect_uris: ['http://localhost:9999/callback'], token_endpoint_auth_method: 'none' }),
      });
      const body = (await answer.json()) as { client_id?: string; error?: string };
      assert.ok(answer.status === 201 || answer.status === 400, `${id}: ${answer.status}`);
      assert.notEqual(body.client_id, id, `${id} taken by an outside registration`);
      const client = await server.provider.Client.find(id);
      assert.equal(client?.redirectUris?.[0]?.startsWith(server.issuer), true, `${id} is still Latchkey's own`);
      if (body.client_id) {
        // The outside app's loopback sign-in is still said to send the person to a program on this device.
        const agent = new Agent();
        const page = await agent.follow(`${server.issuer}/auth?${new URLSearchParams({ client_id: body.client_id, response_type: 'code', scope: 'openid', redirect_uri: 'http://localhost:9999/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })}`);
        assert.match(page.html, /client-return/, 'the outside app still shows where it sends the person');
      }
    }
    // A name that reads as a first-party page's is refused too.
    const named = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'Latchkey developer page', redirect_uris: ['http://localhost:9999/callback'], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(named.status, 400);
  });

  it(`held: the passkey cap (${MAX_PASSKEYS}) raced one short of it: two sessions (two tabs) each shown a challenge and registering at once, and one challenge sent twice at once; never more than ${MAX_PASSKEYS}, never a 500`, async () => {
    const lena = (await server.accounts.findByUsername('lena'))!;
    const origin = new URL(server.issuer).origin;
    const keys = Array.from({ length: MAX_PASSKEYS - 1 }, () => softPasskey());
    await registerSoftPasskeys(server, lena.sub, ...keys);
    // Each tab signs in with the password and a passkey: a session weaker than lena's sign-in now adds none.
    const tabs = await Promise.all(
      [new Agent(), new Agent()].map(async (agent, i) => {
        const second = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'lena', password: PASSWORD, login: 'required', consent: 'stop' });
        const signedIn = await agent.submit(second, '/passkey', { credential: assertion(keys[i]!, origin, passkeyChallenge(second), lena.sub, 1) });
        assert.ok(signedIn.url.endsWith('/account'), `tab ${i}: ${signedIn.status} ${signedIn.url}`);
        return agent;
      }),
    );
    const held = async () => (await server.secondFactors.records.read(lena.sub)).passkeys;
    const add = (agent: Agent, page: Page, name: string) => agent.submit(page, '/account/passkeys/add', { name, credential: attestation(softPasskey(), origin, passkeyChallenge(page)) });
    let added = 0;
    for (let round = 0; round < 6; round += 1) {
      // Back to one short of the cap.
      for (const extra of (await held()).slice(MAX_PASSKEYS - 1)) await server.secondFactors.passkeys.remove(lena.sub, extra.id);
      assert.equal((await held()).length, MAX_PASSKEYS - 1);
      // Tab A shown, then A's registration and tab B's page and registration at once (B's challenge
      // is made while A's registration is verified), or one challenge sent twice at once.
      const pageA = await tabs[0]!.follow(`${server.issuer}/account`);
      assert.match(pageA.html, /passkey-enrol-form/, 'one short of the cap, the page offers a registration');
      const answers =
        round % 2 === 0
          ? await Promise.all([add(tabs[0]!, pageA, `a${round}`), tabs[1]!.follow(`${server.issuer}/account`).then((pageB) => (/passkey-enrol-form/.test(pageB.html) ? add(tabs[1]!, pageB, `b${round}`) : pageB))])
          : await Promise.all([add(tabs[0]!, pageA, `a${round}`), add(tabs[0]!, pageA, `again${round}`)]);
      const statuses = answers.map((answer) => answer.status);
      for (const status of statuses) assert.ok([200, 400, 409].includes(status), `round ${round}: ${statuses}`);
      const now = (await held()).length;
      assert.ok(now <= MAX_PASSKEYS, `round ${round}: ${now} passkeys`);
      added += answers.filter((answer) => /Passkey added/.test(answer.html)).length;
      assert.ok(answers.filter((answer) => /Passkey added/.test(answer.html)).length <= 1, `round ${round}: two added at once (${statuses})`);
    }
    assert.ok(added >= 1, 'registrations went through at all');
  });

  it("held: a developer's back-channel logout URI on loopback, with private networks not allowed: the person's sign-out posts nothing there, and the logout kept before the session went is not sent later by the sweep either", async () => {
    const receiver = await startLogoutReceiver();
    try {
      const registered = await register({ name: 'Mallory Loopback', type: 'spa', backchannel_logout_uri: receiver.url });
      assert.equal(registered.status, 200, 'a loopback back-channel URI is registered, as on every path');
      const id = registered.html.match(/id="client-id">([^<]+)</)?.[1];
      assert.ok(id, 'the new app\'s id');
      const agent = new Agent();
      await server.accounts.create('nina', PASSWORD);
      await signInToApp(server, agent, id, 'https://notes.example.test/callback', 'nina');
      await signOutEverywhere(server, agent);
      // Past the kept logout's due time (a second), and a sweep run to its end.
      await pause(1500);
      await server.backchannel.sweep();
      assert.deepEqual(receiver.tokens, [], 'nothing posted to loopback');
    } finally {
      receiver.server.close();
    }
  });
});

describe('red team: logouts kept before a session goes, across a client made again or moved before they are sent', function () {
  this.timeout(60_000);
  let server: TestServer;
  const receivers: LogoutReceiver[] = [];

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', ...SWEEPS } });
    for (const name of ['olga', 'pia']) await server.accounts.create(name, PASSWORD);
    for (let i = 0; i < 5; i += 1) receivers.push(await startLogoutReceiver());
  });
  after(async () => {
    for (const receiver of receivers) receiver.server.close();
    await server?.stop();
  });

  const app = (id: string, receiver: LogoutReceiver) => ({
    client_id: id,
    client_secret: SECRET,
    redirect_uris: [REDIRECT],
    backchannel_logout_uri: receiver.url,
    backchannel_logout_session_required: true,
  });
  /** Waits until a kept logout due a second after the ending is past due and a sweep has run to its end. */
  const sweptPastDue = async () => {
    await pause(1500);
    await server.backchannel.sweep();
  };

  it("held: an app deleted and made again with its id while the ending's own post is held (its logout kept, then due and swept): the new app is sent nothing of the old session; an app that moved its back-channel URI meanwhile is told at the new one", async () => {
    const [first, second, moved, movedTo] = receivers as [LogoutReceiver, LogoutReceiver, LogoutReceiver, LogoutReceiver];
    // Made again: the ending's post to the deleted app is held while an operator deletes it and makes
    // another app under its id, and the kept logout falls due and is swept.
    await server.clients.add(app('shared-id', first));
    const olga = new Agent();
    await signInToApp(server, olga, 'shared-id', REDIRECT, 'olga');
    // A second on: the app made again has a creation time of its own.
    await pause(1100);
    first.onToken = async () => {
      await server.clients.remove('shared-id');
      await server.clients.add(app('shared-id', second));
      await sweptPastDue();
    };
    await signOutEverywhere(server, olga);
    assert.equal(first.tokens.length, 1, 'the ending told the app it ended');
    await sweptPastDue();
    assert.deepEqual(second.tokens, [], "the app made again with the id is sent nothing of the old app's session");
    // Moved: the same app (an operator's or its own RFC 7592 update) moves its back-channel URI while
    // the ending's post is held: the kept logout, swept, tells the app at its new address (the same app,
    // told twice: a fresh token for a session already ended, as the twenty-fifth endings pass left it).
    await server.clients.add(app('moving', moved));
    const pia = new Agent();
    await signInToApp(server, pia, 'moving', REDIRECT, 'pia');
    moved.onToken = async () => {
      await server.clients.update('moving', { ...app('moving', movedTo) });
      await sweptPastDue();
    };
    await signOutEverywhere(server, pia);
    assert.equal(moved.tokens.length, 1);
    assert.equal(movedTo.tokens.length, 1, 'the kept logout was swept while the post was held: the control that the first half held for the right reason');
  });

  it("held: a flood of endings (one person signing in to an app and out again, 15 times) keeps nothing behind: each kept logout is dropped once posted, so past their due time the sweep sends none again (the app is told once per ending)", async () => {
    const receiver = receivers[4]!;
    receiver.onToken = undefined;
    const told = receiver.tokens.length;
    await server.clients.add(app('flooded', receiver));
    for (let round = 0; round < 15; round += 1) {
      const agent = new Agent();
      await signInToApp(server, agent, 'flooded', REDIRECT, 'olga');
      await signOutEverywhere(server, agent);
    }
    assert.equal(receiver.tokens.length - told, 15, 'each ending told the app');
    await sweptPastDue();
    assert.equal(receiver.tokens.length - told, 15, 'nothing kept was sent again');
  });
});
