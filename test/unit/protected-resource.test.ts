/**
 * RFC 9728 in latchkey/resource-server (src/resource-server/protected-resource.ts): the metadata
 * document and where it lives (§3.1), and the WWW-Authenticate challenge (§5.1 with RFC 6750 §3),
 * framework-agnostic and through its Koa middleware and node:http helpers on real servers.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { createProtectedResource, TokenRejected } from '../../src/resource-server/index.js';

const api = createProtectedResource({
  resource: 'https://mcp.example.com/mcp',
  authorizationServers: ['https://id.example.com'],
  scopesSupported: ['tools:read', 'tools:call'],
  scopesRequired: ['tools:read'],
  resourceName: 'Example MCP server',
});

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('protected resource metadata (RFC 9728)', () => {
  it('serves the metadata at the well-known path before the resource path, for GET and HEAD only', () => {
    assert.equal(api.metadataUrl, 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp');
    assert.equal(createProtectedResource({ resource: 'https://api.example.com/', authorizationServers: ['https://id.example.com'] }).metadataUrl,
      'https://api.example.com/.well-known/oauth-protected-resource');
    const answer = api.answer('GET', '/.well-known/oauth-protected-resource/mcp?x=1')!;
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(answer.body), {
      resource: 'https://mcp.example.com/mcp',
      authorization_servers: ['https://id.example.com'],
      bearer_methods_supported: ['header'],
      scopes_supported: ['tools:read', 'tools:call'],
      resource_name: 'Example MCP server',
    });
    assert.equal(api.answer('HEAD', api.metadataPath)?.body, '');
    assert.equal(api.answer('POST', api.metadataPath)?.status, 405);
    assert.equal(api.answer('GET', '/mcp'), undefined);
  });

  it('refuses a resource that is not an https URL without a fragment, and no authorization server', () => {
    for (const resource of ['not a url', 'http://mcp.example.com/mcp', 'https://mcp.example.com/mcp#x']) {
      assert.throws(() => createProtectedResource({ resource, authorizationServers: ['https://id.example.com'] }), TypeError, resource);
    }
    assert.ok(createProtectedResource({ resource: 'http://127.0.0.1:8080/mcp', authorizationServers: ['http://localhost:3000'] }));
    assert.throws(() => createProtectedResource({ resource: 'https://mcp.example.com/mcp', authorizationServers: [] }), TypeError);
  });

  it('challenges with resource_metadata, no error without a token, the error and scope with a bad one', () => {
    const plain = api.unauthorized();
    assert.equal(plain.status, 401);
    assert.equal(plain.headers['www-authenticate'], 'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="tools:read"');
    const invalid = api.unauthorized(new TokenRejected('"jwt" expired\nat\\ 5'));
    assert.equal(invalid.status, 401);
    assert.equal(
      invalid.headers['www-authenticate'],
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description=" jwt  expired at  5", scope="tools:read"',
    );
    assert.deepEqual(JSON.parse(invalid.body), { error: 'invalid_token', error_description: '"jwt" expired\nat\\ 5' });
    const scope = api.unauthorized({ error: 'insufficient_scope', description: 'missing scope: tools:call', scope: ['tools:call'] });
    assert.equal(scope.status, 403);
    assert.match(scope.headers['www-authenticate']!, /error="insufficient_scope", error_description="missing scope: tools:call", scope="tools:call"$/);
    const dpop = api.unauthorized({ error: 'invalid_dpop_proof', description: 'bad proof', scheme: 'DPoP' });
    assert.equal(dpop.status, 401);
    assert.match(dpop.headers['www-authenticate']!, /^DPoP resource_metadata="[^"]+", error="invalid_dpop_proof"/);
  });

  it('with DPoP accepted, the 401 offers both schemes, each with resource_metadata; a DPoP failure only the DPoP one (RFC 9449 §7.1)', () => {
    const both = createProtectedResource({
      resource: 'https://mcp.example.com/mcp',
      authorizationServers: ['https://id.example.com'],
      scopesRequired: ['tools:read'],
      dpopSigningAlgValuesSupported: ['ES256', 'EdDSA'],
    });
    assert.deepEqual(JSON.parse(both.answer('GET', both.metadataPath)!.body).dpop_signing_alg_values_supported, ['ES256', 'EdDSA']);
    const metadata = 'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"';
    assert.equal(both.unauthorized().headers['www-authenticate'], `Bearer ${metadata}, scope="tools:read", DPoP ${metadata}, scope="tools:read", algs="ES256 EdDSA"`);
    assert.equal(
      both.unauthorized(new TokenRejected('expired')).headers['www-authenticate'],
      `Bearer ${metadata}, error="invalid_token", error_description="expired", scope="tools:read", DPoP ${metadata}, scope="tools:read", algs="ES256 EdDSA"`,
    );
    assert.equal(
      both.unauthorized(new TokenRejected('DPoP proof: replayed', 'invalid_dpop_proof', 'DPoP')).headers['www-authenticate'],
      `DPoP ${metadata}, error="invalid_dpop_proof", error_description="DPoP proof: replayed", scope="tools:read", algs="ES256 EdDSA"`,
    );
    const bound = createProtectedResource({ resource: 'https://mcp.example.com/mcp', authorizationServers: ['https://id.example.com'], dpopSigningAlgValuesSupported: ['ES256'], dpopBoundAccessTokensRequired: true });
    assert.equal(JSON.parse(bound.answer('GET', bound.metadataPath)!.body).dpop_bound_access_tokens_required, true);
    assert.equal(bound.unauthorized().headers['www-authenticate'], `DPoP ${metadata}, algs="ES256"`);
  });

  it('Koa: serves the metadata and turns a TokenRejected into the challenge, plain when no token was sent', async () => {
    const app = new Koa();
    app.use(api.koa());
    app.use((ctx) => {
      if (ctx.get('authorization') !== 'Bearer good') throw new TokenRejected('no access token');
      ctx.body = 'hello';
    });
    const server = http.createServer(app.callback());
    const base = await listen(server);
    try {
      const metadata = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`);
      assert.equal(metadata.headers.get('access-control-allow-origin'), '*');
      assert.equal(((await metadata.json()) as { resource: string }).resource, 'https://mcp.example.com/mcp');
      const anonymous = await fetch(`${base}/mcp`);
      assert.equal(anonymous.status, 401);
      assert.doesNotMatch(anonymous.headers.get('www-authenticate')!, /error=/);
      const bad = await fetch(`${base}/mcp`, { headers: { authorization: 'Bearer bad' } });
      assert.equal(bad.status, 401);
      assert.match(bad.headers.get('www-authenticate')!, /^Bearer resource_metadata="[^"]+", error="invalid_token"/);
      assert.equal(await (await fetch(`${base}/mcp`, { headers: { authorization: 'Bearer good' } })).text(), 'hello');
    } finally {
      server.close();
    }
  });

  it('a use_dpop_nonce refusal carries the nonce in DPoP-Nonce, readable by browser clients, through unauthorized(), Koa and node:http (RFC 9449 §9)', async () => {
    const dpop = createProtectedResource({ resource: 'https://mcp.example.com/mcp', authorizationServers: ['https://id.example.com'], dpopSigningAlgValuesSupported: ['ES256'] });
    const needsNonce = () => new TokenRejected('DPoP proof: use the nonce this resource server issued', 'use_dpop_nonce', 'DPoP', 'server-nonce-1');
    const answer = dpop.unauthorized(needsNonce());
    assert.equal(answer.status, 401);
    assert.match(answer.headers['www-authenticate']!, /^DPoP .*error="use_dpop_nonce"/);
    assert.equal(answer.headers['dpop-nonce'], 'server-nonce-1');
    assert.equal(answer.headers['access-control-expose-headers'], 'WWW-Authenticate, DPoP-Nonce');
    assert.equal(dpop.unauthorized(new TokenRejected('expired')).headers['dpop-nonce'], undefined, 'no nonce, no header');

    const app = new Koa();
    app.use(dpop.koa());
    app.use(() => {
      throw needsNonce();
    });
    const koa = http.createServer(app.callback());
    const plain = http.createServer((req, res) => {
      if (!dpop.serve(req, res)) dpop.reject(res, needsNonce(), req);
    });
    try {
      for (const base of [await listen(koa), await listen(plain)]) {
        const refused = await fetch(`${base}/mcp`, { headers: { authorization: 'DPoP x', dpop: 'proof' } });
        assert.equal(refused.status, 401);
        assert.match(refused.headers.get('www-authenticate')!, /error="use_dpop_nonce"/);
        assert.equal(refused.headers.get('dpop-nonce'), 'server-nonce-1', base);
      }
    } finally {
      koa.close();
      plain.close();
    }
  });

  it('node:http: serve() answers only the metadata path, reject() writes the challenge', async () => {
    const server = http.createServer((req, res) => {
      if (api.serve(req, res)) return;
      api.reject(res, new TokenRejected('missing scope: tools:call', 'insufficient_scope'), req);
    });
    const base = await listen(server);
    try {
      assert.equal((await fetch(`${base}${api.metadataPath}`)).status, 200);
      const refused = await fetch(`${base}/mcp`, { headers: { authorization: 'Bearer x' } });
      assert.equal(refused.status, 403);
      assert.match(refused.headers.get('www-authenticate')!, /error="insufficient_scope"/);
      assert.equal(refused.headers.get('access-control-expose-headers'), 'WWW-Authenticate');
    } finally {
      server.close();
    }
  });
});
