/**
 * The outbound-request guard (src/http/outbound.ts) against a real local HTTP server: which URLs
 * and addresses it refuses (before any connection), and the size, time and redirect bounds on
 * what it does fetch.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createOutboundFetch,
  isSpecialUseAddress,
  OutboundAddressError,
  OutboundRedirectError,
  OutboundTimeoutError,
  OutboundTooLargeError,
  OutboundUrlError,
} from '../../src/http/outbound.js';

describe('outbound request guard', () => {
  let server: http.Server;
  let base: string;
  let connections = 0;
  const guarded = createOutboundFetch({ allowPrivateNetworks: false });
  const allowed = createOutboundFetch({ allowPrivateNetworks: true });

  before(async () => {
    server = http.createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/json') return res.setHeader('content-type', 'application/json').end('{"ok":true}');
      if (path === '/echo') {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => res.end(`${req.method} ${req.headers['content-type']} ${Buffer.concat(chunks).toString()}`));
        return;
      }
      if (path === '/declared-big') return res.setHeader('content-length', '100000').end('x'.repeat(100000));
      if (path === '/streamed-big') {
        // No content-length: only counting the body catches it.
        res.write('x'.repeat(3000));
        res.write('x'.repeat(3000));
        return res.end();
      }
      if (path === '/slow') return; // never answers
      if (path === '/redirect') return res.writeHead(302, { location: '/json' }).end();
      res.statusCode = 404;
      res.end();
    });
    server.on('connection', () => { connections += 1; });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('classifies loopback, private, link-local, shared, mapped and documentation addresses as special-use, public ones not', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1',
      '0.0.0.0', '224.0.0.1', '255.255.255.255', '192.0.2.7', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::2',
      '::ffff:127.0.0.1', '::ffff:8.8.8.8', '0:0:0:0:0:ffff:808:808', '64:ff9b::a00:1', '2001:db8::1', 'ff02::1', 'not-an-address']) {
      assert.equal(isSpecialUseAddress(address), true, address);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '151.101.1.1', '2606:4700:4700::1111', '2a00:1450:4001::200e']) {
      assert.equal(isSpecialUseAddress(address), false, address);
    }
  });

  it('refuses private addresses without connecting: literal, a name resolving to one, and plain http', async () => {
    const before = connections;
    const port = new URL(base).port;
    await assert.rejects(guarded(`https://127.0.0.1:${port}/json`), OutboundAddressError);
    await assert.rejects(guarded(`https://[::1]:${port}/json`), OutboundAddressError);
    await assert.rejects(guarded('https://169.254.169.254/latest/meta-data/'), OutboundAddressError);
    // A name is checked in the socket's own lookup: the address it connects to is the one checked.
    await assert.rejects(guarded(`https://localhost:${port}/json`), OutboundAddressError);
    await assert.rejects(guarded(`${base}/json`), OutboundUrlError);
    assert.equal(connections, before, 'no connection was opened');
    // Each refusal names the setting that allows it (an upstream or app on this host while developing).
    const setting = /reached only with outbound\.allowPrivateNetworks \(OUTBOUND_ALLOW_PRIVATE_NETWORKS=true\)$/;
    await assert.rejects(guarded(`${base}/json`), (error: Error) => error.message.startsWith(`${base} is loopback, `) && setting.test(error.message));
    await assert.rejects(guarded(`https://127.0.0.1:${port}/json`), (error: Error) => setting.test(error.message));
    await assert.rejects(guarded(`https://localhost:${port}/json`), (error: Error) => setting.test(error.message));
  });

  it('refuses other schemes, credentials in the URL, and http to a non-loopback host even when private networks are allowed', async () => {
    await assert.rejects(allowed('ftp://127.0.0.1/file'), OutboundUrlError);
    await assert.rejects(allowed('file:///etc/passwd'), OutboundUrlError);
    await assert.rejects(allowed(`http://user:pass@127.0.0.1:${new URL(base).port}/json`), OutboundUrlError);
    await assert.rejects(allowed('http://example.com/'), OutboundUrlError);
  });

  it('fetches from loopback over http when private networks are allowed, with request bodies', async () => {
    const response = await allowed(`${base}/json`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { ok: true });
    const echo = await allowed(`${base}/echo`, { method: 'POST', body: new URLSearchParams({ a: 'b c' }) });
    assert.equal(await echo.text(), 'POST application/x-www-form-urlencoded;charset=UTF-8 a=b+c');
    assert.equal((await allowed(`${base}/missing`)).status, 404);
  });

  it('bounds the response size, whether declared or streamed', async () => {
    await assert.rejects(allowed(`${base}/declared-big`, { maxBytes: 5000 }), OutboundTooLargeError);
    await assert.rejects(allowed(`${base}/streamed-big`, { maxBytes: 5000 }), OutboundTooLargeError);
    assert.equal((await (await allowed(`${base}/streamed-big`, { maxBytes: 6000 })).text()).length, 6000);
  });

  it('bounds the time a server may take', async () => {
    await assert.rejects(allowed(`${base}/slow`, { timeoutMs: 200 }), OutboundTimeoutError);
  });

  it('follows no redirect unless asked, and checks every hop', async () => {
    await assert.rejects(allowed(`${base}/redirect`), OutboundRedirectError);
    const followed = await allowed(`${base}/redirect`, { maxRedirects: 1 });
    assert.deepEqual(await followed.json(), { ok: true });
    await assert.rejects(allowed(`${base}/redirect`, { maxRedirects: 1, method: 'POST', body: 'x' }), OutboundRedirectError);
  });
});
