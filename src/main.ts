/**
 * `serve`: configuration → store → keys → accounts → provider → app → listen.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Provider } from 'oidc-provider';
import { Accounts } from './accounts/accounts.js';
import { LoginThrottle } from './accounts/throttle.js';
import { logoutPages } from './interactions/logout.js';
import { Consents } from './provider/consents.js';
import { adminApi } from './registration/admin-api.js';
import { Clients } from './registration/clients.js';
import { developerPages } from './registration/developer-pages.js';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { renderProviderError } from './interactions/errors.js';
import { interactionRoutes } from './interactions/routes.js';
import { FileKeyStore } from './keyring/keyring.js';
import { createLogger, type Logger } from './ops/logger.js';
import { CLOCK_TOLERANCE, createProvider } from './provider/provider.js';
import { RevocationList } from './revocation/list.js';
import { openStore, type Kv } from './store/index.js';

export interface Running {
  /** Where it listens, e.g. http://127.0.0.1:3000 (not the issuer, which may be a proxy's URL). */
  readonly url: string;
  readonly port: number;
  readonly provider: Provider;
  readonly kv: Kv;
  readonly accounts: Accounts;
  /** Stops accepting connections, lets in-flight requests finish, closes the store. */
  close(): Promise<void>;
}

/** The provider and what it stands on: for the server, and for CLI commands that validate clients. */
export async function assemble(config: Config, kv: Kv) {
  const keyring = await new FileKeyStore(resolve(config.keys.dir)).load(config.keys.rsaBits);
  const accounts = new Accounts(kv, config.accounts.argon2);
  const consents = new Consents(kv, config.ttl.grant);
  const provider = createProvider({
    config,
    kv,
    keyring,
    accounts,
    revocations: new RevocationList(kv, CLOCK_TOLERANCE),
    consents,
    renderError: (ctx, out) => renderProviderError(ctx, out),
    logoutPages,
  });
  return { keyring, accounts, consents, provider };
}

export async function serve(config: Config, logger: Logger = createLogger(config.log.level)): Promise<Running> {
  const kv = openStore(config, logger);
  if (kv.kind === 'embedded') {
    logger.warn(
      { file: resolve(config.embedded.file) },
      'REDIS_URL is not set: using the embedded in-process store (development only; sessions do not survive a restart)',
    );
  }
  const { keyring, accounts, consents, provider } = await assemble(config, kv);
  const clients = new Clients(kv, provider);
  const app = createApp({
    config,
    provider,
    kv,
    keyring: () => keyring,
    logger,
    routes: [
      adminApi({ issuer: config.issuer, provider, clients, accounts, secretRotationGrace: config.registration.secretRotationGrace }),
      developerPages({
        issuer: config.issuer,
        provider,
        clients,
        csrfKey: config.cookie.keys[0]!,
        secretRotationGrace: config.registration.secretRotationGrace,
      }),
      interactionRoutes({
        provider,
        accounts,
        throttle: new LoginThrottle(kv, config.accounts.throttle),
        consents,
        logger,
        csrfKey: config.cookie.keys[0]!,
      }),
    ],
  });

  const server: Server = createServer(app.callback());
  // Slow clients cannot hold a connection open forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(config.port, config.host, done);
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info({ port, issuer: config.issuer, store: kv.kind }, 'latchkey is listening');

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    provider,
    kv,
    accounts,
    async close() {
      await new Promise<void>((done) => {
        server.close(() => done());
        server.closeIdleConnections();
      });
      await kv.close();
    },
  };
}
