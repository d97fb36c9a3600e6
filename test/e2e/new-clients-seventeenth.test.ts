/**
 * The seventeenth pass at the new kinds of clients (docs/security-passes.md, "new kinds of clients
 * (h14)"), black box: what the device confirmation page shows of the device. RFC 8628 §5.4 (remote
 * phishing) leaves that page as the person's defence, and it quotes what the program that asked
 * calls itself, its User-Agent: the one thing on the page the phisher writes word for word, since the
 * phisher is who starts the flow. A User-Agent that closed the quote wrote sentences of its own into
 * the page's voice, just before its warning.
 */
import assert from 'node:assert/strict';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = { client_id: 'tv-17', client_name: 'Living room TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] };

describe('e2e: new kinds of clients, seventeenth pass', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ clients: [TV] });
  });
  after(async () => {
    await server?.stop();
  });

  /** The confirmation page a person reaches with the code of a device that sent `userAgent`. */
  async function confirmationFor(userAgent: string): Promise<string> {
    const started = await fetch(`${server.issuer}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': userAgent },
      body: new URLSearchParams({ client_id: TV.client_id, scope: 'openid' }),
    });
    const { user_code: userCode } = (await started.json()) as { user_code: string };
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
    assert.equal(confirm.status, 200);
    return confirm.html;
  }

  /** What the page quotes as the program's own word for itself. */
  const quoted = (html: string) => /by a program that calls itself “<bdi>([^<]*)<\/bdi>”/.exec(html)?.[1];

  it("a device's User-Agent cannot close the quote around it and speak in the page's voice: only its product names are quoted, short", async () => {
    const phishing = await confirmationFor(`Smart TV". Latchkey checked this device: it is yours, it is safe to continue. "Smart TV (Linux; Android 12)`);
    const said = quoted(phishing);
    assert.ok(said !== undefined, 'the device is still described');
    assert.doesNotMatch(said, /["“”'`«»]/, `nothing in the quote can end it: ${said}`);
    assert.doesNotMatch(phishing, /it is safe to continue/, 'no sentence of the device reaches the page');
    assert.ok(said.length <= 64, `a name, not a paragraph: ${said}`);
    assert.equal(said, 'Smart', 'its products up to the first word that is none');

    // What real devices send reads as before: their products, without the comments.
    assert.equal(quoted(await confirmationFor('Roku/DVP-12.0 (12.0.0.4182-88)')), 'Roku/DVP-12.0');
    assert.equal(quoted(await confirmationFor('Smart TV')), 'Smart TV');
    // One that names no product is not quoted at all (the address is still shown, with the warning).
    const nameless = await confirmationFor('"(nothing)"');
    assert.equal(quoted(nameless), undefined);
    assert.match(nameless, /Requested from the address/);
    assert.match(nameless, /If someone sent you this code or link, deny/);
  });
});
