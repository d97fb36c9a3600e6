/**
 * The review of the eighteenth passes' endings fix (h16: docs/security-passes.md, "Looked at in the
 * eighteenth passes: review of bda321be 2a07ff0c 63c11c41 2ba811de (h16)"), black box: a server on a
 * redis-server of the test's own, the developer page through the test's browser agent, the CLI as
 * the operator.
 *
 * Found and fixed: `latchkey users remove` of a person one of whose developer-page apps the operator
 * had moved into the configuration (CLIENTS, same client_id: the app serves others) failed, at every
 * run: the removal skipped configured ids only when the CLI itself had the servers' CLIENTS, and
 * otherwise asked `clients remove`'s own check, which refuses a configured client. The person stayed,
 * disabled, with their other apps removed or not as the listing's order had it.
 */
import assert from 'node:assert/strict';
import { Agent } from '../helpers/agent.js';
import { developerSignIn } from '../helpers/developer.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { configuredClientChanges } from '../../src/store/configured-clients.js';

const PASSWORD = 'removed owner eighteenth password of the person';
const REDIRECT = 'https://app.removed-owner-eighteenth.example.test/callback';

describe('e2e: eighteenth passes (review, h16), a removed person’s apps', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true });
  });
  after(async () => {
    await server?.stop();
  });

  it('one of their apps moved into the configuration (same client_id): the removal leaves it to the operator and removes the person and their other apps', async () => {
    await server.accounts.create('moira', PASSWORD);
    const { agent, page } = await developerSignIn(server.issuer, 'moira', PASSWORD, new Agent());
    const made = await agent.submit(page, '/developer/apps', { name: 'Moved Reports', type: 'web', redirect_uris: REDIRECT });
    const moved = /id="client-id">([^<]+)</.exec(made.html)?.[1];
    assert.ok(moved, `${made.status} ${made.url}`);
    const sub = (await server.accounts.findByUsername('moira'))!.sub;
    // Another app of theirs, as the developer page registers it (Clients.addOwned).
    const other = 'app-removed-owner-other';
    await server.clients.addOwned({ client_id: other, client_name: 'Other Reports', redirect_uris: [REDIRECT], response_types: ['code'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', owner: sub }, 25);
    // The operator moves the first into the configuration (CLIENTS), as the servers record it at their start.
    const stored = (await server.clients.get(moved))!;
    const { owner: _owner, client_id_issued_at: _issued, ...metadata } = stored;
    assert.equal(await (await configuredClientChanges(server.kv, [{ ...metadata, client_secret: 'moved-into-the-configuration-secret-0123456789abcdef' }])).record(), true);

    // The operator's CLI without the servers' CLIENTS (it reads what they recorded).
    const { CLIENTS: _clients, ...env } = server.env;
    const run = await latchkey(env, ['users', 'remove', 'moira']);
    assert.equal(run.status, 0, `the removal failed: ${run.stderr}`);
    assert.match(run.stdout, new RegExp(`removed moira; removed the app ${other} \\(Other Reports\\) they registered`), run.stdout);
    assert.doesNotMatch(run.stdout, new RegExp(moved), 'the configured app is not said removed');
    assert.equal(await server.accounts.findByUsername('moira'), undefined, 'the person is still there');
    assert.equal(await server.clients.get(other), undefined, 'their other app is still stored');
  });
});
