/**
 * A tiny MCP server protected by Latchkey: the example of docs/mcp.md, "Protecting an MCP server
 * with Latchkey". It speaks a small slice of MCP's JSON-RPC over HTTP POST at /mcp (initialize,
 * tools/list, tools/call of one tool, `whoami`), and everything about authorization comes from
 * latchkey/resource-server: token verification (ResourceServer) and RFC 9728 metadata with the
 * WWW-Authenticate challenge (ProtectedResource), from which an MCP client finds Latchkey.
 *
 * Used by test/e2e/mcp-server.test.ts, and runnable on its own:
 *   ISSUER=http://localhost:3000 CLIENT_ID=mcp-server CLIENT_SECRET=… PORT=8090 npx tsx test/helpers/mcp-server.ts
 * (CLIENT_ID/CLIENT_SECRET: this server's own client at Latchkey, granted the revocation feed.)
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { pathToFileURL } from 'node:url';
// In your own server: from 'latchkey/resource-server'.
import { createProtectedResource, createResourceServer, TokenRejected } from '../../src/resource-server/index.js';

export interface McpServerOptions {
  readonly issuer: string;
  /** This server's client at Latchkey (client_credentials, granted the revocation feed). */
  readonly clientId: string;
  readonly clientSecret: string;
  readonly port: number;
  /** Its origin as clients see it; default http://127.0.0.1:<port>. */
  readonly publicUrl?: string;
}

export interface McpServer {
  /** The MCP endpoint, which is also the resource identifier (the tokens' audience). */
  readonly resource: string;
  close(): Promise<void>;
}

/** The scope every request needs. */
export const MCP_SCOPE = 'tools:read';

async function readJson(req: IncomingMessage): Promise<{ id?: unknown; method?: unknown; params?: { name?: unknown } }> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('body too large');
  }
  return JSON.parse(body) as { id?: unknown; method?: unknown };
}

export async function startMcpServer(options: McpServerOptions): Promise<McpServer> {
  const resource = `${options.publicUrl ?? `http://127.0.0.1:${options.port}`}/mcp`;
  const tokens = await createResourceServer({
    issuer: options.issuer,
    audience: resource,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
  });
  const metadata = createProtectedResource({
    resource,
    authorizationServers: [options.issuer],
    scopesSupported: [MCP_SCOPE],
    scopesRequired: [MCP_SCOPE],
    resourceName: 'Example MCP server',
    // DPoP-bound tokens are verified too: the challenges offer DPoP beside Bearer.
    dpopSigningAlgValuesSupported: tokens.dpopAlgorithms,
  });

  const server: Server = createServer((req, res) => {
    // GET /.well-known/oauth-protected-resource/mcp: the RFC 9728 document.
    if (metadata.serve(req, res)) return;
    if (new URL(req.url ?? '/', resource).pathname !== '/mcp') return void res.writeHead(404).end();
    void (async () => {
      let claims;
      try {
        claims = await tokens.verify(req.headers.authorization, {
          scopes: [MCP_SCOPE],
          // A DPoP-bound token's proof must name this endpoint's public URL: the one URL this server
          // answers, so `resource` itself, never a URL built from Host or the request's target
          // (`//other.example/mcp` routes here too), or a proof made for another server would pass.
          dpop: { proof: req.headers.dpop, method: req.method ?? 'POST', url: resource },
        });
      } catch (error) {
        // 401 (403 for a missing scope) with WWW-Authenticate: Bearer resource_metadata="…".
        if (error instanceof TokenRejected) return metadata.reject(res, error, req);
        throw error;
      }
      if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
      const rpc = await readJson(req);
      const reply = (result: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: rpc.id, result }));
      switch (rpc.method) {
        case 'initialize':
          return reply({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'example-mcp-server', version: '1.0.0' } });
        case 'tools/list':
          return reply({ tools: [{ name: 'whoami', description: 'Who this token acts for', inputSchema: { type: 'object', properties: {} } }] });
        case 'tools/call':
          if (rpc.params?.name === 'whoami') return reply({ content: [{ type: 'text', text: `${claims.sub} via ${claims.client_id}` }] });
          break;
        default:
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: rpc.id, error: { code: -32601, message: 'method not found' } }));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
    });
  });
  await new Promise<void>((done, fail) => server.once('error', fail).listen(options.port, '127.0.0.1', done));
  return {
    resource,
    close: () =>
      new Promise<void>((done) => {
        tokens.close();
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const env = (name: string, fallback?: string) => {
    const value = process.env[name] ?? fallback;
    if (value === undefined) throw new Error(`set ${name}`);
    return value;
  };
  const issuer = env('ISSUER', 'http://localhost:3000');
  startMcpServer({
    issuer,
    clientId: env('CLIENT_ID', 'mcp-server'),
    clientSecret: env('CLIENT_SECRET'),
    port: Number(env('PORT', '8090')),
    publicUrl: process.env.PUBLIC_URL,
  })
    .then(({ resource }) => console.log(`MCP server at ${resource}`))
    .catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      // The address is the one thing a newcomer is likely to have left at its default.
      console.error(message.includes(issuer) ? `${message}: is Latchkey at ${issuer}? Set ISSUER to its address` : message);
      process.exit(1);
    });
}
