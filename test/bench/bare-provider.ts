/**
 * The baseline: a bare oidc-provider with its own in-memory adapter, configured like Latchkey
 * where the scenarios can tell (clients, resource servers and their token formats, PKCE, refresh
 * rotation, introspection, revocation, the same RS256 key and TTLs) and with nothing else: no
 * Redis, no Koa middleware of ours, no request log, oidc-provider's development login pages.
 *
 * Run by the bench in its own process: PORT, ISSUER, JWKS, CLIENTS, RESOURCE_SERVERS (JSON).
 *
 * The in-memory adapter is oidc-provider's MemoryAdapter, but over a larger LRU than its default
 * (1,000 entries per generation): the bench keeps pools of thousands of tokens, and an evicted
 * token would be answered from the cheap "not found" path.
 */
import { randomBytes } from 'node:crypto';
import { Provider, type Configuration } from 'oidc-provider';
// @ts-expect-error: an internal module without types (the package has no exports map).
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
// @ts-expect-error: as above.
import LRU from 'oidc-provider/lib/helpers/lru.js';

interface ResourceServerSetting {
  identifier: string;
  scopes: string[];
  format: 'jwt' | 'opaque';
}

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const CLOCK_TOLERANCE = 15;
const resourceServers = JSON.parse(env('RESOURCE_SERVERS')) as ResourceServerSetting[];
const store = new LRU({ maxSize: 2_000_000 });

const configuration: Configuration = {
  adapter: (model: string) => new MemoryAdapter(model, store, CLOCK_TOLERANCE),
  clients: JSON.parse(env('CLIENTS')),
  jwks: JSON.parse(env('JWKS')),
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  clockTolerance: CLOCK_TOLERANCE,
  responseTypes: ['code'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  ttl: {
    AccessToken: 900,
    ClientCredentials: 900,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 1_209_600,
    Session: 1_209_600,
    Interaction: 3600,
    Grant: 1_209_600,
  },
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo: (_ctx, indicator) => {
        const server = resourceServers.find((candidate) => candidate.identifier === indicator);
        if (!server) throw new Error(`unknown resource server ${indicator}`);
        return {
          audience: server.identifier,
          scope: server.scopes.join(' '),
          accessTokenFormat: server.format,
          ...(server.format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
        };
      },
    },
  },
};

if (process.env.BARE_REMEMBER_CONSENT === '1') {
  // For login-ab.ts's `bare`: a person's consent to a client is remembered across sign-ins (as
  // Latchkey's is), so a password login is the same four requests (authorize, the login page, its
  // submission, the resume) with no consent page; the engine's default remembers it per session.
  const remembered = new Map<string, string>();
  configuration.loadExistingGrant = async (ctx) => {
    const { session, client, provider: engine } = ctx.oidc;
    if (!session?.accountId || !client) return undefined;
    const key = `${session.accountId} ${client.clientId}`;
    const known = remembered.get(key);
    if (known) return engine.Grant.find(known);
    const grant = new engine.Grant({ accountId: session.accountId, clientId: client.clientId });
    grant.addOIDCScope('openid');
    remembered.set(key, await grant.save());
    return grant;
  };
}

const provider = new Provider(env('ISSUER'), configuration);

if (process.env.BARE_WAITS) {
  // For login-ab.ts --steps: every request first waits BARE_WAITS times for 1 ms (the event loop
  // asleep, as it is across each of Latchkey's Redis round trips), doing nothing else: what
  // sleeping and waking costs the engine's own JavaScript on a machine whose cores others use.
  const waits = Number(process.env.BARE_WAITS);
  provider.use(async (_ctx, next) => {
    for (let i = 0; i < waits; i += 1) await new Promise((done) => setTimeout(done, 1));
    await next();
  });
}

if (process.env.BARE_HASH === '1') {
  // For login-ab.ts's `bare:BARE_HASH=1`: the login form's submission verifies one argon2id hash
  // (BARE_ARGON2, the configured parameters) before the engine takes it, as Latchkey's does: what
  // the hash does to the JavaScript around it (caches, the core shared with the pool) in the engine alone.
  const argon2 = await import('argon2');
  const options: import('argon2').HashOptions = { type: argon2.argon2id, ...(JSON.parse(env('BARE_ARGON2')) as object) };
  const hash = await argon2.hash('correct horse battery staple', options);
  // As many at once as there are cores to run them (Latchkey's argon2 slots): one, pinned to one core.
  const { availableParallelism } = await import('node:os');
  let running = 0;
  const queue: (() => void)[] = [];
  const verify = async () => {
    // A slot freed goes to the next in the queue as it is (running unchanged).
    if (running >= availableParallelism()) await new Promise<void>((go) => queue.push(go));
    else running += 1;
    try {
      await argon2.verify(hash, 'correct horse battery staple');
    } finally {
      const next = queue.shift();
      if (next) next();
      else running -= 1;
    }
  };
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path.startsWith('/interaction/')) await verify();
    await next();
  });
}
const server = provider.listen(Number(env('PORT')), '127.0.0.1');
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
