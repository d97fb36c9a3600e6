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
}

export async function listen(server: Server, { port, host, names }: ListenSettings): Promise<void> {
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(port, host, () => {
        server.off('error', fail);
        done();
      });
    });
  } catch (error) {
    throw listenError(error as NodeJS.ErrnoException, { port, host, names });
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
  const probe = createServer();
  try {
    await new Promise<void>((done, fail) => {
      probe.once('error', fail);
      probe.listen({ port: settings.port, host: settings.host, exclusive: true }, done);
    });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? listenError(error as NodeJS.ErrnoException, settings) : undefined;
  }
  await new Promise<void>((done) => probe.close(() => done()));
  return undefined;
}

function listenError(error: NodeJS.ErrnoException, { port, host, names }: ListenSettings): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      // Name the setting as it is written, with a value, so that a newcomer whose port 3000 is taken
      // sees how to start elsewhere (`PORT=3001 npm start`) instead of only that it failed.
      return new ConfigError(
        `${names.port}: port ${port} on ${host} is in use by another process; expected a free port, e.g. ${names.port}=${port < 65535 ? port + 1 : port - 1} (or stop the other process)`,
      );
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
