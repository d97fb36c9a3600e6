/**
 * The eighteenth passes' review of 6d0b23a4 (h13): client metadata named as its request parameter
 * (post_logout_redirect_uri for post_logout_redirect_uris…) is refused where an operator writes a
 * client. A client the admin API made before that refusal was stored with the name as written (the
 * engine ignored it), and `latchkey clients update`, which writes the stored record back with the
 * change, was then refused for a name the operator did not give, with no way to take it out from the
 * CLI. See docs/security-passes.md, "review of the commits named in your topic (h13)".
 */
import assert from 'node:assert/strict';
import { adapterFactory } from '../../src/store/adapter.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('a client stored with a singular metadata name before it was refused, eighteenth passes (h13)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  it('is updated by latchkey clients update, the name it never used left out of what is written; a write that names it is still refused', async () => {
    const clients = adapterFactory(server.kv)('Client');
    // As POST /admin/clients stored it before 6d0b23a4: the body as written.
    await clients.upsert('old-app', { client_id: 'old-app', redirect_uris: ['https://app.example.com/cb'], post_logout_redirect_uri: 'https://app.example.com/out', token_endpoint_auth_method: 'none', client_id_issued_at: 1 }, 0);
    const updated = await latchkey(server.env, ['clients', 'update', 'old-app', '--require-mfa']);
    assert.equal(updated.status, 0, updated.stderr);
    const stored = (await clients.find('old-app')) as Record<string, unknown>;
    assert.equal(stored.require_mfa, true);
    assert.equal(stored.post_logout_redirect_uri, undefined);
    assert.deepEqual(stored.redirect_uris, ['https://app.example.com/cb']);
    // The refusal stands for what an operator writes: the admin API's registry (and so the CLI's) still refuses it.
    await clients.upsert('old-app-2', { client_id: 'old-app-2', redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none', client_id_issued_at: 1 }, 0);
    await assert.rejects(server.clients.update('old-app-2', { redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none', post_logout_redirect_uri: 'https://app.example.com/out' }), {
      message: 'invalid_client_metadata: post_logout_redirect_uri is not client metadata: the list is post_logout_redirect_uris, an array of URIs',
    });
  });
});
