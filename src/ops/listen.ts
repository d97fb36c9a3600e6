/**
 * Listening on a port, with a failure said in one line that names the setting to change (a busy
 * port, an address that is not this machine's), instead of a stack trace.
 */
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { ConfigError } from '../config.js';

export interface ListenSettings {
  readonly port: number;
  readonly host: string;
  /** The settings' env var names, e.g. PORT and HOST, or METRICS_PORT and METRICS_HOST. */
  readonly names: { readonly port: string; readonly host: string };
  /** The other ports the same start listens on (PORT's is METRICS_PORT, and back): never suggested instead of this one. */
  readonly others?: readonly number[];
}

export async function listen(server: Server, settings: ListenSettings): Promise<void> {
  const { port, host } = settings;
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(port, host, () => {
        server.off('error', fail);
        done();
      });
    });
  } catch (error) {
    throw await listenError(error as NodeJS.ErrnoException, settings);
  }
}

/**
 * Several things another server holds at once (a second Latchkey started from the same directory
 * holds PORT, METRICS_PORT and EMBEDDED_FILE): each said on its own line, so that one restart fixes all.
 */
export class StartConflicts extends ConfigError {
  readonly lines: readonly string[];
  constructor(conflicts: readonly Error[]) {
    super(conflicts.map((conflict) => conflict.message).join('\n'));
    this.lines = conflicts.map((conflict) => conflict.message);
  }
}

/** The one-line error listen() would give for a port another process holds now, if it does (probed: listened on and closed at once). */
export async function portInUse(settings: ListenSettings): Promise<Error | undefined> {
  if (settings.port === 0) return undefined;
  const error = await probe(settings.port, settings.host);
  return error?.code === 'EADDRINUSE' ? listenError(error, settings) : undefined;
}

/** Why this process cannot listen on the port now, if it cannot (listened on and closed at once). */
async function probe(port: number, host: string): Promise<NodeJS.ErrnoException | undefined> {
  const server = createServer();
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen({ port, host, exclusive: true }, done);
    });
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
  await new Promise<void>((done) => server.close(() => done()));
  return undefined;
}

/** How many ports beside a busy one are tried for one to suggest. */
const SUGGESTION_TRIES = 20;

/**
 * A port to suggest instead of a busy one: the nearest above it (below, near the top) that is free
 * now and is none of the others the same start needs. The next one up was suggested as it was: with
 * PORT=7500 METRICS_PORT=7501 and 7500 taken, 7501, the server's own metrics port (newcomer pass).
 */
async function freePortBeside({ port, host, others = [] }: ListenSettings): Promise<number | undefined> {
  const step = port + SUGGESTION_TRIES <= 65535 ? 1 : -1;
  for (let candidate = port + step, tries = 0; tries < SUGGESTION_TRIES; candidate += step, tries += 1) {
    if (!others.includes(candidate) && !(await probe(candidate, host))) return candidate;
  }
  return undefined;
}

async function listenError(error: NodeJS.ErrnoException, settings: ListenSettings): Promise<Error> {
  const { port, host, names } = settings;
  switch (error.code) {
    case 'EADDRINUSE': {
      // Name the setting as it is written, with a value, so that a newcomer whose port 3000 is taken
      // sees how to start elsewhere (`PORT=3001 npm start`) instead of only that it failed.
      const free = await freePortBeside(settings);
      return new ConfigError(
        `${names.port}: port ${port} on ${host} is in use by another process; expected a free port${free === undefined ? '' : `, e.g. ${names.port}=${free}`} (or stop the other process)`,
      );
    }
    case 'EACCES':
      return new ConfigError(`${names.port}: port ${port} needs privileges this process does not have; expected a port above 1023`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new ConfigError(`${names.host}: "${host}" is not a known host name; expected an address of this machine, e.g. 0.0.0.0 (every interface) or 127.0.0.1`);
    case 'EADDRNOTAVAIL':
      return new ConfigError(`${names.host}: "${host}" is not an address of this machine; expected e.g. 0.0.0.0 (every interface) or 127.0.0.1`);
    default:
      return error;
  }
}
