/**
 * The only scripts our pages load, from ourselves (`script-src 'self'`, no inline script): the
 * @simplewebauthn/browser bundle, and views/static/passkeys.js, which drives it on the login,
 * second-factor and account pages. Read once; served with an ETag.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Middleware } from 'koa';
import { ROOT } from '../paths.js';
import { scoped } from './layers.js';
import { refusedUnlessRead } from './method-not-allowed.js';

export const PASSKEY_SCRIPTS = ['/static/webauthn.js', '/static/passkeys.js'];

const FILES: Record<string, string> = {
  '/static/webauthn.js': join(ROOT, 'node_modules', '@simplewebauthn', 'browser', 'dist', 'bundle', 'index.umd.min.js'),
  '/static/passkeys.js': join(ROOT, 'views', 'static', 'passkeys.js'),
};

export function scripts(): Middleware {
  const served = new Map(
    Object.entries(FILES).map(([path, file]) => {
      const body = readFileSync(file);
      return [path, { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }] as const;
    }),
  );
  return scoped({ paths: PASSKEY_SCRIPTS }, async (ctx, next) => {
    const script = served.get(ctx.path);
    if (!script) return next();
    if (refusedUnlessRead(ctx)) return;
    if (ctx.method === 'OPTIONS') return next();
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.etag = script.etag;
    ctx.type = 'text/javascript; charset=utf-8';
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = script.body;
  });
}
