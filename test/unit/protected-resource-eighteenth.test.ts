/**
 * The eighteenth conformance pass (docs/security-passes.md, "Looked at in the eighteenth passes:
 * conformance-suite equivalents (h3)"): where latchkey/resource-server's RFC 9728 metadata lives for a
 * resource identifier whose path ends in a slash. §3.1 removes only "any terminating slash (/)
 * following the host component" before inserting the well-known path: `https://api.example.com/v1/`
 * has its metadata at `/.well-known/oauth-protected-resource/v1/`, slash kept, and §3.3 has the
 * client use the document only if its `resource` is the identifier it inserted the path into.
 * Some clients (the MCP TypeScript SDK's discovery) strip the path's trailing slash as well: that
 * spelling is answered too.
 */
import assert from 'node:assert/strict';
import { createProtectedResource } from '../../src/resource-server/index.js';

describe('protected resource metadata for a path ending in a slash (RFC 9728 §3.1), eighteenth pass', () => {
  const api = createProtectedResource({ resource: 'https://api.example.com/v1/', authorizationServers: ['https://id.example.com'] });

  it('names and serves the metadata at the well-known path with the resource path as it is, trailing slash kept', () => {
    assert.equal(api.metadataUrl, 'https://api.example.com/.well-known/oauth-protected-resource/v1/');
    assert.equal(api.metadataPath, '/.well-known/oauth-protected-resource/v1/');
    const answer = api.answer('GET', '/.well-known/oauth-protected-resource/v1/');
    assert.equal(answer?.status, 200);
    assert.equal(JSON.parse(answer.body).resource, 'https://api.example.com/v1/', 'the identifier the path was inserted into (§3.3)');
    assert.match(api.unauthorized().headers['www-authenticate']!, /resource_metadata="https:\/\/api\.example\.com\/\.well-known\/oauth-protected-resource\/v1\/"/);
  });

  it('answers the spelling without the trailing slash too, for clients that strip it; other paths stay the API’s', () => {
    assert.equal(api.answer('GET', '/.well-known/oauth-protected-resource/v1')?.status, 200);
    assert.equal(api.answer('HEAD', '/.well-known/oauth-protected-resource/v1?x=1')?.status, 200);
    assert.equal(api.answer('POST', '/.well-known/oauth-protected-resource/v1')?.status, 405);
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/v1//', '/.well-known/oauth-protected-resource/v', '/v1/']) {
      assert.equal(api.answer('GET', path), undefined, path);
    }
  });

  it('a resource at the root or without a trailing slash keeps its one path', () => {
    const root = createProtectedResource({ resource: 'https://api.example.com/', authorizationServers: ['https://id.example.com'] });
    assert.equal(root.metadataUrl, 'https://api.example.com/.well-known/oauth-protected-resource');
    assert.equal(root.answer('GET', '/.well-known/oauth-protected-resource/'), undefined);
    const mcp = createProtectedResource({ resource: 'https://mcp.example.com/mcp', authorizationServers: ['https://id.example.com'] });
    assert.equal(mcp.metadataUrl, 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp');
    assert.equal(mcp.answer('GET', '/.well-known/oauth-protected-resource/mcp/'), undefined);
  });
});
