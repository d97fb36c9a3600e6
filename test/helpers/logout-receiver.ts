/**
 * An app's back-channel logout endpoint on loopback: collects the logout tokens posted to it. With
 * `onToken` set, each post is answered only once it settled (what the app does when told, and how
 * long it takes); what it threw is kept in `errors`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LogoutReceiver {
  readonly url: string;
  readonly tokens: string[];
  readonly server: Server;
  onToken: ((token: string) => Promise<void>) | undefined;
  readonly errors: unknown[];
}

export async function startLogoutReceiver(): Promise<LogoutReceiver> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (token) receiver.tokens.push(token);
      void (token && receiver.onToken ? receiver.onToken(token) : Promise.resolve())
        .catch((error: unknown) => receiver.errors.push(error))
        .finally(() => res.writeHead(token ? 200 : 400).end());
    });
  });
  const receiver: LogoutReceiver = { url: '', tokens: [], server, onToken: undefined, errors: [] };
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return Object.assign(receiver, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/logout` });
}
