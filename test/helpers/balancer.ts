/**
 * A TCP front door for several Latchkey instances sharing one issuer URL, like a load balancer:
 * `route(url)` sends every new connection to that instance.
 */
import { connect, createServer, type Socket } from 'node:net';
import { freePort } from './redis.js';

export interface Balancer {
  readonly port: number;
  readonly url: string;
  /**
   * New connections go to `backendUrl`. Open ones are closed, unless `drain`: then they stay with
   * their backend, as a load balancer drains an instance it takes out of rotation. Awaited, it
   * resolves once this process's clients can have read the closes: a request sent at once may go out
   * on a pooled connection its client has not yet seen closed ("other side closed" on a loaded runner).
   */
  route(backendUrl: string, options?: { drain?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export async function startBalancer(): Promise<Balancer> {
  const port = await freePort();
  const open = new Set<Socket>();
  let target: URL | undefined;
  const server = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    // Like a load balancer's connect retries: a backend that refuses the connection (it is
    // shutting down) is tried again on the current target; no byte has been sent yet.
    const connectUpstream = (attempt: number) => {
      if (!target || client.destroyed) return client.destroy();
      const upstream = connect(Number(target.port), target.hostname);
      upstream.once('error', () => {
        if (!upstream.readyState.startsWith('open') && attempt < 5) setTimeout(() => connectUpstream(attempt + 1), 20);
        else client.destroy();
      });
      upstream.once('connect', () => {
        open.add(upstream);
        upstream.once('close', () => {
          open.delete(upstream);
          client.destroy();
        });
        client.once('close', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
      });
    };
    connectUpstream(1);
  });
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  return {
    port,
    url: `http://localhost:${port}`,
    route(backendUrl, { drain = false } = {}) {
      target = new URL(backendUrl);
      if (drain || open.size === 0) return Promise.resolve();
      for (const socket of open) socket.destroy();
      return new Promise((done) => setTimeout(done, 100));
    },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((done) => server.close(() => done()));
    },
  };
}
