/** A client's own jwks_uri on loopback, whose keys a test changes (or takes down) as the client would. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

export interface JwksHost {
  readonly url: string;
  /** What it publishes; undefined: the file is taken down (404). */
  keys: JWK[] | undefined;
  /** How many times it was read. */
  fetches: number;
  readonly server: Server;
}

/** Serves `{ keys }` at /jwks with `headers` (by default `Cache-Control: no-cache`). */
export async function startJwksHost(headers: Record<string, string> = { 'cache-control': 'no-cache' }): Promise<JwksHost> {
  const server = createServer((_req, res) => {
    host.fetches += 1;
    res.writeHead(host.keys ? 200 : 404, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(host.keys ? { keys: host.keys } : {}));
  });
  const host: JwksHost = { url: '', keys: [], fetches: 0, server };
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return Object.assign(host, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks` });
}
