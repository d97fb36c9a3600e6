/**
 * An MCP client meets an MCP server protected by Latchkey (test/helpers/mcp-server.ts, the example of
 * docs/mcp.md) knowing nothing but the server's URL, as the MCP authorization specification has it:
 * its 401 challenge names the RFC 9728 resource metadata, which names Latchkey, whose RFC 8414
 * metadata gives the endpoints and says Client ID Metadata Documents are supported; the client
 * registers by its metadata document (served from loopback) and, separately, by RFC 7591; each time
 * a person signs in and consents in Chromium (the consent page shows the document's domain), the
 * client redeems the code with PKCE and the resource indicator (RFC 8707), and calls the tool.
 * The client side is oauth4webapi, a library we did not write.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, screenshots } from '../helpers/browser.js';
import { MCP_SCOPE, startMcpServer, type McpServer } from '../helpers/mcp-server.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { grantFeed, machineClient } from '../helpers/tokens.js';

const PASSWORD = 'correct horse battery staple';
const RS = { id: 'mcp-server', secret: 'mcp-server-secret-with-plenty-of-entropy-0123' };
const insecure = { [oauth.allowInsecureRequests]: true };

describe('e2e: an MCP client discovers Latchkey from a 401 and registers both ways', function () {
  this.timeout(60_000);
  let server: TestServer;
  let mcp: McpServer;
  let agentSite: http.Server;
  let agentBase: string;
  let browser: Browser;
  let page: Page;
  const shot = screenshots('mcp');
  const callbacks: URL[] = [];

  before(async () => {
    // The MCP client's own site: its metadata document and its redirect URI, on loopback.
    agentSite = http.createServer((req, res) => {
      if (req.url === '/client.json') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
        return res.end(JSON.stringify({
          client_id: `${agentBase}/client.json`,
          client_name: 'Example MCP agent',
          client_uri: `${agentBase}/`,
          redirect_uris: [`${agentBase}/callback`],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }));
      }
      if (req.url?.startsWith('/callback')) {
        callbacks.push(new URL(req.url, agentBase));
        return res.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.');
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => agentSite.listen(0, '127.0.0.1', resolve));
    agentBase = `http://127.0.0.1:${(agentSite.address() as AddressInfo).port}`;

    const mcpPort = await freePort();
    server = await startServer({
      ownRedis: true,
      clients: [machineClient(RS)],
      env: {
        RESOURCE_SERVERS: JSON.stringify([{ identifier: `http://127.0.0.1:${mcpPort}/mcp`, scopes: [MCP_SCOPE], format: 'jwt' }]),
        // RFC 7591 without an initial access token: the client has nothing but the server's URL.
        REGISTRATION_OPEN: 'true',
        // The metadata document is on loopback (http), which only this allows.
        OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
      },
    });
    await server.accounts.create('alice', PASSWORD);
    await grantFeed(server, RS.id);
    mcp = await startMcpServer({ issuer: server.issuer, clientId: RS.id, clientSecret: RS.secret, port: mcpPort });
    browser = await launchChromium();
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
    await mcp?.close();
    await server?.stop();
    agentSite?.closeAllConnections();
    agentSite?.close();
  });

  /** Everything the client learns from the MCP server's URL alone. */
  async function discover(): Promise<{ resource: URL; as: oauth.AuthorizationServer }> {
    const endpoint = new URL(mcp.resource);
    const anonymous = await fetch(endpoint, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(anonymous.status, 401);
    assert.doesNotMatch(anonymous.headers.get('www-authenticate') ?? '', /error=/, 'no error code without a token (RFC 6750 §3.1)');
    // The same challenge, parsed by the client library (it surfaces challenges on any request with a token).
    const challenge = await oauth.protectedResourceRequest('not-a-token', 'POST', endpoint, undefined, '{}', insecure).then(
      () => assert.fail('expected a challenge'),
      (error: unknown) => {
        assert.ok(error instanceof oauth.WWWAuthenticateChallengeError);
        // DPoP is accepted too (RFC 9449 §7.1): its challenge names its algorithms and the same metadata.
        const dpop = error.cause.find((c) => c.scheme === 'dpop');
        assert.ok(dpop?.parameters.algs, JSON.stringify(error.cause));
        assert.equal(dpop.parameters.resource_metadata, error.cause.find((c) => c.scheme === 'bearer')?.parameters.resource_metadata);
        return error.cause.find((c) => c.scheme === 'bearer')!;
      },
    );
    assert.equal(challenge.parameters.error, 'invalid_token');
    assert.equal(challenge.parameters.scope, MCP_SCOPE);
    // RFC 9728: the metadata names the resource (checked against what we called) and its authorization server.
    const metadata = await oauth.processResourceDiscoveryResponse(endpoint, await fetch(challenge.parameters.resource_metadata!));
    assert.deepEqual(metadata.authorization_servers, [server.issuer]);
    assert.deepEqual(metadata.scopes_supported, [MCP_SCOPE]);
    // RFC 8414 at the authorization server it names.
    const issuer = new URL(metadata.authorization_servers![0]!);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
    assert.ok(as.code_challenge_methods_supported?.includes('S256'));
    return { resource: endpoint, as };
  }

  /** PKCE + resource indicator, consent in Chromium, code for token (DPoP-bound with `dpop`); returns the access token. */
  async function authorize(as: oauth.AuthorizationServer, client: oauth.Client, redirectUri: string, resource: URL, expectDomain?: string, dpop?: oauth.DPoPHandle): Promise<string> {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: MCP_SCOPE,
      resource: resource.href,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    }).toString();
    await page.goto(url.href);
    if (await page.locator('input[name="password"]').count()) {
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', PASSWORD);
      await page.click('button:has-text("Sign in")');
    }
    await page.waitForSelector('button:has-text("Allow")');
    const consent = await page.locator('main').innerText();
    assert.match(consent, new RegExp(`Act on ${resource.href.replace(/[.]/g, '\\.')} with: ${MCP_SCOPE}`));
    if (expectDomain) {
      assert.equal(await page.locator('.client-domain strong').innerText(), expectDomain);
      assert.match(consent, /It calls itself Example MCP agent/);
    } else {
      assert.equal(await page.locator('.client-domain').count(), 0);
    }
    await shot(page, expectDomain ? 'consent-metadata-document' : 'consent-registered');
    const before = callbacks.length;
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${redirectUri}?**`);
    assert.equal(callbacks.length, before + 1);
    const params = oauth.validateAuthResponse(as, client, callbacks.at(-1)!, state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, {
      additionalParameters: { resource: resource.href },
      ...(dpop && { DPoP: dpop }),
      ...insecure,
    });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    assert.equal(tokens.scope, MCP_SCOPE);
    assert.equal(tokens.token_type, dpop ? 'dpop' : 'bearer');
    return tokens.access_token;
  }

  /** tools/call whoami with the token: the MCP server accepts it and says whose it is. */
  async function callTool(resource: URL, token: string, dpop?: oauth.DPoPHandle): Promise<string> {
    const response = await oauth.protectedResourceRequest(token, 'POST', resource, new Headers({ 'content-type': 'application/json' }),
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami' } }), { ...insecure, ...(dpop && { DPoP: dpop }) });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { result: { content: { text: string }[] } };
    return body.result.content[0]!.text;
  }

  it('by Client ID Metadata Document: the client_id is its document\'s URL, and the consent page shows its domain', async () => {
    const { resource, as } = await discover();
    assert.equal(as.client_id_metadata_document_supported, true);
    const client: oauth.Client = { client_id: `${agentBase}/client.json`, token_endpoint_auth_method: 'none' };
    const token = await authorize(as, client, `${agentBase}/callback`, resource, new URL(agentBase).host);
    const alice = await server.accounts.findByUsername('alice');
    assert.equal(await callTool(resource, token), `${alice!.sub} via ${client.client_id}`);
  });

  it('with DPoP, which the challenge offers: a DPoP-bound token with its proof calls the tool; a proof made for another server\'s /mcp is refused, whatever origin the request target names (RFC 9449 §4.3, §7.1)', async () => {
    const { resource, as } = await discover();
    const client: oauth.Client = { client_id: `${agentBase}/client.json`, token_endpoint_auth_method: 'none' };
    const key = await oauth.generateKeyPair('ES256');
    const token = await authorize(as, client, `${agentBase}/callback`, resource, new URL(agentBase).host, oauth.DPoP(client, key));
    const alice = await server.accounts.findByUsername('alice');
    assert.equal(await callTool(resource, token, oauth.DPoP(client, key)), `${alice!.sub} via ${client.client_id}`);

    // A malicious MCP server the client also talks to gets its proofs (and, by mistake, this server's
    // token): the proof names that server's URL, and sent here it must fail however the request's
    // target is spelt (a server that took the URL from the target would take it).
    const elsewhere = 'https://mcp.evil.example/mcp';
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami' } });
    for (const target of ['/mcp', '//mcp.evil.example/mcp', elsewhere]) {
      const proof = await new SignJWT({ htm: 'POST', htu: elsewhere, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
        .setIssuedAt()
        .sign(key.privateKey);
      const status = await new Promise<number>((resolve, reject) => {
        const request = http.request({ host: resource.hostname, port: resource.port, method: 'POST', path: target, headers: { authorization: `DPoP ${token}`, dpop: proof, 'content-type': 'application/json' } }, (response) => {
          response.resume();
          resolve(response.statusCode!);
        });
        request.on('error', reject);
        request.end(body);
      });
      assert.equal(status, 401, `target ${target}: a proof for ${elsewhere}`);
    }
  });

  it('by dynamic registration (RFC 7591): a registered public client, no domain to show', async () => {
    const { resource, as } = await discover();
    const redirectUri = `${agentBase}/callback`;
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(as, {
        client_name: 'Example MCP agent (registered)',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }, insecure),
    );
    const client: oauth.Client = { client_id: registered.client_id, token_endpoint_auth_method: 'none' };
    const token = await authorize(as, client, redirectUri, resource);
    assert.match(await callTool(resource, token), new RegExp(` via ${registered.client_id}$`));
  });
});
