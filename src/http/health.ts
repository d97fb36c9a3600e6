/**
 * /healthz: the process is up (for restarts). /readyz: the store answers, takes a write, keeps what
 * it is given (it evicts no keys: Kv.evictionPolicy) and keys are loaded (for load balancers): 503 while one is not so.
 */
import type { Middleware } from 'koa';
import { scoped } from './layers.js';
import { refusedUnlessRead } from './method-not-allowed.js';
import type { Keyring } from '../keyring/keyring.js';
import type { Kv } from '../store/kv.js';
import { READY_PROBE_KEY } from '../store/keys.js';
import { storeRefusal } from '../store/outage.js';

const READY_TIMEOUT_MS = 1000;
const PROBE_TTL_SECONDS = 10;

/**
 * A Redis answers PING while it refuses every write (full under maxmemory, OOM; min-replicas-to-write
 * unmet, NOREPLICAS; a failed snapshot, MISCONF; a replica, READONLY), and every sign-in and token
 * then fails: a write tells. Its reply code (not its message) for the body, which anyone may read.
 */
async function writeRefused(kv: Kv): Promise<string | undefined> {
  try {
    await kv.set(READY_PROBE_KEY, '1', { ttl: PROBE_TTL_SECONDS });
    return undefined;
  } catch (error) {
    const refusal = storeRefusal(error);
    if (!refusal) throw error;
    return /^[A-Z]+/.exec(refusal.message)?.[0] ?? 'refused';
  }
}

/**
 * Answers /healthz and /readyz only (GET, HEAD). The `Cache-Control: no-store` it once set on every
 * GET or HEAD before looking at the path is the app's default now (app.ts, securityHeaders).
 */
export function health(kv: Kv, keyring: () => Keyring | undefined): Middleware {
  return scoped({ paths: ['/healthz', '/readyz'] }, async (ctx, next) => {
    if (ctx.path !== '/healthz' && ctx.path !== '/readyz') return next();
    if (refusedUnlessRead(ctx, true)) return;
    if (ctx.method === 'OPTIONS') return next();
    ctx.set('Cache-Control', 'no-store');
    if (ctx.path === '/healthz') {
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path !== '/readyz') return next();
    const keys = keyring()?.keys.length ?? 0;
    let store = 'ok';
    try {
      const [refused, evicts] = await Promise.race([
        kv.ping().then(() =>
          Promise.all([
            writeRefused(kv),
            // INFO refused (an ACL without it): said at start; the store answers all the same.
            kv.evictionPolicy?.().catch((error: unknown) => (storeRefusal(error) ? undefined : Promise.reject(error))),
          ]),
        ),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS).unref()),
      ]);
      if (refused) store = `refuses writes (${refused})`;
      // Set so since the start (CONFIG SET): revocations may be dropped.
      else if (evicts) store = `evicts keys (maxmemory-policy ${evicts})`;
    } catch {
      store = 'unreachable';
    }
    const ready = store === 'ok' && keys > 0;
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', store: `${kv.kind}: ${store}`, keys };
  });
}
