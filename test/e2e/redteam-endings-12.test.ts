/**
 * Red team, twelfth endings pass (docs/security-passes.md, "Looked at in the twelfth endings pass").
 *
 * A logout token an app's endpoint did not take is kept to send again (backchannel.retrySchedule),
 * naming the app by its client_id only. The app's client deleted and an operator making another with
 * the id before the retry came: the retry signed the first app's person's logout token (their sub
 * and sid) and posted it to the new app's back-channel endpoint, which never had them. A retry now
 * keeps the client's creation time (client_id_issued_at) and is dropped once the client found under
 * the id was made after it.
 *
 * The same without any retry: a session names each app it signed in to by client_id only, so its
 * ending (signing out at an app, an operator's ending, the account page's sign-out, the expiry
 * sweep) posted the new app a logout token with the person's sub and the first app's sid. A
 * session's entry for an app now holds when the person was last signed in to it, and an ending tells
 * only an app whose client was made at or before then (src/session-apps.ts).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { AccountSessions } from '../../src/accounts/sessions.js';
import { createLogger } from '../../src/ops/logger.js';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'twelfth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const APP = { id: 'reused-id', secret: 'reused-id-client-secret-with-plenty-of-entropy-0123' };

describe('e2e: red team, twelfth endings pass', function () {
  this.timeout(60_000);
  let server: TestServer;
  let endpoint: Server;
  let url: string;
  /** Each path's posts (the first app's endpoint answers 503; the second app's 200). */
  const posts = new Map<string, number>();
  /** Each path's logout tokens. */
  const tokens = new Map<string, string[]>();
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    endpoint = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const path = req.url ?? '';
        posts.set(path, (posts.get(path) ?? 0) + 1);
        tokens.set(path, [...(tokens.get(path) ?? []), new URLSearchParams(body).get('logout_token') ?? '']);
        res.writeHead(path === '/first' ? 503 : 200, { 'cache-control': 'no-store' }).end();
      });
    });
    await new Promise<void>((done) => endpoint.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    // The retry 8 s after the failed post: the client is deleted and made again before it.
    server = await startServer({
      ownRedis: true,
      logger: createLogger('info', stream),
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', BACKCHANNEL_RETRY_SCHEDULE: '8', BACKCHANNEL_SWEEP_INTERVAL: '0.2' },
    });
    await server.accounts.create('rosa', PASSWORD);
  });
  after(async () => {
    await server?.stop();
    endpoint?.close();
  });

  const metadata = (path: string, clientId = APP.id) => ({
    client_id: clientId,
    client_secret: APP.secret,
    redirect_uris: [REDIRECT],
    backchannel_logout_uri: `${url}${path}`,
    backchannel_logout_session_required: true,
  });

  /** `agent` signs rosa in to `clientId` (her session's entry for it); the consent page, when shown, allowed. */
  const signIn = async (agent: Agent, clientId: string) => {
    const config = await oidc.discovery(new URL(server.issuer), clientId, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const { page } = await startAuthorization(agent, config, REDIRECT);
    const back = await signInSteps(agent, page, { username: 'rosa', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), `back at ${clientId}, got ${back.status} ${back.url}`);
  };

  it("a logout token kept to send again is not sent to another app an operator made with the deleted app's client_id", async () => {
    await server.clients.add(metadata('/first'));
    const agent = new Agent();
    await signIn(agent, APP.id);

    // The person signs out; the first app's endpoint answers 503, so the logout is kept to send again.
    const confirmation = await agent.follow(`${server.url}/session/end`);
    assert.match((await agent.submit(confirmation, '/session/end/confirm', { logout: 'yes' })).url, /\/session\/end\/success/);
    assert.equal(posts.get('/first'), 1);

    // The operator deletes the app and makes another (another app, another endpoint) with the id.
    await server.clients.remove(APP.id);
    await server.clients.add(metadata('/second'));

    // The retry comes due: given up, never posted to the new app.
    const settled = () => lines.find((line) => (line.event === 'backchannel.dropped' || line.event === 'backchannel.delivered') && line.client_id === APP.id);
    await eventually(async () => assert.ok(settled(), 'the retry was settled'), 400, 100);
    assert.equal(posts.get('/second'), undefined, "the first app's person's logout token was posted to the app made again with its id");
    assert.equal(settled()!.event, 'backchannel.dropped');
    assert.equal(settled()!.reason, 'client_gone');
  });

  it("signing out at an app tells the session's apps, never another app an operator made with a deleted app's client_id", async () => {
    await server.clients.add(metadata('/rp-old', 'rp-reused'));
    await server.clients.add(metadata('/rp-kept', 'rp-kept'));
    const agent = new Agent();
    await signIn(agent, 'rp-reused');
    await signIn(agent, 'rp-kept');

    // The operator deletes the first app and makes another (another app, another endpoint) with its id.
    await server.clients.remove('rp-reused');
    await server.clients.add(metadata('/rp-new', 'rp-reused'));

    // The person signs out everywhere (RP-initiated logout): the app kept is told, the new one is not.
    const confirmation = await agent.follow(`${server.url}/session/end`);
    assert.match((await agent.submit(confirmation, '/session/end/confirm', { logout: 'yes' })).url, /\/session\/end\/success/);
    assert.equal(posts.get('/rp-kept'), 1, 'the app of the session is told');
    assert.equal(posts.get('/rp-new'), undefined, "the first app's person's logout token was posted to the app made again with its id");
    assert.equal(posts.get('/rp-old'), undefined);
  });

  it("an operator's ending tells an app made again with a deleted app's client_id only of the sessions signed in to it since", async () => {
    await server.clients.add(metadata('/op-old', 'op-reused'));
    const rosa = (await server.accounts.findByUsername('rosa'))!;
    const accountSessions = new AccountSessions(server.kv, server.providers, server.accounts);
    const sidsOf = async () => new Set((await accountSessions.list(rosa.sub)).map((session) => session.authorizations?.['op-reused']?.sid));
    await signIn(new Agent(), 'op-reused');
    const [firstSid] = await sidsOf();

    await server.clients.remove('op-reused');
    await server.clients.add(metadata('/op-new', 'op-reused'));
    // Another session of the person signs in to the new app: of that one it is told.
    await signIn(new Agent(), 'op-reused');
    const sinceSids = await sidsOf();
    sinceSids.delete(firstSid);
    assert.equal(sinceSids.size, 1);

    // The operator ends the person's sessions (as disabling her does: admin API, CLI).
    assert.equal(await accountSessions.endAll(rosa.sub), 2);
    assert.equal(posts.get('/op-new'), 1, "the first app's person's logout token was posted to the app made again with its id");
    const told = decodeJwt(tokens.get('/op-new')![0]!);
    assert.equal(told.sub, rosa.sub);
    assert.equal(told.sid, [...sinceSids][0], 'the session signed in to the new app');
    assert.equal(posts.get('/op-old'), undefined);
  });

  it("the account page's sign-out of a session tells no app made again with a deleted app's client_id", async () => {
    await server.clients.add(metadata('/ap-old', 'ap-reused'));
    const phone = new Agent();
    await signIn(phone, 'ap-reused');
    const rosa = (await server.accounts.findByUsername('rosa'))!;
    const phones = (await new AccountSessions(server.kv, server.providers, server.accounts).list(rosa.sub)).find((session) => session.authorizations?.['ap-reused']);
    assert.ok(phones);

    await server.clients.remove('ap-reused');
    await server.clients.add(metadata('/ap-new', 'ap-reused'));

    // From another browser, the person signs that session out on the account page.
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'rosa', password: PASSWORD, login: 'required', consent: 'stop' });
    const done = await agent.submit(page, '/sessions/sign-out', { session: phones.uid });
    assert.match(done.html, /That session is signed out/);
    assert.equal(posts.get('/ap-new'), undefined, "the first app's person's logout token was posted to the app made again with its id");
    assert.equal(posts.get('/ap-old'), undefined);
  });
});
