/**
 * The store's commands on a standalone or Sentinel connection, sent together once per turn of the
 * event loop as ioredis's auto-pipelining sends them, without its per-turn `Pipeline` and the
 * promises it wraps around every command.
 *
 * Why: with auto-pipelining, each command went through `executeWithAutoPipelining` (a promise of
 * its own and a callback pushed on the pipeline), the pipeline's commander (a Command, whose keys
 * ioredis prefixes after looking the command's key positions up by its lower-cased name), the
 * pipeline's `sendCommand` (a `then` and a `catch` on the command's promise, `fillResult`), and on
 * the answer the pipeline's results array, its promise, `standard-as-callback` and one
 * `process.nextTick` per command; and every turn made a `Pipeline` (its promise, the scripts still
 * defined with `defineCommand` copied onto it). Here a command is one ioredis `Command`, given its
 * keys already prefixed, whose own promise is the caller's (docs/performance.md).
 *
 * What is kept: the commands of a turn are written to the socket in one write, in the order they
 * were sent, after the turn (`setImmediate`, as ioredis); each is sent through the connection's
 * own `sendCommand`, as a Pipeline's are (its command timeout, its queue of commands awaiting an
 * answer, which fails them when the connection drops), with the pipeline-shaped stream that
 * ioredis's types declare for it. While the connection is not ready (before the first `ready`,
 * while reconnecting) each command goes to `sendCommand` alone, which queues it (before the first
 * `ready`) or fails it at once (redis.ts connect): as ioredis does for an auto-pipeline then.
 * Replies are converted as ioredis converts them (utf8 strings; HGETALL an object).
 *
 * Not for Cluster: its auto-pipelines route each command by its key's slot.
 */
import { Command, type Redis } from 'ioredis';

export type Arg = string | number;

const REPLY_AS_STRINGS = { replyEncoding: 'utf8' } as const;

export class TurnCommands {
  readonly #connection: Redis;
  #queued: Command[] = [];
  #scheduled = false;

  constructor(connection: Redis) {
    this.#connection = connection;
  }

  /** `name` with `args`, every key among them already prefixed; answered as ioredis answers it. */
  send<T>(name: string, args: Arg[]): Promise<T> {
    const command = new Command(name, args, REPLY_AS_STRINGS);
    this.#queued.push(command);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return command.promise as Promise<T>;
  }

  readonly #flush = () => {
    const commands = this.#queued;
    this.#queued = [];
    this.#scheduled = false;
    const connection = this.#connection;
    const socket = connection.stream;
    if (connection.status !== 'ready' || !socket?.writable) {
      for (const command of commands) void connection.sendCommand(command);
      return;
    }
    let text = '';
    let buffers: Buffer[] | undefined;
    const batch = {
      isPipeline: true as const,
      destination: { redis: { stream: socket } },
      write(data: string | Buffer) {
        if (typeof data === 'string') {
          text += data;
          return;
        }
        // A Buffer argument (none of the store's): what came before it, then it, in order.
        buffers ??= [];
        if (text) buffers.push(Buffer.from(text));
        text = '';
        buffers.push(data);
      },
    };
    for (const command of commands) void connection.sendCommand(command, batch);
    if (buffers) {
      if (text) buffers.push(Buffer.from(text));
      socket.write(Buffer.concat(buffers));
    } else if (text) {
      socket.write(text);
    }
  };
}

const byConnection = new WeakMap<Redis, TurnCommands>();

/** The one TurnCommands of a connection: every caller's commands of a turn share its write. */
export function turnCommandsOf(connection: Redis): TurnCommands {
  let commands = byConnection.get(connection);
  if (!commands) byConnection.set(connection, (commands = new TurnCommands(connection)));
  return commands;
}
