/**
 * The store's Lua scripts as methods of its ioredis connection, called as ioredis's `defineCommand`
 * makes them (`connection.putRecord(key, ...)`, `numberOfKeys` given first when the definition
 * declares it), without ioredis's `defineCommand` on a standalone or Sentinel connection.
 *
 * Why: ioredis copies every script defined with `defineCommand`, and its Buffer twin, onto each
 * pipeline it makes (Pipeline's constructor: `this[name] = redis[name]` for each, and its digest
 * into a table), and with auto-pipelining it makes one each turn of the event loop that sends a
 * command. With the store's sixteen scripts that was 48 megamorphic loads and as many stores per
 * pipeline, about 30 K instructions, 2-3% of an opaque token's (docs/performance.md).
 *
 * As ioredis did, a script's first call on each connection to Redis (each socket) is an EVAL, which
 * runs it and caches it in Redis, and later ones an EVALSHA: every call is sent with the
 * connection's other commands of its turn (turn-commands.ts: the same round trips), and a command
 * sent after a script in the same turn sees its effect even on a Redis that has just started. An
 * EVALSHA answered NOSCRIPT (the scripts flushed meanwhile) did not run; it is sent again as EVAL,
 * so it never runs twice.
 *
 * On Cluster, ioredis's `defineCommand` for a script with a fixed number of keys: its auto-pipelining
 * groups a command it does not know (a script) by its first argument, here the script's first key.
 * A script given its number of keys at each call (claimDue) would have that number first, so it was
 * grouped with the node of `<prefix><number>` (`lk:2`: the first master) while its keys are on
 * another: ioredis then refuses that node's whole pipeline before sending it, failing every command
 * of the turn in it (the key ring's refresh in CI). Such a script is sent as EVALSHA (EVAL after
 * NOSCRIPT), whose keys the commands table names, so it goes with its first key's node.
 * test/integration/cluster-pipelines.test.ts.
 */
import { createHash } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { turnCommandsOf } from './turn-commands.js';

export interface ScriptDefinition {
  readonly lua: string;
  /** Keys the script takes; undefined: the caller gives their number as its first argument. */
  readonly numberOfKeys?: number;
}

type Args = (string | number)[];

export function defineScript(connection: Redis | Cluster, name: string, { lua, numberOfKeys }: ScriptDefinition): void {
  const sha = createHash('sha1').update(lua).digest('hex');
  if (connection instanceof Cluster) {
    if (numberOfKeys !== undefined) {
      connection.defineCommand(name, { lua, numberOfKeys });
      return;
    }
    // args: the number of keys, the keys (prefixed by ioredis), then the script's arguments.
    const evalsha = (...args: Args) => orEval(connection.call('evalsha', sha, ...args), () => connection.call('eval', lua, ...args));
    Object.defineProperty(connection, name, { value: evalsha, configurable: true, writable: true });
    return;
  }
  // Sent with the connection's other commands of the turn (turn-commands.ts).
  const commands = turnCommandsOf(connection);
  const keyPrefix = connection.options.keyPrefix ?? '';
  // The sockets this script was sent on as EVAL (ioredis's CustomScriptCommand keeps the same).
  const loaded = new WeakSet<object>();
  // args: the number of keys, the keys (prefixed here, as ioredis prefixed them), then the script's arguments.
  const send = (args: Args) => {
    if (keyPrefix) for (let at = 1, keys = Number(args[0]); at <= keys; at++) args[at] = keyPrefix + String(args[at]);
    const socket = connection.stream as object | undefined;
    if (!socket || !loaded.has(socket)) {
      if (socket) loaded.add(socket);
      return commands.send('eval', [lua, ...args]);
    }
    return orEval(commands.send('evalsha', [sha, ...args]), () => commands.send('eval', [lua, ...args]));
  };
  const run = numberOfKeys === undefined ? (...args: Args) => send(args) : (...args: Args) => send([numberOfKeys, ...args]);
  Object.defineProperty(connection, name, { value: run, configurable: true, writable: true });
}

/** The EVALSHA's reply, or the EVAL's when Redis did not have the script (NOSCRIPT: the EVALSHA did not run). */
function orEval<T>(evalsha: Promise<T>, evalLua: () => Promise<T>): Promise<T> {
  return evalsha.catch((error: unknown) => {
    if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
    return evalLua();
  });
}
