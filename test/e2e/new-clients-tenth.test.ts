/**
 * The tenth fresh-eyes pass at the new kinds of clients (docs/security-passes.md, "new kinds of
 * clients, tenth pass"), black box: where the login page says a public client's code goes. The
 * consent prompt asks again at every request whose code goes to a listener on the person's own
 * machine (patches/loopback-public-clients.ts: any program there can take a public client's
 * client_id, RFC 8252 §8.6), and that page is the one place the person learns where the code goes:
 * it must say "a program on this device" for every address the prompt reads as this machine, and
 * for a Client ID Metadata Document's client too, whose domain says who wrote the document, not
 * where the code lands.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { documentHost } from '../helpers/document-host.js';
import { startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** What the page says of where the app sends the person back (views/client-return.eta), as text. */
function returnLines(html: string): string {
  return [...html.matchAll(/<p class="client-return">([\s\S]*?)<\/p>/g)].map((match) => match[1]!.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim()).join(' | ');
}

describe('e2e: new kinds of clients, tenth pass', function () {
  this.timeout(60_000);
  let server: TestServer;
  const host = documentHost('openid');

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1' } });
  });
  after(async () => {
    await server?.stop();
  });

  it('a public client whose code goes to this machine under another loopback spelling (127.0.0.2, a name under localhost, a hosts-file name) is said to send the person to a program on this device, as the consent prompt reads it', async () => {
    const spellings = ['http://127.0.0.2:5173/cb', 'http://notes.localhost:5173/cb', 'https://ip6-localhost:8443/cb', 'https://localhost4/cb'];
    const created = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'Notes', redirect_uris: spellings, token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { client_id } = (await created.json()) as { client_id: string };
    const config = await oidc.discovery(new URL(server.issuer), client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    for (const uri of spellings) {
      const { page } = await startAuthorization(new Agent(), config, uri);
      assert.equal(returnLines(page.html), `Sends you back to a program on this device (${new URL(uri).host})`, uri);
    }
  });

  it("a Client ID Metadata Document's client whose code goes to loopback is said to send the person to a program on this device, beside its domain", async () => {
    const config = await oidc.discovery(new URL(server.issuer), `${host.base}/agent.json`, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const { page } = await startAuthorization(new Agent(), config, `${host.base}/callback`);
    const domain = new URL(host.base).host;
    assert.equal(returnLines(page.html), `An app from ${domain}, which gave itself the name above | Sends you back to a program on this device (${domain})`);
  });
});
