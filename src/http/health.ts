/**
 * /healthz: the process is up (for restarts). /readyz: the store answers and keys are loaded
 * (for load balancers): 503 while either is not so.
 */
import type { Middleware } from 'koa';
import { scoped } from './layers.js';
import type { Keyring } from '../keyring/keyring.js';
import type { Kv } from '../store/kv.js';

const READY_TIMEOUT_MS = 1000;

/**
 * Answers /healthz and /readyz only (GET, HEAD). The `Cache-Control: no-store` it once set on every
 * GET or HEAD before looking at the path is the app's default now (app.ts, securityHeaders).
 */
export function health(kv: Kv, keyring: () => Keyring | undefined): Middleware {
  return scoped({ paths: ['/healthz', '/readyz'] }, async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    ctx.set('Cache-Control', 'no-store');
    if (ctx.path === '/healthz') {
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path !== '/readyz') return next();
    const keys = keyring()?.keys.length ?? 0;
    let store = 'ok';
    try {
      await Promise.race([
        kv.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS).unref()),
      ]);
    } catch {
      store = 'unreachable';
    }
    const ready = store === 'ok' && keys > 0;
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', store: `${kv.kind}: ${store}`, keys };
  });
}
