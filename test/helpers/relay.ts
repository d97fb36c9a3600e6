/**
 * A TCP relay to Redis that a test can pause mid-conversation: once armed, it holds a connection's
 * traffic from the first chunk `matches` says is the one, so a request is caught in flight at the
 * write the test names while other connections (another instance, the CLI) go on.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A relay to Redis that, once armed, holds a connection's traffic from the first chunk `matches` says is the one. */
export interface Relay {
  readonly url: string;
  /** Resolves once a chunk matching `matches` is held (with everything after it on that connection). */
  holdFrom(matches: (chunk: string) => boolean): Promise<void>;
  release(): void;
  close(): void;
}

export async function startRelay(redisPort: number): Promise<Relay> {
  let armed: { matches: (chunk: string) => boolean; held: () => void } | undefined;
  const holding = new Map<Socket, Buffer[]>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('data', (chunk) => {
      const queue = holding.get(client);
      if (queue) return void queue.push(chunk);
      if (armed?.matches(chunk.toString('latin1'))) {
        holding.set(client, [chunk]);
        armed.held();
        armed = undefined;
        return;
      }
      upstream.write(chunk);
    });
    const close = () => (client.destroy(), upstream.destroy());
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
    (client as Socket & { upstream?: Socket }).upstream = upstream;
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    holdFrom: (matches) => new Promise((held) => (armed = { matches, held })),
    release() {
      for (const [client, queue] of holding) for (const chunk of queue) (client as Socket & { upstream?: Socket }).upstream!.write(chunk);
      holding.clear();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}
