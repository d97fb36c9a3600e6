/**
 * A lean HTTP/1.1 client for the load generators (closed and open loop): keep-alive sockets from a
 * pool, requests written as text, answers parsed just enough (status, headers, Content-Length or
 * chunked body).
 * node:http costs the generator several times the CPU per request, and on a two-core machine the
 * generator's CPU is taken from the server under test.
 */
import net from 'node:net';
import type { Request, Response } from './load.js';

interface Pending {
  resolve(response: Response): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

const HEAD_END = Buffer.from('\r\n\r\n');

class Connection {
  readonly socket: net.Socket;
  #pending: Pending | undefined;
  #buffer: Buffer | undefined;
  closed = false;

  constructor(host: string, port: number) {
    this.socket = net.connect(port, host);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer ? Buffer.concat([this.#buffer, chunk]) : chunk;
      this.#parse();
    });
    this.socket.on('error', (error) => this.#fail(error));
    this.socket.on('close', () => {
      this.closed = true;
      this.#fail(new Error('connection closed'));
    });
  }

  send(text: string, timeoutMs: number): Promise<Response> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new Error(`timed out after ${timeoutMs} ms`));
        this.socket.destroy();
      }, timeoutMs);
      this.#pending = { resolve, reject, timer };
      this.socket.write(text);
    });
  }

  #fail(error: Error) {
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending) return;
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  #parse() {
    const buffer = this.#buffer!;
    const end = buffer.indexOf(HEAD_END);
    if (end < 0) return;
    const lines = buffer.toString('latin1', 0, end).split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Response['headers'] = {};
    for (let i = 1; i < lines.length; i += 1) {
      const line = lines[i]!;
      const at = line.indexOf(':');
      const name = line.slice(0, at).toLowerCase();
      const value = line.slice(at + 1).trim();
      if (name === 'set-cookie') headers[name] = [...((headers[name] as string[] | undefined) ?? []), value];
      else headers[name] = value;
    }
    let body: string;
    let rest: number;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      let at = end + 4;
      for (;;) {
        const lineEnd = buffer.indexOf('\r\n', at);
        if (lineEnd < 0) return;
        const size = parseInt(buffer.toString('latin1', at, lineEnd), 16);
        if (buffer.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          rest = lineEnd + 4;
          break;
        }
        parts.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts).toString('utf8');
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (buffer.length < end + 4 + length) return;
      body = buffer.toString('utf8', end + 4, end + 4 + length);
      rest = end + 4 + length;
    }
    this.#buffer = rest < buffer.length ? buffer.subarray(rest) : undefined;
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending) return;
    clearTimeout(pending.timer);
    if (headers.connection === 'close') this.closed = true;
    pending.resolve({ status, headers, body });
  }
}

/**
 * Keep-alive connections to one server, opened as needed up to `max`; beyond that a request
 * waits for a connection, as it would in any client's pool (and the wait is part of its latency).
 */
export class ConnectionPool {
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #waiting: ((connection: Connection | undefined) => void)[] = [];
  readonly #hostHeader: string;
  /** The most connections open at once. */
  peak = 0;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly max = Infinity,
  ) {
    this.#hostHeader = `${host}:${port}`;
  }

  get size(): number {
    return this.#all.size;
  }

  /** Opens connections up front (up to `max`), so that a run does not start with a burst of handshakes. */
  async open(count: number): Promise<void> {
    const opened: Connection[] = [];
    while (this.#all.size < Math.min(count, this.max)) {
      const connection = new Connection(this.host, this.port);
      this.#all.add(connection);
      opened.push(connection);
    }
    await Promise.all(opened.map((c) => new Promise<void>((ready) => c.socket.once('connect', ready).once('error', () => ready()))));
    for (const connection of opened) if (!connection.closed) this.#idle.push(connection);
    this.peak = Math.max(this.peak, this.#all.size);
  }

  async #connection(): Promise<Connection> {
    let connection = this.#idle.pop();
    while (connection?.closed) {
      this.#all.delete(connection);
      connection = this.#idle.pop();
    }
    if (connection) return connection;
    if (this.#all.size >= this.max) {
      const handed = await new Promise<Connection | undefined>((ready) => this.#waiting.push(ready));
      if (handed) return handed;
      return this.#connection();
    }
    connection = new Connection(this.host, this.port);
    this.#all.add(connection);
    this.peak = Math.max(this.peak, this.#all.size);
    return connection;
  }

  #release(connection: Connection, usable: boolean) {
    if (!usable) {
      connection.socket.destroy();
      this.#all.delete(connection);
      this.#waiting.shift()?.(undefined);
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter) waiter(connection);
    else this.#idle.push(connection);
  }

  async request(request: Request, timeoutMs = 10_000): Promise<Response> {
    const connection = await this.#connection();
    const body = request.body ?? '';
    let text = `${request.method} ${request.path} HTTP/1.1\r\nHost: ${this.#hostHeader}\r\nConnection: keep-alive\r\n`;
    for (const [name, value] of Object.entries(request.headers ?? {})) text += `${name}: ${value}\r\n`;
    if (body) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    text += `\r\n${body}`;
    try {
      const response = await connection.send(text, timeoutMs);
      this.#release(connection, !connection.closed);
      return response;
    } catch (error) {
      this.#release(connection, false);
      throw error;
    }
  }

  close(): void {
    for (const connection of this.#all) connection.socket.destroy();
    this.#all.clear();
    this.#idle.length = 0;
    for (const waiter of this.#waiting.splice(0)) waiter(undefined);
  }
}
