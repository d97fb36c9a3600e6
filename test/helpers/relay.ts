/**
 * A TCP relay to Redis that a test can pause mid-conversation: once armed, it holds a connection's
 * traffic from the first chunk `matches` says is the one, so a request is caught in flight at the
 * write the test names while other connections (another instance, the CLI) go on. It can also
 * silence a connection both ways (`silence`), as a half-open one: a NAT or firewall that dropped
 * it, a paused proxy; nothing is delivered, nothing is closed, no error.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort, startRedisServer } from './redis.js';
import { startServer, testDir, testEnv, type TestServer } from './server.js';

/** A relay to Redis that, once armed, holds a connection's traffic from the first chunk `matches` says is the one. */
export interface Relay {
  readonly url: string;
  /** Resolves once a chunk matching `matches` is held (with everything after it on that connection). */
  holdFrom(matches: (chunk: string) => boolean): Promise<void>;
  /**
   * Holds, both ways, the traffic of every open connection that has sent something `matches`
   * says is the one (what it sent so far, as one text): how many.
   */
  silence(matches: (sent: string) => boolean): number;
  /** Lets everything held go on, and drops a hold not reached yet. */
  release(): void;
  close(): void;
}

/** What a connection sent, kept for `silence` up to this length. */
const SENT_KEPT = 64 * 1024;

interface Link {
  readonly upstream: Socket;
  sent: string;
  /** What Redis sent it while silenced. */
  down?: Buffer[];
}

export async function startRelay(redisPort: number): Promise<Relay> {
  let armed: { matches: (chunk: string) => boolean; held: () => void } | undefined;
  const holding = new Map<Socket, Buffer[]>();
  const links = new Map<Socket, Link>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1');
    const link: Link = { upstream, sent: '' };
    links.set(client, link);
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk) => (link.down ? link.down.push(chunk) : client.write(chunk)));
    client.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      if (link.sent.length < SENT_KEPT) link.sent += text.slice(0, SENT_KEPT - link.sent.length);
      const queue = holding.get(client);
      if (queue) return void queue.push(chunk);
      if (armed?.matches(text)) {
        holding.set(client, [chunk]);
        armed.held();
        armed = undefined;
        return;
      }
      upstream.write(chunk);
    });
    const close = () => (client.destroy(), upstream.destroy(), links.delete(client), holding.delete(client));
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    holdFrom: (matches) => new Promise((held) => (armed = { matches, held })),
    silence(matches) {
      let silenced = 0;
      for (const [client, link] of links) {
        if (!matches(link.sent)) continue;
        link.down ??= [];
        if (!holding.has(client)) holding.set(client, []);
        silenced += 1;
      }
      return silenced;
    },
    release() {
      // A hold not reached by now is dropped too: it would catch a later request's traffic.
      armed = undefined;
      for (const [client, queue] of holding) for (const chunk of queue) links.get(client)?.upstream.write(chunk);
      holding.clear();
      for (const [client, link] of links) {
        for (const chunk of link.down ?? []) client.write(chunk);
        delete link.down;
      }
    },
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

/**
 * A server on its own Redis, reached through a relay (a held write must not time out, 503, while
 * the test acts: REDIS_COMMAND_TIMEOUT 30 s), and the environment of an operator's CLI that
 * reaches that Redis directly, not through the relay.
 */
export interface RelayedServer {
  readonly relay: Relay;
  readonly server: TestServer;
  /** The CLI's environment (`latchkey(env, …)`). */
  readonly env: Record<string, string>;
  /** The environment of a CLI that reaches Redis through the relay, as the server does. */
  readonly relayedEnv: Record<string, string>;
  stop(): Promise<void>;
}

export async function startRelayedServer(env: Record<string, string> = {}): Promise<RelayedServer> {
  const redis = await startRedisServer();
  const relay = await startRelay(Number(new URL(redis.url).port));
  const dir = testDir();
  const port = await freePort();
  const server = await startServer({ dir, port, redisUrl: relay.url, env: { ...env, REDIS_COMMAND_TIMEOUT: '30000' } });
  return {
    relay,
    server,
    env: testEnv(dir, port, { redisUrl: redis.url, env }),
    relayedEnv: testEnv(dir, port, { redisUrl: relay.url, env }),
    async stop() {
      relay.release();
      await server.stop();
      relay.close();
      await redis.stop();
    },
  };
}
