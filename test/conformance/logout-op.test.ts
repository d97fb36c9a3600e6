/**
 * OpenID Connect RP-Initiated Logout OP and Back-Channel Logout OP: the end-session endpoint's
 * answers to every combination the OpenID Foundation's logout plans try, and the logout tokens
 * relying parties receive at their back-channel logout URIs.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Agent, ALICE, callbackParams, isLogin, RelyingParty, startOp, webClient, type Op } from './fixture.js';
import type { Page } from '../helpers/agent.js';
import { initialAccessToken } from '../helpers/operator.js';

const SECRET = 'logout-conformance-secret-with-plenty-of-entropy-01';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

interface Delivery {
  readonly method: string;
  readonly contentType: string;
  readonly body: string;
  readonly token: string | null;
}

/** Back-channel logout endpoints of several relying parties: /<client_id>; /rpfail answers 500. */
async function startReceiver(): Promise<{ url: string; deliveries: Map<string, Delivery[]>; server: Server }> {
  const deliveries = new Map<string, Delivery[]>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const client = (req.url ?? '/').slice(1);
      const delivery = {
        method: req.method ?? '',
        contentType: req.headers['content-type'] ?? '',
        body,
        token: new URLSearchParams(body).get('logout_token'),
      };
      deliveries.set(client, [...(deliveries.get(client) ?? []), delivery]);
      res.writeHead(client === 'rpfail' ? 500 : 200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, deliveries, server };
}

const bye = (id: string) => `https://${id}.example.test/signed-out`;

