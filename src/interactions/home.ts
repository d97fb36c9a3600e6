/**
 * `GET /`: a small page saying what this server is, with links for developers (not a JSON 404),
 * and the favicon every browser asks for (so pages do not log a 404 each).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Middleware } from 'koa';
import { ROOT } from '../paths.js';
import { render } from '../http/views.js';
import { scoped } from '../http/layers.js';
import { refusedUnlessRead } from '../http/method-not-allowed.js';

export function homePage({ issuer, jwksPath }: { issuer: string; jwksPath: string }): Middleware {
  const icon = readFileSync(join(ROOT, 'views', 'static', 'favicon.svg'));
  const etag = `"${createHash('sha256').update(icon).digest('base64url').slice(0, 22)}"`;
  return scoped({ paths: ['/', '/favicon.ico', '/favicon.svg'] }, async (ctx, next) => {
    if (ctx.path !== '/' && ctx.path !== '/favicon.ico' && ctx.path !== '/favicon.svg') return next();
    if (refusedUnlessRead(ctx)) return;
    if (ctx.method === 'OPTIONS') return next();
    if (ctx.path === '/') {
      ctx.type = 'text/html; charset=utf-8';
      ctx.body = render('home', { title: 'Sign-in provider', issuer, jwks: jwksPath });
      return;
    }
    // Browsers ask for /favicon.ico on their own; pages name /favicon.svg. Both are the SVG.
    if (ctx.path === '/favicon.ico' || ctx.path === '/favicon.svg') {
      ctx.set('Cache-Control', 'public, max-age=86400');
      ctx.etag = etag;
      ctx.type = 'image/svg+xml';
      ctx.status = 200; // ctx.fresh compares validators only on a 2xx answer
      if (ctx.fresh) {
        ctx.status = 304;
        return;
      }
      ctx.body = icon;
      return;
    }
    return next();
  });
}
