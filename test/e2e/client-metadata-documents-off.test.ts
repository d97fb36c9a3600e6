/**
 * clientMetadataDocuments.enabled=false: discovery no longer advertises Client ID Metadata
 * Documents, and a client_id URL is an unknown client (its document is never fetched).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from '../helpers/server.js';

describe('client ID metadata documents switched off', () => {
  let server: TestServer;
  let documents: http.Server;
  let fetched = 0;

  before(async () => {
    documents = http.createServer((_req, res) => {
      fetched += 1;
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    server = await startServer({ env: { CLIENT_METADATA_DOCUMENTS_ENABLED: 'false', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
  });
  after(async () => {
    await server?.stop();
    documents.close();
  });

  it('is not advertised, and a URL client_id is an unknown client', async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.equal(metadata.client_id_metadata_document_supported, undefined);
    const clientId = `http://127.0.0.1:${(documents.address() as AddressInfo).port}/client.json`;
    const url = new URL(`${server.issuer}/auth`);
    url.search = new URLSearchParams({ client_id: clientId, redirect_uri: 'http://127.0.0.1:9/cb', response_type: 'code', scope: 'openid' }).toString();
    const response = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /invalid_client/);
    assert.equal(fetched, 0);
  });
});
