/**
 * A TCP front door for several Latchkey instances sharing one issuer URL, like a load balancer:
 * `route(url)` sends every new connection to that instance and closes the open ones, so the
 * next request (keep-alive or not) lands there.
 */
import { connect, createServer, type Socket } from 'node:net';
import { freePort } from './redis.js';

export interface Balancer {
  readonly port: number;
  readonly url: string;
  route(backendUrl: string): void;
  close(): Promise<void>;
}

export async function startBalancer(): Promise<Balancer> {
  const port = await freePort();
  const open = new Set<Socket>();
  let target: URL | undefined;
  const server = createServer((client) => {
    if (!target) return client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.once('close', () => open.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  return {
    port,
    url: `http://localhost:${port}`,
    route(backendUrl) {
      target = new URL(backendUrl);
      for (const socket of open) socket.destroy();
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((done) => server.close(() => done()));
    },
  };
}
