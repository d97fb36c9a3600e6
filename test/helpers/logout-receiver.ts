/** An app's back-channel logout endpoint on loopback: collects the logout tokens posted to it. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LogoutReceiver {
  readonly url: string;
  readonly tokens: string[];
  readonly server: Server;
}

export async function startLogoutReceiver(): Promise<LogoutReceiver> {
  const tokens: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (token) tokens.push(token);
      res.writeHead(token ? 200 : 400).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/logout`, tokens, server };
}
