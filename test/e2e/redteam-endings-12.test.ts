/**
 * Red team, twelfth endings pass (docs/security.md, "Looked at in the twelfth endings pass").
 *
 * A logout token an app's endpoint did not take is kept to send again (backchannel.retrySchedule),
 * naming the app by its client_id only. The app's client deleted and an operator making another with
 * the id before the retry came: the retry signed the first app's person's logout token (their sub
 * and sid) and posted it to the new app's back-channel endpoint, which never had them. A retry now
 * keeps the client's creation time (client_id_issued_at) and is dropped once the client found under
 * the id was made after it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
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
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    endpoint = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const path = req.url ?? '';
        posts.set(path, (posts.get(path) ?? 0) + 1);
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

  const metadata = (path: string) => ({
    client_id: APP.id,
    client_secret: APP.secret,
    redirect_uris: [REDIRECT],
    backchannel_logout_uri: `${url}${path}`,
    backchannel_logout_session_required: true,
  });

  it("a logout token kept to send again is not sent to another app an operator made with the deleted app's client_id", async () => {
    await server.clients.add(metadata('/first'));
    const config = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, REDIRECT);
    const back = await signInSteps(agent, page, { username: 'rosa', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), `back at the app, got ${back.status} ${back.url}`);

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
});