/** One OP with four relying parties and a back-channel receiver, started by the describe that calls it. */
function logoutHarness() {
  let op: Op;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const rps: Record<string, RelyingParty> = {};

  before(async () => {
    receiver = await startReceiver();
    const backchannel = (id: string) => ({ backchannel_logout_uri: `${receiver.url}/${id}`, backchannel_logout_session_required: true });
    op = await startOp({
      people: [ALICE],
      clients: [
        webClient('rp1', SECRET, { ...backchannel('rp1'), post_logout_redirect_uris: [bye('rp1'), `${bye('rp1')}?lang=en`] }),
        webClient('rp2', SECRET, backchannel('rp2')),
        webClient('rp3', SECRET),
        webClient('rpfail', SECRET, backchannel('rpfail')),
        // A back-channel logout URI without backchannel_logout_session_required (its default, false).
        webClient('rpsub', SECRET, { backchannel_logout_uri: `${receiver.url}/rpsub` }),
      ],
    });
    for (const id of ['rp1', 'rp2', 'rp3', 'rpfail', 'rpsub']) rps[id] = await RelyingParty.create(op, id, { secret: SECRET });
  });
  after(async () => {
    await op?.stop();
    receiver?.server.close();
  });

  /** A person signed in at the given relying parties; returns the agent and each one's ID token. */
  async function signedIn(...ids: string[]): Promise<{ agent: Agent; idTokens: Record<string, string> }> {
    const agent = new Agent();
    const idTokens: Record<string, string> = {};
    for (const id of ids) idTokens[id] = (await rps[id]!.redeem(await rps[id]!.signIn(agent, ALICE))).id_token!;
    return { agent, idTokens };
  }

  function endSession(agent: Agent, params: Record<string, string>, stopAt = 'https://') {
    const url = new URL(op.metadata.end_session_endpoint!);
    url.search = new URLSearchParams(params).toString();
    return agent.follow(url.href, {}, stopAt);
  }

  /** Confirms our sign-out page ("Sign out everywhere"), or submits the auto-posting form when there is no session. */
  async function confirm(agent: Agent, page: Page, stopAt = 'https://'): Promise<Page> {
    return agent.submit(page, '/session/end/confirm', { logout: 'yes' }, stopAt);
  }

  async function stillSignedIn(agent: Agent, id = 'rp1'): Promise<boolean> {
    const flow = await rps[id]!.authorize(agent, { prompt: 'none' });
    return Boolean(callbackParams(flow).get('code'));
  }

  const tamper = (jwt: string) => {
    const [header, payload, signature] = jwt.split('.');
    const flipped = `${signature!.slice(0, -4)}${signature!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    return `${header}.${payload}.${flipped}`;
  };

  const isErrorPage = (page: Page) => page.status === 400 && page.url.startsWith(op.issuer) && /<h1>/.test(page.html);

  return {
    get op() {
      return op;
    },
    get receiver() {
      return receiver;
    },
    rps,
    signedIn,
    endSession,
    confirm,
    stillSignedIn,
    tamper,
    isErrorPage,
  };
}

describe('OpenID Connect RP-Initiated Logout OP', function () {
  this.timeout(60_000);
  const h = logoutHarness();
  const { rps, signedIn, endSession, confirm, stillSignedIn, tamper, isErrorPage } = h;

  it('id_token_hint, a registered post_logout_redirect_uri and state: the person confirms, is signed out and sent back with state (RP-Initiated Logout §2, §3)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const page = await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1'), state: 'logout-state' });
    assert.equal(page.status, 200);
    assert.match(page.html, /Sign out\?/, 'the OP asks the person first');
    const back = await confirm(agent, page);
    assert.ok(back.url.startsWith(bye('rp1')), back.url);
    assert.equal(new URL(back.url).searchParams.get('state'), 'logout-state');
    // The suite's CheckForUnexpectedParametersInPostLogoutRedirect: state, and nothing else.
    assert.deepEqual([...new URL(back.url).searchParams.keys()], ['state']);
    assert.equal(new URL(back.url).hash, '');
    assert.equal(await stillSignedIn(agent), false, 'the session ended');
  });

  it('the end-session endpoint accepts POST as well as GET (RP-Initiated Logout §2)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const page = await agent.follow(h.op.metadata.end_session_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1'), state: 'posted' }),
    });
    assert.equal(page.status, 200);
    const back = await confirm(agent, page);
    assert.equal(new URL(back.url).searchParams.get('state'), 'posted');
  });

  it('client_id instead of id_token_hint identifies the client for the redirect (RP-Initiated Logout §2)', async () => {
    const { agent } = await signedIn('rp1');
    const back = await confirm(agent, await endSession(agent, { client_id: 'rp1', post_logout_redirect_uri: bye('rp1'), state: 's' }));
    assert.ok(back.url.startsWith(bye('rp1')), back.url);
    assert.equal(new URL(back.url).searchParams.get('state'), 's');
  });

  it('without state, the redirect carries no state (RP-Initiated Logout §3; logout plan: no state)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const back = await confirm(agent, await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1') }));
    assert.ok(back.url.startsWith(bye('rp1')));
    assert.equal(new URL(back.url).searchParams.has('state'), false);
  });

  it('a registered post_logout_redirect_uri with a query keeps its query (RP-Initiated Logout §3)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const back = await confirm(agent, await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: `${bye('rp1')}?lang=en`, state: 'q' }));
    const url = new URL(back.url);
    assert.equal(url.searchParams.get('lang'), 'en');
    assert.equal(url.searchParams.get('state'), 'q');
  });

  it('an unregistered post_logout_redirect_uri shows an error page and never redirects (RP-Initiated Logout §3; logout plan: bad post_logout_redirect_uri)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    for (const uri of ['https://evil.example/', `${bye('rp1')}?added=1`, `${bye('rp1')}/extra`, bye('rp2')]) {
      const page = await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: uri });
      assert.ok(isErrorPage(page), `${uri}: ${page.status} ${page.url}`);
      assert.match(page.html, /post_logout_redirect_uri/);
    }
    assert.equal(await stillSignedIn(agent), true, 'nothing was signed out');
  });

  it('post_logout_redirect_uri is compared with the registered ones as a string: another case, the default port, a trailing slash, a percent-encoded character, an empty query or fragment, a fragment, a dot segment, surrounding spaces are refused; state comes back byte for byte beside a registered query (RP-Initiated Logout §3 "exactly match")', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const registered = bye('rp1');
    const host = new URL(registered).host;
    const nearMisses = [
      registered.replace(host, host.toUpperCase()),
      registered.replace(host, `${host}:443`),
      `${registered}/`,
      registered.replace('signed-out', 'signed%2Dout'),
      `${registered}?`,
      `${registered}#`,
      `${registered}#top`,
      registered.replace('/signed-out', '/./signed-out'),
      ` ${registered}`,
      `${registered} `,
    ];
    for (const uri of nearMisses) {
      const page = await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: uri, state: 's' });
      assert.ok(isErrorPage(page), `${JSON.stringify(uri)}: ${page.status} ${page.url}`);
    }
    for (const state of ['a b&c=d#e', 'ünï€😀', '%41', '+', 'x'.repeat(2000)]) {
      const { agent: person, idTokens: tokens } = await signedIn('rp1');
      const back = await confirm(person, await endSession(person, { id_token_hint: tokens.rp1!, post_logout_redirect_uri: `${registered}?lang=en`, state }));
      const url = new URL(back.url);
      assert.equal(`${url.origin}${url.pathname}`, registered);
      assert.deepEqual([...url.searchParams], [['lang', 'en'], ['state', state]], JSON.stringify(state.slice(0, 20)));
    }
  });

  it('post_logout_redirect_uri without id_token_hint or client_id is not followed (RP-Initiated Logout §3; logout plan: no id_token_hint)', async () => {
    const { agent } = await signedIn('rp1');
    const page = await endSession(agent, { post_logout_redirect_uri: bye('rp1'), state: 'x' });
    const done = await confirm(agent, page);
    assert.ok(done.url.startsWith(h.op.issuer), `stayed at the OP: ${done.url}`);
    assert.match(done.html, /You are signed out/);
  });

  it('only state: the person is signed out at the OP and stays there (logout plan: only state)', async () => {
    const { agent } = await signedIn('rp1');
    const done = await confirm(agent, await endSession(agent, { state: 'only' }));
    assert.ok(done.url.startsWith(h.op.issuer));
    assert.match(done.html, /You are signed out/);
    assert.equal(await stillSignedIn(agent), false);
  });

  it('no parameters: a confirmation page, then a signed-out page (RP-Initiated Logout §2; logout plan: no params)', async () => {
    const { agent } = await signedIn('rp1');
    const page = await endSession(agent, {});
    assert.equal(page.status, 200);
    assert.match(page.html, /Sign out\?/);
    const done = await confirm(agent, page);
    assert.match(done.html, /You are signed out/);
    assert.equal(await stillSignedIn(agent), false);
  });

  it('id_token_hint without post_logout_redirect_uri signs out and shows the signed-out page (logout plan: no post_logout_redirect_uri)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const done = await confirm(agent, await endSession(agent, { id_token_hint: idTokens.rp1! }));
    assert.ok(done.url.startsWith(h.op.issuer));
    assert.match(done.html, /You are signed out/);
  });

  it('a garbage id_token_hint gets an error page, no redirect (RP-Initiated Logout §2; logout plan: bad id_token_hint)', async () => {
    const { agent } = await signedIn('rp1');
    const page = await endSession(agent, { id_token_hint: 'not.a.jwt', post_logout_redirect_uri: bye('rp1') });
    assert.ok(isErrorPage(page));
    assert.match(page.html, /id_token_hint/);
  });

  it('an id_token_hint with a tampered signature gets an error page, no redirect (RP-Initiated Logout §2; logout plan: modified id_token_hint)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const page = await endSession(agent, { id_token_hint: tamper(idTokens.rp1!), post_logout_redirect_uri: bye('rp1'), state: 't' });
    assert.ok(isErrorPage(page), `${page.status} ${page.url}`);
    assert.equal(await stillSignedIn(agent), true);
  });

  it('a client_id that does not match the id_token_hint audience is refused (RP-Initiated Logout §2)', async () => {
    const { agent, idTokens } = await signedIn('rp1', 'rp2');
    const page = await endSession(agent, { id_token_hint: idTokens.rp1!, client_id: 'rp2', post_logout_redirect_uri: bye('rp2') });
    assert.ok(isErrorPage(page));
  });

  it('ui_locales is accepted (RP-Initiated Logout §2)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const page = await endSession(agent, { id_token_hint: idTokens.rp1!, ui_locales: 'fr en' });
    assert.equal(page.status, 200);
    assert.match(page.html, /Sign out\?/);
  });

  it('logout_hint is accepted beside the others and changes nothing of the answer (RP-Initiated Logout §2: its meaning is left to the OP)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const page = await endSession(agent, { id_token_hint: idTokens.rp1!, logout_hint: ALICE.username, post_logout_redirect_uri: bye('rp1'), state: 'hinted' });
    assert.equal(page.status, 200);
    const back = await confirm(agent, page);
    assert.deepEqual([...new URL(back.url).searchParams], [['state', 'hinted']]);
    assert.equal(await stillSignedIn(agent), false);
  });

  it('without a session at the OP, a valid id_token_hint, a registered post_logout_redirect_uri and state send the browser back with state, no question asked (RP-Initiated Logout §2, §3)', async () => {
    const { idTokens } = await signedIn('rp1');
    const elsewhere = new Agent();
    const page = await endSession(elsewhere, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1'), state: 'no-session' });
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.html, /Sign out\?/, 'nothing to confirm: the form posts itself');
    const back = await elsewhere.submit(page, '/session/end/confirm', {}, 'https://');
    assert.ok(back.url.startsWith(bye('rp1')), back.url);
    assert.deepEqual([...new URL(back.url).searchParams], [['state', 'no-session']]);
  });

  it('the confirmation is protected against cross-site requests: a forged or missing xsrf value signs nobody out (RP-Initiated Logout §2, RFC 9700 §4.7)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const page = await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1') });
    for (const xsrf of ['forged', '']) {
      const answer = await agent.submit(page, '/session/end/confirm', { logout: 'yes', xsrf });
      assert.equal(answer.status, 400, `xsrf=${xsrf}`);
      assert.ok(answer.url.startsWith(h.op.issuer));
    }
    const stranger = new Agent();
    const forged = await stranger.submit(page, '/session/end/confirm', { logout: 'yes' });
    assert.equal(forged.status, 400, "another browser cannot use this person's form");
    assert.equal(await stillSignedIn(agent), true);
  });

  it('after logout the session is gone: prompt=none → login_required, and a new sign-in asks for the password (RP-Initiated Logout §2)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    await confirm(agent, await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1') }));
    const silent = await rps.rp1!.authorize(agent, { prompt: 'none' });
    assert.equal(callbackParams(silent).get('error'), 'login_required');
    assert.ok(isLogin((await rps.rp1!.authorize(agent)).page));
  });

  it('the openid-client end-session URL works end to end (RP-Initiated Logout §2, with a real client library)', async () => {
    const { agent, idTokens } = await signedIn('rp1');
    const url = oidc.buildEndSessionUrl(rps.rp1!.config, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1'), state: 'lib' });
    const back = await confirm(agent, await agent.follow(url.href, {}, 'https://'));
    assert.equal(new URL(back.url).searchParams.get('state'), 'lib');
  });
});

