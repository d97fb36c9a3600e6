/**
 * Server-rendered pages from views/*.eta. Eta escapes every `<%= %>` output; `<%~ %>` (raw) is
 * used only by the layout to place an already rendered body.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Eta } from 'eta';
import type { Middleware } from 'koa';
import { ROOT } from '../paths.js';
import { scoped } from './layers.js';

const eta = new Eta({ views: join(ROOT, 'views'), cache: true, autoEscape: true });

export function render(view: string, data: Record<string, unknown>): string {
  return eta.render(`./${view}`, data);
}

/** Serves views/static/latchkey.css (read once) with an ETag; pages reference it as /static/latchkey.css. */
export function stylesheet(): Middleware {
  const css = readFileSync(join(ROOT, 'views', 'static', 'latchkey.css'));
  const etag = `"${createHash('sha256').update(css).digest('base64url').slice(0, 22)}"`;
  return scoped({ paths: ['/static/latchkey.css'] }, async (ctx, next) => {
    if (ctx.path !== '/static/latchkey.css') return next();
    if (ctx.method === 'OPTIONS') return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      // 405 with Allow, as method-not-allowed.ts answers (which cannot be imported here: errors.ts renders with this module).
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      ctx.body = { error: 'invalid_request', error_description: `this endpoint does not take ${ctx.method}; it takes GET, HEAD` };
      return;
    }
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.etag = etag;
    ctx.type = 'text/css; charset=utf-8';
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.body = css;
  });
}
