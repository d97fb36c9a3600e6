/**
 * Red team, thirteenth endings pass (docs/security-passes.md, "Looked at in the thirteenth endings pass"):
 * identifiers an operator can free and use again.
 *
 * An upstream provider removed and another added under its id, with another issuer: a link
 * (upstream id + sub → local account) records the issuer that vouched for it and is not followed for
 * another issuer; but a link made by an earlier release, which recorded none, was followed for any:
 * whoever held the same sub at the new issuer signed in as the person linked at the old one. The
 * removal now writes the removed upstream's issuer into such links (UpstreamLinks.recordIssuer).
 */
import assert from 'node:assert/strict';
import { UpstreamLinks, type Link } from '../../src/accounts/links.js';
import { upstreamLinkKey } from '../../src/store/keys.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { anotherProviderSignsIn, linkedBySignIn, startFakeUpstream } from '../helpers/fake-upstream.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const SECRET = 'thirteenth-endings-upstream-secret-with-plenty-of-entropy';
const REDIRECT = 'https://app.example.test/callback';
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };

describe('e2e: red team, thirteenth endings pass', function () {
  this.timeout(60_000);
  let server: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }, machineClient(OPS, { scope: 'admin' })],
    });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    fake = await startFakeUpstream(SECRET);
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  it("an upstream removed by the operator and another provider added under its id: a link made before links recorded their issuer does not sign the new provider's person in to the old one's account", async () => {
    const upstreams = new Upstreams(server.kv, server.config.keys.secrets);
    const links = new UpstreamLinks(server.kv, server.accounts);
    const original = fake.state.issuer;
    const common = { id: 'swap', clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Swap', linkByEmail: false, endSession: false };
    const signIn = () => linkedBySignIn(server, fake, { upstream: 'swap', sub: 'swap-person', clientId: 'app', redirectUri: REDIRECT });
    await upstreams.add({ ...common, issuer: original });
    try {
      const first = await signIn();
      assert.ok(first, 'the first provider made an account');
      // The link as an earlier release wrote it: no issuer.
      const { iss: _iss, ...legacy } = (await links.find('swap', 'swap-person'))!;
      await server.kv.set(upstreamLinkKey('swap', 'swap-person'), JSON.stringify(legacy satisfies Link));

      const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
      assert.equal((await fetch(`${server.url}/admin/upstreams/swap`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status, 204);
      const second = await anotherProviderSignsIn(server, fake, common, signIn);
      assert.ok(second, 'the second provider made an account');
      assert.notEqual(second, first, "the new provider's person signed in to the removed provider's person's account");
      assert.ok(await server.accounts.find(first), 'the old account stays');

      // The same provider added again (how its secret is changed) still finds the person of a link
      // made before issuers were recorded.
      await upstreams.remove('swap');
      fake.state.issuer = original;
      fake.state.email = undefined;
      await upstreams.add({ ...common, issuer: original });
      await server.kv.set(upstreamLinkKey('swap', 'swap-person'), JSON.stringify(legacy satisfies Link));
      assert.equal((await fetch(`${server.url}/admin/upstreams/swap`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status, 204);
      await upstreams.add({ ...common, issuer: original });
      assert.equal(await signIn(), first, 'the same provider added again finds the same person');
    } finally {
      fake.state.issuer = original;
      fake.state.email = undefined;
      await upstreams.remove('swap').catch(() => undefined);
    }
  });
});