describe('OpenID Connect Back-Channel Logout OP', function () {
  this.timeout(60_000);
  const h = logoutHarness();
  const { signedIn, endSession, confirm, stillSignedIn } = h;

  async function logoutEverywhere(initiator = 'rp1', others: string[] = ['rp2', 'rp3']) {
    const { agent, idTokens } = await signedIn(initiator, ...others);
    h.receiver.deliveries.clear();
    const back = await confirm(agent, await endSession(agent, { id_token_hint: idTokens[initiator]!, post_logout_redirect_uri: bye(initiator), state: 'bc' }));
    return { agent, idTokens, back };
  }

  const deliveriesFor = (id: string) => h.receiver.deliveries.get(id) ?? [];

  async function verifyLogoutToken(token: string, clientId: string) {
    return jwtVerify(token, h.op.jwks, { issuer: h.op.issuer, audience: clientId, algorithms: ['RS256'] });
  }

  it('each relying party of the session with a backchannel_logout_uri is sent a logout token by POST, form-encoded (Back-Channel Logout §2.5)', async () => {
    await logoutEverywhere();
    for (const id of ['rp1', 'rp2']) {
      const [delivery, ...more] = deliveriesFor(id);
      assert.ok(delivery, `${id} was told`);
      assert.equal(more.length, 0, `${id} was told once`);
      assert.equal(delivery.method, 'POST');
      assert.match(delivery.contentType, /^application\/x-www-form-urlencoded/);
      assert.ok(delivery.token);
      assert.deepEqual([...new URLSearchParams(delivery.body).keys()], ['logout_token']);
    }
  });

  it('the logout token is an RS256 JWT signed by a key at jwks_uri, explicitly typed logout+jwt (Back-Channel Logout §2.4, RFC 8725 §3.11)', async () => {
    await logoutEverywhere();
    const { protectedHeader } = await verifyLogoutToken(deliveriesFor('rp2')[0]!.token!, 'rp2');
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(protectedHeader.typ, 'logout+jwt');
  });

  it('logout token claims: iss, aud, iat, exp, jti and the back-channel logout event (Back-Channel Logout §2.4)', async () => {
    await logoutEverywhere();
    const { payload } = await verifyLogoutToken(deliveriesFor('rp2')[0]!.token!, 'rp2');
    assert.equal(payload.iss, h.op.issuer);
    assert.deepEqual([payload.aud].flat(), ['rp2']);
    assert.equal(typeof payload.iat, 'number');
    assert.equal(typeof payload.exp, 'number');
    assert.ok(Number(payload.exp) > Number(payload.iat));
    assert.ok(typeof payload.jti === 'string' && payload.jti.length >= 16);
    assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
  });

  it('a logout token never carries a nonce (Back-Channel Logout §2.4)', async () => {
    await logoutEverywhere();
    for (const id of ['rp1', 'rp2']) assert.equal(decodeJwt(deliveriesFor(id)[0]!.token!).nonce, undefined);
  });

  it('sid is in the ID token and in the logout token, and they match; so does sub (Back-Channel Logout §2.1, §2.4)', async () => {
    const { idTokens } = await logoutEverywhere();
    for (const id of ['rp1', 'rp2']) {
      const idToken = decodeJwt(idTokens[id]!);
      assert.ok(typeof idToken.sid === 'string', `${id}: backchannel_logout_session_required puts sid in the ID token`);
      const { payload } = await verifyLogoutToken(deliveriesFor(id)[0]!.token!, id);
      assert.equal(payload.sid, idToken.sid, id);
      assert.equal(payload.sub, idToken.sub, id);
    }
  });

  it('a relying party that did not ask for sessions is told by sub: its logout token names the person, with the event and no nonce (Back-Channel Logout §2.2 backchannel_logout_session_required default false, §2.4 "MUST contain either a sub or a sid")', async () => {
    const { idTokens } = await logoutEverywhere('rp1', ['rpsub']);
    const [delivery, ...more] = deliveriesFor('rpsub');
    assert.ok(delivery?.token, 'rpsub was told');
    assert.equal(more.length, 0);
    const { payload, protectedHeader } = await verifyLogoutToken(delivery.token, 'rpsub');
    assert.equal(protectedHeader.typ, 'logout+jwt');
    assert.equal(payload.sub, decodeJwt(idTokens.rpsub!).sub);
    assert.ok(typeof payload.sub === 'string' || typeof payload.sid === 'string');
    assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
    assert.equal(payload.nonce, undefined);
  });

  it('a logout token carries only the claims §2.4 defines, and is short-lived: no acr, amr, auth_time or nonce of the ID token, exp at most two minutes after iat (Back-Channel Logout §2.4)', async () => {
    await logoutEverywhere();
    for (const id of ['rp1', 'rp2']) {
      const { payload } = await verifyLogoutToken(deliveriesFor(id)[0]!.token!, id);
      const allowed = new Set(['iss', 'aud', 'iat', 'exp', 'jti', 'events', 'sub', 'sid']);
      assert.deepEqual(Object.keys(payload).filter((claim) => !allowed.has(claim)), [], id);
      assert.ok(Number(payload.exp) - Number(payload.iat) <= 120, `${id}: exp ${String(payload.exp)} iat ${String(payload.iat)}`);
    }
  });

  it('"Only sign out of" the asking app: that app alone is sent a logout token, with the sid of its ID token; the others are told nothing and keep their sign-in (RP-Initiated Logout §2, Back-Channel Logout §2.5, §2.7)', async () => {
    const { agent, idTokens } = await signedIn('rp1', 'rp2');
    h.receiver.deliveries.clear();
    const page = await endSession(agent, { id_token_hint: idTokens.rp1!, post_logout_redirect_uri: bye('rp1'), state: 'one' });
    const back = await agent.submit(page, '/session/end/confirm', {}, 'https://');
    assert.deepEqual([...new URL(back.url).searchParams], [['state', 'one']]);
    const [delivery, ...more] = deliveriesFor('rp1');
    assert.ok(delivery?.token, 'rp1 was told');
    assert.equal(more.length, 0);
    const { payload } = await verifyLogoutToken(delivery.token, 'rp1');
    assert.equal(payload.sid, decodeJwt(idTokens.rp1!).sid);
    assert.equal(deliveriesFor('rp2').length, 0, 'rp2 was not signed out');
    assert.equal(await stillSignedIn(agent, 'rp2'), true, 'the session at the OP goes on');
  });

  it('every logout token has its own jti (Back-Channel Logout §2.4)', async () => {
    const jtis: unknown[] = [];
    for (let round = 0; round < 2; round += 1) {
      await logoutEverywhere();
      for (const id of ['rp1', 'rp2']) jtis.push(decodeJwt(deliveriesFor(id)[0]!.token!).jti);
    }
    assert.equal(new Set(jtis).size, jtis.length);
  });

  it('relying parties without a backchannel_logout_uri, or not in the session, are sent nothing (Back-Channel Logout §2.5)', async () => {
    await logoutEverywhere('rp1', ['rp3']);
    assert.equal(deliveriesFor('rp2').length, 0, 'rp2 was not in this session');
    assert.equal(deliveriesFor('rp3').length, 0, 'rp3 has no back-channel logout URI');
    assert.equal(deliveriesFor('rp1').length, 1);
  });

  it('a relying party whose back-channel endpoint fails does not stop the logout (Back-Channel Logout §2.8)', async () => {
    const { agent, back } = await logoutEverywhere('rp1', ['rpfail', 'rp2']);
    assert.equal(deliveriesFor('rpfail').length, 1, 'it was tried');
    assert.equal(deliveriesFor('rp2').length, 1, 'the others are still told');
    assert.ok(back.url.startsWith(bye('rp1')), 'the person is sent back as asked');
    assert.equal(await stillSignedIn(agent), false);
  });

  it('a relying party can register a backchannel_logout_uri dynamically and receives logout tokens (Back-Channel Logout §2.2)', async () => {
    const registered = await fetch(h.op.metadata.registration_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await initialAccessToken(h.op.server!)}` },
      body: JSON.stringify({
        redirect_uris: ['https://dynbc.example.test/callback'],
        backchannel_logout_uri: `${h.receiver.url}/dynbc`,
        backchannel_logout_session_required: true,
      }),
    });
    assert.equal(registered.status, 201);
    const client = (await registered.json()) as { client_id: string; client_secret: string; backchannel_logout_uri: string };
    assert.equal(client.backchannel_logout_uri, `${h.receiver.url}/dynbc`);
    const rp = await RelyingParty.create(h.op, client.client_id, { secret: client.client_secret }, 'https://dynbc.example.test/callback');
    const agent = new Agent();
    const idToken = (await rp.redeem(await rp.signIn(agent, ALICE))).id_token!;
    h.receiver.deliveries.clear();
    await confirm(agent, await endSession(agent, { id_token_hint: idToken }));
    const [delivery] = h.receiver.deliveries.get('dynbc') ?? [];
    assert.ok(delivery?.token);
    await verifyLogoutToken(delivery.token, client.client_id);
  });
});
